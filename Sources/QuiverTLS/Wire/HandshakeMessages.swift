import QuiverCore

/// A handshake message type (RFC 8446 §4).
public struct HandshakeType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// TLS 1.2 only (RFC 5246 §7.4.1.1): a server asking for renegotiation.
    public static let helloRequest = HandshakeType(rawValue: 0)
    public static let clientHello = HandshakeType(rawValue: 1)
    public static let serverHello = HandshakeType(rawValue: 2)
    /// DTLS 1.2 only (RFC 6347 §4.2.1): the server's stateless cookie challenge.
    public static let helloVerifyRequest = HandshakeType(rawValue: 3)
    public static let newSessionTicket = HandshakeType(rawValue: 4)
    public static let endOfEarlyData = HandshakeType(rawValue: 5)
    public static let encryptedExtensions = HandshakeType(rawValue: 8)
    public static let certificate = HandshakeType(rawValue: 11)
    /// TLS 1.2 only (RFC 5246 §7.4.3; RFC 8422 §5.4).
    public static let serverKeyExchange = HandshakeType(rawValue: 12)
    public static let certificateRequest = HandshakeType(rawValue: 13)
    /// TLS 1.2 only (RFC 5246 §7.4.5).
    public static let serverHelloDone = HandshakeType(rawValue: 14)
    public static let certificateVerify = HandshakeType(rawValue: 15)
    /// TLS 1.2 only (RFC 5246 §7.4.7; RFC 8422 §5.7).
    public static let clientKeyExchange = HandshakeType(rawValue: 16)
    public static let finished = HandshakeType(rawValue: 20)
    public static let keyUpdate = HandshakeType(rawValue: 24)
    public static let compressedCertificate = HandshakeType(rawValue: 25)
    public static let messageHash = HandshakeType(rawValue: 254)

    public var description: String {
        switch self {
        case .helloRequest: return "HelloRequest"
        case .clientHello: return "ClientHello"
        case .serverHello: return "ServerHello"
        case .helloVerifyRequest: return "HelloVerifyRequest"
        case .newSessionTicket: return "NewSessionTicket"
        case .endOfEarlyData: return "EndOfEarlyData"
        case .encryptedExtensions: return "EncryptedExtensions"
        case .certificate: return "Certificate"
        case .serverKeyExchange: return "ServerKeyExchange"
        case .certificateRequest: return "CertificateRequest"
        case .serverHelloDone: return "ServerHelloDone"
        case .clientKeyExchange: return "ClientKeyExchange"
        case .certificateVerify: return "CertificateVerify"
        case .finished: return "Finished"
        case .keyUpdate: return "KeyUpdate"
        case .compressedCertificate: return "CompressedCertificate"
        default: return "HandshakeType(\(rawValue))"
        }
    }
}

/// A complete handshake message as it appears in the transcript: type, 24-bit length, body;
/// in DTLS also its message_seq, with a fragment offset of 0 and a fragment length of the
/// whole body (RFC 6347 §4.2.6: the transcript hashes each message as one fragment).
struct HandshakeMessage: Sendable {
    var type: HandshakeType
    var body: [UInt8]
    /// DTLS only: the message's `message_seq`.
    var messageSeq: UInt16? = nil

    /// The encoded message (header included), the form hashed into the transcript.
    var encoded: [UInt8] {
        var w = ByteWriter(capacity: body.count + 12)
        w.writeUInt8(type.rawValue)
        w.writeUInt24(UInt32(body.count))
        if let messageSeq {
            w.writeUInt16(messageSeq)
            w.writeUInt24(0)
            w.writeUInt24(UInt32(body.count))
        }
        w.writeBytes(body)
        return w.bytes
    }

    /// The size of a handshake message header: 4 bytes in TLS, 12 in DTLS.
    static func headerLength(datagram: Bool) -> Int { datagram ? 12 : 4 }

    static func encode(_ type: HandshakeType, _ build: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter()
        build(&w)
        return HandshakeMessage(type: type, body: w.bytes).encoded
    }
}

/// Splits a byte stream of one encryption level into handshake messages.
///
/// Bounded: a message announcing more than ``maximumMessageSize`` bytes is refused before its
/// body is buffered, so a hostile length cannot make us allocate.
///
/// In DTLS (`datagram`) the bytes are whole messages with 12-byte headers (fragment offset 0,
/// fragment length the message's), in message_seq order: the DTLS record layer reassembles
/// fragments and orders messages before handing them over.
struct HandshakeReassembler: Sendable {
    /// The largest handshake message accepted (certificate chains are the largest).
    static let maximumMessageSize = 1 << 17
    /// The largest Finished body (verify_data is one hash output, at most SHA-512's 64 bytes).
    static let maximumFinishedSize = 64
    private var buffer: [UInt8] = []
    var datagram = false

    var isEmpty: Bool { buffer.isEmpty }

    mutating func append(_ bytes: [UInt8]) { buffer.append(contentsOf: bytes) }

    /// The next complete message, or `nil` until more bytes arrive.
    mutating func next() throws(TLSError) -> HandshakeMessage? {
        guard buffer.count >= 4 else { return nil }
        let length = Int(buffer[1]) << 16 | Int(buffer[2]) << 8 | Int(buffer[3])
        // No hash is longer than 64 bytes: a longer Finished is malformed whatever its size
        // (RFC 8446 §4.4.4), refused before it is buffered.
        guard buffer[0] != HandshakeType.finished.rawValue || length <= Self.maximumFinishedSize else {
            throw TLSError(.decodeError, "Finished of \(length) bytes")
        }
        guard length <= Self.maximumMessageSize else {
            throw TLSError(.unexpectedMessage, "handshake message of \(length) bytes exceeds the \(Self.maximumMessageSize)-byte limit")
        }
        let header = HandshakeMessage.headerLength(datagram: datagram)
        guard buffer.count >= header + length else { return nil }
        var message = HandshakeMessage(type: HandshakeType(rawValue: buffer[0]), body: Array(buffer[header..<(header + length)]))
        if datagram {
            let offset = Int(buffer[6]) << 16 | Int(buffer[7]) << 8 | Int(buffer[8])
            let fragmentLength = Int(buffer[9]) << 16 | Int(buffer[10]) << 8 | Int(buffer[11])
            guard offset == 0, fragmentLength == length else { throw TLSError(.internalError, "a DTLS handshake fragment reached the handshake") }
            message.messageSeq = UInt16(buffer[4]) << 8 | UInt16(buffer[5])
        }
        // A buffer emptied gives its storage back: a connection keeps none after its handshake.
        if buffer.count == header + length { buffer = [] } else { buffer.removeFirst(header + length) }
        return message
    }
}

/// `ClientHello` (RFC 8446 §4.1.2).
struct ClientHello: Sendable {
    var random: [UInt8]
    var legacySessionID: [UInt8]
    /// DTLS only (RFC 6347 §4.2.1): the cookie, empty until a HelloVerifyRequest gave one;
    /// `nil` in TLS, whose ClientHello has no such field.
    var cookie: [UInt8]?
    var cipherSuites: [CipherSuite]
    var extensions: Extensions

    /// The legacy_version of a TLS 1.2 / 1.3 ClientHello and of a DTLS 1.2 one (RFC 6347 §4.1:
    /// the ones' complement of 1.2).
    static let tlsVersion: UInt16 = 0x0303
    static let dtls12Version: UInt16 = 0xFEFD

    init(random: [UInt8], legacySessionID: [UInt8], cookie: [UInt8]? = nil, cipherSuites: [CipherSuite], extensions: Extensions) {
        self.random = random
        self.legacySessionID = legacySessionID
        self.cookie = cookie
        self.cipherSuites = cipherSuites
        self.extensions = extensions
    }

    /// Parses a ClientHello body; `datagram`: a DTLS 1.2 ClientHello (version 0xFEFD, a cookie field).
    init(body: [UInt8], datagram: Bool = false) throws(TLSError) {
        var r = ByteReader(body)
        do {
            let version = try r.readUInt16()
            guard version == (datagram ? Self.dtls12Version : Self.tlsVersion) else {
                throw TLSError(.protocolVersion, "ClientHello legacy_version 0x\(String(version, radix: 16))")
            }
            random = try r.readBytes(32)
            legacySessionID = try r.readLengthPrefixedBytes(1)
            guard legacySessionID.count <= 32 else { throw TLSError(.illegalParameter, "legacy_session_id longer than 32 bytes") }
            cookie = datagram ? try r.readLengthPrefixedBytes(1) : nil
            let suites = try ExtensionCodec.readUInt16List(&r)
            cipherSuites = suites.map(CipherSuite.init(rawValue:))
            let compression = try r.readLengthPrefixedBytes(1)
            guard compression == [0] else { throw TLSError(.illegalParameter, "legacy_compression_methods must be exactly [null]") }
            extensions = try Extensions(reading: &r)
            try r.expectEnd("ClientHello")
        } catch let error as DecodeError {
            throw TLSError.decode(error, in: "ClientHello")
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.internalError, "\(error)")
        }
    }

    /// Encodes the message; the pre_shared_key extension, when present, must be last.
    var encoded: [UInt8] {
        HandshakeMessage.encode(.clientHello) { w in
            w.writeUInt16(cookie == nil ? Self.tlsVersion : Self.dtls12Version)
            w.writeBytes(random)
            w.writeLengthPrefixedBytes(1, legacySessionID)
            if let cookie { w.writeLengthPrefixedBytes(1, cookie) }
            ExtensionCodec.writeUInt16List(&w, cipherSuites.map(\.rawValue))
            w.writeLengthPrefixedBytes(1, [0])
            extensions.write(to: &w)
        }
    }
}

/// `ServerHello` and `HelloRetryRequest` (RFC 8446 §4.1.3, §4.1.4).
struct ServerHello: Sendable {
    /// SHA-256("HelloRetryRequest"): the random that marks a HelloRetryRequest.
    static let helloRetryRequestRandom: [UInt8] = [
        0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
        0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
    ]
    /// Downgrade sentinels (RFC 8446 §4.1.3): the last 8 bytes of a TLS 1.2 / 1.1 server random.
    static let downgradeTLS12: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x01]
    static let downgradeTLS11: [UInt8] = [0x44, 0x4F, 0x57, 0x4E, 0x47, 0x52, 0x44, 0x00]

    var legacyVersion: UInt16 = 0x0303
    var random: [UInt8]
    var legacySessionIDEcho: [UInt8]
    var cipherSuite: CipherSuite
    var extensions: Extensions

    var isHelloRetryRequest: Bool { random == Self.helloRetryRequestRandom }

    init(random: [UInt8], legacySessionIDEcho: [UInt8], cipherSuite: CipherSuite, extensions: Extensions) {
        self.random = random
        self.legacySessionIDEcho = legacySessionIDEcho
        self.cipherSuite = cipherSuite
        self.extensions = extensions
    }

    init(body: [UInt8]) throws(TLSError) {
        var r = ByteReader(body)
        do {
            legacyVersion = try r.readUInt16()
            random = try r.readBytes(32)
            legacySessionIDEcho = try r.readLengthPrefixedBytes(1)
            guard legacySessionIDEcho.count <= 32 else { throw TLSError(.illegalParameter, "legacy_session_id_echo longer than 32 bytes") }
            cipherSuite = CipherSuite(rawValue: try r.readUInt16())
            guard try r.readUInt8() == 0 else { throw TLSError(.illegalParameter, "non-null legacy_compression_method") }
            extensions = try Extensions(reading: &r)
            try r.expectEnd("ServerHello")
        } catch let error as DecodeError {
            throw TLSError.decode(error, in: "ServerHello")
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.internalError, "\(error)")
        }
    }

    var encoded: [UInt8] {
        HandshakeMessage.encode(.serverHello) { w in
            w.writeUInt16(legacyVersion)
            w.writeBytes(random)
            w.writeLengthPrefixedBytes(1, legacySessionIDEcho)
            w.writeUInt16(cipherSuite.rawValue)
            w.writeUInt8(0)
            extensions.write(to: &w)
        }
    }
}

/// Messages whose body is an extension block plus fixed fields, decoded in one place.
enum MessageCodec {
    static func decode<T>(_ what: String, _ body: [UInt8], _ parse: (inout ByteReader) throws -> T) throws(TLSError) -> T {
        var r = ByteReader(body)
        do {
            let value = try parse(&r)
            try r.expectEnd(what)
            return value
        } catch let error as DecodeError {
            throw TLSError.decode(error, in: what)
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.internalError, "\(error)")
        }
    }

    static func encryptedExtensions(_ body: [UInt8]) throws(TLSError) -> Extensions {
        try decode("EncryptedExtensions", body) { r in try Extensions(reading: &r) }
    }

    /// `CertificateRequest`: context and extensions.
    static func certificateRequest(_ body: [UInt8]) throws(TLSError) -> (context: [UInt8], extensions: Extensions) {
        try decode("CertificateRequest", body) { r in (try r.readLengthPrefixedBytes(1), try Extensions(reading: &r)) }
    }

    static func encodeCertificateRequest(context: [UInt8], extensions: Extensions) -> [UInt8] {
        HandshakeMessage.encode(.certificateRequest) { w in
            w.writeLengthPrefixedBytes(1, context)
            extensions.write(to: &w)
        }
    }

    /// `Certificate` (RFC 8446 §4.4.2): context and DER certificates (per-entry extensions ignored).
    static func certificate(_ body: [UInt8]) throws(TLSError) -> (context: [UInt8], chain: [[UInt8]]) {
        try decode("Certificate", body) { r in
            let context = try r.readLengthPrefixedBytes(1)
            var list = try r.readLengthPrefixed(3)
            var chain: [[UInt8]] = []
            while !list.isAtEnd {
                let der = try list.readLengthPrefixedBytes(3)
                guard !der.isEmpty else { throw DecodeError(.invalidValue, "empty certificate entry") }
                _ = try Extensions(reading: &list)
                chain.append(der)
            }
            return (context, chain)
        }
    }

    static func encodeCertificate(context: [UInt8], chain: [[UInt8]]) -> [UInt8] {
        HandshakeMessage.encode(.certificate) { w in
            w.writeLengthPrefixedBytes(1, context)
            w.writeLengthPrefixed(3) { w in
                for der in chain {
                    w.writeLengthPrefixedBytes(3, der)
                    w.writeUInt16(0)
                }
            }
        }
    }

    static func certificateVerify(_ body: [UInt8]) throws(TLSError) -> (scheme: SignatureScheme, signature: [UInt8]) {
        try decode("CertificateVerify", body) { r in
            (SignatureScheme(rawValue: try r.readUInt16()), try r.readLengthPrefixedBytes(2))
        }
    }

    static func encodeCertificateVerify(scheme: SignatureScheme, signature: [UInt8]) -> [UInt8] {
        HandshakeMessage.encode(.certificateVerify) { w in
            w.writeUInt16(scheme.rawValue)
            w.writeLengthPrefixedBytes(2, signature)
        }
    }

    /// `NewSessionTicket` (RFC 8446 §4.6.1).
    struct NewSessionTicket: Sendable {
        var lifetime: UInt32
        var ageAdd: UInt32
        var nonce: [UInt8]
        var ticket: [UInt8]
        var maxEarlyDataSize: UInt32?

        var encoded: [UInt8] {
            HandshakeMessage.encode(.newSessionTicket) { w in
                w.writeUInt32(lifetime)
                w.writeUInt32(ageAdd)
                w.writeLengthPrefixedBytes(1, nonce)
                w.writeLengthPrefixedBytes(2, ticket)
                var ext = Extensions()
                if let max = maxEarlyDataSize { ext.append(.earlyData) { $0.writeUInt32(max) } }
                ext.write(to: &w)
            }
        }
    }

    static func newSessionTicket(_ body: [UInt8]) throws(TLSError) -> NewSessionTicket {
        let ticket = try decode("NewSessionTicket", body) { r in
            let lifetime = try r.readUInt32()
            let ageAdd = try r.readUInt32()
            let nonce = try r.readLengthPrefixedBytes(1)
            let ticket = try r.readLengthPrefixedBytes(2)
            guard !ticket.isEmpty else { throw DecodeError(.invalidValue, "empty ticket") }
            let ext = try Extensions(reading: &r)
            let early = try ext.decode(.earlyData) { r throws(DecodeError) in try r.readUInt32() }
            return NewSessionTicket(lifetime: lifetime, ageAdd: ageAdd, nonce: nonce, ticket: ticket, maxEarlyDataSize: early)
        }
        // RFC 8446 §4.6.1: lifetimes above seven days are illegal.
        guard ticket.lifetime <= 604_800 else { throw TLSError(.illegalParameter, "ticket lifetime above 7 days") }
        return ticket
    }

    static func keyUpdate(_ body: [UInt8]) throws(TLSError) -> Bool {
        let request = try decode("KeyUpdate", body) { r in try r.readUInt8() }
        guard request <= 1 else { throw TLSError(.illegalParameter, "KeyUpdate request_update \(request)") }
        return request == 1
    }

    static func encodeKeyUpdate(requestUpdate: Bool) -> [UInt8] {
        HandshakeMessage.encode(.keyUpdate) { $0.writeUInt8(requestUpdate ? 1 : 0) }
    }
}

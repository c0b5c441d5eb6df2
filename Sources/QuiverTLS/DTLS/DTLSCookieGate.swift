public import QuiverCore

/// The stateless first step of a DTLS server, as OpenSSL's `DTLSv1_listen`: a ClientHello
/// without a valid cookie is answered with one and no state is kept; only a ClientHello that
/// returns a valid cookie from the same address and port is worth a ``DTLSConnection``.
///
/// - DTLS 1.2 (RFC 6347 §4.2.1): a HelloVerifyRequest. The cookie is `time ‖ HMAC-SHA256(secret,
///   time ‖ address ‖ ClientHello without its cookie)` truncated to 16 bytes.
/// - DTLS 1.3 (RFC 9147 §5.1), for a client that offers it when the configuration allows it: a
///   HelloRetryRequest with a `cookie` extension — asking for a key share too when the client
///   sent none we take — and nothing kept: the cookie carries what the server needs to go on
///   from the second ClientHello (the suite and group chosen and the hash of the first
///   ClientHello, for the transcript's `message_hash`, RFC 8446 §4.4.1), authenticated with the
///   time and the client's address (``DTLSHelloRetry``).
///
/// `time` is in seconds (4 bytes): a cookie is refused after ``lifetime`` or from another
/// address. Gates built from the same secret accept each other's cookies (processes behind one
/// port, restarts). Replays of a valid cookie within its lifetime from the same address are the
/// caller's to refuse (a listener routes that address to the connection it already has). The
/// ClientHello must be whole in the datagram's first record: a caller reassembles fragments
/// first (``DTLSEndpoint`` does, bounded).
public struct DTLSCookieGate: Sendable {
    /// What to do with a datagram from an address that has no connection.
    public enum Decision: Sendable, Equatable {
        /// A ClientHello with a valid cookie: create a server ``DTLSConnection`` and feed it
        /// the datagram (DTLS 1.3: a connection that goes on from the `retry` answered).
        case accept(DTLSHelloRetry?)
        /// Send this datagram (a HelloVerifyRequest) back to the sender; keep nothing.
        case helloVerifyRequest([UInt8])
        /// Send this datagram (a DTLS 1.3 HelloRetryRequest) back to the sender; keep nothing.
        case helloRetryRequest([UInt8])
        /// Send this datagram (a fatal alert: no suite or group in common) back; keep nothing.
        case refuse([UInt8])
        /// Not a ClientHello we answer (malformed, fragmented, another protocol): ignore it.
        case drop
    }

    private let secret: [UInt8]
    /// How long a cookie stays valid (a client answers within a round trip).
    public var lifetime: UInt32 = 60
    /// Real time, for the cookie's timestamp.
    public var clock: WallClock = .system

    /// A gate with `secret` (32 random bytes by default; share it between processes serving one port).
    public init(secret: [UInt8] = RandomSource.system.bytes(32)) {
        self.secret = secret
    }

    /// Decides what to do with `datagram` from `peer`, for a server with `tls` (its versions,
    /// suites and groups; DTLS 1.3 when `tls.maximumVersion` is `.tls13`).
    public func check(_ datagram: [UInt8], from peer: SocketAddress, tls: TLSConfiguration) -> Decision {
        guard let hello = Self.parseClientHello(datagram) else { return .drop }
        let now = UInt32(truncatingIfNeeded: clock.millisecondsSinceEpoch() / 1000)
        if tls.maximumVersion >= .tls13, let parsed = try? ClientHello(body: Array(hello.body), datagram: true),
           Self.offersDTLS13(parsed) {
            return check13(parsed, body: hello.body, recordSequence: hello.recordSequence, from: peer, tls: tls, now: now)
        }
        let offered = Array(hello.cookie)
        if offered.count == 20 {
            let time = offered[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if now >= time, now - time <= lifetime,
               TLSHandshake.constantTimeEqual(offered, cookie(time: time, peer: peer, hello: hello.withoutCookie)) {
                return .accept(nil)
            }
        }
        return .helloVerifyRequest(Self.helloVerifyRequest(
            cookie: cookie(time: now, peer: peer, hello: hello.withoutCookie), recordSequence: hello.recordSequence))
    }

    static func offersDTLS13(_ hello: ClientHello) -> Bool {
        let versions = try? hello.extensions.decode(.supportedVersions) { r throws(DecodeError) in
            var list = try r.readLengthPrefixed(1)
            var out: [UInt16] = []
            while !list.isAtEnd { out.append(try list.readUInt16()) }
            return out
        }
        return versions?.contains(0xFEFC) == true
    }

    /// DTLS 1.3: a second ClientHello with a valid cookie is accepted; a first one gets a
    /// HelloRetryRequest with the suite and group the server would choose (as
    /// ``TLSHandshake`` chooses them) and a cookie.
    private func check13(_ hello: ClientHello, body: ArraySlice<UInt8>, recordSequence: UInt64, from peer: SocketAddress,
                         tls: TLSConfiguration, now: UInt32) -> Decision {
        if let offered = try? hello.extensions.decode(.cookie, { r throws(DecodeError) in try r.readLengthPrefixedBytes(2) }) {
            guard let retry = DTLSHelloRetry(cookie: offered), now >= retry.time, now - retry.time <= lifetime,
                  TLSHandshake.constantTimeEqual(offered, retryCookie(retry, peer: peer))
            else { return .drop }  // forged, stale or from elsewhere: a client never starts with a cookie
            return .accept(retry)
        }
        let refusal = Self.alert(.handshakeFailure, recordSequence: recordSequence)
        guard let suite = tls.cipherSuites.first(where: { hello.cipherSuites.contains($0) }), let hash = suite.hash else { return .refuse(refusal) }
        let shares = try? hello.extensions.decode(.keyShare) { r throws(DecodeError) in try ExtensionCodec.readClientKeyShares(&r) }
        let groups = (try? hello.extensions.decode(.supportedGroups) { r throws(DecodeError) in try ExtensionCodec.readUInt16List(&r) })?
            .map(NamedGroup.init(rawValue:)) ?? []
        var group: NamedGroup?
        if !tls.groups.contains(where: { g in shares?.contains { $0.0 == g } == true }) {
            guard let wanted = tls.groups.first(where: groups.contains) else { return .refuse(refusal) }
            group = wanted
        }
        let clientHelloHash = hash.hash(HandshakeMessage(type: .clientHello, body: Array(body)).encoded)
        var retry = DTLSHelloRetry(time: now, suite: suite, group: group, clientHelloHash: clientHelloHash)
        retry.cookie = retryCookie(retry, peer: peer)
        let hrr = TLSHandshake.helloRetryRequest(suite: suite, group: group, cookie: retry.cookie, sessionID: [], datagram: true)
        return .helloRetryRequest(Self.handshakeRecord(hrr.encoded, recordSequence: recordSequence))
    }

    /// The cookie of `retry`: its fields and an HMAC over them and the address.
    private func retryCookie(_ retry: DTLSHelloRetry, peer: SocketAddress) -> [UInt8] {
        let fields = retry.fields
        let mac = TLSHash.sha256.hmac(key: secret, fields + Array("\(peer)".utf8))
        return fields + mac.prefix(16)
    }

    private func cookie(time: UInt32, peer: SocketAddress, hello: [UInt8]) -> [UInt8] {
        var input = withUnsafeBytes(of: time.bigEndian) { Array($0) }
        input += Array("\(peer)".utf8)
        input.append(0)
        input += hello
        let mac = TLSHash.sha256.hmac(key: secret, input)
        return Array(input.prefix(4)) + mac.prefix(16)
    }

    /// The ClientHello of the datagram's first record, whole in one fragment; `nil` otherwise.
    static func parseClientHello(_ datagram: [UInt8])
        -> (cookie: ArraySlice<UInt8>, withoutCookie: [UInt8], body: ArraySlice<UInt8>, recordSequence: UInt64)? {
        guard let fragment = ClientHelloFragment(datagram), fragment.isWhole else { return nil }
        let body = fragment.bytes
        // version(2) random(32) session_id<0..32> cookie<0..255> …
        var i = body.startIndex + 34
        guard body.endIndex > i else { return nil }
        let sessionIDLength = Int(body[i])
        guard sessionIDLength <= 32 else { return nil }
        i += 1 + sessionIDLength
        guard body.endIndex > i else { return nil }
        let cookieLength = Int(body[i])
        guard body.endIndex >= i + 1 + cookieLength else { return nil }
        let cookie = body[(i + 1)..<(i + 1 + cookieLength)]
        let withoutCookie = Array(body[body.startIndex..<i]) + Array(body[(i + 1 + cookieLength)...])
        return (cookie, withoutCookie, body, fragment.recordSequence)
    }

    /// A HelloVerifyRequest record: DTLS 1.0 as the record and server version (RFC 6347 §4.2.1
    /// says so for any version to come), message_seq 0, and the ClientHello's record sequence
    /// number (so that several HelloVerifyRequests never repeat one).
    /// A handshake record at epoch 0 holding `message` (TLS-framed) whole as `messageSeq` (0: the
    /// server's first message), with record sequence number `recordSequence` (the ClientHello's).
    static func handshakeRecord(_ message: [UInt8], messageSeq: UInt16 = 0, recordSequence: UInt64) -> [UInt8] {
        let length = message.count - 4
        var out: [UInt8] = [22, 0xFE, 0xFD]
        withUnsafeBytes(of: (recordSequence & 0xFFFF_FFFF_FFFF).bigEndian) { out.append(contentsOf: $0) }
        out += [UInt8((length + 12) >> 8), UInt8(truncatingIfNeeded: length + 12)]
        out += message[0..<4] + [UInt8(messageSeq >> 8), UInt8(truncatingIfNeeded: messageSeq), 0, 0, 0] + message[1..<4] + message[4...]
        return out
    }

    /// A fatal alert at epoch 0 with the ClientHello's record sequence number.
    static func alert(_ description: AlertDescription, recordSequence: UInt64) -> [UInt8] {
        var out: [UInt8] = [21, 0xFE, 0xFD]
        withUnsafeBytes(of: (recordSequence & 0xFFFF_FFFF_FFFF).bigEndian) { out.append(contentsOf: $0) }
        return out + [0, 2, 2, description.rawValue]
    }

    static func helloVerifyRequest(cookie: [UInt8], recordSequence: UInt64) -> [UInt8] {
        let body: [UInt8] = [0xFE, 0xFF, UInt8(cookie.count)] + cookie
        var out: [UInt8] = [22, 0xFE, 0xFF]
        withUnsafeBytes(of: (recordSequence & 0xFFFF_FFFF_FFFF).bigEndian) { out.append(contentsOf: $0) }  // epoch 0
        let recordLength = 12 + body.count
        out += [UInt8(recordLength >> 8), UInt8(truncatingIfNeeded: recordLength)]
        out += [HandshakeType.helloVerifyRequest.rawValue, 0, 0, UInt8(body.count), 0, 0, 0, 0, 0, 0, 0, UInt8(body.count)]
        out += body
        return out
    }
}

/// The ClientHello fragment in the first record of a datagram (a plaintext handshake record at
/// epoch 0): all of a ClientHello, or a piece of one too large for a datagram.
struct ClientHelloFragment {
    var messageSeq: UInt16
    /// The whole message's length.
    var length: Int
    var offset: Int
    var bytes: ArraySlice<UInt8>
    var recordSequence: UInt64

    var isWhole: Bool { offset == 0 && bytes.count == length }

    init?(_ datagram: [UInt8]) {
        let h = DTLSConnection.headerLength
        guard datagram.count >= h + 12, datagram[0] == 22, datagram[1] == 0xFE, datagram[3] == 0, datagram[4] == 0,
              datagram[h] == HandshakeType.clientHello.rawValue
        else { return nil }
        let recordLength = Int(datagram[11]) << 8 | Int(datagram[12])
        guard datagram.count >= h + recordLength, recordLength >= 12 else { return nil }
        length = Int(datagram[h + 1]) << 16 | Int(datagram[h + 2]) << 8 | Int(datagram[h + 3])
        offset = Int(datagram[h + 6]) << 16 | Int(datagram[h + 7]) << 8 | Int(datagram[h + 8])
        let fragmentLength = Int(datagram[h + 9]) << 16 | Int(datagram[h + 10]) << 8 | Int(datagram[h + 11])
        guard 12 + fragmentLength <= recordLength, offset + fragmentLength <= length, length <= 1 << 14 else { return nil }
        messageSeq = UInt16(datagram[h + 4]) << 8 | UInt16(datagram[h + 5])
        bytes = datagram[(h + 12)..<(h + 12 + fragmentLength)]
        recordSequence = datagram[5..<11].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

/// What a DTLS 1.3 server answered statelessly with a HelloRetryRequest, carried in its cookie
/// and checked when the second ClientHello returns it (``DTLSCookieGate``): the server goes on
/// from there (``DTLSConnection/init(server:after:)``).
///
/// Cookie layout: format (1, = 1) ‖ time (4) ‖ suite (2) ‖ group (2, 0: none asked for) ‖
/// hash length (1) ‖ hash of the first ClientHello ‖ HMAC-SHA256 (16, over the fields and the
/// client's address).
public struct DTLSHelloRetry: Sendable, Equatable {
    /// When the cookie was made (seconds since the epoch, truncated to 32 bits).
    public var time: UInt32
    /// The suite the HelloRetryRequest named.
    public var suite: CipherSuite
    /// The group whose key share it asked for; `nil` when the client had sent one we take.
    public var group: NamedGroup?
    /// The hash (the suite's) of the first ClientHello, in its TLS form.
    public var clientHelloHash: [UInt8]
    /// The cookie as sent.
    public var cookie: [UInt8] = []

    init(time: UInt32, suite: CipherSuite, group: NamedGroup?, clientHelloHash: [UInt8]) {
        self.time = time
        self.suite = suite
        self.group = group
        self.clientHelloHash = clientHelloHash
    }

    /// Parses a cookie (not yet authenticated); `nil` when it is not one of ours.
    init?(cookie: [UInt8]) {
        guard cookie.count >= 10, cookie[0] == 1 else { return nil }
        let hashLength = Int(cookie[9])
        guard cookie.count == 10 + hashLength + 16 else { return nil }
        time = cookie[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        suite = CipherSuite(rawValue: UInt16(cookie[5]) << 8 | UInt16(cookie[6]))
        let groupValue = UInt16(cookie[7]) << 8 | UInt16(cookie[8])
        group = groupValue == 0 ? nil : NamedGroup(rawValue: groupValue)
        clientHelloHash = Array(cookie[10..<(10 + hashLength)])
        guard suite.hash?.length == hashLength else { return nil }
        self.cookie = cookie
    }

    /// The authenticated fields, as the cookie starts.
    var fields: [UInt8] {
        var out: [UInt8] = [1]
        withUnsafeBytes(of: time.bigEndian) { out.append(contentsOf: $0) }
        out += [UInt8(suite.rawValue >> 8), UInt8(truncatingIfNeeded: suite.rawValue)]
        let g = group?.rawValue ?? 0
        out += [UInt8(g >> 8), UInt8(truncatingIfNeeded: g), UInt8(clientHelloHash.count)]
        return out + clientHelloHash
    }
}

import QuiverCore

/// A TLS extension type (RFC 8446 §4.2).
public struct ExtensionType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let serverName = ExtensionType(rawValue: 0)
    public static let maxFragmentLength = ExtensionType(rawValue: 1)
    public static let statusRequest = ExtensionType(rawValue: 5)
    public static let supportedGroups = ExtensionType(rawValue: 10)
    /// TLS 1.2 (RFC 8422 §5.1.2): only the uncompressed format is used.
    public static let ecPointFormats = ExtensionType(rawValue: 11)
    public static let signatureAlgorithms = ExtensionType(rawValue: 13)
    public static let applicationLayerProtocolNegotiation = ExtensionType(rawValue: 16)
    public static let padding = ExtensionType(rawValue: 21)
    /// TLS 1.2 (RFC 7627): required by Quiver.
    public static let extendedMasterSecret = ExtensionType(rawValue: 23)
    public static let compressCertificate = ExtensionType(rawValue: 27)
    public static let recordSizeLimit = ExtensionType(rawValue: 28)
    /// TLS 1.2 session tickets (RFC 5077).
    public static let sessionTicket = ExtensionType(rawValue: 35)
    public static let preSharedKey = ExtensionType(rawValue: 41)
    public static let earlyData = ExtensionType(rawValue: 42)
    public static let supportedVersions = ExtensionType(rawValue: 43)
    public static let cookie = ExtensionType(rawValue: 44)
    public static let pskKeyExchangeModes = ExtensionType(rawValue: 45)
    public static let certificateAuthorities = ExtensionType(rawValue: 47)
    public static let postHandshakeAuth = ExtensionType(rawValue: 49)
    public static let signatureAlgorithmsCert = ExtensionType(rawValue: 50)
    public static let keyShare = ExtensionType(rawValue: 51)
    public static let quicTransportParameters = ExtensionType(rawValue: 57)
    /// DTLS-SRTP's protection profiles (RFC 5764 §4.1.1), which WebRTC peers require.
    public static let useSRTP = ExtensionType(rawValue: 14)
    /// DTLS Connection IDs (RFC 9146).
    public static let connectionID = ExtensionType(rawValue: 54)
    /// TLS 1.2 secure renegotiation (RFC 5746): Quiver sends it empty and never renegotiates.
    public static let renegotiationInfo = ExtensionType(rawValue: 0xFF01)

    public var description: String { "extension(\(rawValue))" }
}

/// One extension: its type and its undecoded body.
struct Extension: Hashable, Sendable {
    var type: ExtensionType
    var data: [UInt8]
}

/// The extension block of a handshake message: order kept, duplicates refused on parse
/// (RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type").
struct Extensions: Hashable, Sendable {
    var items: [Extension] = []

    init(_ items: [Extension] = []) { self.items = items }

    /// Parses an `extensions<0..2^16-1>` vector (the length prefix included).
    init(reading reader: inout ByteReader) throws(TLSError) {
        do {
            var block = try reader.readLengthPrefixed(2)
            var seen = Set<UInt16>()
            while !block.isAtEnd {
                let type = try block.readUInt16()
                let data = try block.readLengthPrefixedBytes(2)
                guard seen.insert(type).inserted else {
                    throw TLSError(.illegalParameter, "duplicate extension \(type)")
                }
                items.append(Extension(type: ExtensionType(rawValue: type), data: data))
            }
        } catch let error as DecodeError {
            throw TLSError.decode(error, in: "extensions")
        } catch let error as TLSError {
            throw error
        } catch {
            throw TLSError(.internalError, "\(error)")
        }
    }

    subscript(_ type: ExtensionType) -> [UInt8]? { items.first { $0.type == type }?.data }

    func contains(_ type: ExtensionType) -> Bool { items.contains { $0.type == type } }

    mutating func append(_ type: ExtensionType, _ data: [UInt8]) { items.append(Extension(type: type, data: data)) }

    mutating func append(_ type: ExtensionType, _ body: (inout ByteWriter) -> Void) {
        var w = ByteWriter()
        body(&w)
        append(type, w.bytes)
    }

    func write(to w: inout ByteWriter) {
        w.writeLengthPrefixed(2) { w in
            for e in items {
                w.writeUInt16(e.type.rawValue)
                w.writeLengthPrefixedBytes(2, e.data)
            }
        }
    }

    /// Decodes the extension `type` with `body`, which must consume it exactly;
    /// failures become `decode_error`.
    func decode<T>(_ type: ExtensionType, _ body: (inout ByteReader) throws(DecodeError) -> T) throws(TLSError) -> T? {
        guard let data = self[type] else { return nil }
        var r = ByteReader(data)
        do {
            let value = try body(&r)
            try r.expectEnd("extension \(type.rawValue)")
            return value
        } catch {
            throw TLSError.decode(error, in: "extension \(type.rawValue)")
        }
    }
}

/// The `record_size_limit` bounds (RFC 8449 §4) for TLS 1.3, where the limit counts the
/// content type byte and padding of a protected record's plaintext.
enum RecordSizeLimit {
    /// The smallest value a peer may announce; below it is `illegal_parameter`.
    static let minimum = 64
    /// 2^14 + 1: the largest plaintext of a TLS 1.3 protected record.
    static let maximum = (1 << 14) + 1

    /// Reads a peer's value: below 64 is `illegal_parameter`; above 2^14 + 1 means no more than
    /// the protocol allows (RFC 8449 §4: larger values are capped, not refused).
    static func peerValue(_ extensions: Extensions) throws(TLSError) -> Int? {
        guard let value = try extensions.decode(.recordSizeLimit, { r throws(DecodeError) in Int(try r.readUInt16()) }) else { return nil }
        guard value >= minimum else { throw TLSError(.illegalParameter, "record_size_limit \(value) is below 64") }
        return min(value, maximum)
    }

    /// Our configured value, clamped into the range the extension allows.
    static func local(_ configured: Int) -> Int { max(minimum, min(maximum, configured)) }
}

/// Codecs for the extension bodies Quiver understands, one place each.
enum ExtensionCodec {
    static func readUInt16List(_ r: inout ByteReader, minCount: Int = 1) throws(DecodeError) -> [UInt16] {
        var list = try r.readLengthPrefixed(2)
        guard list.remaining % 2 == 0, list.remaining / 2 >= minCount else { throw DecodeError(.invalidValue, "bad u16 list length") }
        var out: [UInt16] = []
        while !list.isAtEnd { out.append(try list.readUInt16()) }
        return out
    }

    static func writeUInt16List(_ w: inout ByteWriter, _ values: [UInt16]) {
        w.writeLengthPrefixed(2) { w in for v in values { w.writeUInt16(v) } }
    }

    /// `server_name` (RFC 6066 §3): returns the host_name, if any.
    static func readServerName(_ r: inout ByteReader) throws(DecodeError) -> String? {
        var list = try r.readLengthPrefixed(2)
        guard !list.isAtEnd else { throw DecodeError(.invalidValue, "empty server_name list") }
        var host: String?
        while !list.isAtEnd {
            let type = try list.readUInt8()
            let name = try list.readLengthPrefixedBytes(2)
            if type == 0 {
                guard host == nil else { throw DecodeError(.invalidValue, "two host_name entries") }
                guard !name.isEmpty, name.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                    throw DecodeError(.invalidValue, "host_name is not printable ASCII")
                }
                host = String(decoding: name, as: UTF8.self)
            }
        }
        return host
    }

    static func writeServerName(_ w: inout ByteWriter, _ host: String) {
        w.writeLengthPrefixed(2) { w in
            w.writeUInt8(0)
            w.writeLengthPrefixedBytes(2, Array(host.utf8))
        }
    }

    /// ALPN (RFC 7301 §3.1): a non-empty list of non-empty protocol names.
    static func readALPN(_ r: inout ByteReader) throws(DecodeError) -> [[UInt8]] {
        var list = try r.readLengthPrefixed(2)
        var out: [[UInt8]] = []
        while !list.isAtEnd {
            let name = try list.readLengthPrefixedBytes(1)
            guard !name.isEmpty else { throw DecodeError(.invalidValue, "empty ALPN protocol name") }
            out.append(name)
        }
        guard !out.isEmpty else { throw DecodeError(.invalidValue, "empty ALPN list") }
        return out
    }

    static func writeALPN(_ w: inout ByteWriter, _ protocols: [[UInt8]]) {
        w.writeLengthPrefixed(2) { w in for p in protocols { w.writeLengthPrefixedBytes(1, p) } }
    }

    /// `key_share` in a ClientHello: a list of (group, share).
    static func readClientKeyShares(_ r: inout ByteReader) throws(DecodeError) -> [(NamedGroup, [UInt8])] {
        var list = try r.readLengthPrefixed(2)
        var out: [(NamedGroup, [UInt8])] = []
        while !list.isAtEnd {
            let group = NamedGroup(rawValue: try list.readUInt16())
            let share = try list.readLengthPrefixedBytes(2)
            guard !share.isEmpty else { throw DecodeError(.invalidValue, "empty key share") }
            out.append((group, share))
        }
        return out
    }

    /// `pre_shared_key` in a ClientHello (RFC 8446 §4.2.11).
    static func readOfferedPSKs(_ r: inout ByteReader) throws(DecodeError) -> (identities: [(identity: [UInt8], obfuscatedAge: UInt32)], binders: [[UInt8]]) {
        var ids = try r.readLengthPrefixed(2)
        var identities: [(identity: [UInt8], obfuscatedAge: UInt32)] = []
        while !ids.isAtEnd {
            let identity = try ids.readLengthPrefixedBytes(2)
            guard !identity.isEmpty else { throw DecodeError(.invalidValue, "empty PSK identity") }
            identities.append((identity, try ids.readUInt32()))
        }
        var list = try r.readLengthPrefixed(2)
        var binders: [[UInt8]] = []
        while !list.isAtEnd {
            let binder = try list.readLengthPrefixedBytes(1)
            guard binder.count >= 32 else { throw DecodeError(.invalidValue, "PSK binder shorter than 32 bytes") }
            binders.append(binder)
        }
        guard !identities.isEmpty, identities.count == binders.count else {
            throw DecodeError(.invalidValue, "PSK identities and binders do not pair up")
        }
        return (identities, binders)
    }
}

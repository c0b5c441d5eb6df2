internal import Crypto
public import QuiverCore

/// Everything a server needs to create an association from a COOKIE ECHO: RFC 9260 §5.1.3's
/// state cookie, which makes the server keep nothing between INIT and a valid COOKIE ECHO.
struct SCTPCookieState: Hashable, Sendable {
    var localTag: UInt32
    var peerTag: UInt32
    var localInitialTSN: UInt32
    var peerInitialTSN: UInt32
    var peerWindow: UInt32
    /// Streams each side may send on: the lesser of one side's outbound and the other's
    /// inbound count (§5.1.1).
    var localOutboundStreams: UInt16
    var localInboundStreams: UInt16
    var localPort: UInt16
    var peerPort: UInt16
    /// When the INIT ACK was made (the jar's clock, nanoseconds).
    var created: UInt64
    /// Both sides listed RE-CONFIG in Supported Extensions (RFC 6525 §5.1.1).
    var streamReset: Bool
    /// Both sides offered PR-SCTP (RFC 3758 §3.3.2; with I-DATA, I-FORWARD-TSN too).
    var partialReliability = false
    /// Both sides listed I-DATA (RFC 8260 §2.2.1).
    var messageInterleaving = false
    /// SCTP-AUTH (RFC 4895): our RANDOM in the INIT ACK and the peer's key vector from its
    /// INIT, when both offered it (empty otherwise). Never an endpoint pair shared key (§6.3).
    var localRandom: [UInt8] = []
    var peerAuth: [UInt8] = []

    /// The fixed fields; the AUTH ones follow with their lengths.
    static let encodedSize = 5 * 4 + 4 * 2 + 8 + 1
}

/// Makes and opens state cookies: the fields, then an HMAC-SHA256 over them under a secret
/// that never leaves the process. Jars sharing a secret open each other's cookies.
public struct SCTPCookieJar: Sendable {
    private let key: SymmetricKey
    /// How long a cookie is valid (RFC 9260 §15: Valid.Cookie.Life, 60 s).
    public var lifetime: Duration

    static let macSize = 32
    /// 3: the byte after `created` holds flags (bit 0 stream reset, bit 1 PR-SCTP, bit 2 I-DATA).
    private static let format: UInt8 = 3

    /// A jar with a fresh random secret, or with `secret` (32 bytes) to share cookies.
    public init(secret: [UInt8]? = nil, lifetime: Duration = .seconds(60), random: RandomSource = .system) {
        key = SymmetricKey(data: secret ?? random.bytes(32))
        self.lifetime = lifetime
    }

    func make(_ state: SCTPCookieState) -> [UInt8] {
        var writer = ByteWriter(capacity: 1 + SCTPCookieState.encodedSize + Self.macSize)
        writer.writeUInt8(Self.format)
        writer.writeUInt32(state.localTag)
        writer.writeUInt32(state.peerTag)
        writer.writeUInt32(state.localInitialTSN)
        writer.writeUInt32(state.peerInitialTSN)
        writer.writeUInt32(state.peerWindow)
        writer.writeUInt16(state.localOutboundStreams)
        writer.writeUInt16(state.localInboundStreams)
        writer.writeUInt16(state.localPort)
        writer.writeUInt16(state.peerPort)
        writer.writeUInt64(state.created)
        writer.writeUInt8((state.streamReset ? 1 : 0) | (state.partialReliability ? 2 : 0) | (state.messageInterleaving ? 4 : 0))
        writer.writeLengthPrefixedBytes(1, state.localRandom)
        writer.writeLengthPrefixedBytes(2, state.peerAuth)
        writer.writeBytes(HMAC<SHA256>.authenticationCode(for: writer.bytes, using: key))
        return writer.bytes
    }

    /// Why a COOKIE ECHO was refused.
    enum Refusal: Error, Equatable {
        /// Not ours, or altered: dropped silently (§5.1.5 step 2).
        case invalid
        /// Ours but too old: answered with a Stale Cookie error (§5.1.5 step 3); how long
        /// past its lifetime, in microseconds.
        case stale(microseconds: UInt32, peerTag: UInt32)
    }

    func open(_ cookie: [UInt8], now: Instant) throws(Refusal) -> SCTPCookieState {
        let fieldsEnd = cookie.count - Self.macSize
        guard fieldsEnd >= 1 + SCTPCookieState.encodedSize + 3, cookie[0] == Self.format,
              HMAC<SHA256>.isValidAuthenticationCode(cookie[fieldsEnd...], authenticating: cookie[..<fieldsEnd], using: key)
        else { throw .invalid }
        var reader = ByteReader(cookie, in: 1..<fieldsEnd)
        // Ours (the MAC is valid): the reads cannot fail.
        guard var state = try? SCTPCookieState(
            localTag: reader.readUInt32(), peerTag: reader.readUInt32(), localInitialTSN: reader.readUInt32(),
            peerInitialTSN: reader.readUInt32(), peerWindow: reader.readUInt32(),
            localOutboundStreams: reader.readUInt16(), localInboundStreams: reader.readUInt16(),
            localPort: reader.readUInt16(), peerPort: reader.readUInt16(), created: reader.readUInt64(),
            streamReset: false),
            let flags = try? reader.readUInt8(),
            let localRandom = try? reader.readLengthPrefixedBytes(1), let peerAuth = try? reader.readLengthPrefixedBytes(2)
        else { throw .invalid }
        state.streamReset = flags & 1 != 0
        state.partialReliability = flags & 2 != 0
        state.messageInterleaving = flags & 4 != 0
        state.localRandom = localRandom
        state.peerAuth = peerAuth
        let age = Int64(clamping: now.nanoseconds &- state.created)
        guard state.created <= now.nanoseconds else { throw .invalid }
        let excess = age - lifetime.nanosecondsClamped
        if excess > 0 {
            throw .stale(microseconds: UInt32(clamping: excess / 1000), peerTag: state.peerTag)
        }
        return state
    }
}

import Crypto
public import QuiverCore

/// The stateless first step of a DTLS 1.2 server (RFC 6347 §4.2.1), as OpenSSL's
/// `DTLSv1_listen`: a ClientHello without a valid cookie is answered with a HelloVerifyRequest
/// carrying one, and no state is kept; only a ClientHello that returns a valid cookie from the
/// same address and port is worth a ``DTLSConnection``.
///
/// The cookie is `time ‖ HMAC-SHA256(secret, time ‖ address ‖ ClientHello without its cookie)`
/// truncated to 16 bytes, `time` in seconds (4 bytes): it is refused after ``lifetime``, from
/// another address, or for another ClientHello. Gates built from the same secret accept each
/// other's cookies (processes behind one port, restarts). Replays of a valid cookie within its
/// lifetime from the same address are the caller's to refuse (a listener routes that address
/// to the connection it already has).
public struct DTLSCookieGate: Sendable {
    /// What to do with a datagram from an address that has no connection.
    public enum Decision: Sendable, Equatable {
        /// A ClientHello with a valid cookie: create a server ``DTLSConnection`` and feed it
        /// the datagram.
        case accept
        /// Send this datagram (a HelloVerifyRequest) back to the sender; keep nothing.
        case helloVerifyRequest([UInt8])
        /// Not a ClientHello we answer (malformed, fragmented, another protocol): ignore it.
        case drop
    }

    private let key: SymmetricKey
    /// How long a cookie stays valid (a client answers within a round trip).
    public var lifetime: UInt32 = 60
    /// Real time, for the cookie's timestamp.
    public var clock: WallClock = .system

    /// A gate with `secret` (32 random bytes by default; share it between processes serving one port).
    public init(secret: [UInt8] = RandomSource.system.bytes(32)) {
        key = SymmetricKey(data: secret)
    }

    /// Decides what to do with `datagram` from `peer`.
    public func check(_ datagram: [UInt8], from peer: SocketAddress) -> Decision {
        guard let hello = Self.parseClientHello(datagram) else { return .drop }
        let now = UInt32(truncatingIfNeeded: clock.millisecondsSinceEpoch() / 1000)
        let offered = Array(hello.cookie)
        if offered.count == 20 {
            let time = offered[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            if now >= time, now - time <= lifetime,
               constantTimeEqual(offered, cookie(time: time, peer: peer, hello: hello.withoutCookie)) {
                return .accept
            }
        }
        return .helloVerifyRequest(Self.helloVerifyRequest(
            cookie: cookie(time: now, peer: peer, hello: hello.withoutCookie), recordSequence: hello.recordSequence))
    }

    private func cookie(time: UInt32, peer: SocketAddress, hello: [UInt8]) -> [UInt8] {
        var input = withUnsafeBytes(of: time.bigEndian) { Array($0) }
        input += Array("\(peer)".utf8)
        input.append(0)
        input += hello
        let mac = HMAC<SHA256>.authenticationCode(for: input, using: key)
        return Array(input.prefix(4)) + Array(mac).prefix(16)
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// The ClientHello of the datagram's first record, whole in one fragment; `nil` otherwise.
    static func parseClientHello(_ datagram: [UInt8]) -> (cookie: ArraySlice<UInt8>, withoutCookie: [UInt8], recordSequence: UInt64)? {
        let h = DTLSConnection.headerLength
        guard datagram.count >= h + 12, datagram[0] == 22, datagram[1] == 0xFE, datagram[3] == 0, datagram[4] == 0 else { return nil }
        let recordLength = Int(datagram[11]) << 8 | Int(datagram[12])
        guard datagram.count >= h + recordLength, recordLength >= 12 else { return nil }
        let m = h
        let length = Int(datagram[m + 1]) << 16 | Int(datagram[m + 2]) << 8 | Int(datagram[m + 3])
        let fragmentOffset = Int(datagram[m + 6]) << 16 | Int(datagram[m + 7]) << 8 | Int(datagram[m + 8])
        let fragmentLength = Int(datagram[m + 9]) << 16 | Int(datagram[m + 10]) << 8 | Int(datagram[m + 11])
        guard datagram[m] == HandshakeType.clientHello.rawValue, fragmentOffset == 0, fragmentLength == length,
              12 + length <= recordLength
        else { return nil }
        let body = datagram[(m + 12)..<(m + 12 + length)]
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
        let sequence = datagram[5..<11].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (cookie, withoutCookie, sequence)
    }

    /// A HelloVerifyRequest record: DTLS 1.0 as the record and server version (RFC 6347 §4.2.1
    /// says so for any version to come), message_seq 0, and the ClientHello's record sequence
    /// number (so that several HelloVerifyRequests never repeat one).
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

import Crypto
public import QuiverCore

/// The Retry Integrity Tag (RFC 9001 §5.8; RFC 9369 §3.3.3): AES-128-GCM over the Retry
/// pseudo-packet (the original Destination Connection ID, length-prefixed, then the Retry
/// packet without its tag), with a fixed per-version key and nonce and an empty plaintext.
@_spi(Wire) public enum RetryIntegrity {
    /// The 16-byte tag for a Retry packet.
    public static func tag(retryWithoutTag: [UInt8], originalDestinationConnectionID odcid: [UInt8], version: QUICVersion) -> [UInt8] {
        var pseudo = [UInt8(odcid.count)] + odcid
        pseudo.append(contentsOf: retryWithoutTag)
        guard let nonce = try? AES.GCM.Nonce(data: version.retryIntegrityNonce),
              let box = try? AES.GCM.seal([UInt8](), using: SymmetricKey(data: version.retryIntegrityKey), nonce: nonce, authenticating: pseudo)
        else { return [] }
        return Array(box.tag)
    }

    /// Checks a received Retry packet (the whole packet, tag last) against the Destination
    /// Connection ID the client first sent. Compares in constant time.
    public static func isValid(retryPacket: [UInt8], originalDestinationConnectionID odcid: [UInt8], version: QUICVersion) -> Bool {
        guard retryPacket.count > 16 else { return false }
        let expected = tag(retryWithoutTag: Array(retryPacket.dropLast(16)), originalDestinationConnectionID: odcid, version: version)
        guard expected.count == 16 else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(expected, retryPacket.suffix(16)) { diff |= a ^ b }
        return diff == 0
    }
}

/// Stateless reset (RFC 9000 §10.3): tokens derived from a static key, detection, and the
/// reset packet itself.
@_spi(Wire) public enum StatelessReset {
    /// The token for a connection ID: HMAC-SHA256(key, connection ID) truncated to 16 bytes
    /// (RFC 9000 §10.3.2). Endpoints sharing `key` (prefork workers, a cluster) give the same
    /// token for a connection ID, so any of them can reset a connection another lost.
    public static func token(key: [UInt8], connectionID: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: connectionID, using: SymmetricKey(data: key)).prefix(16))
    }

    /// Whether `datagram` ends with one of `tokens` (RFC 9000 §10.3.1), compared in constant time.
    public static func matches(datagram: [UInt8], tokens: [[UInt8]]) -> Bool {
        guard datagram.count >= 21 else { return false }
        let tail = datagram.suffix(16)
        var found = false
        for token in tokens where token.count == 16 {
            var diff: UInt8 = 0
            for (a, b) in zip(token, tail) { diff |= a ^ b }
            found = found || diff == 0
        }
        return found
    }

    /// A stateless reset of `length` bytes (at least 21, RFC 9000 §10.3): a short-header-looking
    /// first byte, unpredictable bytes, then the token. Callers keep it smaller than the
    /// packet that triggered it (§10.3.3) to avoid loops.
    public static func packet(token: [UInt8], length: Int, random: RandomSource) -> [UInt8] {
        precondition(token.count == 16, "stateless reset token must be 16 bytes")
        var bytes = random.bytes(max(21, length) - 16)
        bytes[0] = 0x40 | (bytes[0] & 0x3f)
        return bytes + token
    }
}

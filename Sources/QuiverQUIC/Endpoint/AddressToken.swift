import Crypto
public import QuiverCore

/// Address validation tokens (RFC 9000 §8.1.2–§8.1.4): sealed by the server with AES-256-GCM
/// under a key derived from a secret that processes of one server can share, so that any of
/// them accepts a token another issued. A token binds the client's address and the QUIC
/// version of the connection that got it — a token is good only for Initials in that version
/// (RFC 9369 §5); a Retry token also carries the connection IDs the server must echo in its
/// transport parameters.
///
/// Layout: 12-byte nonce ‖ AES-GCM(kind ‖ issued-at ms ‖ ODCID ‖ Retry SCID) ‖ tag, with the
/// client's address (and, for Retry tokens, its port) and the version as associated data.
public struct AddressTokenSealer: Sendable {
    /// What a valid token proves.
    public enum Token: Sendable, Hashable {
        /// From our Retry: the client's original DCID and the SCID of the Retry packet.
        case retry(originalDestinationConnectionID: ConnectionID, retrySourceConnectionID: ConnectionID)
        /// From a NEW_TOKEN frame of an earlier connection.
        case newToken
    }

    private let key: SymmetricKey
    private let clock: WallClock
    private let random: RandomSource

    /// Creates a sealer from a secret (any length; 32 random bytes recommended).
    public init(secret: [UInt8], clock: WallClock = .system, random: RandomSource = .system) {
        key = SymmetricKey(data: SHA256.hash(data: Array("quiver address token".utf8) + secret))
        self.clock = clock
        self.random = random
    }

    /// A Retry token for a client at `address`, answering its Initial in `version`.
    public func retryToken(for address: SocketAddress, version: QUICVersion, originalDestinationConnectionID: ConnectionID,
                           retrySourceConnectionID: ConnectionID) -> [UInt8] {
        var plaintext = ByteWriter(capacity: 64)
        plaintext.writeUInt8(1)
        plaintext.writeUInt64(clock.millisecondsSinceEpoch())
        plaintext.writeLengthPrefixedBytes(1, originalDestinationConnectionID.bytes)
        plaintext.writeLengthPrefixedBytes(1, retrySourceConnectionID.bytes)
        return seal(plaintext.bytes, associatedData: Self.associatedData(address, includePort: true, version: version))
    }

    /// A NEW_TOKEN token for a client at `address` (bound to its IP address, not its port,
    /// which changes between connections) on a connection in `version` — after compatible
    /// version negotiation, the negotiated one (RFC 9369 §5).
    public func newToken(for address: SocketAddress, version: QUICVersion) -> [UInt8] {
        var plaintext = ByteWriter(capacity: 16)
        plaintext.writeUInt8(2)
        plaintext.writeUInt64(clock.millisecondsSinceEpoch())
        return seal(plaintext.bytes, associatedData: Self.associatedData(address, includePort: false, version: version))
    }

    /// Opens a token from a client at `address` in an Initial of `version`; `nil` when it is
    /// forged, for another address or another version, or older than its lifetime.
    public func open(_ token: [UInt8], from address: SocketAddress, version: QUICVersion, retryLifetime: Duration,
                     newTokenLifetime: Duration) -> Token? {
        guard token.count >= 12 + 9 + 16 else { return nil }
        let now = clock.millisecondsSinceEpoch()
        for includePort in [true, false] {
            guard let plaintext = open(token, associatedData: Self.associatedData(address, includePort: includePort, version: version)) else { continue }
            var reader = ByteReader(plaintext)
            guard let kind = try? reader.readUInt8(), let issued = try? reader.readUInt64() else { return nil }
            let age = now >= issued ? now - issued : 0
            switch (kind, includePort) {
            case (1, true):
                guard age <= UInt64(retryLifetime.nanosecondsClamped / 1_000_000),
                      let odcid = try? reader.readLengthPrefixedBytes(1), let rscid = try? reader.readLengthPrefixedBytes(1),
                      let original = ConnectionID(odcid), let retry = ConnectionID(rscid)
                else { return nil }
                return .retry(originalDestinationConnectionID: original, retrySourceConnectionID: retry)
            case (2, false):
                return age <= UInt64(newTokenLifetime.nanosecondsClamped / 1_000_000) ? .newToken : nil
            default:
                return nil
            }
        }
        return nil
    }

    private static func associatedData(_ address: SocketAddress, includePort: Bool, version: QUICVersion) -> [UInt8] {
        var data = address.addressBytes
        if includePort { data += [UInt8(address.port >> 8), UInt8(address.port & 0xff)] }
        let raw = version.rawValue
        data += [UInt8(raw >> 24), UInt8(raw >> 16 & 0xff), UInt8(raw >> 8 & 0xff), UInt8(raw & 0xff)]
        return data
    }

    private func seal(_ plaintext: [UInt8], associatedData: [UInt8]) -> [UInt8] {
        let nonceBytes = random.bytes(12)
        guard let nonce = try? AES.GCM.Nonce(data: nonceBytes),
              let box = try? AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: associatedData)
        else { return [] }
        return nonceBytes + Array(box.ciphertext) + Array(box.tag)
    }

    private func open(_ token: [UInt8], associatedData: [UInt8]) -> [UInt8]? {
        guard let nonce = try? AES.GCM.Nonce(data: token.prefix(12)),
              let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: token.dropFirst(12).dropLast(16), tag: token.suffix(16)),
              let plaintext = try? AES.GCM.open(box, using: key, authenticating: associatedData)
        else { return nil }
        return Array(plaintext)
    }
}

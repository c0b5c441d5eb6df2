import CQuiverCrypto
public import QuiverCore
public import QuiverTLS

/// The keys protecting packets in one direction at one encryption level: the AEAD key and IV
/// (the same nonce rule as TLS records, with the packet number as the sequence number,
/// RFC 9001 §5.3) and the header-protection key.
@_spi(Wire) public struct PacketKey: Sendable {
    /// The secret these keys derive from (kept for key updates).
    public let secret: TrafficSecret
    /// The QUIC version (it selects the HKDF labels).
    public let version: QUICVersion
    let aead: AEADKey
    let headerProtection: HeaderProtectionKey

    /// Derives `quic key`, `quic iv` and `quic hp` (or the `quicv2` labels) from `secret`.
    public init(secret: TrafficSecret, version: QUICVersion) {
        self.init(secret: secret, version: version, headerProtection: nil)
    }

    private init(secret: TrafficSecret, version: QUICVersion, headerProtection: HeaderProtectionKey?) {
        self.secret = secret
        self.version = version
        let hash = secret.suite.hash ?? .sha256
        let prefix = version.labelPrefix
        let key = hash.expandLabel(secret: secret.secret, label: prefix + "key", context: [], length: secret.suite.keyLength)
        let iv = hash.expandLabel(secret: secret.secret, label: prefix + "iv", context: [], length: 12)
        aead = AEADKey(suite: secret.suite, key: key, iv: iv)
        self.headerProtection = headerProtection ?? HeaderProtectionKey(
            suite: secret.suite, key: hash.expandLabel(secret: secret.secret, label: prefix + "hp", context: [], length: secret.suite.keyLength))
    }

    /// The keys of the next key phase (RFC 9001 §6.1): a new secret from `quic ku`, new AEAD
    /// key and IV; the header-protection key does not change.
    public func nextPhase() -> PacketKey {
        let hash = secret.suite.hash ?? .sha256
        let next = hash.expandLabel(secret: secret.secret, label: version.labelPrefix + "ku", context: [], length: hash.length)
        return PacketKey(secret: TrafficSecret(suite: secret.suite, secret: next), version: version, headerProtection: headerProtection)
    }

    /// The Initial keys for both directions, from the client's first Destination Connection ID
    /// (RFC 9001 §5.2; RFC 9369 §3.3.1).
    public static func initial(version: QUICVersion, destinationConnectionID dcid: [UInt8]) -> (client: PacketKey, server: PacketKey) {
        let h = TLSHash.sha256
        let initialSecret = h.extract(salt: version.initialSalt, ikm: dcid)
        let client = h.expandLabel(secret: initialSecret, label: "client in", context: [], length: 32)
        let server = h.expandLabel(secret: initialSecret, label: "server in", context: [], length: 32)
        return (
            PacketKey(secret: TrafficSecret(suite: .aes128GCMSHA256, secret: client), version: version),
            PacketKey(secret: TrafficSecret(suite: .aes128GCMSHA256, secret: server), version: version)
        )
    }

    /// Protects a packet in place (RFC 9001 §5.3–5.4).
    ///
    /// - Parameters:
    ///   - packet: the unprotected header (packet number included) followed by the plaintext
    ///     payload; on return, the protected packet with the tag appended.
    ///   - packetNumberOffset: where the packet-number field starts.
    ///   - packetNumber: the full packet number (the nonce input).
    /// The first byte's low 2 bits must give the packet-number length, and the payload must be
    /// long enough that 4 bytes after the packet-number field's start plus 16 bytes of sample
    /// exist (RFC 9001 §5.4.2); callers pad to guarantee it.
    public func protect(_ packet: inout [UInt8], packetNumberOffset: Int, packetNumber: UInt64) {
        packet.append(contentsOf: repeatElement(0, count: AEADKey.tagLength))
        packet.withUnsafeMutableBytes { protect(sealing: $0, packetNumberOffset: packetNumberOffset, packetNumber: packetNumber) }
    }

    /// Protects a packet in place in raw memory, the tag written over its last 16 bytes:
    /// `packet` is the unprotected header and plaintext payload followed by room for the tag
    /// (its contents are overwritten). The requirements of
    /// ``protect(_:packetNumberOffset:packetNumber:)`` apply.
    /// ``protect(sealing:packetNumberOffset:packetNumber:)`` through an exclusive access, for a
    /// key stored in a class: a non-mutating call on such a key first copies it (its secret and
    /// two cipher contexts retained and released, for every packet); this one runs in place.
    mutating func protectInPlace(sealing packet: UnsafeMutableRawBufferPointer, packetNumberOffset: Int, packetNumber: UInt64) {
        protect(sealing: packet, packetNumberOffset: packetNumberOffset, packetNumber: packetNumber)
    }

    public func protect(sealing packet: UnsafeMutableRawBufferPointer, packetNumberOffset: Int, packetNumber: UInt64) {
        let pnLength = Int(packet[0] & 0x03) + 1
        let payloadOffset = packetNumberOffset + pnLength
        precondition(packet.count >= payloadOffset + AEADKey.tagLength, "packet shorter than its header and tag")
        aead.seal(packet, payloadOffset: payloadOffset, length: packet.count - payloadOffset - AEADKey.tagLength, sequence: packetNumber)
        let sampleOffset = packetNumberOffset + 4
        precondition(sampleOffset + 16 <= packet.count, "packet too short to sample for header protection")
        let mask = headerProtection.mask(sample: packet.baseAddress! + sampleOffset)
        packet[0] ^= mask[0] & (packet[0] & 0x80 != 0 ? 0x0f : 0x1f)
        for i in 0..<pnLength { packet[packetNumberOffset + i] ^= mask[1 + i] }
    }

    /// Removes header protection and decrypts one packet, in a copy: for tests and tools. The
    /// receive path uses ``unprotect(inPlace:packetNumberOffset:largestReceived:)``.
    ///
    /// - Parameters:
    ///   - packet: the protected packet (only this packet: a long-header packet is cut at its
    ///     Length field by the caller).
    ///   - packetNumberOffset: where the packet-number field starts.
    ///   - largestReceived: the largest packet number received in this space, to expand the
    ///     truncated number (RFC 9000 §A.3); `nil` before any.
    /// - Returns: the unprotected first byte, the full packet number, the header (as
    ///   authenticated) and the payload; `nil` when the packet is too short or fails
    ///   authentication (such packets are dropped, RFC 9001 §5.5).
    public func unprotect(_ packet: [UInt8], packetNumberOffset: Int, largestReceived: UInt64?) -> UnprotectedPacket? {
        var bytes = packet
        guard let header = bytes.withUnsafeMutableBytes({
            unprotect(inPlace: $0, packetNumberOffset: packetNumberOffset, largestReceived: largestReceived)
        }) else { return nil }
        return UnprotectedPacket(firstByte: header.firstByte, packetNumber: header.packetNumber, header: Array(bytes[..<header.length]),
                                 payload: Array(bytes[header.length..<(bytes.count - AEADKey.tagLength)]))
    }

    /// Removes header protection and decrypts one packet where it lies: afterwards the header
    /// is unmasked and `packet[header.length ..< packet.count - 16]` is the plaintext payload.
    ///
    /// - Parameters:
    ///   - packet: the protected packet, and only it (a long-header packet cut at its Length).
    ///   - packetNumberOffset: where the packet-number field starts.
    ///   - largestReceived: the largest packet number received in this space (RFC 9000 §A.3).
    /// - Returns: the unmasked header's fields; `nil` when the packet is too short or fails
    ///   authentication (the packet's bytes are then unspecified).
    public func unprotect(inPlace packet: UnsafeMutableRawBufferPointer, packetNumberOffset: Int, largestReceived: UInt64?) -> UnmaskedHeader? {
        guard let header = removeHeaderProtection(packet, packetNumberOffset: packetNumberOffset, largestReceived: largestReceived),
              open(packet, header: header)
        else { return nil }
        return header
    }

    /// The first step of ``unprotect(inPlace:packetNumberOffset:largestReceived:)``: removes
    /// header protection only (RFC 9001 §5.4), in place, so that the caller can pick the
    /// payload key by the key phase bit (§6): header protection keys do not change with key
    /// updates.
    ///
    /// - Returns: the unmasked first byte, the full packet number and the header's length;
    ///   `nil` (and the packet untouched) when it is too short to sample.
    public func removeHeaderProtection(_ packet: UnsafeMutableRawBufferPointer, packetNumberOffset: Int,
                                       largestReceived: UInt64?) -> UnmaskedHeader? {
        let sampleOffset = packetNumberOffset + 4
        guard packetNumberOffset >= 1, sampleOffset + 16 <= packet.count else { return nil }
        let mask = headerProtection.mask(sample: packet.baseAddress! + sampleOffset)
        let first = packet[0] ^ (mask[0] & (packet[0] & 0x80 != 0 ? 0x0f : 0x1f))
        packet[0] = first
        let pnLength = Int(first & 0x03) + 1
        var truncated: UInt64 = 0
        for i in 0..<pnLength {
            packet[packetNumberOffset + i] ^= mask[1 + i]
            truncated = truncated << 8 | UInt64(packet[packetNumberOffset + i])
        }
        let pn = PacketNumber.decode(truncated: truncated, length: pnLength, largestReceived: largestReceived)
        return UnmaskedHeader(firstByte: first, packetNumber: pn, length: packetNumberOffset + pnLength)
    }

    /// The second step of ``unprotect(inPlace:packetNumberOffset:largestReceived:)``:
    /// authenticates and decrypts the payload after `header` with this key, in place;
    /// `false` when authentication fails.
    public func open(_ packet: UnsafeMutableRawBufferPointer, header: UnmaskedHeader) -> Bool {
        let payload = UnsafeMutableRawBufferPointer(rebasing: packet[header.length...])
        return aead.open(UnsafeRawBufferPointer(payload), into: payload, sequence: header.packetNumber,
                         additionalData: UnsafeRawBufferPointer(rebasing: packet[..<header.length]))
    }
}

/// A packet header whose protection was removed in place
/// (``PacketKey/removeHeaderProtection(_:packetNumberOffset:largestReceived:)``).
@_spi(Wire) public struct UnmaskedHeader: Sendable, Hashable {
    /// The first byte with its protected bits restored (reserved bits, key phase, PN length).
    public var firstByte: UInt8
    /// The full packet number.
    public var packetNumber: UInt64
    /// The header's length, packet number included: the AEAD's associated data, after which
    /// the payload starts.
    public var length: Int

    /// Short header: the key phase bit (RFC 9001 §6).
    public var keyPhase: Bool { firstByte & 0x04 != 0 }

    /// The reserved bits, which must be zero after removing protection (RFC 9000 §17.2, §17.3.1):
    /// nonzero is a PROTOCOL_VIOLATION.
    public var reservedBits: UInt8 { firstByte & 0x80 != 0 ? (firstByte >> 2) & 0x03 : (firstByte >> 3) & 0x03 }
}

/// A packet after header protection is removed and the payload decrypted.
@_spi(Wire) public struct UnprotectedPacket: Sendable, Hashable {
    /// The first byte with its protected bits restored (reserved bits, key phase, PN length).
    public var firstByte: UInt8
    /// The full packet number.
    public var packetNumber: UInt64
    /// The header bytes as authenticated (packet number included).
    public var header: [UInt8]
    /// The decrypted payload (frames).
    public var payload: [UInt8]

    /// Short header: the key phase bit (RFC 9001 §6).
    public var keyPhase: Bool { firstByte & 0x04 != 0 }

    /// The reserved bits, which must be zero after removing protection (RFC 9000 §17.2, §17.3.1):
    /// nonzero is a PROTOCOL_VIOLATION.
    public var reservedBits: UInt8 { firstByte & 0x80 != 0 ? (firstByte >> 2) & 0x03 : (firstByte >> 3) & 0x03 }
}

/// Packet-number encoding and decoding (RFC 9000 §17.1, Appendix A.2 and A.3).
@_spi(Wire) public enum PacketNumber {
    /// The number of bytes (1–4) needed to send `packetNumber` when the peer has acknowledged
    /// up to `largestAcknowledged` (Appendix A.2): enough for twice the unacknowledged range.
    public static func encodingLength(_ packetNumber: UInt64, largestAcknowledged: UInt64?) -> Int {
        let range: UInt64 = largestAcknowledged.map { packetNumber > $0 ? packetNumber - $0 : 1 } ?? (packetNumber + 1)
        let bits = 64 - (range * 2).leadingZeroBitCount  // bits needed for 2 * range
        return min(4, max(1, (bits + 7) / 8))
    }

    /// Expands a truncated packet number to the value closest to the next expected one
    /// (Appendix A.3).
    public static func decode(truncated: UInt64, length: Int, largestReceived: UInt64?) -> UInt64 {
        let expected = (largestReceived ?? UInt64.max) &+ 1
        let bits = UInt64(length * 8)
        let window: UInt64 = 1 << bits
        let halfWindow = window / 2
        let mask = window - 1
        let candidate = (expected & ~mask) | truncated
        if expected >= halfWindow, candidate <= expected - halfWindow, candidate < (1 << 62) - window {
            return candidate + window
        }
        if candidate > expected + halfWindow, candidate >= window {
            return candidate - window
        }
        return candidate
    }
}

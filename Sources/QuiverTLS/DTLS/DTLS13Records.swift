/// DTLS 1.3's protected records (RFC 9147 §4): the unified header, AEAD protection with the
/// TLS 1.3 nonce, and the record sequence number masked like a QUIC packet number.
///
/// ```
/// 0 0 1 C S L E E   sequence (8 or 16 bits, masked)   [length (16 bits)]   encrypted record
/// ```
/// We send S = 1, L = 1 and C = 1 with the peer's Connection ID when one was agreed (RFC 9147
/// §9), so the header is 5 bytes plus the ID; we read every form.
struct DTLS13Key {
    let aead: AEADKey
    let sequenceMask: HeaderProtectionKey
    /// The secret, for the next generation after a KeyUpdate.
    let secret: TrafficSecret

    init(_ secret: TrafficSecret) {
        self.secret = secret
        aead = AEADKey(secret)
        sequenceMask = HeaderProtectionKey(suite: secret.suite, key: secret.sequenceNumberKey())
    }

    /// Bytes a protected record adds to its content: the 5-byte header, the content type and the tag.
    static let overhead = 5 + 1 + AEADKey.tagLength

    /// Protects `content` of `type` as record `sequence` of `epoch`, with `connectionID` (the
    /// peer's; empty: none) in the header.
    func seal(type: UInt8, _ content: ArraySlice<UInt8>, epoch: UInt16, sequence: UInt64, connectionID: [UInt8]) -> [UInt8] {
        let length = content.count + 1 + AEADKey.tagLength
        let header = 5 + connectionID.count
        var out: [UInt8] = [0x2C | (connectionID.isEmpty ? 0 : 0x10) | UInt8(epoch & 3)]
        out.reserveCapacity(header + length)
        out += connectionID
        out += [UInt8(truncatingIfNeeded: sequence >> 8), UInt8(truncatingIfNeeded: sequence), UInt8(length >> 8), UInt8(truncatingIfNeeded: length)]
        out.append(contentsOf: content)
        out.append(type)  // TLSInnerPlaintext: content, type, no padding (RFC 8446 §5.2)
        aead.sealInPlace(&out, payloadOffset: header, sequence: sequence)
        // The ciphertext is at least 17 bytes (type and tag), so the 16-byte sample exists.
        let mask = out.withUnsafeBytes { sequenceMask.mask(sample: $0.baseAddress! + header) }
        out[header - 4] ^= mask[0]
        out[header - 3] ^= mask[1]
        return out
    }
}

/// One epoch we read: its key and its replay window.
struct DTLS13ReadEpoch {
    let key: DTLS13Key
    var replay = ReplayWindow()
}

/// A record's number, as ACKs name it (RFC 9147 §7).
struct DTLSRecordNumber: Hashable {
    var epoch: UInt64
    var sequence: UInt64
}

extension DTLSRecordNumber {
    /// An ACK's content: the record numbers, each 16 bytes, in increasing order.
    static func encodeACK(_ numbers: [DTLSRecordNumber]) -> [UInt8] {
        let sorted = numbers.sorted { ($0.epoch, $0.sequence) < ($1.epoch, $1.sequence) }
        var out: [UInt8] = [UInt8(truncatingIfNeeded: sorted.count * 16 >> 8), UInt8(truncatingIfNeeded: sorted.count * 16)]
        for number in sorted {
            withUnsafeBytes(of: number.epoch.bigEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: number.sequence.bigEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The record numbers of an ACK's content; `nil` when it is malformed.
    static func decodeACK(_ content: [UInt8]) -> [DTLSRecordNumber]? {
        guard content.count >= 2 else { return nil }
        let length = Int(content[0]) << 8 | Int(content[1])
        guard length % 16 == 0, content.count == 2 + length else { return nil }
        var numbers: [DTLSRecordNumber] = []
        var offset = 2
        while offset < content.count {
            let epoch = content[offset..<(offset + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let sequence = content[(offset + 8)..<(offset + 16)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            numbers.append(DTLSRecordNumber(epoch: epoch, sequence: sequence))
            offset += 16
        }
        return numbers
    }
}

/// The full sequence number closest to `expected` whose low `bits` bits are `truncated`
/// (RFC 9147 §4.2.2, as QUIC decodes packet numbers, RFC 9000 §A.3).
func reconstructSequence(_ truncated: UInt64, bits: Int, expected: UInt64) -> UInt64 {
    let window = UInt64(1) << bits
    let half = window / 2
    let mask = window - 1
    let candidate = (expected & ~mask) | truncated
    if candidate + half <= expected && candidate < UInt64(1) << 48 - window {
        return candidate + window
    }
    if candidate > expected + half && candidate >= window {
        return candidate - window
    }
    return candidate
}

/// One field line of a field section as QPACK carries it (RFC 9204 §4.5): a name and a value,
/// pseudo-headers included. The public API speaks `HTTPTypes`; this is the wire's view.
struct FieldLine: Hashable, Sendable, CustomStringConvertible {
    /// The name, lowercase on the wire (HTTP/3 requires it, RFC 9114 §4.2).
    var name: String
    var value: String
    /// Never to be put in a dynamic table (RFC 9204 §7.1.3), as the `N` bit says.
    var neverIndexed = false

    init(_ name: String, _ value: String, neverIndexed: Bool = false) {
        self.name = name
        self.value = value
        self.neverIndexed = neverIndexed
    }

    var description: String { "\(name): \(value)" }
}

/// QPACK (RFC 9204) with a dynamic table of capacity 0: field sections are encoded with the
/// static table and literals only, and any reference to the dynamic table is an error. This is
/// what a peer must accept when we announce SETTINGS_QPACK_MAX_TABLE_CAPACITY = 0 (the
/// default), and it never blocks a stream.
enum QPACK {
    // MARK: - Field sections (RFC 9204 §4.5)

    /// Encodes `fields` as a field section: the prefix (Required Insert Count 0, Delta Base 0),
    /// then each field as an indexed static entry, a literal with a static name reference, or
    /// a literal with a literal name. Strings are Huffman-coded when that is shorter.
    static func encode(_ fields: [FieldLine]) -> [UInt8] {
        var output: [UInt8] = [0, 0]
        for field in fields {
            let name = Array(field.name.utf8), value = Array(field.value.utf8)
            if !field.neverIndexed, let index = staticIndex[StaticKey(name: field.name, value: field.value)] {
                encodeInteger(index, prefixBits: 6, flags: 0b1100_0000, into: &output)  // indexed, static (T = 1)
            } else if let index = staticNameIndex[field.name] {
                // Literal with a static name reference (01NT): T = 1, N as the field asks.
                encodeInteger(index, prefixBits: 4, flags: 0b0101_0000 | (field.neverIndexed ? 0b0010_0000 : 0), into: &output)
                encodeString(value, prefixBits: 7, flags: 0, into: &output)
            } else {
                // Literal with a literal name (001N).
                encodeString(name, prefixBits: 3, flags: 0b0010_0000 | (field.neverIndexed ? 0b0001_0000 : 0), into: &output)
                encodeString(value, prefixBits: 7, flags: 0, into: &output)
            }
        }
        return output
    }

    /// Decodes a field section; `maxSize` bounds the decoded size as RFC 9114 §4.2.2 counts it
    /// (name + value + 32 per field).
    ///
    /// - Throws: ``HTTP3Error`` `QPACK_DECOMPRESSION_FAILED` for malformed input or any
    ///   reference to the dynamic table (its capacity is 0), `H3_EXCESSIVE_LOAD` beyond `maxSize`.
    static func decode(_ bytes: [UInt8], maxSize: Int = 1 << 16) throws(HTTP3Error) -> [FieldLine] {
        var position = 0
        let requiredInsertCount = try decodeInteger(bytes, at: &position, prefixBits: 8)
        guard requiredInsertCount == 0 else { throw failed("Required Insert Count \(requiredInsertCount), but the dynamic table has capacity 0") }
        _ = try decodeInteger(bytes, at: &position, prefixBits: 7)  // sign and Delta Base: meaningless without a dynamic table
        var fields: [FieldLine] = []
        var size = 0
        while position < bytes.count {
            let first = bytes[position]
            let field: FieldLine
            if first & 0x80 != 0 {  // indexed field line
                guard first & 0x40 != 0 else { throw failed("indexed field line refers to the dynamic table") }
                field = try staticEntry(try decodeInteger(bytes, at: &position, prefixBits: 6))
            } else if first & 0x40 != 0 {  // literal with name reference
                guard first & 0x10 != 0 else { throw failed("literal field line refers to a dynamic table name") }
                let neverIndexed = first & 0x20 != 0
                let name = try staticEntry(try decodeInteger(bytes, at: &position, prefixBits: 4)).name
                field = FieldLine(name, try decodeString(bytes, at: &position, prefixBits: 7), neverIndexed: neverIndexed)
            } else if first & 0x20 != 0 {  // literal with literal name
                let neverIndexed = first & 0x10 != 0
                let name = try decodeString(bytes, at: &position, prefixBits: 3)
                field = FieldLine(name, try decodeString(bytes, at: &position, prefixBits: 7), neverIndexed: neverIndexed)
            } else {  // post-base forms (0001xxxx, 0000xxxx) exist only with a dynamic table
                throw failed("post-base field line refers to the dynamic table")
            }
            size += field.name.utf8.count + field.value.utf8.count + 32
            guard size <= maxSize else { throw HTTP3Error(.excessiveLoad, "field section larger than \(maxSize) bytes") }
            fields.append(field)
        }
        return fields
    }

    // MARK: - Encoder and decoder streams (RFC 9204 §4.3, §4.4)

    /// Checks instructions a peer sent on its encoder stream. With a table capacity of 0 the
    /// only valid one is Set Dynamic Table Capacity 0; returns how many bytes were complete
    /// instructions (the rest waits for more data).
    /// - Throws: `QPACK_ENCODER_STREAM_ERROR` for anything else.
    static func checkEncoderInstructions(_ bytes: [UInt8]) throws(HTTP3Error) -> Int {
        var position = 0
        while position < bytes.count {
            guard bytes[position] & 0xe0 == 0x20 else {
                throw HTTP3Error(.qpackEncoderStreamError, "insertion into a dynamic table of capacity 0")
            }
            guard integerIsComplete(bytes, at: position, prefixBits: 5) else { return position }  // wait for more
            let capacity: Int
            do throws(HTTP3Error) { capacity = try decodeInteger(bytes, at: &position, prefixBits: 5) } catch {
                throw HTTP3Error(.qpackEncoderStreamError, error.reason)
            }
            guard capacity == 0 else { throw HTTP3Error(.qpackEncoderStreamError, "dynamic table capacity \(capacity) exceeds 0") }
        }
        return position
    }

    /// Checks instructions a peer sent on its decoder stream (we never use the dynamic table,
    /// so there is nothing to acknowledge): Section Acknowledgment and Insert Count Increment
    /// refer to state we never created; Stream Cancellation is fine. Returns the bytes consumed.
    /// - Throws: `QPACK_DECODER_STREAM_ERROR` for acknowledgements of what we never sent.
    static func checkDecoderInstructions(_ bytes: [UInt8]) throws(HTTP3Error) -> Int {
        var position = 0
        while position < bytes.count {
            let first = bytes[position]
            if first & 0x80 != 0 {
                throw HTTP3Error(.qpackDecoderStreamError, "Section Acknowledgment, but no section used the dynamic table")
            } else if first & 0x40 == 0 {
                throw HTTP3Error(.qpackDecoderStreamError, "Insert Count Increment, but nothing was inserted")
            }
            guard integerIsComplete(bytes, at: position, prefixBits: 6) else { return position }  // wait for more
            do throws(HTTP3Error) { _ = try decodeInteger(bytes, at: &position, prefixBits: 6) } catch {  // Stream Cancellation
                throw HTTP3Error(.qpackDecoderStreamError, error.reason)
            }
        }
        return position
    }

    // MARK: - Primitives (RFC 9204 §4.1, RFC 7541 §5.1)

    /// Appends `value` as an integer with an `prefixBits`-bit prefix; `flags` fills the first
    /// byte's other bits.
    static func encodeInteger(_ value: Int, prefixBits: Int, flags: UInt8, into output: inout [UInt8]) {
        let limit = (1 << prefixBits) - 1
        if value < limit {
            output.append(flags | UInt8(value))
            return
        }
        output.append(flags | UInt8(limit))
        var rest = value - limit
        while rest >= 128 {
            output.append(UInt8(rest & 0x7f) | 0x80)
            rest >>= 7
        }
        output.append(UInt8(rest))
    }

    /// Whether the integer starting at `position` is complete in `bytes`.
    static func integerIsComplete(_ bytes: [UInt8], at position: Int, prefixBits: Int) -> Bool {
        guard position < bytes.count else { return false }
        let limit = UInt8((1 << prefixBits) - 1)
        guard bytes[position] & limit == limit else { return true }
        return bytes[(position + 1)...].contains { $0 & 0x80 == 0 }
    }

    /// Reads an integer with a `prefixBits`-bit prefix at `position`.
    /// - Throws: `QPACK_DECOMPRESSION_FAILED` when truncated or larger than 2^62.
    static func decodeInteger(_ bytes: [UInt8], at position: inout Int, prefixBits: Int) throws(HTTP3Error) -> Int {
        guard position < bytes.count else { throw failed("truncated integer") }
        let limit = (1 << prefixBits) - 1
        var value = Int(bytes[position]) & limit
        position += 1
        guard value == limit else { return value }
        var shift = 0
        while true {
            guard position < bytes.count else { throw failed("truncated integer") }
            let byte = bytes[position]
            position += 1
            // At most 2^62: a 7-bit group shifted by 56 could overflow the addition.
            guard shift <= 49 || (shift == 56 && byte & 0x7f == 0) else { throw failed("integer too large") }
            value += Int(byte & 0x7f) << shift
            guard value <= 1 << 62 else { throw failed("integer too large") }
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// Appends a string literal: the Huffman flag just above a `prefixBits`-bit length.
    static func encodeString(_ bytes: [UInt8], prefixBits: Int, flags: UInt8, into output: inout [UInt8]) {
        let huffmanCount = Huffman.encodedCount(bytes)
        if huffmanCount < bytes.count {
            encodeInteger(huffmanCount, prefixBits: prefixBits, flags: flags | UInt8(1 << prefixBits), into: &output)
            Huffman.encode(bytes, into: &output)
        } else {
            encodeInteger(bytes.count, prefixBits: prefixBits, flags: flags, into: &output)
            output += bytes
        }
    }

    /// Reads a string literal whose Huffman flag sits just above a `prefixBits`-bit length.
    static func decodeString(_ bytes: [UInt8], at position: inout Int, prefixBits: Int) throws(HTTP3Error) -> String {
        guard position < bytes.count else { throw failed("truncated string") }
        let huffman = bytes[position] & UInt8(1 << prefixBits) != 0
        let length = try decodeInteger(bytes, at: &position, prefixBits: prefixBits)
        guard length <= bytes.count - position else { throw failed("truncated string") }
        let raw = bytes[position..<position + length]
        position += length
        if huffman {
            guard let decoded = Huffman.decode(raw) else { throw failed("invalid Huffman coding") }
            return String(decoding: decoded, as: UTF8.self)
        }
        return String(decoding: raw, as: UTF8.self)
    }

    private static func failed(_ reason: String) -> HTTP3Error { HTTP3Error(.qpackDecompressionFailed, reason) }

    private static func staticEntry(_ index: Int) throws(HTTP3Error) -> FieldLine {
        guard index < staticTable.count else { throw failed("static table index \(index) out of range") }
        return FieldLine(staticTable[index].name, staticTable[index].value)
    }

    private struct StaticKey: Hashable {
        let name: String
        let value: String
    }

    private static let staticIndex: [StaticKey: Int] = {
        var index: [StaticKey: Int] = [:]
        for (position, entry) in staticTable.enumerated() where index[StaticKey(name: entry.name, value: entry.value)] == nil {
            index[StaticKey(name: entry.name, value: entry.value)] = position
        }
        return index
    }()

    private static let staticNameIndex: [String: Int] = {
        var index: [String: Int] = [:]
        for (position, entry) in staticTable.enumerated() where index[entry.name] == nil { index[entry.name] = position }
        return index
    }()
}

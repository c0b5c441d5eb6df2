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

/// QPACK (RFC 9204): the wire primitives, the static table's indexes and the field-line
/// representations both coders share. The dynamic tables live in ``QPACKEncoder`` and
/// ``QPACKDecoder``; ``encode(_:)`` and ``decode(_:maxSize:)`` are the stateless forms (static
/// table and literals only), which never block and need no encoder or decoder stream.
enum QPACK {
    // MARK: - Field sections without a dynamic table

    /// Encodes `fields` as a field section without the dynamic table: the prefix (Required
    /// Insert Count 0, Delta Base 0), then each field as an indexed static entry, a literal
    /// with a static name reference, or a literal with a literal name. Strings are
    /// Huffman-coded when that is shorter.
    static func encode(_ fields: [FieldLine]) -> [UInt8] {
        var output: [UInt8] = [0, 0]
        for field in fields { encodeWithoutTable(field, into: &output) }
        return output
    }

    /// Decodes a field section that may not refer to a dynamic table; `maxSize` bounds the
    /// decoded size as RFC 9114 §4.2.2 counts it (name + value + 32 per field).
    ///
    /// - Throws: ``HTTP3Error`` `QPACK_DECOMPRESSION_FAILED` for malformed input or any
    ///   reference to the dynamic table, `H3_EXCESSIVE_LOAD` beyond `maxSize`.
    static func decode(_ bytes: [UInt8], maxSize: Int = 1 << 16) throws(HTTP3Error) -> [FieldLine] {
        var decoder = QPACKDecoder(maxTableCapacity: 0, maxBlockedStreams: 0)
        guard case .decoded(let fields) = try decoder.decode(bytes, streamID: 0, maxSize: maxSize) else {
            throw failed("a field section refers to a dynamic table of capacity 0")
        }
        return fields
    }

    /// Appends `field` as a static indexed line, a literal with a static name reference or a
    /// literal with a literal name (the `N` bit as the field asks).
    static func encodeWithoutTable(_ field: FieldLine, into output: inout [UInt8]) {
        if !field.neverIndexed, let index = staticIndex[StaticKey(name: field.name, value: field.value)] {
            encodeInteger(index, prefixBits: 6, flags: 0b1100_0000, into: &output)  // indexed, static (T = 1)
        } else if let index = staticNameIndex[field.name] {
            // Literal with a static name reference (01NT): T = 1, N as the field asks.
            encodeInteger(index, prefixBits: 4, flags: 0b0101_0000 | (field.neverIndexed ? 0b0010_0000 : 0), into: &output)
            encodeString(Array(field.value.utf8), prefixBits: 7, flags: 0, into: &output)
        } else {
            // Literal with a literal name (001N).
            encodeString(Array(field.name.utf8), prefixBits: 3, flags: 0b0010_0000 | (field.neverIndexed ? 0b0001_0000 : 0), into: &output)
            encodeString(Array(field.value.utf8), prefixBits: 7, flags: 0, into: &output)
        }
    }

    /// Decodes the field lines of a section after its prefix (RFC 9204 §4.5.2–§4.5.6).
    /// `dynamicEntry` gives a dynamic table entry (name and value bytes) by absolute index,
    /// `nil` when it was evicted; any index at or above `requiredInsertCount` is refused
    /// without asking (§2.2.3).
    static func decodeFieldLines(_ bytes: [UInt8], from start: Int, requiredInsertCount: Int, base: Int, maxSize: Int,
                                 dynamicEntry: (Int) -> (name: [UInt8], value: [UInt8])?) throws(HTTP3Error) -> [FieldLine] {
        func dynamic(_ absolute: Int?) throws(HTTP3Error) -> (name: [UInt8], value: [UInt8]) {
            guard let absolute, absolute >= 0, absolute < requiredInsertCount else {
                throw failed("reference to a dynamic entry at or beyond the Required Insert Count \(requiredInsertCount)")
            }
            guard let entry = dynamicEntry(absolute) else { throw failed("reference to evicted dynamic entry \(absolute)") }
            return entry
        }
        /// Base − 1 − index (relative) or Base + index (post-base), `nil` when out of range.
        func relative(_ index: Int) -> Int? { index < base ? base - 1 - index : nil }
        func postBase(_ index: Int) -> Int? {
            let (absolute, overflow) = base.addingReportingOverflow(index)
            return overflow ? nil : absolute
        }
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

        var position = start
        var fields: [FieldLine] = []
        var size = 0
        while position < bytes.count {
            let first = bytes[position]
            let field: FieldLine
            if first & 0x80 != 0 {  // indexed field line (1T)
                let index = try decodeInteger(bytes, at: &position, prefixBits: 6)
                if first & 0x40 != 0 {
                    field = try staticEntry(index)
                } else {
                    let entry = try dynamic(relative(index))
                    field = FieldLine(text(entry.name), text(entry.value))
                }
            } else if first & 0x40 != 0 {  // literal with name reference (01NT)
                let neverIndexed = first & 0x20 != 0
                let index = try decodeInteger(bytes, at: &position, prefixBits: 4)
                let name = first & 0x10 != 0 ? try staticEntry(index).name : text(try dynamic(relative(index)).name)
                field = FieldLine(name, try decodeString(bytes, at: &position, prefixBits: 7), neverIndexed: neverIndexed)
            } else if first & 0x20 != 0 {  // literal with literal name (001N)
                let neverIndexed = first & 0x10 != 0
                let name = try decodeString(bytes, at: &position, prefixBits: 3)
                field = FieldLine(name, try decodeString(bytes, at: &position, prefixBits: 7), neverIndexed: neverIndexed)
            } else if first & 0x10 != 0 {  // indexed field line with post-base index (0001)
                let entry = try dynamic(postBase(try decodeInteger(bytes, at: &position, prefixBits: 4)))
                field = FieldLine(text(entry.name), text(entry.value))
            } else {  // literal with post-base name reference (0000N)
                let neverIndexed = first & 0x08 != 0
                let entry = try dynamic(postBase(try decodeInteger(bytes, at: &position, prefixBits: 3)))
                field = FieldLine(text(entry.name), try decodeString(bytes, at: &position, prefixBits: 7), neverIndexed: neverIndexed)
            }
            size += field.name.utf8.count + field.value.utf8.count + 32
            guard size <= maxSize else { throw HTTP3Error(.excessiveLoad, "field section larger than \(maxSize) bytes") }
            fields.append(field)
        }
        return fields
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

    static func failed(_ reason: String) -> HTTP3Error { HTTP3Error(.qpackDecompressionFailed, reason) }

    static func staticEntry(_ index: Int) throws(HTTP3Error) -> FieldLine {
        guard index < staticTable.count else { throw failed("static table index \(index) out of range") }
        return FieldLine(staticTable[index].name, staticTable[index].value)
    }

    struct StaticKey: Hashable {
        let name: String
        let value: String
    }

    static let staticIndex: [StaticKey: Int] = {
        var index: [StaticKey: Int] = [:]
        for (position, entry) in staticTable.enumerated() where index[StaticKey(name: entry.name, value: entry.value)] == nil {
            index[StaticKey(name: entry.name, value: entry.value)] = position
        }
        return index
    }()

    static let staticNameIndex: [String: Int] = {
        var index: [String: Int] = [:]
        for (position, entry) in staticTable.enumerated() where index[entry.name] == nil { index[entry.name] = position }
        return index
    }()
}

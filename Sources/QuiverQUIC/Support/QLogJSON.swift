/// A small JSON writer for qlog records: objects, arrays, strings, integers, booleans and
/// millisecond times, appended to a byte buffer with no intermediate values (and no
/// Foundation). Keys are static ASCII strings; string values are escaped (RFC 8259 §7).
///
/// Commas are placed by the writer: each container remembers whether it has had a member.
struct QLogJSON {
    /// The encoded bytes so far.
    var bytes: [UInt8]
    /// Whether the innermost open container has no member yet.
    private var isFirst = true

    init(into bytes: [UInt8]) { self.bytes = bytes }

    // MARK: - Containers

    /// Writes an object whose members `body` writes.
    mutating func object(_ body: (inout QLogJSON) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        let outer = isFirst
        isFirst = true
        body(&self)
        isFirst = outer
        bytes.append(UInt8(ascii: "}"))
    }

    /// Writes an array whose elements `body` writes (with the `element` methods).
    mutating func array(_ body: (inout QLogJSON) -> Void) {
        bytes.append(UInt8(ascii: "["))
        let outer = isFirst
        isFirst = true
        body(&self)
        isFirst = outer
        bytes.append(UInt8(ascii: "]"))
    }

    /// Starts a member: the comma before it, when needed, and the key.
    mutating func key(_ key: StaticString) {
        separate()
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// The comma before a member or element, unless it is the container's first.
    private mutating func separate() {
        if isFirst { isFirst = false } else { bytes.append(UInt8(ascii: ",")) }
    }

    // MARK: - Members

    mutating func field(_ name: StaticString, object body: (inout QLogJSON) -> Void) {
        key(name)
        object(body)
    }

    mutating func field(_ name: StaticString, array body: (inout QLogJSON) -> Void) {
        key(name)
        array(body)
    }

    mutating func field(_ name: StaticString, _ value: StaticString) {
        key(name)
        staticString(value)
    }

    mutating func field(_ name: StaticString, string value: String) {
        key(name)
        string(value)
    }

    mutating func field(_ name: StaticString, _ value: UInt64) {
        key(name)
        integer(value)
    }

    mutating func field(_ name: StaticString, _ value: Int) {
        key(name)
        if value < 0 {
            bytes.append(UInt8(ascii: "-"))
            integer(UInt64(value.magnitude))
        } else {
            integer(UInt64(value))
        }
    }

    mutating func field(_ name: StaticString, _ value: Bool) {
        key(name)
        boolean(value)
    }

    /// A duration in milliseconds, with up to six decimals (nanosecond resolution).
    mutating func field(_ name: StaticString, milliseconds duration: Duration) {
        key(name)
        milliseconds(nanoseconds: duration.nanosecondsClamped)
    }

    /// Bytes as a lowercase hex string (qlog's `hexstring`).
    mutating func field(_ name: StaticString, hex value: some Collection<UInt8>) {
        key(name)
        hex(value)
    }

    // MARK: - Values (array elements after `separate`)

    mutating func element(_ body: (inout QLogJSON) -> Void) {
        separate()
        object(body)
    }

    mutating func element(_ value: StaticString) {
        separate()
        staticString(value)
    }

    mutating func element(_ value: UInt64) {
        separate()
        integer(value)
    }

    mutating func element(hex value: some Collection<UInt8>) {
        separate()
        hex(value)
    }

    /// An array element that is itself an array.
    mutating func elementArray(_ body: (inout QLogJSON) -> Void) {
        separate()
        array(body)
    }

    // MARK: - Scalars

    private mutating func staticString(_ value: StaticString) {
        bytes.append(UInt8(ascii: "\""))
        value.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// A string, escaped: quote, backslash and control characters (RFC 8259 §7).
    mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes.append(UInt8(ascii: "\\"))
                bytes.append(byte)
            case 0..<0x20, 0x7f:
                bytes.append(contentsOf: Array("\\u00".utf8))
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0f)])
            default:
                bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func integer(_ value: UInt64) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    mutating func boolean(_ value: Bool) {
        bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes)
    }

    /// `nanoseconds` as milliseconds: the integer part, then up to six decimals without
    /// trailing zeros.
    mutating func milliseconds(nanoseconds: Int64) {
        if nanoseconds < 0 { bytes.append(UInt8(ascii: "-")) }
        let magnitude = nanoseconds.magnitude
        integer(magnitude / 1_000_000)
        var fraction = magnitude % 1_000_000
        guard fraction > 0 else { return }
        bytes.append(UInt8(ascii: "."))
        var divisor: UInt64 = 100_000
        while fraction > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(fraction / divisor))
            fraction %= divisor
            divisor /= 10
        }
    }

    mutating func hex(_ value: some Collection<UInt8>) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value {
            bytes.append(Self.hexDigits[Int(byte >> 4)])
            bytes.append(Self.hexDigits[Int(byte & 0x0f)])
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let trueBytes = Array("true".utf8)
    private static let falseBytes = Array("false".utf8)
}

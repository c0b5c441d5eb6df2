/// A connection ID (RFC 9000 §5.1): 0 to 20 bytes in QUIC v1 and v2.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// The longest connection ID QUIC v1/v2 allow.
    public static let maxLength = 20

    /// The bytes.
    public let bytes: [UInt8]

    /// Creates a connection ID; `nil` when longer than 20 bytes.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count <= Self.maxLength else { return nil }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// The empty connection ID.
    public static let empty = ConnectionID(unchecked: [])

    /// Number of bytes.
    public var count: Int { bytes.count }

    public var description: String {
        bytes.isEmpty ? "<empty>" : bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

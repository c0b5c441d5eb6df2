/// A connection ID (RFC 9000 §5.1): 0 to 20 bytes in QUIC v1 and v2.
///
/// The bytes are kept inline, so that parsing a packet's header, routing it by its connection
/// ID and writing the ID into a packet allocate nothing.
public struct ConnectionID: Hashable, Sendable, CustomStringConvertible {
    /// The longest connection ID QUIC v1/v2 allow.
    public static let maxLength = 20

    /// The bytes, zero-filled past ``count`` (so that equal IDs have equal storage).
    private var storage: (UInt64, UInt64, UInt32) = (0, 0, 0)
    private let length: UInt8

    /// Creates a connection ID; `nil` when longer than 20 bytes.
    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count <= Self.maxLength else { return nil }
        self.init(unchecked: bytes)
    }

    init(unchecked bytes: some Collection<UInt8>) {
        precondition(bytes.count <= Self.maxLength, "connection ID of \(bytes.count) bytes")
        length = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &storage) { storage in
            if bytes.withContiguousStorageIfAvailable({ storage.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
                storage.copyBytes(from: bytes)
            }
        }
    }

    /// The empty connection ID.
    public static let empty = ConnectionID(unchecked: EmptyCollection())

    /// Number of bytes.
    public var count: Int { Int(length) }

    /// The bytes, as a new array.
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    /// Calls `body` with the bytes, without copying them.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var storage = storage
        let count = count
        return try Swift.withUnsafeBytes(of: &storage) { (raw) throws(Failure) -> Result in
            try body(UnsafeRawBufferPointer(rebasing: raw[..<count]))
        }
    }

    public static func == (lhs: ConnectionID, rhs: ConnectionID) -> Bool {
        lhs.length == rhs.length && lhs.storage.0 == rhs.storage.0 && lhs.storage.1 == rhs.storage.1
            && lhs.storage.2 == rhs.storage.2
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(length)
        hasher.combine(storage.0)
        hasher.combine(storage.1)
        hasher.combine(storage.2)
    }

    public var description: String {
        count == 0 ? "<empty>" : bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

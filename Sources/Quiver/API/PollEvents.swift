/// What can be ready on a pollable object.
public struct PollEvents: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// A listener has a connection to accept.
    public static let incomingConnection = PollEvents(rawValue: 1 << 0)
    /// A connection has a peer-opened stream to accept.
    public static let incomingStream = PollEvents(rawValue: 1 << 1)
    /// A read would not block (data, end of stream or an error is waiting).
    public static let readable = PollEvents(rawValue: 1 << 2)
    /// A write would accept bytes.
    public static let writable = PollEvents(rawValue: 1 << 3)
    /// The object failed or closed: operations now complete with an error or end of stream.
    public static let error = PollEvents(rawValue: 1 << 4)

    public var description: String {
        let names = [(PollEvents.incomingConnection, "incomingConnection"), (.incomingStream, "incomingStream"),
                     (.readable, "readable"), (.writable, "writable"), (.error, "error")]
        return "[" + names.filter { contains($0.0) }.map(\.1).joined(separator: ", ") + "]"
    }
}

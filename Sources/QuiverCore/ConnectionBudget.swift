import Synchronization

/// How many connections a server holds, shared by the parts that hold them — the event loops
/// of one listener — so that one limit holds for all of them together, however unevenly the
/// connections spread.
public final class ConnectionBudget: Sendable {
    /// The most connections held at once.
    public let limit: Int
    private let held = Atomic<Int>(0)

    /// A budget of `limit` connections.
    public init(limit: Int) {
        self.limit = limit
    }

    /// Takes a place for a new connection; `false` when all `limit` are taken.
    public func take() -> Bool {
        var current = held.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = held.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    /// Gives back the place of a connection that is gone.
    public func giveBack() {
        held.subtract(1, ordering: .relaxed)
    }

    /// Whether a place is free now (another holder may take it first).
    public var hasRoom: Bool { held.load(ordering: .relaxed) < limit }

    /// The connections held now.
    public var count: Int { held.load(ordering: .relaxed) }
}

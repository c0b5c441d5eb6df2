#if canImport(Glibc)
import Glibc
#endif
import CQuiverPoll
import Logging
import QuiverCore
import QuiverQUIC

/// A QUIC listener's side of its fork hand-offs (``Listener/fork(handingOff:)``): for each
/// connection handed to a forked child, a ``ForkChannel`` and the connection IDs that route to
/// it. A datagram that reaches the listener for such a connection — the client moved to an
/// address the child's connected socket does not receive from: a NAT rebinding, an active
/// migration (RFC 9000 §9) — is passed on to the child with its source address and ECN mark,
/// where the connection's engine takes it as it would on its own socket. The child announces
/// the connection IDs its connection issues later (``ForkChannel``'s `0x02` record), so they
/// route here too.
///
/// Bounded: no datagram is queued here (a full channel drops it, counted in
/// ``Statistics/datagramsDropped``), a child's routes are at most
/// ``ForkChannel/maxConnectionIDs``, and a channel and its routes go when the child's end
/// closes (its connection ended, or it exited). A child's records are parsed as hostile input: malformed ones, and
/// connection IDs another child holds or that do not fit a short header, are counted in
/// ``Statistics/badRecords`` and ignored; at most ``recordsPerRound`` records of a channel are
/// read per round. Used under the listener core's lock, on its loop's thread.
final class ForkForwarder {
    struct Statistics: Hashable {
        /// Datagrams passed on to a child.
        var datagramsForwarded = 0
        /// Datagrams for a child whose channel was full (or had just closed), dropped.
        var datagramsDropped = 0
        /// Records from children that were malformed or claimed what is not theirs.
        var badRecords = 0
    }

    private struct Child {
        let channel: ForkChannel
        var process: Int32 = 0
        var connectionIDs: [ConnectionID]
        var forwarded = 0
    }

    /// The tag under which the driver's poll reports the channels (one epoll set of their own,
    /// itself a member of the driver's).
    static let pollTag: UInt64 = 1 << 62
    /// Records read from one channel per round, so a chattering child cannot hold the loop.
    static let recordsPerRound = 64

    private var children: [UInt64: Child] = [:]
    private var routes: [ConnectionID: UInt64] = [:]
    private var nextKey: UInt64 = 0
    /// The channels' epoll set (−1 once closed).
    private var channelPoll: Int32
    private let driverPoll: EventPoll
    private let shortHeaderConnectionIDLength: Int
    private let logger: Logger?
    private var buffer = [UInt8](repeating: 0, count: 2 + ForkChannel.maxConnectionIDs * (1 + ConnectionID.maxLength))
    private(set) var statistics = Statistics()
    /// ``forward(_:from:ecn:isLocal:)`` read the channels this round for an unknown ID.
    private var rescuedThisRound = false

    /// - Parameters:
    ///   - poll: the driver's poll, which then watches the channels (with ``pollTag``).
    ///   - shortHeaderConnectionIDLength: the length of the listener's connection IDs.
    ///   - logger: where a closed channel is logged (at `info`).
    init(poll: EventPoll, shortHeaderConnectionIDLength: Int, logger: Logger?) throws(QuiverError) {
        channelPoll = quiver_epoll_create()
        guard channelPoll >= 0 else { throw QuiverError(.io, "epoll_create1: \(String(cString: strerror(errno)))") }
        do throws(QuiverError) {
            try poll.add(channelPoll, tag: Self.pollTag)
        } catch {
            Glibc.close(channelPoll)
            throw error
        }
        driverPoll = poll
        self.shortHeaderConnectionIDLength = shortHeaderConnectionIDLength
        self.logger = logger
    }

    /// A forwarder dropped without ``close()`` (its core was released unclosed) closes its
    /// epoll set; the channels close themselves.
    deinit {
        if channelPoll >= 0 { Glibc.close(channelPoll) }
    }

    /// Whether no channel is open (then nothing is forwarded).
    var isEmpty: Bool { children.isEmpty }
    /// The open channels.
    var channelCount: Int { children.count }
    /// The connection IDs that route to a child.
    var routeCount: Int { routes.count }

    /// Opens a route to a child-to-be: `channel` is the listener's end, `connectionIDs` the
    /// connection's at the hand-off. Returns the key for ``setProcess(_:for:)`` and
    /// ``remove(_:)``.
    /// - Throws: `.io` when the channel cannot be watched.
    func add(_ channel: ForkChannel, connectionIDs: [ConnectionID]) throws(QuiverError) -> UInt64 {
        let key = nextKey
        guard quiver_epoll_set(channelPoll, channel.descriptor, QUIVER_POLL_IN | QUIVER_POLL_RDHUP, key, 0) == 0 else {
            throw QuiverError(.io, "epoll_ctl: \(String(cString: strerror(errno)))")
        }
        nextKey += 1
        children[key] = Child(channel: channel, connectionIDs: [])
        setRoutes(connectionIDs, for: key)
        return key
    }

    /// Names the process at the other end of channel `key` (for the log).
    func setProcess(_ process: Int32, for key: UInt64) {
        children[key]?.process = process
    }

    /// Closes channel `key` and forgets its routes.
    func remove(_ key: UInt64) {
        guard let child = children.removeValue(forKey: key) else { return }
        for id in child.connectionIDs where routes[id] == key { routes[id] = nil }
        _ = quiver_epoll_remove(channelPoll, child.channel.descriptor)
        child.channel.close()
        if routes.isEmpty, routes.capacity > 1024 { routes = [:] }
        if child.process > 0 {
            logger?.info("fork hand-off: process \(child.process)'s channel closed (datagrams forwarded to it: \(child.forwarded))")
        }
    }

    /// Passes `datagram` on to the child whose connection its Destination Connection ID names;
    /// `false` when it names none (the endpoint's then). A short header's connection ID that
    /// names no child and that `isLocal` says the endpoint does not know either may have been
    /// announced a moment ago — its child sent the announcement before the packet carrying the
    /// NEW_CONNECTION_ID frame — so the channels are read before giving up on it: otherwise
    /// the endpoint would answer with a stateless reset, which ends the child's connection.
    /// The channels are read for that at most once per round (``newRound()``): a flood of
    /// short headers with unknown connection IDs costs one system call per round, not per packet.
    func forward(_ datagram: [UInt8], from source: SocketAddress, ecn: ECNCodepoint, isLocal: (ConnectionID) -> Bool) -> Bool {
        guard let (id, isShort) = destinationConnectionID(of: datagram) else { return false }
        var key = routes[id]
        if key == nil {
            guard isShort, !rescuedThisRound, !isLocal(id) else { return false }
            rescuedThisRound = true
            guard serviceChannels(isLocal: isLocal) > 0 else { return false }
            key = routes[id]
        }
        guard let key, let child = children[key] else { return false }
        switch child.channel.sendDatagram(datagram, from: source, ecn: ecn) {
        case .sent:
            statistics.datagramsForwarded += 1
            children[key]?.forwarded += 1
        case .full:
            statistics.datagramsDropped += 1
        case .closed:
            statistics.datagramsDropped += 1
            remove(key)
        }
        return true
    }

    /// The Destination Connection ID of a datagram's first packet, and whether it has a short
    /// header; `nil` when there is none to route by.
    private func destinationConnectionID(of datagram: [UInt8]) -> (ConnectionID, Bool)? {
        guard let first = datagram.first else { return nil }
        if first & 0x80 == 0 {
            let end = 1 + shortHeaderConnectionIDLength
            guard shortHeaderConnectionIDLength > 0, datagram.count >= end, let id = ConnectionID(datagram[1..<end]) else { return nil }
            return (id, true)
        }
        guard datagram.count >= 6 else { return nil }
        let length = Int(datagram[5])
        guard length > 0, datagram.count >= 6 + length, let id = ConnectionID(datagram[6..<6 + length]) else { return nil }
        return (id, false)
    }

    /// Whether the driver's poll reported the channels.
    func isReported(in ready: [EventPoll.Ready]) -> Bool {
        ready.contains { $0.tag == Self.pollTag }
    }

    /// A new round of the listener's loop: ``forward(_:from:ecn:isLocal:)`` may read the
    /// channels once more for an unknown connection ID.
    func newRound() { rescuedThisRound = false }

    /// Reads what the children sent — at most ``recordsPerRound`` records per channel — and
    /// closes the channels whose child ended. Returns the announcements applied. `isLocal`
    /// names the connection IDs of the listener's own connections, which no child may claim.
    @discardableResult
    func serviceChannels(isLocal: (ConnectionID) -> Bool) -> Int {
        guard channelPoll >= 0, !children.isEmpty else { return 0 }
        var keys = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        let count = quiver_epoll_wait(channelPoll, &keys, &events, 64, 0)
        guard count > 0 else { return 0 }
        var applied = 0
        for key in keys.prefix(Int(count)) {
            guard let channel = children[key]?.channel else { continue }
            reading: for _ in 0..<Self.recordsPerRound {
                switch channel.receive(into: &buffer) {
                case .empty:
                    break reading
                case .closed:
                    remove(key)
                    break reading
                case .record(let count, let truncated):
                    if !truncated, case .connectionIDs(let ids)? = ForkChannel.parse(buffer, count: count),
                       accept(ids, from: key, isLocal: isLocal) {
                        setRoutes(ids, for: key)
                        applied += 1
                    } else {
                        statistics.badRecords += 1
                    }
                }
            }
        }
        return applied
    }

    /// Whether `ids` may route to child `key`: each fits a short header, and neither another
    /// child nor one of the listener's own connections holds it. A child has a copy of every
    /// connection ID its parent had when it forked; it must not take the datagrams of those.
    private func accept(_ ids: [ConnectionID], from key: UInt64, isLocal: (ConnectionID) -> Bool) -> Bool {
        ids.allSatisfy { id in id.count == shortHeaderConnectionIDLength && (routes[id] ?? key) == key && !isLocal(id) }
    }

    private func setRoutes(_ ids: [ConnectionID], for key: UInt64) {
        guard let old = children[key]?.connectionIDs else { return }
        for id in old where !ids.contains(id) && routes[id] == key { routes[id] = nil }
        for id in ids where routes[id] == nil { routes[id] = key }
        children[key]?.connectionIDs = ids.filter { routes[$0] == key }
    }

    /// Closes every channel (the listener closes): the children go on, unreachable from new
    /// addresses.
    func close() {
        for key in Array(children.keys) { remove(key) }
        guard channelPoll >= 0 else { return }
        driverPoll.remove(channelPoll)
        Glibc.close(channelPoll)
        channelPoll = -1
    }

    /// In a forked child, for its copy of the parent's listener: closes this process's copies
    /// of the descriptors and nothing else — the epoll sets are shared with the parent, so a
    /// change to them here would be the parent's.
    func discardAfterFork() {
        for child in children.values { child.channel.close() }
        children.removeAll()
        routes.removeAll()
        if channelPoll >= 0 { Glibc.close(channelPoll) }
        channelPoll = -1
    }
}

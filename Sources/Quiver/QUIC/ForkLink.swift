import QuiverCore
import QuiverQUIC
import QuiverUDP

/// A forked child's side of its fork hand-off (``Listener/fork(handingOff:)``): the channel to
/// the parent's listener (``ForkForwarder``). The child's UDP socket is connected to the
/// client's address, so datagrams from any other — the client moved: a NAT rebinding, an
/// active migration (RFC 9000 §9) — reach the parent, which passes them on here with their
/// source address; the engine takes them as from its own socket and validates the new path
/// (§9.3). Each round the child announces the connection IDs its connection issued since
/// (so that the parent routes them here) before the packets that tell the client of them
/// leave, and once the connection has moved to another address, connects the socket to that
/// one: the kernel then delivers the client's datagrams directly. Sends name their destination
/// (``UDPSocket``'s `sendmmsg`), which Linux allows on a connected UDP socket, so replies to
/// the old address during validation leave as well; what still comes from there reaches the
/// child through the parent.
///
/// Used by the child's core under its lock, on its loop's thread.
final class ForkLink {
    /// The tag under which the child's driver poll reports the channel.
    static let pollTag: UInt64 = 1 << 62
    /// Records read per round: a round's worth of datagrams, then the timers and sends.
    static let recordsPerRound = 64

    private var channel: ForkChannel?
    /// The connection IDs the parent routes here (the last list announced).
    private var announced: [ConnectionID]
    /// The address the UDP socket is connected to.
    private(set) var connectedPeer: SocketAddress
    private var buffer = [UInt8](repeating: 0, count: ForkChannel.maxRecordSize)
    private var datagram: [UInt8] = []

    init(channel: ForkChannel, connectionIDs: [ConnectionID], peer: SocketAddress) {
        self.channel = channel
        announced = connectionIDs
        connectedPeer = peer
    }

    /// Watches the channel with `poll` (the child's driver's; before fork, as its socket is).
    func register(with poll: EventPoll) throws(QuiverError) {
        guard let channel else { return }
        try poll.add(channel.descriptor, tag: Self.pollTag)
    }

    /// Whether the poll reported the channel.
    func isReported(in ready: [EventPoll.Ready]) -> Bool {
        channel != nil && ready.contains { $0.tag == Self.pollTag }
    }

    /// Hands each datagram the parent passed on to `deliver` (bytes it may decrypt in place,
    /// source, ECN mark). When the parent's end closed (its listener closed, or it exited), the
    /// channel is closed: the child goes on with its socket alone.
    func receive(poll: EventPoll, deliver: (inout [UInt8], SocketAddress, ECNCodepoint) -> Void) {
        guard let channel else { return }
        for _ in 0..<Self.recordsPerRound {
            switch channel.receive(into: &buffer) {
            case .empty:
                return
            case .closed:
                close(poll: poll)
                return
            case .record(let count, let truncated):
                guard !truncated, case .datagram(let source, let ecn, let payload)? = ForkChannel.parse(buffer, count: count) else { continue }
                datagram.removeAll(keepingCapacity: true)
                datagram.append(contentsOf: buffer[payload])
                deliver(&datagram, source, ecn)
            }
        }
    }

    /// After the round's input and timers, before its sends: announces `connection`'s new
    /// connection IDs (a full channel: again next round), and connects `socket` to the
    /// connection's address when it moved there and the address is validated. Before that the
    /// address may be spoofed (RFC 9000 §9.3.1): a connected socket wins the kernel's lookup of
    /// its 4-tuple, so connecting to a victim's address would take the victim's datagrams.
    /// Meanwhile the new address's datagrams come through the parent, and replies name it.
    func follow(_ connection: QUICConnection, socket: UDPSocket?) {
        if let channel {
            let ids = connection.localConnectionIDs
            if ids != announced, channel.sendConnectionIDs(ids) == .sent { announced = ids }
        }
        let remote = connection.remoteAddress
        guard remote != connectedPeer, connection.isPathValidated, let socket else { return }
        // A failure leaves the socket connected to the old address: datagrams from the new one
        // keep arriving through the parent. Not tried again until the address changes again.
        try? socket.connect(to: remote)
        connectedPeer = remote
    }

    /// Closes the channel (the child's connection ended, or the parent's end closed).
    func close(poll: EventPoll?) {
        guard let channel else { return }
        if let poll, channel.descriptor >= 0 { poll.remove(channel.descriptor) }
        channel.close()
        self.channel = nil
    }

    /// In the parent, for its copy of the child's core: closes this process's descriptor and
    /// nothing else (the poll is the child's).
    func discardAfterFork() {
        channel?.close()
        channel = nil
    }
}

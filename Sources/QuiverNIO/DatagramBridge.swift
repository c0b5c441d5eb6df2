public import NIOCore
import Quiver
import QuiverCore
import Synchronization

/// Moves datagrams between a NIO datagram channel (which owns the UDP socket) and a QUIC
/// ``Quiver/Listener`` attached to in-memory ``Quiver/DatagramPair``s, on the channel's event
/// loop.
///
/// Received datagrams go into the pair's application end with their source and destination
/// addresses; at the end of each read burst the ``ListenerLoop`` runs a round (the listener
/// handles them, the application works, the deadline task is re-armed), and what the listener
/// sent into the pair is written to the channel and flushed. The pair's arrival handler also
/// schedules that drain — once per burst, not per datagram — for datagrams sent outside a round
/// (a blocking call driving the listener from another thread).
///
/// **Addressing.**
/// - ``Addressing/addressed``: one addressed pair carries every peer; each datagram names its
///   remote address.
/// - ``Addressing/unaddressed(_:)``: the pairs carry no addresses, so the bridge routes: one
///   pair per remote address (each attached to the listener with `listener.attach(.datagrams(end))`),
///   and what the listener sends into a pair goes to that pair's remote address. The listener
///   knows each pair's peer only by the synthetic address `fd71:7569:7665:7200::<attachment
///   index>` port 0. Memory is bounded: at most ``Routing/maxPeers`` pairs are ever made; when
///   all are routed, the least recently active route is taken over by the new remote address
///   if it has been idle for ``Routing/reuseAfter``, otherwise the new address's datagram is
///   dropped (``Statistics/peersRefused``).
///
/// **Address validation when unaddressed.** The QUIC engine binds a Retry token to the peer
/// address it sees — here the synthetic address naming the pair, never the client's IP
/// address and port. A token therefore proves that the client received what was sent to the
/// route's remote address, and it validates only when the client's next Initial arrives over
/// the same route (the same source IP address and port) while the route lasts. Because a pair
/// is handed to another remote address only after being idle for ``Routing/reuseAfter``
/// (longer than the endpoint's Retry token lifetime, 10 s by default), a Retry token cannot be
/// replayed from another address through a reused pair. NEW_TOKEN tokens (valid for a day) are
/// bound to the synthetic address as well, so with unaddressed pairs turn them off
/// (`Listener.Options.issueNewTokens = false`). A client that changes address gets
/// a new route, which the QUIC connection sees as a migration (path validation).
///
/// Install it in the channel initializer (``install(on:)`` or `syncOperations.addHandler`);
/// the channel should be on the loop's event loop. For the destination address of received
/// datagrams set `ChannelOptions.receivePacketInfo` on the channel; without it the channel's
/// local address is used.
///
/// **ECN.** Datagrams carry their ECN codepoint both ways (RFC 9000 §13.4): what the listener
/// marks goes out in the envelope's metadata, and what arrives is handed on as the channel
/// reports it — set `ChannelOptions.explicitCongestionNotification` on the channel, or every
/// datagram arrives as not-ECT and QUIC finds the path not ECN-capable (it stops marking and
/// goes on). NIO marks an IPv4 peer of a dual-stack IPv6 channel with `IPV6_TCLASS`, which
/// Linux applies to IPv6 packets only: bind an IPv4 channel for IPv4 peers to mark them.
public final class DatagramBridge: ChannelInboundHandler {
    public typealias InboundIn = AddressedEnvelope<ByteBuffer>
    public typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    /// How datagrams find their peers.
    public enum Addressing: Sendable, Hashable {
        /// One addressed pair; datagrams carry their addresses.
        case addressed
        /// One unaddressed pair per remote address, routed by the bridge.
        case unaddressed(Routing)
    }

    /// The bounds of unaddressed routing.
    public struct Routing: Sendable, Hashable {
        /// The most pairs (routes) the bridge makes for one channel.
        public var maxPeers = 1024
        /// How long a route must have been idle (no datagram either way) before its pair may
        /// serve another remote address. Keep it above the Retry token lifetime.
        public var reuseAfter: Duration = .seconds(15)
        /// Datagrams each direction of a per-peer pair holds.
        public var pairCapacity = 256

        public init() {}
    }

    /// What the bridge counted.
    public struct Statistics: Sendable, Hashable {
        /// Datagrams received from the channel and moved into a pair.
        public var datagramsReceived = 0
        /// Datagrams written to the channel.
        public var datagramsSent = 0
        /// Datagrams dropped: a full pair, no route, or an address the pair cannot name.
        public var datagramsDropped = 0
        /// Unaddressed: routes (remote addresses with a pair) now.
        public var routes = 0
        /// Unaddressed: pairs made (and attached to the listener) so far; at most `maxPeers`.
        public var pairs = 0
        /// Unaddressed: routes whose pair was handed to a new remote address.
        public var routesReused = 0
        /// Unaddressed: datagrams from new remote addresses dropped because every pair was
        /// routed and recently active.
        public var peersRefused = 0
    }

    /// One per-peer pair and its route (unaddressed), linked into a most-recently-active list.
    private struct Slot {
        let pair: DatagramPair
        var remote: QuiverCore.SocketAddress?
        var lastActive: Instant
        var newer: Int?
        var older: Int?
    }

    /// Shared with the arrival handlers (which run on whatever thread the listener sends from).
    private final class Outbox: Sendable {
        let drainQueued = Atomic<Bool>(false)
        let dirty = Mutex<Set<Int>>([])
    }

    /// The loop driving the listener.
    public let loop: ListenerLoop
    /// The addressing mode.
    public let addressing: Addressing
    /// What the bridge counted so far (read on the loop).
    public private(set) var statistics = Statistics()

    private let outbox = Outbox()
    private var context: ChannelHandlerContext?
    private var localAddress: QuiverCore.SocketAddress?
    private var mapsToIPv6 = false
    private var received = false
    /// Slots with datagrams left in their pair because the channel was not writable.
    private var backlog: Set<Int> = []
    // Addressed mode.
    private var pair: DatagramPair?
    // Unaddressed mode.
    private var slots: [Slot] = []
    private var routes: [QuiverCore.SocketAddress: Int] = [:]
    private var newest: Int?
    private var oldest: Int?

    /// A bridge feeding `loop`'s listener (a QUIC or DTLS listener in `.applicationDriven` mode).
    public init(loop: ListenerLoop, addressing: Addressing = .addressed) {
        precondition(loop.listener.transport != .tcp, "a DatagramBridge feeds a QUIC or DTLS listener")
        self.loop = loop
        self.addressing = addressing
    }

    /// Adds a new bridge for `loop` to `channel`'s pipeline; for channel initializers.
    public static func install(on channel: any Channel, loop: ListenerLoop, addressing: Addressing = .addressed) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(DatagramBridge(loop: loop, addressing: addressing))
        }
    }

    // MARK: - Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        precondition(context.eventLoop === loop.eventLoop, "the channel must be on the listener loop's event loop")
        self.context = context
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard pair == nil, slots.isEmpty else { return }
        if let local = context.channel.localAddress {
            localAddress = QuiverCore.SocketAddress(local)
            if case .v6 = local { mapsToIPv6 = true }
        }
        if case .addressed = addressing {
            let pair = DatagramPair(addressed: true, capacity: 4096)  // one round's sends to every peer
            self.pair = pair
            watch(pair.second, slot: 0)
            do {
                try loop.listener.attach(.datagrams(pair.first, localAddress: localAddress))
            } catch {
                context.fireErrorCaught(error)
            }
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard !loop.isClosed else { return }  // the listener is gone
        guard let source = QuiverCore.SocketAddress(envelope.remoteAddress) else {
            statistics.datagramsDropped += 1
            return
        }
        var buffer = envelope.data
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        let ecn = ECNCodepoint(envelope.metadata?.ecnState)
        let accepted: Bool
        switch addressing {
        case .addressed:
            guard let pair else { return }
            var destination = localAddress
            if let info = envelope.metadata?.packetInfo, let address = QuiverCore.SocketAddress(info.destinationAddress) {
                destination = address.withPort(localAddress?.port ?? address.port)
            }
            accepted = pair.second.send(bytes, from: source, to: destination, ecn: ecn)
        case .unaddressed(let routing):
            guard let slot = slot(for: source, routing: routing) else {
                statistics.datagramsDropped += 1
                return
            }
            accepted = slots[slot].pair.second.send(bytes, ecn: ecn)
        }
        if accepted {
            statistics.datagramsReceived += 1
            received = true
        } else {
            statistics.datagramsDropped += 1
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if received {
            received = false
            // The round's sends schedule no drain: this one, right after the round, takes them.
            outbox.drainQueued.store(true, ordering: .releasing)
            loop.runRound()
            outbox.drainQueued.store(false, ordering: .releasing)
            drain()
        }
        context.fireChannelReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain() }
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        stopWatching()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stopWatching()
        self.context = nil
    }

    // MARK: - Output

    /// Installs the arrival handler of an application end: note the slot, and schedule one
    /// drain on the loop unless one is queued.
    private func watch(_ end: DatagramPair.End, slot: Int) {
        let outbox = outbox
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        let eventLoop = loop.eventLoop
        end.setArrivalHandler {
            outbox.dirty.withLock { _ = $0.insert(slot) }
            guard !outbox.drainQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
            eventLoop.execute {
                outbox.drainQueued.store(false, ordering: .releasing)
                bound.value.drain()
            }
        }
    }

    private func stopWatching() {
        pair?.second.setArrivalHandler(nil)
        for slot in slots { slot.pair.second.setArrivalHandler(nil) }
    }

    /// Writes what the listener sent into the pairs to the channel, then flushes. Stops while
    /// the channel is not writable (the datagrams wait in their pair, which is bounded and
    /// drops when full, as a UDP socket would).
    private func drain() {
        guard let context else { return }
        var pending = backlog.union(outbox.dirty.withLock { dirty in
            defer { dirty.removeAll(keepingCapacity: true) }
            return dirty
        })
        backlog = []
        var wrote = false
        let now = Instant.now()
        while let slot = pending.first {
            guard context.channel.isWritable else {
                backlog = pending
                break
            }
            pending.remove(slot)
            switch addressing {
            case .addressed:
                guard let pair else { continue }
                while context.channel.isWritable, let datagram = pair.second.receive() {
                    guard let destination = datagram.destination else {
                        statistics.datagramsDropped += 1
                        continue
                    }
                    write(datagram.bytes, to: destination, ecn: datagram.ecn, context: context)
                    wrote = true
                }
                if pair.second.pendingCount > 0 { pending.insert(slot) }
            case .unaddressed:
                guard slot < slots.count else { continue }
                let end = slots[slot].pair.second
                guard let remote = slots[slot].remote else {
                    while end.receive() != nil { statistics.datagramsDropped += 1 }  // the route is gone
                    continue
                }
                var sent = false
                while context.channel.isWritable, let datagram = end.receive() {
                    write(datagram.bytes, to: remote, ecn: datagram.ecn, context: context)
                    sent = true
                }
                if sent {
                    wrote = true
                    touch(slot, now: now)
                }
                if end.pendingCount > 0 { pending.insert(slot) }
            }
        }
        if wrote { context.flush() }
    }

    private func write(_ bytes: [UInt8], to destination: QuiverCore.SocketAddress, ecn: ECNCodepoint, context: ChannelHandlerContext) {
        let buffer = context.channel.allocator.buffer(bytes: bytes)
        // No metadata for an unmarked datagram: NIO would add a control message for it.
        let metadata = ecn == .notECT ? nil : AddressedEnvelope<ByteBuffer>.Metadata(ecnState: ecn.nioState)
        let envelope = AddressedEnvelope(remoteAddress: destination.nioAddress(mappedToIPv6: mapsToIPv6), data: buffer, metadata: metadata)
        context.write(wrapOutboundOut(envelope), promise: nil)
        statistics.datagramsSent += 1
    }

    // MARK: - Unaddressed routing

    /// The slot routed to `remote`: its own, a new pair (while fewer than `maxPeers`), or the
    /// least recently active one if idle long enough; `nil` when the peer is refused.
    private func slot(for remote: QuiverCore.SocketAddress, routing: Routing) -> Int? {
        let now = Instant.now()
        if let slot = routes[remote] {
            touch(slot, now: now)
            return slot
        }
        let slot: Int
        if slots.count < routing.maxPeers {
            let pair = DatagramPair(addressed: false, capacity: routing.pairCapacity)
            do {
                try loop.listener.attach(.datagrams(pair.first))
            } catch {
                return nil
            }
            slot = slots.count
            slots.append(Slot(pair: pair, remote: nil, lastActive: now))
            watch(pair.second, slot: slot)
            statistics.pairs += 1
        } else if let candidate = oldest, now - slots[candidate].lastActive >= routing.reuseAfter {
            slot = candidate
            if let previous = slots[slot].remote { routes[previous] = nil }
            while slots[slot].pair.second.receive() != nil { statistics.datagramsDropped += 1 }
            statistics.routesReused += 1
        } else {
            statistics.peersRefused += 1
            return nil
        }
        slots[slot].remote = remote
        routes[remote] = slot
        statistics.routes = routes.count
        touch(slot, now: now)
        return slot
    }

    /// Marks a slot active now: it moves to the newest end of the list.
    private func touch(_ slot: Int, now: Instant) {
        slots[slot].lastActive = now
        guard newest != slot else { return }
        // Unlink (a new slot is not linked yet: no neighbours and not the oldest).
        let newer = slots[slot].newer, older = slots[slot].older
        if let newer { slots[newer].older = older }
        if let older { slots[older].newer = newer }
        if oldest == slot { oldest = newer }
        // Link as the newest.
        slots[slot].newer = nil
        slots[slot].older = newest
        if let newest { slots[newest].newer = slot }
        newest = slot
        if oldest == nil { oldest = slot }
    }
}

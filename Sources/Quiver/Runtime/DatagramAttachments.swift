import QuiverCore
import QuiverUDP

/// The datagram attachments of a ``QUICCore`` or ``DTLSCore`` — UDP sockets and datagram pairs —
/// and what both cores do with them: register them with the driver, receive from them (each
/// datagram, each GRO segment, copied once out of the socket's batch into one reused buffer),
/// send a reply through the attachment its peer last arrived on, flush the sockets, count what
/// they report. Used under its core's lock, or on the loop's thread.
final class DatagramAttachments {
    // Read and written for every datagram, always under the core's lock or on the loop's
    // thread: no dynamic exclusivity check (it was about 3 % of a downloading client's
    // instructions).
    @exclusivity(unchecked) private(set) var list: [Attachment] = []
    /// Which attachment a remote address last arrived on (with several addressed attachments).
    @exclusivity(unchecked) private var routeByAddress: [SocketAddress: Int] = [:]
    /// The buffer every received datagram is copied into (reused: no allocation per datagram).
    @exclusivity(unchecked) private var datagram: [UInt8] = []
    /// What the UDP sockets reported (diagnostics).
    private(set) var counters = (sendFailures: 0, peerErrors: 0, receiveErrors: 0)

    /// Listener statistics with the UDP counters filled in, for a core to add its own to.
    var statistics: Listener.Statistics {
        var statistics = Listener.Statistics()
        statistics.udpSendFailures = counters.sendFailures
        statistics.udpPeerErrors = counters.peerErrors
        statistics.udpReceiveErrors = counters.receiveErrors
        return statistics
    }

    /// Adds `attachment`: a UDP socket is watched by `driver`'s poll (tagged with its index), a
    /// pair calls `arrived(index)` — from any thread — when datagrams arrive, and once now.
    /// - Throws: `.configuration` for a TCP attachment (`transport` names the listener's kind).
    func add(_ attachment: Attachment, driver: Driver, transport: String, arrived: @escaping @Sendable (Int) -> Void) throws(QuiverError) {
        let index = list.count
        switch attachment.kind {
        case .udp(let socket):
            try driver.poll.add(socket.pollDescriptor, tag: UInt64(index))
        case .datagrams(let end, _):
            end.setArrivalHandler { arrived(index) }
            arrived(index)
        case .tcpListener, .stream:
            throw QuiverError(.configuration, "a \(transport) listener takes UDP sockets or datagram pairs, not \(attachment)")
        }
        list.append(attachment)
    }

    var localAddresses: [SocketAddress] { list.compactMap(\.localAddress) }

    /// The first UDP socket (a forked child's one socket, ``ForkLink``).
    var firstUDPSocket: UDPSocket? {
        for attachment in list { if case .udp(let socket) = attachment.kind { return socket } }
        return nil
    }

    /// Puts `socket` in place of the UDP socket at `index` (a client moving to a new local
    /// address): `driver` watches the new one instead, and the old one is closed — datagrams
    /// still on their way to it are lost, as on any move, and sent again by the protocol.
    func replaceSocket(at index: Int, with socket: UDPSocket, driver: Driver) throws(QuiverError) {
        guard case .udp(let old) = list[index].kind else { throw QuiverError(.configuration, "attachment \(index) is not a UDP socket") }
        try driver.poll.add(socket.pollDescriptor, tag: UInt64(index))
        driver.poll.remove(old.pollDescriptor)
        old.close()
        list[index] = .udp(socket)
        routeByAddress.removeAll()
    }

    /// Receives what waits: from every UDP socket (at most 16 batches each, then `driver` is woken
    /// to come back after timers and sends), from the pairs listed in `arrivals` (at most 1 024
    /// each, then `again(index)`). Each datagram goes to `deliver(bytes, source, ecn, index)`,
    /// in a buffer `deliver` may change (decrypt in place) and must not keep; an unaddressed
    /// pair's datagrams come from its synthetic address. `routes` bounds the address routes kept
    /// (about four per connection). ICMP reports go to `peerErrors` after being counted.
    @inline(__always)
    func receive(arrivals: Set<Int>, driver: Driver, routes: Int, again: (Int) -> Void, peerErrors: ([UDPPeerError]) -> Void,
                 deliver: (inout [UInt8], SocketAddress, ECNCodepoint, Int) -> Void) {
        for index in list.indices {
            switch list[index].kind {
            case .udp(let socket):
                receive(from: socket, index: index, driver: driver, routes: routes, peerErrors: peerErrors, deliver: deliver)
            case .datagrams(let end, _):
                guard arrivals.contains(index) else { continue }
                var count = 0
                while let received = end.receive() {
                    let source = received.source ?? Attachment.syntheticAddress(index)
                    note(source, on: index, routes: routes)
                    datagram = received.bytes
                    deliver(&datagram, source, received.ecn, index)
                    count += 1
                    if count == 1024 {  // fairness: come back for the rest
                        again(index)
                        break
                    }
                }
            case .tcpListener, .stream:
                break
            }
        }
    }

    @inline(__always)
    private func receive(from socket: UDPSocket, index: Int, driver: Driver, routes: Int, peerErrors: ([UDPPeerError]) -> Void,
                         deliver: (inout [UInt8], SocketAddress, ECNCodepoint, Int) -> Void) {
        for _ in 0..<16 {  // at most 16 batches per call, so timers and sends are not starved
            let count: Int
            do { count = try socket.receive() } catch {
                counters.receiveErrors += 1
                return
            }
            takePeerErrors(socket, peerErrors)
            guard count > 0 else { return }
            for slot in 0..<socket.receivedCount {
                let info = socket.received(slot)
                guard !info.isTruncated else { continue }
                let source = info.source
                note(source, on: index, routes: routes)
                socket.withReceivedBytes(slot) { bytes in
                    // With GRO, equal-sized datagrams from one source arrive coalesced: each
                    // segment is one datagram.
                    let segment = info.segmentSize.map { $0 > 0 ? $0 : bytes.count } ?? bytes.count
                    var start = 0
                    repeat {
                        let end = min(start + segment, bytes.count)
                        datagram.removeAll(keepingCapacity: true)
                        datagram.append(contentsOf: bytes[start..<end])
                        deliver(&datagram, source, info.ecn, index)
                        start = end
                    } while start < bytes.count
                }
            }
        }
        driver.wake()  // more may be waiting: come back after timers and sends
    }

    /// Remembers which attachment `source` arrived on, when replies could go out another.
    @inline(__always)
    private func note(_ source: SocketAddress, on index: Int, routes: Int) {
        guard list.count > 1, list[index].isAddressed else { return }
        if routeByAddress.count > routes + 4096 { routeByAddress.removeAll(keepingCapacity: true) }
        routeByAddress[source] = index
    }

    /// The attachment to send to `destination` through: the one a synthetic address names, the
    /// one the peer last arrived on, else the first addressed one.
    func attachment(for destination: SocketAddress) -> Int {
        if let index = Attachment.syntheticIndex(destination), index < list.count { return index }
        if list.count == 1 { return 0 }
        return routeByAddress[destination] ?? list.firstIndex(where: \.isAddressed) ?? 0
    }

    /// The attachment to send to `destination` from the local address `source`: the one bound
    /// there (a QUIC server answering on its preferred address), else as
    /// ``attachment(for:)`` chooses.
    func attachment(for destination: SocketAddress, from source: SocketAddress?) -> Int {
        if let source, list.count > 1, let index = list.firstIndex(where: { $0.localAddress == source }) { return index }
        return attachment(for: destination)
    }

    /// Sends one datagram through the attachment for `destination`: handed to a pair end, or
    /// queued on a UDP socket (flushed when full). Returns the index of a UDP socket too full to
    /// take it — its output readiness is watched from then on, and the caller keeps the
    /// datagram until ``resume(_:driver:peerErrors:)`` — or `nil` once it is on its way.
    func send(_ bytes: [UInt8], to destination: SocketAddress, driver: Driver, peerErrors: ([UDPPeerError]) -> Void) -> Int? {
        let index = attachment(for: destination)
        switch list[index].kind {
        case .udp(let socket):
            guard !socket.enqueue(bytes, to: destination) else { return nil }
            flush(socket, peerErrors: peerErrors)
            guard !socket.enqueue(bytes, to: destination) else { return nil }
            driver.poll.setInterest(socket.pollDescriptor, tag: UInt64(index), output: true)
            flushAll(peerErrors: peerErrors)
            return index
        case .datagrams(let end, _):
            if Attachment.syntheticIndex(destination) != nil {
                end.send(bytes)
            } else {
                end.send(bytes, from: list[index].localAddress, to: destination)
            }
        case .tcpListener, .stream:
            break
        }
        return nil
    }

    /// Whether the UDP socket `index` that ``send(_:to:driver:peerErrors:)`` found full has
    /// drained (its output readiness is then no longer watched).
    func resume(_ index: Int, driver: Driver, peerErrors: ([UDPPeerError]) -> Void) -> Bool {
        guard case .udp(let socket) = list[index].kind, flush(socket, peerErrors: peerErrors) else { return false }
        driver.poll.setInterest(socket.pollDescriptor, tag: UInt64(index), output: false)
        return true
    }

    /// Sends what `socket` has queued; per-peer failures are counted and dropped, ICMP reports
    /// go to `peerErrors` (a peer that went away is the protocol's timers' business). Returns
    /// `false` when the socket would block with datagrams left.
    @discardableResult
    func flush(_ socket: UDPSocket, peerErrors: ([UDPPeerError]) -> Void) -> Bool {
        let result = try? socket.flush()
        counters.sendFailures += socket.sendFailures.count
        takePeerErrors(socket, peerErrors)
        return result?.wouldBlock == false
    }

    /// ``flush(_:peerErrors:)`` for every UDP socket with datagrams queued.
    func flushAll(peerErrors: ([UDPPeerError]) -> Void) {
        for attachment in list {
            guard case .udp(let socket) = attachment.kind, socket.queuedDatagramCount > 0 else { continue }
            flush(socket, peerErrors: peerErrors)
        }
    }

    /// Lets go of the memory UDP sockets keep for the next datagram trains
    /// (``UDPSocket/takeSpareBuffer()``): for an idle loop giving memory back.
    func removeSpareBuffers() {
        for attachment in list {
            if case .udp(let socket) = attachment.kind { socket.removeSpareBuffers() }
        }
    }

    private func takePeerErrors(_ socket: UDPSocket, _ handle: ([UDPPeerError]) -> Void) {
        let reports = socket.peerErrors
        guard !reports.isEmpty else { return }
        counters.peerErrors += reports.count
        socket.removeAllPeerErrors()
        handle(reports)
    }

    /// A fork hand-off's socket for the child (``Listener/fork(handingOff:)``): bound with
    /// SO_REUSEPORT to the address of the socket the connection's path uses (`local`, else the
    /// one `peer` arrived on) and connected to `peer`, so the kernel delivers the peer's
    /// datagrams to it from now on.
    /// - Throws: `.configuration` when the peer came on a pair (memory cannot move to another
    ///   process) or the listener's socket lacks SO_REUSEPORT; `.io` when binding fails.
    func handOffSocket(to peer: SocketAddress, from local: SocketAddress?, configuration: UDPSocket.Configuration) throws(QuiverError) -> UDPSocket {
        guard case .udp(let listening) = list[attachment(for: peer, from: local)].kind else {
            throw QuiverError(.configuration, "a hand-off needs a UDP socket attachment (an in-memory pair cannot move to another process)")
        }
        guard listening.reusesPort else {
            throw QuiverError(.configuration, "a hand-off binds the child's socket to the listener's port: the listener's UDP socket needs SO_REUSEPORT")
        }
        var configuration = configuration
        configuration.reusePort = true
        let socket = try UDPSocket(bindingTo: listening.localAddress, configuration: configuration)
        try socket.connect(to: peer)
        return socket
    }

    /// Receives what waits in `socket`, a hand-off socket not (yet) among the attachments, as if
    /// it had arrived on attachment `index` (see ``receive(arrivals:driver:routes:again:peerErrors:deliver:)``).
    /// Between its bind and its connect a hand-off socket is an unconnected member of the port's
    /// SO_REUSEPORT group, so the kernel may have put any peer's datagram in it.
    func receiveStray(from socket: UDPSocket, as index: Int, driver: Driver, deliver: (inout [UInt8], SocketAddress, ECNCodepoint, Int) -> Void) {
        receive(from: socket, index: index, driver: driver, routes: 1 << 40, peerErrors: { _ in }, deliver: deliver)
    }

    /// Stops the pairs' arrival callbacks (the core closed).
    func detachPairs() {
        for attachment in list {
            if case .datagrams(let end, _) = attachment.kind { end.setArrivalHandler(nil) }
        }
    }

    /// Closes this process's copies of the sockets and stops the pairs' callbacks, sending
    /// nothing: a forked child's copy of its parent's listener, or the parent's copy of the core
    /// it made for a child.
    func discard() {
        for attachment in list {
            switch attachment.kind {
            case .udp(let socket): socket.close()
            case .datagrams(let end, _): end.setArrivalHandler(nil)
            case .tcpListener, .stream: break
            }
        }
    }
}

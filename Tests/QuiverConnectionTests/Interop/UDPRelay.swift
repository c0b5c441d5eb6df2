#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverCore
import QuiverUDP
import Synchronization

/// A UDP relay between one client at a time and a server, standing for the network: it can
/// lose datagrams at random (seeded), hold back the client's datagrams after the first few
/// (to watch a server's anti-amplification limit), switch its server-side source port or
/// address like a NAT rebinding, drop everything for a while (a blackhole), delay every
/// datagram (a long round trip), and it counts what passes, including Retry packets the
/// server sends. Like a 1500-byte link it carries no datagram over 1472 bytes.
///
/// The client talks to ``port``; the server sees the relay's back sockets.
final class UDPRelay: @unchecked Sendable {
    // @unchecked: the sockets and RNG are used only by the relay thread; the rest is atomic.
    struct Configuration: Sendable {
        /// Probability of dropping a datagram towards the server / towards the client.
        var lossToServer = 0.0
        var lossToClient = 0.0
        /// Forward only this many client datagrams until ``releaseClient()`` (then all).
        var clientDatagramsBeforeHold: Int?
        /// Drop the server's first datagrams that begin with an Initial packet (v1 or v2).
        var serverInitialsToDrop = 0
        var seed: UInt64 = 1
        /// Rebind (``rebind()``) by itself once this many client datagrams were forwarded.
        var rebindAfterClientDatagrams: Int?
        /// A rebinding changes the source address (127.0.0.2), not only the port.
        var rebindAddress = false
        /// Drop every datagram both ways for `duration`, from when this many client datagrams
        /// were forwarded.
        var blackhole: (afterClientDatagrams: Int, duration: Duration)?
        /// Each datagram is forwarded this long after it arrived, both ways (half the round trip
        /// the relay adds).
        var oneWayDelay: Duration = .zero
        /// Datagrams larger than this are dropped, both ways (counted in
        /// ``Counters/oversized``, not ``Counters/dropped``). The default is the UDP payload of
        /// a 1500-byte IPv4 MTU, as on the QUIC interop runner's simulated links: path MTU
        /// discovery settles at an Ethernet size here, and not at loopback's.
        var maxDatagramSize = 1472
    }

    private let front: UDPSocket
    private let back: [UDPSocket]
    private let server: SocketAddress
    private let configuration: Configuration
    private let rebound = Atomic<Bool>(false)
    private let held = Atomic<Bool>(true)
    private let stopping = Atomic<Bool>(false)
    private let reboundCount = Atomic<Int>(0)
    private let counters = Mutex(Counters())
    private let done = DispatchSemaphore(value: 0)
    let port: UInt16

    /// What passed (forwarded bytes and datagrams) and what was dropped.
    struct Counters: Sendable {
        var bytesToServer = 0
        var bytesToClient = 0
        var datagramsToServer = 0
        var datagramsToClient = 0
        var dropped = 0
        /// QUIC Retry packets seen from the server (long header, v1 type 3 or v2 type 0).
        var retries = 0
        /// Server datagrams dropped for ``Configuration/serverInitialsToDrop``.
        var serverInitialsDropped = 0
        /// Datagrams dropped by the blackhole.
        var blackholed = 0
        /// Datagrams dropped for being over ``Configuration/maxDatagramSize`` (path MTU probes).
        var oversized = 0
    }

    init(server: SocketAddress, configuration: Configuration = Configuration()) throws {
        self.server = server
        self.configuration = configuration
        var socketConfiguration = UDPSocket.Configuration()
        socketConfiguration.gro = false  // datagrams are forwarded one by one, as they came
        let local = SocketAddress("127.0.0.1:0")!
        front = try UDPSocket(bindingTo: local, configuration: socketConfiguration)
        let rebound = configuration.rebindAddress ? SocketAddress("127.0.0.2:0")! : local
        back = [try UDPSocket(bindingTo: local, configuration: socketConfiguration), try UDPSocket(bindingTo: rebound, configuration: socketConfiguration)]
        port = front.localAddress.port
        Thread { [self] in run() }.start()
    }

    deinit { stop() }

    /// From now on the client's datagrams reach the server from another source port.
    func rebind() { rebound.store(true, ordering: .releasing) }
    var reboundDatagrams: Int { reboundCount.load(ordering: .relaxed) }
    /// Forwards the client's datagrams again after ``Configuration/clientDatagramsBeforeHold``.
    func releaseClient() { held.store(false, ordering: .releasing) }
    var counts: Counters { counters.withLock { $0 } }

    func stop() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        done.wait()
    }

    /// A datagram waiting out ``Configuration/oneWayDelay``: to the server through back socket
    /// `back`, or to the client (`back` nil).
    private struct Delayed {
        var due: ContinuousClock.Instant
        var bytes: [UInt8]
        var back: Int?
    }

    private func run() {
        defer { done.signal() }
        var client: SocketAddress?
        var rng = SplitMix64(seed: configuration.seed)
        func lose(_ probability: Double) -> Bool {
            probability > 0 && Double(rng.next() >> 11) / Double(1 << 53) < probability
        }
        var fromClient = 0
        var forwardedFromClient = 0
        var blackholeEnds: ContinuousClock.Instant?
        var delayed: [Delayed] = []  // in arrival order: one delay for all, so due times ascend
        var delayedHead = 0
        let clock = ContinuousClock()
        func inBlackhole() -> Bool {
            guard let ends = blackholeEnds, clock.now < ends else { return false }
            counters.withLock {
                $0.blackholed += 1
                $0.dropped += 1
            }
            return true
        }
        func send(_ bytes: [UInt8], back index: Int?) {
            if let index {
                back[index].enqueue(bytes, to: server)
                _ = try? back[index].flush()
            } else if let client {
                front.enqueue(bytes, to: client)
                _ = try? front.flush()
            }
        }
        func oversized(_ bytes: [UInt8]) -> Bool {
            guard bytes.count > configuration.maxDatagramSize else { return false }
            counters.withLock { $0.oversized += 1 }
            return true
        }
        func forward(_ bytes: [UInt8], back index: Int?) {
            guard configuration.oneWayDelay > .zero else { return send(bytes, back: index) }
            delayed.append(Delayed(due: clock.now + configuration.oneWayDelay, bytes: bytes, back: index))
        }
        while !stopping.load(ordering: .acquiring) {
            var fds = ([front] + back).map { pollfd(fd: $0.pollDescriptor, events: Int16(POLLIN), revents: 0) }
            var timeout: Int32 = 20
            if delayedHead < delayed.count {
                let wait = delayed[delayedHead].due - clock.now
                timeout = max(0, min(timeout, Int32(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)))
            }
            _ = poll(&fds, nfds_t(fds.count), timeout)
            while (try? front.receive()) ?? 0 > 0 {
                for index in 0..<front.receivedCount {
                    client = front.received(index).source
                    let bytes = front.withReceivedBytes(index) { Array($0) }
                    if oversized(bytes) { continue }
                    fromClient += 1
                    if let limit = configuration.clientDatagramsBeforeHold, fromClient > limit, held.load(ordering: .acquiring) {
                        counters.withLock { $0.dropped += 1 }
                        continue
                    }
                    if inBlackhole() { continue }
                    if lose(configuration.lossToServer) {
                        counters.withLock { $0.dropped += 1 }
                        continue
                    }
                    forwardedFromClient += 1
                    if let after = configuration.rebindAfterClientDatagrams, forwardedFromClient > after { rebind() }
                    if let blackhole = configuration.blackhole, forwardedFromClient == blackhole.afterClientDatagrams {
                        blackholeEnds = clock.now + blackhole.duration
                    }
                    let isRebound = rebound.load(ordering: .acquiring)
                    if isRebound { reboundCount.add(1, ordering: .relaxed) }
                    counters.withLock {
                        $0.bytesToServer += bytes.count
                        $0.datagramsToServer += 1
                    }
                    forward(bytes, back: isRebound ? 1 : 0)
                }
            }
            for socket in back {
                while (try? socket.receive()) ?? 0 > 0 {
                    for index in 0..<socket.receivedCount {
                        guard client != nil else { continue }
                        let bytes = socket.withReceivedBytes(index) { Array($0) }
                        if oversized(bytes) { continue }
                        if bytes.count > 5, bytes[0] & 0x80 != 0 {
                            let version = bytes[1...4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                            let type = (bytes[0] >> 4) & 0x3
                            if (version == 1 && type == 3) || (version == 0x6b33_43cf && type == 0) { counters.withLock { $0.retries += 1 } }
                            let initial = (version == 1 && type == 0) || (version == 0x6b33_43cf && type == 1)
                            if initial, counters.withLock({ $0.serverInitialsDropped }) < configuration.serverInitialsToDrop {
                                counters.withLock {
                                    $0.serverInitialsDropped += 1
                                    $0.dropped += 1
                                }
                                continue
                            }
                        }
                        if inBlackhole() { continue }
                        if lose(configuration.lossToClient) {
                            counters.withLock { $0.dropped += 1 }
                            continue
                        }
                        counters.withLock {
                            $0.bytesToClient += bytes.count
                            $0.datagramsToClient += 1
                        }
                        forward(bytes, back: nil)
                    }
                }
            }
            while delayedHead < delayed.count, delayed[delayedHead].due <= clock.now {
                send(delayed[delayedHead].bytes, back: delayed[delayedHead].back)
                delayedHead += 1
            }
            if delayedHead == delayed.count {
                delayed.removeAll(keepingCapacity: true)
                delayedHead = 0
            }
        }
    }
}

extension UDPRelay {
    /// Echoes `data` over `connection` (made through this relay), writing on a thread of its
    /// own while reading, and moves the client to the relay's other port — a NAT rebinding —
    /// once a third has come back; returns what came back. A connection whose datagrams stop
    /// reaching its server stalls rather than fails, so after 60 s it is closed.
    func echoRebindingOnce(_ data: [UInt8], over connection: Connection) throws -> [UInt8] {
        try DemoTests.echo(data, over: connection, movingOnce: rebind)
    }
}

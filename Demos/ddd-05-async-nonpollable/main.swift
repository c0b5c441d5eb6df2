// ddd-05-async-nonpollable: SwiftNIO owns the sockets; Quiver's listeners are not pollable.
// A MultiThreadedEventLoopGroup with one event loop per worker; each worker has, per port, its
// own NIO channel bound with SO_REUSEPORT (the kernel spreads clients over the workers) — a UDP
// datagram channel for QUIC, a TCP server channel with its accepted channels on the same loop
// for TLS — and its own listener in application-driven mode on in-memory pairs. The QuiverNIO
// bridge moves datagrams (with source and destination addresses) or bytes between the channels
// and the pairs, runs every `handleEvents()` on the loop and re-arms one loop timer to the
// listener's `nextDeadline` after each round. The application's work — non-blocking accept and
// echo with backpressure, as in ddd-04 — runs on the loop after each round's event handling. A
// connection stays on its worker for life. TLS → QUIC: `--quic` only changes `demo.transport`.
//
// `--unaddressed` (the design's demo 06): the pairs carry no addresses. For QUIC the bridge
// routes by itself: one pair per remote address (source IP and port), each attached to the
// worker's listener, and what the listener sends into a pair goes to that pair's remote
// address; the listener knows the peer only by the synthetic address `fd71:7569:7665:7200::<n>`
// port 0 that names the pair, and that is what the log shows. At most 1024 pairs per
// channel; a pair is handed to a new remote address only after 15 s without traffic, otherwise
// the new address is refused. For TLS the connections simply have no peer address.
//
// Retry with `--unaddressed`: the QUIC engine seals a Retry token to the peer address it sees —
// the synthetic address of the pair, not the client's IP address and port. A token is thus
// accepted only when the client's next Initial comes through the same pair, i.e. from the
// same remote address while the bridge keeps that route; since a pair is reused for another
// remote address only after 15 s of silence (longer than the 10 s Retry token lifetime), a
// token cannot be replayed from another address through a reused pair. NEW_TOKEN tokens
// would be bound to the pair too, so this demo turns them off in unaddressed mode. (Retry is
// sent under the endpoint's default policy: once more than 128 handshakes are pending.)
import DemoSupport
import Foundation
import NIOCore
import NIOPosix
import Quiver
import QuiverCore
import QuiverNIO

let demo = Demo.start(name: "ddd-05-async-nonpollable", defaultWorkers: 3, defaultListeners: 3)
let log = demo.log
let unaddressed = demo.flags.contains("--unaddressed")

/// The application's side of one port on one worker: its connections, served after every
/// round of the port's listener. Touched only on the worker's event loop.
final class PortService {
    let worker: Int
    let port: UInt16
    private var connections: [EchoConnection] = []

    init(worker: Int, port: UInt16) {
        self.worker = worker
        self.port = port
    }

    /// Accept, echo, close: until every `try…` call would block.
    func serve(_ listener: Listener) {
        while let connection = try? listener.tryAccept() {
            let peer = connection.peerAddress.map { "\($0)" } ?? "an unaddressed peer"
            log.info("worker \(worker): connection from \(peer) on port \(port)")
            connections.append(EchoConnection(connection, peer: peer))
        }
        for i in connections.indices.reversed() where connections[i].step() {
            let done = connections.remove(at: i)
            log.info("worker \(worker): \(done.peer) done, \(done.echoed) bytes echoed, \(done.connection.closeInfo.map { "\($0)" } ?? "closed")")
        }
    }
}

/// One event-loop worker: per port a NIO channel and a listener driven on the loop.
final class Worker: Sendable {
    let index: Int
    let eventLoop: any EventLoop
    private let ports: [(loop: ListenerLoop, channel: any Channel)]

    init(index: Int, eventLoop: any EventLoop) throws {
        self.index = index
        self.eventLoop = eventLoop
        var options = Listener.Options()
        options.driver = .applicationDriven
        if unaddressed { options.issueNewTokens = false }
        var ports: [(loop: ListenerLoop, channel: any Channel)] = []
        for port in demo.ports {
            let listener = try Listener(demo.transport, tls: demo.tls, attachments: [], options: options)
            let loop = ListenerLoop(listener: listener, eventLoop: eventLoop)
            try eventLoop.submit {
                let service = PortService(worker: index, port: port)
                loop.setRoundHandler { service.serve($0) }
            }.wait()
            let channel = try loop.bind(to: demo.bindAddress(port: port).nioAddress(), reusePort: true, addressed: !unaddressed).wait()
            ports.append((loop, channel))
        }
        self.ports = ports
    }

    /// Closes the listeners (CONNECTION_CLOSE / close_notify go out through the bridges, whose
    /// drains are queued before the channels' close), then the channels.
    func stop() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { [ports] in
            for port in ports { port.loop.close() }
            return self.eventLoop.submit {}.flatMap {
                EventLoopFuture.andAllComplete(ports.map { $0.channel.close() }, on: self.eventLoop)
            }
        }
    }
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: demo.workers)
let workers: [Worker]
do {
    var loops = group.makeIterator()
    workers = try (1...demo.workers).map { index in try Worker(index: index, eventLoop: loops.next()!) }
} catch {
    log.error("cannot listen: \(error)")
    try? group.syncShutdownGracefully()
    exit(1)
}
let done = DispatchSemaphore(value: 0)
demo.onInterrupt {
    for worker in workers { try? worker.stop().wait() }
    try? group.syncShutdownGracefully()
    done.signal()
}
log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with \(demo.workers) SwiftNIO event-loop workers\(unaddressed ? ", unaddressed pairs" : "")")
done.wait()
log.notice("stopped")
exit(0)

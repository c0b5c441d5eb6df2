// ddd-01-fork: one listener; accept a connection (blocking), fork; the child serves that one
// connection with blocking echo and exits; the parent goes on accepting and reaps its children.
// `Listener.fork(handingOff:)` does the moving, the same call for both transports: for TLS the
// child takes the TCP socket; for QUIC the connection is re-homed on the child's own UDP socket,
// bound to the listener's port with SO_REUSEPORT and connected to the client, and the parent's
// endpoint forgets it — but passes on to the child what reaches it for the connection when the
// client moves to another address (NAT rebinding, migration), so clients may migrate. TLS → QUIC:
// `--quic` only changes `demo.transport` (the listener socket has SO_REUSEPORT for both).
//
// No Dispatch here: libdispatch's threads do not survive fork, so signals are taken by a
// sigwait thread, and children block signals until their own sigwait thread runs.
#if canImport(Glibc)
import Glibc
#endif
import DemoSupport
import Foundation
import Quiver
import Synchronization

let demo = Demo.start(name: "ddd-01-fork", defaultWorkers: 1, defaultListeners: 1)
let log = demo.log

/// SIGINT, SIGTERM and SIGCHLD are blocked in every thread (threads inherit the mask) and taken
/// by `sigwait` on a thread of our own.
var signals = sigset_t()
sigemptyset(&signals)
for number in [SIGINT, SIGTERM, SIGCHLD] { sigaddset(&signals, number) }
pthread_sigmask(SIG_BLOCK, &signals, nil)
let handledSignals = signals

/// Runs `handler` for each signal of `set` on a new thread, forever.
func takeSignals(_ set: sigset_t, _ handler: @escaping @Sendable (Int32) -> Void) {
    Thread {
        var set = set
        while true {
            var number: Int32 = 0
            guard sigwait(&set, &number) == 0 else { continue }
            handler(number)
        }
    }.start()
}

/// The child: serves its one connection, lets the close reach the client, exits.
func serveChild(_ connection: Connection) -> Never {
    let pid = getpid()
    let peer = connection.peerAddress.map { "\($0)" } ?? "?"
    var childSignals = sigset_t()
    sigemptyset(&childSignals)
    for number in [SIGINT, SIGTERM] { sigaddset(&childSignals, number) }
    takeSignals(childSignals) { _ in
        try? connection.shutdown(.rapid(code: 0, reason: "server shutting down"))
    }
    log.info("child \(pid): serving \(peer)")
    let bytes = Echo.serve(connection)
    connection.waitUntilClosed()
    log.info("child \(pid): \(peer) done, \(bytes) bytes echoed")
    _exit(0)
}

let listener: Listener
do {
    var options = Listener.Options()
    options.logger = log  // failed handshakes, and each child's channel as it closes
    listener = try demo.listener(port: demo.port, reusePort: true, options: options)
} catch {
    log.error("cannot listen: \(error)")
    exit(1)
}

let stopping = Atomic<Bool>(false)
let children = Mutex<Set<pid_t>>([])

/// Reaps the children that ended (never blocks).
@Sendable func reap() {
    while true {
        var status: Int32 = 0
        let pid = waitpid(-1, &status, WNOHANG)
        guard pid > 0 else { return }
        children.withLock { _ = $0.remove(pid) }
    }
}

takeSignals(handledSignals) { number in
    if number == SIGCHLD { return reap() }
    guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
    log.notice("signal \(number): shutting down")
    if let quic = listener.statistics.quic {  // what the parent passed on to children whose clients moved
        log.notice("\(quic.datagramsForwarded) datagrams forwarded to children, \(quic.forkChannels) channels and \(quic.forkRoutes) connection IDs still routed to them")
    }
    listener.close()  // wakes accept
    for child in children.withLock({ $0 }) { kill(child, SIGTERM) }  // each closes its connection and exits
}

log.notice("listening on \(demo.transportName) port \(demo.port), a child process per connection")
while !stopping.load(ordering: .acquiring) {
    let connection: Connection
    do {
        connection = try listener.accept()
    } catch {
        break  // closed by the signal thread
    }
    let peer = connection.peerAddress.map { "\($0)" } ?? "?"
    do {
        switch try listener.fork(handingOff: connection) {
        case .child(let handedOver):
            serveChild(handedOver)
        case .parent(let child):
            children.withLock { _ = $0.insert(child) }
            log.info("child \(child): connection from \(peer)")
            if stopping.load(ordering: .acquiring) { kill(child, SIGTERM) }  // raced with shutdown
        }
    } catch {
        log.error("cannot hand \(peer) to a child: \(error)")
        try? connection.shutdown(.rapid(code: 1, reason: "server error"))
    }
}

// Reap every child (they were told to stop); SIGCHLD stays blocked, so waitpid sees them all.
while true {
    var status: Int32 = 0
    let pid = waitpid(-1, &status, 0)
    if pid > 0 { continue }
    if errno == EINTR { continue }
    break  // ECHILD: none left
}
log.notice("stopped")
exit(0)

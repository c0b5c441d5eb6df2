// ddd-02-prefork: the parent makes the listening sockets, forks the workers (default 5) and
// waits. TLS: every worker accepts on the shared listening sockets. QUIC: each port is a
// SO_REUSEPORT group with one UDP socket per worker and a BPF program that steers datagrams by
// the worker id the server puts in its connection IDs — so every packet of a connection reaches
// its worker, even after the client's address changes; Initials are spread by a DCID byte.
// Each worker serves its connections concurrently (a thread per connection, blocking echo).
// TLS → QUIC: the sockets made before fork differ (a shared TCP listener vs a steering group and
// worker connection IDs); accepting and echoing are the same code.
#if canImport(Glibc)
import Glibc
#endif
import DemoSupport
import Foundation
import Quiver
import QuiverTLSSocket
import QuiverUDP

let demo = Demo.start(name: "ddd-02-prefork", defaultWorkers: 5, defaultListeners: 3)
let log = demo.log

/// The sockets made before fork: per port, one TCP listener, or one UDP socket per worker —
/// for QUIC a steering group (connection IDs name the worker), for DTLS a DTLS steering group
/// (the kernel's hash of the 4-tuple keeps a client's handshake on one worker, whose
/// Connection IDs keep it there when the client's address changes) whose workers share one
/// cookie secret.
enum Sockets {
    case tcp([TCPSocket])
    case quic([[UDPSocket]])
    case dtls([[UDPSocket]], cookieSecret: [UInt8])
}

/// One worker process: listeners on its sockets, a Poller acceptor, a thread per connection.
/// Never returns.
func runWorker(_ worker: Int, _ sockets: Sockets) -> Never {
    let pid = getpid()
    var listeners: [(Listener, UInt16)] = []
    do {
        switch sockets {
        case .tcp(let listening):
            for (index, socket) in listening.enumerated() {
                listeners.append((try Listener(.tcp, tls: demo.tls, attachments: [.tcpListener(socket)]), demo.ports[index]))
            }
        case .quic(let groups):
            var options = Listener.Options()
            options.workerID = UInt16(worker)  // in every connection ID: the steering program's key
            for (index, group) in groups.enumerated() {
                for (other, socket) in group.enumerated() where other != worker { socket.close() }  // not ours
                listeners.append((try Listener(.quic, tls: demo.tls, attachments: [.udp(group[worker])], options: options), demo.ports[index]))
            }
        case .dtls(let groups, let cookieSecret):
            var options = Listener.Options()
            options.dtlsCookieSecret = cookieSecret  // a cookie from any worker is good at every other
            options.workerID = UInt16(worker)  // in every Connection ID: the steering program's key
            for (index, group) in groups.enumerated() {
                for (other, socket) in group.enumerated() where other != worker { socket.close() }  // not ours
                listeners.append((try Listener(.dtls, tls: demo.tls, attachments: [.udp(group[worker])], options: options), demo.ports[index]))
            }
        }
    } catch {
        log.error("worker \(worker) (pid \(pid)): cannot listen: \(error)")
        exit(1)
    }
    let opened = listeners
    demo.onInterrupt {
        for (listener, _) in opened { listener.close() }
    }
    log.info("worker \(worker) (pid \(pid)) ready")
    let connections = DispatchGroup()
    let poller = Poller()
    for (listener, _) in listeners { poller.add(.listener(listener), interest: .incomingConnection) }
    accepting: while true {
        for ready in poller.wait() {
            guard case .listener(let listener) = ready.item else { continue }
            if ready.events.contains(.error) { break accepting }
            let port = listeners.first { $0.0 === listener }?.1 ?? 0
            while let connection = try? listener.tryAccept() {
                let peer = connection.peerAddress.map { "\($0)" } ?? "?"
                log.info("worker \(worker) (pid \(pid)): connection from \(peer) on port \(port)")
                connections.enter()
                Thread {
                    defer { connections.leave() }
                    let bytes = Echo.serve(connection)
                    log.info("worker \(worker) (pid \(pid)): \(peer) done, \(bytes) bytes echoed")
                }.start()
            }
        }
    }
    connections.wait()
    exit(0)
}

// The sockets, before fork (no thread exists yet, so fork is safe).
let sockets: Sockets
do {
    switch demo.transport {
    case .tcp:
        sockets = .tcp(try demo.ports.map { try TCPSocket.listen(on: demo.bindAddress(port: $0)) })
    case .quic:
        sockets = .quic(try demo.ports.map {
            try UDPSocket.steeringGroup(bindingTo: demo.bindAddress(port: $0), count: demo.workers, configuration: Demo.udpConfiguration)
        })
    case .dtls:
        sockets = .dtls(try demo.ports.map {
            try UDPSocket.steeringGroup(bindingTo: demo.bindAddress(port: $0), count: demo.workers, configuration: Demo.dtlsConfiguration, dtls: true)
        }, cookieSecret: RandomSource.system.bytes(32))
    case .sctp, .dtlsOverSCTP, .sctpOverDTLS:
        // Workers sharing a port need SCTP packets steered by verification tag: not built yet.
        log.error("prefork over SCTP is not built yet: run ddd-03-mt or ddd-04-async with --sctp")
        exit(2)
    }
} catch {
    log.error("cannot listen: \(error)")
    exit(1)
}

var children: [pid_t] = []
for worker in 0..<demo.workers {
    let pid = fork()
    if pid == 0 { runWorker(worker, sockets) }
    guard pid > 0 else {
        log.error("fork failed: \(String(cString: strerror(errno)))")
        for child in children { kill(child, SIGTERM) }
        exit(1)
    }
    children.append(pid)
}
let workerPIDs = children
demo.onInterrupt {
    for child in workerPIDs { kill(child, SIGTERM) }  // each worker closes its listeners and exits
}
log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with \(demo.workers) worker processes \(workerPIDs)")
var failed = false
for child in workerPIDs {
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0, errno == EINTR {}
    if status != 0 { failed = true }
}
log.notice("stopped")
exit(failed ? 1 : 0)

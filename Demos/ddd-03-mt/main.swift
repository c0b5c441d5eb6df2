// ddd-03-mt: one acceptor thread waits on every listener at once (a Poller) and hands each
// connection to a pool of worker threads through a queue; workers run blocking echo.
// TLS → QUIC: `--quic` only changes `demo.transport`; the code below is the same for both.
import DemoSupport
import Foundation
import Quiver

let demo = Demo.start(name: "ddd-03-mt", defaultWorkers: 5, defaultListeners: 3)
let log = demo.log

/// The hand-off queue between the acceptor and the workers; `close()` releases every worker.
final class ConnectionQueue: @unchecked Sendable {
    // @unchecked: state guarded by `condition`.
    private let condition = NSCondition()
    private var items: [(Connection, UInt16)] = []
    private var closed = false

    func put(_ connection: Connection, port: UInt16) {
        condition.lock()
        items.append((connection, port))
        condition.signal()
        condition.unlock()
    }

    func take() -> (Connection, UInt16)? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty, !closed { condition.wait() }
        return items.isEmpty ? nil : items.removeFirst()
    }

    func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}

let listeners: [Listener]
do {
    listeners = try demo.ports.map { try demo.listener(port: $0) }
} catch {
    log.error("cannot listen: \(error)")
    exit(1)
}
let queue = ConnectionQueue()
let workersDone = DispatchGroup()
for worker in 1...demo.workers {
    workersDone.enter()
    Thread {
        defer { workersDone.leave() }
        while let (connection, port) = queue.take() {
            let peer = connection.peerAddress.map { "\($0)" } ?? "?"
            log.info("worker \(worker): connection from \(peer) on port \(port)")
            let bytes = Echo.serve(connection)
            log.info("worker \(worker): \(peer) done, \(bytes) bytes echoed, \(connection.closeInfo.map { "\($0)" } ?? "open")")
        }
    }.start()
}
demo.onInterrupt {
    queue.close()
    for listener in listeners { listener.close() }  // also ends connections blocked in reads
}
log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with \(demo.workers) worker threads")

// The acceptor: one Poller over all listeners.
let poller = Poller()
for listener in listeners { poller.add(.listener(listener), interest: .incomingConnection) }
accepting: while true {
    for ready in poller.wait() {
        guard case .listener(let listener) = ready.item else { continue }
        if ready.events.contains(.error) { break accepting }  // closed by the signal handler
        while let connection = try? listener.tryAccept() {
            queue.put(connection, port: listener.localAddresses.first?.port ?? 0)
        }
    }
}
workersDone.wait()
log.notice("stopped")
exit(0)

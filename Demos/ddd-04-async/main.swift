// ddd-04-async: isolated event-loop workers. Each worker owns one listener per port on a
// SO_REUSEPORT socket (the kernel spreads clients over the workers), in application-driven
// mode: a Dispatch read source on the listener's poll descriptor, a Dispatch timer re-armed to
// the listener's next deadline after every round, and non-blocking accept/read/write with
// backpressure (a stream is not read while its echo is still being written). A connection
// stays on its worker for life. TLS → QUIC: `--quic` only changes `demo.transport`.
import DemoSupport
import Foundation
import Quiver
import QuiverCore

let demo = Demo.start(name: "ddd-04-async", defaultWorkers: 3, defaultListeners: 3)
let log = demo.log

/// One event-loop worker: its queue, listeners, connections, read sources and timer.
final class Worker: @unchecked Sendable {
    // @unchecked: everything mutable is touched only on `queue`.
    let index: Int
    let queue: DispatchQueue
    private var listeners: [(listener: Listener, port: UInt16, source: any DispatchSourceRead)] = []
    private var connections: [EchoConnection] = []
    private let timer: any DispatchSourceTimer
    private var stopped = false

    init(index: Int) throws {
        self.index = index
        queue = DispatchQueue(label: "worker-\(index)")
        timer = DispatchSource.makeTimerSource(queue: queue)
        var options = Listener.Options()
        options.driver = .applicationDriven
        for port in demo.ports {
            let listener = try demo.listener(port: port, reusePort: true, options: options)
            let source = DispatchSource.makeReadSource(fileDescriptor: listener.pollDescriptor!, queue: queue)
            listeners.append((listener, port, source))
        }
        for entry in listeners {
            entry.source.setEventHandler { [unowned self] in self.round() }
            entry.source.resume()
        }
        timer.setEventHandler { [unowned self] in self.round() }
        timer.resume()
        queue.async { self.round() }
    }

    /// One round: I/O and timers of every listener, accept, echo, then re-arm the timer.
    private func round() {
        guard !stopped else { return }
        for entry in listeners {
            entry.listener.handleEvents()
            while let connection = try? entry.listener.tryAccept() {
                let peer = connection.peerAddress.map { "\($0)" } ?? "?"
                log.info("worker \(index): connection from \(peer) on port \(entry.port)")
                connections.append(EchoConnection(connection, peer: peer))
            }
        }
        for i in connections.indices.reversed() where connections[i].step() {
            let done = connections.remove(at: i)
            log.info("worker \(index): \(done.peer) done, \(done.echoed) bytes echoed, \(done.connection.closeInfo.map { "\($0)" } ?? "closed")")
        }
        for entry in listeners { entry.listener.handleEvents() }  // send what the round produced
        let next = listeners.compactMap(\.listener.nextDeadline).min()
        let now = Instant.now()
        timer.schedule(deadline: next.map { .now() + .nanoseconds(Int(max(0, ($0 - now).nanosecondsClamped))) } ?? .distantFuture)
    }

    /// Closes everything on the worker's queue and waits for it.
    func stop() {
        queue.sync {
            stopped = true
            timer.cancel()
            for entry in listeners {
                entry.source.cancel()
                entry.listener.close()
            }
            connections.removeAll()
        }
    }
}

let workers: [Worker]
do {
    workers = try (1...demo.workers).map { try Worker(index: $0) }
} catch {
    log.error("cannot listen: \(error)")
    exit(1)
}
let done = DispatchSemaphore(value: 0)
demo.onInterrupt {
    for worker in workers { worker.stop() }
    done.signal()
}
log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with \(demo.workers) event-loop workers")
done.wait()
log.notice("stopped")
exit(0)

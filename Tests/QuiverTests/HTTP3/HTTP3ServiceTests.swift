import Foundation
import Logging
import Quiver
import QuiverCore
import QuiverHTTP3
import ServiceLifecycle
import Synchronization
import Testing

/// `HTTP3Service` and `Listener` in a `ServiceGroup`: the graceful shutdown drains HTTP/3
/// (RFC 9114 §5.2) and closes listeners.
@Suite("HTTP/3 and listeners as swift-service-lifecycle services")
struct HTTP3ServiceTests {
    /// Lets a handler wait until the test releases it. A handler counts as arrived only once
    /// its continuation is registered, under the same lock `open` takes: an `open` between the
    /// two would otherwise resume nobody and leave the request waiting for ever (which the
    /// parallel test run hit: the server drained for a request that never ended, and the
    /// client idled out).
    final class Gate: Sendable {
        private struct State {
            var waiting: [CheckedContinuation<Void, Never>] = []
            var arrivals = 0
            var opened = false
        }
        private let state = Mutex(State())
        var arrivals: Int { state.withLock { $0.arrivals } }

        func wait() async {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    state.arrivals += 1
                    if state.opened { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        }

        func open() {
            let waiting = state.withLock { state in
                state.opened = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    @Test("graceful shutdown: GOAWAY, the request in progress completes, a new one is refused, H3_NO_ERROR, the service returns")
    func gracefulDrain() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.quic, tls: Identity.server(alpn: ["h3"]), bind: "127.0.0.1:0")
            let gate = Gate()
            let seen = Mutex<[String]>([])
            let service = HTTP3Service(listener: listener) { request, _, response in
                seen.withLock { $0.append(request.path ?? "?") }
                if request.path == "/slow" { await gate.wait() }
                try await response.writeHead(HTTPResponse(status: .ok))
                try await response.write(Array((request.path ?? "").utf8))
            }
            let group = ServiceGroup(services: [service], logger: Logger(label: "test"))
            // Unstructured tasks do not inherit the executor preference (SE-0417): on Swift
            // Testing's pool, which the parallel run starves, the service would not accept
            // the connection in time (the failure seen: the server never saw /fast).
            let running = Task(executorPreference: DedicatedExecutor.shared) { try await group.run() }
            let connection = try await Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                                          tls: Identity.client(alpn: ["h3"]), serverName: "localhost")
            let client = try HTTP3Client(connection)
            let stage = Mutex("fast")
            do {
                #expect(try await client.get("/fast", authority: "localhost").body == Array("/fast".utf8))
                stage.withLock { $0 = "slow sent" }
                let slow = Task(executorPreference: DedicatedExecutor.shared) { try await client.get("/slow", authority: "localhost") }
                while gate.arrivals == 0 { await Task.yield() }
                stage.withLock { $0 = "shutdown" }
                await group.triggerGracefulShutdown()
                // The GOAWAY arrives; a request after it is refused, by the client or by the server.
                var refused = false
                var served = 0
                let deadline = ContinuousClock.now + .seconds(30)
                while !refused, ContinuousClock.now < deadline {
                    stage.withLock { $0 = "late \(served)" }
                    do {
                        _ = try await client.get("/late", authority: "localhost")
                        served += 1
                    } catch let error as HTTP3Error where error.code == .requestRejected {
                        refused = true
                    }
                }
                #expect(refused)
                stage.withLock { $0 = "slow answer" }
                gate.open()
                let answer = try await slow.value
                #expect(answer.status == .ok && answer.body == Array("/slow".utf8))
                stage.withLock { $0 = "closing" }
                await connection.waitUntilClosed()
                #expect(connection.closeInfo?.code == HTTP3Error.Code.noError.rawValue, "\(String(describing: connection.closeInfo))")
            } catch {
                Issue.record("at \(stage.withLock { $0 }): \(error); QPACK \(client.qpackStatistics); server saw \(seen.withLock { $0 }); listener \(listener.statistics)")
                throw error
            }
            try await running.value  // the service returned: the group ended
        }
    }

    @Test("a listener in a group closes at the graceful shutdown, ending an accept loop")
    func listenerService() async throws {
        try await onDedicatedThreads {
            let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
            let group = ServiceGroup(services: [listener], logger: Logger(label: "test"))
            // Unstructured tasks do not inherit the executor preference (SE-0417): on Swift
            // Testing's pool, which the parallel run starves, the service would not accept
            // the connection in time (the failure seen: the server never saw /fast).
            let running = Task(executorPreference: DedicatedExecutor.shared) { try await group.run() }
            let accepting = Task(executorPreference: DedicatedExecutor.shared) { () -> Int in
                var count = 0
                do { for try await _ in listener.connections { count += 1 } } catch {}
                return count
            }
            await group.triggerGracefulShutdown()
            try await running.value
            #expect(await accepting.value == 0)
        }
    }
}

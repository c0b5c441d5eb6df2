// ddd-04b-async-await: Swift concurrency instead of threads or hand-written event loops. Each
// listener's connections are an AsyncSequence; each connection is a child task of its
// listener's task, and each QUIC stream a child task of its connection's (AsyncEcho). No
// thread is created or blocked per connection: tasks suspend while they wait, and each
// connection's tasks run on its event loop (`connection.taskExecutor`), the thread that does
// its I/O, so a read or write resumed by input crosses no thread. SIGINT closes the
// listeners, which ends their sequences and connections, and with them every task.
// TLS → QUIC: `--quic` only changes `demo.transport`; the code below is the same for both.
import DemoSupport
import Glibc
import Quiver

enum Server {
    static func run(_ demo: Demo) async -> Int32 {
        let log = demo.log
        let listeners: [Listener]
        do {
            listeners = try demo.ports.map { try demo.listener(port: $0) }
        } catch {
            log.error("cannot listen: \(error)")
            return 1
        }
        demo.onInterrupt { for listener in listeners { listener.close() } }
        log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with one task per connection")
        await withDiscardingTaskGroup { group in
            for (index, listener) in listeners.enumerated() {
                group.addTask {
                    await withDiscardingTaskGroup { connections in
                        do {
                            for try await connection in listener.connections {
                                connections.addTask(executorPreference: connection.taskExecutor) {
                                    let peer = connection.peerAddress.map { "\($0)" } ?? "?"
                                    log.info("listener \(index + 1): connection from \(peer) on port \(demo.ports[index])")
                                    let bytes = await AsyncEcho.serve(connection)
                                    log.info("listener \(index + 1): \(peer) done, \(bytes) bytes echoed, \(connection.closeInfo.map { "\($0)" } ?? "open")")
                                }
                            }
                        } catch {
                            log.error("listener \(index + 1): \(error)")
                        }
                    }
                }
            }
        }
        log.notice("stopped")
        return 0
    }
}

exit(await Server.run(Demo.start(name: "ddd-04b-async-await", defaultWorkers: 1, defaultListeners: 3)))

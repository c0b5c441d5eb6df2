// ddd-07-dtls: a DTLS echo server of isolated async workers. Each listener (one per port) runs
// `--workers` event loops, each on its own UDP socket in one SO_REUSEPORT group: the kernel
// hashes a client's address and port to one socket, so a client's datagrams — its ClientHello
// with the cookie included — always reach the same worker, and every worker's listener checks
// cookies with the same HMAC key (stateless: a ClientHello flood keeps no state). Each
// connection is a task on its worker's loop (`connection.taskExecutor`): the thread that does
// its I/O runs its echo, and no thread is created or blocked per connection. Datagram
// semantics: each message is read whole and echoed as one message. DTLS → QUIC: `--quic` only
// changes `demo.transport`; the code below is the same for both (and for TLS, `--tcp`).
import DemoSupport
import Glibc
import Quiver

enum Server {
    static func run(_ demo: Demo) async -> Int32 {
        let log = demo.log
        var options = Listener.Options()
        options.eventLoops = demo.workers
        let listeners: [Listener]
        do {
            listeners = try demo.ports.map { try Listener(demo.transport, tls: demo.tls, bind: "\(demo.bindAddress(port: $0))", options: options) }
        } catch {
            log.error("cannot listen: \(error)")
            return 1
        }
        demo.onInterrupt {
            for (index, listener) in listeners.enumerated() {
                if let dtls = listener.statistics.dtls {
                    log.info("port \(demo.ports[index]): \(dtls.helloVerifyRequestsSent + dtls.helloRetryRequestsSent) cookies sent statelessly (\(dtls.helloRetryRequestsSent) in DTLS 1.3 HelloRetryRequests), \(dtls.connectionsCreated) connections")
                }
                listener.close()
            }
        }
        log.notice("listening on \(demo.transportName) ports \(demo.ports.map(String.init).joined(separator: ", ")) with \(demo.workers) isolated workers each")
        await withDiscardingTaskGroup { group in
            for (index, listener) in listeners.enumerated() {
                group.addTask {
                    await withDiscardingTaskGroup { connections in
                        do {
                            for try await connection in listener.connections {
                                connections.addTask(executorPreference: connection.taskExecutor) {
                                    let peer = connection.peerAddress.map { "\($0)" } ?? "?"
                                    log.info("port \(demo.ports[index]): connection from \(peer)")
                                    let bytes = await AsyncEcho.serve(connection)
                                    log.info("port \(demo.ports[index]): \(peer) done, \(bytes) bytes echoed, \(connection.closeInfo.map { "\($0)" } ?? "open")")
                                }
                            }
                        } catch {
                            log.error("port \(demo.ports[index]): \(error)")
                        }
                    }
                }
            }
        }
        log.notice("stopped")
        return 0
    }
}

exit(await Server.run(Demo.start(name: "ddd-07-dtls", defaultWorkers: 2, defaultListeners: 3, defaultTransport: .dtls)))

// ddd-08-sctp: an SCTP echo server on Quiver's own SCTP in Swift (these kernels have no SCTP;
// no C library is used). Each SCTP stream is echoed on itself, message by message; a stream's
// end (a stream reset, RFC 6525) is echoed as its end, and the client's end of stream 0 closes
// the association. Three ways to carry it, one flag each, with the same echo code:
//
// - default: DTLS over SCTP (RFC 6083, what OpenSSL's DTLS/SCTP does): SCTP over UDP (RFC 6951
//   encapsulation), a DTLS 1.2 connection on each association, each record one SCTP message,
//   SCTP-AUTH on DATA keyed from the DTLS exporter;
// - `--over-dtls`: SCTP over DTLS (RFC 8261, WebRTC data channels): one DTLS connection per
//   client, each SCTP packet in one record (use_srtp is offered, as WebRTC peers need);
// - `--plain`: SCTP over UDP without encryption.
//
// Each listener (ports P … P+N−1) is one event loop; each association is a task on it
// (`connection.taskExecutor`), its streams child tasks. The SCTP port is 5000 (WebRTC's).
import DemoSupport
import Glibc
import Quiver
import QuiverTLS

enum Server {
    static func run(_ demo: Demo) async -> Int32 {
        let log = demo.log
        var tls = demo.tls
        if demo.transport == .sctpOverDTLS { tls.srtpProtectionProfiles = SRTPProtectionProfile.webRTC }
        var options = Listener.Options()
        options.logger = log
        let listeners: [Listener]
        do {
            listeners = try demo.ports.map { try Listener(demo.transport, tls: tls, bind: "\(demo.bindAddress(port: $0))", options: options) }
        } catch {
            log.error("cannot listen: \(error)")
            return 1
        }
        demo.onInterrupt {
            for (index, listener) in listeners.enumerated() {
                let statistics = listener.statistics
                if let sctp = statistics.sctp {
                    log.info("port \(demo.ports[index]): \(sctp.invalidCookies) invalid and \(sctp.staleCookies) stale SCTP cookies, \(sctp.badChecksums) bad checksums, \(sctp.outOfTheBluePackets) out-of-the-blue packets")
                }
                if let dtls = statistics.dtls {
                    log.info("port \(demo.ports[index]): \(dtls.helloVerifyRequestsSent) DTLS cookies sent statelessly, \(dtls.connectionsCreated) DTLS connections")
                }
                listener.close()
            }
        }
        log.notice("listening on \(demo.transportName) (SCTP port \(options.sctpPort)) on UDP ports \(demo.ports.map(String.init).joined(separator: ", "))")
        await withDiscardingTaskGroup { group in
            for (index, listener) in listeners.enumerated() {
                group.addTask {
                    await withDiscardingTaskGroup { connections in
                        do {
                            for try await connection in listener.connections {
                                connections.addTask(executorPreference: connection.taskExecutor) {
                                    let peer = connection.peerAddress.map { "\($0)" } ?? "?"
                                    log.info("port \(demo.ports[index]): association with \(peer)\(connection.tlsVersion.map { " (\($0))" } ?? "")")
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

exit(await Server.run(Demo.start(name: "ddd-08-sctp", defaultWorkers: 1, defaultListeners: 1, defaultTransport: .dtlsOverSCTP,
                                 transportFlags: ["--over-dtls": .sctpOverDTLS, "--plain": .sctp])))

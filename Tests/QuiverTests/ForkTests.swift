import Foundation
import Quiver
import QuiverCore
import QuiverTLS
import QuiverUDP
import Testing

/// `Listener.fork(handingOff:)` refuses, before forking and without harm to the connection,
/// what cannot move to another process. (The hand-off itself runs in `ddd-01-fork`, tested end
/// to end as a process: forking this multi-threaded test runner would be unsafe.)
@Suite("Fork hand-off: what cannot be handed over is refused before fork")
struct ForkTests {
    /// Expects `.configuration` mentioning `text`.
    private func expectRefusal(_ text: String, _ body: () throws(QuiverError) -> Listener.ForkResult) {
        do throws(QuiverError) {
            let result = try body()
            Issue.record("forked: \(result)")
            if case .child = result { _exit(1) }
        } catch {
            #expect(error.code == .configuration && error.reason.contains(text), "\(error)")
        }
    }

    @Test("QUIC: a listener socket without SO_REUSEPORT is refused, and the connection goes on working")
    func quicWithoutReusePort() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let port = listener.localAddresses[0].port
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        try client.write([1, 2, 3])
        let accepted = try listener.accept()
        expectRefusal("SO_REUSEPORT") { () throws(QuiverError) in try listener.fork(handingOff: accepted) }
        #expect(try accepted.read() == [1, 2, 3])
        try accepted.write([4, 5])
        #expect(try client.read() == [4, 5])
        try client.shutdown()
        listener.close()
    }

    @Test("QUIC over an in-memory pair, and TLS over a stream pair, cannot move to another process")
    func pairs() throws {
        let datagrams = DatagramPair(addressed: true)
        let server = SocketAddress("192.0.2.1:443")!
        let quic = try Listener(.quic, tls: Identity.server(), attachments: [.datagrams(datagrams.first, localAddress: server)])
        let quicClient = try Connection.connect(over: .datagrams(datagrams.second, localAddress: SocketAddress("198.51.100.1:5000")!),
                                                remote: server, tls: Identity.client(), serverName: "localhost")
        let quicAccepted = try quic.accept()
        expectRefusal("in-memory pair") { () throws(QuiverError) in try quic.fork(handingOff: quicAccepted) }

        let bytes = StreamPair()
        let tls = try Listener(.tcp, tls: Identity.server(), attachments: [.stream(bytes.first)])
        let tlsClient = try Connection.connect(over: .stream(bytes.second), tls: Identity.client(), serverName: "localhost")
        let tlsAccepted = try tls.accept()
        expectRefusal("in-memory pair") { () throws(QuiverError) in try tls.fork(handingOff: tlsAccepted) }
        try tlsClient.write([7])
        #expect(try tlsAccepted.read() == [7], "the refused connection still works")
        _ = quicClient
        quic.close()
        tls.close()
    }

    @Test("A connection of another listener is refused")
    func foreignConnection() throws {
        let first = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
        let second = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
        let client = try Connection.connect(.tcp, to: "127.0.0.1", port: first.localAddresses[0].port, tls: Identity.client(),
                                            serverName: "localhost")
        let accepted = try first.accept()
        expectRefusal("not this listener's") { () throws(QuiverError) in try second.fork(handingOff: accepted) }
        let quic = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        expectRefusal("not this listener's") { () throws(QuiverError) in try quic.fork(handingOff: accepted) }
        _ = client
        first.close()
        second.close()
        quic.close()
    }
}

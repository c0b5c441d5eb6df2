import Foundation
import Quiver
import QuiverCore
import Testing

/// A listener behind a QUIC-LB load balancer (issue 22): its connection IDs carry the host's
/// server ID, and with several event loops the loop's worker id after it.
@Suite("Listener with a QUIC-LB server ID")
struct QUICLBListenerTests {
    @Test("two event loops after a 1-octet server ID: every connection, whichever loop takes it, is served to the end")
    func twoLoops() throws {
        var options = Listener.Options()
        options.eventLoops = 2
        options.quicLB = try Listener.QUICLB(configID: 1, serverID: [0x2a], nonceLength: 6)
        #expect(options.quicLB?.workerIDOffset == 2 && options.quicLB?.connectionIDLength == 8)
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let port = listener.localAddresses[0].port
        let clients = 8
        let server = Thread {
            for _ in 0..<clients {
                guard let connection = try? listener.accept() else { return }
                Thread { try? serveEcho(connection) }.start()
            }
        }
        server.start()
        // Each client's Initials land on the loop its random DCID names; the connection's later
        // packets find that loop only if the steering program reads the worker id after the
        // server ID, where the loop's IDs put it.
        for index in 0..<clients {
            let client = try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
            let data = payload(seed: UInt64(index), count: 50_000)
            #expect(try echoRoundTrip(client, data) == data)
            try client.shutdown()
        }
    }

    @Test("a listener refuses QUIC-LB configurations its loops cannot share: encrypted IDs, a nonce without room for the worker id")
    func refusals() throws {
        var options = Listener.Options()
        options.eventLoops = 2
        options.quicLB = try Listener.QUICLB(configID: 0, serverID: [1, 2], nonceLength: 8, key: [UInt8](repeating: 7, count: 16))
        let keyed = #expect(throws: QuiverError.self) { try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options) }
        #expect(keyed?.code == .configuration && keyed?.reason.contains("with a key") == true)
        options.quicLB = try Listener.QUICLB(configID: 0, serverID: [1, 2], nonceLength: 5)
        let short = #expect(throws: QuiverError.self) { try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options) }
        #expect(short?.reason.contains("nonce of at least 6 octets") == true)
        // A prefork worker (workerID) is one of several, even on one loop.
        var prefork = Listener.Options()
        prefork.workerID = 1
        prefork.quicLB = try Listener.QUICLB(configID: 0, serverID: [1, 2], nonceLength: 8, key: [UInt8](repeating: 7, count: 16))
        let worker = #expect(throws: QuiverError.self) { try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: prefork) }
        #expect(worker?.reason.contains("with a key") == true)
        // One loop takes both.
        options.eventLoops = 1
        try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options).close()
        #expect(throws: QuiverError.self) { try Listener.QUICLB(configID: 7, serverID: [1], nonceLength: 4) }
        #expect(throws: QuiverError.self) { try Listener.QUICLB(configID: 0, serverID: [1, 2], nonceLength: 18) }
    }
}

import Foundation
import Quiver
import QuiverCore
import QuiverUDP
import Synchronization
import Testing

/// The server's preferred address (RFC 9000 §9.6) through the listener API: the listener
/// binds it, clients move there, and what both sides' ``Connection/QUIC`` report.
@Suite("QUIC listener: the server's preferred address")
struct PreferredAddressListenerTests {
    /// Echoes 1 MB between a client and a listener on 127.0.0.1 that prefers 127.0.0.2 (a port
    /// of its own); returns what each side's connection says of the move.
    static func echo(loops: Int, follows: Bool) throws -> (client: (moves: Int, server: SocketAddress?), server: (moves: Int, local: SocketAddress?),
                                                            preferred: SocketAddress, original: SocketAddress) {
        var options = Listener.Options()
        options.eventLoops = loops
        options.preferredAddresses = [SocketAddress("127.0.0.2:0")!]
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let preferred = try #require(listener.preferredAddresses.first)
        #expect(preferred.port != 0 && listener.localAddresses.contains(preferred))
        let original = try #require(listener.localAddresses.first { $0 != preferred })
        let served = Mutex<(moves: Int, local: SocketAddress?)?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            guard let connection = try? listener.accept() else { return }
            while let bytes = try? connection.read(maxBytes: 1 << 16), !bytes.isEmpty { try? connection.write(bytes) }
            served.withLock { $0 = connection.quic.map { ($0.preferredAddressMigrations, $0.serverAddress) } }
            try? connection.shutdown(.flush)
        }.start()
        var clientOptions = ClientOptions()
        clientOptions.followsPreferredAddress = follows
        let connection = try Connection.connect(.quic, to: "127.0.0.1", port: original.port, tls: Identity.client(), serverName: "localhost",
                                                options: clientOptions)
        let data = payload(seed: 11, count: 1_000_000)
        #expect(try echoRoundTrip(connection, data) == data)
        let quic = try #require(connection.quic)
        let client = (quic.preferredAddressMigrations, quic.serverAddress)
        try connection.shutdown(.flush)
        done.wait()
        return (client, try #require(served.withLock { $0 }), preferred, original)
    }

    @Test("A client moves to the listener's preferred address once the handshake is confirmed; both sides count the move and the echo is intact",
          arguments: [1, 2])
    func move(loops: Int) throws {
        let (client, server, preferred, _) = try Self.echo(loops: loops, follows: true)
        #expect(client.moves == 1 && client.server == preferred)
        #expect(server.moves == 1 && server.local == preferred)
    }

    @Test("A client told not to follow stays at the address it connected to")
    func notFollowed() throws {
        let (client, server, _, original) = try Self.echo(loops: 1, follows: false)
        #expect(client.moves == 0 && client.server == original)
        #expect(server.moves == 0 && server.local == original)
    }

    @Test("The listener refuses preferred addresses a client could not use: unspecified, two of a family, or where it does not receive")
    func refusals() throws {
        func refusal(_ addresses: [String], attachments: [Quiver.Attachment]? = nil) -> String? {
            var options = Listener.Options()
            options.preferredAddresses = addresses.map { SocketAddress($0)! }
            do {
                let listener = try attachments.map { try Listener(.quic, tls: Identity.server(), attachments: $0, options: options) }
                    ?? Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
                listener.close()
                return nil
            } catch let error as QuiverError {
                #expect(error.code == .configuration)
                return error.reason
            } catch {
                Issue.record("unexpected \(error)")
                return nil
            }
        }
        #expect(refusal(["0.0.0.0:0"])?.contains("specific IP address") == true)
        #expect(refusal(["127.0.0.2:0", "127.0.0.3:0"])?.contains("one preferred address per address family") == true)
        let socket = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(refusal(["127.0.0.2:4999"], attachments: [.udp(socket)])?.contains("no attachment receives") == true)
        // The same, with the preferred address's socket among the attachments: accepted.
        let second = try UDPSocket(host: "127.0.0.2", port: 0)
        #expect(refusal(["\(second.localAddress)"], attachments: [.udp(try UDPSocket(host: "127.0.0.1", port: 0)), .udp(second)]) == nil)
    }
}

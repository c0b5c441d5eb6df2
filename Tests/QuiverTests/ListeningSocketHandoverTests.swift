// A TLS listening socket moving from one listener to another, as in a restart without dropped
// connections (quiver serve --handover): TCPSocket(adopting:) and Listener.closeListeningSockets().
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTLS
import Testing

@Suite("Listener: a TLS listening socket taken over by another listener")
struct ListeningSocketHandoverTests {
    @Test("closeListeningSockets: the old listener keeps its connection; one queued meanwhile and the next go to the listener that adopted the socket; none is refused")
    func closeListeningSocketsKeepsConnections() throws {
        let socket = try TCPSocket.listen(on: SocketAddress("127.0.0.1:0")!)
        let port = try #require(socket.localAddress?.port)
        // The descriptor a restarted process would have received.
        let copy = fcntl(socket.descriptor, F_DUPFD_CLOEXEC, 0)
        try #require(copy >= 0)
        let old = try Listener(.tcp, tls: Identity.server(), attachments: [.tcpListener(socket)])
        defer { old.close() }
        let first = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        let served = try old.accept()

        old.closeListeningSockets()
        #expect(old.localAddresses.isEmpty)
        // No one accepts now, but the socket listens on through the other descriptor: the
        // kernel completes this TCP handshake and queues the connection.
        let queued = try TCPSocket.connect(to: SocketAddress("127.0.0.1:\(port)")!)
        defer { queued.close() }

        let new = try Listener(.tcp, tls: Identity.server(), attachments: [.tcpListener(try TCPSocket(adopting: copy))])
        defer { new.close() }
        #expect(new.localAddresses.map(\.port) == [port])
        // Its handshake completes at the new listener, which accepted the queued connection
        // before it (one socket, one queue in order).
        let second = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        #expect(old.statistics.tls?.connectionsAccepted == 1)
        #expect(new.statistics.tls?.connectionsAccepted == 2)

        // The old listener's connection runs on.
        try first.write(Array("still here".utf8))
        #expect(try served.read() == Array("still here".utf8))
        try served.write(Array("and here".utf8))
        #expect(try first.read() == Array("and here".utf8))
        try first.shutdown()
        try second.shutdown()
    }

    // (That it closes the descriptor is not checked here: with tests running in parallel, its
    // number may be another test's socket a moment later.)
    @Test("TCPSocket(adopting:) refuses a descriptor that is not a listening TCP socket")
    func adoptingRefusesOtherSockets() throws {
        let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(throws: QuiverError.self) { try TCPSocket(adopting: udp) }
        let unbound = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(throws: QuiverError.self) { try TCPSocket(adopting: unbound) }
    }
}

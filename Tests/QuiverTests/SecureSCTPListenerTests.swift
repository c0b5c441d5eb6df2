import Foundation
import Quiver
import QuiverCore
import QuiverTestSupport
import QuiverTLS
import Synchronization
import Testing

/// The two secure SCTP transports on the listener: DTLS over SCTP (RFC 6083) and SCTP over DTLS
/// (RFC 8261). Streams and messages as plain SCTP's; the certificate checked as for DTLS.
@Suite("DTLS over SCTP and SCTP over DTLS listeners")
struct SecureSCTPListenerTests {
    static let transports: [Transport] = [.dtlsOverSCTP, .sctpOverDTLS]
    /// Up to one DTLS record (DTLS over SCTP's limit), in one or many SCTP fragments.
    static let sizes = [1, 100, 1200, 5000, 16_384]

    static func connect(_ transport: Transport, port: UInt16, tls: TLSConfiguration = Identity.client(),
                        options: ClientOptions = ClientOptions()) throws -> Connection {
        try Connection.connect(transport, to: "127.0.0.1", port: port, tls: tls, serverName: "localhost", options: options)
    }

    @Test("echo over UDP: a DTLS handshake with the server's certificate, messages whole, finish and SHUTDOWN", arguments: transports)
    func echoOverUDP(_ transport: Transport) throws {
        let (listener, port) = try udpListener(transport)
        defer { listener.close() }
        let connection = try Self.connect(transport, port: port)
        #expect(connection.transport == transport)
        #expect(connection.alpn == "echo")
        if transport == .dtlsOverSCTP { #expect(connection.tlsVersion == .tls12) }
        try SCTPListenerTests.lockstep(connection, sizes: Self.sizes)
        try connection.finish()
        #expect(try connection.read() == [])
        try connection.shutdown()
        #expect(connection.closeInfo?.isClean == true)
        let statistics = listener.statistics
        #expect(statistics.sctp?.invalidCookies == 0)
        if transport == .sctpOverDTLS { #expect(statistics.dtls?.connectionsCreated == 1) }
    }

    @Test("echo over datagram pairs, addressed or not", arguments: transports, [true, false])
    func echoOverPairs(_ transport: Transport, addressed: Bool) throws {
        let pair = DatagramPair(addressed: addressed)
        let serverAddress = SocketAddress("192.0.2.1:9899")!
        let listener = try Listener(transport, tls: Identity.server(), attachments: [.datagrams(pair.first, localAddress: addressed ? serverAddress : nil)])
        defer { listener.close() }
        Thread { if let connection = try? listener.accept() { try? serveEcho(connection) } }.start()
        let connection = try Connection.connect(transport, over: .datagrams(pair.second, localAddress: SocketAddress("192.0.2.2:9899")),
                                                remote: serverAddress, tls: Identity.client(), serverName: "localhost")
        try SCTPListenerTests.lockstep(connection, sizes: Self.sizes)
        try connection.shutdown()
        #expect(connection.closeInfo?.isClean == true)
    }

    @Test("streams: each carries its own protected messages and its own end", arguments: transports)
    func manyStreams(_ transport: Transport) throws {
        let (listener, port) = try udpListener(transport) { try SCTPListenerTests.serveStreams(3, $0) }
        defer { listener.close() }
        let connection = try Self.connect(transport, port: port)
        let streams = try (0..<3).map { _ in try connection.openStream() }
        // Interleaved: records of different streams overtake each other (no replay window).
        for round in 0..<4 {
            for (index, stream) in streams.enumerated() { try stream.write(payload(seed: UInt64(index * 10 + round), count: 3000 * (index + 1))) }
        }
        for (index, stream) in streams.enumerated() {
            for round in 0..<4 { #expect(try stream.read() == payload(seed: UInt64(index * 10 + round), count: 3000 * (index + 1))) }
            try stream.finish()
            #expect(try stream.read() == [])
        }
        try connection.finish()
        #expect(try connection.read() == [])
        try connection.shutdown()
    }

    @Test("a certificate the client does not trust: the connection fails with the DTLS alert, the listener serves on", arguments: transports)
    func untrustedCertificate(_ transport: Transport) throws {
        let (listener, port) = try udpListener(transport)
        defer { listener.close() }
        let (other, _) = try SelfSignedCertificate.generate(names: ["localhost"])
        let distrusting = TLSConfiguration.client(alpn: ["echo"], verifier: CertificateVerifier(trustRoots: other.certificates))
        #expect(throws: QuiverError.self) { _ = try Self.connect(transport, port: port, tls: distrusting) }
        let connection = try Self.connect(transport, port: port)
        try SCTPListenerTests.lockstep(connection, sizes: [10])
        try connection.shutdown()
    }

    @Test("DTLS over SCTP: a message over one record is refused, the connection goes on")
    func oversizedMessage() throws {
        let (listener, port) = try udpListener(.dtlsOverSCTP)
        defer { listener.close() }
        let connection = try Self.connect(.dtlsOverSCTP, port: port)
        #expect(throws: QuiverError.self) { try connection.write([UInt8](repeating: 1, count: 16_385)) }
        try SCTPListenerTests.lockstep(connection, sizes: [16_384])
        try connection.shutdown()
    }

    @Test("DTLS over SCTP: a plain SCTP client (no SCTP-AUTH) is aborted, not served in clear")
    func plainClientRefused() throws {
        let (listener, port) = try udpListener(.dtlsOverSCTP)
        defer { listener.close() }
        // The association comes up, then the server's DTLS refuses it: the connect or the read
        // fails, with the reason in the ABORT.
        do {
            let connection = try SCTPListenerTests.connect(port: port)
            _ = try connection.read()
            Issue.record("a plain SCTP client was served by a DTLS over SCTP listener")
        } catch {
            #expect("\(error)".contains("RFC 6083 §4.4"), "\(error)")
        }
    }

    @Test("SCTP over DTLS: a DTLS connection that sets up no association is closed after the handshake timeout")
    func idleDTLSConnectionClosed() throws {
        var options = Listener.Options()
        options.handshakeTimeout = .milliseconds(300)
        let (listener, port) = try udpListener(.sctpOverDTLS, options: options)
        defer { listener.close() }
        // A DTLS client alone (no SCTP): the listener's DTLS endpoint completes it, then ends it.
        let dtls = try Connection.connect(.dtls, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        #expect(try dtls.read() == [])  // its close_notify
        #expect(listener.statistics.connections == 0)
    }
}

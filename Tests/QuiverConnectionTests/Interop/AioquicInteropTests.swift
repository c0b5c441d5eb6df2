// Interop of QUICConnection with aioquic 1.7.2 over real UDP on 127.0.0.1, both roles, raw
// QUIC streams with ALPN "echo" (aioquic_peer.py is the aioquic side).
//
// What aioquic 1.7.2 supports, from its installed source (aioquic/quic/configuration.py,
// connection.py, packet.py, tls.py):
// - QUIC v1 and v2: `QuicProtocolVersion.VERSION_2 = 0x6B3343CF`, the v2 long-header type
//   permutation and salts; `supported_versions` defaults to [VERSION_1, VERSION_2].
// - Compatible version negotiation (RFC 9368) both ways: it sends version_information; as a
//   server it switches to the first of the client's available_versions it supports
//   (`QuicConnection._parse_transport_parameters`, "Negotiated protocol version"); as a client
//   it starts with `original_version` and follows the server.
// - Cipher suites: `CipherSuite.CHACHA20_POLY1305_SHA256` is selectable with
//   `QuicConfiguration.cipher_suites`.
// So every case the tests want is supported; none is skipped for lack of support.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
@_spi(Wire) @testable import QuiverQUIC
import QuiverTLS
import QuiverTestSupport
import Testing

@Suite("QUIC interop with aioquic", .serialized, AioquicPeer.requirement)
struct AioquicInteropTests {
    /// A variation of the default handshake, applied to both peers.
    struct Variant: CustomStringConvertible {
        var chacha20 = false
        var v2 = false

        static let standard = Variant()
        static let chacha20Only = Variant(chacha20: true)
        static let version2 = Variant(v2: true)

        var description: String { chacha20 ? "ChaCha20-Poly1305 only" : v2 ? "QUIC v2" : "defaults" }

        var peerFlags: [String] { (chacha20 ? ["--chacha20"] : []) + (v2 ? ["--v2"] : []) }

        /// The version the connection must end up with.
        var expectedVersion: QUICVersion { v2 ? .v2 : .v1 }

        func tls(_ base: TLSConfiguration) -> TLSConfiguration {
            var tls = base
            if chacha20 { tls.cipherSuites = [.chacha20Poly1305SHA256] }
            return tls
        }
    }

    /// The payload sizes of the echo streams, one stream each.
    static let sizes: [UInt64] = [0, 1024, 1 << 20]

    // MARK: - Our client, aioquic server

    @Test("our client → aioquic server")
    func clientToAioquic() throws { try ourClient(.standard) }

    @Test("our client → aioquic server, ChaCha20-Poly1305 only on both sides")
    func clientToAioquicChaCha20() throws { try ourClient(.chacha20Only) }

    /// Our client starts in v2 directly (`QUICConfiguration.version = .v2`); the aioquic server
    /// prefers v2 and accepts v1.
    @Test("our client → aioquic server, QUIC v2")
    func clientToAioquicV2() throws { try ourClient(.version2) }

    // MARK: - aioquic client, our server

    @Test("aioquic client → our server")
    func aioquicToServer() throws { try ourServer(.standard) }

    @Test("aioquic client → our server, ChaCha20-Poly1305 only on both sides")
    func aioquicToServerChaCha20() throws { try ourServer(.chacha20Only) }

    /// The aioquic client's first flight is v1 with version_information [v2, v1]; our server,
    /// preferring v2, switches by compatible version negotiation (RFC 9368 §2.3).
    @Test("aioquic client → our server, QUIC v2 by compatible version negotiation")
    func aioquicToServerV2() throws { try ourServer(.version2) }

    /// Issue 17 item 8 with a real client: a relay drops the server's first (v2) Initial, the
    /// client sends its ClientHello again, and the server answers that duplicate with its
    /// ServerHello at once (RFC 9002 §6.2.3) rather than at its next PTO.
    @Test("aioquic client → our server, QUIC v2 by compatible version negotiation, the server's first Initial lost")
    func aioquicToServerV2InitialLost() throws {
        let (relay, connection) = try ourServer(.version2, relay: UDPRelay.Configuration(serverInitialsToDrop: 1))
        #expect(relay?.counts.serverInitialsDropped == 1)
        #expect((connection?.initialCryptoRepeats ?? 0) >= 1, "the server did not repeat its ServerHello for the duplicate ClientHello")
    }

    // MARK: - Cases

    private func ourClient(_ variant: Variant) throws {
        let directory = try TemporaryDirectory()
        let cert = try directory.write("cert.pem", TestIdentity.p256.chain.pemRepresentation)
        let key = try directory.write("key.pem", TestIdentity.p256.key.pemRepresentation)
        let peer = try AioquicPeer.start(["server", "--port", "0", "--cert", cert, "--key", key] + variant.peerFlags)
        defer { peer.kill() }
        guard let ready = peer.waitForLine(startingWith: "READY ", timeout: 15),
              let port = UInt16(ready.dropFirst("READY ".count)),
              let server = SocketAddress(host: "127.0.0.1", port: port) else {
            Issue.record("the aioquic server did not report its port\n\(peer.transcript)")
            return
        }

        var configuration = QUICConfiguration(tls: variant.tls(TestIdentity.clientTLS()))
        configuration.version = variant.expectedVersion
        let driver = try UDPDriver()
        let connection = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: server, now: Instant.now())
        driver.observe(connection)
        let client = TransferClient(mode: .echo, sizes: Self.sizes)
        let deadline = Instant.now() + .seconds(30)
        do {
            try driver.run(connection, app: client, deadline: deadline) { _ in client.isDone || client.closeInfo != nil }
        } catch {
            Issue.record("\(error)\n\(peer.transcript)")
            return
        }
        func context() -> String { "\(variant)\n\(driver.trace.text)\n\(peer.transcript)" }

        #expect(client.handshakeCompleted, "\(context())")
        #expect(client.closeInfo == nil, "the connection closed early: \(client.closeInfo.map { "\($0)" } ?? "")\n\(context())")
        #expect(client.errors.isEmpty, "\(client.errors)\n\(context())")
        #expect(connection.alpn == "echo", "\(context())")
        #expect(connection.version == variant.expectedVersion, "\(context())")
        #expect(client.transfers.count == Self.sizes.count, "\(context())")
        for (id, transfer) in client.transfers.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            #expect(transfer.finished && !transfer.mismatch && transfer.received == transfer.size,
                    "stream \(id): \(transfer.received) of \(transfer.size) bytes echoed, finished \(transfer.finished), mismatch \(transfer.mismatch)\n\(context())")
        }
        #expect(client.allCorrect, "\(context())")

        // Close in order and check that aioquic saw the same connection end cleanly.
        connection.close(errorCode: 0, reason: "done")
        driver.flush(connection)
        let line = peer.waitForLine(startingWith: "CONNECTION ", timeout: 5)
        let closed = peer.waitForLine(startingWith: "CLOSED ", timeout: 10)
        #expect(line?.contains("version=0x\(hex(variant.expectedVersion.rawValue))") == true, "\(context())")
        #expect(line?.contains("alpn=echo") == true, "\(context())")
        if variant.chacha20 { #expect(line?.contains("cipher=CHACHA20_POLY1305_SHA256") == true, "\(context())") }
        #expect(peer.lines.filter { $0.hasPrefix("STREAM ") && !$0.contains("reset") }.count == Self.sizes.count, "\(context())")
        #expect(closed?.hasPrefix("CLOSED error_code=0 ") == true, "aioquic did not see our orderly close\n\(context())")
    }

    /// Runs the aioquic client against our server (through a relay when `relay` is given) and
    /// checks the echo; returns the relay and our connection for further checks.
    @discardableResult
    private func ourServer(_ variant: Variant, relay relayConfiguration: UDPRelay.Configuration? = nil) throws -> (UDPRelay?, QUICConnection?) {
        var configuration = QUICConfiguration(tls: variant.tls(TestIdentity.serverTLS()))
        if variant.v2 { configuration.supportedVersions = [.v2, .v1] }
        let directory = try TemporaryDirectory()
        let ca = try directory.write("ca.pem", TestIdentity.p256.chain.pemRepresentation)
        let driver = try UDPDriver()
        let relay = try relayConfiguration.map { try UDPRelay(server: SocketAddress(host: "127.0.0.1", port: driver.port)!, configuration: $0) }
        let peer = try AioquicPeer.start(["client", "--port", "\(relay?.port ?? driver.port)", "--ca", ca,
                                          "--sizes"] + Self.sizes.map { "\($0)" } + variant.peerFlags)
        defer { peer.kill() }

        let deadline = Instant.now() + .seconds(30)
        let server = EchoServer()
        let connection: QUICConnection
        do {
            connection = try driver.acceptConnection(configuration, deadline: deadline)
            // Until the client closes (then our connection drains) or the deadline.
            try driver.run(connection, app: server, deadline: deadline) { $0.closeInfo != nil }
        } catch {
            Issue.record("\(error)\n\(peer.transcript)")
            return (relay, nil)
        }
        let status = peer.waitForExit(timeout: 10)
        let result = peer.waitForLine(startingWith: "RESULT ", timeout: 1)
        func context() -> String { "\(variant)\n\(driver.trace.text)\n\(peer.transcript)" }

        #expect(status == 0, "\(context())")
        #expect(result?.hasPrefix("RESULT PASS streams=\(Self.sizes.count) bytes=\(Self.sizes.reduce(0, +)) ") == true, "\(context())")
        #expect(result?.contains("version=0x\(hex(variant.expectedVersion.rawValue))") == true, "\(context())")
        #expect(result?.contains("alpn=echo") == true, "\(context())")
        if variant.chacha20 { #expect(result?.contains("cipher=CHACHA20_POLY1305_SHA256") == true, "\(context())") }
        #expect(server.handshakeCompleted, "\(context())")
        #expect(connection.alpn == "echo", "\(context())")
        #expect(connection.version == variant.expectedVersion, "\(context())")
        if variant.v2 {
            #expect(driver.firstDatagramVersion == QUICVersion.v1.rawValue, "the first flight was not v1: no compatible version negotiation\n\(context())")
        }
        #expect(connection.closeInfo?.origin == .peer && connection.closeInfo?.isClean == true,
                "close: \(connection.closeInfo.map { "\($0)" } ?? "none")\n\(context())")
        return (relay, connection)
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}


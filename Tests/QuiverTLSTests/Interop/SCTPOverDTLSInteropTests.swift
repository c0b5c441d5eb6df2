// SCTP over DTLS (RFC 8261, WebRTC's data channel transport) against pion (pion/dtls +
// pion/sctp, Go) and aiortc (OpenSSL's DTLS + aiortc's own SCTP, Python), both roles: Quiver's
// DTLSConnection and SCTPEndpoint composed by SCTPOverDTLS, over a blocking UDP loop.
import Foundation
import QuiverCore
import QuiverSCTP
import QuiverTLS
import QuiverTestSupport
import Testing

/// Drives `stack` over `socket` with the peer at `peerPort` (`nil`: whoever sends first)
/// until `done` holds; throws after `seconds` (with `transcript` for the failure).
func driveSCTPOverDTLS(_ stack: SCTPOverDTLS, socket: TestUDPSocket, peerPort: inout UInt16?, seconds: Double = 15,
                       _ what: String, transcript: @autoclosure () -> String, until done: () throws -> Bool) throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        let now = Instant.now()
        try stack.handleTimeout(now: now)
        if let port = peerPort { while let datagram = stack.nextDatagram(now: now) { socket.send(datagram, to: port) } }
        if try done() { return }
        if let error = stack.dtls.error { throw InteropError("\(what): \(error)\n\(transcript())") }
        var wait = 20
        if let deadline = stack.nextDeadline {
            let left = deadline - Instant.now()
            wait = max(0, min(20, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
        }
        if let (bytes, port) = socket.receive(milliseconds: wait) {
            if peerPort == nil { peerPort = port }
            if port == peerPort { try stack.receive(bytes, now: .now()) }
        }
    }
    throw InteropError("\(what): not done within \(seconds) s\n\(transcript())")
}

/// Reads and echoes every message of every association `stack` accepted.
func echoSCTP(_ stack: SCTPOverDTLS, _ associations: inout [SCTPAssociation], _ received: inout [SCTPMessage]) {
    while let association = stack.sctp.accept() { associations.append(association) }
    for association in associations {
        while let message = association.read() {
            received.append(message)
            try? association.send(message.bytes, stream: message.stream, ppid: message.ppid, unordered: message.unordered)
        }
    }
}

@Suite("Interop SCTP over DTLS (RFC 8261): pion and aiortc, both roles", .serialized)
struct SCTPOverDTLSInteropTests {
    static let insecure = CertificateVerifier.insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)

    /// Our DTLS client: WebRTC peers present self-signed certificates (checked by fingerprint
    /// in SDP, which these tests have not) and may ask for ours.
    private func clientStack(sctpPort: UInt16 = 5000, acceptsAssociations: Bool) throws -> SCTPOverDTLS {
        let identity = try TestIdentity.localhost(.ecdsaP256, role: "client")
        var tls = TLSConfiguration.client(verifier: Self.insecure)
        tls.certificateChain = identity.chain
        tls.privateKey = identity.key
        tls.maximumVersion = .tls12  // pion/dtls v2 and aiortc speak DTLS 1.2
        tls.srtpProtectionProfiles = SRTPProtectionProfile.webRTC  // both fail a handshake without
        let dtls = DTLSConnection(client: tls, serverName: nil)
        try dtls.start(now: .now())
        var sctp = SCTPEndpoint.Configuration(port: sctpPort)
        sctp.association.maxPacketSize = SCTPOverDTLS.defaultMaxPacketSize
        sctp.acceptsAssociations = acceptsAssociations
        return SCTPOverDTLS(dtls: dtls, configuration: sctp)
    }

    private func serverStack() throws -> SCTPOverDTLS {
        let identity = try TestIdentity.localhost(.ecdsaP256)
        var tls = try TLSConfiguration.server(chain: identity.chain, key: identity.key)
        tls.certificateVerifier = Self.insecure
        tls.srtpProtectionProfiles = SRTPProtectionProfile.webRTC
        var sctp = SCTPEndpoint.Configuration(port: 5000)
        sctp.association.maxPacketSize = SCTPOverDTLS.defaultMaxPacketSize
        return SCTPOverDTLS(dtls: DTLSConnection(server: tls), configuration: sctp)
    }

    /// Connects our SCTP client over DTLS and checks that `messages` come back from an echo server.
    private func echoThrough(_ stack: SCTPOverDTLS, socket: TestUDPSocket, port: UInt16, peer: PeerProcess,
                             messages: [SCTPMessage]) throws {
        var peerPort: UInt16? = port
        try driveSCTPOverDTLS(stack, socket: socket, peerPort: &peerPort, "DTLS handshake", transcript: peer.transcript) { stack.dtls.isHandshakeComplete }
        let association = stack.connect(port: 5000, now: .now())
        try driveSCTPOverDTLS(stack, socket: socket, peerPort: &peerPort, "SCTP association", transcript: peer.transcript) {
            association.state != .cookieWait && association.state != .cookieEchoed
        }
        #expect(association.state == .established, "\(String(describing: association.closeReason))\n\(peer.transcript)")
        for message in messages { try association.send(message.bytes, stream: message.stream, ppid: message.ppid) }
        var echoed: [SCTPMessage] = []
        try driveSCTPOverDTLS(stack, socket: socket, peerPort: &peerPort, "echoes", transcript: peer.transcript) {
            while let message = association.read() { echoed.append(message) }
            return echoed.count == messages.count || association.state == .closed
        }
        #expect(Set(echoed) == Set(messages), "\(peer.transcript)")
    }

    static let messages = [
        SCTPMessage(stream: 1, ppid: 51, bytes: Array("hello over DTLS".utf8)),
        SCTPMessage(stream: 3, ppid: 53, bytes: (0..<4000).map { UInt8(truncatingIfNeeded: $0) }),
    ]

    @Test("Quiver (DTLS client, SCTP client) → pionsctp -over dtls server", Peer.requires(.pionsctp))
    func quiverToPion() throws {
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Peer.pionsctp.executable(), ["-mode", "server", "-over", "dtls", "-laddr", "127.0.0.1:\(port)"])
        defer { server.kill() }
        try server.waitForStdout(containing: "dtls listening")
        try echoThrough(try clientStack(acceptsAssociations: false), socket: try TestUDPSocket(), port: port, peer: server,
                        messages: Self.messages)
    }

    @Test("pionsctp -over dtls client → Quiver (DTLS server, SCTP server): a message echoed", Peer.requires(.pionsctp))
    func pionToQuiver() throws {
        let stack = try serverStack()
        let socket = try TestUDPSocket()
        let client = try PeerProcess(try Peer.pionsctp.executable(), [
            "-mode", "client", "-over", "dtls", "-raddr", "127.0.0.1:\(socket.port)", "-msg", "hello-quiver",
        ])
        defer { client.kill() }
        var peerPort: UInt16?
        var associations: [SCTPAssociation] = []
        var received: [SCTPMessage] = []
        try driveSCTPOverDTLS(stack, socket: socket, peerPort: &peerPort, "pion's echo", transcript: client.transcript) {
            echoSCTP(stack, &associations, &received)
            return client.exitStatus != nil
        }
        #expect(client.exitStatus == 0, "\(client.transcript)")
        #expect(received == [SCTPMessage(stream: 1, ppid: 53, bytes: Array("hello-quiver".utf8))])
        #expect(client.stdoutText.contains("echo ppi 53: \"hello-quiver\""), "\(client.transcript)")
    }

    /// aiortc in a virtual environment, and the shared peers' script: `.ci/run` puts an
    /// `aiortc-python` wrapper and `sctp_over_dtls.py` on `PATH`.
    static let aiortcPython = Peer(name: "aiortc-python")
    static let aiortcScript = Peer(name: "sctp_over_dtls.py")

    @Test("Quiver (DTLS client, SCTP client) → aiortc (DTLS server, SCTP server)", Peer.requires(aiortcPython, aiortcScript))
    func quiverToAiortc() throws {
        let port = try TestUDPSocket.freePort()
        let server = try PeerProcess(try Self.aiortcPython.executable(), [try Self.aiortcScript.executable(), "server", "127.0.0.1", "\(port)"])
        defer { server.kill() }
        // aiortc's DTLS server starts answering once its UDP endpoint exists; our ClientHello is
        // retransmitted until then.
        try echoThrough(try clientStack(acceptsAssociations: true), socket: try TestUDPSocket(), port: port, peer: server,
                        messages: Self.messages)
    }

    @Test("aiortc (DTLS client, SCTP client) → Quiver (DTLS server, SCTP server): a message echoed", Peer.requires(aiortcPython, aiortcScript))
    func aiortcToQuiver() throws {
        let stack = try serverStack()
        let socket = try TestUDPSocket()
        let client = try PeerProcess(try Self.aiortcPython.executable(), [try Self.aiortcScript.executable(), "client", "127.0.0.1", "\(socket.port)", "hello-from-aiortc"])
        defer { client.kill() }
        var peerPort: UInt16?
        var associations: [SCTPAssociation] = []
        var received: [SCTPMessage] = []
        try driveSCTPOverDTLS(stack, socket: socket, peerPort: &peerPort, seconds: 30, "aiortc's echo", transcript: client.transcript) {
            echoSCTP(stack, &associations, &received)
            return client.stdoutText.contains("echo: (1, 53, b'hello-from-aiortc')") || client.exitStatus != nil
        }
        #expect(received == [SCTPMessage(stream: 1, ppid: 53, bytes: Array("hello-from-aiortc".utf8))])
        #expect(client.stdoutText.contains("echo: (1, 53, b'hello-from-aiortc')"), "\(client.transcript)")
    }
}

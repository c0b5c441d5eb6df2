// Interop with usrsctp, the SCTP stack of FreeBSD's kernel in user space (Debian's
// libusrsctp-examples): its echo server, client and tsctp over UDP encapsulation (RFC 6951),
// and ekr_client/ekr_server with SCTP packets as plain UDP payloads (usrsctp's AF_CONN).
//
// usrsctp lists every address of the host in its INIT; Quiver ignores address parameters and
// answers the packet's source, so the programs need no network namespace here.
#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverSCTP
import QuiverTestSupport
import QuiverUDP
import Testing

/// A UDP port free on 127.0.0.1 a moment ago (bound, read, closed), for a peer to bind.
func freeUDPPort() throws -> UInt16 {
    let socket = try UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!)
    defer { socket.close() }
    return socket.localAddress.port
}

/// Reads every message and sends it back on its stream with its PPID: an echo server.
func echoEverything(_ endpoint: SCTPEndpoint, into associations: inout [SCTPAssociation], received: inout [SCTPMessage]) {
    while let association = endpoint.accept() { associations.append(association) }
    for association in associations {
        while let message = association.read() {
            received.append(message)
            try? association.send(message.bytes, stream: message.stream, ppid: message.ppid, unordered: message.unordered)
        }
    }
}

@Suite(.serialized) struct UsrsctpInteropTests {
    static let localhost = SocketAddress(host: "127.0.0.1", port: 0)!

    @Test("Quiver client → usrsctp echo_server: handshake, messages on several streams echoed, SHUTDOWN",
          Peer.requires(.usrsctpEchoServer))
    func quiverClientToEchoServer() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5001) { $0.acceptsAssociations = false }
        let serverPort = try freeUDPPort()
        let server = try PeerProcess(try Peer.usrsctpEchoServer.executable(), ["\(serverPort)", "\(driver.udpPort)"])
        defer { server.kill() }
        let association = try driver.connect(to: SocketAddress(host: "127.0.0.1", port: serverPort)!, port: 7)
        #expect(association.state == .established)
        #expect(association.peerSupportsPartialReliability)  // RFC 3758: usrsctp offers it
        // echo_server answers on the stream it received on; sizes up to several fragments.
        var sent: [SCTPMessage] = []
        for index in 0..<20 {
            let size = [1, 100, 1172, 1173, 5000][index % 5]
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &+ index) }
            sent.append(SCTPMessage(stream: UInt16(index % 3), ppid: 0, bytes: bytes))
            try association.send(bytes, stream: UInt16(index % 3))
        }
        var echoed: [SCTPMessage] = []
        try driver.run("echo\n\(server.transcript)") {
            while let message = association.read() { echoed.append(message) }
            return echoed.count == sent.count || association.state == .closed
        }
        for stream: UInt16 in 0..<3 {
            #expect(echoed.filter { $0.stream == stream }.map(\.bytes) == sent.filter { $0.stream == stream }.map(\.bytes))
        }
        // RFC 6525: usrsctp answers an Outgoing SSN Reset Request (performed, or denied: its
        // echo_server does not enable stream resets); either way the streams go on.
        #expect(association.peerSupportsStreamReset)
        try association.resetOutgoingStreams([2], now: .now())
        var outcome: SCTPEvent?
        try driver.run("the answer to a stream reset") {
            while let event = association.nextEvent() {
                if case .outgoingStreamsReset = event { outcome = event }
                if case .streamResetRefused = event { outcome = event }
            }
            return outcome != nil
        }
        try association.send(Array("after".utf8), stream: 2)
        var after: [SCTPMessage] = []
        try driver.run("an echo after the reset") {
            while let message = association.read() { after.append(message) }
            return !after.isEmpty
        }
        #expect(after.map(\.bytes) == [Array("after".utf8)], "reset outcome: \(String(describing: outcome))")
        // PR-SCTP (RFC 3758): a message with no retransmissions is lost on the way and
        // abandoned; after our FORWARD TSN usrsctp skips its SSN and echoes the next one.
        driver.losesChunk = { if case .data(let data) = $0 { data.ppid == 99 } else { false } }
        try association.send(Array("lost".utf8), stream: 1, ppid: 99, policy: .maxRetransmissions(0), now: .now())
        try association.send(Array("skipped to".utf8), stream: 1)
        var skippedTo: [SCTPMessage] = []
        try driver.run("an echo after an abandoned message") {
            while let message = association.read() { skippedTo.append(message) }
            return !skippedTo.isEmpty
        }
        #expect(skippedTo.map(\.bytes) == [Array("skipped to".utf8)])
        #expect(association.abandonedMessages == 1)
        association.shutdown(now: .now())
        try driver.run("shutdown") { association.state == .closed }
        #expect(association.closeReason == .shutdown)
    }

    @Test("Quiver client → usrsctp echo_server with SCTP-AUTH (RFC 4895): we require its DATA and SACK authenticated, and they are",
          Peer.requires(.usrsctpEchoServer))
    func authenticatedEcho() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5001) {
            $0.acceptsAssociations = false
            $0.association.authentication = SCTPAuthentication(chunks: [SCTPChunkType.data, SCTPChunkType.sack])
        }
        let serverPort = try freeUDPPort()
        let server = try PeerProcess(try Peer.usrsctpEchoServer.executable(), ["\(serverPort)", "\(driver.udpPort)"])
        defer { server.kill() }
        let association = try driver.connect(to: SocketAddress(host: "127.0.0.1", port: serverPort)!, port: 7)
        #expect(association.state == .established && association.isAuthenticating)
        // usrsctp sends nothing unauthenticated that we asked for: the echoes prove its HMACs
        // (and our key derivation) right; our own chunks it checks only if it asked for them.
        let messages = (0..<10).map { index in (0..<(1 + index * 700)).map { UInt8(truncatingIfNeeded: $0 &+ index) } }
        for message in messages { try association.send(message, stream: 0) }
        var echoed: [SCTPMessage] = []
        try driver.run("authenticated echoes") {
            while let message = association.read() { echoed.append(message) }
            return echoed.count == messages.count || association.state == .closed
        }
        #expect(echoed.map(\.bytes) == messages)
        association.shutdown(now: .now())
        try driver.run("shutdown") { association.state == .closed }
        #expect(association.closeReason == .shutdown)
    }

    @Test("usrsctp client → Quiver echo server: lines echoed back", Peer.requires(.usrsctpClient))
    func usrsctpClientToQuiverServer() throws {
        let driver = try UDPEndpointDriver(sctpPort: 7)
        let clientPort = try freeUDPPort()
        let client = try PeerProcess(try Peer.usrsctpClient.executable(), ["127.0.0.1", "7", "0", "\(clientPort)", "\(driver.udpPort)"])
        defer { client.kill() }
        let lines = (0..<5).map { "line \($0) from usrsctp\n" }
        for line in lines { client.write(line) }
        var associations: [SCTPAssociation] = []
        var received: [SCTPMessage] = []
        try driver.run(timeout: .seconds(15), "five messages\n\(client.transcript)") {
            echoEverything(driver.endpoint, into: &associations, received: &received)
            return received.count == lines.count
        }
        #expect(received.map { String(decoding: $0.bytes, as: UTF8.self) } == lines)
        // The echoes reach the client, which prints them.
        try driver.run("echoes printed\n\(client.transcript)") {
            echoEverything(driver.endpoint, into: &associations, received: &received)
            return client.stdoutText.contains(lines.last!.dropLast())
        }
        client.closeInput()  // usrsctp's client closes on end of file: SHUTDOWN
        try driver.run("the client's SHUTDOWN\n\(client.transcript)") { associations.allSatisfy { $0.state == .closed } }
        #expect(associations.count == 1 && associations[0].closeReason == .shutdown)
    }

    @Test("Quiver → usrsctp tsctp sink: 4 MB in 1 200-byte messages, SHUTDOWN", Peer.requires(.usrsctpTsctp))
    func bulkToTsctp() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5002) { $0.acceptsAssociations = false }
        let sinkPort = try freeUDPPort()
        let sink = try PeerProcess(try Peer.usrsctpTsctp.executable(), [
            "-E", "\(sinkPort)", "-U", "\(driver.udpPort)", "-L", "127.0.0.1", "-p", "5001",
        ])
        defer { sink.kill() }
        let association = try driver.connect(to: SocketAddress(host: "127.0.0.1", port: sinkPort)!, port: 5001)
        let message = [UInt8](repeating: 0x5A, count: 1200)
        var queued = 0
        try driver.run(timeout: .seconds(60), "4 MB acknowledged\n\(sink.transcript)") {
            while queued < 3500, association.writableBytes >= message.count, association.state == .established {
                try association.send(message, stream: 0)
                queued += 1
            }
            return (queued == 3500 && association.isIdle) || association.state == .closed
        }
        #expect(association.state == .established, "\(String(describing: association.closeReason))\n\(sink.transcript)")
        association.shutdown(now: .now())
        try driver.run("shutdown") { association.state == .closed }
        #expect(association.closeReason == .shutdown)
    }

    @Test("usrsctp tsctp source → Quiver: 2 000 messages of 1 200 bytes, byte-exact", Peer.requires(.usrsctpTsctp))
    func bulkFromTsctp() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5001)
        let sourcePort = try freeUDPPort()
        let source = try PeerProcess(try Peer.usrsctpTsctp.executable(), [
            "-E", "\(sourcePort)", "-U", "\(driver.udpPort)", "-L", "127.0.0.1", "-p", "5001", "-n", "2000", "-l", "1200", "127.0.0.1",
        ])
        defer { source.kill() }
        var association: SCTPAssociation?
        var messages = 0
        var bytes = 0
        try driver.run(timeout: .seconds(60), "2 000 messages and the SHUTDOWN\n\(source.transcript)") {
            association = association ?? driver.endpoint.accept()
            while let message = association?.read() {
                messages += 1
                bytes += message.bytes.count
            }
            return association?.state == .closed
        }
        #expect(association?.closeReason == .shutdown)
        #expect(messages == 2000 && bytes == 2000 * 1200)
    }

    @Test("Quiver → usrsctp ekr_server over plain UDP (SCTP packets as UDP payloads): messages acknowledged, SHUTDOWN",
          Peer.requires(.usrsctpEkrServer))
    func quiverToEkrServer() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5001) { $0.acceptsAssociations = false }
        let serverPort = try freeUDPPort()
        let server = try PeerProcess(try Peer.usrsctpEkrServer.executable(), ["127.0.0.1", "\(serverPort)", "127.0.0.1", "\(driver.udpPort)"])
        defer { server.kill() }
        let association = try driver.connect(to: SocketAddress(host: "127.0.0.1", port: serverPort)!, port: 5001)
        #expect(association.state == .established)
        // Its stdout is a pipe (buffered until it exits): the SACKs say what it received.
        for index in 0..<3 { try association.send([UInt8](repeating: 0x42, count: 1000 + index * 700), stream: 0, ppid: 39) }
        try driver.run(timeout: .seconds(15), "ekr_server acknowledging the messages\n\(server.transcript)") { association.isIdle }
        association.shutdown(now: .now())
        try driver.run("the SHUTDOWN\n\(server.transcript)") { association.state == .closed }
        #expect(association.closeReason == .shutdown)
    }

    @Test("usrsctp ekr_client → Quiver over plain UDP (SCTP packets as UDP payloads)", Peer.requires(.usrsctpEkrClient))
    func ekrClientToQuiver() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5001)
        let clientPort = try freeUDPPort()
        let client = try PeerProcess(try Peer.usrsctpEkrClient.executable(), ["127.0.0.1", "\(clientPort)", "127.0.0.1", "\(driver.udpPort)"])
        defer { client.kill() }
        var associations: [SCTPAssociation] = []
        var received: [SCTPMessage] = []
        try driver.run(timeout: .seconds(15), "a message\n\(client.transcript)") {
            echoEverything(driver.endpoint, into: &associations, received: &received)
            return !received.isEmpty
        }
        #expect(received.first?.ppid == 39)
        #expect(received.first.map { $0.bytes.allSatisfy { $0 == 0x41 } } == true)
    }
}

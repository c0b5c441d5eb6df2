// Interop with pion/sctp (Go, the SCTP of pion's WebRTC stack) over plain UDP: SCTP packets as
// UDP payloads, port 5000 on both sides as in WebRTC. pion drops INITs that list addresses;
// Quiver lists none.
import QuiverCore
import QuiverSCTP
import QuiverTestSupport
import Testing

@Suite(.serialized) struct PionSCTPInteropTests {
    /// A pionsctp echo server over UDP and our association with it.
    private static func connectToPionServer() throws -> (UDPEndpointDriver, PeerProcess, SCTPAssociation) {
        let driver = try UDPEndpointDriver(sctpPort: 5000) { $0.acceptsAssociations = false }
        let serverPort = try freeUDPPort()
        let server = try PeerProcess(try Peer.pionsctp.executable(), [
            "-mode", "server", "-over", "udp", "-laddr", "127.0.0.1:\(serverPort)", "-raddr", "127.0.0.1:\(driver.udpPort)",
        ])
        do {
            return (driver, server, try driver.connect(to: SocketAddress(host: "127.0.0.1", port: serverPort)!, port: 5000))
        } catch {
            server.kill()
            throw InteropError("\(error)\n\(server.transcript)")
        }
    }

    @Test("pionsctp client → Quiver over UDP: a message on stream 1 echoed", Peer.requires(.pionsctp))
    func pionClient() throws {
        let driver = try UDPEndpointDriver(sctpPort: 5000)
        let clientPort = try freeUDPPort()
        let client = try PeerProcess(try Peer.pionsctp.executable(), [
            "-mode", "client", "-over", "udp", "-laddr", "127.0.0.1:\(clientPort)", "-raddr", "127.0.0.1:\(driver.udpPort)", "-msg", "hello-quiver",
        ])
        defer { client.kill() }
        var associations: [SCTPAssociation] = []
        var received: [SCTPMessage] = []
        try driver.run(timeout: .seconds(15), "pion's echo\n\(client.transcript)") {
            echoEverything(driver.endpoint, into: &associations, received: &received)
            return client.exitStatus != nil
        }
        #expect(client.exitStatus == 0, "\(client.transcript)")
        #expect(received == [SCTPMessage(stream: 1, ppid: 53, bytes: Array("hello-quiver".utf8))])
        #expect(associations.first?.peerSupportsPartialReliability == true, "pion lists FORWARD TSN in Supported Extensions")
        #expect(client.stdoutText.contains("echo ppi 53: \"hello-quiver\""), "\(client.transcript)")
    }

    @Test("Quiver client → pionsctp server over UDP: messages on two streams echoed", Peer.requires(.pionsctp))
    func pionServer() throws {
        let (driver, server, association) = try Self.connectToPionServer()
        defer { server.kill() }
        #expect(association.state == .established, "\(server.transcript)")
        let sent = [SCTPMessage(stream: 1, ppid: 51, bytes: Array("first".utf8)), SCTPMessage(stream: 2, ppid: 53, bytes: [UInt8](repeating: 0x61, count: 3000))]
        for message in sent { try association.send(message.bytes, stream: message.stream, ppid: message.ppid) }
        var echoed: [SCTPMessage] = []
        try driver.run("echoes\n\(server.transcript)") {
            while let message = association.read() { echoed.append(message) }
            return echoed.count == sent.count || association.state == .closed
        }
        #expect(Set(echoed) == Set(sent))
        // RFC 6525: resetting stream 1 ends it at pion ("stream end: EOF"), which answers
        // Success - Performed.
        #expect(association.peerSupportsStreamReset)
        try association.resetOutgoingStreams([1], now: .now())
        var events: [SCTPEvent] = []
        try driver.run("the stream reset (events so far: \(events))\n\(server.transcript)") {
            while let event = association.nextEvent() { events.append(event) }
            return events.contains(.outgoingStreamsReset([1]))
        }
        try server.waitForStdout(containing: "stream end")
    }

    /// PR-SCTP (RFC 3758) as WebRTC's unreliable data channels use it: a message sent with
    /// no retransmissions is lost on the way; we abandon it and pion, after our FORWARD TSN,
    /// skips its SSN and echoes the message after it on the same ordered stream.
    @Test("Quiver client → pionsctp server over UDP: a lost partially reliable message is skipped after FORWARD TSN",
          Peer.requires(.pionsctp))
    func pionSkipsAnAbandonedMessage() throws {
        let (driver, server, association) = try Self.connectToPionServer()
        defer { server.kill() }
        #expect(association.peerSupportsPartialReliability)
        driver.losesChunk = { if case .data(let data) = $0 { data.ppid == 99 } else { false } }
        try association.send(Array("before".utf8), stream: 3, ppid: 51)
        try association.send(Array("lost".utf8), stream: 3, ppid: 99, policy: .maxRetransmissions(0), now: .now())
        try association.send(Array("after".utf8), stream: 3, ppid: 51)
        var echoed: [SCTPMessage] = []
        try driver.run("the echo of the message after the abandoned one\n\(server.transcript)") {
            while let message = association.read() { echoed.append(message) }
            return echoed.count == 2 || association.state == .closed
        }
        #expect(echoed.map(\.bytes) == [Array("before".utf8), Array("after".utf8)])
        #expect(association.abandonedMessages == 1)
        try driver.run("all acknowledged") { association.isIdle }
    }
}

import Foundation
@_spi(QUICEngine) import Quiver
import QuiverCore
@_spi(Wire) import QuiverQUIC
import QuiverTLSSocket
import QuiverUDP
import Testing

@Suite("Listener behaviour")
struct BehaviourTests {
    @Test("close codes and reasons reach the other side (QUIC)")
    func closeCodes() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        try client.write([1, 2, 3])
        let server = try listener.accept()
        #expect(try server.read(maxBytes: 3) == [1, 2, 3])
        try client.shutdown(.rapid(code: 42, reason: "bye"))
        // The server's blocked read ends with the peer's close.
        #expect(throws: QuiverError.self) { _ = try server.read() }
        let info = try #require(server.closeInfo)
        #expect(info.origin == .peer && info.code == 42 && info.isApplicationCode && info.reason == "bye")
        listener.close()
    }

    /// A process that exits after closing (a command-line client) waits only until the close
    /// has left, not for the closing period; the peer still learns the code and reason.
    @Test("waitUntilCloseSent returns once the close has left: the peer sees it; waitUntilClosed still ends later",
          arguments: [Transport.quic, .tcp, .dtls])
    func closeSent(transport: Transport) throws {
        let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0")
        defer { listener.close() }
        let client = try Connection.connect(transport, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        try client.write([1, 2, 3])
        let server = try listener.accept()
        #expect(try server.read(maxBytes: 3) == [1, 2, 3])
        try client.shutdown(.rapid(code: 0, reason: ""))
        client.waitUntilCloseSent()
        // Sent, not only decided: the server's blocked read ends with the peer's close
        // (QUIC: CONNECTION_CLOSE; TLS: close_notify, the end of the stream).
        if transport == .quic {
            #expect(throws: QuiverError.self) { _ = try server.read() }
            #expect(server.closeInfo?.origin == .peer)
        } else {
            #expect(try server.read() == [])
        }
        client.waitUntilClosed()
        server.waitUntilCloseSent()  // draining: nothing of its own to send
    }

    /// TCP reports a closed port at once; QUIC used to wait out its idle timeout. The kernel's
    /// ECONNREFUSED (an ICMP port unreachable) ends the handshake with the same message.
    @Test("QUIC to a closed port fails at once with \"Connection refused\", like TCP", arguments: [Transport.quic, .tcp, .dtls])
    func closedPort(transport: Transport) throws {
        let probe = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        let tcp = try TCPSocket.listen(on: SocketAddress("127.0.0.1:0")!)
        let port = transport == .quic ? probe.localAddress.port : try #require(tcp.localAddress).port
        probe.close()
        tcp.close()
        var options = ClientOptions()
        options.configureQUIC = { $0.idleTimeout = .seconds(20) }  // far beyond a refusal's round trip
        let error = try #require(throws: QuiverError.self) {
            _ = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost", options: options)
        }
        #expect(error.code == .io)
        #expect(error.reason == "connect 127.0.0.1:\(port) failed: Connection refused (errno 111)")
    }

    /// What only QUIC has is on `connection.quic`; a TLS connection has no such view.
    @Test("connection.quic: DATAGRAMs both ways, the negotiated version, no resumption; nil on TLS")
    func quicView() throws {
        var options = Listener.Options()
        options.maxDatagramFrameSize = 1200
        options.quicVersions = [.v2, .v1]
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        var clientOptions = ClientOptions()
        clientOptions.maxDatagramFrameSize = 1200
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port, tls: Identity.client(),
                                            serverName: "localhost", options: clientOptions)
        let served = try listener.accept()
        let clientQUIC = try #require(client.quic), servedQUIC = try #require(served.quic)
        #expect(clientQUIC.connection === client)
        try clientQUIC.sendDatagram([1, 2, 3])
        #expect(try servedQUIC.receiveDatagram() == [1, 2, 3])
        try servedQUIC.sendDatagram([4])
        #expect(try clientQUIC.receiveDatagram() == [4])
        #expect(servedQUIC.tryReceiveDatagram() == nil)
        #expect(clientQUIC.version == .v2 && servedQUIC.version == .v2, "the client offered v2, the server prefers it")
        #expect(!clientQUIC.isResumed && clientQUIC.earlyDataAccepted == nil)
        try client.shutdown(.rapid(code: 0, reason: ""))
        listener.close()

        let tls = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
        let tlsClient = try Connection.connect(.tcp, to: "127.0.0.1", port: tls.localAddresses[0].port, tls: Identity.client(), serverName: "localhost")
        #expect(tlsClient.quic == nil && tlsClient.transport == .tcp)
        #expect(try tls.accept().quic == nil)
        tls.close()
    }

    /// A TLS connection nobody uses is closed at the listener's idle timeout, with a
    /// close_notify the client reads as the end of the stream; the server side reports a timeout.
    @Test("an idle TLS connection is closed at the idle timeout, the client sees close_notify")
    func tlsIdleTimeout() throws {
        var options = Listener.Options()
        options.idleTimeout = .milliseconds(200)
        let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        defer { listener.close() }
        let client = try Connection.connect(.tcp, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        let server = try listener.accept()
        try client.write([7])
        #expect(try server.read(maxBytes: 1) == [7])
        // Blocks until the server gives up on the silent connection.
        #expect(try client.read() == [])
        #expect(server.closeInfo?.origin == .timeout)
        #expect(server.closeInfo?.reason == "idle timeout")
    }

    /// A burst of 2 000 connections used to overflow a backlog of 128. `ss` shows a listening
    /// socket's backlog as its Send-Q (iproute2, installed by `.ci/run`).
    @Test("a TCP listener's backlog is the system maximum (net.core.somaxconn)")
    func listenBacklog() throws {
        let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
        defer { listener.close() }
        let port = listener.localAddresses[0].port
        let somaxconn = try String(contentsOfFile: "/proc/sys/net/core/somaxconn", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let ss = Process()
        ss.executableURL = URL(fileURLWithPath: ["/usr/bin/ss", "/bin/ss"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/ss")
        ss.arguments = ["-ltnH", "sport = :\(port)"]
        let pipe = Pipe()
        ss.standardOutput = pipe
        try ss.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ss.waitUntilExit()
        // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
        let columns = output.split(whereSeparator: \.isWhitespace)
        #expect(columns.count >= 3 && columns[2] == Substring(somaxconn), "ss: \(output)")
    }

    @Test("a Poller reports incoming connections on several listeners and readable connections", arguments: [Transport.quic, .tcp, .dtls])
    func poller(transport: Transport) throws {
        let listeners = try (0..<3).map { _ in try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0") }
        let poller = Poller()
        for listener in listeners { poller.add(.listener(listener), interest: .incomingConnection) }
        #expect(poller.wait(timeout: .milliseconds(10)).isEmpty)
        let client = try Connection.connect(transport, to: "127.0.0.1", port: listeners[1].localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        let ready = poller.wait(timeout: .seconds(10))
        #expect(ready.count == 1)
        guard case .listener(let listener)? = ready.first?.item, listener === listeners[1] else {
            Issue.record("expected listener 1 to be ready: \(ready.map(\.events))")
            return
        }
        let server = try #require(try listener.tryAccept())
        poller.add(.connection(server), interest: .readable)
        try client.write(Array("ping".utf8))
        var readable = false
        for _ in 0..<100 where !readable {
            readable = poller.wait(timeout: .seconds(10)).contains { if case .connection = $0.item { $0.events.contains(.readable) } else { false } }
        }
        #expect(readable)
        #expect(try server.read(maxBytes: 4) == Array("ping".utf8))
        try client.shutdown(.rapid(code: 0, reason: ""))
        for listener in listeners { listener.close() }
    }

    @Test("a vanished client (ICMP port unreachable) does not disturb other connections")
    func vanishedClient() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let serverAddress = listener.localAddresses[0]
        // A client that sends its Initial and disappears: the server's answers (and their
        // retransmissions) hit a closed port and come back as ICMP errors.
        do {
            let socket = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
            let ghost = try QUICConnection(client: QUICConfiguration(tls: Identity.client()), serverName: "localhost",
                                           remoteAddress: serverAddress, now: .now())
            while let datagram = ghost.transmit(at: .now()) { socket.enqueue(datagram.bytes, to: datagram.destination) }
            _ = try socket.flush()
        }  // the socket closes here
        let served = startEchoServer(listener, count: 3)
        runBlockingClients(3) { _ in
            try Connection.connect(.quic, to: "127.0.0.1", port: serverAddress.port, tls: Identity.client(), serverName: "localhost")
        }
        #expect(served.wait(timeout: .now() + 30) == .success)
        listener.close()
    }

    @Test("Retry before every handshake still serves clients")
    func retryAlways() throws {
        var options = Listener.Options()
        options.retryPolicy = .always
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        let served = startEchoServer(listener, count: 5)
        runBlockingClients(5) { _ in
            try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port, tls: Identity.client(), serverName: "localhost")
        }
        #expect(served.wait(timeout: .now() + 30) == .success)
        #expect(listener.statisticsDescription.contains("retriesSent: 5"))
        listener.close()
    }

    @Test("a blocked accept ends with .closed when the listener closes")
    func closeWakesAccept() throws {
        let listener = try Listener(.tcp, tls: Identity.server(), bind: "127.0.0.1:0")
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do { _ = try listener.accept() } catch { if (error as? QuiverError)?.code == .closed { done.signal() } }
        }
        thread.start()
        listener.close()
        #expect(done.wait(timeout: .now() + 10) == .success)
    }

    @Test("a read blocked on a stream ends when another thread stops reading it", arguments: [Transport.quic, .tcp, .dtls, .sctp])
    func stopSendingWakesReader(transport: Transport) throws {
        let (listener, port) = try udpListener(transport)
        defer { listener.close() }
        let client = try Connection.connect(transport, to: "127.0.0.1", port: port, tls: Identity.client(), serverName: "localhost")
        let stream = transport == .quic ? try client.openStream() : client.defaultStream
        let ended = DispatchSemaphore(value: 0)
        final class Outcome: @unchecked Sendable { var read: [UInt8]?? }  // written before the signal, read after it
        let outcome = Outcome()
        Thread {
            outcome.read = .some(try? stream.read())
            ended.signal()
        }.start()
        // Not synchronisation (the outcome is the same either way): a read still to start when
        // the stop comes would prove less.
        usleep(50_000)
        try stream.stopSending(code: 3)
        #expect(ended.wait(timeout: .now() + 10) == .success, "the blocked read did not end")
        #expect(outcome.read == .some([]))
    }

    @Test("QUIC streams: more streams, reset and STOP_SENDING carry their codes, states follow")
    func streamCodes() throws {
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0")
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        try client.write([0])  // the default stream
        let server = try listener.accept()
        #expect(try server.read(maxBytes: 1) == [0])

        // A reset from the client reaches the server's read with its code.
        let resetting = try client.openStream()
        try resetting.write([1, 2, 3])
        let accepted = try server.acceptStream()
        #expect(accepted.id == resetting.id)
        try resetting.reset(code: 9)
        #expect(resetting.state.sending == .reset(code: 9))
        var resetError: QuiverError?
        do {
            while true { _ = try accepted.read() }
        } catch {
            resetError = error
        }
        #expect(resetError?.code == .streamReset && resetError?.applicationErrorCode == 9, "\(String(describing: resetError))")

        // STOP_SENDING from the server makes the client's writes fail with its code.
        let stopped = try client.openStream()
        try stopped.write([4])
        let serverSide = try server.acceptStream()
        #expect(try serverSide.read(maxBytes: 1) == [4])
        try serverSide.stopSending(code: 7)
        #expect(serverSide.state.receiving == .stopped(code: 7))
        // A write larger than the stream's flow-control window blocks until the STOP_SENDING
        // arrives (or fails at once if it already has): either way it ends with the code.
        var stopError: QuiverError?
        do { try stopped.write([UInt8](repeating: 5, count: 64 << 20)) } catch { stopError = error }
        #expect(stopError?.code == .streamReset && stopError?.applicationErrorCode == 7, "\(String(describing: stopError))")
        #expect(stopped.state.sending == .stoppedByPeer(code: 7))

        // A finished stream reads to its end and reports it.
        let finished = try client.openStream()
        try finished.write([6])
        try finished.finish()
        let serverFinished = try server.acceptStream()
        #expect(try serverFinished.read() == [6])
        #expect(try serverFinished.read() == [])
        #expect(serverFinished.state.receiving == .finished)
        try client.shutdown(.rapid(code: 0, reason: ""))
        listener.close()
    }

    @Test("an incoming-stream policy of .reject refuses the peer's extra streams")
    func rejectStreams() throws {
        var options = Listener.Options()
        options.incomingStreams = .reject(code: 5)
        let listener = try Listener(.quic, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
        let client = try Connection.connect(.quic, to: "127.0.0.1", port: listener.localAddresses[0].port,
                                            tls: Identity.client(), serverName: "localhost")
        try client.write([1])
        let server = try listener.accept()
        #expect(try server.read(maxBytes: 1) == [1], "the default stream is not subject to the policy")
        let extra = try client.openStream()
        try extra.write([2])
        var error: QuiverError?
        do { _ = try extra.read() } catch let caught { error = caught }
        #expect(error?.code == .streamReset && error?.applicationErrorCode == 5, "\(String(describing: error))")
        #expect(try server.tryAcceptStream() == nil)
        try client.shutdown(.rapid(code: 0, reason: ""))
        listener.close()
    }
}

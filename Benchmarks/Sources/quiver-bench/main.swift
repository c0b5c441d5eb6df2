// Helpers of Benchmarks/run.py, the benchmark entry point (each prints one RESULT line):
//
//   quiver-bench tls-www --port P --root DIR --cert C --key K
//       A TLS 1.3/1.2 file server on the Quiver listener API answering `GET /name HTTP/1.0` the way
//       `openssl s_server -WWW` does, so the same `openssl s_client` downloads from both.
//   quiver-bench echo-latency (--quic | --tls) --port P [--count N] [--size S] [--alpn A]
//       Round trips of S-byte messages on one connection (Quiver's client): p50/p99.
//   quiver-bench tls-handshake-load --port P [--seconds S] [--concurrency C] [--tls12]
//       TLS 1.3 (or 1.2) over TCP: C threads each connect (Quiver's client), send a line, read the
//       reply and close, for S seconds — for echo servers (`quiver serve`, `openssl s_server
//       -rev`).
//   quiver-bench idle-clients --port P [--count N] [--hold S] [--close]
//       Opens N QUIC connections (h3 ALPN) from one UDP socket with the sans-I/O engine, keeps
//       them alive S seconds (PINGs), and says when all are established — for the server's
//       memory per idle connection. With --close they end with CONNECTION_CLOSE (else they
//       just go silent, and the server idles them out).
//   quiver-bench tls-idle-clients --port P [--count N] [--hold S]
//       Opens N TLS 1.3 connections over TCP with the sans-I/O TLSStream, 200 at a time, each
//       completing its handshake and one echoed line (so the server has finished its side),
//       keeps them open and silent S seconds and says when all are established — for an echo
//       server's memory per idle TLS connection.
//   quiver-bench dtls-load --port P [--seconds S] [--concurrency C] [--messages N] [--size B]
//                          [--dtls13] [--same-port]
//       DTLS 1.2 (or 1.3) clients: back-to-back handshakes (connect, complete, close), or with N
//       one connection per thread echoing N messages of B bytes (32 in flight); --same-port: one
//       client socket per thread for all its connections.
//   quiver-bench sctp-sink --port UDPPORT [--sctp-port P] [--timeout S]
//       Receives one SCTP association over UDP encapsulation (RFC 6951) until the peer's
//       SHUTDOWN — Quiver's SCTPEndpoint in the place of usrsctp's `tsctp` sink.
//   quiver-bench sctp-source --port UDPPORT [--messages N] [--size B] [--timeout S]
//       Sends N messages of B bytes on one SCTP association (UDP encapsulation) to SCTP port 5001
//       at UDPPORT (tsctp's sink), then the SHUTDOWN — Quiver in the place of tsctp's sender.
//   quiver-bench handshake-load --port P [--seconds S] [--concurrency C] [--resume]
//       Keeps C QUIC handshakes (h3 ALPN) in flight from one UDP socket with the sans-I/O
//       engine for S seconds: each connection waits for the server's session ticket (so the
//       server has finished its side), closes with code 0 and is replaced. With --resume every
//       connection after the first resumes with the newest ticket (no 0-RTT). The same load for
//       any server, so server CPU per handshake compares the servers, not process start-up.
//   quiver-bench relay --listen ADDR:PORT --to ADDR:PORT [--loss P] [--delay-ms D] [--rate-mbit R]
//                      [--queue-bytes B] [--max-datagram-size S] [--seed N]
//       A UDP relay standing for a path (this kernel has no netem): the client that last sent to
//       --listen talks to the server at --to. Each direction on its own: datagrams over S bytes
//       (default 1472, a 1500-byte link) dropped, then each lost with probability P (seeded),
//       then a drop-tail queue of B bytes (default one bandwidth-delay product, R × 2D) in front
//       of an R Mbit/s bottleneck (none by default), then D ms of delay (so 2D of round trip).
//       Prints READY, and at SIGTERM/SIGINT one RESULT line of counters per direction.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Quiver
import QuiverCore
@_spi(Wire) import QuiverQUIC
import QuiverTLS
import QuiverUDP

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("quiver-bench: \(message)\n".utf8))
    exit(1)
}

func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

let arguments = Array(CommandLine.arguments.dropFirst(2))

func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func flag(_ name: String) -> Bool { arguments.contains(name) }

let insecure = CertificateVerifier.insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)

/// Runs the mode named by the first argument.
@MainActor func main() {
    let port = option("--port").flatMap(UInt16.init) ?? 0
    guard let mode = CommandLine.arguments.dropFirst().first else { fail("usage: quiver-bench tls-www|echo-latency|idle-clients …") }
    switch mode {
    case "tls-www":
        guard let root = option("--root"), let cert = option("--cert"), let key = option("--key") else { fail("tls-www needs --root --cert --key") }
        do {
            let tls = try TLSConfiguration.server(certificateChainFile: cert, privateKeyFile: key)
            let listener = try Listener(.tcp, tls: tls, bind: "127.0.0.1:\(port)")
            say("READY \(listener.localAddresses[0].port)")
            while let connection = try? listener.accept() {
                Thread {
                    var request: [UInt8] = []
                    while !request.suffix(4).elementsEqual([13, 10, 13, 10]), request.count < 8192 {
                        guard let bytes = try? connection.read(), !bytes.isEmpty else { return }
                        request += bytes
                    }
                    let line = String(decoding: request.prefix { $0 != 13 }, as: UTF8.self).split(separator: " ")
                    guard line.count >= 2, line[0] == "GET", !line[1].contains(".."),
                          let handle = FileHandle(forReadingAtPath: root + "/" + line[1].drop { $0 == "/" }) else {
                        try? connection.write(Array("HTTP/1.0 404 Not Found\r\n\r\n".utf8))
                        try? connection.shutdown()
                        return
                    }
                    try? connection.write(Array("HTTP/1.0 200 ok\r\nContent-type: text/plain\r\n\r\n".utf8))
                    while case let data = handle.readData(ofLength: 1 << 16), !data.isEmpty {
                        guard (try? connection.write(Array(data))) != nil else { break }
                    }
                    try? connection.shutdown()
                }.start()
            }
        } catch {
            fail("\(error)")
        }

    case "echo-latency":
        let count = option("--count").flatMap(Int.init) ?? 5000
        let size = option("--size").flatMap(Int.init) ?? 64
        let alpn = option("--alpn") ?? "echo"
        let transport: Transport = flag("--quic") ? .quic : .tcp
        do {
            let connection = try Connection.connect(transport, to: "127.0.0.1", port: port,
                                                    tls: .client(alpn: [alpn], verifier: insecure), serverName: "localhost")
            // A line (for servers that echo lines, such as `openssl s_server -rev`): size − 1 bytes and "\n".
            let message = [UInt8](repeating: UInt8(ascii: "q"), count: size - 1) + [10]
            var samples: [UInt64] = []
            samples.reserveCapacity(count)
            for round in 0..<(count + 200) {  // the first 200 warm up
                let start = DispatchTime.now().uptimeNanoseconds
                try connection.write(message)
                var received = 0
                while received < size {
                    let bytes = try connection.read()
                    guard !bytes.isEmpty else { fail("the server ended the stream") }
                    received += bytes.count
                }
                if round >= 200 { samples.append(DispatchTime.now().uptimeNanoseconds - start) }
            }
            try? connection.shutdown(.rapid(code: 0, reason: ""))
            samples.sort()
            func percentile(_ p: Double) -> Double { Double(samples[min(samples.count - 1, Int(Double(samples.count) * p))]) / 1000 }
            say(String(format: "RESULT p50_us=%.1f p99_us=%.1f mean_us=%.1f count=%d", percentile(0.5), percentile(0.99),
                       Double(samples.reduce(0, +)) / Double(samples.count) / 1000, samples.count))
        } catch {
            fail("\(error)")
        }

    case "idle-clients":
        let count = option("--count").flatMap(Int.init) ?? 10_000
        let hold = option("--hold").flatMap(Double.init) ?? 5
        runIdleClients(port: port, count: count, hold: hold, close: flag("--close"))

    case "tls-idle-clients":
        runTLSIdleClients(port: port, count: option("--count").flatMap(Int.init) ?? 10_000,
                          hold: option("--hold").flatMap(Double.init) ?? 5)

    case "tls-handshake-load":
        runTLSHandshakeLoad(port: port, seconds: option("--seconds").flatMap(Double.init) ?? 10,
                            concurrency: option("--concurrency").flatMap(Int.init) ?? 8, tls12: flag("--tls12"))

    case "sctp-sink":
        runSCTPSink(udpPort: port, sctpPort: option("--sctp-port").flatMap(UInt16.init) ?? 5001,
                    timeout: option("--timeout").flatMap(Double.init) ?? 120)

    case "sctp-source":
        runSCTPSource(remotePort: port, messages: option("--messages").flatMap(Int.init) ?? 200_000,
                      size: option("--size").flatMap(Int.init) ?? 1200, timeout: option("--timeout").flatMap(Double.init) ?? 300)

    case "dtls-load":
        runDTLSLoad(port: port, seconds: option("--seconds").flatMap(Double.init) ?? 10,
                    concurrency: option("--concurrency").flatMap(Int.init) ?? 1,
                    messages: option("--messages").flatMap(Int.init) ?? 0, size: option("--size").flatMap(Int.init) ?? 1200,
                    dtls13: flag("--dtls13"), samePort: flag("--same-port"))

    case "relay":
        guard let listen = option("--listen").flatMap(SocketAddress.init), let server = option("--to").flatMap(SocketAddress.init) else {
            fail("relay needs --listen ADDR:PORT --to ADDR:PORT")
        }
        var link = RelayLink.Configuration()
        link.lossRate = option("--loss").flatMap(Double.init) ?? 0
        guard (0...1).contains(link.lossRate) else { fail("--loss is a probability, 0 to 1") }
        let delay = option("--delay-ms").flatMap(Double.init) ?? 0
        guard delay >= 0, delay < 60_000 else { fail("--delay-ms must be 0 to 60000") }
        link.oneWayDelay = UInt64(delay * 1e6)
        if let rate = option("--rate-mbit").flatMap(Double.init) {
            guard rate > 0, rate <= 100_000 else { fail("--rate-mbit must be above 0 (and at most 100000)") }
            link.bitsPerSecond = UInt64(rate * 1e6)
            // One bandwidth-delay product of the round trip, at least 8 full-size datagrams.
            link.queueLimit = max(Int(rate * 1e6 * 2 * delay / 1000 / 8), 8 * 1500)
        }
        if let bytes = option("--queue-bytes").flatMap(Int.init) {
            guard bytes > 0 else { fail("--queue-bytes must be above 0") }
            link.queueLimit = bytes
        }
        link.maxDatagramSize = option("--max-datagram-size").flatMap(Int.init) ?? 1472
        runRelay(listen: listen, server: server, link: link, seed: option("--seed").flatMap(UInt64.init) ?? 1)

    case "handshake-load":
        runHandshakeLoad(port: port, seconds: option("--seconds").flatMap(Double.init) ?? 10,
                         concurrency: option("--concurrency").flatMap(Int.init) ?? 16, resume: flag("--resume"))

    default:
        fail("unknown mode \(mode)")
    }
}

main()

/// A UDP socket for a load generator's client connections (large buffers, no GRO).
func clientSocket(bufferSize: Int) -> UDPSocket {
    var socketConfiguration = UDPSocket.Configuration()
    socketConfiguration.receiveBufferSize = bufferSize
    socketConfiguration.sendBufferSize = bufferSize
    socketConfiguration.gro = false
    do { return try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!, configuration: socketConfiguration) } catch { fail("\(error)") }
}

/// Sends what `connection` has to send to `server`, flushing the socket when its queue is full.
func send(_ connection: QUICConnection, on socket: UDPSocket, to server: SocketAddress, now: Instant) {
    while let datagram = connection.transmit(at: now) {
        if !socket.enqueue(datagram.bytes, to: server) {
            _ = try? socket.flush()
            _ = socket.enqueue(datagram.bytes, to: server)
        }
    }
}

/// N client connections on one socket, routed by the connection IDs we chose.
func runIdleClients(port: UInt16, count: Int, hold: Double, close: Bool) {
    let server = SocketAddress(host: "127.0.0.1", port: port)!
    var configuration = QUICConfiguration(tls: .client(alpn: ["h3"], verifier: insecure))
    configuration.keepAliveInterval = .seconds(5)
    configuration.idleTimeout = .seconds(60)
    let socket = clientSocket(bufferSize: 16 << 20)
    var connections: [QUICConnection] = []
    var routes: [[UInt8]: Int] = [:]
    var established = 0
    var counted = Set<Int>()
    let started = Date()
    var holdUntil: Date?

    func route(_ index: Int) {
        for id in connections[index].localConnectionIDs { routes[id.bytes] = index }
    }
    func flush(_ index: Int, now: Instant) { send(connections[index], on: socket, to: server, now: now) }

    while true {
        let now = Instant.now()
        // Open connections in waves, so handshakes are not all in flight at once.
        while connections.count < count, connections.count - established < 200 {
            do {
                let connection = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: server, now: now)
                connections.append(connection)
                route(connections.count - 1)
                flush(connections.count - 1, now: now)
            } catch {
                fail("\(error)")
            }
        }
        _ = try? socket.flush()
        _ = try? socket.waitReadable(timeout: .milliseconds(5))
        while (try? socket.receive()) ?? 0 > 0 {
            for slot in 0..<socket.receivedCount {
                let bytes = socket.withReceivedBytes(slot) { Array($0) }
                guard let header = try? PacketHeader.parse(bytes, shortHeaderConnectionIDLength: configuration.localConnectionIDLength),
                      let index = routes[header.destinationConnectionID] else { continue }
                connections[index].receive(bytes, from: server, at: .now())
                route(index)
                flush(index, now: .now())
                if !counted.contains(index), connections[index].state == .established {
                    counted.insert(index)
                    established += 1
                }
                if let info = connections[index].closeInfo, !counted.contains(index) {
                    fail("connection \(index) closed before it was established: \(info)")
                }
            }
        }
        let later = Instant.now()
        for index in connections.indices {
            if let deadline = connections[index].nextDeadline, deadline <= later {
                connections[index].handleTimeout(at: later)
                flush(index, now: later)
            }
        }
        _ = try? socket.flush()
        if holdUntil == nil, established == count {
            say(String(format: "ESTABLISHED %d in %.1f s", count, Date().timeIntervalSince(started)))
            holdUntil = Date().addingTimeInterval(hold)
        }
        if let holdUntil, Date() >= holdUntil {
            let alive = connections.filter { $0.state == .established }.count
            if close {
                let now = Instant.now()
                for index in connections.indices {
                    connections[index].close(errorCode: 0)
                    flush(index, now: now)
                }
                _ = try? socket.flush()
            }
            say("RESULT established=\(count) alive=\(alive)")
            exit(0)
        }
        if Date().timeIntervalSince(started) > 300 { fail("only \(established) of \(count) connections established in 300 s") }
    }
}

/// Handshakes back to back, `concurrency` at a time, on one socket; prints how many completed.
func runHandshakeLoad(port: UInt16, seconds: Double, concurrency: Int, resume: Bool) {
    let server = SocketAddress(host: "127.0.0.1", port: port)!
    var configuration = QUICConfiguration(tls: .client(alpn: ["h3"], verifier: insecure))
    configuration.idleTimeout = .seconds(5)
    let socket = clientSocket(bufferSize: 8 << 20)
    struct Attempt { var connection: QUICConnection; var started: Instant }
    var attempts: [Int: Attempt] = [:]
    var routes: [[UInt8]: Int] = [:]
    var nextKey = 0
    var ticket: QUICResumptionTicket?
    var completed = 0, failed = 0, resumed = 0
    let giveUp = Duration.seconds(3)

    func flush(_ key: Int, now: Instant) {
        if let attempt = attempts[key] { send(attempt.connection, on: socket, to: server, now: now) }
    }
    func retire(_ key: Int) {
        guard let attempt = attempts.removeValue(forKey: key) else { return }
        for id in attempt.connection.localConnectionIDs { routes[id.bytes] = nil }
    }
    /// Reads the connection's events; true when it is finished with (done or failed).
    func examine(_ key: Int, now: Instant) -> Bool {
        guard let attempt = attempts[key] else { return true }
        let connection = attempt.connection
        for id in connection.localConnectionIDs { routes[id.bytes] = key }
        var gotTicket = false
        while let event = connection.nextEvent() {
            switch event {
            case .resumptionTicket(let fresh):
                ticket = fresh
                gotTicket = true
            case .closed:
                failed += 1
                return true
            default:
                break
            }
        }
        if gotTicket, connection.state == .established {
            completed += 1
            if connection.isResumed { resumed += 1 }
            connection.close(errorCode: 0)
            flush(key, now: now)
            return true
        }
        if now - attempt.started > giveUp {
            failed += 1
            return true
        }
        return false
    }

    let started = Instant.now()
    let end = started + .milliseconds(Int64(seconds * 1000))
    while true {
        let now = Instant.now()
        if now >= end { break }
        while attempts.count < concurrency {
            do {
                let connection = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: server,
                                                    resumption: resume ? ticket : nil, now: now)
                attempts[nextKey] = Attempt(connection: connection, started: now)
                for id in connection.localConnectionIDs { routes[id.bytes] = nextKey }
                flush(nextKey, now: now)
                nextKey += 1
            } catch {
                fail("\(error)")
            }
            // The first resumed connection needs a ticket: one connection at a time until then.
            if resume, ticket == nil { break }
        }
        _ = try? socket.flush()
        _ = try? socket.waitReadable(timeout: .milliseconds(2))
        while (try? socket.receive()) ?? 0 > 0 {
            for slot in 0..<socket.receivedCount {
                let bytes = socket.withReceivedBytes(slot) { Array($0) }
                guard let header = try? PacketHeader.parse(bytes, shortHeaderConnectionIDLength: configuration.localConnectionIDLength),
                      let key = routes[header.destinationConnectionID], let attempt = attempts[key] else { continue }
                let at = Instant.now()
                attempt.connection.receive(bytes, from: server, at: at)
                flush(key, now: at)
                if examine(key, now: at) { retire(key) }
            }
        }
        let later = Instant.now()
        for (key, attempt) in attempts {
            if let deadline = attempt.connection.nextDeadline, deadline <= later {
                attempt.connection.handleTimeout(at: later)
                flush(key, now: later)
            }
            if examine(key, now: later) { retire(key) }
        }
        _ = try? socket.flush()
    }
    let elapsed = Instant.now() - started
    let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    // A few connections may start before the first ticket is usable; more than 1 % is a failure.
    if resume, resumed * 100 < completed * 99 { fail("only \(resumed) of \(completed) handshakes resumed") }
    say(String(format: "RESULT handshakes=%d failed=%d resumed=%d seconds=%.2f", completed, failed, resumed, secondsTaken))
}

/// Full TLS handshakes back to back from `concurrency` threads; prints how many completed.
func runTLSHandshakeLoad(port: UInt16, seconds: Double, concurrency: Int, tls12: Bool) {
    let counts = Mutex<(completed: Int, failed: Int)>((0, 0))
    let started = Instant.now()
    let end = started + .milliseconds(Int64(seconds * 1000))
    let tls = {
        var configuration = TLSConfiguration.client(alpn: [], verifier: insecure)
        if tls12 { configuration.maximumVersion = .tls12 }
        return configuration
    }()
    let finished = DispatchGroup()
    for _ in 0..<concurrency {
        finished.enter()
        Thread {
            defer { finished.leave() }
            while Instant.now() < end {
                do {
                    let connection = try Connection.connect(.tcp, to: "127.0.0.1", port: port, tls: tls, serverName: "localhost")
                    try connection.write(Array("q\n".utf8))
                    var received = 0
                    while received < 2 {
                        let bytes = try connection.read()
                        if bytes.isEmpty { throw QuiverError(.closed, "the server ended the stream") }
                        received += bytes.count
                    }
                    try? connection.shutdown(.rapid(code: 0, reason: ""))
                    counts.withLock { $0.completed += 1 }
                } catch {
                    counts.withLock { $0.failed += 1 }
                }
            }
        }.start()
    }
    finished.wait()
    let elapsed = Instant.now() - started
    let secondsTaken = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let (completed, failed) = counts.withLock { $0 }
    say(String(format: "RESULT handshakes=%d failed=%d resumed=0 seconds=%.2f", completed, failed, secondsTaken))
}

/// One idle TLS client: its socket and TLS state (``runTLSIdleClients(port:count:hold:)``).
final class TLSIdleClient {
    let fd: Int32
    let stream: TLSStream
    var echoed = 0

    init(fd: Int32, stream: TLSStream) {
        self.fd = fd
        self.stream = stream
    }

    /// Writes what TLS has to send (the socket is blocking: loopback takes it at once).
    func flush() -> Bool {
        let bytes = stream.takeOutgoing()
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return false }
            offset += sent
        }
        return true
    }

    /// Takes in what arrived; `false` when the connection failed or ended.
    func receive() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 16_384)
        let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count < 0 { return errno == EAGAIN || errno == EWOULDBLOCK }
        guard count > 0, (try? stream.receive(Array(buffer.prefix(count)))) != nil else { return false }
        echoed += stream.read().count
        return flush()
    }
}

/// N TLS connections, opened 200 at a time; each is counted once its handshake completed and
/// a line came back, then all stay open and silent for `hold` seconds.
func runTLSIdleClients(port: UInt16, count: Int, hold: Double) {
    let tls = TLSConfiguration.client(alpn: ["echo"], verifier: insecure)
    let started = Date()
    var clients: [TLSIdleClient] = []
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    while clients.count < count {
        var wave: [TLSIdleClient] = []
        for _ in 0..<min(200, count - clients.count) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard fd >= 0, connected == 0 else { fail("connect: \(String(cString: strerror(errno))) after \(clients.count + wave.count) connections") }
            let client = TLSIdleClient(fd: fd, stream: TLSStream(client: tls, serverName: "localhost"))
            guard (try? client.stream.start()) != nil, client.flush() else { fail("TLS start failed") }
            wave.append(client)
        }
        var pending = wave
        var lineSent = Set<Int32>()
        while !pending.isEmpty {
            var fds = pending.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            _ = poll(&fds, nfds_t(fds.count), 1000)
            var next: [TLSIdleClient] = []
            for client in pending {
                guard client.receive() else { fail("a connection failed during its handshake: \(client.stream.error.map { "\($0)" } ?? "closed")") }
                if client.stream.isHandshakeComplete, !lineSent.contains(client.fd) {
                    lineSent.insert(client.fd)
                    guard (try? client.stream.write(Array("q\n".utf8))) != nil, client.flush() else { fail("write failed") }
                }
                if client.echoed < 2 { next.append(client) }
            }
            pending = next
            if Date().timeIntervalSince(started) > 300 { fail("only \(clients.count) of \(count) connections established in 300 s") }
        }
        clients += wave
    }
    say(String(format: "ESTABLISHED %d in %.1f s", count, Date().timeIntervalSince(started)))
    Thread.sleep(forTimeInterval: hold)
    say("RESULT established=\(count)")
    for client in clients { close(client.fd) }
    exit(0)
}

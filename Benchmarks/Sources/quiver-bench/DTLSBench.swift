// DTLS loads of Benchmarks/run.py on the sans-I/O DTLSConnection, each over a QuiverUDP
// socket; the server measured is `quiver serve --dtls`.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import QuiverCore
import QuiverTLS
import QuiverUDP

/// Sends what a DTLS side produced, addressed.
private func send(_ socket: UDPSocket, _ datagrams: [(SocketAddress, [UInt8])]) {
    for (peer, datagram) in datagrams where !socket.enqueue(datagram, to: peer) {
        _ = try? socket.flush()
        _ = socket.enqueue(datagram, to: peer)
    }
    _ = try? socket.flush()
}

/// Reads the socket's batch as (source, bytes) pairs.
private func receiveAll(_ socket: UDPSocket) -> [(SocketAddress, [UInt8])] {
    guard let count = try? socket.receive(), count > 0 else { return [] }
    return (0..<count).map { i in (socket.received(i).source, socket.withReceivedBytes(i) { Array($0) }) }
}

/// One client connection's exchange on its own socket: handshake, then `messages` messages of
/// `size` bytes echoed with at most `window` in flight, then close. Returns whether it completed
/// and how many echoes arrived.
private func dtlsClient(port: UInt16, tls: TLSConfiguration, messages: Int, size: Int, window: Int, deadline: Instant,
                        socket: UDPSocket) -> (Bool, Int) {
    let server = SocketAddress(host: "127.0.0.1", port: port)!
    let connection = DTLSConnection(client: tls, serverName: "localhost")
    guard (try? connection.start(now: .now())) != nil else { return (false, 0) }
    var sent = 0
    var echoed = 0
    // Datagrams may be lost (and are not retransmitted): after a second without an echo, what
    // is in flight counts as lost and the window moves on.
    var lost = 0
    var lastEcho = Instant.now()
    let payload = [UInt8](repeating: 0x5A, count: size)
    while Instant.now() < deadline {
        if connection.isHandshakeComplete {
            if sent - echoed - lost >= window && Instant.now() - lastEcho > .seconds(1) {
                lost = sent - echoed
                lastEcho = Instant.now()
            }
            while sent < messages && sent - echoed - lost < window {
                guard (try? connection.write(payload)) != nil else { return (false, echoed) }
                sent += 1
            }
            if echoed + lost >= messages {
                connection.close()
                send(socket, connection.takeDatagrams().map { (server, $0) })
                return (true, echoed)
            }
        }
        send(socket, connection.takeDatagrams().map { (server, $0) })
        if connection.error != nil { return (false, echoed) }
        let wait = connection.nextTimeout.map { max(Duration.zero, $0 - Instant.now()) } ?? .milliseconds(100)
        _ = try? socket.waitReadable(timeout: min(wait, .milliseconds(100)))
        for (_, datagram) in receiveAll(socket) { try? connection.receive(datagram, now: .now()) }
        try? connection.handleTimeout(now: .now())
        while connection.read() != nil {
            echoed += 1
            lastEcho = Instant.now()
        }
    }
    return (false, echoed)
}

/// `dtls-load --port P [--seconds S] [--concurrency C] [--messages N] [--size B] [--dtls13]
/// [--same-port]`: C threads each make DTLS 1.2 (with `--dtls13`: DTLS 1.3) connections back to
/// back for S seconds — handshake, N echoed messages of B bytes (0: none), close. Each
/// connection has a socket of its own, or with `--same-port` each thread one socket for all its
/// connections (for a peer server that serves one client address at a time). Prints
/// handshakes, failures and messages echoed.
func runDTLSLoad(port: UInt16, seconds: Double, concurrency: Int, messages: Int, size: Int, dtls13: Bool, samePort: Bool) {
    let totals = Mutex<(handshakes: Int, failed: Int, echoed: Int)>((0, 0, 0))
    var tls = TLSConfiguration.client(alpn: [], verifier: insecure)
    tls.maximumVersion = dtls13 ? .tls13 : .tls12
    let configuration = tls
    let started = Instant.now()
    let end = started + .milliseconds(Int64(seconds * 1000))
    let group = DispatchGroup()
    for _ in 0..<concurrency {
        group.enter()
        Thread {
            defer { group.leave() }
            let shared = samePort ? try? UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!) : nil
            defer { shared?.close() }
            while Instant.now() < end {
                guard let socket = shared ?? (try? UDPSocket(bindingTo: SocketAddress(host: "127.0.0.1", port: 0)!)) else { break }
                let (ok, echoed) = dtlsClient(port: port, tls: configuration, messages: messages, size: size, window: 32,
                                              deadline: Instant.now() + .seconds(messages > 0 ? 60 : 5), socket: socket)
                if shared == nil { socket.close() }
                totals.withLock { t in
                    if ok { t.handshakes += 1 } else { t.failed += 1 }
                    t.echoed += echoed
                }
                if messages > 0 { break }  // one long connection per thread for throughput
            }
        }.start()
    }
    group.wait()
    let elapsed = Double((Instant.now() - started).components.seconds) + Double((Instant.now() - started).components.attoseconds) / 1e18
    let t = totals.withLock { $0 }
    say(String(format: "RESULT handshakes=%d failed=%d resumed=0 seconds=%.4f echoed=%d", t.handshakes, t.failed, elapsed, t.echoed))
}

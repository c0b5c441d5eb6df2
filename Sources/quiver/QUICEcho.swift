#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import QuiverCore
import QuiverQUIC
import QuiverTLS
import QuiverUDP

/// A single-threaded event loop around one UDP socket: it moves datagrams between the socket
/// and a sans-I/O QUIC engine (an endpoint or one client connection) and sleeps in poll(2)
/// until a datagram, the engine's next deadline, or another watched descriptor wakes it.
/// (The listener API with its thread-assisted and application-driven drivers replaces this.)
struct QUICLoop {
    let socket: UDPSocket

    /// Sends everything `next` produces, in batches.
    func transmit(_ next: () -> OutgoingDatagram?) throws {
        while let datagram = next() {
            if !socket.enqueue(datagram.bytes, to: datagram.destination, ecn: datagram.ecn) {
                _ = try socket.flush()
                socket.enqueue(datagram.bytes, to: datagram.destination, ecn: datagram.ecn)
            }
        }
        _ = try socket.flush()
        socket.removeAllPeerErrors()
    }

    /// Receives what is waiting and hands each datagram to `deliver`.
    func receive(_ deliver: ([UInt8], SocketAddress, ECNCodepoint) -> Void) throws {
        while try socket.receive() > 0 {
            for index in 0..<socket.receivedCount {
                let info = socket.received(index)
                guard !info.isTruncated else { continue }
                let bytes = socket.withReceivedBytes(index) { Array($0) }
                deliver(bytes, info.source, info.ecn)
            }
        }
    }

    /// Waits until the socket (or `extra`) is readable or `deadline` passes. Returns whether
    /// `extra` is readable.
    @discardableResult
    func wait(until deadline: Instant?, extra: Int32? = nil) -> Bool {
        var fds = [pollfd(fd: socket.pollDescriptor, events: Int16(POLLIN), revents: 0)]
        if let extra { fds.append(pollfd(fd: extra, events: Int16(POLLIN), revents: 0)) }
        var timeout: Int32 = -1
        if let deadline {
            let now = Instant.now()
            let nanoseconds = deadline > now ? (deadline - now).nanosecondsClamped : 0
            timeout = Int32(min((nanoseconds + 999_999) / 1_000_000, 60_000))
        }
        _ = poll(&fds, nfds_t(fds.count), timeout)
        return extra != nil && fds[1].revents & Int16(POLLIN | POLLHUP) != 0
    }
}

/// The QUIC echo service of `quiver serve`: every stream's bytes come back on it, and a
/// stream's end is echoed as its end.
enum QUICEchoServer {
    static func run(address: SocketAddress, tls: TLSConfiguration, log: Logger, maxConnections: Int?) throws {
        let socket = try UDPSocket(bindingTo: address)
        let loop = QUICLoop(socket: socket)
        var configuration = QUICEndpoint.Configuration(connection: QUICConfiguration(tls: tls))
        configuration.connection.maxDatagramFrameSize = 1200
        let endpoint = QUICEndpoint(configuration: configuration)
        log.notice("serving QUIC echo on udp \(socket.localAddress) (ALPN \(tls.alpn), v1 and v2)")
        var connections: [ObjectIdentifier: QUICConnection] = [:]
        var served = 0
        while true {
            loop.wait(until: endpoint.nextDeadline)
            let now = Instant.now()
            try loop.receive { bytes, source, ecn in endpoint.receive(bytes, from: source, ecn: ecn, at: now) }
            endpoint.handleTimeout(at: Instant.now())
            while let connection = endpoint.accept() {
                served += 1
                connections[ObjectIdentifier(connection)] = connection
                log.info("\(connection.remoteAddress): QUIC handshake complete: \(connection.version) alpn=\(connection.alpn ?? "-") sni=\(connection.serverName ?? "-") resumed=\(connection.isResumed)")
            }
            for (key, connection) in connections {
                echo(connection, log: log)
                endpoint.connectionDidChange(connection, at: Instant.now())
                if connection.state == .closed {
                    connections[key] = nil
                    log.info("\(connection.remoteAddress): \(connection.closeInfo.map { "\($0)" } ?? "closed")")
                }
            }
            try loop.transmit { endpoint.transmit(at: Instant.now()) }
            if let limit = maxConnections, served >= limit, connections.isEmpty { return }
        }
    }

    static func echo(_ connection: QUICConnection, log: Logger) {
        while let event = connection.nextEvent() {
            switch event {
            case .streamOpened(let id), .streamReadable(let id):
                while true {
                    guard let (bytes, fin) = try? connection.read(from: id, maxBytes: 1 << 20) else { break }
                    if !bytes.isEmpty, id.direction == .bidirectional { try? connection.write(bytes, to: id) }
                    if fin, id.direction == .bidirectional { try? connection.finish(id) }
                    if fin || bytes.isEmpty { break }
                }
            case .datagramReceived(let data):
                try? connection.sendDatagram(data)
            default:
                break
            }
        }
    }
}

/// `quiver connect --quic`: one bidirectional stream carries stdin to the server and the
/// server's bytes to stdout; EOF on stdin finishes the stream; the connection closes (code 0)
/// once the server has finished its side.
enum QUICClient {
    static func run(host: String, port: UInt16, serverName: String, tls: TLSConfiguration, version: QUICVersion) throws -> Int32 {
        guard let remote = SocketAddress(host: host, port: port) ?? resolve(host, port) else {
            throw QuiverError(.io, "cannot resolve \(host)")
        }
        let local = SocketAddress(host: remote.addressBytes.count == 4 ? "0.0.0.0" : "::", port: 0)!
        let socket = try UDPSocket(bindingTo: local)
        let loop = QUICLoop(socket: socket)
        var configuration = QUICConfiguration(tls: tls)
        configuration.version = version
        configuration.supportedVersions = version == .v1 ? [.v1, .v2] : [version]
        let connection = try QUICConnection(client: configuration, serverName: serverName, remoteAddress: remote, now: Instant.now())
        var stream: StreamID?
        var stdinOpen = true
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            try loop.transmit { connection.transmit(at: Instant.now()) }
            if connection.state == .closed { break }
            // Read stdin only while the stream's send buffer is small (backpressure).
            let watchStdin = stdinOpen && stream != nil && connection.bufferedBytes(on: stream!) < 1 << 20
            let stdinReady = loop.wait(until: connection.nextDeadline, extra: watchStdin ? 0 : nil)
            let now = Instant.now()
            try loop.receive { bytes, source, ecn in connection.receive(bytes, from: source, ecn: ecn, at: now) }
            connection.handleTimeout(at: Instant.now())
            if stdinReady, let id = stream {
                let count = read(0, &buffer, buffer.count)
                if count > 0 {
                    try? connection.write(Array(buffer[..<count]), to: id)
                } else {
                    stdinOpen = false
                    try? connection.finish(id)
                }
            }
            while let event = connection.nextEvent() {
                switch event {
                case .handshakeCompleted:
                    stream = connection.openStream(.bidirectional)
                case .streamReadable(let id):
                    while let (bytes, fin) = try? connection.read(from: id, maxBytes: 1 << 20) {
                        if !bytes.isEmpty { FileHandle.standardOutput.write(Data(bytes)) }
                        if fin { connection.close(errorCode: 0) }
                        if fin || bytes.isEmpty { break }
                    }
                case .closed(let info):
                    if !info.isClean { FileHandle.standardError.write(Data("quiver: connection closed: \(info)\n".utf8)) }
                    // Send our CONNECTION_CLOSE (if we are the closer) before leaving.
                    try loop.transmit { connection.transmit(at: Instant.now()) }
                    return info.isClean ? 0 : 1
                default:
                    break
                }
            }
        }
        return connection.closeInfo?.isClean == true ? 0 : 1
    }

    private static func resolve(_ host: String, _ port: UInt16) -> SocketAddress? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else { return nil }
        defer { freeaddrinfo(result) }
        var storage = sockaddr_storage()
        memcpy(&storage, first.pointee.ai_addr, Int(first.pointee.ai_addrlen))
        return SocketAddress(storage: storage)
    }
}

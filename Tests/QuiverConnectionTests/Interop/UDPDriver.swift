// A minimal blocking UDP driver for the interop tests: one ``QUICConnection`` on one IPv4
// socket bound to 127.0.0.1, driven the way a real endpoint drives it (send everything the
// connection has, wait for a datagram or its next deadline, feed it, repeat), with an overall
// deadline so that a stuck peer fails the test instead of hanging it.
#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
@_spi(Wire) import QuiverQUIC
import QuiverQUICSim

/// A failure of the interop harness or of a peer, as opposed to a failed expectation.
struct InteropFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An IPv4 UDP socket bound to 127.0.0.1 on a port the kernel picks, closed at deinit.
final class LoopbackSocket {
    let descriptor: Int32
    /// The bound port (chosen by the kernel for port 0).
    let port: UInt16
    private var buffer = [UInt8](repeating: 0, count: 65_536)

    init() throws(InteropFailure) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw InteropFailure("socket: \(Self.errorText())") }
        descriptor = fd
        // Room for a burst of full-size datagrams: loopback drops what the buffer cannot hold.
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        guard let local = SocketAddress(host: "127.0.0.1", port: 0) else {
            close(fd)
            throw InteropFailure("cannot form 127.0.0.1:0")
        }
        var (storage, length) = local.storage
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let text = Self.errorText()
            close(fd)
            throw InteropFailure("bind 127.0.0.1:0: \(text)")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        guard named == 0, let address = SocketAddress(storage: actual), address.port != 0 else {
            close(fd)
            throw InteropFailure("getsockname after bind: \(Self.errorText())")
        }
        self.port = address.port
    }

    deinit { close(descriptor) }

    /// Sends one datagram. Returns false when the kernel refused it (the datagram is lost,
    /// as UDP allows; QUIC recovers).
    func send(_ bytes: [UInt8], to destination: SocketAddress) -> Bool {
        var (storage, length) = destination.storage
        let sent = withUnsafePointer(to: &storage) { address in
            address.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bytes.withUnsafeBytes { sendto(descriptor, $0.baseAddress, $0.count, 0, address, length) }
            }
        }
        return sent == bytes.count
    }

    /// The next queued datagram and its source, without blocking; nil when none is queued.
    func receive() -> (bytes: [UInt8], source: SocketAddress)? { receive(flags: Int32(MSG_DONTWAIT)) }

    /// The next datagram, waiting for one until `deadline` at the latest (microsecond
    /// precision: a blocking receive under `SO_RCVTIMEO`, since Glibc's Swift module has no
    /// `ppoll` and `poll` counts whole milliseconds, too coarse for pacing on loopback).
    func receive(waitingUntil deadline: Instant) -> (bytes: [UInt8], source: SocketAddress)? {
        let now = Instant.now()
        guard deadline > now else { return receive() }
        let microseconds = max(1, ((deadline - now).nanosecondsClamped + 999) / 1000)
        var timeout = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return receive(flags: 0)  // EAGAIN when the timeout passes
    }

    private func receive(flags: Int32) -> (bytes: [UInt8], source: SocketAddress)? {
        var source = sockaddr_storage()
        var sourceLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let count = buffer.withUnsafeMutableBytes { bytes in
            withUnsafeMutablePointer(to: &source) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(descriptor, bytes.baseAddress, bytes.count, flags, $0, &sourceLength)
                }
            }
        }
        guard count >= 0, let address = SocketAddress(storage: source) else { return nil }
        return (Array(buffer[0..<count]), address)
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}

/// A connection's packet trace (``QUICConnection/traceHandler``) and the driver's own notes,
/// for failure messages: the first `head` lines (the handshake) and the last `tail` lines.
final class TraceLog {
    private let head: Int
    private let tail: Int
    private var first: [String] = []
    private var last: [String] = []
    private var dropped = 0

    init(head: Int = 60, tail: Int = 200) {
        self.head = head
        self.tail = tail
    }

    func append(_ line: String) {
        guard first.count >= head else { first.append(line); return }
        last.append(line)
        if last.count >= 2 * tail {  // trim in batches, not per line
            dropped += last.count - tail
            last.removeFirst(last.count - tail)
        }
    }

    var text: String {
        let skipped = dropped + max(0, last.count - tail)
        let marker = skipped > 0 ? ["… \(skipped) lines skipped …"] : []
        return (first + marker + last.suffix(tail)).joined(separator: "\n")
    }
}

/// Runs one ``QUICConnection`` over a ``LoopbackSocket`` on the calling thread.
///
/// Each turn: the application pumps the connection's events, everything ``QUICConnection/transmit(at:)``
/// returns is sent, then the driver waits for a datagram or the connection's ``QUICConnection/nextDeadline``,
/// feeds what arrived (``QUICConnection/receive(_:from:to:ecn:at:)``) and handles a passed deadline
/// (``QUICConnection/handleTimeout(at:)``).
final class UDPDriver {
    let socket: LoopbackSocket
    let trace = TraceLog()
    private(set) var datagramsSent = 0
    private(set) var datagramsReceived = 0
    private(set) var sendFailures = 0
    /// Server role: the version field of the datagram the connection was created from.
    private(set) var firstDatagramVersion: UInt32?

    init() throws(InteropFailure) { socket = try LoopbackSocket() }

    /// The port our socket is bound to on 127.0.0.1.
    var port: UInt16 { socket.port }

    /// Attaches the trace of `connection` to ``trace``.
    func observe(_ connection: QUICConnection) {
        let trace = self.trace
        connection.traceHandler = { trace.append($0) }
    }

    /// Server role: waits for the first datagram of at least 1200 bytes (RFC 9000 §14.1) and
    /// creates the server connection from it. Smaller datagrams and datagrams the connection
    /// refuses are dropped, as an endpoint would.
    func acceptConnection(_ configuration: QUICConfiguration, deadline: Instant) throws(InteropFailure) -> QUICConnection {
        while Instant.now() < deadline {
            var next = socket.receive(waitingUntil: deadline)
            while let (bytes, source) = next {
                datagramsReceived += 1
                if bytes.count < 1200 {
                    trace.append("driver: dropped a first datagram of \(bytes.count) bytes from \(source)")
                } else {
                    do {
                        let connection = try QUICConnection(server: configuration, datagram: bytes, remoteAddress: source, now: Instant.now())
                        firstDatagramVersion = bytes[1...4].reduce(0) { $0 << 8 | UInt32($1) }
                        trace.append("driver: server connection created from \(bytes.count) bytes from \(source), now at version \(connection.version)")
                        observe(connection)
                        return connection  // later datagrams stay queued for run(_:app:deadline:until:)
                    } catch {
                        trace.append("driver: first datagram from \(source) refused: \(error)")
                    }
                }
                next = socket.receive()
            }
        }
        throw InteropFailure("no usable Initial datagram arrived on port \(port) before the deadline\n\(trace.text)")
    }

    /// Drives `connection` until `done` holds (checked after each turn's events and sends), the
    /// connection is closed, or `deadline` passes (which throws).
    ///
    /// A deadline the connection reports as already passed, and that stays passed after
    /// ``QUICConnection/handleTimeout(at:)`` and ``QUICConnection/transmit(at:)``, would make a
    /// real event loop spin; after 10 000 such turns in a row the driver fails instead.
    func run(_ connection: QUICConnection, app: any ConnectionApp, deadline: Instant,
             until done: (QUICConnection) -> Bool) throws(InteropFailure) {
        var spinningTurns = 0
        while true {
            app.pump(connection)
            flush(connection)
            if done(connection) || connection.state == .closed { return }
            let now = Instant.now()
            guard now < deadline else {
                throw InteropFailure("""
                    deadline passed: connection \(connection.state), \(datagramsSent) datagrams sent, \
                    \(datagramsReceived) received, statistics \(connection.statistics)
                    \(trace.text)
                    """)
            }
            let wake = min(connection.nextDeadline ?? deadline, deadline)
            spinningTurns = wake <= now ? spinningTurns + 1 : 0
            guard spinningTurns < 10_000 else {
                throw InteropFailure("nextDeadline \(wake) stays in the past at \(now) (state \(connection.state)): a real event loop would spin\n\(trace.text)")
            }
            // What arrived, up to a batch of 256 datagrams before the next turn.
            var next = socket.receive(waitingUntil: wake)
            var count = 0
            while let (bytes, source) = next {
                datagramsReceived += 1
                connection.receive(bytes, from: source, at: Instant.now())
                count += 1
                next = count < 256 ? socket.receive() : nil
            }
            let after = Instant.now()
            if let due = connection.nextDeadline, due <= after { connection.handleTimeout(at: after) }
        }
    }

    /// Sends every datagram the connection has now.
    func flush(_ connection: QUICConnection) {
        while let datagram = connection.transmit(at: Instant.now()) {
            if socket.send(datagram.bytes, to: datagram.destination) {
                datagramsSent += 1
            } else {
                sendFailures += 1
                trace.append("driver: sendto \(datagram.destination) failed for \(datagram.bytes.count) bytes: \(String(cString: strerror(errno)))")
            }
        }
    }
}

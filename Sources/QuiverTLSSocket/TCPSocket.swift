#if canImport(Glibc)
import Glibc
#endif
public import QuiverCore

/// A blocking TCP socket (a file descriptor it owns), for tests, the `quiver` tool and simple
/// thread-per-connection servers. The event-driven listener API lives in the `Quiver` module.
public final class TCPSocket: @unchecked Sendable {
    // @unchecked: the descriptor is immutable after init; close() is idempotent via an atomic-free
    // single-owner convention (only the owning thread closes).
    /// The file descriptor.
    public let descriptor: Int32
    private var closed = false

    init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { if !closed { _ = Glibc.close(descriptor) } }

    /// The listen backlog by default: as long a queue of connections waiting for `accept` as the
    /// system allows (Linux caps the value at `net.core.somaxconn`, 4096 by default). With the
    /// old default of 128 a burst of 2 000 connections overflowed it and half were never
    /// accepted.
    public static let maximumBacklog = Int32.max

    /// Creates a listening socket bound to `address` (port 0 picks a free port). With
    /// `reusePort`, several sockets (workers) may listen on one port and the kernel spreads
    /// connections among them (`SO_REUSEPORT`).
    public static func listen(on address: SocketAddress, backlog: Int32 = maximumBacklog, reusePort: Bool = false) throws(QuiverError) -> TCPSocket {
        let family = { if case .v4 = address { return AF_INET } else { return AF_INET6 } }()
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Self.error("socket") }
        let s = TCPSocket(descriptor: fd)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if reusePort, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw Self.error("setsockopt SO_REUSEPORT")
        }
        var (storage, length) = address.storage
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard rc == 0 else { throw Self.error("bind \(address)") }
        guard Glibc.listen(fd, backlog) == 0 else { throw Self.error("listen") }
        return s
    }

    /// Takes over `descriptor`, a TCP socket already bound and listening — one another process
    /// passed over a unix socket (`DescriptorPassing`), for a restart without dropped
    /// connections; the TCP counterpart of `UDPSocket.init(adopting:configuration:)`. Its
    /// binding, backlog, `SO_REUSEPORT` group and the connections waiting in its accept queue
    /// stay as they are: whichever process holding the socket calls `accept` first gets each.
    /// The descriptor is the socket's from now on (made close-on-exec), closed by ``close()``
    /// — or at once when this throws. Give it to a listener as `Attachment.tcpListener(_:)`.
    ///
    /// - Throws: `QuiverError` `.io` when `descriptor` is not a listening IPv4 or IPv6 TCP socket.
    public convenience init(adopting descriptor: Int32) throws(QuiverError) {
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(descriptor, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        errno = 0
        let domain = option(SO_DOMAIN)
        guard option(SO_TYPE) == Int32(SOCK_STREAM.rawValue), domain == AF_INET || domain == AF_INET6,
              option(SO_PROTOCOL) == Int32(IPPROTO_TCP), option(SO_ACCEPTCONN) == 1 else {
            let code = errno
            _ = Glibc.close(descriptor)
            throw QuiverError(.io, "descriptor \(descriptor) is not a listening TCP socket\(code == 0 ? "" : ": \(String(cString: strerror(code)))")")
        }
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        self.init(descriptor: descriptor)
    }

    /// Connects to `address`.
    public static func connect(to address: SocketAddress) throws(QuiverError) -> TCPSocket {
        let family = { if case .v4 = address { return AF_INET } else { return AF_INET6 } }()
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Self.error("socket") }
        let s = TCPSocket(descriptor: fd)
        var (storage, length) = address.storage
        let rc = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
        guard rc == 0 else { throw Self.error("connect \(address)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        return s
    }

    /// Resolves `host` (a name or a numeric address) and connects to the first address that answers.
    public static func connect(host: String, port: UInt16) throws(QuiverError) -> TCPSocket {
        if let address = SocketAddress(host: host, port: port) { return try connect(to: address) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            throw QuiverError(.io, "cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        var lastError = QuiverError(.io, "no address for \(host)")
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let n = node {
            var storage = sockaddr_storage()
            memcpy(&storage, n.pointee.ai_addr, Int(n.pointee.ai_addrlen))
            if let address = SocketAddress(storage: storage) {
                do { return try connect(to: address) } catch { lastError = error }
            }
            node = n.pointee.ai_next
        }
        throw lastError
    }

    /// Accepts one connection (blocking).
    public func accept() throws(QuiverError) -> (TCPSocket, SocketAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(descriptor, $0, &length) }
            }
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                var one: Int32 = 1
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                return (TCPSocket(descriptor: fd), SocketAddress(storage: storage))
            }
            if errno == EINTR || errno == ECONNABORTED { continue }
            throw Self.error("accept")
        }
    }

    /// The local address (useful after binding port 0).
    public var localAddress: SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return rc == 0 ? SocketAddress(storage: storage) : nil
    }

    /// Reads up to `max` bytes; an empty result means end of stream.
    public func read(max: Int = 65536) throws(QuiverError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, max, 0) }
            if n >= 0 { return Array(buffer[..<n]) }
            if errno == EINTR { continue }
            if errno == ECONNRESET { throw QuiverError(.closed, "connection reset by peer") }
            throw Self.error("recv")
        }
    }

    /// Writes all of `bytes`.
    public func write(_ bytes: [UInt8]) throws(QuiverError) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 { offset += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EPIPE || errno == ECONNRESET) { throw QuiverError(.closed, "connection closed by peer") }
            throw Self.error("send")
        }
    }

    /// Shuts down the sending direction (the peer reads end of stream).
    public func shutdownWrite() { shutdown(descriptor, Int32(SHUT_WR)) }

    /// Shuts down both directions, waking any thread blocked in ``read(max:)``.
    public func shutdownBoth() { shutdown(descriptor, Int32(SHUT_RDWR)) }

    /// Closes the descriptor.
    public func close() {
        guard !closed else { return }
        closed = true
        _ = Glibc.close(descriptor)
    }

    static func error(_ what: String) -> QuiverError {
        let code = errno
        return QuiverError(.io, "\(what) failed: \(String(cString: strerror(code))) (errno \(code))")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP
public import QuiverCore

/// A non-blocking UDP socket moving datagrams in batches: the pollable, addressed network
/// attachment of the listener layer.
///
/// ```swift
/// let socket = try UDPSocket(host: "::", port: 4433)   // dual-stack: IPv6 and IPv4 peers
/// while try socket.waitReadable(timeout: .seconds(1)) {
///     let n = try socket.receive()                       // recvmmsg; 0 = would block
///     for i in 0..<n {
///         let datagram = socket.received(i)              // source, destination, ECN, GRO segment size
///         socket.withReceivedBytes(i) { bytes in         // echo it from where it was sent to
///             _ = socket.enqueue(bytes, to: datagram.source, ecn: datagram.ecn, source: datagram.destination)
///         }
///     }
///     if try socket.flush().wouldBlock {                 // sendmmsg; the rest stays queued
///         _ = try socket.waitWritable(timeout: .seconds(1))
///     }
/// }
/// ```
///
/// **Receiving.** ``receive()`` fills up to ``batchSize`` datagrams with one `recvmmsg` call into
/// memory the socket allocated once, and returns how many arrived (0 when none were waiting). Read
/// them with ``received(_:)`` and ``withReceivedBytes(_:_:)`` until the next ``receive()``. Each
/// carries its source, the local address it was sent to (`IP_PKTINFO`/`IPV6_PKTINFO`), its ECN
/// codepoint (`IP_RECVTOS`/`IPV6_RECVTCLASS`) and, with GRO on, the segment size of a coalesced
/// train of datagrams (`UDP_GRO`).
///
/// **Sending.** ``enqueue(_:to:ecn:segmentSize:source:)`` (or the variant that writes in place)
/// copies a datagram into the socket's send queue, and
/// ``enqueue(sharing:range:to:ecn:segmentSize:source:recycle:)`` queues an array's bytes without a
/// copy, holding the array until they are sent; ``flush()`` sends the queue with `sendmmsg`,
/// one control message set per datagram: ECN mark (`IP_TOS`/`IPV6_TCLASS`), source address and
/// GSO segment size (`UDP_SEGMENT`). What would block stays queued for the next ``flush()``.
///
/// **Errors.** Nothing a peer causes is fatal. "Would block" is a return value. An error for one
/// datagram (`EMSGSIZE`, `ENETUNREACH`, `ENOBUFS`, …) drops that datagram and is listed in
/// ``sendFailures``. ICMP errors that arrive later (`ECONNREFUSED` from a closed port, unreachable
/// hosts, "packet too big") are read from the socket's error queue (`IP_RECVERR`, which makes Linux
/// report them on unconnected sockets too — without it only a connected socket sees them) and
/// listed in ``peerErrors`` with the peer they concern. Only errors that make the socket unusable
/// (`EBADF`, `ENOTSOCK`, …) throw a ``QuiverError``.
///
/// **Capabilities** are measured when the socket is made: ``supportsGSO``, ``supportsGRO``,
/// ``supportsECN``, ``supportsPacketInfo``. Without GSO, a datagram enqueued with a segment size is
/// sent as separate datagrams; without GRO, datagrams arrive one by one.
///
/// **Threads.** A `UDPSocket` is not `Sendable`: one thread uses it at a time. Create it on the
/// thread that drives it, or hand it over as a `sending` value; an event loop that wants another
/// thread to send adds its own lock around the socket. (Two sockets bound to one port with
/// ``Configuration/reusePort`` can run on two threads.)
public final class UDPSocket {
    /// How a socket is made.
    public struct Configuration: Sendable {
        /// Set `SO_REUSEPORT`, so several sockets (processes, threads) can bind the same port and
        /// the kernel spreads peers among them. `SO_REUSEADDR` is never set: on Linux it lets two
        /// UDP sockets that both set it share one address (only the last bound then receives
        /// unicast datagrams), and even makes binding port 0 hand out a port another such socket
        /// already uses — which silently cut one client off in a 100-client test.
        public var reusePort: Bool
        /// For an IPv6 address: `IPV6_V6ONLY`. When `false` (the default) the socket is
        /// dual-stack — binding `[::]` also receives IPv4, whose peers appear as IPv4 addresses.
        public var ipv6Only: Bool
        /// Messages per `recvmmsg`/`sendmmsg` call and the send queue's length (1…1024).
        public var batchSize: Int
        /// Bytes each received message can hold; a longer datagram is truncated and marked
        /// (``UDPReceivedDatagram/isTruncated``). A GRO train needs up to 65535 bytes.
        public var receiveMessageCapacity: Int
        /// Bytes the send queue can hold, across all queued datagrams.
        public var sendQueueCapacity: Int
        /// Use UDP GSO (`UDP_SEGMENT`) for datagrams enqueued with a segment size, when the kernel
        /// has it.
        public var gso: Bool
        /// Ask the kernel to coalesce received datagrams (`UDP_GRO`); the receiver must then split
        /// buffers by ``UDPReceivedDatagram/segmentSize``. A coalesced buffer can reach 64 KiB:
        /// keep ``receiveMessageCapacity`` at 65536 or the kernel cuts it.
        public var gro: Bool
        /// Report received ECN codepoints and mark sent datagrams.
        public var ecn: Bool
        /// Set the don't-fragment bit and never fragment locally (`IP_PMTUDISC_PROBE`), as QUIC
        /// requires (RFC 9000 §14); a datagram over the interface MTU fails with `EMSGSIZE`.
        public var dontFragment: Bool
        /// `SO_RCVBUF` in bytes, or the system default.
        public var receiveBufferSize: Int?
        /// `SO_SNDBUF` in bytes, or the system default.
        public var sendBufferSize: Int?

        /// A configuration; every parameter has the default a QUIC server wants, except `gro`
        /// (off, since it changes what ``UDPSocket/receive()`` returns).
        public init(
            reusePort: Bool = false, ipv6Only: Bool = false, batchSize: Int = 64,
            receiveMessageCapacity: Int = 65_536, sendQueueCapacity: Int = 256 * 1024,
            gso: Bool = true, gro: Bool = false, ecn: Bool = true, dontFragment: Bool = true,
            receiveBufferSize: Int? = nil, sendBufferSize: Int? = nil
        ) {
            self.reusePort = reusePort
            self.ipv6Only = ipv6Only
            self.batchSize = batchSize
            self.receiveMessageCapacity = receiveMessageCapacity
            self.sendQueueCapacity = sendQueueCapacity
            self.gso = gso
            self.gro = gro
            self.ecn = ecn
            self.dontFragment = dontFragment
            self.receiveBufferSize = receiveBufferSize
            self.sendBufferSize = sendBufferSize
        }
    }

    /// The most segments one GSO send may carry: 64, Linux's `UDP_MAX_SEGMENTS` since UDP GSO
    /// appeared (4.18), so a train is valid on every kernel that has GSO.
    public static let maxGSOSegments = 64

    /// The address the socket is bound to, with the port the kernel chose for port 0.
    public let localAddress: SocketAddress
    /// The socket's file descriptor (-1 after ``close()``).
    public private(set) var fileDescriptor: Int32
    /// The descriptor to watch for readiness in an event loop (`POLLIN`: datagrams or error
    /// reports to collect with ``receive()``; `POLLOUT`: room to ``flush()``).
    public var pollDescriptor: Int32 { fileDescriptor }
    /// Whether the socket is IPv6 with `IPV6_V6ONLY` off, so it also carries IPv4.
    public let isDualStack: Bool
    /// Messages per `recvmmsg`/`sendmmsg` call.
    public let batchSize: Int
    /// The bytes the send queue holds (``Configuration/sendQueueCapacity``).
    public var sendQueueCapacity: Int { sendBuffers.byteCapacity }
    /// Whether a datagram enqueued with a segment size goes out as one GSO send. Turns `false`
    /// if the kernel later refuses GSO for this socket's route (`EIO`); later sends are split.
    public internal(set) var supportsGSO: Bool
    /// Whether the kernel coalesces received datagrams (`UDP_GRO` was requested and accepted).
    public let supportsGRO: Bool
    /// Whether received datagrams report their ECN codepoint and sent ones carry their mark.
    public let supportsECN: Bool
    /// Whether received datagrams report the local address they were sent to.
    public let supportsPacketInfo: Bool

    /// The socket's address family (`AF_INET` or `AF_INET6`).
    let family: Int32
    let receiveBuffers: MessageBuffers
    let receiveMessageCapacity: Int
    /// Read for every datagram received; a socket is used by one thread at a time (its
    /// owner's), so no dynamic exclusivity check.
    @exclusivity(unchecked) var receivedDatagrams: [UDPReceivedDatagram]
    let sendBuffers: MessageBuffers
    var queue: [QueuedDatagram]
    /// Bytes of ``sendBuffers`` the queue uses.
    var queuedBytes = 0
    /// Arrays queued without a copy (``enqueue(sharing:range:to:ecn:segmentSize:source:recycle:)``),
    /// oldest first, each held until its datagrams are sent or dropped.
    var sharedBuffers: [SharedBuffer] = []
    /// Bytes of the shared arrays the queue sends.
    var sharedBytes = 0
    /// Emptied arrays of sent trains, kept for ``takeSpareBuffer()``.
    var spareBuffers: [[UInt8]] = []
    /// The base addresses of ``sharedBuffers`` while ``flush()`` sends from them.
    var sharedBases: [UnsafeRawPointer?] = []
    let errorQueueBuffers: MessageBuffers
    /// Datagrams ``flush()`` dropped; cleared by the next ``flush()``.
    public internal(set) var sendFailures: [UDPSendFailure] = []
    /// ICMP and other late errors collected from the kernel's error queue, oldest first; at
    /// most ``batchSize`` are kept until ``removeAllPeerErrors()``.
    public internal(set) var peerErrors: [UDPPeerError] = []

    /// Opens a socket bound to `address` (port 0: the kernel picks one; see ``localAddress``).
    ///
    /// - Throws: ``QuiverError`` `.configuration` for an unusable configuration or a
    ///   refused `SO_REUSEPORT`/`IPV6_V6ONLY`, `.io` when `socket` or `bind` fails (for example
    ///   "Address already in use").
    public convenience init(bindingTo address: SocketAddress, configuration: Configuration = Configuration()) throws(QuiverError) {
        try self.init(address: address, adopting: nil, configuration: configuration)
    }

    /// Takes over `descriptor`, a UDP socket already bound — one another process passed over a
    /// unix socket (`DescriptorPassing`), for a restart without dropped connections. The
    /// socket's binding, `SO_REUSEPORT` and `IPV6_V6ONLY` stay as they are; the other options
    /// of `configuration` are set again (packet info, ECN, GSO, GRO, buffers), and the socket's
    /// reuseport group, with its steering program, is unchanged. The descriptor is the
    /// socket's from now on, closed by ``close()`` — or at once when this throws.
    ///
    /// - Throws: ``QuiverError`` `.io` when `descriptor` is not a bound socket,
    ///   `.configuration` as ``init(bindingTo:configuration:)``.
    public convenience init(adopting descriptor: Int32, configuration: Configuration = Configuration()) throws(QuiverError) {
        var type: Int32 = 0
        var typeLength = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &typeLength) == 0, type == Int32(SOCK_DGRAM.rawValue),
              let local = Self.localAddress(of: descriptor) else {
            let code = errno == 0 ? ENOTSOCK : errno
            _ = Glibc.close(descriptor)
            throw QuiverError.udp("getsockname", errno: code)
        }
        try self.init(address: local, adopting: descriptor, configuration: configuration)
    }

    private init(address: SocketAddress, adopting: Int32?, configuration: Configuration) throws(QuiverError) {
        guard (1...1024).contains(configuration.batchSize) else {
            if let adopting { _ = Glibc.close(adopting) }
            throw QuiverError(.configuration, "UDP batch size \(configuration.batchSize) is outside 1…1024")
        }
        guard configuration.receiveMessageCapacity > 0, configuration.sendQueueCapacity > 0 else {
            if let adopting { _ = Glibc.close(adopting) }
            throw QuiverError(.configuration, "UDP receive message capacity and send queue capacity must be positive")
        }
        let packed = PackedAddress(address)
        let family = packed.isIPv4 ? AF_INET : AF_INET6
        let fd = adopting ?? socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw QuiverError.udp("socket", errno: errno) }
        var keepDescriptor = false
        defer { if !keepDescriptor { _ = Glibc.close(fd) } }

        let ipv4 = family == AF_INET
        let dualStack: Bool
        if adopting != nil {
            // Bound already: its binding options are the ones it has; it must not block.
            var v6Only: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            dualStack = !ipv4 && getsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &v6Only, &length) == 0 && v6Only == 0
            let flags = fcntl(fd, F_GETFL)
            guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw QuiverError.udp("fcntl", errno: errno) }
        } else {
            dualStack = !ipv4 && !configuration.ipv6Only
            if configuration.reusePort, !Self.set(fd, SOL_SOCKET, SO_REUSEPORT, 1) {
                throw QuiverError(.configuration, "SO_REUSEPORT refused: \(String(cString: strerror(errno)))")
            }
            if !ipv4, !Self.set(fd, SOL_IPV6, IPV6_V6ONLY, configuration.ipv6Only ? 1 : 0) {
                throw QuiverError(.configuration, "IPV6_V6ONLY refused: \(String(cString: strerror(errno)))")
            }
        }
        // IPv4 options apply to the IPv4 datagrams of a dual-stack socket too.
        let v4Options = ipv4 || dualStack
        let v6Options = !ipv4
        func setBoth(_ v4Name: Int32, _ v6Name: Int32, _ value: Int32) -> Bool {
            (!v4Options || Self.set(fd, SOL_IP, v4Name, value)) && (!v6Options || Self.set(fd, SOL_IPV6, v6Name, value))
        }
        supportsPacketInfo = setBoth(IP_PKTINFO, IPV6_RECVPKTINFO, 1)
        supportsECN = configuration.ecn && setBoth(IP_RECVTOS, IPV6_RECVTCLASS, 1)
        // Failing these only loses information (late errors on unconnected sockets, DF), so go on.
        _ = setBoth(IP_RECVERR, IPV6_RECVERR, 1)
        if configuration.dontFragment { _ = setBoth(IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, IP_PMTUDISC_PROBE) }
        if let size = configuration.receiveBufferSize { _ = Self.set(fd, SOL_SOCKET, SO_RCVBUF, Int32(clamping: size)) }
        if let size = configuration.sendBufferSize { _ = Self.set(fd, SOL_SOCKET, SO_SNDBUF, Int32(clamping: size)) }
        supportsGRO = configuration.gro && Self.set(fd, QUIVER_SOL_UDP, QUIVER_UDP_GRO, 1)
        // The kernel knows UDP_SEGMENT if it can read it back (ENOPROTOOPT otherwise).
        var segment: Int32 = 0
        var segmentLength = socklen_t(MemoryLayout<Int32>.size)
        supportsGSO = configuration.gso && getsockopt(fd, QUIVER_SOL_UDP, QUIVER_UDP_SEGMENT, &segment, &segmentLength) == 0

        if adopting == nil {
            var storage = sockaddr_storage()
            let length = withUnsafeMutablePointer(to: &storage) { packed.write(to: UnsafeMutableRawPointer($0), socketFamily: family) }
            let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
            guard bound == 0 else { throw QuiverError.udp("bind \(address)", errno: errno) }
        }
        guard let local = Self.localAddress(of: fd) else { throw QuiverError.udp("getsockname", errno: errno) }

        keepDescriptor = true
        fileDescriptor = fd
        self.family = family
        localAddress = local
        isDualStack = dualStack
        batchSize = configuration.batchSize
        receiveMessageCapacity = configuration.receiveMessageCapacity
        receiveBuffers = MessageBuffers(
            count: batchSize, byteCapacity: batchSize * receiveMessageCapacity, controlStride: Self.controlStride)
        sendBuffers = MessageBuffers(count: batchSize, byteCapacity: configuration.sendQueueCapacity, controlStride: Self.controlStride)
        errorQueueBuffers = MessageBuffers(count: 1, byteCapacity: 64, controlStride: Self.errorControlStride)
        receivedDatagrams = []
        receivedDatagrams.reserveCapacity(batchSize)
        queue = []
        queue.reserveCapacity(batchSize)
        sendFailures.reserveCapacity(batchSize)
        peerErrors.reserveCapacity(batchSize)
        for i in 0..<batchSize {
            receiveBuffers.iovecs[i] = iovec(
                iov_base: receiveBuffers.bytes + i * receiveMessageCapacity, iov_len: receiveMessageCapacity)
            receiveBuffers.headers[i].msg_hdr.msg_control = receiveBuffers.control(i)
        }
        errorQueueBuffers.iovecs[0] = iovec(iov_base: errorQueueBuffers.bytes, iov_len: errorQueueBuffers.byteCapacity)
        errorQueueBuffers.headers[0].msg_hdr.msg_control = errorQueueBuffers.control(0)
    }

    /// Opens a socket bound to a numeric host (`127.0.0.1`, `::`, `fe80::1%2`) and port.
    ///
    /// - Throws: ``QuiverError`` `.configuration` when `host` is not a numeric
    ///   address, otherwise as ``init(bindingTo:configuration:)``.
    public convenience init(host: String, port: UInt16, configuration: Configuration = Configuration()) throws(QuiverError) {
        guard let address = SocketAddress(host: host, port: port) else {
            throw QuiverError(.configuration, "\(host) is not a numeric IPv4 or IPv6 address")
        }
        try self.init(bindingTo: address, configuration: configuration)
    }

    deinit {
        if fileDescriptor >= 0 { _ = Glibc.close(fileDescriptor) }
    }

    /// Closes the descriptor; later calls fail with `EBADF` (thrown). Closing twice is harmless.
    public func close() {
        guard fileDescriptor >= 0 else { return }
        _ = Glibc.close(fileDescriptor)
        fileDescriptor = -1
    }

    /// Whether the socket has SO_REUSEPORT (other sockets may bind its port).
    public var reusesPort: Bool {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fileDescriptor, SOL_SOCKET, SO_REUSEPORT, &value, &length) == 0 && value != 0
    }

    /// Connects the socket to `peer`: the kernel then delivers only that peer's datagrams. Sends
    /// still name their destination. (For a socket that serves one peer, as after a fork
    /// hand-over.)
    ///
    /// - Throws: ``QuiverError`` `.io` when `connect` fails.
    public func connect(to peer: SocketAddress) throws(QuiverError) {
        var storage = sockaddr_storage()
        let length = withUnsafeMutablePointer(to: &storage) {
            PackedAddress(peer).write(to: UnsafeMutableRawPointer($0), socketFamily: family)
        }
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fileDescriptor, $0, length) }
        }
        guard rc == 0 else { throw QuiverError.udp("connect \(peer)", errno: errno) }
    }

    /// Waits until datagrams or error reports are ready for ``receive()``, or `timeout` passes.
    ///
    /// - Parameter timeout: how long to wait at most; `nil` waits indefinitely.
    /// - Returns: `true` when the socket is readable (or has an error report, which ``receive()``
    ///   collects), `false` when the timeout passed.
    /// - Throws: ``QuiverError`` `.io` when `poll` fails or the socket is closed.
    public func waitReadable(timeout: Duration?) throws(QuiverError) -> Bool {
        try wait(for: Int16(POLLIN), timeout: timeout)
    }

    /// Waits until ``flush()`` can send again (after a flush left datagrams queued), or `timeout`
    /// passes.
    ///
    /// - Parameter timeout: how long to wait at most; `nil` waits indefinitely.
    /// - Returns: `true` when the socket is writable (or has an error report), `false` on timeout.
    /// - Throws: ``QuiverError`` `.io` when `poll` fails or the socket is closed.
    public func waitWritable(timeout: Duration?) throws(QuiverError) -> Bool {
        try wait(for: Int16(POLLOUT), timeout: timeout)
    }

    private func wait(for events: Int16, timeout: Duration?) throws(QuiverError) -> Bool {
        // poll(2) ignores a negative descriptor instead of failing.
        guard fileDescriptor >= 0 else { throw QuiverError.udp("poll", errno: EBADF) }
        let deadline = timeout.map { Instant.now() + $0 }
        while true {
            var milliseconds: Int32 = -1
            if let deadline {
                let left = (deadline - Instant.now()).nanosecondsClamped
                milliseconds = left <= 0 ? 0 : Int32(clamping: (left + 999_999) / 1_000_000)
            }
            var entry = pollfd(fd: fileDescriptor, events: events, revents: 0)
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 {
                guard entry.revents & Int16(POLLNVAL) == 0 else { throw QuiverError.udp("poll", errno: EBADF) }
                return true
            }
            if ready == 0 { return false }
            let code = errno
            guard code == EINTR else { throw QuiverError.udp("poll", errno: code) }
        }
    }

    /// Makes `count` sockets bound to `address` in one SO_REUSEPORT group, socket *i* being the
    /// group's index *i*, and attaches a program that steers QUIC datagrams by connection ID:
    /// to the socket whose index is bytes 1–2 of the DCID (datagram offset 2 of a short header,
    /// `WorkerConnectionIDs.datagramOffset`; offset 7 of a long header) modulo `count`. Our
    /// connection IDs carry a worker id below `count`; a client's first Initials, whose DCID it
    /// chose at random, land on the socket that DCID names — the same one for all of them, and
    /// spread over the group by connection, not by address, so many clients behind one address
    /// and port are shared out too. Prefork servers make the group before forking and give
    /// worker *i* socket *i* and connection IDs carrying worker id *i*: every packet of a
    /// connection then reaches its worker, even after the client's address changes.
    ///
    /// - Throws: ``QuiverError`` `.configuration` when the kernel refuses the program (it needs
    ///   Linux ≥ 4.5).
    ///
    /// With `dtls`, the program steers DTLS records by Connection ID instead: bytes 1–2 of the
    /// ID of a DTLS 1.2 `tls12_cid` record (RFC 9146) or a DTLS 1.3 record with one (RFC 9147);
    /// other datagrams — handshakes, records without an ID — go by the kernel's 4-tuple hash, so
    /// a client's handshake stays on one socket, whose worker's IDs then keep it there wherever
    /// the client's address moves.
    ///
    /// `workerIDOffset` moves the QUIC worker id further into the DCID: behind a QUIC-LB load
    /// balancer the ID's octets 1… hold the host's server ID, and the worker id follows it
    /// (`QUICLBServer.workerIDOffset`).
    public static func steeringGroup(bindingTo address: SocketAddress, count: Int, configuration: Configuration = Configuration(),
                                     dtls: Bool = false, workerIDOffset: Int = 1) throws(QuiverError) -> [UDPSocket] {
        precondition(count > 0 && count <= 0xffff, "1…65535 sockets")
        precondition((1...18).contains(workerIDOffset), "a worker id at DCID octets 1…19")
        var configuration = configuration
        configuration.reusePort = true
        var sockets: [UDPSocket] = []
        var bound = address
        for _ in 0..<count {
            let socket = try UDPSocket(bindingTo: bound, configuration: configuration)
            bound = socket.localAddress  // port 0: the rest join the port the first one got
            sockets.append(socket)
        }
        // Short header: flags (1), then the DCID. Long header: flags (1) + version (4) + DCID
        // length (1), then the DCID.
        let attached = dtls
            ? quiver_attach_dtls_cid_steering(sockets[0].fileDescriptor, UInt32(count))
            : quiver_attach_cid_steering(sockets[0].fileDescriptor, UInt32(1 + workerIDOffset), UInt32(6 + workerIDOffset), UInt32(count))
        guard attached == 0 else {
            throw QuiverError(.configuration, "SO_ATTACH_REUSEPORT_CBPF refused: \(String(cString: strerror(errno)))")
        }
        return sockets
    }

    /// Forgets the collected ``peerErrors``.
    public func removeAllPeerErrors() { peerErrors.removeAll(keepingCapacity: true) }

    /// Bytes of control-message space per message: packet info (40), TOS or traffic class (24),
    /// GRO or GSO segment size (24), with room to spare.
    static let controlStride = 128
    /// Bytes of control-message space for an error-queue entry: the extended error with the
    /// offender's address (64) and the packet information and TOS of the returned datagram.
    static let errorControlStride = 512

    /// `setsockopt` with an `Int32` value; `false` (with `errno`) when refused.
    static func set(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Bool {
        var value = value
        return setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0
    }

    private static func localAddress(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafeBytes(of: &storage) { bytes in
            bytes.baseAddress.flatMap { PackedAddress(sockaddr: $0, length: Int(length))?.socketAddress }
        }
    }
}

@available(*, unavailable, message: "a UDPSocket is used by one thread at a time; transfer it with `sending`")
extension UDPSocket: Sendable {}

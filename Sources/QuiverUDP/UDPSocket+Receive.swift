#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP
public import QuiverCore

/// One datagram (or, with GRO, one train of datagrams) that ``UDPSocket/receive()`` read:
/// everything but the bytes, which ``UDPSocket/withReceivedBytes(_:_:)`` lends.
///
/// The addresses are kept in the kernel's form and built on access, so receiving allocates
/// nothing per datagram (an IPv6 ``SocketAddress`` holds an array).
public struct UDPReceivedDatagram: Sendable {
    /// The number of bytes received (all segments of a GRO train).
    public let count: Int
    /// The ECN codepoint of the IP header (`.notECT` when the socket does not report ECN).
    public let ecn: ECNCodepoint
    /// With GRO: the size of each coalesced datagram (the last may be shorter), so the bytes hold
    /// `(count + segmentSize - 1) / segmentSize` datagrams from the same source. `nil`: one datagram.
    public let segmentSize: Int?
    /// Whether the datagram was longer than the receive buffer and was cut (`MSG_TRUNC`).
    public let isTruncated: Bool
    let slot: Int
    let packedSource: PackedAddress
    let packedDestination: PackedAddress?

    /// Who sent it. IPv4 peers of a dual-stack socket appear as IPv4 addresses.
    public var source: SocketAddress { packedSource.socketAddress }
    /// The local address it was sent to, with the socket's port (`IP_PKTINFO`/`IPV6_PKTINFO`);
    /// `nil` when the socket does not report it. Use it as the source of replies on a socket bound
    /// to a wildcard address.
    public var destination: SocketAddress? { packedDestination?.socketAddress }
}

extension UDPSocket {
    /// Reads up to ``batchSize`` waiting datagrams with one `recvmmsg` call.
    ///
    /// Never blocks: returns 0 when nothing is waiting. The datagrams stay readable through
    /// ``received(_:)`` and ``withReceivedBytes(_:_:)`` until the next call. An ICMP error the
    /// kernel holds for an earlier send is collected into ``peerErrors`` on the way.
    ///
    /// - Returns: how many datagrams were received (``receivedCount``).
    /// - Throws: ``QuiverError`` `.io` only when the socket is unusable (closed,
    ///   `EBADF`, …).
    public func receive() throws(QuiverError) -> Int {
        receivedDatagrams.removeAll(keepingCapacity: true)
        let buffers = receiveBuffers
        for i in 0..<batchSize {
            buffers.headers[i].msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            buffers.headers[i].msg_hdr.msg_controllen = buffers.controlStride
            buffers.headers[i].msg_hdr.msg_flags = 0
        }
        // Each late error ends one call and is cleared by it; a few in a row still end this one.
        var lateErrors = 0
        while true {
            let received = quiver_recvmmsg(fileDescriptor, buffers.headers, UInt32(batchSize), Int32(MSG_DONTWAIT))
            if received >= 0 {
                for i in 0..<Int(received) { record(message: i) }
                return receivedDatagrams.count
            }
            let code = errno
            switch ErrnoOutcome(errno: code) {
            case .interrupted:
                continue
            case .wouldBlock:
                return 0
            case .fatal:
                throw QuiverError.udp("recvmmsg", errno: code)
            case .datagram where code == EINVAL:
                throw QuiverError.udp("recvmmsg", errno: code)
            case .datagram:
                collectPeerErrors()
                lateErrors += 1
                if lateErrors == 4 { return 0 }
            }
        }
    }

    /// How many datagrams the last ``receive()`` returned.
    public var receivedCount: Int { receivedDatagrams.count }

    /// The metadata of received datagram `index` (`0..<receivedCount`).
    public func received(_ index: Int) -> UDPReceivedDatagram { receivedDatagrams[index] }

    /// Lends the bytes of received datagram `index` (`0..<receivedCount`), valid during `body`.
    public func withReceivedBytes<Result, Failure: Error>(
        _ index: Int, _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let datagram = receivedDatagrams[index]
        return try body(UnsafeRawBufferPointer(
            start: receiveBuffers.bytes + datagram.slot * receiveMessageCapacity, count: datagram.count))
    }

    /// Decodes message `i` of the receive batch into ``receivedDatagrams``.
    private func record(message i: Int) {
        let buffers = receiveBuffers
        let header = buffers.headers + i
        guard let source = PackedAddress(sockaddr: buffers.names + i, length: Int(header.pointee.msg_hdr.msg_namelen)) else {
            return  // not an IP datagram: cannot happen on an AF_INET/AF_INET6 socket
        }
        let port = localAddress.port
        var ecn = ECNCodepoint.notECT
        var destination: PackedAddress?
        var segmentSize: Int?
        withUnsafeMutablePointer(to: &header.pointee.msg_hdr) { message in
            ControlMessage.forEach(in: message) { level, type, data in
                switch (level, type) {
                case (SOL_IP, IP_PKTINFO) where data.count >= MemoryLayout<in_pktinfo>.size:
                    destination = PackedAddress(v4: data.loadUnaligned(as: in_pktinfo.self).ipi_addr, port: port)
                case (SOL_IPV6, IPV6_PKTINFO) where data.count >= MemoryLayout<quiver_in6_pktinfo>.size:
                    let info = data.loadUnaligned(as: quiver_in6_pktinfo.self)
                    destination = PackedAddress(v6: info.ipi6_addr, port: port, interfaceIndex: info.ipi6_ifindex)
                case (SOL_IP, IP_TOS) where data.count >= 1:
                    ecn = ECNCodepoint(rawValue: data[0] & 0b11) ?? .notECT
                case (SOL_IPV6, IPV6_TCLASS) where data.count >= MemoryLayout<Int32>.size:
                    ecn = ECNCodepoint(rawValue: UInt8(truncatingIfNeeded: data.loadUnaligned(as: Int32.self)) & 0b11) ?? .notECT
                case (QUIVER_SOL_UDP, QUIVER_UDP_GRO) where data.count >= MemoryLayout<Int32>.size:
                    let size = Int(data.loadUnaligned(as: Int32.self))
                    segmentSize = size > 0 ? size : nil
                default:
                    break
                }
            }
        }
        receivedDatagrams.append(UDPReceivedDatagram(
            count: Int(header.pointee.msg_len), ecn: ecn, segmentSize: segmentSize,
            isTruncated: header.pointee.msg_hdr.msg_flags & Int32(MSG_TRUNC) != 0,
            slot: i, packedSource: source, packedDestination: destination))
    }

    /// Reads the socket's error queue (`MSG_ERRQUEUE`) into ``peerErrors`` until it is empty, so
    /// that `POLLERR` clears. Called whenever a call reports a late error.
    func collectPeerErrors() {
        let buffers = errorQueueBuffers
        let header = buffers.headers
        for _ in 0..<batchSize {
            header.pointee.msg_hdr.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            header.pointee.msg_hdr.msg_controllen = buffers.controlStride
            header.pointee.msg_hdr.msg_flags = 0
            let read = recvmsg(fileDescriptor, &header.pointee.msg_hdr, Int32(MSG_ERRQUEUE) | Int32(MSG_DONTWAIT))
            if read < 0 {
                if errno == EINTR { continue }
                return  // EAGAIN: the queue is empty
            }
            var report: (errno: Int32, mtu: Int?)?
            withUnsafeMutablePointer(to: &header.pointee.msg_hdr) { message in
                ControlMessage.forEach(in: message) { level, type, data in
                    guard (level == SOL_IP && type == IP_RECVERR) || (level == SOL_IPV6 && type == IPV6_RECVERR),
                        data.count >= MemoryLayout<quiver_sock_extended_err>.size
                    else { return }
                    let extended = data.loadUnaligned(as: quiver_sock_extended_err.self)
                    let code = Int32(bitPattern: extended.ee_errno)
                    report = (code, code == EMSGSIZE && extended.ee_info > 0 ? Int(extended.ee_info) : nil)
                }
            }
            guard let report, peerErrors.count < batchSize,
                let peer = PackedAddress(sockaddr: buffers.names, length: Int(header.pointee.msg_hdr.msg_namelen))
            else { continue }
            peerErrors.append(UDPPeerError(peer: peer.socketAddress, error: UDPError(errno: report.errno), mtu: report.mtu))
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP
public import QuiverCore

/// What one ``UDPSocket/flush()`` did, counted in datagrams (a GSO train counts its segments).
public struct UDPSendResult: Hashable, Sendable, CustomStringConvertible {
    /// Datagrams the kernel accepted.
    public var sent: Int
    /// Datagrams dropped with a per-datagram error, listed in ``UDPSocket/sendFailures``.
    public var failed: Int
    /// Datagrams still queued because the socket would block: flush again once
    /// ``UDPSocket/waitWritable(timeout:)`` (or `POLLOUT`) says so.
    public var remaining: Int

    /// Creates a result (for tests and for drivers that sum several flushes).
    public init(sent: Int, failed: Int, remaining: Int) {
        self.sent = sent
        self.failed = failed
        self.remaining = remaining
    }

    /// Whether the socket would block with datagrams still queued.
    public var wouldBlock: Bool { remaining > 0 }

    public var description: String { "sent \(sent), failed \(failed), remaining \(remaining)" }
}

/// A message of the send queue: a range of the send buffer and how to send it.
struct QueuedDatagram {
    var offset: Int
    var length: Int
    var destination: PackedAddress
    var source: PackedAddress?
    var ecn: ECNCodepoint
    /// The GSO segment size, or 0 for a single datagram.
    var segmentSize: Int

    var datagrams: Int { segmentSize == 0 ? 1 : (length + segmentSize - 1) / segmentSize }
}

extension UDPSocket {
    /// Queues a datagram written in place: `write` gets `capacity` bytes of the send queue and
    /// returns how many it wrote (a packet encoder can seal straight into the queue).
    ///
    /// With `segmentSize`, the bytes are a train of datagrams of that size (the last may be
    /// shorter) for the same destination: one GSO send when ``supportsGSO``, separate datagrams
    /// otherwise.
    ///
    /// - Parameters:
    ///   - destination: where to send; an IPv4 address works on a dual-stack socket.
    ///   - ecn: the ECN codepoint to mark the datagram with (ignored unless ``supportsECN``).
    ///   - segmentSize: the GSO segment size, with `capacity` at most ``maxGSOSegments``
    ///     segments; `nil` for one datagram. A train must fit one UDP datagram's length field
    ///     (about 64 KiB), or the kernel refuses it (`EMSGSIZE`, a ``sendFailures`` entry).
    ///   - source: the local address to send from (a reply to ``UDPReceivedDatagram/destination``
    ///     on a wildcard-bound socket); `nil` lets the kernel choose.
    ///   - capacity: the most bytes `write` may write.
    ///   - write: writes the datagram and returns its length (0…`capacity`).
    /// - Returns: `false`, without calling `write`, when the queue has no room; ``flush()`` first.
    @discardableResult
    public func enqueue<Failure: Error>(
        to destination: SocketAddress, ecn: ECNCodepoint = .notECT, segmentSize: Int? = nil,
        source: SocketAddress? = nil, capacity: Int,
        _ write: (UnsafeMutableRawBufferPointer) throws(Failure) -> Int
    ) throws(Failure) -> Bool {
        precondition(capacity >= 0, "negative capacity")
        // Without GSO a train becomes one message per segment: reserve room for the longest.
        var split = false
        var messages = 1
        if let segmentSize {
            precondition(segmentSize > 0 && segmentSize <= Int(UInt16.max), "GSO segment size \(segmentSize) outside 1…65535")
            precondition(capacity <= segmentSize * Self.maxGSOSegments, "more than \(Self.maxGSOSegments) GSO segments")
            if !supportsGSO && capacity > segmentSize {
                split = true
                messages = (capacity + segmentSize - 1) / segmentSize
            }
        }
        guard queue.count + messages <= batchSize, queuedBytes + capacity <= sendBuffers.byteCapacity else { return false }

        let start = queuedBytes
        let written = try write(UnsafeMutableRawBufferPointer(start: sendBuffers.bytes + start, count: capacity))
        precondition((0...capacity).contains(written), "wrote \(written) bytes into \(capacity)")
        let destination = PackedAddress(destination)
        let source = source.map(PackedAddress.init)
        func append(_ offset: Int, _ length: Int, segmentSize: Int) {
            queue.append(QueuedDatagram(
                offset: offset, length: length, destination: destination, source: source, ecn: ecn, segmentSize: segmentSize))
        }
        switch segmentSize {
        case let size? where written > size && split:
            for offset in stride(from: 0, to: written, by: size) {
                append(start + offset, min(size, written - offset), segmentSize: 0)
            }
        case let size? where written > size:
            append(start, written, segmentSize: size)
        default:
            append(start, written, segmentSize: 0)
        }
        queuedBytes += written
        return true
    }

    /// Queues a copy of `bytes`; see ``enqueue(to:ecn:segmentSize:source:capacity:_:)``.
    ///
    /// - Returns: `false` when the queue has no room; ``flush()`` first.
    @discardableResult
    public func enqueue(
        _ bytes: some Collection<UInt8>, to destination: SocketAddress, ecn: ECNCodepoint = .notECT,
        segmentSize: Int? = nil, source: SocketAddress? = nil
    ) -> Bool {
        enqueue(to: destination, ecn: ecn, segmentSize: segmentSize, source: source, capacity: bytes.count) { buffer in
            if bytes.withContiguousStorageIfAvailable({ buffer.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
                buffer.copyBytes(from: bytes)
            }
            return bytes.count
        }
    }

    /// Datagrams waiting in the send queue (a GSO train counts its segments).
    public var queuedDatagramCount: Int { queue.reduce(0) { $0 + $1.datagrams } }

    /// Sends the queue with `sendmmsg`, as many messages per call as are queued.
    ///
    /// A datagram the kernel refuses (`EMSGSIZE`, `ENETUNREACH`, `ENOBUFS`, `EPERM`, …) is dropped
    /// and listed in ``sendFailures``; the rest still go. When the socket would block, the
    /// unsent datagrams stay queued (``UDPSendResult/remaining``). A late ICMP error for an
    /// earlier datagram, which Linux returns from whichever send comes next, is moved to
    /// ``peerErrors`` and that send is retried.
    ///
    /// - Returns: datagrams sent, dropped and still queued.
    /// - Throws: ``QuiverError`` `.io` only when the socket is unusable; the datagrams
    ///   not yet sent stay queued.
    public func flush() throws(QuiverError) -> UDPSendResult {
        sendFailures.removeAll(keepingCapacity: true)
        var result = UDPSendResult(sent: 0, failed: 0, remaining: 0)
        for i in queue.indices { prepare(message: i) }
        var index = 0
        var retried = -1
        sending: while index < queue.count {
            let sent = quiver_sendmmsg(fileDescriptor, sendBuffers.headers + index, UInt32(queue.count - index), 0)
            if sent == 0 { break }  // only for an empty batch, which is never passed
            if sent > 0 {
                for message in queue[index..<index + Int(sent)] { result.sent += message.datagrams }
                index += Int(sent)
                // A short count hides the error that stopped the call, and Linux does not keep it:
                // a late one (an ICMP error for a datagram of this very batch, on loopback) would
                // be left in the error queue with POLLERR set for good. Collect it now.
                if index < queue.count { collectPeerErrors() }
                continue
            }
            let code = errno
            switch ErrnoOutcome(errno: code) {
            case .interrupted:
                continue
            case .wouldBlock:
                break sending
            case .fatal:
                removeFromQueue(index)
                throw QuiverError.udp("sendmmsg", errno: code)
            case .datagram(let error):
                collectPeerErrors()
                // The error may be a late one about an earlier datagram, which the call returned
                // and cleared instead of sending this one: try it once more.
                if retried != index {
                    retried = index
                    continue
                }
                let message = queue[index]
                if code == EIO && message.segmentSize > 0 { supportsGSO = false }  // no GSO on this route
                result.failed += message.datagrams
                sendFailures.append(UDPSendFailure(
                    destination: message.destination.socketAddress, datagrams: message.datagrams, error: error))
                index += 1
            }
        }
        removeFromQueue(index)
        result.remaining = queuedDatagramCount
        return result
    }

    /// Fills `sendmmsg` header `i` from queue entry `i`.
    private func prepare(message i: Int) {
        let buffers = sendBuffers
        let message = queue[i]
        buffers.iovecs[i] = iovec(iov_base: buffers.bytes + message.offset, iov_len: message.length)
        let header = buffers.headers + i
        header.pointee.msg_hdr.msg_namelen = message.destination.write(to: buffers.names + i, socketFamily: family)
        header.pointee.msg_hdr.msg_flags = 0
        // IPv4 destinations (also IPv4-mapped ones on a dual-stack socket) take IPv4 control messages.
        let ipv4 = message.destination.isIPv4
        let control = buffers.control(i)
        var length = 0
        if supportsECN, message.ecn != .notECT {
            let mark = Int32(message.ecn.rawValue)
            length = ipv4
                ? ControlMessage.append(mark, level: SOL_IP, type: IP_TOS, to: control, at: length)
                : ControlMessage.append(mark, level: SOL_IPV6, type: IPV6_TCLASS, to: control, at: length)
        }
        switch message.source {
        case .v4(let sin)?:
            let info = in_pktinfo(ipi_ifindex: 0, ipi_spec_dst: sin.sin_addr, ipi_addr: in_addr())
            length = ControlMessage.append(info, level: SOL_IP, type: IP_PKTINFO, to: control, at: length)
        case .v6(let sin6)?:
            let info = quiver_in6_pktinfo(ipi6_addr: sin6.sin6_addr, ipi6_ifindex: sin6.sin6_scope_id)
            length = ControlMessage.append(info, level: SOL_IPV6, type: IPV6_PKTINFO, to: control, at: length)
        case nil:
            break
        }
        if message.segmentSize > 0 {
            length = ControlMessage.append(
                UInt16(message.segmentSize), level: QUIVER_SOL_UDP, type: QUIVER_UDP_SEGMENT, to: control, at: length)
        }
        header.pointee.msg_hdr.msg_control = length > 0 ? control : nil
        header.pointee.msg_hdr.msg_controllen = length
    }

    /// Drops the first `count` queue entries (sent or failed) and moves the rest, bytes included,
    /// to the front.
    private func removeFromQueue(_ count: Int) {
        guard count < queue.count else {
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            return
        }
        guard count > 0 else { return }
        let shift = queue[count].offset
        memmove(sendBuffers.bytes, sendBuffers.bytes + shift, queuedBytes - shift)
        queue.removeFirst(count)
        for i in queue.indices { queue[i].offset -= shift }
        queuedBytes -= shift
    }
}

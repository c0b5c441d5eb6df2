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

/// A message of the send queue: a range of the send buffer (or of a shared array) and how to
/// send it.
struct QueuedDatagram {
    var offset: Int
    var length: Int
    var destination: PackedAddress
    var source: PackedAddress?
    var ecn: ECNCodepoint
    /// The GSO segment size, or 0 for a single datagram.
    var segmentSize: Int
    /// Whether ``offset`` is in the oldest ``UDPSocket/sharedBuffers`` entry still queued rather
    /// than in the send buffer.
    var isShared: Bool

    var datagrams: Int { segmentSize == 0 ? 1 : (length + segmentSize - 1) / segmentSize }
}

/// An array the send queue holds without copying it, and how many queue entries send from it.
struct SharedBuffer {
    var bytes: [UInt8]
    /// The bytes of it queued.
    var length: Int
    /// Queue entries not yet sent from it.
    var entries: Int
    /// Whether its memory goes to ``UDPSocket/spareBuffers`` once sent.
    var recycle: Bool
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
        guard queue.count + messages(for: capacity, segmentSize: segmentSize) <= batchSize,
              queuedBytes + capacity <= sendBuffers.byteCapacity else { return false }

        let start = queuedBytes
        let written = try write(UnsafeMutableRawBufferPointer(start: sendBuffers.bytes + start, count: capacity))
        precondition((0...capacity).contains(written), "wrote \(written) bytes into \(capacity)")
        appendEntries(start..<start + written, to: destination, ecn: ecn, segmentSize: segmentSize, source: source, shared: false)
        queuedBytes += written
        return true
    }

    /// Queues `bytes[range]` without copying them: the queue holds the array (a reference, as
    /// any copy of an array is) until those datagrams are sent or dropped. The caller must not
    /// expect its own later changes to the array to be sent — they make it a copy of its own.
    ///
    /// A sender that builds its datagrams in one reused array (a QUIC connection's datagram
    /// train) passes it here with `recycle` and continues in ``takeSpareBuffer()``'s array, or
    /// a new one: the queue keeps the memory of sent arrays for that. At most
    /// ``maxSpareBuffers`` arrays to recycle are queued at once (the next is refused until a
    /// flush), so every one sent comes back, and a sender that flushes when refused goes round
    /// the same few arrays: sending neither copies nor allocates.
    ///
    /// The shared bytes count against ``sendQueueCapacity`` apart from the copied ones: so a
    /// sender that does not flush holds at most that many bytes of arrays here.
    ///
    /// - Parameters:
    ///   - bytes: the array holding the datagrams.
    ///   - range: the datagrams' bytes in `bytes` (all of them when `nil`).
    ///   - recycle: keep the array's memory for ``takeSpareBuffer()`` once it is sent.
    ///   - Other parameters: as ``enqueue(to:ecn:segmentSize:source:capacity:_:)``'s.
    /// - Returns: `false` when the queue has no room; ``flush()`` first.
    @discardableResult
    public func enqueue(
        sharing bytes: [UInt8], range: Range<Int>? = nil, to destination: SocketAddress, ecn: ECNCodepoint = .notECT,
        segmentSize: Int? = nil, source: SocketAddress? = nil, recycle: Bool = false
    ) -> Bool {
        let range = range ?? bytes.indices
        precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count, "range \(range) outside \(bytes.count) bytes")
        guard queue.count + messages(for: range.count, segmentSize: segmentSize) <= batchSize,
              sharedBytes + range.count <= sendBuffers.byteCapacity,
              !recycle || sharedBuffers.count(where: \.recycle) < Self.maxSpareBuffers else { return false }
        let entries = queue.count
        appendEntries(range, to: destination, ecn: ecn, segmentSize: segmentSize, source: source, shared: true)
        sharedBuffers.append(SharedBuffer(bytes: bytes, length: range.count, entries: queue.count - entries, recycle: recycle))
        sharedBytes += range.count
        return true
    }

    /// The most arrays to recycle the queue holds, and the most sent ones whose memory it keeps
    /// for ``takeSpareBuffer()``.
    public static let maxSpareBuffers = 4

    /// An empty array with the capacity of one that was queued with `recycle` and is sent, or
    /// `nil` when none is left; see ``enqueue(sharing:range:to:ecn:segmentSize:source:recycle:)``.
    public func takeSpareBuffer() -> [UInt8]? { spareBuffers.popLast() }

    /// Drops the memory kept for ``takeSpareBuffer()`` (an idle sender gives it back).
    public func removeSpareBuffers() { spareBuffers = [] }

    /// The queue entries `length` bytes take: one, or one per segment where GSO is missing.
    private func messages(for length: Int, segmentSize: Int?) -> Int {
        precondition(length >= 0, "negative length")
        guard let segmentSize else { return 1 }
        precondition(segmentSize > 0 && segmentSize <= Int(UInt16.max), "GSO segment size \(segmentSize) outside 1…65535")
        precondition(length <= segmentSize * Self.maxGSOSegments, "more than \(Self.maxGSOSegments) GSO segments")
        return !supportsGSO && length > segmentSize ? (length + segmentSize - 1) / segmentSize : 1
    }

    /// Appends the queue entries for the datagrams at `range` (of the send buffer, or of the
    /// shared array being queued): one, a GSO train, or one per segment without GSO.
    private func appendEntries(
        _ range: Range<Int>, to destination: SocketAddress, ecn: ECNCodepoint, segmentSize: Int?, source: SocketAddress?, shared: Bool
    ) {
        let destination = PackedAddress(destination)
        let source = source.map(PackedAddress.init)
        func append(_ offset: Int, _ length: Int, segmentSize: Int) {
            queue.append(QueuedDatagram(
                offset: offset, length: length, destination: destination, source: source, ecn: ecn,
                segmentSize: segmentSize, isShared: shared))
        }
        switch segmentSize {
        case let size? where range.count > size && !supportsGSO:
            for offset in stride(from: range.lowerBound, to: range.upperBound, by: size) {
                append(offset, min(size, range.upperBound - offset), segmentSize: 0)
            }
        case let size? where range.count > size:
            append(range.lowerBound, range.count, segmentSize: size)
        default:
            append(range.lowerBound, range.count, segmentSize: 0)
        }
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
        var fatal: Int32?
        let index = withSharedBuffersPinned {
            var shared = (buffer: 0, left: sharedBuffers.first?.entries ?? 0)
            for i in queue.indices {
                guard queue[i].isShared else {
                    prepare(message: i, base: sendBuffers.bytes)
                    continue
                }
                prepare(message: i, base: sharedBases[shared.buffer])
                shared.left -= 1
                if shared.left == 0, shared.buffer + 1 < sharedBuffers.count {
                    shared = (shared.buffer + 1, sharedBuffers[shared.buffer + 1].entries)
                }
            }
            return send(&result, fatal: &fatal)
        }
        removeFromQueue(index)
        if let fatal { throw QuiverError.udp("sendmmsg", errno: fatal) }
        result.remaining = queuedDatagramCount
        return result
    }

    /// Runs `body` with ``sharedBases`` holding the base address of each ``sharedBuffers``
    /// array, valid inside it.
    private func withSharedBuffersPinned<R>(_ body: () -> R) -> R {
        func pin(_ index: Int) -> R {
            guard index < sharedBuffers.count else { return body() }
            let bytes = sharedBuffers[index].bytes
            return bytes.withUnsafeBytes { raw in
                sharedBases.append(raw.baseAddress)
                return pin(index + 1)
            }
        }
        defer { sharedBases.removeAll(keepingCapacity: true) }
        return pin(0)
    }

    /// Sends the prepared queue with `sendmmsg` until it is sent or the socket would block;
    /// returns how many entries are done (sent or dropped). A fatal error stops it and is left
    /// in `fatal`, its entry not done.
    private func send(_ result: inout UDPSendResult, fatal: inout Int32?) -> Int {
        var index = 0
        var retried = -1
        while index < queue.count {
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
                return index
            case .fatal:
                fatal = code
                return index
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
        return index
    }

    /// Fills `sendmmsg` header `i` from queue entry `i`, whose bytes are at `base` + its offset.
    private func prepare(message i: Int, base: UnsafeRawPointer?) {
        let buffers = sendBuffers
        let message = queue[i]
        buffers.iovecs[i] = iovec(iov_base: base.map { UnsafeMutableRawPointer(mutating: $0 + message.offset) }, iov_len: message.length)
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

    /// Drops the first `count` queue entries (sent or failed): moves the rest of the send
    /// buffer's bytes to its front, and lets go of the shared arrays no entry sends from any more
    /// (keeping their memory for ``takeSpareBuffer()`` when they were queued to be recycled).
    private func removeFromQueue(_ count: Int) {
        guard count > 0 else { return }
        var sharedDone = queue[..<count].reduce(0) { $0 + ($1.isShared ? 1 : 0) }
        while sharedDone > 0 {
            let done = min(sharedDone, sharedBuffers[0].entries)
            sharedBuffers[0].entries -= done
            sharedDone -= done
            guard sharedBuffers[0].entries == 0 else { break }
            var buffer = sharedBuffers.removeFirst()
            sharedBytes -= buffer.length
            guard buffer.recycle, spareBuffers.count < Self.maxSpareBuffers else { continue }
            // Emptied where it is, the only reference unless the sender kept one: emptying a
            // second reference to it would allocate a new array instead.
            buffer.bytes.removeAll(keepingCapacity: true)
            spareBuffers.append(buffer.bytes)
        }
        guard count < queue.count else {
            queue.removeAll(keepingCapacity: true)
            queuedBytes = 0
            return
        }
        let shift = queue[count...].first(where: { !$0.isShared })?.offset ?? queuedBytes
        memmove(sendBuffers.bytes, sendBuffers.bytes + shift, queuedBytes - shift)
        queue.removeFirst(count)
        for i in queue.indices where !queue[i].isShared { queue[i].offset -= shift }
        queuedBytes -= shift
    }
}

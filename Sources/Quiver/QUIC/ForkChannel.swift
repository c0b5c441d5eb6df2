#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverQUIC

/// One end of a fork hand-off's channel (``Listener/fork(handingOff:)``): an `AF_UNIX`
/// `SOCK_SEQPACKET` socket pair between a QUIC listener (the parent) and the forked child that
/// took one of its connections over. Records keep their boundaries and order; both ends are
/// non-blocking, so neither process ever waits for the other (a full channel drops the record,
/// as a full UDP socket drops a datagram); the parent sees the child's end — its exit — as the
/// end of the channel, and the child sees the parent's the same way.
///
/// Two records, integers big-endian:
///
/// ```
/// parent → child: a datagram that reached the parent for the child's connection
///   0x01 | ECN (1) | 4 or 6 (1) | address (4 or 16) | port (2) | [scope id (4), IPv6 only] | datagram
/// child → parent: the connection IDs the child's connection has issued, all of them (the list
///   replaces the last one: lost or reordered records cannot leave a stale route behind)
///   0x02 | count (1, at most maxConnectionIDs) | count × (length (1, 1…20) | bytes)
/// ```
///
/// Records from the other process are parsed as hostile input: anything malformed is `nil`,
/// never a trap.
final class ForkChannel {
    /// This process's descriptor (−1 once closed).
    private(set) var descriptor: Int32

    /// The most connection IDs one record announces (a child's connection keeps four).
    static let maxConnectionIDs = 16
    /// The largest record: a 65 535-byte datagram behind the longest header.
    static let maxRecordSize = 65_535 + 24

    static let datagramType: UInt8 = 0x01
    static let connectionIDsType: UInt8 = 0x02

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close() }

    /// A new channel's two ends (non-blocking, close-on-exec).
    /// - Throws: `.io` when `socketpair` fails (descriptors exhausted).
    static func pair() throws(QuiverError) -> (parent: ForkChannel, child: ForkChannel) {
        var fds: [Int32] = [-1, -1]
        let type = Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        guard socketpair(AF_UNIX, type, 0, &fds) == 0 else {
            throw QuiverError(.io, "socketpair: \(String(cString: strerror(errno)))")
        }
        return (ForkChannel(descriptor: fds[0]), ForkChannel(descriptor: fds[1]))
    }

    /// Closes this process's descriptor (the other process's copy stays open). Twice is harmless.
    func close() {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    enum SendResult: Equatable {
        case sent
        /// The other process has not read what is queued (or the record is larger than the
        /// channel carries): the record was dropped.
        case full
        /// The other end is closed (or this one is).
        case closed
    }

    /// Sends a datagram that arrived from `source` with `ecn` (parent → child), without copying it.
    func sendDatagram(_ datagram: [UInt8], from source: SocketAddress, ecn: ECNCodepoint) -> SendResult {
        var header: [UInt8] = [Self.datagramType, ecn.rawValue]
        switch source {
        case .v4(let a, let port):
            header += [4, a.0, a.1, a.2, a.3, UInt8(port >> 8), UInt8(port & 0xff)]
        case .v6(let a, let port, let scope):
            guard a.count == 16 else { return .full }  // no such address is made: dropped
            header.append(6)
            header += a
            header += [UInt8(port >> 8), UInt8(port & 0xff),
                       UInt8(scope >> 24), UInt8((scope >> 16) & 0xff), UInt8((scope >> 8) & 0xff), UInt8(scope & 0xff)]
        }
        return header.withUnsafeBytes { head in
            datagram.withUnsafeBytes { body in
                var vectors = [iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                               iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count)]
                return vectors.withUnsafeMutableBufferPointer { vectors in
                    var message = msghdr()
                    message.msg_iov = vectors.baseAddress
                    message.msg_iovlen = vectors.count
                    return result(of: sendmsg(descriptor, &message, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)))
                }
            }
        }
    }

    /// Announces the connection's connection IDs (child → parent): at most
    /// ``maxConnectionIDs``, each 1 to 20 bytes.
    func sendConnectionIDs(_ ids: [ConnectionID]) -> SendResult {
        let ids = ids.prefix(Self.maxConnectionIDs).filter { $0.count > 0 }
        var record: [UInt8] = [Self.connectionIDsType, UInt8(ids.count)]
        for id in ids {
            record.append(UInt8(id.count))
            id.withUnsafeBytes { record.append(contentsOf: $0) }
        }
        return sendRecord(record)
    }

    /// Sends `record` as it is (for tests: what a misbehaving process might send).
    func sendRecord(_ record: [UInt8]) -> SendResult {
        record.withUnsafeBytes { result(of: send(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))) }
    }

    private func result(of rc: Int) -> SendResult {
        if rc >= 0 { return .sent }
        switch errno {
        // EMSGSIZE: larger than the channel's buffer carries; dropped, as an oversized datagram.
        case EAGAIN, EWOULDBLOCK, ENOBUFS, EINTR, EMSGSIZE: return .full
        default: return .closed
        }
    }

    enum ReceiveResult: Equatable {
        /// A record of this many bytes is at the start of the buffer (`truncated`: it was
        /// longer than the buffer and is not whole).
        case record(count: Int, truncated: Bool)
        /// Nothing waits.
        case empty
        /// The other end is closed (an empty record counts as the end, too: neither side
        /// sends one), or the channel failed.
        case closed
    }

    /// Receives the next record into `buffer` (whose count is the capacity used) without waiting.
    func receive(into buffer: inout [UInt8]) -> ReceiveResult {
        guard descriptor >= 0 else { return .closed }
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_TRUNC)) }
        if count > 0 { return .record(count: min(count, buffer.count), truncated: count > buffer.count) }
        if count == 0 { return .closed }
        switch errno {
        case EAGAIN, EWOULDBLOCK, EINTR: return .empty
        default: return .closed
        }
    }

    // MARK: - Records

    /// A record read from the other process.
    enum Record: Equatable {
        /// A datagram from `source`: its bytes are `payload` of the buffer it was read into.
        case datagram(source: SocketAddress, ecn: ECNCodepoint, payload: Range<Int>)
        case connectionIDs([ConnectionID])
    }

    /// Parses the first `count` bytes of `buffer`; `nil` for anything malformed.
    static func parse(_ buffer: [UInt8], count: Int) -> Record? {
        guard count >= 1, count <= buffer.count else { return nil }
        switch buffer[0] {
        case datagramType:
            guard count >= 3, let ecn = ECNCodepoint(rawValue: buffer[1]) else { return nil }
            let source: SocketAddress
            let start: Int
            switch buffer[2] {
            case 4:
                guard count >= 9 else { return nil }
                source = .v4(address: (buffer[3], buffer[4], buffer[5], buffer[6]), port: UInt16(buffer[7]) << 8 | UInt16(buffer[8]))
                start = 9
            case 6:
                guard count >= 25 else { return nil }
                let port = UInt16(buffer[19]) << 8 | UInt16(buffer[20])
                let scope = buffer[21..<25].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                source = .v6(address: Array(buffer[3..<19]), port: port, scopeID: scope)
                start = 25
            default:
                return nil
            }
            guard count > start else { return nil }  // no datagram is empty
            return .datagram(source: source, ecn: ecn, payload: start..<count)
        case connectionIDsType:
            guard count >= 2, Int(buffer[1]) <= maxConnectionIDs else { return nil }
            var ids: [ConnectionID] = []
            var offset = 2
            for _ in 0..<Int(buffer[1]) {
                guard offset < count else { return nil }
                let length = Int(buffer[offset])
                offset += 1
                guard length > 0, length <= ConnectionID.maxLength, offset + length <= count,
                      let id = ConnectionID(buffer[offset..<offset + length]) else { return nil }
                ids.append(id)
                offset += length
            }
            guard offset == count else { return nil }  // trailing bytes: not a record of ours
            return .connectionIDs(ids)
        default:
            return nil
        }
    }
}

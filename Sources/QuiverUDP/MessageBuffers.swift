#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP

/// The memory of one direction's `sendmmsg`/`recvmmsg` batch, allocated once per socket:
/// message headers, iovecs, addresses, control buffers and the datagram bytes.
///
/// ```
/// headers[i].msg_hdr ─┬─ msg_name    → names[i]       (a sockaddr_storage)
///                     ├─ msg_iov     → iovecs[i]      → bytes (receive: slot i; send: a range)
///                     └─ msg_control → control(i)     (controlStride bytes, cmsghdr-aligned)
/// ```
final class MessageBuffers {
    /// Bytes of control-message space per message.
    let controlStride: Int
    let headers: UnsafeMutablePointer<quiver_mmsghdr>
    let iovecs: UnsafeMutablePointer<iovec>
    let names: UnsafeMutablePointer<sockaddr_storage>
    private let controls: UnsafeMutableRawPointer
    /// The datagram bytes (not zeroed: the kernel writes what is read, the caller what is sent).
    let bytes: UnsafeMutableRawPointer
    /// Size of ``bytes``.
    let byteCapacity: Int

    init(count: Int, byteCapacity: Int, controlStride: Int) {
        self.controlStride = controlStride
        self.byteCapacity = byteCapacity
        headers = .allocate(capacity: count)
        headers.initialize(repeating: quiver_mmsghdr(), count: count)
        iovecs = .allocate(capacity: count)
        iovecs.initialize(repeating: iovec(), count: count)
        names = .allocate(capacity: count)
        names.initialize(repeating: sockaddr_storage(), count: count)
        controls = .allocate(byteCount: count * controlStride, alignment: MemoryLayout<cmsghdr>.alignment)
        controls.initializeMemory(as: UInt8.self, repeating: 0, count: count * controlStride)
        bytes = .allocate(byteCount: max(byteCapacity, 1), alignment: 16)
        for i in 0..<count {
            headers[i].msg_hdr.msg_name = UnsafeMutableRawPointer(names + i)
            headers[i].msg_hdr.msg_iov = iovecs + i
            headers[i].msg_hdr.msg_iovlen = 1
        }
    }

    deinit {
        headers.deallocate()
        iovecs.deallocate()
        names.deallocate()
        controls.deallocate()
        bytes.deallocate()
    }

    /// The control buffer of message `i`.
    func control(_ i: Int) -> UnsafeMutableRawPointer { controls + i * controlStride }
}

/// Writing and reading control messages (the `CMSG_*` macros, through the C shims).
enum ControlMessage {
    /// `CMSG_LEN(0)`: where the data of a control message starts.
    static let headerLength = quiver_cmsg_len(0)

    /// `CMSG_SPACE(length)`.
    static func space(_ length: Int) -> Int { quiver_cmsg_space(length) }

    /// Appends a control message carrying `value` at `offset` in `buffer` and returns the offset
    /// after it. The caller sized the buffer for every message it writes.
    static func append<T>(_ value: T, level: Int32, type: Int32, to buffer: UnsafeMutableRawPointer, at offset: Int) -> Int {
        var header = cmsghdr()
        header.cmsg_len = quiver_cmsg_len(MemoryLayout<T>.size)
        header.cmsg_level = level
        header.cmsg_type = type
        (buffer + offset).storeBytes(of: header, as: cmsghdr.self)
        (buffer + offset + headerLength).storeBytes(of: value, as: T.self)
        return offset + space(MemoryLayout<T>.size)
    }

    /// Calls `body` with the level, type and data of each control message of `message`.
    static func forEach(in message: UnsafeMutablePointer<msghdr>, _ body: (Int32, Int32, UnsafeRawBufferPointer) -> Void) {
        var header = quiver_cmsg_firsthdr(message)
        while let h = header {
            let dataLength = Int(h.pointee.cmsg_len) - headerLength
            if dataLength >= 0, let data = quiver_cmsg_data(h) {
                body(h.pointee.cmsg_level, h.pointee.cmsg_type, UnsafeRawBufferPointer(start: data, count: dataLength))
            }
            header = quiver_cmsg_nxthdr(message, h)
        }
    }
}

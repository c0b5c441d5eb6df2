#if canImport(Glibc)
import Glibc
#endif
import CQuiverUDP
public import QuiverCore

/// Passing descriptors between processes over a unix stream socket (`SCM_RIGHTS`): the same
/// open sockets, not copies, for a server that hands its listening sockets — a UDP
/// `generationGroup`, listening TCP sockets — to the process replacing it.
public enum DescriptorPassing {
    /// The most descriptors one message carries.
    public static let maxDescriptors = 64

    /// Sends `bytes` (at least one) with `descriptors` attached on the unix stream socket
    /// `socket`. The descriptors stay open here too.
    ///
    /// - Throws: ``QuiverError`` `.configuration` for empty `bytes` or more than
    ///   ``maxDescriptors`` descriptors; `.io` when `sendmsg` fails or sends less than `bytes`.
    public static func send(_ bytes: [UInt8], descriptors: [Int32] = [], on socket: Int32) throws(QuiverError) {
        guard !bytes.isEmpty, descriptors.count <= maxDescriptors else {
            throw QuiverError(.configuration, "a message of 1 byte or more with at most \(maxDescriptors) descriptors, not \(bytes.count) bytes and \(descriptors.count)")
        }
        let sent = bytes.withUnsafeBytes { raw in
            descriptors.withUnsafeBufferPointer { quiver_send_descriptors(socket, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == bytes.count else { throw QuiverError.udp("sendmsg on a unix socket", errno: sent < 0 ? errno : EMSGSIZE) }
    }

    /// Receives one message of at most `capacity` bytes on the unix stream socket `socket`,
    /// with the descriptors passed along (close-on-exec; at most ``maxDescriptors``). Empty
    /// bytes: the peer closed its end.
    ///
    /// - Throws: ``QuiverError`` `.io` when `recvmsg` fails.
    public static func receive(on socket: Int32, capacity: Int = 4096) throws(QuiverError) -> (bytes: [UInt8], descriptors: [Int32]) {
        var bytes = [UInt8](repeating: 0, count: capacity)
        var descriptors = [Int32](repeating: -1, count: maxDescriptors)
        var received: Int32 = 0
        let length = bytes.withUnsafeMutableBytes { raw in
            descriptors.withUnsafeMutableBufferPointer {
                quiver_receive_descriptors(socket, raw.baseAddress, raw.count, $0.baseAddress, Int32(maxDescriptors), &received)
            }
        }
        guard length >= 0 else { throw QuiverError.udp("recvmsg on a unix socket", errno: errno) }
        return (Array(bytes.prefix(length)), Array(descriptors.prefix(Int(received))))
    }

    /// The user id of the process at the other end of the unix socket `socket` (`SO_PEERCRED`:
    /// as it was when that process connected, or listened), so that a server hands its
    /// sockets only to a process of its own user. `nil` when the kernel does not say (not a
    /// unix socket).
    public static func peerUserID(of socket: Int32) -> UInt32? {
        let uid = quiver_peer_user_id(socket)
        return uid < 0 ? nil : UInt32(truncatingIfNeeded: uid)
    }
}

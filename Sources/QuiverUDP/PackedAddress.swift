#if canImport(Glibc)
import Glibc
#endif
import QuiverCore

/// A socket address in the kernel's own form, kept inline (no heap storage), so the batch paths
/// can carry addresses without allocating; ``socketAddress`` builds the public value on demand.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4
/// peers) are stored as IPv4; ``write(to:socketFamily:)`` maps them back for an IPv6 socket.
enum PackedAddress: Sendable {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)

    /// Packs a public address. An IPv6 address must have 16 bytes (as every `SocketAddress`
    /// initialiser makes it); anything else is a programming error.
    init(_ address: SocketAddress) {
        switch address {
        case .v4(let a, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { out in
                out[0] = a.0; out[1] = a.1; out[2] = a.2; out[3] = a.3
            }
            self = .v4(sin)
        case .v6(let a, let port, let scopeID):
            precondition(a.count == 16, "an IPv6 SocketAddress needs 16 address bytes, not \(a.count)")
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { out in
                a.withUnsafeBytes { out.copyMemory(from: $0) }
            }
            self = Self.unmapped(sin6)
        }
    }

    /// Reads a `sockaddr_in` or `sockaddr_in6` the kernel wrote; `nil` for another family or a
    /// short length.
    init?(sockaddr pointer: UnsafeRawPointer, length: Int) {
        guard length >= MemoryLayout<sa_family_t>.size else { return nil }
        switch Int32(pointer.loadUnaligned(as: sa_family_t.self)) {
        case AF_INET where length >= MemoryLayout<sockaddr_in>.size:
            self = .v4(pointer.loadUnaligned(as: sockaddr_in.self))
        case AF_INET6 where length >= MemoryLayout<sockaddr_in6>.size:
            self = Self.unmapped(pointer.loadUnaligned(as: sockaddr_in6.self))
        default:
            return nil
        }
    }

    /// An address from packet information (`in_pktinfo`/`in6_pktinfo`), which carries no port.
    init(v4 address: in_addr, port: UInt16) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr = address
        self = .v4(sin)
    }

    /// An IPv6 address from packet information; the interface becomes the scope id of a
    /// link-local address only, so `::1` compares equal to the bound `::1`.
    init(v6 address: in6_addr, port: UInt16, interfaceIndex: UInt32) {
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_port = port.bigEndian
        sin6.sin6_addr = address
        let linkLocal = withUnsafeBytes(of: address) { $0[0] == 0xfe && $0[1] & 0xc0 == 0x80 }
        sin6.sin6_scope_id = linkLocal ? interfaceIndex : 0
        self = Self.unmapped(sin6)
    }

    /// `.v4` for an IPv4-mapped IPv6 address, `.v6` otherwise.
    private static func unmapped(_ sin6: sockaddr_in6) -> PackedAddress {
        let mapped = withUnsafeBytes(of: sin6.sin6_addr) { bytes in
            bytes[10] == 0xff && bytes[11] == 0xff && bytes[0..<10].allSatisfy { $0 == 0 }
        }
        guard mapped else { return .v6(sin6) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = sin6.sin6_port
        withUnsafeBytes(of: sin6.sin6_addr) { bytes in
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[12..<16])) }
        }
        return .v4(sin)
    }

    /// Whether the address is IPv4 (the IPv4 control messages apply to it, also on a
    /// dual-stack socket).
    var isIPv4: Bool {
        if case .v4 = self { return true }
        return false
    }

    /// The public value (allocates the byte array of an IPv6 address).
    var socketAddress: SocketAddress {
        switch self {
        case .v4(let sin):
            let a = withUnsafeBytes(of: sin.sin_addr) { ($0[0], $0[1], $0[2], $0[3]) }
            return .v4(address: a, port: UInt16(bigEndian: sin.sin_port))
        case .v6(let sin6):
            return .v6(
                address: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) },
                port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        }
    }

    /// Writes the address for a socket of `socketFamily` into `pointer` (room for a
    /// `sockaddr_in6`) and returns its length: an IPv4 address becomes IPv4-mapped on an
    /// IPv6 socket. An IPv6 address on an IPv4 socket is written as is, and the kernel refuses
    /// that datagram (`EAFNOSUPPORT`).
    func write(to pointer: UnsafeMutableRawPointer, socketFamily: Int32) -> socklen_t {
        switch self {
        case .v4(let sin) where socketFamily == AF_INET6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = sin.sin_port
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { out in
                out.initializeMemory(as: UInt8.self, repeating: 0)
                out[10] = 0xff
                out[11] = 0xff
                withUnsafeBytes(of: sin.sin_addr) { UnsafeMutableRawBufferPointer(rebasing: out[12..<16]).copyMemory(from: $0) }
            }
            pointer.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        case .v4(let sin):
            pointer.storeBytes(of: sin, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6(let sin6):
            pointer.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }
}

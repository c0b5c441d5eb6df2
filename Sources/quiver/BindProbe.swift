#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverCore

/// Why binding a listening socket fails, found by binding a socket like the listener's: the
/// listener's error is a message, and the commands need the cause (`errno`) to say what to do.
enum BindProbe {
    /// The `errno` of binding a `transport` socket to `address` (dual-stack for `::`), or nil
    /// when it binds now.
    static func failure(_ transport: Transport, _ address: SocketAddress) -> Int32? {
        let family: Int32
        if case .v4 = address { family = AF_INET } else { family = AF_INET6 }
        let type = transport == .tcp ? Int32(SOCK_STREAM.rawValue) : Int32(SOCK_DGRAM.rawValue)
        let fd = socket(family, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        var one: Int32 = 1
        var zero: Int32 = 0
        if transport == .tcp { setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) }
        if family == AF_INET6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, socklen_t(MemoryLayout<Int32>.size)) }
        var (storage, length) = address.storage
        let bound = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        return bound == 0 ? nil : errno
    }

    /// Whether `failure` means the machine has no IPv6 (the only case where `::` falls back to `0.0.0.0`).
    static func isIPv6Unavailable(_ failure: Int32) -> Bool { failure == EAFNOSUPPORT || failure == EADDRNOTAVAIL }

    /// A one-line explanation of a bind failure.
    static func message(_ failure: Int32, transport: Transport, host: String, port: UInt16) -> String {
        let proto = transport == .tcp ? "tcp" : "udp"
        switch failure {
        case EADDRINUSE: return "port \(port) is already in use (\(proto)); stop the other server or choose another --port"
        case EACCES, EPERM: return "no permission to listen on \(proto) port \(port) (ports below 1024 need privileges)"
        case EADDRNOTAVAIL: return "address \(host) is not an address of this machine"
        case EAFNOSUPPORT: return "address \(host): this machine has no \(host.contains(":") ? "IPv6" : "IPv4")"
        default: return "cannot listen on \(proto) \(host) port \(port): \(String(cString: strerror(failure)))"
        }
    }
}

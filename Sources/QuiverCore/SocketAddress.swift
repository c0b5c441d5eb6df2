#if canImport(Glibc)
public import Glibc
#elseif canImport(Darwin)
public import Darwin
#endif

/// An IPv4 or IPv6 address and port, as a plain value.
///
/// Parses and prints the usual forms: `127.0.0.1:4433`, `[::1]:4433`, `[fe80::1%2]:443`
/// (scope id numeric). Converts to and from `sockaddr_storage` for the socket layer.
public enum SocketAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address (4 bytes, network order) and port.
    case v4(address: (UInt8, UInt8, UInt8, UInt8), port: UInt16)
    /// An IPv6 address (16 bytes, network order), port and scope id.
    case v6(address: [UInt8], port: UInt16, scopeID: UInt32)

    /// The port number.
    public var port: UInt16 {
        switch self {
        case .v4(_, let port), .v6(_, let port, _): return port
        }
    }

    /// The address bytes in network order (4 or 16 bytes).
    public var addressBytes: [UInt8] {
        switch self {
        case .v4(let a, _): return [a.0, a.1, a.2, a.3]
        case .v6(let a, _, _): return a
        }
    }

    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        switch self {
        case .v4(let a, _): return .v4(address: a, port: port)
        case .v6(let a, _, let s): return .v6(address: a, port: port, scopeID: s)
        }
    }

    public static func == (l: SocketAddress, r: SocketAddress) -> Bool {
        switch (l, r) {
        case (.v4(let a, let p), .v4(let b, let q)): return a == b && p == q
        case (.v6(let a, let p, let s), .v6(let b, let q, let t)): return a == b && p == q && s == t
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(addressBytes)
        hasher.combine(port)
        if case .v6(_, _, let s) = self { hasher.combine(s) }
    }

    /// Parses `host:port` where host is a numeric IPv4 address, or `[v6]:port`.
    ///
    /// - Returns: `nil` when the text is not a numeric address with a port.
    public init?(_ text: String) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()) else { return nil }
            self.init(host: host, port: port)
        } else {
            guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
                return nil
            }
            self.init(host: String(text[..<colon]), port: port)
        }
    }

    /// Creates an address from a numeric host (`127.0.0.1`, `::1`, `fe80::1%3`) and a port.
    public init?(host: String, port: UInt16) {
        var scope: UInt32 = 0
        var host = host
        if let percent = host.firstIndex(of: "%") {
            guard let s = UInt32(host[host.index(after: percent)...]) else { return nil }
            scope = s
            host = String(host[..<percent])
        }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            let b = withUnsafeBytes(of: v4) { Array($0) }
            self = .v4(address: (b[0], b[1], b[2], b[3]), port: port)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            self = .v6(address: withUnsafeBytes(of: v6) { Array($0) }, port: port, scopeID: scope)
            return
        }
        return nil
    }

    /// Creates an address from a `sockaddr` the kernel filled in; `nil` for other families.
    public init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            let b = withUnsafeBytes(of: sin.sin_addr) { Array($0) }
            self = .v4(address: (b[0], b[1], b[2], b[3]), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            self = .v6(
                address: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) },
                port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        default:
            return nil
        }
    }

    /// The address as a `sockaddr_storage` and its meaningful length.
    public var storage: (sockaddr_storage, socklen_t) {
        var storage = sockaddr_storage()
        switch self {
        case .v4(let a, let port):
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: [a.0, a.1, a.2, a.3]) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin, as: sockaddr_in.self) }
            return (storage, socklen_t(MemoryLayout<sockaddr_in>.size))
        case .v6(let a, let port, let scope):
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scope
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: a) }
            withUnsafeMutableBytes(of: &storage) { $0.storeBytes(of: sin6, as: sockaddr_in6.self) }
            return (storage, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
    }

    /// The numeric host part (`127.0.0.1`, `::1`).
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let family = { if case .v4 = self { return AF_INET } else { return AF_INET6 } }()
        let bytes = addressBytes
        _ = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if case .v6(_, _, let scope) = self, scope != 0 { return "\(text)%\(scope)" }
        return text
    }

    public var description: String {
        switch self {
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
public import QuiverCore

/// Conversions between NIO's socket addresses and Quiver's.
extension QuiverCore.SocketAddress {
    /// The Quiver form of a NIO IP address; `nil` for a Unix-domain address. An IPv4-mapped
    /// IPv6 address (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) becomes
    /// the IPv4 address, as Quiver's own UDP sockets report it.
    public init?(_ address: NIOCore.SocketAddress) {
        switch address {
        case .v4(let v4):
            let sin = v4.address
            let bytes = withUnsafeBytes(of: sin.sin_addr) { Array($0) }
            self = .v4(address: (bytes[0], bytes[1], bytes[2], bytes[3]), port: UInt16(bigEndian: sin.sin_port))
        case .v6(let v6):
            let sin6 = v6.address
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            let port = UInt16(bigEndian: sin6.sin6_port)
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
                self = .v4(address: (bytes[12], bytes[13], bytes[14], bytes[15]), port: port)
            } else {
                self = .v6(address: bytes, port: port, scopeID: sin6.sin6_scope_id)
            }
        case .unixDomainSocket:
            return nil
        }
    }

    /// The NIO form of this address. With `mappedToIPv6`, an IPv4 address becomes
    /// `::ffff:a.b.c.d`, the form an IPv6 (dual-stack) socket sends to.
    public func nioAddress(mappedToIPv6: Bool = false) -> NIOCore.SocketAddress {
        switch self {
        case .v4(let a, let port) where mappedToIPv6:
            return QuiverCore.SocketAddress.v6(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a.0, a.1, a.2, a.3],
                                               port: port, scopeID: 0).nioAddress()
        case .v4:
            var (storage, _) = self.storage
            let sin = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return NIOCore.SocketAddress(sin)
        case .v6:
            var (storage, _) = self.storage
            let sin6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            return NIOCore.SocketAddress(sin6)
        }
    }
}

/// Conversions between NIO's ECN states and Quiver's codepoints (the ECN field of the IP
/// header, RFC 3168 §5).
extension ECNCodepoint {
    /// The Quiver form of a NIO ECN state; `.notECT` when a datagram came without metadata
    /// (the channel does not report ECN: `ChannelOptions.explicitCongestionNotification`).
    public init(_ state: NIOExplicitCongestionNotificationState?) {
        switch state {
        case .transportCapableFlag0?: self = .ect0
        case .transportCapableFlag1?: self = .ect1
        case .congestionExperienced?: self = .ce
        case .transportNotCapable?, nil: self = .notECT
        }
    }

    /// The NIO form of this codepoint.
    public var nioState: NIOExplicitCongestionNotificationState {
        switch self {
        case .notECT: .transportNotCapable
        case .ect0: .transportCapableFlag0
        case .ect1: .transportCapableFlag1
        case .ce: .congestionExperienced
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
public import QuiverCore

/// A non-fatal error for one datagram or one peer: the socket keeps working.
///
/// These are what the kernel reports for a single destination — an ICMP "port unreachable"
/// (``Code-swift.struct/connectionRefused``), an unreachable host or network, a datagram larger
/// than the path allows — or for a single send (no buffer space, a firewall refusal). A listener
/// drops or reroutes the affected datagram and carries on. Errors that mean the socket itself is
/// unusable (`EBADF`, `ENOTSOCK`, …) are thrown as ``QuiverError`` instead.
public struct UDPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure. New codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Backing: Hashable, Sendable {
            case connectionRefused, hostUnreachable, networkUnreachable, messageTooLarge, noBufferSpace
            case notPermitted, other
        }
        let backing: Backing
        /// Nothing listens on the peer's port (`ECONNREFUSED`, ICMP port unreachable).
        public static let connectionRefused = Code(backing: .connectionRefused)
        /// The peer's host cannot be reached (`EHOSTUNREACH`, `EHOSTDOWN`).
        public static let hostUnreachable = Code(backing: .hostUnreachable)
        /// No route to the peer's network (`ENETUNREACH`, `ENETDOWN`).
        public static let networkUnreachable = Code(backing: .networkUnreachable)
        /// The datagram is larger than the path or interface allows (`EMSGSIZE`); a report from
        /// the error queue carries the MTU when the kernel knows it.
        public static let messageTooLarge = Code(backing: .messageTooLarge)
        /// The kernel had no buffer space for the datagram (`ENOBUFS`, `ENOMEM`); it was dropped.
        public static let noBufferSpace = Code(backing: .noBufferSpace)
        /// A firewall or the socket's permissions refused the datagram (`EPERM`, `EACCES`).
        public static let notPermitted = Code(backing: .notPermitted)
        /// Another per-datagram error; ``UDPError/errno`` says which.
        public static let other = Code(backing: .other)

        public var description: String { "\(backing)" }
    }

    /// The kind of failure.
    public let code: Code
    /// The `errno` value the kernel reported.
    public let errno: Int32

    /// Classifies an `errno` value.
    public init(errno: Int32) {
        self.errno = errno
        switch errno {
        case ECONNREFUSED: code = .connectionRefused
        case EHOSTUNREACH, EHOSTDOWN: code = .hostUnreachable
        case ENETUNREACH, ENETDOWN: code = .networkUnreachable
        case EMSGSIZE: code = .messageTooLarge
        case ENOBUFS, ENOMEM: code = .noBufferSpace
        case EPERM, EACCES: code = .notPermitted
        default: code = .other
        }
    }

    public var description: String { "UDPError.\(code): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// A datagram (or GSO train) that ``UDPSocket/flush()`` dropped because the kernel refused it.
public struct UDPSendFailure: Hashable, Sendable, CustomStringConvertible {
    /// Where it was going.
    public let destination: SocketAddress
    /// How many datagrams were dropped (the segments of a GSO train, else 1).
    public let datagrams: Int
    /// Why.
    public let error: UDPError

    public var description: String { "\(datagrams) datagram(s) to \(destination): \(error)" }
}

/// An error the kernel reported after a datagram left: an ICMP or ICMPv6 error from the
/// network, or a local error found after the send returned (read from the socket's error queue,
/// `IP_RECVERR`/`IPV6_RECVERR`).
///
/// It names the peer the failed datagram was sent to, so a listener can act on that peer's
/// connection alone. ICMP is unauthenticated: treat it as a hint (RFC 9000 §14.2.1, §21.1).
public struct UDPPeerError: Hashable, Sendable, CustomStringConvertible {
    /// The destination of the datagram that failed.
    public let peer: SocketAddress
    /// What failed.
    public let error: UDPError
    /// The path MTU the report carries (ICMP "fragmentation needed", ICMPv6 "packet too big"),
    /// for ``UDPError/Code-swift.struct/messageTooLarge``; otherwise `nil`.
    public let mtu: Int?

    public var description: String {
        "\(peer): \(error)" + (mtu.map { ", MTU \($0)" } ?? "")
    }
}

/// What one `errno` means for a socket call.
enum ErrnoOutcome {
    /// `EINTR`: call again.
    case interrupted
    /// `EAGAIN`/`EWOULDBLOCK`: nothing more now.
    case wouldBlock
    /// The socket is unusable or was misused; throw.
    case fatal
    /// Concerns one datagram or one peer; the socket keeps working.
    case datagram(UDPError)

    /// Classifies `errno` after a failed `sendmmsg`/`recvmmsg`.
    init(errno: Int32) {
        switch errno {
        case EINTR: self = .interrupted
        case EAGAIN, EWOULDBLOCK: self = .wouldBlock
        case EBADF, ENOTSOCK, EFAULT, EOPNOTSUPP, ENOTCONN, EDESTADDRREQ: self = .fatal
        default: self = .datagram(UDPError(errno: errno))
        }
    }
}

extension QuiverError {
    /// An `.io` error for the failed system call `what`, naming `errno`.
    static func udp(_ what: String, errno code: Int32, file: String = #fileID, line: UInt = #line) -> QuiverError {
        QuiverError(.io, "UDP \(what) failed: \(String(cString: strerror(code))) (errno \(code))", file: file, line: line)
    }
}

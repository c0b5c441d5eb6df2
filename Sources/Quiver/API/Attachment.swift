public import QuiverCore
public import QuiverUDP
public import QuiverTLSSocket

/// A network attachment: where a listener (or client connection) gets and sends its bytes —
/// OpenSSL's BIO. Ownership passes to the listener it is given to.
///
/// | Attachment | Transport | Pollable | Addressed |
/// |---|---|---|---|
/// | ``udp(_:)`` | QUIC, DTLS | yes | yes |
/// | ``tcpListener(_:)`` | TLS | yes | yes (one peer per accepted socket) |
/// | ``datagrams(_:localAddress:)`` | QUIC, DTLS | no | as the pair |
/// | ``stream(_:peer:)`` | TLS | no | no (one connection) |
public struct Attachment: @unchecked Sendable, CustomStringConvertible {
    // @unchecked: a UDPSocket is handed over to the listener, which alone uses it afterwards.
    enum Kind {
        case udp(UDPSocket)
        case tcpListener(TCPSocket)
        case datagrams(DatagramPair.End, localAddress: SocketAddress?)
        case stream(StreamPair.End, peer: SocketAddress?)
    }

    let kind: Kind

    /// A UDP socket (pollable, addressed; batched I/O, GSO/GRO and ECN where the kernel has them).
    public static func udp(_ socket: UDPSocket) -> Attachment { Attachment(kind: .udp(socket)) }

    /// A listening TCP socket: every accepted TCP connection becomes a TLS connection. Made by
    /// `TCPSocket.listen(on:backlog:reusePort:)`, or taken over from another process with
    /// `TCPSocket(adopting:)` (a restart without dropped connections: see
    /// ``Listener/closeListeningSockets()`` for the process handing it over).
    public static func tcpListener(_ socket: TCPSocket) -> Attachment { Attachment(kind: .tcpListener(socket)) }

    /// One end of an in-memory datagram pair (not pollable). On an addressed pair the
    /// listener's datagrams carry `localAddress` as their source.
    public static func datagrams(_ end: DatagramPair.End, localAddress: SocketAddress? = nil) -> Attachment {
        Attachment(kind: .datagrams(end, localAddress: localAddress))
    }

    /// One end of an in-memory byte stream carrying one TLS connection (not pollable);
    /// `peer` is reported as the connection's peer address.
    public static func stream(_ end: StreamPair.End, peer: SocketAddress? = nil) -> Attachment {
        Attachment(kind: .stream(end, peer: peer))
    }

    /// Whether the attachment has a descriptor the driver can poll.
    public var isPollable: Bool {
        switch kind {
        case .udp, .tcpListener: true
        case .datagrams, .stream: false
        }
    }

    /// Whether each datagram carries its peer's address.
    public var isAddressed: Bool {
        switch kind {
        case .udp, .tcpListener: true
        case .datagrams(let end, _): end.isAddressed
        case .stream: false
        }
    }

    /// Whether the attachment carries datagrams (QUIC, DTLS) rather than a byte stream (TLS).
    public var carriesDatagrams: Bool {
        switch kind {
        case .udp, .datagrams: true
        case .tcpListener, .stream: false
        }
    }

    /// The local address, when there is one.
    public var localAddress: SocketAddress? {
        switch kind {
        case .udp(let socket): socket.localAddress
        case .tcpListener(let socket): socket.localAddress
        case .datagrams(_, let address): address
        case .stream: nil
        }
    }

    public var description: String {
        switch kind {
        case .udp(let socket): "UDP socket \(socket.localAddress)"
        case .tcpListener(let socket): "TCP listener \(socket.localAddress.map { "\($0)" } ?? "?")"
        case .datagrams(let end, _): "\(end.isAddressed ? "addressed" : "unaddressed") datagram pair"
        case .stream: "stream pair"
        }
    }

    /// The address an unaddressed attachment's peer is known by: `fd71:7569:7665:7200::<index>`
    /// port 0 (a unique-local address no real peer uses), so the QUIC engine — which needs a
    /// peer address for address validation and path checks — sees one stable peer per
    /// attachment. Retry tokens are then bound to the attachment rather than a network address.
    static func syntheticAddress(_ index: Int) -> SocketAddress {
        var bytes: [UInt8] = [0xfd, 0x71, 0x75, 0x69, 0x76, 0x65, 0x72, 0, 0, 0, 0, 0]
        let value = UInt32(truncatingIfNeeded: index)
        bytes += [UInt8(value >> 24), UInt8((value >> 16) & 0xff), UInt8((value >> 8) & 0xff), UInt8(value & 0xff)]
        return .v6(address: bytes, port: 0, scopeID: 0)
    }

    /// The attachment index of a synthetic address, or `nil` for a real address.
    static func syntheticIndex(_ address: SocketAddress) -> Int? {
        guard case .v6(let bytes, 0, 0) = address, bytes.count == 16,
              bytes[0..<12].elementsEqual([0xfd, 0x71, 0x75, 0x69, 0x76, 0x65, 0x72, 0, 0, 0, 0, 0]) else { return nil }
        return Int(bytes[12]) << 24 | Int(bytes[13]) << 16 | Int(bytes[14]) << 8 | Int(bytes[15])
    }
}

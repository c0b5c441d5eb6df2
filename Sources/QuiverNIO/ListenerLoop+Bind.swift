#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import NIOCore
import NIOPosix
import Quiver

extension ListenerLoop {
    /// Binds a NIO channel on the loop's event loop that feeds the listener, chosen by its
    /// transport — so that serving TLS, QUIC or DTLS from NIO is the same call:
    ///
    /// - QUIC and DTLS: a UDP datagram channel (receive buffer 4 MiB, packet info and ECN
    ///   reports on, reads of up to 64 KiB) with a ``DatagramBridge``.
    /// - TLS: a TCP server channel whose accepted channels, on the same event loop, each get a
    ///   ``StreamBridge`` (no Nagle delay).
    ///
    /// - Parameters:
    ///   - address: where to bind.
    ///   - reusePort: sets SO_REUSEPORT, so that channels of several loops share the port and
    ///     the kernel spreads peers over them.
    ///   - addressed: `false` makes the pairs unaddressed — for QUIC one pair per remote address
    ///     routed by the bridge (`routing` bounds it), for TLS no peer address reported.
    /// - Returns: the bound channel (the server channel for TLS).
    public func bind(to address: NIOCore.SocketAddress, reusePort: Bool = false, addressed: Bool = true,
                     routing: DatagramBridge.Routing = DatagramBridge.Routing()) -> EventLoopFuture<any Channel> {
        let reusePortOption = ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT))
        switch listener.transport {
        case .quic, .dtls, .sctp, .dtlsOverSCTP, .sctpOverDTLS:
            return DatagramBootstrap(group: eventLoop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(reusePortOption, value: reusePort ? 1 : 0)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
                .channelOption(.receivePacketInfo, value: true)
                .channelOption(.explicitCongestionNotification, value: true)
                .channelOption(.maxMessagesPerRead, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
                .channelInitializer { [self] channel in
                    DatagramBridge.install(on: channel, loop: self, addressing: addressed ? .addressed : .unaddressed(routing))
                }
                .bind(to: address)
        case .tcp:
            return ServerBootstrap(group: eventLoop, childGroup: eventLoop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(reusePortOption, value: reusePort ? 1 : 0)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { [self] channel in
                    StreamBridge.install(on: channel, loop: self, reportingPeer: addressed)
                }
                .bind(to: address)
        }
    }
}

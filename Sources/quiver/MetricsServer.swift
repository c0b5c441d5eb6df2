import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus

/// `quiver serve --metrics-port`: the Prometheus text of one registry at `GET /metrics` (and
/// `HEAD`), over plain HTTP/1.1 on a SwiftNIO event loop of its own — one thread, apart from
/// the listeners' loops, so a scrape never waits for them nor they for it.
///
/// Any other path is 404, any other method 405; a request NIO's parser refuses gets a 400 and
/// the connection is closed (`HTTPServerProtocolErrorHandler`). Keep-alive is honoured; a
/// connection silent for ``idleTimeout`` is closed, so clients that connect and say nothing
/// hold no socket for long. Request bodies are read and dropped.
struct MetricsServer: Sendable {
    /// How long a connection may stay silent between requests.
    static let idleTimeout: TimeAmount = .seconds(30)

    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel

    /// The address it listens on (its port, when asked for port 0).
    var localAddress: NIOCore.SocketAddress? { channel.localAddress }

    /// Listens on `host:port` and serves `registry`.
    /// - Throws: what binding threw (an address in use, above all); nothing is left running.
    static func start(registry: PrometheusCollectorRegistry, host: String, port: Int) async throws -> MetricsServer {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry))
                }
            }
        do {
            let channel = try await bootstrap.bind(host: host, port: port).get()
            return MetricsServer(group: group, channel: channel)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Stops listening, closes the connections and ends the thread.
    func stop() async {
        try? await channel.close().get()
        try? await group.shutdownGracefully()
    }
}

/// Answers each request on one connection (HTTP/1.1 pipelining: in order, one at a time).
private final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let registry: PrometheusCollectorRegistry
    private var head: HTTPRequestHead?

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break  // not used: dropped as it arrives
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        var headers = HTTPHeaders()
        let status: HTTPResponseStatus
        var body: [UInt8] = []
        if path != "/metrics" {
            status = .notFound
            body = Array("not found: GET /metrics\n".utf8)
            headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        } else if head.method != .GET && head.method != .HEAD {
            status = .methodNotAllowed
            headers.add(name: "Allow", value: "GET, HEAD")
        } else {
            status = .ok
            body = registry.emitToBuffer()
            // The Prometheus text exposition format, version 0.0.4.
            headers.add(name: "Content-Type", value: "text/plain; version=0.0.4; charset=utf-8")
        }
        headers.add(name: "Content-Length", value: "\(body.count)")
        let keepAlive = head.isKeepAlive
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD, !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            done.whenComplete { _ in loopBound.value.close(promise: nil) }
        }
    }
}

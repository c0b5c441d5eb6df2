public import Hummingbird
public import Logging
public import Quiver
public import QuiverHTTP3
public import ServiceLifecycle
import NIOCore

/// What a request context is made from on HTTP/3: the request's logger and the QUIC connection
/// it came on (its peer, ALPN, certificates).
public struct HTTP3RequestContextSource: RequestContextSource {
    public let logger: Logger
    public let connection: Connection

    public init(logger: Logger, connection: Connection) {
        self.logger = logger
        self.connection = connection
    }
}

/// The request context of a router served over HTTP/3, as `BasicRequestContext` is over
/// Hummingbird's HTTP/1.1 and HTTP/2 (whose source holds a SwiftNIO channel, which HTTP/3 over
/// Quiver has not). A router built by a function generic over its context serves both:
///
/// ```swift
/// func routes<Context: RequestContext>(_ router: Router<Context>) { router.get("hello") { _, _ in "Hello" } }
/// let h1 = Router(context: BasicRequestContext.self); routes(h1)
/// let h3 = Router(context: BasicHTTP3RequestContext.self); routes(h3)
/// ```
public struct BasicHTTP3RequestContext: RequestContext {
    public typealias Source = HTTP3RequestContextSource
    public var coreContext: CoreRequestContextStorage
    /// The QUIC connection the request came on.
    public let connection: Connection

    public init(source: HTTP3RequestContextSource) {
        coreContext = CoreRequestContextStorage(source: source)
        connection = source.connection
    }
}

/// Serves a Hummingbird responder — a router's `buildResponder()`, with its middleware — over
/// HTTP/3 on a Quiver QUIC listener, as a `Service` for the application's `ServiceGroup`,
/// beside Hummingbird's own `Application` on TCP.
///
/// Each request becomes a Hummingbird `Request` whose body streams from the QUIC stream as the
/// route reads it (QUIC flow control holds the client back meanwhile); the response's body is
/// written as the route produces it, trailers included. A responder that throws gives a
/// `500 Internal Server Error` (a router answers `HTTPResponseError`s itself). At the group's
/// graceful shutdown the connections drain (GOAWAY, requests in progress finish; see
/// `HTTP3Service`).
public struct HummingbirdHTTP3Server<Responder: HTTPResponder>: Service
where Responder.Context: InitializableFromSource<HTTP3RequestContextSource> {
    private let service: HTTP3Service

    /// Serves `responder` on `listener` (a QUIC listener with ALPN `h3`); `logger` is the
    /// requests' (each gets an `hb.request.id`, as in Hummingbird); a request body over
    /// `maxRequestBody` bytes resets its stream with H3_EXCESSIVE_LOAD.
    public init(responder: Responder, listener: Listener, logger: Logger,
                maxRequestBody: Int = HTTP3Server.defaultMaxRequestBody) {
        service = HTTP3Service(listener: listener, maxRequestBody: maxRequestBody) { connection in { head, body, writer in
            var requestLogger = logger
            requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
            let context = Responder.Context(source: HTTP3RequestContextSource(logger: requestLogger, connection: connection))
            let request = Request(head: head, body: RequestBody(asyncSequence: body.map { ByteBuffer(bytes: $0) }))
            let response: Response
            do {
                response = try await responder.respond(to: request, context: context)
            } catch {
                requestLogger.debug("the responder failed", metadata: ["error": "\(error)"])
                response = Response(status: .internalServerError)
            }
            try await writer.writeHead(response.head)
            try await response.body.write(HTTP3BodyWriter(writer: writer))
        } }
    }

    /// The listener served.
    public var listener: Listener { service.listener }

    public func run() async throws { try await service.run() }
}

/// Hummingbird's response body writer onto an HTTP/3 response.
private struct HTTP3BodyWriter: ResponseBodyWriter {
    let writer: HTTP3ResponseWriter

    mutating func write(_ buffer: ByteBuffer) async throws {
        try await writer.write(Array(buffer.readableBytesView))
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await writer.finish(trailers: trailingHeaders ?? [:])
    }
}

/// Advertises HTTP/3 on the responses of Hummingbird's TCP server (RFC 7838): an `Alt-Svc`
/// header naming the UDP port where the same service speaks `h3`, which browsers and
/// `curl --http3` then use.
public struct AltSvcMiddleware<Context: RequestContext>: RouterMiddleware {
    public static var altSvc: HTTPField.Name { HTTPField.Name("alt-svc")! }
    private let value: String

    /// `h3=":port"; ma=maxAge`: HTTP/3 on UDP `port` of the same host, remembered `maxAge` seconds.
    public init(h3Port port: UInt16, maxAge: Int = 86_400) {
        value = "h3=\":\(port)\"; ma=\(maxAge)"
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[Self.altSvc] = value
        return response
    }
}

// A Hummingbird 2 application served over HTTP/1.1 (Hummingbird's own server, TCP 8080) and
// HTTP/3 (Quiver, UDP 4433) at once, from the same route definitions:
//
//   GET  /hello  →  "Hello, HTTP/3"
//   POST /echo   →  the request body, streamed back as it arrives
//
// The TCP responses carry `Alt-Svc: h3=":4433"`, so browsers and `curl --http3` move to HTTP/3.
// Both servers run in one ServiceGroup: SIGTERM or SIGINT drains them (HTTP/3: GOAWAY, requests
// in progress finish) within 10 seconds. With no certificate given, a self-signed one for
// localhost is generated.
//
//   swift run hummingbird-http3 [--cert chain.pem --key key.pem] [--h3-port 4433] [--http-port 8080] [--host ::]
import Foundation
import Hummingbird
import Logging
import Quiver
import QuiverHummingbird
import ServiceLifecycle

/// The application's routes, for a router of either context: HTTP/1.1's and HTTP/3's.
func addRoutes<Context: RequestContext>(to router: Router<Context>) {
    router.get("hello") { _, _ in "Hello, HTTP/3" }
    router.post("echo") { request, _ in
        Response(status: .ok, headers: [.contentType: request.headers[.contentType] ?? "application/octet-stream"],
                 body: ResponseBody(asyncSequence: request.body))
    }
}

struct Options {
    var host = "::"
    var h3Port: UInt16 = 4433
    var httpPort = 8080
    var cert: String?
    var key: String?

    init(_ arguments: [String]) throws {
        var iterator = arguments.makeIterator()
        func value(_ name: String) throws -> String {
            guard let value = iterator.next() else { throw UsageError("\(name) needs a value") }
            return value
        }
        while let argument = iterator.next() {
            switch argument {
            case "--host": host = try value(argument)
            case "--h3-port": h3Port = try UInt16(value(argument)).orThrow(UsageError("--h3-port needs a port number"))
            case "--http-port": httpPort = try Int(value(argument)).orThrow(UsageError("--http-port needs a port number"))
            case "--cert": cert = try value(argument)
            case "--key": key = try value(argument)
            default: throw UsageError("unknown argument \(argument)")
            }
        }
        guard (cert == nil) == (key == nil) else { throw UsageError("--cert and --key go together") }
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Optional {
    func orThrow(_ error: some Error) throws -> Wrapped {
        guard let self else { throw error }
        return self
    }
}

@main
struct HummingbirdHTTP3 {
    static func main() async {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "hummingbird-http3")
        logger.logLevel = .info
        do {
            try await run(Options(Array(CommandLine.arguments.dropFirst())), logger: logger)
        } catch {
            logger.error("\(error)")
            exit(1)
        }
    }

    static func run(_ options: Options, logger: Logger) async throws {
        let tls: TLSConfiguration
        if let cert = options.cert, let key = options.key {
            tls = try .server(certificateChainFile: cert, privateKeyFile: key, alpn: ["h3"])
        } else {
            let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
            tls = try .server(chain: chain, key: key, alpn: ["h3"])
            logger.notice("no certificate given: generated a self-signed certificate for localhost")
        }

        // HTTP/3 on UDP, served by Quiver.
        let h3Router = Router(context: BasicHTTP3RequestContext.self)
        addRoutes(to: h3Router)
        let bracketed = options.host.contains(":") ? "[\(options.host)]" : options.host
        let listener = try Listener(.quic, tls: tls, bind: "\(bracketed):\(options.h3Port)")
        let h3 = HummingbirdHTTP3Server(responder: h3Router.buildResponder(), listener: listener, logger: logger)

        // HTTP/1.1 on TCP, served by Hummingbird, advertising HTTP/3.
        let h1Router = Router(context: BasicRequestContext.self)
        h1Router.add(middleware: AltSvcMiddleware(h3Port: listener.localAddresses[0].port))
        addRoutes(to: h1Router)
        let app = Application(router: h1Router, configuration: .init(address: .hostname(options.host, port: options.httpPort)),
                              onServerRunning: { channel in
                                  logger.notice("serving HTTP/1.1 on tcp port \(channel.localAddress?.port.map(String.init) ?? "?") and HTTP/3 on udp \(listener.localAddresses.map { "\($0)" }.joined(separator: ", "))")
                              },
                              logger: logger)

        var configuration = ServiceGroupConfiguration(services: [app, h3], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        try await ServiceGroup(configuration: configuration).run()
        logger.notice("stopped")
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
public import Logging
public import Quiver
public import QuiverCore
public import QuiverTLS
import QuiverTLSSocket
public import QuiverUDP
import Synchronization

/// What every demo shares: OpenSSL-compatible arguments, the certificate, logging, the echo
/// service and signal handling. Usage: `ddd-NN-name [chain.pem privkey.pem] [--port P] [--quic |
/// --dtls] [--workers N] [--listeners N]`.
///
/// `--dtls` serves DTLS 1.2 on UDP: the echo code is the same, and each read and write is one
/// message (a record).
public struct Demo: Sendable {
    /// The executable's name, the prefix of every log line.
    public let name: String
    /// TLS over TCP (default), QUIC or DTLS.
    public let transport: Transport
    /// The first port; multi-listener demos use `port … port + listeners − 1`.
    public let port: UInt16
    /// Worker processes, threads or event loops.
    public let workers: Int
    /// Listeners (ports).
    public let listeners: Int
    /// Extra flags a demo understands (for example `--unaddressed`).
    public let flags: Set<String>
    /// The server configuration: the given chain and key, or a generated self-signed certificate
    /// for `localhost`; ALPN `echo`.
    public let tls: TLSConfiguration
    public let log: Logger

    /// Parses the command line; prints usage and exits on a mistake.
    /// `transportFlags`: the demo's own flags that choose a transport (demo 08's `--plain`).
    public static func start(name: String, defaultWorkers: Int, defaultListeners: Int, defaultTransport: Transport = .tcp,
                             transportFlags: [String: Transport] = [:]) -> Demo {
        LoggingSystem.bootstrap { label in DemoLogHandler(label: label) }
        let log = Logger(label: name)
        var positional: [String] = []
        var port: UInt16 = 4433
        var transport = defaultTransport
        var workers = defaultWorkers
        var listeners = defaultListeners
        var flags: Set<String> = []
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        func usage(_ problem: String) -> Never {
            FileHandle.standardError.write("\(name): \(problem)\nusage: \(name) [chain.pem privkey.pem] [--port P] [--quic | --dtls | --sctp\(transportFlags.keys.sorted().map { " | \($0)" }.joined())] [--workers N] [--listeners N]\n")
            exit(2)
        }
        while let argument = arguments.next() {
            switch argument {
            case "--port":
                guard let value = arguments.next().flatMap(UInt16.init) else { usage("--port needs a number") }
                port = value
            case "--workers":
                guard let value = arguments.next().flatMap(Int.init), value > 0 else { usage("--workers needs a positive number") }
                workers = value
            case "--listeners":
                guard let value = arguments.next().flatMap(Int.init), value > 0 else { usage("--listeners needs a positive number") }
                listeners = value
            case "--quic": transport = .quic
            case "--dtls": transport = .dtls
            case "--sctp": transport = .sctp
            case "--tcp": transport = .tcp
            case let flag where transportFlags[flag] != nil: transport = transportFlags[flag]!
            case let flag where flag.hasPrefix("--"): flags.insert(flag)
            default: positional.append(argument)
            }
        }
        guard positional.isEmpty || positional.count == 2 else { usage("give both chain.pem and privkey.pem, or neither") }
        var tls: TLSConfiguration
        do {
            if positional.count == 2 {
                tls = try .server(certificateChainFile: positional[0], privateKeyFile: positional[1], alpn: ["echo"])
            } else {
                let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
                log.notice("no certificate given: generated a self-signed certificate for localhost")
                tls = try .server(chain: chain, key: key, alpn: ["echo"])
            }
        } catch {
            usage("\(error)")
        }
        return Demo(name: name, transport: transport, port: port, workers: workers, listeners: listeners,
                    flags: flags, tls: tls, log: log)
    }

    /// The ports of the listeners.
    public var ports: [UInt16] { (0..<listeners).map { port + UInt16($0) } }

    /// A listener on `port`; with `reusePort`, its socket shares the port with other workers'.
    public func listener(port: UInt16, reusePort: Bool = false, options: Listener.Options = Listener.Options()) throws -> Listener {
        let address = bindAddress(port: port)
        switch transport {
        case .quic:
            var configuration = Demo.udpConfiguration
            configuration.reusePort = reusePort
            return try Listener(.quic, tls: tls, attachments: [.udp(try UDPSocket(bindingTo: address, configuration: configuration))], options: options)
        case .tcp:
            return try Listener(.tcp, tls: tls, attachments: [.tcpListener(try TCPSocket.listen(on: address, reusePort: reusePort))], options: options)
        case .dtls:
            var configuration = Demo.dtlsConfiguration
            configuration.reusePort = reusePort
            return try Listener(.dtls, tls: tls, attachments: [.udp(try UDPSocket(bindingTo: address, configuration: configuration))], options: options)
        case .sctp, .dtlsOverSCTP, .sctpOverDTLS:
            var configuration = Demo.dtlsConfiguration
            configuration.reusePort = reusePort
            return try Listener(transport, tls: tls, attachments: [.udp(try UDPSocket(bindingTo: address, configuration: configuration))], options: options)
        }
    }

    /// The transport's name for log lines.
    public var transportName: String {
        switch transport {
        case .tcp: "TLS"
        case .quic: "QUIC"
        case .dtls: "DTLS"
        case .sctp: "SCTP"
        case .dtlsOverSCTP: "DTLS over SCTP"
        case .sctpOverDTLS: "SCTP over DTLS"
        }
    }

    /// The address to listen on: `[::]:port` (dual stack) where IPv6 is available, else
    /// `0.0.0.0:port`.
    public func bindAddress(port: UInt16) -> SocketAddress {
        SocketAddress(host: "::", port: port).flatMap { try? probe($0) } ?? SocketAddress(host: "0.0.0.0", port: port)!
    }

    /// The UDP socket settings of the demos' QUIC listeners.
    public static var udpConfiguration: UDPSocket.Configuration {
        var configuration = UDPSocket.Configuration()
        configuration.receiveBufferSize = 4 << 20
        configuration.sendBufferSize = 4 << 20
        return configuration
    }

    /// The UDP socket settings of the demos' DTLS listeners: as QUIC's, without the
    /// don't-fragment bit (a message of up to 16 KiB is one record, one datagram).
    public static var dtlsConfiguration: UDPSocket.Configuration {
        var configuration = udpConfiguration
        configuration.dontFragment = false
        configuration.gso = false
        return configuration
    }

    /// `address` when IPv6 is available here (dual stack), else nil.
    private func probe(_ address: SocketAddress) throws -> SocketAddress {
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw QuiverError(.io, "no IPv6") }
        Glibc.close(fd)
        return address
    }

    /// Calls `handler` once on the first SIGINT or SIGTERM (on a background queue).
    public func onInterrupt(_ handler: @escaping @Sendable () -> Void) {
        let fired = Atomic<Bool>(false)
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                guard !fired.exchange(true, ordering: .acquiringAndReleasing) else { return }
                log.notice("signal \(signalNumber): shutting down")
                handler()
            }
            source.resume()
            Demo.signalSources.append(source)
        }
    }

    /// Keeps the signal sources alive; touched only by `onInterrupt`, called once at start.
    nonisolated(unsafe) private static var signalSources: [any DispatchSourceSignal] = []
}

/// The echo service of every demo, blocking: each client-opened bidirectional stream is echoed
/// (on TLS, the one stream), its end echoed as its end; when the client ends the default
/// stream, ours is finished and the connection closed (TLS close_notify / QUIC CONNECTION_CLOSE
/// code 0, after delivery).
public enum Echo {
    /// Serves `connection` to its end; returns the bytes echoed.
    @discardableResult
    public static func serve(_ connection: Connection) -> Int {
        let total = Atomic<Int>(0)
        let streams = DispatchGroup()
        if connection.transport == .quic || connection.transport.isSCTP {
            streams.enter()
            Thread {
                defer { streams.leave() }
                while let stream = try? connection.acceptStream() {
                    streams.enter()
                    Thread {
                        defer { streams.leave() }
                        total.add(echo(stream), ordering: .relaxed)
                    }.start()
                }
            }.start()
        }
        total.add(echo(connection.defaultStream), ordering: .relaxed)
        try? connection.shutdown()
        streams.wait()  // until the connection ends
        return total.load(ordering: .relaxed)
    }

    /// Echoes one stream until its end; returns the bytes echoed.
    public static func echo(_ stream: Quiver.Stream) -> Int {
        var total = 0
        while let bytes = try? stream.read(), !bytes.isEmpty {
            guard (try? stream.write(bytes)) != nil else { return total }
            total += bytes.count
        }
        try? stream.finish()
        return total
    }
}

/// Log lines `ddd-NN-name: message` on stderr.
struct DemoLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        FileHandle.standardError.write("\(label): \(event.message)\n")
    }
}

extension FileHandle {
    func write(_ text: String) { write(Data(text.utf8)) }
}

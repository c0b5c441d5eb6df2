public import ArgumentParser
import Foundation
public import Logging
import QuiverCore
import Quiver
import QuiverQUIC
import QuiverTLS
import QuiverTLSSocket

@main
struct QuiverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quiver",
        abstract: "Quiver: a pure-Swift TLS 1.3 and QUIC server stack.",
        subcommands: [Serve.self, Connect.self, Cert.self])
}

/// Shared logger setup: stderr, `quiver: message`.
enum Log {
    static func make(_ label: String, level: Logger.Level = .info) -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

enum KeyAlgorithm: String, ExpressibleByArgument, CaseIterable {
    case p256, p384, rsa2048, rsa3072, rsa4096, ed25519

    var algorithm: PrivateKey.Algorithm {
        switch self {
        case .p256: return .ecdsaP256
        case .p384: return .ecdsaP384
        case .rsa2048: return .rsa(bits: 2048)
        case .rsa3072: return .rsa(bits: 3072)
        case .rsa4096: return .rsa(bits: 4096)
        case .ed25519: return .ed25519
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the echo service over TLS 1.3/TCP and QUIC/UDP (the Quiver listener API, thread per connection).",
        discussion: """
            With neither --tls nor --quic both are served, on the same port number (TCP and UDP). \
            With no certificate, a self-signed certificate for localhost is generated at start.
            """)

    @Flag(help: "Serve TLS 1.3 over TCP.") var tls = false
    @Flag(help: "Serve QUIC (v1 and v2) over UDP.") var quic = false
    @Option(help: "Address to bind (numeric; '::' is dual-stack).") var host = "::"
    @Option(help: "TCP and UDP port.") var port: UInt16 = 4433
    @Option(help: "PEM certificate chain (leaf first).") var cert: String?
    @Option(help: "PEM private key for the chain.") var key: String?
    @Option(help: "ALPN protocol to accept (repeatable).") var alpn: [String] = ["echo"]
    @Option(help: "Client certificates: none, optional or required.") var clientAuth: String = "none"
    @Option(help: "PEM trust roots for client certificates.") var ca: String?
    @Option(help: "Accept up to this many bytes of 0-RTT data (0 disables).") var maxEarlyData: UInt32 = 0
    @Option(help: "Append TLS secrets in NSS key-log format (also via SSLKEYLOGFILE).") var keylog: String?
    @Option(help: "Exit after serving this many connections (for tests).") var maxConnections: Int?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: Logger.Level = .info

    func run() throws {
        let log = Log.make("quiver", level: logLevel)
        let chain: CertificateChain
        let privateKey: PrivateKey
        if let cert, let key {
            chain = try CertificateChain(pemFile: cert)
            privateKey = try PrivateKey(pemFile: key)
        } else if cert != nil || key != nil {
            throw ValidationError("--cert and --key go together")
        } else {
            (chain, privateKey) = try SelfSignedCertificate.generate(names: ["localhost"])
            log.notice("no certificate given: generated a self-signed certificate for localhost (clients need --insecure or this certificate as CA)")
        }
        var config = TLSConfiguration.server(chain: chain, key: privateKey, alpn: alpn)
        switch clientAuth {
        case "none": config.clientAuthentication = .none
        case "optional": config.clientAuthentication = .optional
        case "required": config.clientAuthentication = .required
        default: throw ValidationError("--client-auth must be none, optional or required")
        }
        if let ca { config.certificateVerifier = try CertificateVerifier(trustRootsPEMFile: ca) }
        if maxEarlyData > 0 {
            config.maxEarlyDataSize = maxEarlyData
            config.antiReplay = AntiReplay()
        }
        config.keyLog = keylog.flatMap { KeyLogFile.callback(path: $0) } ?? KeyLogFile.fromEnvironment()

        guard SocketAddress(host: host, port: port) != nil else { throw ValidationError("--host must be a numeric address") }
        var transports: [Transport] = []
        if tls || !quic { transports.append(.tcp) }
        if quic || !tls { transports.append(.quic) }
        if config.alpn.isEmpty, transports.contains(.quic) { config.alpn = ["echo"] }  // QUIC needs ALPN
        var options = Listener.Options()
        options.configureQUIC = { $0.connection.maxDatagramFrameSize = 1200 }
        let group = DispatchGroup()
        var listeners: [Listener] = []
        for transport in transports {
            let listener = try Self.listen(transport, tls: config, host: host, port: port, options: options, log: log)
            let name = transport == .quic ? "QUIC echo on udp" : "TLS 1.3 echo on tcp"
            log.notice("serving \(name) \(listener.localAddresses.map { "\($0)" }.joined(separator: ", ")) (ALPN \(config.alpn)\(transport == .quic ? ", v1 and v2" : ""))")
            listeners.append(listener)
        }
        let limit = maxConnections
        for listener in listeners {
            group.enter()
            Thread {
                defer { group.leave() }
                EchoServer.run(listener, log: log, limit: limit, group: group)
            }.start()
        }
        group.wait()
        for listener in listeners { listener.close() }
    }
}

extension Serve {
    /// Listens on `host:port`; a dual-stack `::` falls back to `0.0.0.0` where IPv6 is unavailable.
    static func listen(_ transport: Transport, tls: TLSConfiguration, host: String, port: UInt16,
                       options: Listener.Options, log: Logger) throws -> Listener {
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if host == "::", let listener = try? Listener(transport, tls: tls, bind: address, options: options) { return listener }
        guard host == "::" else { return try Listener(transport, tls: tls, bind: address, options: options) }
        log.info("IPv6 unavailable; binding 0.0.0.0:\(port)")
        return try Listener(transport, tls: tls, bind: "0.0.0.0:\(port)", options: options)
    }
}

struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Connect over TLS 1.3 or QUIC, copy stdin to the server and the server's data to stdout.",
        discussion: "EOF on stdin ends our side (close_notify, or the stream's FIN); exits 0 when the server then closes cleanly.")

    @Argument(help: "HOST:PORT (IPv6 as [::1]:4433).") var target: String
    @Flag(help: "Use TLS 1.3 over TCP (the default).") var tls = false
    @Flag(help: "Use QUIC over UDP (one bidirectional stream).") var quic = false
    @Flag(help: "With --quic: start in QUIC v2 (default: v1, accepting an upgrade to v2).") var v2 = false
    @Option(help: "ALPN protocol to offer (repeatable).") var alpn: [String] = []
    @Option(help: "PEM trust roots instead of the system bundle.") var ca: String?
    @Flag(help: "Do not verify the server's certificate (testing only).") var insecure = false
    @Option(help: "Server name for SNI and verification (default: the host).") var serverName: String?
    @Option(help: "Client certificate chain (PEM).") var cert: String?
    @Option(help: "Client private key (PEM).") var key: String?
    @Option(help: "Append TLS secrets in NSS key-log format.") var keylog: String?

    func run() throws {
        guard let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]) else {
            throw ValidationError("target must be HOST:PORT")
        }
        var host = String(target[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let verifier: CertificateVerifier
        if insecure {
            verifier = .insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)
        } else if let ca {
            verifier = try CertificateVerifier(trustRootsPEMFile: ca)
        } else {
            verifier = try CertificateVerifier.system()
        }
        var config = TLSConfiguration.client(alpn: alpn, verifier: verifier)
        if let cert, let key {
            config.certificateChain = try CertificateChain(pemFile: cert)
            config.privateKey = try PrivateKey(pemFile: key)
        }
        config.keyLog = keylog.flatMap { KeyLogFile.callback(path: $0) } ?? KeyLogFile.fromEnvironment()
        if tls && quic { throw ValidationError("--tls and --quic exclude each other") }
        var options = ClientOptions()
        if quic {
            if config.alpn.isEmpty { config.alpn = ["echo"] }
            let version: QUICVersion = v2 ? .v2 : .v1
            options.configureQUIC = { configuration in
                configuration.version = version
                configuration.supportedVersions = version == .v1 ? [.v1, .v2] : [version]
            }
        }
        let connection = try Connection.connect(quic ? .quic : .tcp, to: host, port: port, tls: config,
                                                serverName: serverName ?? host, options: options)
        let status = EchoClient.run(connection)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Cert: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a self-signed certificate (cert.pem) and key (key.pem).")

    @Option(help: "Directory to write into.") var out: String
    @Option(help: "Subject names (DNS or IP; repeatable).") var name: [String] = ["localhost"]
    @Option(help: "Key algorithm: \(KeyAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")).") var algorithm: KeyAlgorithm = .p256
    @Option(help: "Validity in days.") var days = 365

    func run() throws {
        let (chain, key) = try SelfSignedCertificate.generate(names: name, algorithm: algorithm.algorithm, validityDays: days)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try chain.pemRepresentation.write(toFile: out + "/cert.pem", atomically: true, encoding: .utf8)
        try key.pemRepresentation.write(toFile: out + "/key.pem", atomically: true, encoding: .utf8)
        FileHandle.standardError.write(Data("wrote \(out)/cert.pem and \(out)/key.pem for \(name)\n".utf8))
    }
}

public import ArgumentParser
import Foundation
public import Logging
import QuiverCore
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
        abstract: "Run the echo service over TLS 1.3/TCP (thread per connection) and QUIC/UDP (one event loop).",
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

        guard let address = SocketAddress(host: host, port: port) else { throw ValidationError("--host must be a numeric address") }
        let serveTLS = tls || !quic
        let serveQUIC = quic || !tls
        if serveQUIC {
            var alpnTLS = config
            if alpnTLS.alpn.isEmpty { alpnTLS.alpn = ["echo"] }
            let quicTLS = alpnTLS
            let maxConnections = self.maxConnections
            let quicAddress = address
            guard serveTLS else {
                try QUICEchoServer.run(address: quicAddress, tls: quicTLS, log: log, maxConnections: maxConnections)
                return
            }
            let thread = Thread {
                do {
                    try QUICEchoServer.run(address: quicAddress, tls: quicTLS, log: log, maxConnections: maxConnections)
                } catch {
                    log.error("QUIC: \(error)")
                }
            }
            thread.start()
        }
        let listener = try Self.bind(address, log: log)
        log.notice("serving TLS 1.3 echo on \(listener.localAddress.map { "\($0)" } ?? "?") (ALPN \(alpn))")
        let shared = config
        var served = 0
        while maxConnections.map({ served < $0 }) ?? true {
            let (socket, peer) = try listener.accept()
            served += 1
            EchoWorker.start(socket: socket, peer: peer, config: shared, log: log)
        }
        EchoWorker.waitForAll()
    }
}

extension Serve {
    /// Binds `address`; a dual-stack `::` falls back to `0.0.0.0` where IPv6 is unavailable.
    static func bind(_ address: SocketAddress, log: Logger) throws -> TCPSocket {
        if let socket = try? TCPSocket.listen(on: address) { return socket }
        guard address.host == "::", let v4 = SocketAddress(host: "0.0.0.0", port: address.port) else {
            return try TCPSocket.listen(on: address)
        }
        log.info("IPv6 unavailable; binding \(v4)")
        return try TCPSocket.listen(on: v4)
    }
}

/// One thread per connection: handshake, then echo until the peer closes.
enum EchoWorker {
    private static let group = DispatchGroup()

    static func start(socket: TCPSocket, peer: SocketAddress?, config: TLSConfiguration, log: Logger) {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            serve(socket: socket, peer: peer, config: config, log: log)
        }
        thread.start()
    }

    static func waitForAll() { group.wait() }

    static func serve(socket: TCPSocket, peer: SocketAddress?, config: TLSConfiguration, log: Logger) {
        let connection = TLSSocket(socket: socket, stream: TLSStream(server: config))
        let who = peer.map { "\($0)" } ?? "?"
        do {
            try connection.handshake()
            let info = connection.withStream { s in
                "\(s.handshake.cipherSuite.map { "\($0)" } ?? "?") \(s.handshake.group.map { "\($0)" } ?? "psk")"
                    + " alpn=\(s.handshake.negotiatedALPN ?? "-") sni=\(s.handshake.serverName ?? "-") resumed=\(s.handshake.isResumed)"
            }
            log.info("\(who): handshake complete: \(info)")
            var total = 0
            while true {
                let data = try connection.read()
                if data.isEmpty { break }
                total += data.count
                try connection.write(data)
            }
            connection.close()
            log.info("\(who): closed cleanly after echoing \(total) bytes")
        } catch {
            log.warning("\(who): \(error)")
        }
        socket.close()
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
        if quic {
            if tls { throw ValidationError("--tls and --quic exclude each other") }
            if config.alpn.isEmpty { config.alpn = ["echo"] }
            let status = try QUICClient.run(host: host, port: port, serverName: serverName ?? host, tls: config, version: v2 ? .v2 : .v1)
            if status != 0 { throw ExitCode(status) }
            return
        }
        let socket = try TCPSocket.connect(host: host, port: port)
        let connection = TLSSocket(socket: socket, stream: TLSStream(client: config, serverName: serverName ?? host))
        try connection.handshake()
        StdinPump.start(connection)
        while true {
            let data = try connection.read()
            if data.isEmpty { break }
            FileHandle.standardOutput.write(Data(data))
        }
    }
}

/// Copies stdin to the connection on a background thread; EOF sends close_notify.
enum StdinPump {
    static func start(_ connection: TLSSocket) {
        Thread {
            while true {
                let data = FileHandle.standardInput.availableData
                if data.isEmpty { break }
                do { try connection.write(Array(data)) } catch { break }
            }
            connection.close()
        }.start()
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

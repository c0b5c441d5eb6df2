import ArgumentParser
import Foundation
import Quiver
import QuiverCore
import QuiverHTTP3
import QuiverQUIC
import QuiverTLS
import QuiverTLSSocket
import Synchronization

/// `quiver get`: fetches URLs over one QUIC connection with HTTP/3 or hq-interop.
struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fetch one or more https:// URLs over one QUIC connection (HTTP/3, or hq-interop with --hq).",
        discussion: "All URLs must name the same host and port; they are fetched concurrently. Exits 0 when every fetch succeeded.")

    @Argument(help: "URLs (https://host:port/path).") var urls: [String]
    @Flag(help: "Use HTTP/3 (ALPN h3, the default).") var http3 = false
    @Flag(help: "Use hq-interop (HTTP/0.9 over QUIC).") var hq = false
    @Option(help: "PEM trust roots instead of the system bundle.") var ca: String?
    @Flag(help: "Do not verify the server's certificate (testing only).") var insecure = false
    @Option(help: "Server name for SNI and verification (default: the URL's host).") var serverName: String?
    @Flag(help: "Offer only TLS_CHACHA20_POLY1305_SHA256.") var chacha20 = false
    @Flag(help: "Start in QUIC v2 (default: start in v1 and offer v2, which quiver serve upgrades to; resuming, the ticket's version).") var v2 = false
    @Option(help: "Write each body to this directory (named by the path's last component) instead of stdout.") var out: String?
    @Option(help: "Resume with the ticket in this file if it exists, and save the newest ticket to it.") var resume: String?
    @Flag(help: "With --resume: send the requests as 0-RTT data.") var zeroRTT = false
    @Flag(help: "Update the keys once the handshake is confirmed, before fetching.") var keyUpdate = false
    @Option(help: "Append TLS secrets in NSS key-log format.") var keylog: String?

    func run() throws {
        if http3 && hq { throw ValidationError("--http3 and --hq exclude each other") }
        guard !urls.isEmpty else { throw ValidationError("give at least one URL") }
        let parsed = try urls.map { (text: String) throws(CommandError) in try Addresses.fetchURL(text) }
        let host = parsed[0].host
        let port = parsed[0].port
        guard parsed.allSatisfy({ $0.host == host && $0.port == port }) else {
            throw CommandError("all URLs must name the same host and port")
        }
        let verifier: CertificateVerifier = insecure ? .insecureNoVerification(.iUnderstandThisDisablesPeerAuthentication)
            : try ca.map { try CertificateVerifier(trustRootsPEMFile: $0) } ?? CertificateVerifier.system()
        var tls = TLSConfiguration.client(alpn: [hq ? "hq-interop" : "h3"], verifier: verifier)
        if chacha20 { tls.cipherSuites = [.chacha20Poly1305SHA256] }
        tls.keyLog = keylog.flatMap { KeyLogFile.callback(path: $0) } ?? KeyLogFile.fromEnvironment()
        var options = ClientOptions()
        if let resume, let data = FileManager.default.contents(atPath: resume) {
            options.resumption = try QUICResumptionTicket(serialized: Array(data))
            if zeroRTT {
                options.earlyData = true
                options.waitForHandshake = false  // write at once: the requests go out as 0-RTT
            }
        } else if zeroRTT {
            throw ValidationError("--zero-rtt needs a ticket: --resume FILE from an earlier run")
        }
        // A resumed connection starts in the version its ticket came from: 0-RTT is only sent
        // in that version (RFC 9369 §5), and a server that moved us to v2 gave a v2 ticket.
        let version: QUICVersion = v2 ? .v2 : options.resumption?.version ?? .v1
        options.configureQUIC = { configuration in
            configuration.version = version
            configuration.supportedVersions = version == .v1 ? [.v1, .v2] : [version]
        }
        let connection = try Connection.connect(.quic, to: host, port: port, tls: tls, serverName: serverName ?? host, options: options)
        if keyUpdate { try updateKeys(connection) }
        let client = hq ? nil : try HTTP3Client(connection)
        let failures = Mutex<[String]>([])
        let output = Mutex<Void>(())
        let fetches = DispatchGroup()
        for url in parsed {
            let path = url.path
            fetches.enter()
            Thread {
                defer { fetches.leave() }
                do {
                    var body: [UInt8] = []
                    if let client {
                        let response = try client.get(path, authority: url.authority) { body += $0 }
                        guard response.status == 200 else { throw QuiverError(.protocolViolation, "status \(response.status)") }
                    } else {
                        try HQInterop.get(path, on: connection) { body += $0 }
                    }
                    try deliver(body, path: path, output: output)
                } catch {
                    failures.withLock { $0.append("\(path): \(error)") }
                }
            }.start()
        }
        fetches.wait()
        if let resume {
            // A server's NewSessionTicket may trail the responses to small requests.
            let deadline = Date().addingTimeInterval(2)
            while connection.resumptionTicket == nil, connection.closeInfo == nil, Date() < deadline { usleep(20_000) }
            if let ticket = connection.resumptionTicket {
                _ = FileManager.default.createFile(atPath: resume, contents: Data(ticket.serialized), attributes: [.posixPermissions: 0o600])
            } else if options.resumption != nil {
                FileHandle.standardError.write(Data("quiver: no new session ticket arrived; \(resume) keeps the one used\n".utf8))
            } else {
                failures.withLock { $0.append("no session ticket arrived to save in \(resume)") }
            }
        }
        FileHandle.standardError.write(Data("quiver: \(parsed.count) fetched, \(connection.quicVersion.map { "\($0)" } ?? "-"), alpn \(connection.alpn ?? "-"), resumed \(connection.isResumed), 0-RTT \(connection.earlyDataAccepted.map { $0 ? "accepted" : "refused" } ?? "not attempted")\(keyUpdate ? ", keys updated" : "")\n".utf8))
        if let client { client.close() } else { try? connection.shutdown(.rapid(code: 0, reason: "")) }
        connection.waitUntilClosed()
        let problems = failures.withLock { $0 }
        for problem in problems { FileHandle.standardError.write(Data("quiver: \(problem)\n".utf8)) }
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// Starts a key update as soon as the handshake is confirmed (HANDSHAKE_DONE), waiting at
    /// most five seconds for that.
    private func updateKeys(_ connection: Connection) throws {
        try connection.waitForHandshake()
        let deadline = Date().addingTimeInterval(5)
        while !(try connection.updateKeys()) {
            guard Date() < deadline else { throw QuiverError(.timeout, "the handshake was not confirmed: no key update") }
            usleep(5_000)
        }
    }

    /// Writes a body to `--out` (or stdout, one fetch at a time).
    private func deliver(_ body: [UInt8], path: String, output: borrowing Mutex<Void>) throws {
        guard let out else {
            output.withLock { _ in FileHandle.standardOutput.write(Data(body)) }
            return
        }
        let name = path.split(separator: "?").first?.split(separator: "/").last.map(String.init) ?? "index.html"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: out + "/" + name, contents: Data(body)) else {
            throw QuiverError(.io, "cannot write \(out)/\(name)")
        }
    }
}

import ArgumentParser
import Foundation
import Quiver
import QuiverCore
import QuiverHTTP3
import QuiverTLS
import QuiverTLSSocket
import Synchronization

/// `quiver get`: fetches URLs over one QUIC connection with HTTP/3 or hq-interop.
struct Get: ParsableCommand, Sendable {
    static let configuration = CommandConfiguration(
        abstract: "Fetch one or more https:// URLs over one QUIC connection (HTTP/3, or hq-interop with --hq).",
        discussion: """
            All URLs must name the same host and port. With --out they are fetched concurrently, each body \
            written to its file as it arrives; without, one after another to stdout. Each failed fetch \
            (an HTTP status other than 200 is one) is reported on stderr; exits 0 only when every fetch succeeded.
            """)

    @Argument(help: "URLs (https://host:port/path).") var urls: [String]
    @Flag(help: "Use HTTP/3 (ALPN h3, the default).") var http3 = false
    @Flag(help: "Use hq-interop (HTTP/0.9 over QUIC).") var hq = false
    @Option(help: "PEM trust roots instead of the system bundle.") var ca: String?
    @Flag(help: "Do not verify the server's certificate (testing only).") var insecure = false
    @Option(help: "Server name for SNI and verification (default: the URL's host).") var serverName: String?
    @Flag(help: "Offer only TLS_CHACHA20_POLY1305_SHA256.") var chacha20 = false
    @Flag(help: "Start in QUIC v2 (default: start in v1 and offer v2, which quiver serve upgrades to; resuming, the ticket's version).") var v2 = false
    @Option(help: "Write each body to this directory (named by the path's last component) instead of stdout; a failed fetch leaves no file.") var out: String?
    @Option(help: "Resume with the ticket in this file if it exists, and save the newest ticket to it.") var resume: String?
    @Flag(help: "With --resume: send the requests as 0-RTT data.") var zeroRTT = false
    @Flag(help: "Update the keys once the handshake is confirmed, before fetching.") var keyUpdate = false
    @Option(help: "Send a PING after this many seconds without sending anything the server must acknowledge (default: none), so that a fetch learns at once that its server is gone: behind a load balancer another host answers with a stateless reset.") var keepAlive: Double?
    @Flag(help: "Move the connection to a new local port once the first body bytes arrive (active migration, RFC 9000 §9.2); the summary says whether the server proved the new path.") var migrate = false
    @Option(help: "Like --migrate, to this local address (numeric, e.g. 127.0.0.2: another interface's).") var migrateAddress: String?
    @Flag(help: "Stay on the server's first address: do not move to a preferred address it offers (RFC 9000 §9.6; by default the connection moves there once the handshake is confirmed, and the summary says so).") var noPreferredAddress = false
    @Option(help: "Append TLS secrets in NSS key-log format.") var keylog: String?
    @Option(help: "Write a qlog trace (JSON-SEQ) of the connection into this directory, created if missing, as <original destination connection ID>_client.sqlog (default: $QLOGDIR).") var qlog: String?

    func run() throws {
        try AsyncCommand.run { try await fetch() }
    }

    private func fetch() async throws {
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
        options.qlogDirectory = try QLogDirectory.resolve(qlog)
        options.followsPreferredAddress = !noPreferredAddress
        if let keepAlive {
            guard keepAlive > 0, keepAlive.isFinite else { throw CommandError("--keep-alive must be more than 0 seconds") }
            options.keepAliveInterval = .milliseconds(Int64(keepAlive * 1000))
        }
        if let resume, let data = FileManager.default.contents(atPath: resume) {
            options.resumption = try ResumptionTicket(serialized: Array(data))
            if zeroRTT {
                options.earlyData = true
                options.waitForHandshake = false  // write at once: the requests go out as 0-RTT
            }
        } else if zeroRTT {
            throw ValidationError("--zero-rtt needs a ticket: --resume FILE from an earlier run")
        }
        // A resumed connection starts in the version its ticket came from: 0-RTT is only sent
        // in that version (RFC 9369 §5), and a server that moved us to v2 gave a v2 ticket.
        let version: QUICVersion = v2 ? .v2 : options.resumption?.quicVersion ?? .v1
        options.quicVersions = version == .v1 ? [.v1, .v2] : [version]
        var moveTo: SocketAddress?
        if let migrateAddress {
            guard let address = SocketAddress(host: migrateAddress, port: 0) else {
                throw CommandError("--migrate-address '\(migrateAddress)' is not a numeric IP address")
            }
            moveTo = address
        }
        let connection = try await Connection.connect(.quic, to: host, port: port, tls: tls, serverName: serverName ?? host, options: options)
        guard let quic = connection.quic else { throw QuiverError(.configuration, "not a QUIC connection") }
        if keyUpdate { try await updateKeys(quic) }
        let mover = migrate || moveTo != nil ? Mover(quic, to: moveTo) : nil
        let client = hq ? nil : try HTTP3Client(connection)
        let failures = Mutex<[String]>([])
        let fetched = Atomic<Int>(0)
        let fetch: @Sendable (Addresses.FetchURL) async -> Void = { [out] url in
            do {
                let sink = try BodySink(out: out, path: url.path)
                do {
                    let write: ([UInt8]) -> Void = { bytes in
                        sink.write(bytes)
                        mover?.bodyArrived()
                    }
                    if let client {
                        let response = try await client.get(url.path, authority: url.authority, onBody: write)
                        guard response.status == .ok else { throw HTTPStatusError(status: response.status) }
                    } else {
                        try await HQInterop.get(url.path, on: connection, onBody: write)
                    }
                    try sink.finish()
                } catch {
                    sink.discard()
                    throw error
                }
                fetched.add(1, ordering: .relaxed)
            } catch {
                failures.withLock { $0.append("\(url.path): \(error)") }
                FileHandle.standardError.write(Data("quiver: \(url.path): \(error)\n".utf8))
            }
        }
        if out == nil {
            // One body after another on stdout, read on the connection's loop (no hop per read).
            await withTaskExecutorPreference(connection.taskExecutor) {
                for url in parsed { await fetch(url) }
            }
        } else {
            await withDiscardingTaskGroup { fetches in
                for url in parsed { fetches.addTask(executorPreference: connection.taskExecutor) { await fetch(url) } }
            }
        }
        if let resume {
            // A server's NewSessionTicket may trail the responses to small requests.
            let deadline = Date().addingTimeInterval(2)
            while quic.resumptionTicket == nil, connection.closeInfo == nil, Date() < deadline { try? await Task.sleep(for: .milliseconds(20)) }
            if let ticket = quic.resumptionTicket {
                _ = FileManager.default.createFile(atPath: resume, contents: Data(ticket.serialized), attributes: [.posixPermissions: 0o600])
            } else if options.resumption != nil {
                FileHandle.standardError.write(Data("quiver: no new session ticket arrived; \(resume) keeps the one used\n".utf8))
            } else {
                failures.withLock { $0.append("no session ticket arrived to save in \(resume)") }
                FileHandle.standardError.write(Data("quiver: no session ticket arrived to save in \(resume)\n".utf8))
            }
        }
        if let mover, let failure = mover.failure {
            failures.withLock { $0.append(failure) }
            FileHandle.standardError.write(Data("quiver: \(failure)\n".utf8))
        }
        FileHandle.standardError.write(Data("quiver: \(fetched.load(ordering: .relaxed)) of \(parsed.count) fetched, \(quic.version), alpn \(connection.alpn ?? "-"), resumed \(quic.isResumed), 0-RTT \(quic.earlyDataAccepted.map { $0 ? "accepted" : "refused" } ?? "not attempted")\(keyUpdate ? ", keys updated" : "")\(mover?.summary ?? "")\(Self.preferredSummary(quic)), \(quic.ecn)\(client.map { ", \($0.qpackStatistics)" } ?? "")\n".utf8))
        if let client { client.close() } else { try? await connection.shutdown(.rapid(code: 0, reason: "")) }
        // The process exits next: once the close has left, not after the closing period (3 PTO,
        // 80 ms on loopback, far more on long paths), as curl and ngtcp2's client do.
        await connection.waitUntilCloseSent()
        if !failures.withLock({ $0.isEmpty }) { throw ExitCode(1) }
    }

    /// ", moved to the server's preferred address 127.0.0.1:4434" once the server answered there.
    private static func preferredSummary(_ quic: Connection.QUIC) -> String {
        quic.preferredAddressMigrations > 0 ? ", moved to the server's preferred address \(quic.serverAddress.map { "\($0)" } ?? "-")" : ""
    }

    /// Starts a key update as soon as the handshake is confirmed (HANDSHAKE_DONE), waiting at
    /// most five seconds for that.
    private func updateKeys(_ quic: Connection.QUIC) async throws {
        try await quic.connection.waitForHandshake()
        let deadline = Date().addingTimeInterval(5)
        while !(try quic.updateKeys()) {
            guard Date() < deadline else { throw QuiverError(.timeout, "the handshake was not confirmed: no key update") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// A response whose status is not 200: the fetch failed, and this says how.
struct HTTPStatusError: Error, CustomStringConvertible {
    let status: HTTPResponse.Status
    var description: String {
        // HTTP/3 carries no reason phrase: the common ones are named here.
        let known: [HTTPResponse.Status] = [.badRequest, .forbidden, .notFound, .methodNotAllowed, .internalServerError, .serviceUnavailable]
        let reason = known.first { $0.code == status.code }?.reasonPhrase
        return "HTTP status \(status.code)\(reason.map { " (\($0))" } ?? "")"
    }
}

/// Where one body goes as it arrives: a file in `--out` (named by the path's last component,
/// created at the first byte or at the end of an empty body), or stdout. Nothing is kept in
/// memory beyond the piece being written. Used by one fetch at a time.
final class BodySink {
    private let path: String?
    private var descriptor: Int32 = -1
    private var failure: CommandError?

    /// A sink for the body of `path`: into `out` when given, else stdout.
    init(out: String?, path: String) throws {
        guard let out else {
            self.path = nil
            descriptor = STDOUT_FILENO
            return
        }
        let name = path.split(separator: "?").first?.split(separator: "/").last.map(String.init) ?? "index.html"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        self.path = out + "/" + name
    }

    deinit { if path != nil, descriptor >= 0 { close(descriptor) } }

    /// Writes a piece of the body; after a failure the rest is dropped and ``finish()`` throws.
    func write(_ bytes: [UInt8]) {
        guard failure == nil, open() else { return }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                failure = CommandError("cannot write \(path ?? "stdout"): \(String(cString: strerror(errno)))")
                return
            }
            written += count
        }
    }

    /// Ends a complete body: its file exists (even if empty) and everything was written.
    func finish() throws {
        _ = open()
        if let failure { throw failure }
        if let path, descriptor >= 0 {
            let closed = close(descriptor)
            descriptor = -1
            if closed != 0 { throw CommandError("cannot write \(path): \(String(cString: strerror(errno)))") }
        }
    }

    /// Ends a failed fetch: its partial file is removed.
    func discard() {
        guard let path, descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(path)
    }

    /// Creates the file at the first write; false (with ``failure`` set) if it cannot be.
    private func open() -> Bool {
        guard descriptor < 0, let path else { return failure == nil }
        descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 { failure = CommandError("cannot create \(path): \(String(cString: strerror(errno)))") }
        return descriptor >= 0
    }
}

/// `quiver get --migrate`: moves the connection to a new local address once body bytes have
/// arrived (by then the handshake is normally confirmed; a move refused for now is tried again
/// at the next bytes).
private final class Mover: Sendable {
    private let quic: Connection.QUIC
    private let local: SocketAddress?
    /// The new local address once moved, else the last refusal.
    private let state = Mutex<(moved: SocketAddress?, refusal: String?)>((nil, nil))

    init(_ quic: Connection.QUIC, to local: SocketAddress?) {
        self.quic = quic
        self.local = local
    }

    func bodyArrived() {
        guard state.withLock({ $0.moved == nil }) else { return }
        do {
            let address = try quic.migrate(to: local)
            state.withLock { $0.moved = address }
        } catch {
            state.withLock { $0.refusal = "\(error)" }
        }
    }

    /// Why the connection did not move, if it did not.
    var failure: String? {
        state.withLock { $0.moved == nil ? "did not move to a new local address: \($0.refusal ?? "no body bytes arrived")" : nil }
    }

    /// For the summary line: where it moved, and whether the server proved the new path.
    var summary: String {
        guard let moved = state.withLock({ $0.moved }) else { return ", not moved" }
        return ", moved to \(moved) (\(quic.pathsValidated > 0 ? "the server proved the new path" : "the new path unproved"))"
    }
}

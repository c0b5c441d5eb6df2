// Support for the interop tests: external peers (OpenSSL, GnuTLS, Python `ssl`) run as child
// processes against Quiver over loopback TCP.
//
// Ports: Quiver servers bind 127.0.0.1 port 0; a peer server gets a port found by binding port 0
// and closing it, and the client retries its connect with a short backoff (bounded) until the
// peer listens. Every blocking step has a deadline; peers still running at the end are killed.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import QuiverTestSupport
import Testing

// MARK: - Files and credentials


/// A generated certificate and key (cached per algorithm and role: RSA generation is slow).
struct TestIdentity: Sendable {
    let chain: CertificateChain
    let key: PrivateKey

    /// The self-signed certificate as a trust root.
    var verifier: CertificateVerifier { CertificateVerifier(trustRoots: chain.certificates) }

    /// Writes `<name>.crt.pem` and `<name>.key.pem` into `directory`.
    func write(to directory: TemporaryDirectory, as name: String) throws -> (cert: String, key: String) {
        (try directory.write(name + ".crt.pem", chain.pemRepresentation), try directory.write(name + ".key.pem", key.pemRepresentation))
    }

    private static let cache = Waitable<[String: TestIdentity]>([:])

    /// A self-signed certificate for `localhost` (plus 127.0.0.1 and ::1) with a key of `algorithm`.
    static func localhost(_ algorithm: PrivateKey.Algorithm, role: String = "server") throws -> TestIdentity {
        let cacheKey = "\(role)/\(algorithm)"
        if let cached = cache.current[cacheKey] { return cached }
        let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"], algorithm: algorithm)
        let identity = TestIdentity(chain: chain, key: key)
        return cache.update { cache in
            if let existing = cache[cacheKey] { return existing }  // another test won the race
            cache[cacheKey] = identity
            return identity
        }
    }
}

// MARK: - Sockets

enum Loopback {
    /// 127.0.0.1 port `port`.
    static func address(port: UInt16) -> SocketAddress { SocketAddress(host: "127.0.0.1", port: port)! }

    /// A port that was free a moment ago (bind port 0, read it, close): for peer servers.
    static func freePort() throws -> UInt16 {
        let probe = try TCPSocket.listen(on: address(port: 0))
        defer { probe.close() }
        guard let port = probe.localAddress?.port, port != 0 else { throw InteropError("no local port after binding port 0") }
        return port
    }

    /// Sets receive and send timeouts so that a silent peer fails a blocking read instead of
    /// hanging the test.
    static func setTimeouts(_ socket: TCPSocket, seconds: Int = 10) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket.descriptor, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to a peer server that is starting: retries with a growing backoff (10 ms to
    /// 160 ms) for up to `timeout` seconds, giving up early when `peer` exits.
    static func connect(port: UInt16, peer: PeerProcess, timeout: Double = 5) throws -> TCPSocket {
        let deadline = Date(timeIntervalSinceNow: timeout)
        var backoff = 0.01
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                let socket = try TCPSocket.connect(to: address(port: port))
                if socket.localAddress?.port == port {
                    socket.close()  // TCP simultaneous open with ourselves: nobody is listening yet
                } else {
                    setTimeouts(socket)
                    return socket
                }
            } catch {
                lastError = error
            }
            if peer.exitStatus != nil { break }
            Thread.sleep(forTimeInterval: backoff)
            backoff = min(backoff * 2, 0.16)
        }
        throw InteropError("cannot connect to \(peer.name) on port \(port): \(lastError.map { "\($0)" } ?? "timeout")\n\(peer.transcript)")
    }
}

// MARK: - Quiver as the server

/// What one connection to an ``InteropServer`` did.
struct ServerConnectionReport: Sendable {
    /// The connection's position in accept order (0 for the first).
    var index = 0
    var cipherSuite: CipherSuite?
    var group: NamedGroup?
    var alpn: String?
    var serverName: String?
    var isResumed = false
    var earlyDataAccepted: Bool?
    var didHelloRetry = false
    var peerCertificates = 0
    var handshakeCompleted = false
    /// The client's record_size_limit, if it sent one.
    var peerRecordSizeLimit: Int?
    /// The algorithm our Certificate was compressed with (RFC 8879), if it was.
    var sentCertificateCompression: CertificateCompressionAlgorithm?
    /// Every application byte received (and echoed).
    var received: [UInt8] = []
    /// The peer closed with close_notify and we answered with ours.
    var closedCleanly = false
    var keyUpdateSent = false
    /// The failure, if any (for TLS failures, also ``tlsError``).
    var error: String?
    var tlsError: TLSError?
}

/// A Quiver TLS 1.3 echo server on 127.0.0.1 (port 0), one thread per connection.
final class InteropServer: @unchecked Sendable {
    // @unchecked: `listener` is used by the accept thread; stop() only shuts it down.
    struct Options: Sendable {
        /// After echoing the first chunk, send KeyUpdate(update_requested).
        var keyUpdateAfterFirstEcho = false
        /// ``TLSStream/paddingBlockSize`` for every connection.
        var paddingBlockSize = 0
    }

    let port: UInt16
    private let listener: TCPSocket
    private let reports = Waitable<[ServerConnectionReport]>([])

    init(_ configuration: TLSConfiguration, options: Options = Options()) throws {
        listener = try TCPSocket.listen(on: Loopback.address(port: 0))
        guard let port = listener.localAddress?.port else { throw InteropError("listener has no port") }
        self.port = port
        let listener = self.listener
        let reports = self.reports
        Thread {
            var index = 0
            while let (socket, _) = try? listener.accept() {
                Loopback.setTimeouts(socket)
                let connectionIndex = index
                index += 1
                Thread { Self.serve(socket, connectionIndex, configuration, options, reports) }.start()
            }
            listener.close()
        }.start()
    }

    deinit { stop() }

    /// Stops accepting connections (connections in progress finish on their own).
    func stop() { listener.shutdownBoth() }

    /// Waits until `count` connections have finished; throws after `timeout` seconds. The
    /// reports are in accept order.
    func waitForConnections(_ count: Int, timeout: Double = 5) throws -> [ServerConnectionReport] {
        let (value, ok) = reports.wait(timeout: timeout) { $0.count >= count }
        guard ok else { throw InteropError("only \(value.count) of \(count) connections to our server finished within \(timeout) s: \(value)") }
        return value.sorted { $0.index < $1.index }
    }

    private static func serve(_ socket: TCPSocket, _ index: Int, _ configuration: TLSConfiguration, _ options: Options,
                              _ reports: Waitable<[ServerConnectionReport]>) {
        let stream = TLSStream(server: configuration)
        stream.paddingBlockSize = options.paddingBlockSize
        let connection = TLSSocket(socket: socket, stream: stream)
        var report = ServerConnectionReport(index: index)
        defer {
            socket.close()
            reports.update { $0.append(report) }
        }
        func record(_ h: TLSHandshake) {
            report.cipherSuite = h.cipherSuite
            report.group = h.group
            report.alpn = h.negotiatedALPN
            report.serverName = h.serverName
            report.isResumed = h.isResumed
            report.earlyDataAccepted = h.earlyDataAccepted
            report.didHelloRetry = h.didHelloRetry
            report.peerCertificates = h.peerCertificates.count
            report.handshakeCompleted = h.isHandshakeComplete
            report.peerRecordSizeLimit = h.peerRecordSizeLimit
            report.sentCertificateCompression = h.sentCertificateCompression
        }
        do {
            try connection.handshake()
            connection.withStream { record($0.handshake) }
            while true {
                let data = try connection.read()
                if data.isEmpty { break }
                report.received += data
                try connection.write(data)
                if options.keyUpdateAfterFirstEcho && !report.keyUpdateSent {
                    try connection.updateKeys(requestPeerUpdate: true)
                    report.keyUpdateSent = true
                }
            }
            connection.close()
            report.closedCleanly = true
        } catch {
            report.error = "\(error)"
            connection.withStream { stream in
                record(stream.handshake)
                report.tlsError = stream.error
            }
        }
    }
}

// MARK: - Quiver as the client

/// A Quiver client connection to a peer server, with the handshake done.
struct InteropClient {
    let connection: TLSSocket

    var handshake: TLSHandshake { connection.withStream { $0.handshake } }

    /// Connects (retrying while `peer` starts) and performs the handshake.
    init(port: UInt16, peer: PeerProcess, configuration: TLSConfiguration, serverName: String = "localhost",
         resumption: SessionTicket? = nil) throws {
        let socket = try Loopback.connect(port: port, peer: peer)
        connection = TLSSocket(socket: socket, stream: TLSStream(client: configuration, serverName: serverName, resumption: resumption))
        do {
            try connection.handshake()
        } catch {
            socket.close()
            throw InteropError("handshake with \(peer.name) failed: \(error)\n\(peer.transcript)")
        }
    }

    /// Reads until `count` bytes arrived (or the peer closed).
    func read(count: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        while out.count < count {
            let data = try connection.read(max: count - out.count)
            if data.isEmpty { break }
            out += data
        }
        return out
    }

    /// Reads until `predicate` holds on everything read so far, or the peer closes.
    func read(until predicate: ([UInt8]) -> Bool) throws -> [UInt8] {
        var out: [UInt8] = []
        while !predicate(out) {
            let data = try connection.read()
            if data.isEmpty { break }
            out += data
        }
        return out
    }

    /// Reads until the peer closes; returns the data and the error that ended it, if the close
    /// was not clean.
    func readToEnd() -> (data: [UInt8], error: QuiverError?) {
        var out: [UInt8] = []
        do {
            while true {
                let data = try connection.read()
                if data.isEmpty { return (out, nil) }
                out += data
            }
        } catch {
            return (out, error)
        }
    }

    /// The first session ticket received so far.
    func sessionTicket() -> SessionTicket? {
        for event in connection.events() {
            if case .sessionTicket(let ticket) = event { return ticket }
        }
        return nil
    }

    func close() {
        connection.close()
        connection.socket.close()
    }
}

// MARK: - Names

extension CipherSuite {
    /// The IANA/OpenSSL name (`TLS_AES_128_GCM_SHA256`).
    var ianaName: String {
        switch self {
        case .aes128GCMSHA256: return "TLS_AES_128_GCM_SHA256"
        case .aes256GCMSHA384: return "TLS_AES_256_GCM_SHA384"
        case .chacha20Poly1305SHA256: return "TLS_CHACHA20_POLY1305_SHA256"
        default: return "\(self)"
        }
    }

    /// OpenSSL's name of a TLS 1.2 suite (`-cipher`, `SSL_CIPHER_get_name`, Python's `cipher()`).
    var opensslName: String {
        switch self {
        case .ecdheECDSAWithAES128GCMSHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256"
        case .ecdheECDSAWithAES256GCMSHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384"
        case .ecdheRSAWithAES128GCMSHA256: return "ECDHE-RSA-AES128-GCM-SHA256"
        case .ecdheRSAWithAES256GCMSHA384: return "ECDHE-RSA-AES256-GCM-SHA384"
        case .ecdheRSAWithChaCha20Poly1305SHA256: return "ECDHE-RSA-CHACHA20-POLY1305"
        case .ecdheECDSAWithChaCha20Poly1305SHA256: return "ECDHE-ECDSA-CHACHA20-POLY1305"
        default: return ianaName
        }
    }

    /// The GnuTLS priority-string cipher name.
    var gnutlsName: String {
        switch self {
        case .aes128GCMSHA256, .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256: return "AES-128-GCM"
        case .aes256GCMSHA384, .ecdheECDSAWithAES256GCMSHA384, .ecdheRSAWithAES256GCMSHA384: return "AES-256-GCM"
        case .chacha20Poly1305SHA256, .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256: return "CHACHA20-POLY1305"
        default: return "\(self)"
        }
    }
}

extension NamedGroup {
    /// The OpenSSL `-groups` name.
    var opensslName: String {
        switch self {
        case .x25519: return "X25519"
        case .secp256r1: return "P-256"
        case .secp384r1: return "P-384"
        case .secp521r1: return "P-521"
        default: return "\(self)"
        }
    }

    /// The GnuTLS priority-string group name.
    var gnutlsName: String {
        switch self {
        case .x25519: return "GROUP-X25519"
        case .secp256r1: return "GROUP-SECP256R1"
        case .secp384r1: return "GROUP-SECP384R1"
        case .secp521r1: return "GROUP-SECP521R1"
        default: return "\(self)"
        }
    }
}

/// Small helpers, namespaced to stay clear of other test files' free functions.
enum Interop {
    /// Random bytes for echo checks.
    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Lowercase hex (for peers whose stdin is line-oriented or command-letter driven).
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A line of `count` random bytes in hex, newline-terminated.
    static func randomHexLine(_ count: Int = 32) -> String { hex(randomBytes(count)) + "\n" }

    /// Whether `needle` occurs in `haystack`.
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard needle.count <= haystack.count else { return false }
        var start = 0
        while let index = haystack[start...].firstIndex(of: needle[0]), index + needle.count <= haystack.count {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return true }
            start = index + 1
        }
        return false
    }
}

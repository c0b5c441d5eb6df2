import QuiverCore
import X509

@testable import QuiverTLS

/// Certificates generated once per test process (RSA generation is slow in debug builds).
enum TestPKI {
    struct Identity: Sendable {
        let chain: CertificateChain
        let key: PrivateKey
        var certificate: Certificate { chain.certificates[0] }
    }

    static let p256 = make(.ecdsaP256)
    static let p384 = make(.ecdsaP384)
    static let p521 = make(.ecdsaP521)
    static let ed25519 = make(.ed25519)
    static let rsa2048 = make(.rsa(bits: 2048))
    static let clientP256 = make(.ecdsaP256, names: ["client.example"])

    static func make(_ algorithm: PrivateKey.Algorithm, names: [String] = ["localhost"]) -> Identity {
        do {
            let (chain, key) = try SelfSignedCertificate.generate(names: names, algorithm: algorithm)
            return Identity(chain: chain, key: key)
        } catch {
            preconditionFailure("test certificate generation failed: \(error)")
        }
    }

    static func identity(for scheme: SignatureScheme) -> Identity {
        switch scheme {
        case .ecdsaSecp384r1SHA384: return p384
        case .ecdsaSecp521r1SHA512: return p521
        case .ed25519: return ed25519
        case .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512: return rsa2048
        default: return p256
        }
    }
}

enum Configs {
    static func server(_ identity: TestPKI.Identity = TestPKI.p256, alpn: [String] = ["echo"]) -> TLSConfiguration {
        do { return try TLSConfiguration.server(chain: identity.chain, key: identity.key, alpn: alpn) } catch {
            preconditionFailure("test server configuration: \(error)")
        }
    }

    static func client(trusting identity: TestPKI.Identity = TestPKI.p256, alpn: [String] = ["echo"]) -> TLSConfiguration {
        TLSConfiguration.client(alpn: alpn, verifier: CertificateVerifier(trustRoots: [identity.certificate]))
    }
}

/// Two ``TLSStream``s joined in memory; ``run()`` moves bytes both ways until neither has
/// anything to send. Errors are captured per side rather than thrown, so tests can check
/// which side failed with which alert.
final class StreamPair {
    let client: TLSStream
    let server: TLSStream
    private(set) var clientError: TLSError?
    private(set) var serverError: TLSError?
    /// Applied to every chunk the client sends (tampering tests).
    var clientToServer: ([UInt8]) -> [UInt8] = { $0 }
    var serverToClient: ([UInt8]) -> [UInt8] = { $0 }
    private(set) var clientEvents: [TLSEvent] = []
    private(set) var serverEvents: [TLSEvent] = []

    init(client: TLSConfiguration, server: TLSConfiguration, serverName: String? = "localhost",
         resumption: SessionTicket? = nil, earlyData: Bool = false) {
        self.client = TLSStream(client: client, serverName: serverName, resumption: resumption, attemptEarlyData: earlyData)
        self.server = TLSStream(server: server)
    }

    /// Starts the client (queues its first flight) without moving bytes.
    func start() throws {
        started = true
        try client.start()
    }

    /// Starts the client if needed and shuttles bytes until quiet (bounded).
    @discardableResult
    func run() -> Self {
        if clientError == nil && !started {
            started = true
            do { try client.start() } catch { clientError = error }
        }
        for _ in 0..<1000 {
            let c = client.takeOutgoing()
            let s = server.takeOutgoing()
            if c.isEmpty && s.isEmpty { break }
            if !c.isEmpty && serverError == nil {
                do { try server.receive(clientToServer(c)) } catch { serverError = error }
            }
            if !s.isEmpty && clientError == nil {
                do { try client.receive(serverToClient(s)) } catch { clientError = error }
            }
        }
        while let e = client.nextEvent() { clientEvents.append(e) }
        while let e = server.nextEvent() { serverEvents.append(e) }
        return self
    }
    private var started = false

    var isEstablished: Bool { client.isHandshakeComplete && server.isHandshakeComplete && clientError == nil && serverError == nil }

    var tickets: [SessionTicket] {
        clientEvents.compactMap { if case .sessionTicket(let t) = $0 { return t } else { return nil } }
    }

    /// Sends `data` from the client, echoes it through the server, and returns what the client got back.
    func echo(_ data: [UInt8]) throws -> [UInt8] {
        try client.write(data)
        run()
        let got = server.read()
        try server.write(got)
        run()
        return client.read()
    }
}

/// Drives two ``TLSHandshake``s directly at the message level (no records), with an optional
/// hook to rewrite what one side sends: the tool for tampering with individual messages.
final class HandshakePair {
    let client: TLSHandshake
    let server: TLSHandshake
    private(set) var clientError: TLSError?
    private(set) var serverError: TLSError?
    var tamperServer: (EncryptionLevel, [UInt8]) -> [UInt8] = { $1 }
    var tamperClient: (EncryptionLevel, [UInt8]) -> [UInt8] = { $1 }

    init(client: TLSHandshake, server: TLSHandshake) {
        self.client = client
        self.server = server
    }

    convenience init(client: TLSConfiguration, server: TLSConfiguration, quic: Bool = false, serverName: String? = "localhost") {
        self.init(
            client: TLSHandshake(client: client, serverName: serverName, quicTransportParameters: quic ? [1, 2, 3] : nil),
            server: TLSHandshake(server: server, quicTransportParameters: quic ? [4, 5, 6] : nil))
    }

    @discardableResult
    func run() -> Self {
        do { try client.start() } catch { clientError = error; return self }
        for _ in 0..<100 {
            var moved = false
            while let e = client.nextEvent() {
                if case .send(let level, let bytes) = e, serverError == nil {
                    moved = true
                    do { try server.receive(tamperClient(level, bytes), at: level) } catch { serverError = error }
                }
            }
            while let e = server.nextEvent() {
                if case .send(let level, let bytes) = e, clientError == nil {
                    moved = true
                    do { try client.receive(tamperServer(level, bytes), at: level) } catch { clientError = error }
                }
            }
            if !moved { break }
        }
        return self
    }
}

/// The deterministic generator of the property tests (QuiverCore's SplitMix64).
typealias SeededGenerator = SplitMix64

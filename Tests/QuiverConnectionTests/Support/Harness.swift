import QuiverCore
import QuiverNetSim
@_spi(Wire) import QuiverQUIC
import QuiverQUICSim
import QuiverTLS
import X509

/// Certificates generated once per test process.
enum TestIdentity {
    static let p256: (chain: CertificateChain, key: PrivateKey) = {
        do { return try SelfSignedCertificate.generate(names: ["localhost"], algorithm: .ecdsaP256) } catch {
            preconditionFailure("test certificate generation failed: \(error)")
        }
    }()

    static func serverTLS(alpn: [String] = ["echo"]) -> TLSConfiguration {
        do { return try TLSConfiguration.server(chain: p256.chain, key: p256.key, alpn: alpn) } catch {
            preconditionFailure("test server configuration: \(error)")
        }
    }

    static func clientTLS(alpn: [String] = ["echo"]) -> TLSConfiguration {
        TLSConfiguration.client(alpn: alpn, verifier: CertificateVerifier(trustRoots: [p256.chain.certificates[0]]))
    }
}

enum Addresses {
    static let client = SocketAddress("10.0.0.1:5000")!
    static let server = SocketAddress("10.0.0.2:4433")!
}

/// A deterministic byte pattern, different per stream, to check transfers byte for byte: a
/// fixed pseudo-random table of prime length read from a per-stream starting point, so that
/// building and checking megabytes stays cheap in debug builds.
enum Pattern {
    static let period = 65_521
    static let table: [UInt8] = {
        var rng = SplitMix64(seed: 0x5EED)
        let once = (0..<period).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        return once + once  // any window of `period` bytes is one contiguous slice
    }()

    static func bytes(_ range: Range<UInt64>, seed: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(range.count)
        var position = range.lowerBound
        while position < range.upperBound {
            let start = Int((position &+ seed &* 7919) % UInt64(period))
            let length = min(Int(range.upperBound - position), period)
            out += table[start..<(start + length)]
            position += UInt64(length)
        }
        return out
    }
}

/// Server application: echoes every stream (and datagram) back, finishing when the peer does.
final class EchoServer: ConnectionApp {
    var events: [QUICConnectionEvent] = []
    var handshakeCompleted = false

    func pump(_ connection: QUICConnection) {
        while let event = connection.nextEvent() {
            events.append(event)
            switch event {
            case .handshakeCompleted: handshakeCompleted = true
            case .streamOpened(let id), .streamReadable(let id): drain(id, connection)
            case .datagramReceived(let data): try? connection.sendDatagram(data)
            default: break
            }
        }
    }

    private func drain(_ id: StreamID, _ connection: QUICConnection) {
        while true {
            guard let (bytes, fin) = try? connection.read(from: id, maxBytes: 1 << 20) else { return }
            if !bytes.isEmpty, id.direction == .bidirectional { try? connection.write(bytes, to: id) }
            if fin {
                if id.direction == .bidirectional { try? connection.finish(id) }
                return
            }
            if bytes.isEmpty { return }
        }
    }
}

/// Server application: each stream carries an 8-byte request for N bytes; the server answers
/// with N pattern bytes, buffering at most `window` bytes at a time.
final class SourceServer: ConnectionApp {
    var handshakeCompleted = false
    private var pending: [StreamID: (sent: UInt64, total: UInt64)] = [:]
    private var requests: [StreamID: [UInt8]] = [:]
    let window: UInt64 = 1 << 20

    func pump(_ connection: QUICConnection) {
        while let event = connection.nextEvent() {
            switch event {
            case .handshakeCompleted: handshakeCompleted = true
            case .streamOpened(let id), .streamReadable(let id):
                while let (bytes, _) = try? connection.read(from: id), !bytes.isEmpty { requests[id, default: []] += bytes }
                if let request = requests[id], request.count >= 8, pending[id] == nil {
                    let total = request.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                    pending[id] = (0, total)
                }
            default: break
            }
        }
        for (id, progress) in pending where progress.sent < progress.total {
            let buffered = connection.bufferedBytes(on: id)
            guard buffered < window / 2 else { continue }
            let end = min(progress.total, progress.sent + window - buffered)
            try? connection.write(Pattern.bytes(progress.sent..<end, seed: id.rawValue), to: id)
            pending[id] = (end, progress.total)
            if end == progress.total { try? connection.finish(id) }
        }
    }
}

/// Client application: opens streams, sends each payload (or a download request), and checks
/// what comes back byte for byte.
final class TransferClient: ConnectionApp {
    enum Mode { case echo, download }
    struct Transfer {
        var size: UInt64
        var sent: UInt64 = 0
        var received: UInt64 = 0
        var finSent = false
        var finished = false
        var mismatch = false
    }

    let mode: Mode
    var transfers: [StreamID: Transfer] = [:]
    private var queued: [UInt64]
    var events: [QUICConnectionEvent] = []
    var handshakeCompleted = false
    var closeInfo: ConnectionCloseInfo?
    var errors: [String] = []
    let window: UInt64 = 1 << 20
    /// Open streams before the handshake completes (0-RTT).
    var openEarly = false

    init(mode: Mode, sizes: [UInt64]) {
        self.mode = mode
        self.queued = sizes
    }

    var isDone: Bool { queued.isEmpty && transfers.values.allSatisfy(\.finished) }
    var allCorrect: Bool { isDone && transfers.values.allSatisfy { !$0.mismatch && $0.received == $0.size } }

    func pump(_ connection: QUICConnection) {
        while let event = connection.nextEvent() {
            events.append(event)
            switch event {
            case .handshakeCompleted: handshakeCompleted = true
            case .streamReadable(let id): drain(id, connection)
            case .closed(let info): closeInfo = info
            default: break
            }
        }
        guard handshakeCompleted || openEarly else { return }
        while let size = queued.first, let id = connection.openStream(.bidirectional) {
            queued.removeFirst()
            transfers[id] = Transfer(size: size)
            if mode == .download {
                try? connection.write((0..<8).map { UInt8(truncatingIfNeeded: size >> (56 - 8 * $0)) }, to: id)
                try? connection.finish(id)
            }
        }
        guard mode == .echo else { return }
        for (id, transfer) in transfers where !transfer.finSent {
            let buffered = connection.bufferedBytes(on: id)
            guard buffered < window / 2 else { continue }
            let end = min(transfer.size, transfer.sent + window - buffered)
            do {
                if end > transfer.sent { try connection.write(Pattern.bytes(transfer.sent..<end, seed: id.rawValue), to: id) }
                transfers[id]?.sent = end
                if end == transfer.size {
                    try connection.finish(id)
                    transfers[id]?.finSent = true
                }
            } catch {
                errors.append("write \(id): \(error)")
            }
        }
    }

    private func drain(_ id: StreamID, _ connection: QUICConnection) {
        while true {
            let bytes: [UInt8]
            let fin: Bool
            do {
                (bytes, fin) = try connection.read(from: id, maxBytes: 1 << 20)
            } catch {
                errors.append("read \(id): \(error)")
                transfers[id]?.finished = true
                transfers[id]?.mismatch = true
                return
            }
            guard var transfer = transfers[id] else { return }
            if bytes != Pattern.bytes(transfer.received..<(transfer.received + UInt64(bytes.count)), seed: id.rawValue) {
                transfer.mismatch = true
            }
            transfer.received += UInt64(bytes.count)
            if fin { transfer.finished = true }
            transfers[id] = transfer
            if fin || bytes.isEmpty { return }
        }
    }
}

/// A client and a server on a simulated network.
final class Scenario {
    let net: NetworkSimulator
    let clientNode: SimulatedQUICNode
    let serverNode: SimulatedQUICNode
    let client: TransferClient
    let serverConfiguration: QUICConfiguration

    init(seed: UInt64, link: LinkConfiguration = LinkConfiguration(), clientConfiguration: QUICConfiguration? = nil,
         serverConfiguration: QUICConfiguration? = nil, app client: TransferClient, server serverApp: any ConnectionApp = EchoServer(),
         resumption: QUICResumptionTicket? = nil, earlyData: Bool = false, token: [UInt8] = [],
         serverFactory: ((QUICConfiguration, SimulatedQUICNode, SimulatedDatagram, Instant) -> QUICConnection?)? = nil) throws {
        net = NetworkSimulator(seed: seed)
        net.defaultLink = link
        let clientConfig = clientConfiguration ?? QUICConfiguration(tls: TestIdentity.clientTLS())
        let serverConfig = serverConfiguration ?? QUICConfiguration(tls: TestIdentity.serverTLS())
        self.serverConfiguration = serverConfig
        self.client = client
        let connection = try QUICConnection(client: clientConfig, serverName: "localhost", remoteAddress: Addresses.server,
                                            token: token, resumption: resumption, attemptEarlyData: earlyData, now: net.now)
        clientNode = SimulatedQUICNode(client: connection, address: Addresses.client, app: client)
        serverNode = SimulatedQUICNode(serverAt: Addresses.server, app: serverApp) { node, datagram, now in
            if let serverFactory { return serverFactory(serverConfig, node, datagram, now) }
            guard datagram.bytes.count >= 1200 else { return nil }
            return try? QUICConnection(server: serverConfig, datagram: datagram.bytes, remoteAddress: datagram.source,
                                       localAddress: node.localAddress(of: datagram), ecn: datagram.ecn, now: now)
        }
        net.attach(clientNode)
        net.attach(serverNode)
        client.pump(connection)
    }

    var clientConnection: QUICConnection { clientNode.connection! }
    var serverConnection: QUICConnection? { serverNode.connection }

    /// Runs until the client's transfers are done (or the connection closed).
    func run(timeLimit: Duration = .seconds(120)) throws {
        try net.run(until: { [client, clientNode] in
            client.isDone || clientNode.connection?.state == .closed || client.closeInfo != nil
        }, timeLimit: timeLimit)
    }
}

// The CPU cost of the QUIC engine: one download through the deterministic network simulator
// (client and server connections, packet protection, recovery, congestion control, streams)
// in one process, reported in MB of application data per CPU-second.
//
// Run: swift run -c release --package-path Benchmarks quic-sim-bench [megabytes] [streams]
//
// `quic-sim-bench cc-matrix [algorithm]` instead measures goodput of the congestion
// controllers over the simulator (issue 20): see CongestionMatrix.swift.
#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverNetSim
@_spi(Wire) import QuiverQUIC
import QuiverQUICSim
import QuiverTLS

/// Serves, on each stream the client opens, the number of bytes it asks for (8-byte request),
/// keeping up to `bufferLimit` bytes written but not yet acknowledged on each.
final class Source: ConnectionApp {
    private var remaining: [StreamID: UInt64] = [:]
    private var request: [StreamID: [UInt8]] = [:]
    private let chunk = [UInt8](repeating: 0x5a, count: 64 << 10)
    private let bufferLimit: Int

    init(bufferLimit: Int = 1 << 20) { self.bufferLimit = bufferLimit }

    func pump(_ connection: QUICConnection) {
        while let event = connection.nextEvent() {
            guard case .streamReadable(let id) = event else { continue }
            while let (bytes, _) = try? connection.read(from: id), !bytes.isEmpty { request[id, default: []] += bytes }
            if remaining[id] == nil, let r = request[id], r.count >= 8 {
                remaining[id] = r.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
            }
        }
        for (id, left) in remaining where left > 0 {
            var left = left
            while left > 0, connection.bufferedBytes(on: id) < bufferLimit {
                let n = Int(min(left, UInt64(chunk.count)))
                try? connection.write(n == chunk.count ? chunk : Array(chunk.prefix(n)), to: id)
                left -= UInt64(n)
            }
            remaining[id] = left
            if left == 0 { try? connection.finish(id) }
        }
    }
}

/// Asks each stream for `size` bytes and counts what arrives.
final class Sink: ConnectionApp {
    let size: UInt64
    let streams: Int
    var opened = false
    var received: UInt64 = 0
    var finished = 0

    init(size: UInt64, streams: Int) {
        self.size = size
        self.streams = streams
    }

    func pump(_ connection: QUICConnection) {
        while let event = connection.nextEvent() {
            guard case .streamReadable(let id) = event else { continue }
            while let (bytes, fin) = try? connection.read(from: id) {
                received += UInt64(bytes.count)
                if fin { finished += 1 }
                if bytes.isEmpty || fin { break }
            }
        }
        guard !opened, connection.state == .established else { return }
        opened = true
        for _ in 0..<streams {
            guard let id = connection.openStream() else { break }
            try? connection.write((0..<8).map { UInt8(truncatingIfNeeded: size >> (56 - 8 * $0)) }, to: id)
            try? connection.finish(id)
        }
    }
}

/// Connects a client (with `sink`) to a server (with a ``Source``) on `net`, both attached:
/// the download starts as the simulation runs. Returns the client's connection.
func startDownload(on net: NetworkSimulator, client clientConfig: QUICConfiguration, server serverConfig: QUICConfiguration,
                   sink: Sink, source: Source = Source()) throws -> QUICConnection {
    let clientAddress = SocketAddress("10.0.0.1:5000")!
    let serverAddress = SocketAddress("10.0.0.2:4433")!
    let client = try QUICConnection(client: clientConfig, serverName: "localhost", remoteAddress: serverAddress, now: net.now)
    net.attach(SimulatedQUICNode(client: client, address: clientAddress, app: sink))
    net.attach(SimulatedQUICNode(serverAt: serverAddress, app: source) { _, datagram, now in
        try? QUICConnection(server: serverConfig, datagram: datagram.bytes, remoteAddress: datagram.source, now: now)
    })
    return client
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

if CommandLine.arguments.dropFirst().first == "cc-matrix" {
    try congestionMatrix(filter: CommandLine.arguments.dropFirst(2).first)
    exit(0)
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let megabytes = arguments.first ?? 50
let streamCount = arguments.dropFirst().first ?? 1
let total = UInt64(megabytes) * 1_000_000
let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"], algorithm: .ecdsaP256)
let serverConfig = QUICConfiguration(tls: try .server(chain: chain, key: key, alpn: ["bench"]))
let clientConfig = QUICConfiguration(tls: .client(alpn: ["bench"], verifier: CertificateVerifier(trustRoots: [chain.certificates[0]])))

let net = NetworkSimulator(seed: 1)
net.defaultLink.latency = .milliseconds(5)
net.defaultLink.bandwidth = 1_000_000_000
net.defaultLink.queueLimit = 1 << 20
let sink = Sink(size: total / UInt64(streamCount), streams: streamCount)
let start = cpuSeconds()
let client = try startDownload(on: net, client: clientConfig, server: serverConfig, sink: sink)
let virtualStart = net.now
try net.run(until: { sink.finished == streamCount }, timeLimit: .seconds(3600))
let cpu = cpuSeconds() - start
let mb = Double(sink.received) / 1e6
print("quic-sim-bench: \(megabytes) MB on \(streamCount) stream(s) through the simulator (1 Gbit/s, 5 ms one way)")
print("  received \(sink.received) bytes in \(net.now - virtualStart) of virtual time")
print("  CPU \(String(format: "%.2f", cpu)) s (client + server + simulator) → \(String(format: "%.1f", mb / cpu)) MB per CPU-second")
print("  client: \(client.statistics)")

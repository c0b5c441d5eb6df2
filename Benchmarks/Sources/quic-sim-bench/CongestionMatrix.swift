// Goodput of NewReno, CUBIC and BBR over the deterministic network simulator (issue 20):
// RTT {10, 50, 200} ms × random loss {0, 1, 5} % × bottleneck {10, 100, 1000} Mbit/s.
//
// Each cell is one download on one stream from a Quiver server to a Quiver client, both
// running the algorithm under test, through a link of that rate in each direction with
// half the RTT of latency each way, a drop-tail queue of one bandwidth-delay product (at
// least 8 datagrams) and the loss rate applied independently to every datagram in both
// directions (ACKs included). The transfer is 10 MB at 10 Mbit/s, 50 MB at 100 Mbit/s and
// 200 MB at 1 Gbit/s, with receive windows that may grow to 64 MiB and the whole transfer
// written at once: neither flow control nor the application is the limit. Goodput is
// application bytes over the virtual time from the client's first datagram to the last
// byte, so the handshake and Startup count, as they do for a real transfer of that size.
// A cell that has not finished after 600 s of virtual time reports what arrived by then,
// marked "*". Seeds are fixed: every run prints the same table.
//
// Output: a Markdown table (goodput in Mbit/s, and as a share of the link), then the same
// figures as CSV lines prefixed "csv," for Scripts/congestion-matrix-svg.py.
import QuiverCore
import QuiverNetSim
@_spi(Wire) import QuiverQUIC
import QuiverQUICSim
import QuiverTLS

struct MatrixCell {
    var rttMilliseconds: Int
    var lossPercent: Int
    var megabitsPerSecond: Int
}

struct MatrixResult {
    var goodput: Double  // Mbit/s
    var finished: Bool
}

func runCell(_ cell: MatrixCell, algorithm: CongestionAlgorithm, chain: CertificateChain, key: PrivateKey) throws -> MatrixResult {
    let megabytes = switch cell.megabitsPerSecond {
    case ..<50: 10
    case ..<500: 50
    default: 200
    }
    // Neither the receive windows nor the sender's buffer may be the limit: 64 MiB is more
    // than twice the largest BDP (25 MB at 1 Gbit/s and 200 ms).
    let windows = StreamWindowLimits(maxStreamWindow: 64 << 20, maxConnectionWindow: 96 << 20)
    var serverConfig = QUICConfiguration(tls: try .server(chain: chain, key: key, alpn: ["bench"]))
    serverConfig.congestionAlgorithm = algorithm
    serverConfig.streamWindows = windows
    var clientConfig = QUICConfiguration(tls: .client(alpn: ["bench"], verifier: CertificateVerifier(trustRoots: [chain.certificates[0]])))
    clientConfig.congestionAlgorithm = algorithm
    clientConfig.streamWindows = windows
    let net = NetworkSimulator(seed: UInt64(cell.rttMilliseconds * 10_000 + cell.lossPercent * 100 + cell.megabitsPerSecond))
    let bytesPerSecond = cell.megabitsPerSecond * 125_000
    net.defaultLink.latency = .milliseconds(cell.rttMilliseconds / 2)
    net.defaultLink.bandwidth = UInt64(cell.megabitsPerSecond) * 1_000_000
    net.defaultLink.queueLimit = max(bytesPerSecond * cell.rttMilliseconds / 1000, 8 * 1500)
    net.defaultLink.lossRate = Double(cell.lossPercent) / 100
    let sink = Sink(size: UInt64(megabytes) * 1_000_000, streams: 1)
    let client = try startDownload(on: net, client: clientConfig, server: serverConfig, sink: sink, source: Source(bufferLimit: 64 << 20))
    let start = net.now
    let limit = Duration.seconds(600)
    do {
        try net.run(until: { sink.finished == 1 || client.state == .closed }, timeLimit: limit, stepLimit: .max)
    } catch {
        // The time limit: report what arrived.
    }
    let elapsed = Double((net.now - start).nanosecondsClamped) / 1e9
    return MatrixResult(goodput: elapsed > 0 ? Double(sink.received) * 8 / elapsed / 1e6 : 0, finished: sink.finished == 1)
}

func congestionMatrix(filter: String?) throws {
    let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"], algorithm: .ecdsaP256)
    let algorithms: [(String, CongestionAlgorithm)] = [("NewReno", .newReno), ("CUBIC", .cubic), ("BBR", .bbr)]
        .filter { filter == nil || $0.0.lowercased() == filter!.lowercased() }
    print("| RTT (ms) | loss (%) | link (Mbit/s) | " + algorithms.map { "\($0.0) (Mbit/s)" }.joined(separator: " | ") + " | "
          + algorithms.map { "\($0.0) (% of link)" }.joined(separator: " | ") + " |")
    print("|---:|---:|---:|" + String(repeating: "---:|", count: 2 * algorithms.count))
    var csv: [String] = []
    for megabits in [10, 100, 1000] {
        for rtt in [10, 50, 200] {
            for loss in [0, 1, 5] {
                let cell = MatrixCell(rttMilliseconds: rtt, lossPercent: loss, megabitsPerSecond: megabits)
                var results: [MatrixResult] = []
                for (name, algorithm) in algorithms {
                    let result = try runCell(cell, algorithm: algorithm, chain: chain, key: key)
                    results.append(result)
                    csv.append("csv,\(rtt),\(loss),\(megabits),\(name),\(String(format: "%.3f", result.goodput)),\(result.finished ? 1 : 0)")
                }
                let rates = results.map { String(format: "%.2f", $0.goodput) + ($0.finished ? "" : "*") }
                let shares = results.map { String(format: "%.0f", 100 * $0.goodput / Double(megabits)) }
                print("| \(rtt) | \(loss) | \(megabits) | " + rates.joined(separator: " | ") + " | " + shares.joined(separator: " | ") + " |")
            }
        }
    }
    for line in csv { print(line) }
}

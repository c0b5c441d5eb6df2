import Foundation
import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverTLS
import Testing

/// Randomized faults: every seed picks loss, burst loss, reordering, duplication and
/// corruption rates, then runs a handshake and transfers. The run must finish with exact data
/// and without hanging. `QUIVER_SOAK_SEEDS=N` runs N seeds instead of the CI's 200.
@Suite("Connection: randomized fault matrix")
struct FaultMatrixTests {
    static var seedCount: Int {
        ProcessInfo.processInfo.environment["QUIVER_SOAK_SEEDS"].flatMap(Int.init) ?? 200
    }

    static func link(seed: UInt64) -> LinkConfiguration {
        var rng = SplitMix64(seed: seed)
        var link = LinkConfiguration()
        link.latency = .milliseconds(Int64(1 + rng.next() % 80))
        link.lossRate = rng.nextDouble() * 0.30
        if rng.next() % 4 == 0 { link.burstLoss = (0.02, 0.5) }
        link.reorderRate = rng.nextDouble() * 0.2
        link.reorderDelay = .milliseconds(Int64(1 + rng.next() % 20))
        link.duplicateRate = rng.nextDouble() * 0.1
        link.corruptRate = rng.nextDouble() * 0.05
        if rng.next() % 2 == 0 { link.bandwidth = 5_000_000 + rng.next() % 50_000_000 }
        return link
    }

    @Test("200 seeds of loss, reordering, duplication and corruption")
    func matrix() throws {
        var failures: [String] = []
        // Seeds whose link dropped everything one side sent (three datagrams or more) for a
        // whole idle timeout: the idle timeout closing the connection is then right
        // (RFC 9000 §10.1), not a failure. A side that stopped sending does not count.
        var silenced: [String] = []
        for seed in 0..<UInt64(Self.seedCount) {
            let link = Self.link(seed: seed)
            let sizes: [UInt64] = [UInt64(seed % 7) * 10_000, 30_000, 1]
            let client = TransferClient(mode: .echo, sizes: sizes)
            let scenario = try Scenario(seed: seed, link: link, app: client)
            // Invariant (RFC 9000 §8.1): before the client's address is validated the server
            // sends at most three times what it received.
            var received = 0
            var sent = 0
            // Per direction (0 to the server, 1 to the client): the last delivery, the drops
            // since, and the longest stretch of three or more drops with nothing delivered.
            var lastDelivered = [scenario.net.now, scenario.net.now]
            var dropsSince = [0, 0]
            var longestSilence: Duration = .zero
            scenario.net.observers.append { [serverNode = scenario.serverNode] datagram, event, now in
                let direction = datagram.destination == Addresses.server ? 0 : 1
                if case .dropped = event { dropsSince[direction] += 1 }
                if event == .delivered {
                    if dropsSince[direction] >= 3 { longestSilence = max(longestSilence, now - lastDelivered[direction]) }
                    lastDelivered[direction] = now
                    dropsSince[direction] = 0
                }
                if datagram.destination == Addresses.server, event == .delivered { received += datagram.bytes.count }
                guard let server = serverNode.connection, !server.paths.current.isValidated else { return }
                if datagram.source == Addresses.server, event == .sent {
                    sent += datagram.bytes.count
                    if sent > 3 * received { failures.append("seed \(seed): amplification \(sent) > 3 × \(received)") }
                }
            }
            do {
                try scenario.run(timeLimit: .seconds(300))
            } catch {
                failures.append("seed \(seed): \(error)")
                continue
            }
            for direction in 0..<2 where dropsSince[direction] >= 3 {
                longestSilence = max(longestSilence, scenario.net.now - lastDelivered[direction])
            }
            let silence = longestSilence
            if !client.allCorrect, client.closeInfo?.origin == .idleTimeout, silence >= scenario.serverConfiguration.idleTimeout {
                silenced.append("seed \(seed): every datagram one way dropped for \(silence)")
            } else if !client.allCorrect {
                failures.append("seed \(seed): loss \(link.lossRate) done \(client.isDone) errors \(client.errors) close \(String(describing: client.closeInfo)) state \(scenario.clientConnection.state)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) seeds failed:\n\(failures.prefix(20).joined(separator: "\n"))")
        // A burst that outlasts the idle timeout takes a long streak of drops: rare, or the
        // matrix no longer tests recovery.
        #expect(silenced.count <= Self.seedCount / 50, "\(silenced)")
        if !silenced.isEmpty { print("fault matrix: idle timeouts after a silent link, as they should be: \(silenced)") }
    }
}

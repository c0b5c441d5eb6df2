import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import Synchronization
import Testing

/// The latency spin bit (RFC 9000 §17.4).
@Suite("Spin bit")
struct SpinBitTests {
    /// Deterministic randomness for a configuration.
    static func seeded(_ seed: UInt64) -> RandomSource {
        let generator = Mutex(SplitMix64(seed: seed))
        return RandomSource { buffer in
            generator.withLock { generator in
                for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
            }
        }
    }

    @Test("the server reflects the bit it receives, the client inverts it; off, received bits change nothing")
    func reflectAndInvert() {
        var server = SpinBit(allowed: true, random: Self.seeded(1))
        var client = SpinBit(allowed: true, random: Self.seeded(1))
        #expect(server.isEnabled && client.isEnabled)
        #expect(!server.sentValue && !client.sentValue)  // §17.4: initialized to 0
        let clientSpun = client.received(false, as: .client)  // the server's 0 arrives: the client spins to 1
        #expect(clientSpun && client.sentValue)
        let serverReflected = server.received(true, as: .server)  // the client's 1 arrives: the server reflects it
        #expect(serverReflected && server.sentValue)
        let again = server.received(true, as: .server)  // the same value again: no change
        #expect(!again)
        var off = SpinBit(allowed: false, random: Self.seeded(1))
        let value = off.sentValue
        #expect(!off.isEnabled)
        let changed = off.received(!value, as: .client)
        #expect(!changed && off.sentValue == value)
    }

    @Test("a new connection ID resets the value to 0; off, it draws a new random value")
    func connectionIDChange() {
        var spin = SpinBit(allowed: true, random: Self.seeded(1))
        _ = spin.received(false, as: .client)
        let before = spin.value(forConnectionID: 0, random: Self.seeded(2))
        let after = spin.value(forConnectionID: 1, random: Self.seeded(2))
        #expect(before && !after)
        var values: Set<Bool> = []
        let random = Self.seeded(3)
        var off = SpinBit(allowed: false, random: random)
        for sequence in 1...64 as ClosedRange<UInt64> { values.insert(off.value(forConnectionID: sequence, random: random)) }
        #expect(values == [false, true])
    }

    @Test("allowed, the spin bit is still off on about one path in eight (§17.4: at least one in sixteen); not allowed, on none")
    func randomDisabling() {
        let random = Self.seeded(4)
        let paths = 8000
        let disabled = (0..<paths).filter { _ in !SpinBit(allowed: true, random: random).isEnabled }.count
        #expect(disabled > paths / 10 && disabled < paths / 6, "\(disabled) of \(paths)")  // expected 1000
        #expect((0..<100).allSatisfy { _ in !SpinBit(allowed: false, random: random).isEnabled })
    }

    /// The client's 1-RTT packets of a download over a 50 ms round trip: (time, spin bit);
    /// with `spinBit`, from the first seed whose draws leave it on at both ends (seven in eight
    /// do at each).
    private static func clientSpin(spinBit: Bool) throws -> (bits: [(time: Double, bit: Bool)], updates: Int, enabled: Bool) {
        for seed in 1...20 as ClosedRange<UInt64> {
            let sinks = QLogSinks()
            var clientConfig = QUICConfiguration(tls: TestIdentity.clientTLS())
            clientConfig.spinBit = spinBit
            clientConfig.qlog = sinks.destination
            clientConfig.random = Self.seeded(seed)
            var serverConfig = QUICConfiguration(tls: TestIdentity.serverTLS())
            serverConfig.spinBit = spinBit
            serverConfig.random = Self.seeded(seed + 1000)
            var link = LinkConfiguration()
            link.latency = .milliseconds(25)
            link.bandwidth = 50_000_000
            let client = TransferClient(mode: .download, sizes: [3_000_000])
            let scenario = try Scenario(seed: 1, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                        app: client, server: SourceServer())
            try scenario.run(timeLimit: .seconds(30))
            #expect(client.allCorrect)
            let enabled = scenario.clientConnection.spin.isEnabled && scenario.serverConnection?.spin.isEnabled == true
            if spinBit && !enabled { continue }
            let trace = QLogTraceFile(try #require(sinks.sinks(.client).first).bytes)
            #expect(trace.problems.isEmpty)
            let bits = trace.events("quic:packet_sent").compactMap { event -> (Double, Bool)? in
                guard let header = event.data["header"] as? [String: Any], header["packet_type"] as? String == "1RTT",
                      let bit = header["spin_bit"] as? Bool else { return nil }
                return (event.time, bit)
            }
            return (bits, trace.events("quic:spin_bit_updated").count, enabled)
        }
        Issue.record("no seed left the spin bit on")
        return ([], 0, false)
    }

    @Test("enabled, the client's spin bit flips once per round trip (50 ms here)")
    func spinsOncePerRTT() throws {
        let (bits, updates, enabled) = try Self.clientSpin(spinBit: true)
        #expect(enabled)
        var flips: [Double] = []
        for index in bits.indices.dropFirst() where bits[index].bit != bits[index - 1].bit { flips.append(bits[index].time) }
        #expect(flips.count > 10, "\(flips.count) flips in \(bits.count) packets")
        #expect(updates == flips.count)
        // A flip needs the server to see the last one and the client to see its echo: one round
        // trip at least (plus serialization), and no more than a round trip plus ACK delays.
        let intervals = zip(flips.dropFirst(), flips).map { $0 - $1 }
        #expect(intervals.allSatisfy { $0 >= 50 && $0 < 100 }, "\(intervals)")
    }

    @Test("disabled, the bit never changes and nothing spins")
    func disabled() throws {
        let (bits, updates, enabled) = try Self.clientSpin(spinBit: false)
        #expect(!enabled)
        #expect(bits.count > 100)
        #expect(Set(bits.map(\.bit)).count == 1)
        #expect(updates == 0)
    }
}

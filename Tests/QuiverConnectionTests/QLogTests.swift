import Foundation
import QuiverCore
import QuiverNetSim
@_spi(Wire) @testable import QuiverQUIC
import QuiverTestSupport
import Synchronization
import Testing

/// qlog (draft-ietf-quic-qlog-main-schema, draft-ietf-quic-qlog-quic-events): connections on
/// the simulated network write traces that parse, conform to the schema and say what happened.
@Suite("qlog")
struct QLogTests {
    /// A client and a server logging into `sinks`.
    private static func configurations(_ sinks: QLogSinks) -> (client: QUICConfiguration, server: QUICConfiguration) {
        var client = QUICConfiguration(tls: TestIdentity.clientTLS())
        var server = QUICConfiguration(tls: TestIdentity.serverTLS())
        client.qlog = sinks.destination
        server.qlog = sinks.destination
        return (client, server)
    }

    /// Closes the client, runs until both connections are closed and releases them, so every
    /// trace is complete.
    private static func finish(_ scenario: Scenario) throws {
        scenario.clientConnection.close()
        try scenario.net.run(until: {
            scenario.clientConnection.state == .closed && scenario.serverConnection?.state ?? .closed == .closed
        }, timeLimit: .seconds(10))
    }

    @Test("an echo over the simulator: both traces conform, and count exactly the packets each side sent and received")
    func echoTrace() throws {
        let sinks = QLogSinks()
        let (clientConfig, serverConfig) = Self.configurations(sinks)
        let client = TransferClient(mode: .echo, sizes: [100_000, 5000])
        let scenario = try Scenario(seed: 11, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run(timeLimit: .seconds(30))
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        // The app is done once it read the echo; the last ACKs that let each side forget the
        // streams (so that the traces log them closed) may still be on their way.
        try scenario.net.run(until: { scenario.clientConnection.streams.streamCount == 0 && server.streams.streamCount == 0 },
                             timeLimit: .seconds(2))
        try Self.finish(scenario)

        for (role, connection) in [(Role.client, scenario.clientConnection), (.server, server)] {
            let sink = try #require(sinks.sinks(role).first)
            #expect(sinks.sinks(role).count == 1)
            let trace = QLogTraceFile(sink.bytes)
            #expect(trace.problems.isEmpty, "\(role): \(trace.problems.prefix(10))")
            let header = try #require(trace.header["trace"] as? [String: Any])
            #expect((header["vantage_point"] as? [String: Any])?["type"] as? String == (role == .client ? "client" : "server"))
            let common = try #require(header["common_fields"] as? [String: Any])
            #expect(common["group_id"] as? String == connection.originalDestinationConnectionID.description)
            #expect(header["event_schemas"] as? [String] == ["urn:ietf:params:qlog:events:quic-13"])

            #expect(trace.events.first?.name == "quic:connection_started")
            #expect(trace.events("quic:packet_sent").count == connection.statistics.packetsSent)
            #expect(trace.events("quic:packet_received").count == connection.statistics.packetsReceived)
            let initiators = trace.events("quic:parameters_set").compactMap { $0.data["initiator"] as? String }
            #expect(initiators == ["local", "remote"])
            let states = trace.events("quic:connection_state_updated").compactMap { $0.data["new"] as? String }
            #expect(states.first == "handshake_complete" || states.first == "handshake_confirmed", "\(states)")
            #expect(states.contains("handshake_confirmed"))
            #expect(states.last == "closed")
            let closed = trace.events("quic:connection_closed")
            #expect(closed.count == 1)
            #expect(closed.first?.data["initiator"] as? String == (role == .client ? "local" : "remote"))
            #expect(closed.first?.data["trigger"] as? String == "application")
            let metrics = trace.events("quic:recovery_metrics_updated")
            for name in ["smoothed_rtt", "min_rtt", "latest_rtt", "rtt_variance", "congestion_window", "bytes_in_flight"] {
                #expect(metrics.contains { $0.data[name] != nil }, "\(role): no \(name)")
            }
            // The simulated link's round trip is 20 ms.
            let smoothed = metrics.compactMap { QLogTraceFile.number($0.data["smoothed_rtt"]) }
            #expect(smoothed.allSatisfy { $0 >= 20 && $0 < 400 }, "\(smoothed)")
            #expect(trace.events("quic:congestion_state_updated").first?.data["new"] as? String == "slow_start")
            #expect(trace.events("quic:alpn_information").first.map { ($0.data["chosen_alpn"] as? [String: Any])?["string_value"] as? String } == "echo")
            // Streams: the client opened two bidirectional streams, the server saw them opened.
            let opened = trace.events("quic:stream_state_updated").filter { $0.data["new"] as? String == "open" }
            #expect(opened.count == 4)  // two streams, two sides each
            #expect(opened.allSatisfy { $0.data["trigger"] as? String == (role == .client ? "local" : "remote") })
            // Both were done with (data sent, acknowledged and read both ways) and forgotten.
            let closedStreams = trace.events("quic:stream_state_updated").filter { $0.data["new"] as? String == "closed" }
            #expect(Set(closedStreams.compactMap { QLogTraceFile.integer($0.data["stream_id"]) }) == [0, 4], "\(role)")
            #expect(closedStreams.count == 4, "\(role)")
            // Frames summarized: stream data both ways, ACKs, the handshake's CRYPTO frames.
            let sentFrames = trace.events("quic:packet_sent").flatMap { $0.data["frames"] as? [[String: Any]] ?? [] }
            let receivedFrames = trace.events("quic:packet_received").flatMap { $0.data["frames"] as? [[String: Any]] ?? [] }
            for frames in [sentFrames, receivedFrames] {
                let types = Set(frames.compactMap { $0["frame_type"] as? String })
                #expect(types.isSuperset(of: ["crypto", "ack", "stream"]), "\(role): \(types)")
            }
            #expect(receivedFrames.contains { $0["frame_type"] as? String == "connection_close" } == (role == .server))
            #expect(sentFrames.contains { $0["frame_type"] as? String == "connection_close" } == (role == .client))
            // The Initial and Handshake keys were discarded, each direction's.
            let discarded = trace.events("quic:key_discarded").compactMap { $0.data["key_type"] as? String }
            #expect(Set(discarded) == ["client_initial_secret", "server_initial_secret", "client_handshake_secret", "server_handshake_secret"])
            #expect(discarded.count == 4)
        }
    }

    @Test("ECN: each side logs its validation from testing to capable")
    func ecnStates() throws {
        let sinks = QLogSinks()
        let (clientConfig, serverConfig) = Self.configurations(sinks)
        let client = TransferClient(mode: .echo, sizes: [60_000])
        let scenario = try Scenario(seed: 13, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run(timeLimit: .seconds(30))
        #expect(client.allCorrect)
        try Self.finish(scenario)
        for role in [Role.client, .server] {
            let trace = QLogTraceFile(try #require(sinks.sinks(role).first).bytes)
            #expect(trace.problems.isEmpty, "\(role): \(trace.problems.prefix(10))")
            let states = trace.events("quic:ecn_state_updated").map { "\($0.data["old"] as? String ?? "-")→\($0.data["new"] as? String ?? "?")" }
            #expect(states == ["testing→unknown", "unknown→capable"] || states == ["testing→capable"], "\(role): \(states)")
        }
    }

    @Test("a link that duplicates and corrupts: each dropped packet is logged with its trigger, as many as the statistics count")
    func droppedPackets() throws {
        let sinks = QLogSinks()
        let (clientConfig, serverConfig) = Self.configurations(sinks)
        var link = LinkConfiguration()
        link.duplicateRate = 0.05
        link.corruptRate = 0.03
        let client = TransferClient(mode: .echo, sizes: [300_000])
        let scenario = try Scenario(seed: 17, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run(timeLimit: .seconds(60))
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        try Self.finish(scenario)
        for (role, connection) in [(Role.client, scenario.clientConnection), (.server, server)] {
            let trace = QLogTraceFile(try #require(sinks.sinks(role).first).bytes)
            #expect(trace.problems.isEmpty, "\(role): \(trace.problems.prefix(10))")
            let dropped = trace.events("quic:packet_dropped")
            #expect(dropped.count == connection.statistics.packetsDropped, "\(role)")
            let triggers = Set(dropped.compactMap { $0.data["trigger"] as? String })
            // Duplicates are dropped after decryption; a flipped bit fails it (or, in the
            // header, names a connection ID that is not ours).
            #expect(triggers.isSuperset(of: ["duplicate", "decryption_failure"]), "\(role): \(triggers)")
            #expect(triggers.isSubset(of: ["duplicate", "decryption_failure", "connection_unknown", "key_unavailable", "unsupported"]),
                    "\(role): \(triggers)")
            #expect(dropped.allSatisfy { QLogTraceFile.integer(($0.data["raw"] as? [String: Any])?["length"]).map { $0 > 0 } == true })
        }
    }

    @Test("a lossy download: the server logs each lost packet, its recovery and its metrics")
    func lossTrace() throws {
        let sinks = QLogSinks()
        let (clientConfig, serverConfig) = Self.configurations(sinks)
        var link = LinkConfiguration()
        link.lossRate = 0.03
        let client = TransferClient(mode: .download, sizes: [600_000])
        let scenario = try Scenario(seed: 5, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: client, server: SourceServer())
        try scenario.run(timeLimit: .seconds(60))
        #expect(client.allCorrect)
        let server = try #require(scenario.serverConnection)
        try Self.finish(scenario)
        let trace = QLogTraceFile(try #require(sinks.sinks(.server).first).bytes)
        #expect(trace.problems.isEmpty, "\(trace.problems.prefix(10))")
        let lost = trace.events("quic:packet_lost")
        #expect(server.statistics.packetsLost > 0)
        #expect(lost.count == server.statistics.packetsLost + server.statistics.mtuProbesLost)
        // Each lost packet is one that was sent.
        func packet(_ event: QLogTraceFile.Event) -> String? {
            guard let header = event.data["header"] as? [String: Any], let type = header["packet_type"] as? String,
                  let number = QLogTraceFile.integer(header["packet_number"]) else { return nil }
            return "\(type == "0RTT" ? "1RTT" : type) \(number)"
        }
        let sent = Set(trace.events("quic:packet_sent").compactMap(packet))
        #expect(Set(lost.compactMap(packet)).isSubset(of: sent))
        let congestion = trace.events("quic:congestion_state_updated").compactMap { $0.data["new"] as? String }
        #expect(congestion.contains("recovery"), "\(congestion)")
        #expect(trace.events("quic:recovery_metrics_updated").contains { $0.data["ssthresh"] != nil })
    }

    @Test("key updates: key_updated for each direction's 1-RTT secret with the key phase")
    func keyUpdates() throws {
        let sinks = QLogSinks()
        var (clientConfig, serverConfig) = Self.configurations(sinks)
        clientConfig.keyUpdateInterval = 100
        let client = TransferClient(mode: .echo, sizes: [400_000])
        let scenario = try Scenario(seed: 4, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario.run(timeLimit: .seconds(30))
        #expect(client.allCorrect)
        let updates = scenario.clientConnection.keyUpdateCount
        #expect(updates >= 2)
        try Self.finish(scenario)
        let trace = QLogTraceFile(try #require(sinks.sinks(.client).first).bytes)
        #expect(trace.problems.isEmpty)
        let phases = trace.events("quic:key_updated").compactMap { QLogTraceFile.integer($0.data["key_phase"]) }
        #expect(phases == (1...UInt64(updates)).flatMap { [$0, $0] })
    }

    @Test("a directory destination: one file per connection, <odcid>_<role>.sqlog, parsing as the memory sink's")
    func directoryTrace() throws {
        let directory = try TemporaryDirectory()
        var clientConfig = QUICConfiguration(tls: TestIdentity.clientTLS())
        var serverConfig = QUICConfiguration(tls: TestIdentity.serverTLS())
        clientConfig.qlog = .directory(directory.path)
        serverConfig.qlog = .directory(directory.path + "/")
        let client = TransferClient(mode: .echo, sizes: [3000])
        var scenario: Scenario? = try Scenario(seed: 2, clientConfiguration: clientConfig, serverConfiguration: serverConfig, app: client)
        try scenario!.run(timeLimit: .seconds(30))
        let odcid = scenario!.clientConnection.originalDestinationConnectionID.description
        scenario = nil  // releasing the connections flushes and closes their files
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["\(odcid)_client.sqlog", "\(odcid)_server.sqlog"])
        for name in names {
            let bytes = try #require(FileManager.default.contents(atPath: directory.path + "/" + name))
            let trace = QLogTraceFile(Array(bytes))
            #expect(trace.problems.isEmpty, "\(name): \(trace.problems.prefix(10))")
            #expect(trace.events("quic:packet_sent").count > 3)
            let attributes = try FileManager.default.attributesOfItem(atPath: directory.path + "/" + name)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
    }

    @Test("without qlog a connection holds no writer; a sink the factory declines leaves the connection unlogged")
    func disabled() throws {
        var configuration = QUICConfiguration(tls: TestIdentity.clientTLS())
        var connection = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: Addresses.server, now: Instant(nanoseconds: 0))
        #expect(connection.qlog == nil)
        let asked = Mutex(0)
        configuration.qlog = .custom { _ in
            asked.withLock { $0 += 1 }
            return nil
        }
        connection = try QUICConnection(client: configuration, serverName: "localhost", remoteAddress: Addresses.server, now: Instant(nanoseconds: 0))
        _ = connection.transmit(at: Instant(nanoseconds: 0))
        connection.close()
        _ = connection.transmit(at: Instant(nanoseconds: 0))
        #expect(asked.withLock { $0 } == 1)  // asked once, at the first batch; never again
    }

    @Test("a server connection whose first datagram does not decrypt leaves no trace")
    func failedServerConnection() throws {
        let sinks = QLogSinks()
        var configuration = QUICConfiguration(tls: TestIdentity.serverTLS())
        configuration.qlog = sinks.destination
        var client = QUICConfiguration(tls: TestIdentity.clientTLS())
        client.qlog = sinks.destination
        let connection = try QUICConnection(client: client, serverName: "localhost", remoteAddress: Addresses.server, now: Instant(nanoseconds: 0))
        var datagram = try #require(connection.transmit(at: Instant(nanoseconds: 0))).bytes
        datagram[datagram.count - 1] ^= 0xff  // the AEAD tag no longer matches
        #expect(throws: QUICError.self) {
            _ = try QUICConnection(server: configuration, datagram: datagram, remoteAddress: Addresses.client, now: Instant(nanoseconds: 0))
        }
        #expect(sinks.sinks(.server).isEmpty)
    }

    @Test("records are batched: one write per 64 KiB or per second of I/O rounds, not one per event")
    func batching() throws {
        let sinks = QLogSinks()
        let (clientConfig, serverConfig) = Self.configurations(sinks)
        var link = LinkConfiguration()
        link.bandwidth = 100_000_000
        let client = TransferClient(mode: .download, sizes: [2_000_000])
        let scenario = try Scenario(seed: 9, link: link, clientConfiguration: clientConfig, serverConfiguration: serverConfig,
                                    app: client, server: SourceServer())
        try scenario.run(timeLimit: .seconds(60))
        try Self.finish(scenario)
        let sink = try #require(sinks.sinks(.server).first)
        let trace = QLogTraceFile(sink.bytes)
        #expect(trace.problems.isEmpty)
        #expect(trace.events.count > 1000)
        // Path MTU discovery on the 1500-byte link: from 1200 bytes to 1452, done once the
        // jumbo-frame probes failed.
        let mtu = trace.events("quic:mtu_updated")
        #expect(mtu.first.flatMap { QLogTraceFile.integer($0.data["old"]) } == 1200, "\(mtu.map(\.data))")
        #expect(mtu.last.flatMap { QLogTraceFile.integer($0.data["new"]) } == 1452, "\(mtu.map(\.data))")
        #expect(mtu.last?.data["done"] as? Bool == true)
        #expect(mtu.count == 2, "\(mtu.map(\.data))")
        let elapsed = (trace.events.last?.time ?? 0) / 1000
        #expect(sink.writes <= sink.bytes.count / (64 << 10) + Int(elapsed.rounded(.up)) + 3, "\(sink.writes) writes of \(sink.bytes.count) bytes in \(elapsed) s")
    }

    @Test("JSON text: strings escaped, times in milliseconds with up to six decimals, nesting")
    func json() throws {
        var json = QLogJSON(into: [])
        json.object { json in
            json.field("s", string: "a\"b\\c\n\u{1}é")
            json.field("t", milliseconds: .nanoseconds(1_234_567_890))
            json.field("u", milliseconds: .milliseconds(25))
            json.field("z", UInt64(0))
            json.field("n", -42)
            json.field("b", false)
            json.field("h", hex: [0x00, 0xab, 0x10])
            json.field("a", array: { json in
                json.element(UInt64(18_446_744_073_709_551_615))
                json.elementArray { $0.element(UInt64(1)); $0.element(UInt64(2)) }
                json.element { $0.field("k", "v") }
            })
        }
        #expect(String(decoding: json.bytes, as: UTF8.self)
            == #"{"s":"a\"b\\c\u000a\u0001é","t":1234.56789,"u":25,"z":0,"n":-42,"b":false,"h":"00ab10","a":[18446744073709551615,[1,2],{"k":"v"}]}"#)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.bytes)) as? [String: Any])
        #expect(object["s"] as? String == "a\"b\\c\n\u{1}é")
    }
}

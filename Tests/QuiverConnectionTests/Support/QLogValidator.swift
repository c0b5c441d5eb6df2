import Foundation
import QuiverQUIC
import Synchronization

/// A parsed qlog trace in the JSON-SEQ serialization, checked against the schema of
/// draft-ietf-quic-qlog-main-schema (§5 QlogFileSeq, §7 events, §11.2 JSON-SEQ) and the event
/// definitions of draft-ietf-quic-qlog-quic-events: every record parses with Foundation's
/// `JSONSerialization`, required fields are there with their types, event names come from
/// the QUIC event table (§3), and times never go backwards.
struct QLogTraceFile {
    /// The header record.
    var header: [String: Any]
    /// The events, in file order.
    var events: [Event]
    /// What does not conform, one line each.
    var problems: [String]

    struct Event {
        var time: Double
        var name: String
        var data: [String: Any]
    }

    /// The names of QUIC events (QUIC events §3, Table 1).
    static let eventNames: Set<String> = [
        "server_listening", "connection_started", "connection_closed", "connection_id_updated", "spin_bit_updated",
        "connection_state_updated", "tuple_assigned", "mtu_updated", "version_information", "alpn_information",
        "parameters_set", "parameters_restored", "packet_sent", "packet_received", "packet_dropped", "packet_buffered",
        "packets_acked", "udp_datagrams_sent", "udp_datagrams_received", "udp_datagram_dropped", "stream_state_updated",
        "frames_created", "frames_parsed", "stream_data_moved", "datagram_data_moved", "connection_data_blocked_updated",
        "stream_data_blocked_updated", "datagram_data_blocked_updated", "migration_state_updated", "timer_updated",
        "key_updated", "key_discarded", "recovery_parameters_set", "recovery_metrics_updated", "congestion_state_updated",
        "packet_lost", "marked_for_retransmit", "ecn_state_updated",
    ].reduce(into: []) { $0.insert("quic:" + $1) }

    /// packet_dropped's triggers (§5.7).
    static let dropTriggers: Set<String> = [
        "internal_error", "rejected", "unsupported", "invalid", "duplicate", "connection_unknown", "decryption_failure",
        "key_unavailable", "general",
    ]

    /// `$PacketType` (§8.6).
    static let packetTypes: Set<String> = ["initial", "handshake", "0RTT", "1RTT", "retry", "version_negotiation", "stateless_reset", "unknown"]

    /// `frame_type` values of `QuicBaseFrames` (§8.13).
    static let frameTypes: Set<String> = [
        "padding", "ping", "ack", "reset_stream", "reset_stream_at", "stop_sending", "crypto", "new_token", "stream",
        "max_data", "max_stream_data", "max_streams", "data_blocked", "stream_data_blocked", "streams_blocked",
        "new_connection_id", "retire_connection_id", "path_challenge", "path_response", "connection_close",
        "handshake_done", "unknown", "datagram",
    ]

    /// The recovery metrics of recovery_metrics_updated (§7.2).
    static let metrics: Set<String> = [
        "min_rtt", "smoothed_rtt", "latest_rtt", "rtt_variance", "pto_count", "congestion_window", "bytes_in_flight",
        "ssthresh", "packets_in_flight", "pacing_rate",
    ]

    /// Parses and checks the bytes of one trace.
    init(_ bytes: [UInt8]) {
        header = [:]
        events = []
        problems = []
        guard bytes.first == 0x1E else {
            problems.append("the file does not start with a record separator")
            return
        }
        let records = bytes.split(separator: 0x1E, omittingEmptySubsequences: true)
        for (index, record) in records.enumerated() {
            guard record.last == 0x0A else {
                problems.append("record \(index) does not end with a newline")
                continue
            }
            guard let object = (try? JSONSerialization.jsonObject(with: Data(record))) as? [String: Any] else {
                problems.append("record \(index) is not a JSON object: \(String(decoding: record.prefix(200), as: UTF8.self))")
                continue
            }
            checkLowercaseKeys(object, at: "record \(index)")
            if index == 0 {
                header = object
                checkHeader(object)
            } else {
                checkEvent(object, index: index)
            }
        }
    }

    /// The events named `name` (with the `quic:` prefix).
    func events(_ name: String) -> [Event] { events.filter { $0.name == name } }

    // MARK: - Checks

    private mutating func checkHeader(_ header: [String: Any]) {
        expect(header["file_schema"] as? String == "urn:ietf:params:qlog:file:sequential", "file_schema")
        expect((header["serialization_format"] as? String)?.lowercased() == "application/qlog+json-seq", "serialization_format")
        guard let trace = header["trace"] as? [String: Any] else { return problems.append("header: no trace object") }
        let schemas = trace["event_schemas"] as? [String] ?? []
        expect(!schemas.isEmpty && schemas.allSatisfy { $0.hasPrefix("urn:ietf:params:qlog:events:quic") }, "trace.event_schemas: \(schemas)")
        if let vantage = trace["vantage_point"] as? [String: Any] {
            expect(["client", "server", "network", "unknown"].contains(vantage["type"] as? String ?? ""), "vantage_point.type")
        }
        if let common = trace["common_fields"] as? [String: Any] {
            if let reference = common["reference_time"] as? [String: Any] {
                let clock = reference["clock_type"] as? String
                expect(clock != nil, "reference_time.clock_type")
                expect(reference["epoch"] is String, "reference_time.epoch")
                if clock == "monotonic" { expect(reference["epoch"] as? String == "unknown", "monotonic epoch is unknown (§7.1)") }
            }
            if let format = common["time_format"] { expect(["relative_to_epoch", "relative_to_previous_event"].contains(format as? String ?? ""), "time_format") }
        }
    }

    private mutating func checkEvent(_ object: [String: Any], index: Int) {
        guard let time = Self.number(object["time"]), let name = object["name"] as? String, let data = object["data"] as? [String: Any] else {
            return problems.append("record \(index): time, name and data are required (§7): \(object)")
        }
        if let last = events.last, time < last.time { problems.append("record \(index): time \(time) before \(last.time)") }
        if !Self.eventNames.contains(name) { problems.append("record \(index): unknown event name \(name)") }
        events.append(Event(time: time, name: name, data: data))
        let at = "record \(index) (\(name))"
        switch name {
        case "quic:packet_sent", "quic:packet_received", "quic:packet_lost":
            guard let header = data["header"] as? [String: Any] else { return problems.append("\(at): no header") }
            expect(Self.packetTypes.contains(header["packet_type"] as? String ?? ""), "\(at): packet_type")
            expect(Self.integer(header["packet_number"]) != nil, "\(at): packet_number")
            if let bit = header["spin_bit"] { expect(Self.isBoolean(bit), "\(at): spin_bit") }
            if name != "quic:packet_lost" {
                if let raw = data["raw"] as? [String: Any] { expect(Self.integer(raw["length"]) != nil, "\(at): raw.length") }
                else { problems.append("\(at): no raw.length") }
            }
            if let frames = data["frames"] {
                guard let frames = frames as? [[String: Any]] else { return problems.append("\(at): frames is not an array of objects") }
                for frame in frames { checkFrame(frame, at: at) }
            }
        case "quic:recovery_metrics_updated":
            expect(!data.isEmpty && data.keys.allSatisfy(Self.metrics.contains), "\(at): metrics \(data.keys.sorted())")
            expect(data.values.allSatisfy { Self.number($0) != nil }, "\(at): metrics are numbers")
        case "quic:congestion_state_updated", "quic:connection_state_updated":
            expect(data["new"] is String, "\(at): new")
        case "quic:connection_started":
            expect(data["local"] is [String: Any] && data["remote"] is [String: Any], "\(at): local and remote")
        case "quic:connection_closed":
            if let initiator = data["initiator"] { expect(["local", "remote"].contains(initiator as? String ?? ""), "\(at): initiator") }
            if let code = data["error_code"] { expect(Self.integer(code) != nil, "\(at): error_code") }
        case "quic:parameters_set":
            if let initiator = data["initiator"] { expect(["local", "remote"].contains(initiator as? String ?? ""), "\(at): initiator") }
        case "quic:stream_state_updated":
            expect(Self.integer(data["stream_id"]) != nil, "\(at): stream_id")
            expect(data["new"] is String, "\(at): new")
            expect(["sending", "receiving"].contains(data["stream_side"] as? String ?? ""), "\(at): stream_side")
        case "quic:mtu_updated":
            expect(Self.integer(data["new"]) != nil, "\(at): new")
        case "quic:spin_bit_updated":
            expect(Self.isBoolean(data["state"]), "\(at): state")
        case "quic:datagram_data_moved":
            if let raw = data["raw"] as? [String: Any] { expect(Self.integer(raw["length"]) != nil, "\(at): raw.length") }
        case "quic:packet_dropped":
            if let header = data["header"] as? [String: Any] { expect(Self.packetTypes.contains(header["packet_type"] as? String ?? ""), "\(at): packet_type") }
            if let raw = data["raw"] as? [String: Any] { expect(Self.integer(raw["length"]) != nil, "\(at): raw.length") }
            if let trigger = data["trigger"] { expect(Self.dropTriggers.contains(trigger as? String ?? ""), "\(at): trigger") }
        default:
            break
        }
    }

    private mutating func checkFrame(_ frame: [String: Any], at: String) {
        guard let type = frame["frame_type"] as? String, Self.frameTypes.contains(type) else {
            return problems.append("\(at): frame_type of \(frame)")
        }
        switch type {
        case "stream":
            expect(Self.integer(frame["stream_id"]) != nil, "\(at): stream frame's stream_id")
        case "crypto":
            expect(Self.integer(frame["offset"]) != nil && frame["raw"] is [String: Any], "\(at): crypto frame's offset and raw")
        case "ack":
            if let ranges = frame["acked_ranges"] {
                let valid = (ranges as? [[Any]])?.allSatisfy { ($0.count == 1 || $0.count == 2) && $0.allSatisfy { Self.integer($0) != nil } }
                expect(valid == true, "\(at): acked_ranges")
            }
        case "max_data", "max_stream_data", "max_streams":
            expect(Self.integer(frame["maximum"]) != nil, "\(at): \(type) maximum")
        case "new_connection_id":
            expect(Self.integer(frame["sequence_number"]) != nil && frame["connection_id"] is String, "\(at): new_connection_id")
        case "connection_close":
            if let space = frame["error_space"] { expect(["transport", "application"].contains(space as? String ?? ""), "\(at): error_space") }
        default:
            break
        }
    }

    private mutating func checkLowercaseKeys(_ value: Any, at: String) {
        if let object = value as? [String: Any] {
            for (key, member) in object {
                if key != key.lowercased() { problems.append("\(at): field name \(key) is not lowercase (§11.2)") }
                checkLowercaseKeys(member, at: at)
            }
        } else if let array = value as? [Any] {
            for element in array { checkLowercaseKeys(element, at: at) }
        }
    }

    private mutating func expect(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { problems.append(what()) }
    }

    /// A JSON number (not a boolean).
    static func number(_ value: Any?) -> Double? {
        guard let value, !isBoolean(value) else { return nil }
        return (value as? NSNumber)?.doubleValue ?? (value as? Double) ?? (value as? Int).map(Double.init)
    }

    /// A JSON `true` or `false` (Foundation may hand them over as `NSNumber`s of type `c`).
    static func isBoolean(_ value: Any?) -> Bool {
        guard let value else { return false }
        if type(of: value) == Bool.self { return true }
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    /// A JSON number that is a non-negative integer.
    static func integer(_ value: Any?) -> UInt64? {
        guard let number = number(value), number >= 0, number == number.rounded() else { return nil }
        return UInt64(number)
    }
}

/// A qlog sink that keeps the records in memory.
final class MemoryQLogSink: QLogSink, @unchecked Sendable {
    private let lock = Mutex<(bytes: [UInt8], closed: Bool, writes: Int)>(([], false, 0))
    var bytes: [UInt8] { lock.withLock { $0.bytes } }
    var isClosed: Bool { lock.withLock { $0.closed } }
    var writes: Int { lock.withLock { $0.writes } }
    func write(_ records: [UInt8]) {
        lock.withLock {
            $0.bytes += records
            $0.writes += 1
        }
    }
    func close() { lock.withLock { $0.closed = true } }
}

/// Sinks made per connection, by vantage point.
final class QLogSinks: Sendable {
    private let sinks = Mutex<[(QLogTrace, MemoryQLogSink)]>([])

    var destination: QLogDestination {
        .custom { [self] trace in
            let sink = MemoryQLogSink()
            sinks.withLock { $0.append((trace, sink)) }
            return sink
        }
    }

    func sinks(_ role: Role) -> [MemoryQLogSink] { sinks.withLock { $0.filter { $0.0.role == role }.map(\.1) } }
    var traces: [QLogTrace] { sinks.withLock { $0.map(\.0) } }
}

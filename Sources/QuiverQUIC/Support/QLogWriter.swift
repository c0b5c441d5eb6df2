import QuiverCore
import QuiverTLS

/// One connection's qlog trace (draft-ietf-quic-qlog-main-schema §5, the `QlogFileSeq`
/// schema in JSON-SEQ; events of draft-ietf-quic-qlog-quic-events).
///
/// The connection holds one when ``QUICConfiguration/qlog`` is set, and calls it at each event
/// site behind a single optional check, so a connection without qlog pays a `nil` test per
/// site and allocates nothing. Records are encoded straight into a byte buffer and handed to
/// the sink in batches (``flushThreshold`` bytes, at the end of an I/O round at most every
/// ``flushInterval``, at close and on release), so memory stays bounded and the event loop
/// makes one write per batch.
///
/// Times are milliseconds since the connection was created, on the engine's monotonic clock
/// (`reference_time` `monotonic`, epoch `unknown`, main schema §7.1): the engine never reads
/// the wall clock.
final class QLogWriter {
    /// The event schema (QUIC events §2.1: draft implementations append the draft number).
    static let eventSchema: StaticString = "urn:ietf:params:qlog:events:quic-13"
    /// A batch is handed to the sink once this many bytes have gathered.
    static let flushThreshold = 64 << 10
    /// At the end of an I/O round, what has gathered for this long is handed over.
    static let flushInterval: Duration = .seconds(1)

    private unowned let connection: QUICConnection
    /// Where the trace goes: made at the first flush, so a connection that never gets that
    /// far (a server connection whose first datagram does not decrypt) leaves no file.
    private var sink: (any QLogSink)?
    private let destination: QLogDestination
    private let trace: QLogTrace
    /// Set when the trace is abandoned: nothing more is written.
    private var isDiscarded = false
    private var buffer: [UInt8] = []
    private let start: Instant
    private var lastFlush: Instant

    /// What recovery_metrics_updated reported last (only changes are logged).
    private var metrics = Metrics()
    /// The congestion controller's state as last logged, and the recovery period it was in.
    private var congestionState: CongestionState?
    private var recoveryStart: Instant?
    /// The congestion window when the recovery period began: it grows again once the period ends.
    private var recoveryWindow: Int?
    /// The version version_information named last (compatible version negotiation may change it).
    private var loggedVersion: QUICVersion
    /// The 1-RTT key updates logged so far, and the packet number spaces whose keys were
    /// logged as discarded.
    private var keyUpdates = 0
    private var discardedSpaces: [Bool] = [false, false]
    /// The datagram size mtu_updated named last, and whether it said the search was done.
    private var loggedMTU: Int
    private var loggedMTUSearchDone = false
    /// The connection state as last logged.
    private var connectionState: ConnectionState?

    /// congestion_state_updated's states, in RFC 9002's words.
    private enum CongestionState: String {
        case slowStart = "slow_start"
        case congestionAvoidance = "congestion_avoidance"
        case recovery
    }

    /// connection_state_updated's states (QUIC events §4.6).
    private enum ConnectionState: String {
        case handshakeComplete = "handshake_complete"
        case handshakeConfirmed = "handshake_confirmed"
        case closing, draining, closed
    }

    /// Recovery metrics as recovery_metrics_updated names them (QUIC events §7.2).
    private struct Metrics: Equatable {
        var minRTT: Duration?
        var smoothedRTT: Duration?
        var latestRTT: Duration?
        var rttVariance: Duration?
        var ptoCount: Int?
        var congestionWindow: Int?
        var bytesInFlight: Int?
        var ssthresh: Int?
    }

    /// Starts the trace of `connection`: the header record, connection_started,
    /// version_information and our transport parameters.
    init(destination: QLogDestination, connection: QUICConnection) {
        let trace = QLogTrace(role: connection.role, originalDestinationConnectionID: connection.originalDestinationConnectionID)
        self.connection = connection
        self.destination = destination
        self.trace = trace
        start = connection.now
        lastFlush = connection.now
        loggedVersion = connection.version
        loggedMTU = connection.datagramSizeLimit
        buffer.reserveCapacity(4096)
        connection.streams.closedStreams = []
        writeHeader(trace)
        connectionStarted()
        versionInformation()
        parametersSet(connection.localParameters, initiator: "local")
    }

    deinit {
        flush()
        sink?.close()
    }

    /// Abandons the trace: what gathered is dropped and no sink is made (a server connection
    /// whose first datagram did not decrypt is no connection).
    func discard() {
        isDiscarded = true
        buffer = []
    }

    // MARK: - Records

    /// Appends one JSON-SEQ record: 0x1E, the JSON text, a newline (RFC 7464 §2.2).
    private func record(_ body: (inout QLogJSON) -> Void) {
        guard !isDiscarded else { return }
        var json = QLogJSON(into: buffer)
        buffer = []  // the writer owns the storage while it writes (no copy on write)
        json.bytes.append(0x1E)
        json.object(body)
        json.bytes.append(0x0A)
        buffer = json.bytes
        if buffer.count >= Self.flushThreshold { flush() }
    }

    /// Appends an event record: time, name and the data `body` writes.
    func event(_ name: StaticString, _ body: (inout QLogJSON) -> Void) {
        let elapsed = connection.now - start
        record { json in
            json.key("time")
            json.milliseconds(nanoseconds: max(elapsed, .zero).nanosecondsClamped)
            json.field("name", name)
            json.field("data", object: body)
        }
    }

    /// Hands what has gathered to the sink. (It reads nothing of the connection: it runs when
    /// the connection is released too.)
    func flush() {
        guard !buffer.isEmpty, !isDiscarded else { return }
        if sink == nil { sink = destination.makeSink(for: trace) }
        guard let sink else {
            discard()  // no sink to be had (a directory that cannot take the file): logging is off
            return
        }
        sink.write(buffer)
        buffer.removeAll(keepingCapacity: buffer.capacity <= Self.flushThreshold * 2)
    }

    private func writeHeader(_ trace: QLogTrace) {
        record { json in
            json.field("file_schema", "urn:ietf:params:qlog:file:sequential")
            json.field("serialization_format", "application/qlog+json-seq")
            json.field("title", trace.role == .client ? "Quiver client" : "Quiver server")
            json.field("trace", object: { json in
                json.field("common_fields", object: { json in
                    json.field("group_id", hex: trace.originalDestinationConnectionID.bytes)
                    json.field("reference_time", object: { json in
                        json.field("clock_type", "monotonic")
                        json.field("epoch", "unknown")
                    })
                    json.field("time_format", "relative_to_epoch")
                })
                json.field("vantage_point", object: { json in
                    json.field("name", "quiver")
                    json.field("type", trace.role == .client ? "client" : "server")
                })
                json.field("event_schemas", array: { $0.element(Self.eventSchema) })
            })
        }
    }

    // MARK: - Connectivity

    private func connectionStarted() {
        let connection = connection
        event("quic:connection_started") { json in
            json.field("local", object: { json in
                json.field("connection_ids", array: { json in
                    for issued in connection.cids.local { json.element(hex: issued.id.bytes) }
                })
            })
            json.field("remote", object: { json in
                let remote = connection.remoteAddress
                if case .v4 = remote {
                    json.field("ip_v4", string: remote.host)
                    json.field("port_v4", Int(remote.port))
                } else {
                    json.field("ip_v6", string: remote.host)
                    json.field("port_v6", Int(remote.port))
                }
                json.field("connection_ids", array: { $0.element(hex: connection.cids.activePeer.bytes) })
            })
        }
    }

    /// version_information (QUIC events §5.1): our versions and the one in use; once the
    /// peer's transport parameters are in, its versions too (RFC 9368 version_information).
    private func versionInformation() {
        let connection = connection
        let ours = connection.configuration.supportedVersions.map(\.rawValue)
        let theirs = connection.peerTransportParameters?.versionInformation?.availableVersions
        loggedVersion = connection.version
        event("quic:version_information") { json in
            func versions(_ key: StaticString, _ list: [UInt32]) {
                json.field(key, array: { json in
                    for version in list { json.element(hex: QUICVersion(rawValue: version).qlogBytes) }
                })
            }
            versions(connection.role == .client ? "client_versions" : "server_versions", ours)
            if let theirs, !theirs.isEmpty { versions(connection.role == .client ? "server_versions" : "client_versions", theirs) }
            json.field("chosen_version", hex: connection.version.qlogBytes)
        }
    }

    /// connection_closed (QUIC events §4.3).
    private func connectionClosed(_ info: ConnectionCloseInfo) {
        event("quic:connection_closed") { json in
            let frame = info.frame
            switch info.origin {
            case .local, .idleTimeout, .unreachable: json.field("initiator", "local")
            case .peer, .statelessReset, .versionNegotiation: json.field("initiator", "remote")
            }
            if frame.isApplication {
                json.field("application_error", "unknown")
                json.field("error_code", frame.errorCode)
            } else {
                Self.transportError(frame.errorCode, into: &json, key: "connection_error")
            }
            if !frame.reason.isEmpty { json.field("reason", string: String(decoding: frame.reason, as: UTF8.self)) }
            switch info.origin {
            case .idleTimeout: json.field("trigger", "idle_timeout")
            case .statelessReset: json.field("trigger", "stateless_reset")
            case .versionNegotiation: json.field("trigger", "version_mismatch")
            case .unreachable: json.field("trigger", "aborted")
            case .local, .peer:
                json.field("trigger", frame.isApplication ? "application" : frame.errorCode == 0 ? "unspecified" : "error")
            }
        }
    }

    /// Writes a transport error code as `$TransportError` or `CryptoError` under `key`, with
    /// `error_code` when it has no name (QUIC events §8.13.24, §8.13.26).
    static func transportError(_ code: UInt64, into json: inout QLogJSON, key: StaticString) {
        if (0x100...0x1ff).contains(code) {
            json.field(key, string: "crypto_error_0x\(String(code, radix: 16))")
            return
        }
        let names: [StaticString] = [
            "no_error", "internal_error", "connection_refused", "flow_control_error", "stream_limit_error",
            "stream_state_error", "final_size_error", "frame_encoding_error", "transport_parameter_error",
            "connection_id_limit_error", "protocol_violation", "invalid_token", "application_error",
            "crypto_buffer_exceeded", "key_update_error", "aead_limit_reached", "no_viable_path",
        ]
        if code < UInt64(names.count) {
            json.field(key, names[Int(code)])
        } else {
            json.field(key, "unknown")
            json.field("error_code", code)
        }
    }

    // MARK: - Transport

    /// parameters_set (QUIC events §5.3): one side's transport parameters.
    func parametersSet(_ parameters: TransportParameters, initiator: StaticString) {
        event("quic:parameters_set") { json in
            json.field("initiator", initiator)
            if let id = parameters.originalDestinationConnectionID { json.field("original_destination_connection_id", hex: id.bytes) }
            if let id = parameters.initialSourceConnectionID { json.field("initial_source_connection_id", hex: id.bytes) }
            if let id = parameters.retrySourceConnectionID { json.field("retry_source_connection_id", hex: id.bytes) }
            if let token = parameters.statelessResetToken { json.field("stateless_reset_token", hex: token) }
            json.field("disable_active_migration", parameters.disableActiveMigration)
            json.field("max_idle_timeout", parameters.maxIdleTimeout)
            json.field("max_udp_payload_size", parameters.maxUDPPayloadSize)
            json.field("ack_delay_exponent", parameters.ackDelayExponent)
            json.field("max_ack_delay", parameters.maxAckDelay)
            json.field("active_connection_id_limit", parameters.activeConnectionIDLimit)
            json.field("initial_max_data", parameters.initialMaxData)
            json.field("initial_max_stream_data_bidi_local", parameters.initialMaxStreamDataBidiLocal)
            json.field("initial_max_stream_data_bidi_remote", parameters.initialMaxStreamDataBidiRemote)
            json.field("initial_max_stream_data_uni", parameters.initialMaxStreamDataUni)
            json.field("initial_max_streams_bidi", parameters.initialMaxStreamsBidi)
            json.field("initial_max_streams_uni", parameters.initialMaxStreamsUni)
            if let address = parameters.preferredAddress {
                json.field("preferred_address", object: { json in
                    json.field("ip_v4", hex: address.ipv4Address)
                    json.field("port_v4", Int(address.ipv4Port))
                    json.field("ip_v6", hex: address.ipv6Address)
                    json.field("port_v6", Int(address.ipv6Port))
                    json.field("connection_id", hex: address.connectionID.bytes)
                    json.field("stateless_reset_token", hex: address.statelessResetToken)
                })
            }
            if let size = parameters.maxDatagramFrameSize { json.field("max_datagram_frame_size", size) }
            json.field("grease_quic_bit", parameters.greaseQUICBit)
        }
    }

    /// packet_sent (QUIC events §5.5), with the frames the packet's records name.
    func packetSent(type: PacketType, packetNumber: UInt64, size: Int, frames: SentFrameInfos) {
        let connection = connection
        event("quic:packet_sent") { json in
            json.field("header", object: { json in
                json.field("packet_type", type.qlogName)
                json.field("packet_number", packetNumber)
                if type == .oneRTT {
                    json.field("spin_bit", connection.spin.sentValue)
                    json.field("key_phase_bit", connection.appKeys?.phase ?? false)
                }
            })
            json.field("raw", object: { $0.field("length", size) })
            var isProbe = false
            json.field("frames", array: { json in
                for index in frames.indices {
                    if case .pmtuProbe = frames[index] { isProbe = true }
                    Self.sentFrame(frames[index], into: &json, connection: connection)
                }
                if connection.state == .closing, var close = connection.closing.frame {
                    if type != .oneRTT, close.isApplication { close = .transport(.applicationError) }
                    json.element { Self.connectionClose(close, into: &$0) }
                }
            })
            if isProbe { json.field("is_mtu_probe_packet", true) }
        }
    }

    /// packet_received (QUIC events §5.6): the packet's frames, decoded again from the
    /// plaintext (only when logging).
    func packetReceived(_ datagram: [UInt8], payload: Range<Int>, header: UnmaskedHeader, packetType: PacketType) {
        let exponent = packetType == .oneRTT || packetType == .zeroRTT
            ? connection.peerTransportParameters?.ackDelayExponent ?? TransportParameters.defaultAckDelayExponent
            : TransportParameters.defaultAckDelayExponent
        event("quic:packet_received") { json in
            json.field("header", object: { json in
                json.field("packet_type", packetType.qlogName)
                json.field("packet_number", header.packetNumber)
                if packetType == .oneRTT {
                    json.field("spin_bit", header.firstByte & 0x20 != 0)
                    json.field("key_phase_bit", header.keyPhase)
                }
            })
            json.field("raw", object: { json in
                json.field("length", header.length + payload.count + AEADKey.tagLength)
                json.field("payload_length", payload.count)
            })
            json.field("frames", array: { json in
                var reader = ByteReader(datagram, in: payload)
                while !reader.isAtEnd, let frame = try? Frame.decodeNext(from: &reader, in: packetType) {
                    Self.receivedFrame(frame, ackDelayExponent: exponent, into: &json)
                }
            })
        }
    }

    /// stream_state_updated (QUIC events §5.13): a stream was opened, by us or the peer.
    func streamOpened(_ id: StreamID, locally: Bool) {
        streamStateUpdated(id, to: "open", trigger: locally ? "local" : "remote")
    }

    /// stream_state_updated for each part of stream `id` (sending, receiving).
    private func streamStateUpdated(_ id: StreamID, to state: StaticString, trigger: StaticString?) {
        let role = connection.role
        for (side, present) in [("sending" as StaticString, id.canSend(as: role)), ("receiving", id.canReceive(as: role))] where present {
            event("quic:stream_state_updated") { json in
                json.field("stream_id", id.rawValue)
                json.field("stream_type", id.direction == .bidirectional ? "bidirectional" : "unidirectional")
                json.field("new", state)
                json.field("stream_side", side)
                if let trigger { json.field("trigger", trigger) }
            }
        }
    }

    /// datagram_data_moved (QUIC events §5.16).
    func datagramMoved(length: Int, toApplication: Bool) {
        event("quic:datagram_data_moved") { json in
            json.field("from", toApplication ? "transport" : "application")
            json.field("to", toApplication ? "application" : "transport")
            json.field("raw", object: { $0.field("length", length) })
        }
    }

    /// spin_bit_updated (QUIC events §4.5): the value we send changed.
    func spinBitUpdated(_ state: Bool) {
        event("quic:spin_bit_updated") { $0.field("state", state) }
    }

    /// ECN validation moved on (RFC 9000 Appendix A.4; QUIC events §7.6). `disabled` (ECN off
    /// by configuration) is not one of qlog's states and is left out.
    func ecnStateUpdated(old: ECNValidationState, new: ECNValidationState) {
        guard new != .disabled else { return }
        event("quic:ecn_state_updated") { json in
            if old != .disabled { json.field("old", string: old.rawValue) }
            json.field("new", string: new.rawValue)
        }
    }

    /// An application event the connection queued: the ones qlog has words for are logged.
    func connectionEvent(_ event: QUICConnectionEvent) {
        switch event {
        case .handshakeCompleted:
            if let alpn = connection.alpn {
                self.event("quic:alpn_information") { json in
                    json.field("chosen_alpn", object: { $0.field("string_value", string: alpn) })
                }
            }
            checkpoint()
        case .streamOpened(let id):
            streamOpened(id, locally: false)
        case .datagramReceived(let bytes):
            datagramMoved(length: bytes.count, toApplication: true)
        case .closed(let info):
            connectionClosed(info)
            checkpoint()
            flush()
        default:
            break
        }
    }

    /// packet_dropped (QUIC events §5.7): a packet of this connection's datagrams that was not
    /// processed, with its type where the header told it.
    func packetDropped(_ type: PacketType?, size: Int, trigger: PacketDropTrigger) {
        event("quic:packet_dropped") { json in
            if let type { json.field("header", object: { $0.field("packet_type", type.qlogName) }) }
            json.field("raw", object: { $0.field("length", size) })
            json.field("trigger", trigger.qlogName)
        }
    }

    // MARK: - Recovery

    /// packet_lost (QUIC events §7.4), one per packet.
    func packetsLost(_ loss: LossEvent) {
        let connection = connection
        for packet in loss.packets {
            event("quic:packet_lost") { json in
                json.field("header", object: { json in
                    json.field("packet_type", loss.space.qlogPacketType)
                    json.field("packet_number", packet.packetNumber)
                })
                json.field("frames", array: { json in
                    for index in packet.frames.indices { Self.sentFrame(packet.frames[index], into: &json, connection: connection) }
                })
                if packet.isPMTUProbe { json.field("is_mtu_probe_packet", true) }
            }
        }
    }

    /// The end of an input or an I/O round: logs what changed in the recovery metrics, the
    /// congestion state and the connection state, and hands over the buffer if it has waited
    /// ``flushInterval``.
    func checkpoint() {
        let connection = connection
        if connection.version != loggedVersion { versionInformation() }
        keyEvents()
        let mtuSearchDone = connection.paths.current.mtuProbe == nil
            && connection.paths.current.nextMTUProbe(ceiling: connection.datagramSizeCeiling) == nil
        if connection.datagramSizeLimit != loggedMTU || mtuSearchDone != loggedMTUSearchDone {
            // mtu_updated (QUIC events §4.8): path MTU discovery proved a size, or ended (a
            // larger size failed), or a new path starts over.
            let old = loggedMTU
            let new = connection.datagramSizeLimit
            loggedMTU = new
            loggedMTUSearchDone = mtuSearchDone
            let done = mtuSearchDone
            event("quic:mtu_updated") { json in
                json.field("old", old)
                json.field("new", new)
                if done { json.field("done", true) }
            }
        }
        if connection.streams.closedStreams?.isEmpty == false {
            // Streams whose parts all reached a terminal state, forgotten by the stream layer.
            for id in connection.streams.closedStreams ?? [] { streamStateUpdated(id, to: "closed", trigger: nil) }
            connection.streams.closedStreams?.removeAll(keepingCapacity: true)
        }
        metricsUpdated()
        congestionStateUpdated()
        let state: ConnectionState? = switch connection.state {
        case .handshaking: nil
        case .established: connection.isHandshakeConfirmed ? .handshakeConfirmed : .handshakeComplete
        case .closing: .closing
        case .draining: .draining
        case .closed: .closed
        }
        if let state, state != connectionState {
            let old = connectionState
            connectionState = state
            event("quic:connection_state_updated") { json in
                if let old { json.field("old", string: old.rawValue) }
                json.field("new", string: state.rawValue)
            }
        }
        if connection.state == .closed || connection.now - lastFlush >= Self.flushInterval {
            lastFlush = connection.now
            flush()
        }
    }

    /// key_updated for 1-RTT key updates (QUIC events §6.1; no key material) and
    /// key_discarded for the Initial and Handshake keys (§6.2).
    private func keyEvents() {
        let connection = connection
        for index in discardedSpaces.indices where !discardedSpaces[index] && connection.spaces[index].isDiscarded {
            discardedSpaces[index] = true
            let names: [(StaticString, StaticString)] = index == 0
                ? [("client_initial_secret", "server_initial_secret")] : [("client_handshake_secret", "server_handshake_secret")]
            for name in [names[0].0, names[0].1] {
                event("quic:key_discarded") { json in
                    json.field("key_type", name)
                    json.field("trigger", "tls")
                }
            }
        }
        let updates = connection.keyUpdateCount
        while keyUpdates < updates {
            keyUpdates += 1
            let phase = UInt64(keyUpdates)
            for name in ["client_1rtt_secret", "server_1rtt_secret"] as [StaticString] {
                event("quic:key_updated") { json in
                    json.field("key_type", name)
                    json.field("key_phase", phase)
                }
            }
        }
    }

    private func metricsUpdated() {
        let connection = connection
        let rtt = connection.recovery.rtt
        var now = Metrics()
        if rtt.hasSample {
            now.minRTT = rtt.minRTT
            now.smoothedRTT = rtt.smoothedRTT
            now.latestRTT = rtt.latestRTT
            now.rttVariance = rtt.rttVariance
        }
        now.ptoCount = connection.recovery.ptoCount
        now.congestionWindow = connection.congestion.congestionWindow
        now.bytesInFlight = connection.recovery.bytesInFlight
        now.ssthresh = connection.congestion.ssthresh
        guard now != metrics else { return }
        let old = metrics
        metrics = now
        event("quic:recovery_metrics_updated") { json in
            if let value = now.minRTT, value != old.minRTT { json.field("min_rtt", milliseconds: value) }
            if let value = now.smoothedRTT, value != old.smoothedRTT { json.field("smoothed_rtt", milliseconds: value) }
            if let value = now.latestRTT, value != old.latestRTT { json.field("latest_rtt", milliseconds: value) }
            if let value = now.rttVariance, value != old.rttVariance { json.field("rtt_variance", milliseconds: value) }
            if let value = now.ptoCount, value != old.ptoCount { json.field("pto_count", value) }
            if let value = now.congestionWindow, value != old.congestionWindow { json.field("congestion_window", value) }
            if let value = now.bytesInFlight, value != old.bytesInFlight { json.field("bytes_in_flight", value) }
            if let value = now.ssthresh, value != old.ssthresh { json.field("ssthresh", value) }
        }
    }

    /// congestion_state_updated (QUIC events §7.3) in RFC 9002's words: `slow_start`,
    /// `congestion_avoidance`, `recovery` (from a congestion event until a packet sent after
    /// it is acknowledged and the window grows again).
    private func congestionStateUpdated() {
        let congestion = connection.congestion
        var trigger: StaticString?
        let state: CongestionState
        if let start = congestion.recoveryStartTime, start != recoveryStart {
            recoveryStart = start
            state = .recovery
            trigger = "loss"
        } else if congestionState == .recovery, congestion.recoveryStartTime != nil,
                  let window = recoveryWindow, congestion.congestionWindow <= window {
            return  // still recovering: the window has not grown since the congestion event
        } else {
            if congestion.recoveryStartTime == nil, recoveryStart != nil {
                recoveryStart = nil
                trigger = "persistent_congestion"
            }
            state = congestion.inSlowStart ? .slowStart : .congestionAvoidance
        }
        if state == .recovery { recoveryWindow = congestion.congestionWindow }
        guard state != congestionState else { return }
        let old = congestionState
        congestionState = state
        event("quic:congestion_state_updated") { json in
            if let old { json.field("old", string: old.rawValue) }
            json.field("new", string: state.rawValue)
            if let trigger { json.field("trigger", trigger) }
        }
    }
}

extension QUICVersion {
    /// The version as qlog's `QuicVersion` hexstring: its four bytes.
    fileprivate var qlogBytes: [UInt8] {
        [UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)]
    }
}

extension PacketType {
    /// qlog's `$PacketType` (QUIC events §8.6).
    var qlogName: StaticString {
        switch self {
        case .initial: "initial"
        case .zeroRTT: "0RTT"
        case .handshake: "handshake"
        case .retry: "retry"
        case .oneRTT: "1RTT"
        case .versionNegotiation: "version_negotiation"
        }
    }
}

/// Why a packet was dropped: the triggers of qlog's packet_dropped (QUIC events §5.7).
enum PacketDropTrigger {
    /// Not for us to take: a client's datagram from an address other than the server's.
    case rejected
    /// An unknown version.
    case unsupported
    /// Against the protocol: a server Initial with a token, a client Initial in a datagram
    /// under 1200 bytes, a changed source connection ID, a Retry that does not verify.
    case invalid
    case duplicate
    /// A destination connection ID that is not ours.
    case connectionUnknown
    case decryptionFailure
    /// The packet's keys are not installed yet, or were discarded.
    case keyUnavailable

    var qlogName: StaticString {
        switch self {
        case .rejected: "rejected"
        case .unsupported: "unsupported"
        case .invalid: "invalid"
        case .duplicate: "duplicate"
        case .connectionUnknown: "connection_unknown"
        case .decryptionFailure: "decryption_failure"
        case .keyUnavailable: "key_unavailable"
        }
    }
}

extension PacketNumberSpace {
    /// The packet type of this space's packets, for events that know only the space (0-RTT
    /// packets are logged as 1-RTT).
    var qlogPacketType: StaticString {
        switch self {
        case .initial: "initial"
        case .handshake: "handshake"
        case .applicationData: "1RTT"
        }
    }
}

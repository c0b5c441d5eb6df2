import QuiverCore

/// Frames as qlog's `$QuicFrame` objects (draft-ietf-quic-qlog-quic-events §8.13): received
/// frames from their decoded values, sent ones from the records the connection keeps of them
/// (``SentFrameInfo``: ranges and values, so data and ACK ranges are summarized).
extension QLogWriter {
    /// A frame of a packet we sent, from its record.
    static func sentFrame(_ info: SentFrameInfo, into json: inout QLogJSON, connection: QUICConnection) {
        json.element { json in
            switch info {
            case .crypto(let offset, let length):
                json.field("frame_type", "crypto")
                json.field("offset", offset)
                dataLength(length, overhead: 1 + VarInt.encodedLength(offset) + VarInt.encodedLength(UInt64(length)), into: &json)
            case .stream(let id, let offset, let length, let fin):
                json.field("frame_type", "stream")
                json.field("stream_id", id.rawValue)
                json.field("offset", offset)
                if fin { json.field("fin", true) }
                let overhead = 1 + VarInt.encodedLength(id.rawValue) + (offset > 0 ? VarInt.encodedLength(offset) : 0)
                    + VarInt.encodedLength(UInt64(length))
                dataLength(length, overhead: overhead, into: &json)
            case .ack:
                json.field("frame_type", "ack")
            case .maxData(let maximum):
                flowControl("max_data", "maximum", maximum, into: &json)
            case .maxStreamData(let id, let maximum):
                flowControl("max_stream_data", stream: id, "maximum", maximum, into: &json)
            case .maxStreams(let bidirectional, let maximum):
                flowControl("max_streams", bidirectional: bidirectional, "maximum", maximum, into: &json)
            case .resetStream(let id, let code, let finalSize):
                streamError("reset_stream", id, code: code, into: &json)
                json.field("final_size", finalSize)
            case .stopSending(let id, let code):
                streamError("stop_sending", id, code: code, into: &json)
            case .newConnectionID(let sequence):
                json.field("frame_type", "new_connection_id")
                json.field("sequence_number", sequence)
                json.field("retire_prior_to", UInt64(0))
                if let issued = connection.cids.localID(sequence: sequence) {
                    json.field("connection_id", hex: issued.id.bytes)
                } else {
                    json.field("connection_id", hex: [UInt8]())  // retired since: the ID is gone
                }
            case .retireConnectionID(let sequence):
                json.field("frame_type", "retire_connection_id")
                json.field("sequence_number", sequence)
            case .handshakeDone:
                json.field("frame_type", "handshake_done")
            case .ping, .pmtuProbe:
                json.field("frame_type", "ping")
            case .newToken:
                json.field("frame_type", "new_token")
                json.field("token", object: { $0.field("type", "resumption") })
            case .datagram:
                json.field("frame_type", "datagram")
            case .pathChallenge:
                json.field("frame_type", "path_challenge")
            case .pathResponse:
                json.field("frame_type", "path_response")
            case .dataBlocked(let limit):
                flowControl("data_blocked", "limit", limit, into: &json)
            case .streamDataBlocked(let id, let limit):
                flowControl("stream_data_blocked", stream: id, "limit", limit, into: &json)
            case .streamsBlocked(let bidirectional, let limit):
                flowControl("streams_blocked", bidirectional: bidirectional, "limit", limit, into: &json)
            }
        }
    }

    /// A frame of a packet we received.
    static func receivedFrame(_ frame: Frame, ackDelayExponent: UInt64, into json: inout QLogJSON) {
        if case .connectionClose(let close) = frame {
            json.element { connectionClose(close, into: &$0) }
            return
        }
        json.element { json in
            switch frame {
            case .padding(let count):
                json.field("frame_type", "padding")
                json.field("raw", object: { json in
                    json.field("length", count)
                    json.field("payload_length", count)
                })
            case .ping:
                json.field("frame_type", "ping")
            case .ack(let ack):
                json.field("frame_type", "ack")
                // ack_delay in milliseconds: the field scaled by the sender's exponent (RFC 9000 §19.3).
                let nanoseconds = Double(ack.ackDelay) * Double(UInt64(1) << min(ackDelayExponent, 20)) * 1000
                json.key("ack_delay")
                json.milliseconds(nanoseconds: Int64(min(nanoseconds, 1e18)))
                json.field("acked_ranges", array: { json in
                    for range in ack.ranges.reversed() {
                        json.elementArray { json in
                            json.element(range.lowerBound)
                            if range.upperBound != range.lowerBound { json.element(range.upperBound) }
                        }
                    }
                })
                if let ecn = ack.ecn {
                    json.field("ect1", ecn.ect1)
                    json.field("ect0", ecn.ect0)
                    json.field("ce", ecn.ce)
                }
            case .resetStream(let id, let code, let finalSize):
                streamError("reset_stream", id, code: code, into: &json)
                json.field("final_size", finalSize)
            case .stopSending(let id, let code):
                streamError("stop_sending", id, code: code, into: &json)
            case .crypto(let offset, let data):
                json.field("frame_type", "crypto")
                json.field("offset", offset)
                dataLength(data.count, overhead: 1 + VarInt.encodedLength(offset) + VarInt.encodedLength(UInt64(data.count)), into: &json)
            case .newToken(let token):
                json.field("frame_type", "new_token")
                json.field("token", object: { json in
                    json.field("type", "resumption")
                    json.field("raw", object: { $0.field("length", token.count) })
                })
            case .stream(let id, let offset, let data, let fin):
                json.field("frame_type", "stream")
                json.field("stream_id", id.rawValue)
                json.field("offset", offset)
                if fin { json.field("fin", true) }
                json.field("raw", object: { $0.field("payload_length", data.count) })
            case .maxData(let maximum):
                flowControl("max_data", "maximum", maximum, into: &json)
            case .maxStreamData(let id, let maximum):
                flowControl("max_stream_data", stream: id, "maximum", maximum, into: &json)
            case .maxStreams(let bidirectional, let maximum):
                flowControl("max_streams", bidirectional: bidirectional, "maximum", maximum, into: &json)
            case .dataBlocked(let limit):
                flowControl("data_blocked", "limit", limit, into: &json)
            case .streamDataBlocked(let id, let limit):
                flowControl("stream_data_blocked", stream: id, "limit", limit, into: &json)
            case .streamsBlocked(let bidirectional, let limit):
                flowControl("streams_blocked", bidirectional: bidirectional, "limit", limit, into: &json)
            case .newConnectionID(let sequence, let retirePriorTo, let id, let token):
                json.field("frame_type", "new_connection_id")
                json.field("sequence_number", sequence)
                json.field("retire_prior_to", retirePriorTo)
                json.field("connection_id_length", id.count)
                json.field("connection_id", hex: id)
                json.field("stateless_reset_token", hex: token)
            case .retireConnectionID(let sequence):
                json.field("frame_type", "retire_connection_id")
                json.field("sequence_number", sequence)
            case .pathChallenge(let data):
                json.field("frame_type", "path_challenge")
                json.field("data", hex: data)
            case .pathResponse(let data):
                json.field("frame_type", "path_response")
                json.field("data", hex: data)
            case .handshakeDone:
                json.field("frame_type", "handshake_done")
            case .datagram(let data):
                json.field("frame_type", "datagram")
                json.field("raw", object: { $0.field("payload_length", data.count) })
            case .connectionClose:
                break  // written above
            }
        }
    }

    /// A flow-control frame: MAX_DATA, MAX_STREAM_DATA, MAX_STREAMS and their BLOCKED
    /// counterparts — the type, the stream or stream type if any, and the limit under `key`.
    private static func flowControl(_ type: StaticString, stream: StreamID? = nil, bidirectional: Bool? = nil, _ key: StaticString, _ value: UInt64,
                                    into json: inout QLogJSON) {
        json.field("frame_type", type)
        if let stream { json.field("stream_id", stream.rawValue) }
        if let bidirectional { json.field("stream_type", bidirectional ? "bidirectional" : "unidirectional") }
        json.field(key, value)
    }

    /// RESET_STREAM and STOP_SENDING's common members (an application error code, which qlog
    /// names `unknown` with the code beside it).
    private static func streamError(_ type: StaticString, _ stream: StreamID, code: UInt64, into json: inout QLogJSON) {
        json.field("frame_type", type)
        json.field("stream_id", stream.rawValue)
        json.field("error", "unknown")
        json.field("error_code", code)
    }

    /// A CONNECTION_CLOSE frame's members (QUIC events §8.13.20).
    static func connectionClose(_ close: ConnectionClose, into json: inout QLogJSON) {
        json.field("frame_type", "connection_close")
        json.field("error_space", close.isApplication ? "application" : "transport")
        if close.isApplication {
            json.field("error", "unknown")
            json.field("error_code", close.errorCode)
        } else {
            transportError(close.errorCode, into: &json, key: "error")
        }
        if !close.reason.isEmpty { json.field("reason", string: String(decoding: close.reason, as: UTF8.self)) }
        if let frameType = close.frameType, !close.isApplication { json.field("trigger_frame_type", frameType) }
    }

    /// A data-carrying frame's `raw`: its whole length (with a Length field) and its data's.
    private static func dataLength(_ length: Int, overhead: Int, into json: inout QLogJSON) {
        json.field("raw", object: { json in
            json.field("length", overhead + length)
            json.field("payload_length", length)
        })
    }
}

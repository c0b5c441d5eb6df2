import QuiverCore

/// An HTTP/3 frame (RFC 9114 §7.2). DATA payloads are delivered in pieces as they arrive (see
/// ``HTTP3FrameReader``); every other frame whole.
public enum HTTP3Frame: Hashable, Sendable {
    case data([UInt8])
    /// An encoded field section (QPACK).
    case headers([UInt8])
    case cancelPush(UInt64)
    case settings([HTTP3Setting])
    case pushPromise(pushID: UInt64, fieldSection: [UInt8])
    case goaway(UInt64)
    case maxPushID(UInt64)
    /// A frame of an unknown or reserved type, which receivers ignore (§9): its payload is
    /// skipped, not kept.
    case unknown(type: UInt64)

    /// Frame types (§11.2.1).
    public enum Kind {
        public static let data: UInt64 = 0x0
        public static let headers: UInt64 = 0x1
        public static let cancelPush: UInt64 = 0x3
        public static let settings: UInt64 = 0x4
        public static let pushPromise: UInt64 = 0x5
        public static let goaway: UInt64 = 0x7
        public static let maxPushID: UInt64 = 0xd
        /// HTTP/2 frame types that HTTP/3 reserves: receiving one is H3_FRAME_UNEXPECTED (§7.2.8).
        public static let http2Only: Set<UInt64> = [0x2, 0x6, 0x8, 0x9]
    }

    /// The frame on the wire.
    public var encoded: [UInt8] {
        var payload: [UInt8] = []
        let type: UInt64
        switch self {
        case .data(let bytes): return Self.header(Kind.data, bytes.count) + bytes
        case .headers(let bytes): return Self.header(Kind.headers, bytes.count) + bytes
        case .cancelPush(let id):
            type = Kind.cancelPush
            VarInt.write(id, into: &payload)
        case .settings(let settings):
            type = Kind.settings
            for setting in settings {
                VarInt.write(setting.identifier, into: &payload)
                VarInt.write(setting.value, into: &payload)
            }
        case .pushPromise(let id, let section):
            type = Kind.pushPromise
            VarInt.write(id, into: &payload)
            payload += section
        case .goaway(let id):
            type = Kind.goaway
            VarInt.write(id, into: &payload)
        case .maxPushID(let id):
            type = Kind.maxPushID
            VarInt.write(id, into: &payload)
        case .unknown(let unknownType):
            type = unknownType
        }
        return Self.header(type, payload.count) + payload
    }

    /// A frame's type and length.
    public static func header(_ type: UInt64, _ length: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        VarInt.write(type, into: &bytes)
        VarInt.write(UInt64(length), into: &bytes)
        return bytes
    }
}

/// One SETTINGS parameter (RFC 9114 §7.2.4, RFC 9204 §5).
public struct HTTP3Setting: Hashable, Sendable {
    public var identifier: UInt64
    public var value: UInt64

    public init(_ identifier: UInt64, _ value: UInt64) {
        self.identifier = identifier
        self.value = value
    }

    public static let qpackMaxTableCapacity: UInt64 = 0x1
    public static let maxFieldSectionSize: UInt64 = 0x6
    public static let qpackBlockedStreams: UInt64 = 0x7
    /// HTTP/2 settings HTTP/3 forbids (H3_SETTINGS_ERROR, §7.2.4.1).
    public static let http2Only: Set<UInt64> = [0x2, 0x3, 0x4, 0x5]
}

/// Splits a stream's bytes into HTTP/3 frames, incrementally: append what arrives, take frames
/// until `nil`. DATA payloads come out in pieces as they arrive, so a large body is never
/// buffered; other frames are buffered whole up to `maxFrameSize`, and unknown frames are
/// skipped without buffering.
public struct HTTP3FrameReader: Sendable {
    private var buffer: [UInt8] = []
    private var head = 0
    /// Payload bytes still to come of the DATA (or skipped unknown) frame being read.
    private var remaining = 0
    private var skipping = false
    /// The largest non-DATA frame accepted.
    public let maxFrameSize: Int

    public init(maxFrameSize: Int = 1 << 16) {
        self.maxFrameSize = maxFrameSize
    }

    public mutating func append(_ bytes: [UInt8]) {
        if head == buffer.count {
            // Nothing left unread: take the array as it is (a DATA piece that covers all of
            // it is then handed on without a copy).
            buffer = bytes
            head = 0
            return
        } else if head > 1 << 16 {
            buffer.removeFirst(head)
            head = 0
        }
        buffer += bytes
    }

    /// Whether the bytes so far end exactly at a frame boundary (a stream may end only there:
    /// otherwise H3_FRAME_ERROR, §7.1).
    public var isAtFrameBoundary: Bool { remaining == 0 && head == buffer.count }

    /// The next frame, a piece of a DATA frame, or `nil` when more bytes are needed.
    /// - Throws: `H3_FRAME_ERROR` for a malformed frame, `H3_EXCESSIVE_LOAD` for one larger
    ///   than ``maxFrameSize``.
    public mutating func next() throws(HTTP3Error) -> HTTP3Frame? {
        while true {
            if remaining > 0 {
                let count = min(remaining, buffer.count - head)
                guard count > 0 else { return nil }
                let piece = head == 0 && count == buffer.count ? buffer : Array(buffer[head..<head + count])
                head += count
                remaining -= count
                if skipping { continue }
                return .data(piece)
            }
            var reader = ByteReader(buffer, from: head)
            guard let type = try? reader.readVarInt(), let length = try? reader.readVarInt() else { return nil }
            if type == HTTP3Frame.Kind.data {
                head = reader.offset
                guard length > 0 else { return .data([]) }
                remaining = Int(clamping: length)
                skipping = false
                continue
            }
            let known: Set<UInt64> = [HTTP3Frame.Kind.headers, HTTP3Frame.Kind.cancelPush, HTTP3Frame.Kind.settings,
                                      HTTP3Frame.Kind.pushPromise, HTTP3Frame.Kind.goaway, HTTP3Frame.Kind.maxPushID]
            if !known.contains(type) {
                if HTTP3Frame.Kind.http2Only.contains(type) {
                    throw HTTP3Error(.frameUnexpected, "HTTP/2 frame type 0x\(String(type, radix: 16))")
                }
                head = reader.offset
                remaining = Int(clamping: length)
                skipping = true
                if remaining == 0 { return .unknown(type: type) }
                continue
            }
            guard length <= UInt64(maxFrameSize) else {
                throw HTTP3Error(.excessiveLoad, "frame of type 0x\(String(type, radix: 16)) with \(length) bytes")
            }
            guard reader.remaining >= Int(length) else { return nil }
            let payloadStart = reader.offset
            head = payloadStart + Int(length)
            return try Self.parse(type: type, payload: Array(buffer[payloadStart..<head]))
        }
    }

    private static func parse(type: UInt64, payload: [UInt8]) throws(HTTP3Error) -> HTTP3Frame {
        var reader = ByteReader(payload)
        do {
            switch type {
            case HTTP3Frame.Kind.headers:
                return .headers(payload)
            case HTTP3Frame.Kind.settings:
                var settings: [HTTP3Setting] = []
                var seen: Set<UInt64> = []
                while !reader.isAtEnd {
                    let setting = HTTP3Setting(try reader.readVarInt(), try reader.readVarInt())
                    guard seen.insert(setting.identifier).inserted else {
                        throw HTTP3Error(.settingsError, "setting 0x\(String(setting.identifier, radix: 16)) repeated")
                    }
                    guard !HTTP3Setting.http2Only.contains(setting.identifier) else {
                        throw HTTP3Error(.settingsError, "HTTP/2 setting 0x\(String(setting.identifier, radix: 16))")
                    }
                    settings.append(setting)
                }
                return .settings(settings)
            case HTTP3Frame.Kind.pushPromise:
                let id = try reader.readVarInt()
                return .pushPromise(pushID: id, fieldSection: reader.remainingBytes)
            default:
                let value = try reader.readVarInt()
                try reader.expectEnd("frame")
                switch type {
                case HTTP3Frame.Kind.cancelPush: return .cancelPush(value)
                case HTTP3Frame.Kind.goaway: return .goaway(value)
                default: return .maxPushID(value)
                }
            }
        } catch let error as HTTP3Error {
            throw error
        } catch {
            throw HTTP3Error(.frameError, "malformed frame of type 0x\(String(type, radix: 16)): \(error)")
        }
    }
}

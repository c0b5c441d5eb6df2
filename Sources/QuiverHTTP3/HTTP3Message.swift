import Quiver
import QuiverCore

/// An HTTP request as HTTP/3 carries it.
public struct HTTP3Request: Sendable {
    public var method: String
    public var scheme: String
    public var authority: String
    public var path: String
    /// Regular header fields (no pseudo-headers).
    public var headers: [HTTPField]
    public var body: [UInt8]

    public init(method: String = "GET", scheme: String = "https", authority: String, path: String,
                headers: [HTTPField] = [], body: [UInt8] = []) {
        self.method = method
        self.scheme = scheme
        self.authority = authority
        self.path = path
        self.headers = headers
        self.body = body
    }

    /// The field section: pseudo-headers first (RFC 9114 §4.3.1).
    var fields: [HTTPField] {
        [HTTPField(":method", method), HTTPField(":scheme", scheme), HTTPField(":authority", authority), HTTPField(":path", path)] + headers
    }
}

/// An HTTP response.
public struct HTTP3Response: Sendable {
    public var status: Int
    /// Regular header fields.
    public var headers: [HTTPField]
    /// The body, unless the client asked to receive it in pieces.
    public var body: [UInt8]
    /// Trailer fields, if any.
    public var trailers: [HTTPField]

    public init(status: Int, headers: [HTTPField] = [], body: [UInt8] = [], trailers: [HTTPField] = []) {
        self.status = status
        self.headers = headers
        self.body = body
        self.trailers = trailers
    }
}

/// Reads one HTTP message (request or response) from a stream: HEADERS, DATA…, optional
/// trailing HEADERS, then the end of the stream (RFC 9114 §4.1).
struct MessageReader {
    enum Failure: Error {
        /// Close the connection with this error.
        case connection(HTTP3Error)
        /// Reset the stream with this error (a malformed message, §4.1.2).
        case stream(HTTP3Error)
        /// The stream or connection failed underneath.
        case transport(QuiverError)
        /// The reading task was cancelled.
        case cancelled
    }

    let stream: Quiver.Stream
    let maxFieldSectionSize: Int
    private var frames = HTTP3FrameReader()
    private var ended = false

    init(stream: Quiver.Stream, maxFieldSectionSize: Int = 1 << 16) {
        self.stream = stream
        self.maxFieldSectionSize = maxFieldSectionSize
    }

    /// The next frame; `nil` at the end of the stream. Suspends while the stream has no data.
    mutating func nextFrame() async throws(Failure) -> HTTP3Frame? {
        while true {
            do throws(HTTP3Error) {
                if let frame = try frames.next() { return frame }
            } catch {
                throw .connection(error)
            }
            if ended {
                guard frames.isAtFrameBoundary else { throw .connection(HTTP3Error(.frameError, "stream ended inside a frame")) }
                return nil
            }
            let bytes: [UInt8]
            do {
                bytes = try await stream.read()
            } catch let error as QuiverError {
                throw .transport(error)
            } catch {
                throw .cancelled
            }
            if bytes.isEmpty { ended = true } else { frames.append(bytes) }
        }
    }

    /// Reads a field section (skipping unknown frames); `nil` at the end of the stream.
    mutating func fieldSection() async throws(Failure) -> [HTTPField]? {
        while let frame = try await nextFrame() {
            switch frame {
            case .headers(let section):
                do throws(HTTP3Error) { return try QPACK.decode(section, maxSize: maxFieldSectionSize) } catch {
                    // A field section too large is a stream error; malformed QPACK is a connection error.
                    throw error.code == .excessiveLoad ? .stream(HTTP3Error(.messageError, error.reason)) : .connection(error)
                }
            case .unknown:
                continue
            case .data:
                throw .connection(HTTP3Error(.frameUnexpected, "DATA before HEADERS"))
            default:
                throw .connection(HTTP3Error(.frameUnexpected, "\(frame) on a request stream"))
            }
        }
        return nil
    }

    /// Reads the body to the end of the stream, handing each piece to `body`; returns the
    /// trailers (empty if none).
    mutating func body(_ body: ([UInt8]) async throws(Failure) -> Void) async throws(Failure) -> [HTTPField] {
        var trailers: [HTTPField]?
        while let frame = try await nextFrame() {
            switch frame {
            case .data(let bytes):
                guard trailers == nil else { throw .connection(HTTP3Error(.frameUnexpected, "DATA after trailers")) }
                if !bytes.isEmpty { try await body(bytes) }
            case .headers(let section):
                guard trailers == nil else { throw .connection(HTTP3Error(.frameUnexpected, "HEADERS after trailers")) }
                do throws(HTTP3Error) { trailers = try QPACK.decode(section, maxSize: maxFieldSectionSize) } catch {
                    throw error.code == .excessiveLoad ? .stream(HTTP3Error(.messageError, error.reason)) : .connection(error)
                }
            case .unknown:
                continue
            default:
                throw .connection(HTTP3Error(.frameUnexpected, "\(frame) on a request stream"))
            }
        }
        return trailers ?? []
    }
}

/// Field validation shared by requests and responses (RFC 9114 §4.2, §4.3).
enum FieldRules {
    static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// Splits `fields` into pseudo-headers and regular fields, checking the rules every message
    /// follows: lowercase names, pseudo-headers first and not repeated, only `allowed` ones,
    /// no connection-specific fields.
    static func split(_ fields: [HTTPField], allowed: Set<String>) throws(HTTP3Error) -> (pseudo: [String: String], regular: [HTTPField]) {
        var pseudo: [String: String] = [:]
        var regular: [HTTPField] = []
        for field in fields {
            guard !field.name.isEmpty, !field.name.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5a }) else {
                throw HTTP3Error(.messageError, "field name \(field.name) is empty or not lowercase")
            }
            if field.name.hasPrefix(":") {
                guard regular.isEmpty else { throw HTTP3Error(.messageError, "pseudo-header \(field.name) after regular fields") }
                guard allowed.contains(field.name) else { throw HTTP3Error(.messageError, "pseudo-header \(field.name) not allowed here") }
                guard pseudo.updateValue(field.value, forKey: field.name) == nil else {
                    throw HTTP3Error(.messageError, "pseudo-header \(field.name) repeated")
                }
            } else {
                guard !connectionSpecific.contains(field.name), field.name != "te" || field.value == "trailers" else {
                    throw HTTP3Error(.messageError, "connection-specific field \(field.name)")
                }
                regular.append(field)
            }
        }
        return (pseudo, regular)
    }

    /// A request from its field section.
    static func request(_ fields: [HTTPField]) throws(HTTP3Error) -> HTTP3Request {
        let (pseudo, regular) = try split(fields, allowed: [":method", ":scheme", ":authority", ":path", ":protocol"])
        guard let method = pseudo[":method"] else { throw HTTP3Error(.messageError, "no :method") }
        let authority = pseudo[":authority"] ?? regular.first { $0.name == "host" }?.value ?? ""
        if method == "CONNECT" {
            throw HTTP3Error(.requestRejected, "CONNECT is not supported")
        }
        guard let scheme = pseudo[":scheme"], let path = pseudo[":path"], !path.isEmpty else {
            throw HTTP3Error(.messageError, "request without :scheme or :path")
        }
        return HTTP3Request(method: method, scheme: scheme, authority: authority, path: path, headers: regular)
    }

    /// A response head from its field section.
    static func response(_ fields: [HTTPField]) throws(HTTP3Error) -> HTTP3Response {
        let (pseudo, regular) = try split(fields, allowed: [":status"])
        guard let text = pseudo[":status"], text.utf8.count == 3, let status = Int(text), (100...999).contains(status) else {
            throw HTTP3Error(.messageError, "response without a valid :status")
        }
        return HTTP3Response(status: status, headers: regular)
    }
}

public import HTTPTypes
import Quiver
import QuiverCore

/// A response as ``HTTP3Client`` returns it: the final head, the body (unless it was handed
/// over in pieces) and the trailers.
public struct HTTP3Response: Sendable {
    /// The status and header fields of the final response (informational ones are skipped).
    public var head: HTTPResponse
    /// The body, unless the client asked to receive it in pieces.
    public var body: [UInt8]
    /// Trailer fields, if any.
    public var trailers: HTTPFields

    public init(head: HTTPResponse, body: [UInt8] = [], trailers: HTTPFields = [:]) {
        self.head = head
        self.body = body
        self.trailers = trailers
    }

    /// The final status.
    public var status: HTTPResponse.Status { head.status }
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
    /// Decodes field sections (its QPACK decoder), told when we stop reading early.
    let session: HTTP3Session
    private var frames = HTTP3FrameReader()
    private var ended = false

    init(stream: Quiver.Stream, session: HTTP3Session) {
        self.stream = stream
        self.session = session
    }

    /// Stops reading before the end of the stream: the peer's encoder may forget its
    /// references there (a no-op once the stream was read to its end).
    func abandon() {
        if !ended { session.abandon(stream) }
    }

    /// Whether the stream's end already arrived with no frame left unread (a request without
    /// a body whose FIN was not read yet); checked without waiting.
    mutating func reachedEnd() -> Bool {
        if !ended, frames.isAtFrameBoundary, let bytes = try? stream.tryRead(), bytes.isEmpty { ended = true }
        return ended && frames.isAtFrameBoundary
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
                abandon()  // reset by the peer, or the connection ended
                throw .transport(error)
            } catch {
                abandon()
                throw .cancelled
            }
            if bytes.isEmpty { ended = true } else { frames.append(bytes) }
        }
    }

    /// Reads a field section (skipping unknown frames); `nil` at the end of the stream.
    mutating func fieldSection() async throws(Failure) -> [FieldLine]? {
        while let frame = try await nextFrame() {
            switch frame {
            case .headers(let section):
                return try await session.decode(section, on: stream)
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

    /// The trailers, once ``nextData()`` returned `nil` after a trailing HEADERS frame.
    private(set) var trailers: [FieldLine]?

    /// The next piece of the body (a DATA frame's payload, never empty); `nil` at the end of
    /// the stream, with the ``trailers`` read if any.
    mutating func nextData() async throws(Failure) -> [UInt8]? {
        while let frame = try await nextFrame() {
            switch frame {
            case .data(let bytes):
                guard trailers == nil else { throw .connection(HTTP3Error(.frameUnexpected, "DATA after trailers")) }
                if !bytes.isEmpty { return bytes }
            case .headers(let section):
                guard trailers == nil else { throw .connection(HTTP3Error(.frameUnexpected, "HEADERS after trailers")) }
                trailers = try await session.decode(section, on: stream)
            case .unknown:
                continue
            default:
                throw .connection(HTTP3Error(.frameUnexpected, "\(frame) on a request stream"))
            }
        }
        return nil
    }
}

/// Field validation shared by requests and responses (RFC 9114 §4.2, §4.3).
enum FieldRules {
    static let connectionSpecific: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]

    /// Splits `fields` into pseudo-headers and regular fields, checking the rules every message
    /// follows: lowercase names, pseudo-headers first and not repeated, only `allowed` ones,
    /// no connection-specific fields, names and values HTTP allows.
    static func split(_ fields: [FieldLine], allowed: Set<String>) throws(HTTP3Error) -> (pseudo: [String: String], regular: HTTPFields) {
        var pseudo: [String: String] = [:]
        var regular = HTTPFields()
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
                regular.append(try httpField(field))
            }
        }
        return (pseudo, regular)
    }

    /// Trailer fields: no pseudo-headers (RFC 9114 §4.3).
    static func trailers(_ fields: [FieldLine]) throws(HTTP3Error) -> HTTPFields {
        try split(fields, allowed: []).regular
    }

    /// A field of a message: a token for the name, a value without CR, LF, NUL or surrounding
    /// whitespace (RFC 9114 §4.2, RFC 9110 §5.5), else the message is malformed.
    private static func httpField(_ line: FieldLine) throws(HTTP3Error) -> HTTPField {
        guard let name = HTTPField.Name(line.name) else { throw HTTP3Error(.messageError, "field name \(line.name) is not a token") }
        guard HTTPField.isValidValue(line.value) else { throw HTTP3Error(.messageError, "the value of \(line.name) has characters HTTP does not allow") }
        var field = HTTPField(name: name, value: line.value)
        if line.neverIndexed { field.indexingStrategy = .disallow }
        return field
    }

    /// A request from its field section.
    static func request(_ fields: [FieldLine]) throws(HTTP3Error) -> HTTPRequest {
        let (pseudo, regular) = try split(fields, allowed: [":method", ":scheme", ":authority", ":path", ":protocol"])
        guard let text = pseudo[":method"] else { throw HTTP3Error(.messageError, "no :method") }
        guard let method = HTTPRequest.Method(text) else { throw HTTP3Error(.messageError, ":method \(text) is not a token") }
        if method == .connect || pseudo[":protocol"] != nil {
            throw HTTP3Error(.requestRejected, "CONNECT is not supported")
        }
        guard let scheme = pseudo[":scheme"], let path = pseudo[":path"], !path.isEmpty else {
            throw HTTP3Error(.messageError, "request without :scheme or :path")
        }
        let authority = pseudo[":authority"] ?? regular[HTTPField.Name("host")!]
        return HTTPRequest(method: method, scheme: scheme, authority: authority, path: path, headerFields: regular)
    }

    /// A response head from its field section.
    static func response(_ fields: [FieldLine]) throws(HTTP3Error) -> HTTPResponse {
        let (pseudo, regular) = try split(fields, allowed: [":status"])
        guard let text = pseudo[":status"], text.utf8.count == 3, let status = Int(text), (100...999).contains(status) else {
            throw HTTP3Error(.messageError, "response without a valid :status")
        }
        return HTTPResponse(status: HTTPResponse.Status(code: status), headerFields: regular)
    }

    /// A request's field section: pseudo-headers first (RFC 9114 §4.3.1).
    static func lines(_ request: HTTPRequest) -> [FieldLine] {
        var lines = [FieldLine(":method", request.method.rawValue)]
        if let scheme = request.scheme { lines.append(FieldLine(":scheme", scheme)) }
        if let authority = request.authority { lines.append(FieldLine(":authority", authority)) }
        if let path = request.path { lines.append(FieldLine(":path", path)) }
        return lines + self.lines(request.headerFields)
    }

    /// A response head's field section.
    static func lines(_ response: HTTPResponse) -> [FieldLine] {
        [FieldLine(":status", String(response.status.code))] + lines(response.headerFields)
    }

    /// Regular fields as field lines, names lowercase.
    static func lines(_ fields: HTTPFields) -> [FieldLine] {
        fields.map { FieldLine($0.name.canonicalName, $0.value, neverIndexed: $0.indexingStrategy == .disallow) }
    }
}

import Foundation
import Quiver
import QuiverCore
@testable import QuiverHTTP3
import QuiverTLS
import Synchronization
import Testing

@Suite("HTTP/3 and hq-interop over Quiver connections")
struct HTTP3EndToEndTests {
    /// A QUIC listener serving `/N`, an upload echo at `/echo` and 404 otherwise, with ALPN h3
    /// and hq-interop; returns it and its port.
    private func startServer() throws -> (Listener, UInt16) {
        let tls = Identity.server(alpn: ["h3", "hq-interop"])
        let listener = try Listener(.quic, tls: tls, bind: "127.0.0.1:0")
        Task(executorPreference: DedicatedExecutor.shared) {
            await withDiscardingTaskGroup { group in
                do {
                    for try await connection in listener.connections { group.addTask { await Self.serve(connection) } }
                } catch {}  // the listener closed
            }
        }
        return (listener, listener.localAddresses[0].port)
    }

    private static func serve(_ connection: Connection) async {
        if connection.alpn == "hq-interop" {
            await HQInterop.serve(connection) { ResponseBody.file(root: "/nonexistent", path: $0) }
            return
        }
        await HTTP3Server.serve(connection, maxRequestBody: 1 << 20) { request, body, response in
            if request.path == "/repeat" {
                // The same response fields every time, and the client's session echoed: worth a table entry.
                try await response.writeHead(HTTPResponse(status: .ok, headerFields: [.contentType: "text/plain; charset=utf-8", .server: "quiver-e2e",
                                                                                       Self.session: request.headerFields[Self.session] ?? "none"]))
                try await response.write(Array((request.headerFields[Self.session] ?? "").utf8))
            } else if request.path == "/echo" {
                // Streamed: each piece echoed as it arrives, the count in a trailer.
                try await response.writeHead(HTTPResponse(status: .ok, headerFields: [Self.method: request.method.rawValue]))
                var count = 0
                for try await piece in body {
                    count += piece.count
                    try await response.write(piece)
                }
                try await response.finish(trailers: [Self.length: "\(count)", Self.clientTrailer: body.trailers[Self.clientTrailer] ?? "none"])
            } else if request.path == "/early" {
                // Answered before the body is read: the rest is refused with STOP_SENDING(H3_NO_ERROR).
                try await response.writeHead(HTTPResponse(status: .accepted))
            } else if let file = ResponseBody.file(root: "/nonexistent", path: request.path ?? "/") {
                try await response.writeHead(HTTPResponse(status: .ok, headerFields: [.contentLength: "\(file.count)"]))
                try await file.write { piece in try await response.write(piece) }
            } else {
                try await response.writeHead(HTTPResponse(status: .notFound))
            }
        }
    }

    static let method = HTTPField.Name("x-method")!
    static let length = HTTPField.Name("x-length")!
    static let clientTrailer = HTTPField.Name("x-client-trailer")!
    static let session = HTTPField.Name("x-session")!

    private func client(_ port: UInt16, alpn: String) throws -> Connection {
        try Connection.connect(.quic, to: "127.0.0.1", port: port, tls: Identity.client(alpn: [alpn]), serverName: "localhost")
    }

    @Test("50 concurrent HTTP/3 GETs of generated bodies, an upload echoed with trailers, a 404, then a clean close")
    func http3() async throws {
        try await onDedicatedThreads {
            let (listener, port) = try startServer()
            defer { listener.close() }
            let connection = try client(port, alpn: "h3")
            let h3 = try HTTP3Client(connection)
            try await withThrowingTaskGroup { group in
                for index in 0..<50 {
                    group.addTask {
                        let size = index * 1021
                        let response = try await h3.get("/\(size)", authority: "localhost")
                        #expect(response.status == .ok && response.body == ResponseBody.generatedBytes(0..<size), "request \(index)")
                        #expect(response.head.headerFields[.contentLength] == "\(size)", "request \(index)")
                    }
                }
                try await group.waitForAll()
            }
            let upload = payload(seed: 3, count: 300_000)
            let post = HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/echo")
            let echoed = try await h3.send(post, body: upload)
            #expect(echoed.status == .ok && echoed.body == upload)
            #expect(echoed.head.headerFields == [Self.method: "POST"] && echoed.trailers == [Self.length: "300000", Self.clientTrailer: "none"])
            #expect(try await h3.get("/missing", authority: "localhost").status == .notFound)
            let early = try await h3.send(HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/early"), body: upload)
            #expect(early.status == .accepted)
            // Over the server's limit: the stream is reset with H3_EXCESSIVE_LOAD.
            await #expect(throws: (any Error).self) { _ = try await h3.send(post, body: payload(seed: 4, count: (1 << 20) + 1)) }
            h3.close()
            await connection.waitUntilClosed()
            #expect(connection.closeInfo?.code == HTTP3Error.Code.noError.rawValue)
        }
    }

    /// A request body of `pieces` that waits, before piece `waitBefore`, until `gate` yields,
    /// and throws ``Failed`` instead of yielding piece `failAt`.
    struct GatedBody: AsyncSequence, Sendable {
        struct Failed: Error {}
        var pieces: [[UInt8]]
        var waitBefore: Int?
        var gate: AsyncStream<Void>
        var failAt: Int?

        struct AsyncIterator: AsyncIteratorProtocol {
            let body: GatedBody
            var gate: AsyncStream<Void>.Iterator
            var index = 0

            mutating func next() async throws -> [UInt8]? {
                guard index < body.pieces.count else { return nil }
                if index == body.failAt { throw Failed() }
                if index == body.waitBefore, await gate.next() == nil { return nil }  // cancelled
                defer { index += 1 }
                return body.pieces[index]
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self, gate: gate.makeAsyncIterator()) }
    }

    @Test("A streamed request body is echoed while it is sent (its second half waits for the first echo); an early answer and a failing body end it")
    func streamedRequestBody() async throws {
        try await onDedicatedThreads {
            let (listener, port) = try startServer()
            defer { listener.close() }
            let connection = try client(port, alpn: "h3")
            let h3 = try HTTP3Client(connection)
            let post = HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/echo")
            // 800 kB, over the stream's flow-control window: only a client that reads the
            // response while it sends gets past piece 4, which waits for the first echoed bytes.
            let pieces = (0..<8).map { payload(seed: UInt64(10 + $0), count: 100_000) }
            let (gate, opener) = AsyncStream<Void>.makeStream()
            var echoed: [UInt8] = []
            let response = try await h3.send(post, streaming: GatedBody(pieces: pieces, waitBefore: 4, gate: gate)) { bytes in
                echoed += bytes
                opener.yield()
            }
            #expect(response.status == .ok && response.body.isEmpty)
            #expect(echoed == pieces.flatMap { $0 })
            #expect(response.trailers[Self.length] == "800000")

            // Answered at once: the body, stuck before its second piece, is not waited for.
            let (never, _) = AsyncStream<Void>.makeStream()
            let early = HTTPRequest(method: .post, scheme: "https", authority: "localhost", path: "/early")
            #expect(try await h3.send(early, streaming: GatedBody(pieces: pieces, waitBefore: 1, gate: never)).status == .accepted)

            // The body fails part-way: the request is cancelled and its error thrown.
            await #expect(throws: GatedBody.Failed.self) {
                _ = try await h3.send(post, streaming: GatedBody(pieces: pieces, gate: never, failAt: 3))
            }
            // The connection serves on.
            #expect(try await h3.get("/10", authority: "localhost").body == ResponseBody.generatedBytes(0..<10))
            h3.close()
            await connection.waitUntilClosed()
        }
    }

    @Test("QPACK's dynamic table is used both ways between Quiver ends: 50 concurrent requests with repeated fields")
    func dynamicTable() async throws {
        try await onDedicatedThreads {
            let (listener, port) = try startServer()
            defer { listener.close() }
            let connection = try client(port, alpn: "h3")
            let h3 = try HTTP3Client(connection)
            // One request first: the server's SETTINGS are in before the burst.
            var request = HTTPRequest(method: .get, scheme: "https", authority: "localhost", path: "/repeat")
            request.headerFields = [.userAgent: "quiver-e2e/1.0", Self.session: "session-4f2a9c", .accept: "text/plain"]
            #expect(try await h3.send(request).body == Array("session-4f2a9c".utf8))
            let repeated = request
            try await withThrowingTaskGroup { group in
                for index in 0..<50 {
                    group.addTask {
                        var request = repeated
                        request.headerFields[.authorization] = "Bearer \(index)"  // never inserted
                        let response = try await h3.send(request)
                        #expect(response.status == .ok && response.body == Array("session-4f2a9c".utf8), "request \(index)")
                        #expect(response.head.headerFields[.contentType] == "text/plain; charset=utf-8" && response.head.headerFields[.server] == "quiver-e2e")
                        #expect(response.head.headerFields[Self.session] == "session-4f2a9c")
                    }
                }
                try await group.waitForAll()
            }
            // Whenever the acknowledgments arrive, at least the 16 sections that may block (both
            // ends announce 16) use the table each way. (The first request may precede the
            // server's SETTINGS, so it may not.)
            let statistics = h3.qpackStatistics
            #expect(statistics.insertsSent >= 3 && statistics.sectionsEncodedWithTable >= 16, "\(statistics)")
            #expect(statistics.insertsReceived >= 2 && statistics.sectionsDecodedWithTable >= 16, "\(statistics)")
            h3.close()
            await connection.waitUntilClosed()
            #expect(connection.closeInfo?.code == HTTP3Error.Code.noError.rawValue)
        }
    }

    /// A raw HTTP/3 client's streams: control (empty SETTINGS: the server encodes without a
    /// table) and encoder.
    private func rawClient(_ port: UInt16) throws -> (Connection, encoder: Quiver.Stream) {
        let connection = try client(port, alpn: "h3")
        try connection.openStream(bidirectional: false).write([0x00] + HTTP3Frame.settings([]).encoded)
        let encoder = try connection.openStream(bidirectional: false)
        try encoder.write([0x02, 0x3f, 0xe1, 0x1f])  // Set Dynamic Table Capacity 4096
        return (connection, encoder)
    }

    /// GET /5 whose :authority is the dynamic entry 0 (post-base): Required Insert Count 1
    /// (encoded 2), Base 0.
    private static let requestReferencingInsert0: [UInt8] = HTTP3Frame.headers([0x02, 0x80, 0xd1, 0xd7, 0x51, 0x02, 0x2f, 0x35, 0x10]).encoded

    @Test("Over the wire: a request whose insert comes later is answered once it arrives; the 17th blocked stream closes the connection")
    func blockedRequests() throws {
        let (listener, port) = try startServer()
        defer { listener.close() }
        // The insert follows the request that needs it.
        let (connection, encoder) = try rawClient(port)
        let request = try connection.openStream()
        try request.write(Self.requestReferencingInsert0)
        try request.finish()
        try encoder.write([0xc0, 0x09] + Array("localhost".utf8))  // Insert With Name Reference, static 0 (:authority)
        var frames = HTTP3FrameReader()
        var head: [FieldLine]?
        while head == nil {
            let bytes = try request.read()
            #expect(!bytes.isEmpty, "the stream ended before the response head")
            if bytes.isEmpty { break }
            frames.append(bytes)
            while let frame = try frames.next() { if case .headers(let section) = frame { head = try QPACK.decode(section) } }
        }
        #expect(head?.first == FieldLine(":status", "200"))
        try connection.shutdown(.rapid(code: 0x100, reason: ""))

        // 17 requests wait for an insert that never comes: one more than the 16 announced.
        let (blocking, _) = try rawClient(port)
        for _ in 0..<17 {
            let stream = try blocking.openStream()
            try stream.write(Self.requestReferencingInsert0)
        }
        blocking.waitUntilClosed()
        #expect(blocking.closeInfo?.origin == .peer && blocking.closeInfo?.code == HTTP3Error.Code.qpackDecompressionFailed.rawValue,
                "\(String(describing: blocking.closeInfo))")
    }

    @Test("A hostile encoder stream closes the connection with QPACK_ENCODER_STREAM_ERROR")
    func hostileEncoderStream() throws {
        let (listener, port) = try startServer()
        defer { listener.close() }
        var oversized: [UInt8] = [0x02, 0x3f, 0xe1, 0x1f, 0x40 | 0x01, 0x61]  // capacity 4096, a literal name "a" …
        QPACK.encodeInteger(100_000, prefixBits: 7, flags: 0, into: &oversized)  // … and a value far beyond it
        for bytes in [[0x02, 0x3f, 0xe2, 0x1f], oversized, [0x02, 0x3f, 0xe1, 0x1f, 0x80, 0x00]] {
            let connection = try client(port, alpn: "h3")
            try connection.openStream(bidirectional: false).write(bytes)
            connection.waitUntilClosed()
            #expect(connection.closeInfo?.origin == .peer && connection.closeInfo?.code == HTTP3Error.Code.qpackEncoderStreamError.rawValue,
                    "\(String(describing: connection.closeInfo))")
        }
    }

    @Test("hq-interop: 20 concurrent GETs; a missing file resets its stream")
    func hqInterop() async throws {
        try await onDedicatedThreads {
            let (listener, port) = try startServer()
            defer { listener.close() }
            let connection = try client(port, alpn: "hq-interop")
            try await withThrowingTaskGroup { group in
                for index in 0..<20 {
                    group.addTask {
                        var body: [UInt8] = []
                        try await HQInterop.get("/\(index * 4099)", on: connection) { body += $0 }
                        #expect(body == ResponseBody.generatedBytes(0..<index * 4099), "request \(index): \(body.count) bytes")
                    }
                }
                try await group.waitForAll()
            }
            await #expect(throws: QuiverError.self) { try await HQInterop.get("/missing", on: connection) { _ in } }
            try await connection.shutdown(.rapid(code: 0, reason: ""))
        }
    }

    @Test("A client that sends no SETTINGS first, or a second control stream, gets the connection closed with the right code")
    func controlStreamErrors() throws {
        let (listener, port) = try startServer()
        defer { listener.close() }
        for (bytes, code) in [([UInt8(0x00)] + HTTP3Frame.goaway(0).encoded, HTTP3Error.Code.missingSettings),
                              ([0x00] + HTTP3Frame.settings([]).encoded + HTTP3Frame.data([1]).encoded, .frameUnexpected)] {
            let connection = try client(port, alpn: "h3")
            let control = try connection.openStream(bidirectional: false)
            try control.write(bytes)
            connection.waitUntilClosed()
            #expect(connection.closeInfo?.origin == .peer && connection.closeInfo?.code == code.rawValue, "\(String(describing: connection.closeInfo))")
        }
    }
}

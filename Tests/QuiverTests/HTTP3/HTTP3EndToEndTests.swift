import Foundation
import Quiver
import QuiverCore
import QuiverHTTP3
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
            if request.path == "/echo" {
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

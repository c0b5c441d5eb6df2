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
        await HTTP3Server.serve(connection) { request, response in
            if request.path == "/echo" {
                try await response.writeHead(status: 200, headers: [HTTPField("x-method", request.method)])
                try await response.write(request.body)
                try await response.finish(trailers: [HTTPField("x-length", "\(request.body.count)")])
            } else if let body = ResponseBody.file(root: "/nonexistent", path: request.path) {
                try await response.writeHead(status: 200, headers: [HTTPField("content-length", "\(body.count)")])
                try await body.write { piece in try await response.write(piece) }
            } else {
                try await response.writeHead(status: 404)
            }
        }
    }

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
                        #expect(response.status == 200 && response.body == ResponseBody.generatedBytes(0..<size), "request \(index)")
                        #expect(response.headers.contains(HTTPField("content-length", "\(size)")), "request \(index)")
                    }
                }
                try await group.waitForAll()
            }
            let upload = payload(seed: 3, count: 300_000)
            let echoed = try await h3.send(HTTP3Request(method: "POST", authority: "localhost", path: "/echo", body: upload))
            #expect(echoed.status == 200 && echoed.body == upload)
            #expect(echoed.headers == [HTTPField("x-method", "POST")] && echoed.trailers == [HTTPField("x-length", "300000")])
            #expect(try await h3.get("/missing", authority: "localhost").status == 404)
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

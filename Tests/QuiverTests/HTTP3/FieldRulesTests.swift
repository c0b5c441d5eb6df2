@testable import QuiverHTTP3
import Testing

/// Field sections to and from swift-http-types (RFC 9114 §4.2, §4.3).
@Suite("HTTP/3 field sections as HTTPTypes")
struct FieldRulesTests {
    private func request(_ extra: [FieldLine] = [], method: String = "GET") throws(HTTP3Error) -> HTTPRequest {
        try FieldRules.request([FieldLine(":method", method), FieldLine(":scheme", "https"), FieldLine(":authority", "example.com"),
                                FieldLine(":path", "/a?b")] + extra)
    }

    @Test("a request and a response round-trip through field lines, never-indexed fields kept so")
    func roundTrip() throws {
        var secret = HTTPField(name: .authorization, value: "Bearer x")
        secret.indexingStrategy = .disallow
        let original = HTTPRequest(method: .post, scheme: "https", authority: "example.com", path: "/up",
                                   headerFields: [.contentType: "text/plain", .userAgent: "quiver"] + HTTPFields([secret]))
        let lines = FieldRules.lines(original)
        #expect(lines.prefix(4).map(\.name) == [":method", ":scheme", ":authority", ":path"])
        let decoded = try FieldRules.request(try QPACK.decode(QPACK.encode(lines)))
        #expect(decoded == original)
        #expect(decoded.headerFields.first { $0.name == .authorization }?.indexingStrategy == .disallow)
        let response = HTTPResponse(status: .created, headerFields: [.location: "/up/1"])
        #expect(try FieldRules.response(FieldRules.lines(response)) == response)
    }

    @Test("malformed messages are refused with H3_MESSAGE_ERROR: bad names, bad values, order, connection-specific fields")
    func malformed() {
        let cases: [[FieldLine]] = [
            [FieldLine("X-Upper", "1")],
            [FieldLine("bad name", "1")],
            [FieldLine("x-crlf", "a\r\nb: c")],
            [FieldLine("x-nul", "a\u{0}b")],
            [FieldLine("x-space", " padded")],
            [FieldLine("connection", "close")],
            [FieldLine("te", "gzip")],
            [FieldLine("x-a", "1"), FieldLine(":status", "200")],
        ]
        for extra in cases {
            #expect(throws: HTTP3Error(.messageError, "")) { try request(extra) }
        }
        #expect(throws: HTTP3Error(.messageError, "")) { try request(method: "G T") }
        #expect(throws: HTTP3Error(.requestRejected, "")) { try request(method: "CONNECT") }
        #expect(throws: HTTP3Error(.requestRejected, "")) { try request([FieldLine(":protocol", "websocket")]) }
        #expect(throws: HTTP3Error(.messageError, "")) { try FieldRules.response([FieldLine(":status", "20")]) }
        #expect(throws: HTTP3Error(.messageError, "")) { try FieldRules.trailers([FieldLine(":path", "/")]) }
    }
}

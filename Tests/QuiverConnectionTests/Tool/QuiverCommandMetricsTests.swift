// quiver serve --metrics-port: Prometheus metrics over plain HTTP/1.1 (issue 21).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    @Test("serve --metrics-port: after a TLS and a QUIC handshake, GET /metrics shows them in Prometheus text; other paths, methods and garbage are refused")
    func metricsEndpoint() throws {
        let fixture = try InteropFixture()
        let (server, port) = try serve(["--metrics-port", "0", "--loops", "1"], fixture: fixture)  // TLS and QUIC
        defer { server.kill() }
        let announced = try #require(server.waitForErrorLine(containing: "/metrics", timeout: 5), "\(server.transcript)")
        let metricsPort = try #require(announced.split(separator: ":").last.flatMap { UInt16($0.prefix { $0.isNumber }) }, "\(announced)")
        #expect(announced.contains("http://127.0.0.1:"), "\(announced)")

        for transport in ["--tls", "--quic"] {
            let client = try run(["connect", transport, "--ca", fixture.cert, "--server-name", "localhost", "127.0.0.1:\(port)"],
                                 input: Array("metrics\n".utf8))
            #expect(client.waitForExit(timeout: 1) == 0, "\(client.transcript)")
            #expect(client.standardOutput == Array("metrics\n".utf8), "\(client.transcript)")  // echoed: the server accepted it
        }

        let response = try Self.http(port: metricsPort, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(response)")
        #expect(response.contains("text/plain; version=0.0.4"), "\(response)")
        for transport in ["tcp", "quic"] {
            let value = Self.sample(response, "quiver_handshakes_total", ["transport=\"\(transport)\"", "outcome=\"success\"", "reason=\"none\""])
            #expect((value ?? 0) >= 1, "\(transport): \(value.map { "\($0)" } ?? "missing")\n\(response)")
        }
        #expect(Self.sample(response, "quiver_handshakes_total", ["transport=\"quic\"", "outcome=\"failure\"", "reason=\"certificate\""]) == 0,
                "\(response)")
        #expect(response.contains("quiver_connections_open{transport=\"tcp\"}"), "\(response)")
        #expect(response.contains("# TYPE quiver_quic_smoothed_rtt_seconds histogram"), "\(response)")

        let notFound = try Self.http(port: metricsPort, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        #expect(notFound.hasPrefix("HTTP/1.1 404"), "\(notFound)")
        let wrongMethod = try Self.http(port: metricsPort, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        #expect(wrongMethod.hasPrefix("HTTP/1.1 405"), "\(wrongMethod)")
        let garbage = try Self.http(port: metricsPort, "\u{1}\u{2} not http at all\r\n\r\n")
        #expect(garbage.hasPrefix("HTTP/1.1 400"), "\(garbage)")
        // Still serving after all that.
        let again = try Self.http(port: metricsPort, "GET /metrics HTTP/1.0\r\n\r\n")
        #expect(again.contains("quiver_handshakes_total"), "\(again)")
    }

    @Test("serve --metrics-port refuses a bad port or address in one line")
    func metricsPortErrors() throws {
        expectOneLineError(try run(["serve", "--port", "0", "--metrics-port", "70000"]), containing: "--metrics-port")
        expectOneLineError(try run(["serve", "--port", "0", "--metrics-port", "0", "--metrics-address", "localhost"]),
                           containing: "--metrics-address")
    }

    /// The value of the sample of `name` whose labels include all of `labels`.
    static func sample(_ text: String, _ name: String, _ labels: [String]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") {
            guard labels.allSatisfy({ line.contains($0) }), let value = line.split(separator: " ").last else { continue }
            return Double(value)
        }
        return nil
    }

    /// Sends `request` to 127.0.0.1:`port` and reads the answer until the server closes (5 s at most).
    static func http(port: UInt16, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw InteropFailure("socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw InteropFailure("connect to the metrics port \(port): errno \(errno)") }
        let bytes = Array(request.utf8)
        guard send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw InteropFailure("send: errno \(errno)") }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = recv(fd, &buffer, buffer.count, 0)
            if count <= 0 { break }
            response += buffer[..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

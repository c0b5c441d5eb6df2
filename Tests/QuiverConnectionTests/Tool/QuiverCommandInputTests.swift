// Bad input never traps (issue 17, item 15); a port in use is said plainly (item 19).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    // MARK: - Item 15: no input traps

    @Test("Bad URLs, ports, addresses and TLS versions in get, connect and serve: one line and a non-zero exit, never a trap", arguments: [
        (["get", "--insecure", "https://localhost:99999/1"], "port 99999"),
        (["get", "--insecure", "https://localhost:65536/1"], "port 65536"),
        (["get", "--insecure", "https://localhost:0/1"], "port 0"),
        (["get", "--insecure", "https://localhost:99999999999999999999999/1"], "localhost"),
        (["get", "--insecure", "http://localhost:4433/1"], "not an https URL"),
        (["get", "--insecure", "https:///1"], nil),
        (["get", "--insecure", "not a url at all"], nil),
        (["get", "--insecure", "https://[::1/1"], nil),
        (["get", "--insecure", "https://localhost:4433/1", "https://127.0.0.1:4433/2"], "same host and port"),
        (["get", "--insecure", "--keep-alive", "0", "https://localhost:4433/1"], "--keep-alive must be more than 0 seconds"),
        (["get", "--insecure", "--keep-alive", "nan", "https://localhost:4433/1"], "--keep-alive must be more than 0 seconds"),
        (["serve", "--quic", "--port", "0", "--server-id", "01"], "--server-id names this host"),
        (["connect", "--insecure", "localhost:99999"], "99999"),
        (["connect", "--insecure", "localhost:0"], "port 0"),
        (["connect", "--insecure", "localhost:-5"], "-5"),
        (["connect", "--insecure", "localhost:http"], "not a number"),
        (["connect", "--insecure", "localhost"], "port is missing"),
        (["connect", "--insecure", "localhost:"], "port is missing"),
        (["connect", "--insecure", ":4433"], "host is missing"),
        (["connect", "--insecure", "::1:4433"], "brackets"),
        (["connect", "--insecure", "[::1:4433"], "HOST:PORT"),
        (["serve", "--port", "99999"], "--port 99999"),
        (["serve", "--port=-1"], "--port -1"),
        (["serve", "--port", "https"], "not a number"),
        (["serve", "--host", "localhost"], "not a numeric IP address"),
        (["serve", "--host", "999.1.1.1"], "not a numeric IP address"),
        (["serve", "--tls-min", "1.1"], "--tls-min must be 1.2 or 1.3"),
        (["connect", "localhost:4433", "--tls-version", "1.0"], "--tls-version must be 1.2 or 1.3"),
        (["serve", "--quic", "--dtls", "--port", "0"], "--quic, --dtls and --sctp each need the UDP port"),
        (["serve", "--sctp", "--dtls", "--port", "0"], "--quic, --dtls and --sctp each need the UDP port"),
        (["connect", "--sctp", "--tls", "localhost:4433"], "exclude each other"),
        (["connect", "--dtls", "--quic", "localhost:4433"], "exclude each other"),
        (["connect", "--dtls", "--tls-version", "1.3", "localhost:4433"], "--dtls-version with --dtls"),
        (["connect", "--tls", "--dtls-version", "1.3", "localhost:4433"], "--dtls-version with --dtls"),
        (["connect", "--dtls", "--dtls-version", "1.1", "localhost:4433"], "--dtls-version"),
    ] as [([String], String?)])
    func badInput(arguments: [String], message: String?) throws {
        let process = try run(arguments, timeout: 20)
        expectOneLineError(process, containing: message)
    }

    // MARK: - Item 19: a port in use

    @Test("A port in use is reported as such, without the IPv6 fallback message", arguments: [Transport.quic, .tcp])
    func portInUse(transport: Transport) throws {
        let port = try DemoTests.freePorts(1)
        let holder = try Listener(transport, tls: TLSConfiguration.server(chain: TestIdentity.p256.chain, key: TestIdentity.p256.key, alpn: ["echo"]),
                                  bind: "0.0.0.0:\(port)")
        defer { holder.close() }
        let process = try run(["serve", transport == .quic ? "--quic" : "--tls", "--port", "\(port)"], timeout: 30)
        #expect(!process.standardErrorText.contains("IPv6 unavailable"), "\(process.transcript)")
        let lines = process.standardErrorText.split(separator: "\n")
        #expect(lines.last?.contains("port \(port) is already in use") == true, "\(process.transcript)")
        #expect(!process.wasSignaled && process.waitForExit(timeout: 1).map { $0 != 0 } == true, "\(process.transcript)")
    }
}

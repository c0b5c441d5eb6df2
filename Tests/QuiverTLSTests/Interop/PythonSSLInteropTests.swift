// Interop with Python's `ssl` module (OpenSSL underneath, driven the way Python programs do)
// as a client of a Quiver server.
import Foundation
import QuiverCore
import QuiverTLS
import QuiverTLSSocket
import QuiverTestSupport
import Testing

/// Two connections: the second offers the first one's session. Each echoes random data and
/// reports what `ssl` negotiated as one JSON line.
private let pythonClientScript = #"""
import json, os, socket, ssl, sys

port, cafile, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
context = ssl.create_default_context(cafile=cafile)
context.minimum_version = ssl.TLSVersion.TLSv1_3
context.set_alpn_protocols(["echo"])
session = None
for _ in range(2):
    data = os.urandom(size)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost", session=session) as tls:
            tls.sendall(data)
            echoed = b""
            while len(echoed) < len(data):
                chunk = tls.recv(65536)
                if not chunk:
                    break
                echoed += chunk
            result = {
                "version": tls.version(),
                "cipher": tls.cipher()[0],
                "alpn": tls.selected_alpn_protocol(),
                "reused": tls.session_reused,
                "echo_ok": echoed == data,
                "sent": data.hex(),
            }
            session = tls.session
            tls.unwrap()  # close_notify both ways
    print(json.dumps(result), flush=True)
"""#

@Suite("Interop: Python ssl → Quiver server")
struct PythonSSLInteropTests {
    private struct Result: Decodable {
        let version: String
        let cipher: String
        let alpn: String?
        let reused: Bool
        let echo_ok: Bool
        let sent: String
    }

    @Test("Echo and session resumption (session=, session_reused)", Peer.requires(.python3))
    func echoAndResumption() throws {
        let directory = try TemporaryDirectory()
        let identity = try TestIdentity.localhost(.ecdsaP256)
        let caFile = try identity.write(to: directory, as: "server").cert
        let script = try directory.write("client.py", pythonClientScript)
        let server = try InteropServer(.server(chain: identity.chain, key: identity.key, alpn: ["echo"]))

        let python = try PeerProcess(try Peer.python3.executable(), [script, "\(server.port)", caFile, "20000"])
        defer { python.kill() }
        let status = try python.waitForExit(timeout: 10)
        try #require(status == 0, "\(python.transcript)")
        let results = try python.stdoutText.split(separator: "\n").map {
            try JSONDecoder().decode(Result.self, from: Data($0.utf8))
        }
        try #require(results.count == 2, "\(python.transcript)")
        let reports = try server.waitForConnections(2)

        for (result, report) in zip(results, reports) {
            #expect(result.version == "TLSv1.3")
            #expect(result.alpn == "echo")
            #expect(result.echo_ok)
            #expect(Interop.hex(report.received) == result.sent)
            #expect(report.cipherSuite?.ianaName == result.cipher)
            #expect(report.alpn == "echo")
            #expect(report.serverName == "localhost")
            #expect(report.closedCleanly, "\(report.error ?? "")")
        }
        #expect(!results[0].reused)
        #expect(!reports[0].isResumed)
        #expect(results[1].reused, "Python did not resume: \(python.transcript)")
        #expect(reports[1].isResumed)
    }
}

// quiver serve / get / connect --quic: qlog traces with --qlog DIR or QLOGDIR (issue 20).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    /// The `.sqlog` files in `directory` once one of them holds connection_closed (the trace's
    /// end is written when the connection closes), waiting up to `timeout` seconds.
    private func closedTraces(in directory: String, timeout: Double = 10) -> [String: QLogTraceFile] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.filter { $0.hasSuffix(".sqlog") } ?? []
            let traces = Dictionary(uniqueKeysWithValues: names.map { name in
                (name, QLogTraceFile(Array(FileManager.default.contents(atPath: directory + "/" + name) ?? Data())))
            })
            if !traces.isEmpty, traces.values.allSatisfy({ !$0.events("quic:connection_closed").isEmpty }) || Date() > deadline {
                return traces
            }
            usleep(50_000)
        }
    }

    @Test("get --qlog against serve --http3 --qlog: one trace per side, named by the same ODCID, both conforming")
    func qlogGetAndServe() throws {
        let fixture = try InteropFixture()
        let serverLogs = fixture.directory.path + "/qlog-server"
        let clientLogs = fixture.directory.path + "/qlog/client"  // created by quiver get
        let (server, port) = try serve(["--http3", "--root", fixture.root, "--qlog", serverLogs], fixture: fixture)
        defer { server.kill() }
        let get = try run(["get", "--ca", fixture.cert, "--server-name", "localhost", "--qlog", clientLogs, "https://127.0.0.1:\(port)/100000"])
        #expect(get.waitForExit(timeout: 1) == 0, "\(get.transcript)")
        let clientTraces = closedTraces(in: clientLogs)
        let serverTraces = closedTraces(in: serverLogs)
        let clientName = try #require(clientTraces.keys.first, "no client trace\n\(get.transcript)")
        #expect(clientTraces.count == 1 && serverTraces.count == 1, "\(clientTraces.keys) \(serverTraces.keys)")
        #expect(clientName.hasSuffix("_client.sqlog"))
        let odcid = clientName.dropLast("_client.sqlog".count)
        #expect(odcid.count >= 16 && odcid.allSatisfy(\.isHexDigit))
        #expect(serverTraces.keys.first == "\(odcid)_server.sqlog")
        for (name, trace) in clientTraces.merging(serverTraces, uniquingKeysWith: { $1 }) {
            #expect(trace.problems.isEmpty, "\(name): \(trace.problems.prefix(10))")
            #expect(trace.events("quic:packet_sent").count > 10, "\(name)")
            #expect(trace.events("quic:packet_received").count > 10, "\(name)")
            #expect(!trace.events("quic:recovery_metrics_updated").isEmpty, "\(name)")
            #expect(trace.events("quic:alpn_information").first.map { ($0.data["chosen_alpn"] as? [String: Any])?["string_value"] as? String } == "h3")
            let common = (trace.header["trace"] as? [String: Any])?["common_fields"] as? [String: Any]
            #expect(common?["group_id"] as? String == String(odcid))
        }
    }

    @Test("QLOGDIR names the directory of serve --quic and connect --quic; --qlog without --quic is refused")
    func qlogEnvironment() throws {
        let fixture = try InteropFixture()
        let logs = fixture.directory.path + "/qlogdir/"
        let port = try DemoTests.freePorts(1)
        let server = try ChildProcess(try Self.quiver, ["serve", "--quic", "--host", "127.0.0.1", "--port", "\(port)",
                                                        "--cert", fixture.cert, "--key", fixture.key], environment: ["QLOGDIR": logs])
        defer { server.kill() }
        guard server.waitForErrorLine(containing: "serving", timeout: 30) != nil else {
            Issue.record("quiver serve did not start\n\(server.transcript)")
            return
        }
        let client = try ChildProcess(try Self.quiver, ["connect", "--quic", "--ca", fixture.cert, "--server-name", "localhost",
                                                        "127.0.0.1:\(port)"], environment: ["QLOGDIR": logs])
        client.finishInput(Array("hello qlog\n".utf8))
        #expect(client.waitForExit(timeout: 30) == 0, "\(client.transcript)")
        let traces = closedTraces(in: logs)
        #expect(traces.keys.filter { $0.hasSuffix("_client.sqlog") }.count == 1, "\(traces.keys)")
        #expect(traces.keys.filter { $0.hasSuffix("_server.sqlog") }.count == 1, "\(traces.keys)")
        for (name, trace) in traces {
            #expect(trace.problems.isEmpty, "\(name): \(trace.problems.prefix(10))")
            #expect(trace.events("quic:packet_received").contains { event in
                (event.data["frames"] as? [[String: Any]])?.contains { $0["frame_type"] as? String == "stream" } == true
            }, "\(name)")
        }
        expectOneLineError(try run(["connect", "--qlog", logs, "127.0.0.1:\(port)"]), containing: "--qlog goes with --quic")
    }
}

/// Quiver's traces from runs against ngtcp2 (Debian's gtlsclient/gtlsserver), QLOGDIR set.
@Suite("qlog against ngtcp2", .serialized)
struct QLogInteropTests {
    private static var quiver: String { get throws { try QuiverCommandTests.quiver } }

    @Test("ngtcp2 client → quiver serve --http3 and quiver get → ngtcp2 server: Quiver's traces conform", NgtcpPeer.requirement)
    func ngtcp2() throws {
        let fixture = try InteropFixture()
        let path = try fixture.makeFiles([200_000])[0]
        let logs = fixture.directory.path + "/qlog"
        let (client, server) = try NgtcpPeer.paths()

        // ngtcp2's client against quiver serve.
        let port = try DemoTests.freePorts(1)
        let quiverServer = try ChildProcess(try Self.quiver, ["serve", "--http3", "--host", "127.0.0.1", "--port", "\(port)", "--root", fixture.root,
                                                              "--cert", fixture.cert, "--key", fixture.key], environment: ["QLOGDIR": logs + "/server"])
        defer { quiverServer.kill() }
        guard quiverServer.waitForErrorLine(containing: "serving", timeout: 30) != nil else {
            Issue.record("quiver serve did not start\n\(quiverServer.transcript)")
            return
        }
        let ngtcp2Client = try ChildProcess(client, ["--exit-on-all-streams-close", "--no-quic-dump", "--no-http-dump", "--timeout=15s",
                                                     "--download", fixture.out, "127.0.0.1", "\(port)", "https://localhost:\(port)/100000"])
        #expect(ngtcp2Client.waitForExit(timeout: 60) == 0, "\(ngtcp2Client.transcript)")

        // quiver get against ngtcp2's server.
        let serverPort = try DemoTests.freePorts(1)
        let ngtcp2Server = try ChildProcess(server, ["-d", fixture.root, "--no-quic-dump", "--no-http-dump", "127.0.0.1", "\(serverPort)",
                                                     fixture.key, fixture.cert])
        defer { ngtcp2Server.kill() }
        guard ngtcp2Server.waitForErrorLine(containing: "Using document root", timeout: 20) != nil else {
            Issue.record("gtlsserver did not start\n\(ngtcp2Server.transcript)")
            return
        }
        let get = try ChildProcess(try Self.quiver, ["get", "--ca", fixture.cert, "--server-name", "localhost", "--out", fixture.out,
                                                     "https://127.0.0.1:\(serverPort)\(path)"], environment: ["QLOGDIR": logs + "/client"])
        #expect(get.waitForExit(timeout: 60) == 0, "\(get.transcript)")

        for (side, suffix) in [("server", "_server.sqlog"), ("client", "_client.sqlog")] {
            let directory = logs + "/" + side
            let deadline = Date().addingTimeInterval(10)
            var trace: QLogTraceFile?
            repeat {
                let name = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.first { $0.hasSuffix(suffix) }
                trace = name.flatMap { FileManager.default.contents(atPath: directory + "/" + $0) }.map { QLogTraceFile(Array($0)) }
                if trace.map({ !$0.events("quic:connection_closed").isEmpty }) == true { break }
                usleep(50_000)
            } while Date() < deadline
            let parsed = try #require(trace, "no \(side) trace in \(directory)")
            #expect(parsed.problems.isEmpty, "\(side): \(parsed.problems.prefix(10))")
            #expect(parsed.events("quic:packet_received").count > 10, "\(side)")
            #expect(!parsed.events("quic:connection_closed").isEmpty, "\(side)")
        }
    }
}

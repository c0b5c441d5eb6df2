// The `quiver` command as a new user meets it (issue 17). Each test runs the built executable;
// the tests of each item are in the extensions in QuiverCommand*Tests.swift.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

@Suite("quiver command: inputs, errors and outputs", .serialized)
struct QuiverCommandTests {
    static var quiver: String {
        get throws { try #require(DemoTests.executable("quiver"), "build the quiver command (swift build)") }
    }

    /// Runs `quiver arguments` to its end (at most `timeout` seconds).
    func run(_ arguments: [String], input: [UInt8] = [], timeout: Double = 30) throws -> ChildProcess {
        let process = try ChildProcess(try Self.quiver, arguments)
        process.finishInput(input)
        if process.waitForExit(timeout: timeout) == nil {
            process.kill()
            Issue.record("quiver \(arguments.joined(separator: " ")) did not finish in \(timeout) s\n\(process.transcript)")
        }
        return process
    }

    /// Starts `quiver serve` with the test certificate on a free port and waits until it serves.
    func serve(_ arguments: [String], fixture: InteropFixture) throws -> (ChildProcess, UInt16) {
        let port = try DemoTests.freePorts(1)
        let server = try ChildProcess(try Self.quiver, ["serve", "--host", "127.0.0.1", "--port", "\(port)",
                                                        "--cert", fixture.cert, "--key", fixture.key] + arguments)
        guard server.waitForErrorLine(containing: "serving", timeout: 30) != nil else {
            server.kill()
            throw InteropCellFailure("quiver serve did not start\n\(server.transcript)")
        }
        return (server, port)
    }

    /// Checks the shape of a refusal: a non-zero exit (not a signal) and one line on stderr.
    func expectOneLineError(_ process: ChildProcess, containing text: String? = nil,
                                    sourceLocation: SourceLocation = #_sourceLocation) {
        let lines = process.standardErrorText.split(separator: "\n")
        #expect(!process.wasSignaled, "trapped\n\(process.transcript)", sourceLocation: sourceLocation)
        #expect(process.waitForExit(timeout: 1).map { $0 != 0 } == true, "exit status 0\n\(process.transcript)", sourceLocation: sourceLocation)
        #expect(lines.count == 1, "expected one line\n\(process.transcript)", sourceLocation: sourceLocation)
        #expect(!process.standardErrorText.contains("Fatal error"), "\(process.transcript)", sourceLocation: sourceLocation)
        if let text {
            #expect(process.standardErrorText.contains(text), "expected “\(text)”\n\(process.transcript)", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Item 23: --version

    @Test("quiver --version prints a version")
    func version() throws {
        let process = try run(["--version"])
        #expect(process.waitForExit(timeout: 1) == 0, "\(process.transcript)")
        let text = String(decoding: process.standardOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.split(separator: ".").count == 3 && text.split(separator: ".").allSatisfy { Int($0) != nil }, "\(process.transcript)")
    }
}

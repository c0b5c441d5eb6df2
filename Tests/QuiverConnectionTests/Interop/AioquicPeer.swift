// The aioquic peer of the QUIC interop tests: finding it (the skip rule of the TLS interop
// tests, Tests/QuiverTLSTests/Interop/InteropSupport.swift) and running aioquic_peer.py as a
// child process whose output lines the test waits on, each wait with a deadline.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// Python 3 with aioquic 1.7.2 importable, and the peer script next to this file.
///
/// The rule for a missing peer: a test carries ``requirement`` and gets the interpreter from
/// ``python3()``. Without the peer the test is skipped with a message saying what is missing —
/// unless `QUIVER_REQUIRE_PEERS=1`, in which case it runs and ``python3()`` throws, so it fails.
enum AioquicPeer {
    static let version = "1.7.2"

    /// The script, found next to this source file.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("aioquic_peer.py").path

    /// The HTTP/3 and hq-interop peer of the interop matrix (HTTP3InteropTests.swift).
    static let h3Script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("aioquic_h3_peer.py").path

    /// The interpreter's path, or why the peer is unusable (checked once per test process).
    static let availability: Result<String, InteropFailure> = {
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        let candidates = directories.map { String($0) + "/python3" }
        guard let python = candidates.first(where: { (path: String) in access(path, X_OK) == 0 }) else {
            return .failure(InteropFailure("python3 not found in PATH"))
        }
        guard access(script, R_OK) == 0 else { return .failure(InteropFailure("peer script missing: \(script)")) }
        do {
            let probe = try ChildProcess(python, ["-c", "import aioquic; print(aioquic.__version__)"])
            defer { probe.kill() }
            guard probe.waitForExit(timeout: 20) == 0, let found = probe.lines.first else {
                return .failure(InteropFailure("aioquic is not importable by \(python) (pip install aioquic==\(version))\n\(probe.transcript)"))
            }
            guard found == version else {
                return .failure(InteropFailure("\(python) has aioquic \(found), the tests need \(version)"))
            }
            return .success(python)
        } catch {
            return .failure(InteropFailure("cannot run \(python): \(error)"))
        }
    }()

    /// Whether `QUIVER_REQUIRE_PEERS=1`: a missing peer fails the tests instead of skipping them.
    static var required: Bool { ProcessInfo.processInfo.environment["QUIVER_REQUIRE_PEERS"] == "1" }

    /// The trait of a test needing aioquic. The peer is probed when the first such test is about
    /// to run, not at test discovery.
    static var requirement: ConditionTrait {
        .enabled(
            if: required || (try? availability.get()) != nil,
            "interop peer not installed: python3 with aioquic \(version) importable (pip install aioquic==\(version)); set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping")
    }

    /// The interpreter; throws when the peer is missing (reached only with `QUIVER_REQUIRE_PEERS=1`).
    static func python3() throws(InteropFailure) -> String { try availability.get() }

    /// Starts `aioquic_peer.py` with `arguments` (the mode first). With `QUIVER_AIOQUIC_QLOG=DIR`
    /// set, aioquic writes a qlog trace of each connection into DIR (for debugging).
    static func start(_ arguments: [String]) throws -> ChildProcess {
        let qlog = ProcessInfo.processInfo.environment["QUIVER_AIOQUIC_QLOG"].map { ["--qlog", $0] } ?? []
        return try ChildProcess(try python3(), ["-u", script] + arguments + qlog)
    }

    /// Starts `aioquic_h3_peer.py` with `arguments` (the mode first).
    static func startH3(_ arguments: [String]) throws -> ChildProcess {
        let qlog = ProcessInfo.processInfo.environment["QUIVER_AIOQUIC_QLOG"].map { ["--qlog", $0] } ?? []
        return try ChildProcess(try python3(), ["-u", h3Script] + arguments + qlog)
    }
}

/// A child process with stdin held open (the peer server exits when it closes) and its stdout
/// and stderr collected by two background threads. Killed at deinit at the latest.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `state` is only touched with `condition` locked; `process` is configured
    // before `run()` and afterwards only queried or signalled.
    private struct State {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var status: Int32?
        /// Whether the process was ended by a signal (`status` is then the signal's number).
        var signaled = false
        /// Output pipes not yet at end of file: after exit, their last bytes may still be on the way.
        var openOutputs = 2
    }

    private let process = Process()
    private let input = Pipe()
    private let condition = NSCondition()
    private var state = State()
    let commandLine: String

    /// Starts `executable` with `arguments`, in this process's environment plus `environment`.
    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        process.terminationHandler = { [weak self] process in
            self?.update {
                $0.signaled = process.terminationReason == .uncaughtSignal
                $0.status = process.terminationStatus
            }
        }
        try process.run()
        collect(output.fileHandleForReading) { $0.stdout += $1 }
        collect(errors.fileHandleForReading) { $0.stderr += $1 }
    }

    deinit { kill() }

    private func update(_ body: (inout State) -> Void) {
        condition.lock()
        body(&state)
        condition.broadcast()
        condition.unlock()
    }

    private func collect(_ handle: FileHandle, _ append: @escaping @Sendable (inout State, Data) -> Void) {
        Thread { [weak self] in
            while true {
                let data = handle.availableData
                if data.isEmpty {
                    self?.update { $0.openOutputs -= 1 }
                    return
                }
                self?.update { append(&$0, data) }
            }
        }.start()
    }

    /// Waits up to `timeout` seconds for `predicate`; returns whether it held.
    private func wait(timeout: Double, until predicate: (State) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(state) {
            if !condition.wait(until: deadline) { return predicate(state) }
        }
        return true
    }

    private var current: State {
        condition.lock()
        defer { condition.unlock() }
        return state
    }

    /// The complete lines printed on stdout so far.
    var lines: [String] {
        let text = String(decoding: current.stdout, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    /// The first stdout line starting with `prefix`, waiting up to `timeout` seconds for it;
    /// nil on timeout or when the process exits without printing it.
    func waitForLine(startingWith prefix: String, timeout: Double) -> String? {
        func find(_ state: State) -> String? {
            String(decoding: state.stdout, as: UTF8.self).split(separator: "\n").first { $0.hasPrefix(prefix) }.map(String.init)
        }
        _ = wait(timeout: timeout) { find($0) != nil || $0.status != nil }
        return find(current)
    }

    /// Everything printed on stdout so far.
    var standardOutput: [UInt8] { current.stdout }

    /// The first stderr line containing `text`, waiting up to `timeout` seconds for it.
    func waitForErrorLine(containing text: String, timeout: Double) -> String? {
        func find(_ state: State) -> String? {
            String(decoding: state.stderr, as: UTF8.self).split(separator: "\n").first { $0.contains(text) }.map(String.init)
        }
        _ = wait(timeout: timeout) { find($0) != nil || $0.status != nil }
        return find(current)
    }

    /// Writes `bytes` to the process's stdin, then closes it (EOF).
    func finishInput(_ bytes: [UInt8]) {
        write(bytes)
        try? input.fileHandleForWriting.close()
    }

    /// Writes `bytes` to the process's stdin, which stays open.
    func write(_ bytes: [UInt8]) {
        try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
    }

    /// The exit status, waiting up to `timeout` seconds for the process to exit (and for its
    /// output to be collected to the end); nil if it has not exited.
    func waitForExit(timeout: Double) -> Int32? {
        _ = wait(timeout: timeout) { $0.status != nil && $0.openOutputs == 0 }
        return current.status
    }

    /// Whether the process ended by a signal (a trap, a crash, or a kill) rather than by exiting.
    var wasSignaled: Bool { current.signaled }

    /// Sends `signal` (for example SIGINT) to the process.
    func send(signal: Int32) { _ = Glibc.kill(process.processIdentifier, signal) }

    /// Everything the process wrote to stderr so far.
    var standardErrorText: String { String(decoding: current.stderr, as: UTF8.self) }

    /// Ends the process: closes its stdin, then SIGTERM, then SIGKILL after a second.
    func kill() {
        try? input.fileHandleForWriting.close()
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        _ = Glibc.kill(pid, SIGTERM)
        if !wait(timeout: 1, until: { $0.status != nil }) { _ = Glibc.kill(pid, SIGKILL) }
        _ = wait(timeout: 1) { $0.status != nil }
    }

    /// The command and its output, for failure messages.
    var transcript: String {
        let state = current
        return """
            $ \(commandLine)
            [exit: \(state.status.map { state.signaled ? "signal \($0)" : String($0) } ?? "running")]
            [stdout]
            \(String(decoding: state.stdout.suffix(6000), as: UTF8.self))
            [stderr]
            \(String(decoding: state.stderr.suffix(6000), as: UTF8.self))
            """
    }
}

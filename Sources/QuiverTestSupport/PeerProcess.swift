// External programs as interop peers: the rule for a missing peer (a visible skip, or a
// failure with QUIVER_REQUIRE_PEERS=1) and child processes whose output tests wait for.
// Shared by every test target that runs peers.
#if canImport(Glibc)
import Glibc
#endif
import Foundation
public import Testing

// MARK: - Peers and the skip rule

/// An external program used as the TLS peer.
///
/// The one rule for missing peers: a test lists its peers in ``requires(_:)`` (a condition
/// trait) and gets their paths from ``executable()``. When a peer is not on `PATH` the test is
/// skipped with a message naming the tool — unless `QUIVER_REQUIRE_PEERS=1` is set, in which
/// case the test runs and ``executable()`` throws, so it fails.
public struct Peer: Sendable, CustomStringConvertible {
    public let name: String
    /// Where to look before `PATH` (Debian puts usrsctp's programs in `/usr/lib/usrsctp`).
    public let directories: [String]

    public init(name: String, directories: [String] = []) {
        self.name = name
        self.directories = directories
    }

    public static let openssl = Peer(name: "openssl")
    public static let gnutlsCLI = Peer(name: "gnutls-cli")
    public static let gnutlsServ = Peer(name: "gnutls-serv")
    public static let python3 = Peer(name: "python3")
    /// `pionecho` (pion/dtls v2, DTLS 1.2) from the shared peers folder, built by `.ci/run`.
    public static let pionecho = Peer(name: "pionecho")
    /// `boringpeer` (BoringSSL's DTLS 1.3 and 1.2) from the shared peers folder, built by `.ci/run`.
    public static let boringpeer = Peer(name: "boringpeer")
    /// `dtls_record_relay.py` (a UDP relay that drops chosen datagrams) from the shared peers
    /// folder, put on `PATH` by `.ci/run`.
    public static let dtlsRelay = Peer(name: "dtls_record_relay.py")
    /// `pionsctp` (pion/sctp over plain UDP or pion/dtls) from the shared peers folder, built by `.ci/run`.
    public static let pionsctp = Peer(name: "pionsctp")
    /// usrsctp's example programs (`apt-get install libusrsctp-examples`): SCTP over UDP
    /// encapsulation (RFC 6951).
    public static let usrsctpEchoServer = Peer(name: "echo_server", directories: ["/usr/lib/usrsctp"])
    public static let usrsctpClient = Peer(name: "client", directories: ["/usr/lib/usrsctp"])
    public static let usrsctpTsctp = Peer(name: "tsctp", directories: ["/usr/lib/usrsctp"])
    /// usrsctp's ekr_client: SCTP packets directly in UDP payloads (its AF_CONN style).
    public static let usrsctpEkrClient = Peer(name: "ekr_client", directories: ["/usr/lib/usrsctp"])
    public static let usrsctpEkrServer = Peer(name: "ekr_server", directories: ["/usr/lib/usrsctp"])

    public var description: String { name }

    /// Whether `QUIVER_REQUIRE_PEERS=1`: missing peers fail tests instead of skipping them.
    public static var required: Bool { ProcessInfo.processInfo.environment["QUIVER_REQUIRE_PEERS"] == "1" }

    /// The absolute path found in ``directories`` or by a `PATH` lookup, or nil.
    public var path: String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for directory in directories + path.map(String.init) where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// The peer's path; throws (failing the test) when it is missing — reached only when
    /// `QUIVER_REQUIRE_PEERS=1`, since otherwise ``requires(_:)`` skipped the test.
    public func executable() throws -> String {
        guard let path else {
            throw InteropError("\(name) not found in PATH and QUIVER_REQUIRE_PEERS=1: install it (.ci/run does)")
        }
        return path
    }

    /// The trait for a test needing `peers`: skipped, naming the missing tools, when one is not
    /// installed and `QUIVER_REQUIRE_PEERS` is not `1`.
    public static func requires(_ peers: Peer...) -> ConditionTrait {
        let missing = peers.filter { $0.path == nil }.map(\.name)
        let comment = Comment(rawValue: "interop peer not installed: \(missing.joined(separator: ", ")) (set QUIVER_REQUIRE_PEERS=1 to fail instead of skipping)")
        return .enabled(if: missing.isEmpty || required, comment)
    }
}

/// A failure of the test harness or of a peer (as opposed to an expectation).
public struct InteropError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - Waiting

/// A value guarded by a condition variable: threads update it, a test waits for a predicate
/// with a deadline.
public final class Waitable<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `condition` locked.
    private let condition = NSCondition()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    public func update<T>(_ body: (inout Value) -> T) -> T {
        condition.lock()
        defer { condition.broadcast(); condition.unlock() }
        return body(&value)
    }

    public var current: Value { update { $0 } }

    /// Waits up to `timeout` seconds for `predicate`; returns the value and whether it held.
    public func wait(timeout: Double, until predicate: (Value) -> Bool) -> (Value, Bool) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while !predicate(value) {
            if !condition.wait(until: deadline) { return (value, predicate(value)) }
        }
        return (value, true)
    }
}

// MARK: - Child processes

/// A peer process with piped stdin/stdout/stderr, collected on background threads.
public final class PeerProcess: @unchecked Sendable {
    // @unchecked: `process` is configured before `run()` and afterwards only signalled.
    private struct Output {
        var stdout: [UInt8] = []
        var stderr: [UInt8] = []
        var stdoutClosed = false
        var stderrClosed = false
        var status: Int32?
    }

    public let name: String
    public let arguments: [String]
    private let process = Process()
    private let input = Pipe()
    private let output = Waitable(Output())

    private static let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

    /// Starts `executable` with `arguments` in `directory`.
    public init(_ executable: String, _ arguments: [String], directory: String? = nil, environment: [String: String]? = nil) throws {
        _ = Self.ignoreSIGPIPE
        name = (executable as NSString).lastPathComponent
        self.arguments = arguments
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe()
        let err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        let output = self.output
        process.terminationHandler = { p in
            let status = p.terminationStatus
            output.update { $0.status = status }
        }
        try process.run()
        Self.drain(out.fileHandleForReading, into: output, stdout: true)
        Self.drain(err.fileHandleForReading, into: output, stdout: false)
    }

    deinit { kill() }

    private static func drain(_ handle: FileHandle, into output: Waitable<Output>, stdout: Bool) {
        let fd = handle.fileDescriptor
        Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                output.update { if stdout { $0.stdout += buffer[..<n] } else { $0.stderr += buffer[..<n] } }
            }
            output.update { if stdout { $0.stdoutClosed = true } else { $0.stderrClosed = true } }
            try? handle.close()
        }.start()
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var stdout: [UInt8] { output.current.stdout }
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: output.current.stderr, as: UTF8.self) }
    /// The exit status, once the process has exited.
    public var exitStatus: Int32? { output.current.status }
    public var commandLine: String { ([name] + arguments).joined(separator: " ") }

    /// Writes to the process's stdin (errors such as EPIPE after the peer exited are ignored:
    /// the test's checks of the output report them).
    public func write(_ bytes: [UInt8]) {
        try? input.fileHandleForWriting.write(contentsOf: Data(bytes))
    }

    public func write(_ text: String) { write(Array(text.utf8)) }

    /// Closes stdin (the peer reads end of file).
    public func closeInput() { try? input.fileHandleForWriting.close() }

    /// Waits until stdout satisfies `predicate`; throws (with the peer's output) after `timeout`
    /// seconds or when the process exits first.
    @discardableResult
    public func waitForStdout(timeout: Double = 5, _ what: String, until predicate: @escaping ([UInt8]) -> Bool) throws -> [UInt8] {
        let (value, ok) = output.wait(timeout: timeout) { predicate($0.stdout) || $0.stdoutClosed }
        guard ok, predicate(value.stdout) else {
            throw InteropError("\(what): not seen from \(commandLine) \(value.stdoutClosed ? "(it closed stdout)" : "within \(timeout) s")\n\(transcript)")
        }
        return value.stdout
    }

    /// Waits until stdout contains `text`.
    public func waitForStdout(containing text: String, timeout: Double = 5) throws {
        let needle = Array(text.utf8)
        try waitForStdout(timeout: timeout, "'\(text)'") { PeerProcess.contains($0, needle) }
    }

    /// Waits until stderr contains `text`.
    public func waitForStderr(containing text: String, timeout: Double = 5) throws {
        let needle = Array(text.utf8)
        let (_, ok) = output.wait(timeout: timeout) { PeerProcess.contains($0.stderr, needle) || $0.stderrClosed }
        guard ok, PeerProcess.contains(output.current.stderr, needle) else {
            throw InteropError("'\(text)' not seen on stderr of \(commandLine)\n\(transcript)")
        }
    }

    /// Waits for the process to exit and its output to be collected; kills it after `timeout`
    /// seconds and throws.
    @discardableResult
    public func waitForExit(timeout: Double = 5) throws -> Int32 {
        let (value, ok) = output.wait(timeout: timeout) { $0.status != nil && $0.stdoutClosed && $0.stderrClosed }
        guard ok, let status = value.status else {
            kill()
            throw InteropError("\(commandLine) did not exit within \(timeout) s; killed\n\(transcript)")
        }
        return status
    }

    /// Terminates the process if it is still running (SIGTERM, then SIGKILL).
    public func kill() {
        guard process.isRunning else { return }
        let pid = process.processIdentifier
        _ = Glibc.kill(pid, SIGTERM)
        let (_, exited) = output.wait(timeout: 1) { $0.status != nil }
        if !exited { _ = Glibc.kill(pid, SIGKILL) }
        closeInput()
    }

    /// The command and its output, for failure messages.
    public var transcript: String {
        let value = output.current
        return """
            $ \(commandLine)
            [exit: \(value.status.map(String.init) ?? "running")]
            [stdout]
            \(String(decoding: value.stdout.suffix(4000), as: UTF8.self))
            [stderr]
            \(String(decoding: value.stderr.suffix(4000), as: UTF8.self))
            """
    }
}

extension PeerProcess {
    /// Whether `needle` occurs in `haystack`.
    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }
}

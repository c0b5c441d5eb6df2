import Foundation
import Quiver
import QuiverCore
import QuiverTLS
import Synchronization
import Testing

enum Identity {
    static let p256: (chain: CertificateChain, key: PrivateKey) = {
        do { return try SelfSignedCertificate.generate(names: ["localhost"], algorithm: .ecdsaP256) } catch {
            preconditionFailure("test certificate generation failed: \(error)")
        }
    }()

    static func server(alpn: [String] = ["echo"]) -> TLSConfiguration {
        do { return try TLSConfiguration.server(chain: p256.chain, key: p256.key, alpn: alpn) } catch {
            preconditionFailure("test server configuration: \(error)")
        }
    }

    static func client(alpn: [String] = ["echo"]) -> TLSConfiguration {
        TLSConfiguration.client(alpn: alpn, verifier: CertificateVerifier(trustRoots: [p256.chain.certificates[0]]))
    }
}

/// Runs `body(i)` for `count` indices on `count` threads at once and waits for all; returns
/// the errors thrown (with their index).
func onThreads(_ count: Int, stackSize: Int = 1 << 20, _ body: @escaping @Sendable (Int) throws -> Void) -> [(Int, any Error)] {
    let errors = Mutex<[(Int, any Error)]>([])
    let group = DispatchGroup()
    for index in 0..<count {
        group.enter()
        let thread = Thread {
            defer { group.leave() }
            do { try body(index) } catch { errors.withLock { $0.append((index, error)) } }
        }
        thread.stackSize = stackSize
        thread.start()
    }
    group.wait()
    return errors.withLock { $0 }
}

/// Deterministic pseudo-random payloads (SplitMix64), so failures reproduce.
func payload(seed: UInt64, count: Int) -> [UInt8] {
    var state = seed &+ 0x9e37_79b9_7f4a_7c15
    var bytes = [UInt8](repeating: 0, count: count)
    var index = 0
    while index < count {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        z ^= z >> 31
        for shift in stride(from: 0, to: 64, by: 8) where index < count {
            bytes[index] = UInt8(truncatingIfNeeded: z >> UInt64(shift))
            index += 1
        }
    }
    return bytes
}

/// A listener of `transport` on loopback UDP (port 0), serving `serve` for each connection on
/// its own thread; returns it and its port.
func udpListener(_ transport: Transport, options: Listener.Options = Listener.Options(),
                 serve: @escaping @Sendable (Connection) throws -> Void = serveEcho) throws -> (Listener, UInt16) {
    let listener = try Listener(transport, tls: Identity.server(), bind: "127.0.0.1:0", options: options)
    let port = listener.localAddresses[0].port
    Thread {
        while let connection = try? listener.accept() {
            Thread { try? serve(connection) }.start()
        }
    }.start()
    return (listener, port)
}

/// Blocking echo of one connection's default stream: everything read is written back; at the
/// end of the stream our side is finished and the connection shut down with a flush.
func serveEcho(_ connection: Connection) throws {
    while true {
        let bytes = try connection.read(maxBytes: 1 << 16)
        if bytes.isEmpty { break }
        try connection.write(bytes)
    }
    try connection.shutdown(.flush)
}

/// Sends `data` in `chunk`-sized writes, finishes, reads everything back; returns it.
func echoRoundTrip(_ connection: Connection, _ data: [UInt8], chunk: Int = 16_384) throws -> [UInt8] {
    // Write on another thread so a large payload cannot deadlock against the echo.
    let writer = Thread {
        var offset = 0
        while offset < data.count {
            let end = min(offset + chunk, data.count)
            try? connection.write(data[offset..<end])
            offset = end
        }
        try? connection.finish()
    }
    writer.start()
    var received: [UInt8] = []
    while true {
        let bytes = try connection.read(maxBytes: 1 << 16)
        if bytes.isEmpty { break }
        received += bytes
    }
    return received
}

/// DTLS's ``echoRoundTrip(_:_:chunk:)``: each `chunk`-sized message written and its echo read
/// before the next, then finish and the server's close_notify. DTLS does not retransmit after the
/// handshake, so one message in flight per client keeps what is in flight (100 clients × 16 KiB)
/// far below the sockets' 4 MiB receive buffers: nothing is dropped on loopback.
func lockstepRoundTrip(_ connection: Connection, _ data: [UInt8], chunk: Int) throws -> [UInt8] {
    var received: [UInt8] = []
    var offset = 0
    while offset < data.count {
        let end = min(offset + chunk, data.count)
        try connection.write(data[offset..<end])
        received += try connection.read(maxBytes: 1 << 16)
        offset = end
    }
    try connection.finish()
    let rest = try connection.read()
    guard rest.isEmpty else { throw QuiverError(.protocolViolation, "\(rest.count) bytes after the echo") }
    return received
}

/// A task executor on threads of its own, for the tests whose progress needs tasks to run (the
/// async API, the async HTTP/3 server).
///
/// Swift Testing runs this target's many synchronous tests on the cooperative pool, which has
/// one thread per core — two here — and a blocking test keeps its thread for as long as it
/// waits (the interop matrix, minutes). With both threads held, a suspended task resumed by a
/// listener's I/O thread cannot run: in CI an async client's handshake completed, but its task
/// resumed only after the connection had idled out 30 s later. Tests that need tasks to
/// progress run them here (`withTaskExecutorPreference`, `Task(executorPreference:)`; child
/// tasks inherit the preference), so no blocking test can starve them.
final class DedicatedExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` is guarded by `condition`.
    static let shared = DedicatedExecutor(threads: 4)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(threads: Int) {
        for _ in 0..<threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "test-executor"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs `body` (and the child tasks it starts) on ``DedicatedExecutor``.
func onDedicatedThreads<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
    try await withTaskExecutorPreference(DedicatedExecutor.shared, operation: body)
}

/// The bytes written as hexadecimal digits in `text` (spaces ignored): the RFCs' test vectors.
func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

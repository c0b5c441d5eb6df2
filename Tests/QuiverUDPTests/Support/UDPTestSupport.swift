// Helpers for the UDPSocket tests: every wait is a poll(2) with a deadline, never a sleep.
import QuiverCore
import QuiverUDP
import Testing

/// A received datagram, copied out of the socket's batch.
struct Received: Equatable, CustomStringConvertible {
    var bytes: [UInt8]
    var source: SocketAddress
    var destination: SocketAddress?
    var ecn: ECNCodepoint
    var segmentSize: Int?
    var isTruncated: Bool

    var description: String { "\(bytes.count) B from \(source) to \(destination.map { "\($0)" } ?? "?"), \(ecn), segment \(segmentSize.map { "\($0)" } ?? "-")" }
}

/// Receives until `count` messages arrived or `timeout` passed, whichever is first.
func receive(_ count: Int, on socket: UDPSocket, within timeout: Duration = .seconds(5)) throws -> [Received] {
    var messages: [Received] = []
    let deadline = Instant.now() + timeout
    while messages.count < count {
        let left = deadline - Instant.now()
        guard left > .zero, try socket.waitReadable(timeout: left) else { break }
        let n = try socket.receive()
        for i in 0..<n {
            let datagram = socket.received(i)
            messages.append(Received(
                bytes: socket.withReceivedBytes(i) { Array($0) }, source: datagram.source,
                destination: datagram.destination, ecn: datagram.ecn, segmentSize: datagram.segmentSize,
                isTruncated: datagram.isTruncated))
        }
    }
    return messages
}

/// Flushes until the queue is empty (waiting for POLLOUT if the socket would block), summing the
/// results.
func flushAll(_ socket: UDPSocket, within timeout: Duration = .seconds(5)) throws -> UDPSendResult {
    var total = UDPSendResult(sent: 0, failed: 0, remaining: 0)
    let deadline = Instant.now() + timeout
    while true {
        let result = try socket.flush()
        total.sent += result.sent
        total.failed += result.failed
        total.remaining = result.remaining
        let left = deadline - Instant.now()
        guard result.wouldBlock, left > .zero, try socket.waitWritable(timeout: left) else { return total }
    }
}

/// A datagram whose bytes say which one it is: `index` in the first two bytes, then a pattern.
func datagram(_ index: Int, size: Int) -> [UInt8] {
    (0..<size).map { i in
        switch i {
        case 0: UInt8(index >> 8)
        case 1: UInt8(index & 0xff)
        default: UInt8(truncatingIfNeeded: i &* 31 &+ index)
        }
    }
}

func address(_ text: String) throws -> SocketAddress {
    try #require(SocketAddress(text), "not an address: \(text)")
}

/// A loopback port nothing listens on: bound, then closed.
func closedPort(_ host: String) throws -> SocketAddress {
    let socket = try UDPSocket(host: host, port: 0)
    let address = socket.localAddress
    socket.close()
    return address
}

/// What the kernel here allows, probed once so tests can skip visibly.
enum Kernel {
    static let hasIPv6: Bool = (try? UDPSocket(host: "::1", port: 0)) != nil
    static let supportsGSO: Bool = (try? UDPSocket(host: "127.0.0.1", port: 0))?.supportsGSO ?? false
    static let supportsGRO: Bool = (try? UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(gro: true)))?.supportsGRO ?? false
    static let supportsECN: Bool = (try? UDPSocket(host: "127.0.0.1", port: 0))?.supportsECN ?? false
}

// Loopback UDP throughput of 1200-byte datagrams through four paths, in one run:
// sendto/recvfrom one datagram per system call, UDPSocket's sendmmsg/recvmmsg batches, GSO
// sends (UDP_SEGMENT) into recvmmsg, and GSO sends into a GRO receiver (UDP_GRO).
//
// One thread drives both ends in lock step (send a batch of 64, receive all 64), so the figure
// is the CPU cost of both ends together on one core, with no drops from an overrun receiver.
// Medians of several rounds; heap allocations per datagram show whether the batch paths allocate.
//
//   swift run -c release --package-path Benchmarks udp-bench [datagrams per round] [rounds]
import CMallocCounter
import Foundation
import Glibc
import QuiverCore
import QuiverUDP

let datagramSize = 1200
let batch = 64
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let perRound = max(batch, (arguments.first ?? 256_000) / batch * batch)
let rounds = max(1, arguments.dropFirst().first ?? 5)
let payload = [UInt8](repeating: 0x5a, count: datagramSize)

struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

struct Measurement {
    var seconds: Double
    var allocationsPerDatagram: Double
    var lost: Int
}

/// Runs `body` (which moves `perRound` datagrams and returns how many were lost) `rounds`
/// times after a warm-up, and keeps the median round.
func measure(_ body: () throws -> Int) throws -> Measurement {
    _ = try body()
    var results: [Measurement] = []
    for _ in 0..<rounds {
        let a0 = quiver_malloc_count()
        let t0 = Instant.now()
        let lost = try body()
        let seconds = Double((Instant.now() - t0).nanosecondsClamped) / 1e9
        let allocations = Double(quiver_malloc_count() - a0) / Double(perRound)
        results.append(Measurement(seconds: seconds, allocationsPerDatagram: allocations, lost: lost))
    }
    results.sort { $0.seconds < $1.seconds }
    return results[results.count / 2]
}

func pair(sender: UDPSocket.Configuration = .init(), receiver: UDPSocket.Configuration = .init()) throws -> (UDPSocket, UDPSocket) {
    var receiver = receiver
    receiver.receiveBufferSize = 4 << 20
    var sender = sender
    sender.sendBufferSize = 4 << 20
    return (try UDPSocket(host: "127.0.0.1", port: 0, configuration: sender),
            try UDPSocket(host: "127.0.0.1", port: 0, configuration: receiver))
}

/// Receives until `expected` datagrams arrived (a GRO buffer counts its segments), or a second
/// passes without any: then the rest count as lost.
func drain(_ socket: UDPSocket, expected: Int) throws -> Int {
    var got = 0
    while got < expected {
        let n = try socket.receive()
        if n == 0 {
            guard try socket.waitReadable(timeout: .seconds(1)) else { return expected - got }
            continue
        }
        for i in 0..<n {
            let datagram = socket.received(i)
            got += datagram.segmentSize.map { (datagram.count + $0 - 1) / $0 } ?? 1
        }
    }
    return 0
}

func send(_ socket: UDPSocket) throws {
    while try socket.flush().wouldBlock {
        guard try socket.waitWritable(timeout: .seconds(1)) else { throw Failure("send blocked for 1 s") }
    }
}

// sendto/recvfrom, one datagram per system call, on UDPSocket's descriptors.
func plainSyscalls() throws -> Measurement {
    let (a, b) = try pair()
    var (destination, destinationLength) = b.localAddress.storage
    var buffer = [UInt8](repeating: 0, count: 2048)
    return try measure {
        var lost = 0
        for _ in 0..<(perRound / batch) {
            for _ in 0..<batch {
                let sent = payload.withUnsafeBytes { bytes in
                    withUnsafePointer(to: &destination) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            sendto(a.fileDescriptor, bytes.baseAddress, bytes.count, 0, $0, destinationLength)
                        }
                    }
                }
                guard sent == datagramSize else { throw Failure("sendto: errno \(errno)") }
            }
            var got = 0
            while got < batch {
                var source = sockaddr_storage()
                var sourceLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let n = buffer.withUnsafeMutableBytes { bytes in
                    withUnsafeMutablePointer(to: &source) {
                        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                            recvfrom(b.fileDescriptor, bytes.baseAddress, bytes.count, 0, $0, &sourceLength)
                        }
                    }
                }
                if n >= 0 { got += 1; continue }
                guard errno == EAGAIN, try b.waitReadable(timeout: .seconds(1)) else {
                    lost += batch - got
                    break
                }
            }
        }
        return lost
    }
}

// UDPSocket batches: 64 datagrams per sendmmsg, up to 64 per recvmmsg.
func batches() throws -> Measurement {
    let (a, b) = try pair(sender: .init(gso: false))
    return try measure {
        var lost = 0
        for _ in 0..<(perRound / batch) {
            for _ in 0..<batch { a.enqueue(payload, to: b.localAddress) }
            try send(a)
            lost += try drain(b, expected: batch)
        }
        return lost
    }
}

// GSO: the batch as two sends of 32 segments (38 400 bytes each; a send is at most 64 KiB).
func gso(gro: Bool) throws -> Measurement? {
    let (a, b) = try pair(receiver: .init(gro: gro))
    guard a.supportsGSO, !gro || b.supportsGRO else { return nil }
    let train = [UInt8](repeating: 0x5a, count: datagramSize * batch / 2)
    return try measure {
        var lost = 0
        for _ in 0..<(perRound / batch) {
            a.enqueue(train, to: b.localAddress, segmentSize: datagramSize)
            a.enqueue(train, to: b.localAddress, segmentSize: datagramSize)
            try send(a)
            lost += try drain(b, expected: batch)
        }
        return lost
    }
}

let rows: [(String, Measurement?)] = [
    ("sendto / recvfrom, one datagram per call", try plainSyscalls()),
    ("sendmmsg / recvmmsg, batches of \(batch)", try batches()),
    ("GSO sendmmsg (2 × 32 segments) / recvmmsg", try gso(gro: false)),
    ("GSO sendmmsg / GRO recvmmsg", try gso(gro: true)),
]

print("\(perRound) datagrams of \(datagramSize) bytes per round, median of \(rounds) rounds; both ends on one thread\n")
print("| path | datagrams/s | MB/s | ns/datagram | heap allocations/datagram | × sendto/recvfrom | lost |")
print("|---|---|---|---|---|---|---|")
let baseline = rows[0].1?.seconds ?? 1
for (name, measurement) in rows {
    guard let m = measurement else {
        print("| \(name) | kernel refused | | | | | |")
        continue
    }
    let rate = Double(perRound) / m.seconds
    print("| \(name) | \(String(format: "%.0f k", rate / 1e3)) | \(String(format: "%.0f", rate * Double(datagramSize) / 1e6)) | \(String(format: "%.0f", 1e9 / rate)) | \(String(format: "%.3f", m.allocationsPerDatagram)) | \(String(format: "%.2f", baseline / m.seconds)) | \(m.lost) |")
}

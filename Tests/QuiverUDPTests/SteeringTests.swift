#if canImport(Glibc)
import Glibc
#endif
import QuiverCore
import QuiverUDP
import Testing

@Suite("SO_REUSEPORT steering by QUIC connection ID")
struct SteeringTests {
    /// Which socket of the group received `datagram`, waiting up to a second.
    func receiver(of datagram: [UInt8], group: [UDPSocket], from client: UDPSocket) throws -> Int? {
        client.enqueue(datagram, to: group[0].localAddress)
        _ = try client.flush()
        for _ in 0..<1000 {
            for (index, socket) in group.enumerated() where try socket.receive() > 0 {
                return index
            }
            _ = try group[0].waitReadable(timeout: .milliseconds(1))  // a short pause between polls
        }
        return nil
    }

    @Test("datagrams go to the socket named by the worker id in their DCID; clients' own DCIDs spread over the group")
    func steering() throws {
        let group = try UDPSocket.steeringGroup(bindingTo: SocketAddress("127.0.0.1:0")!, count: 3)
        #expect(Set(group.map(\.localAddress.port)).count == 1)
        let client = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        for worker in [2, 0, 1, 2] {
            // Short header: first byte 0b01xxxxxx, then the DCID whose bytes 1–2 are the worker id.
            let datagram: [UInt8] = [0x41, 0x17, 0x00, UInt8(worker), 9, 9, 9, 9, 9, 9] + [UInt8](repeating: 0, count: 30)
            #expect(try receiver(of: datagram, group: group, from: client) == worker)
        }
        for worker in [UInt8(1), 2, 0] {
            // Long header (a Handshake packet to the server's CID): flags, version, DCID length, DCID.
            let datagram: [UInt8] = [0xe3, 0, 0, 0, 1, 8, 0x33, 0, worker, 3, 4, 5, 6, 7, 0] + [UInt8](repeating: 0, count: 60)
            #expect(try receiver(of: datagram, group: group, from: client) == Int(worker))
        }
        // Client-chosen DCIDs (a client's first Initials): bytes 1–2 modulo the group's size, so
        // Initials from one address and port spread over the group by connection, each
        // connection's always to the same socket.
        for (high, low) in [(UInt8(0xfe), UInt8(0xdc)), (0x12, 0x34), (0xab, 0xce), (0x00, 0x05)] {
            let initial: [UInt8] = [0xc3, 0, 0, 0, 1, 8, 0x33, high, low, 3, 4, 5, 6, 7, 0] + [UInt8](repeating: 0, count: 1185)
            let expected = Int((UInt16(high) << 8 | UInt16(low)) % 3)
            #expect(try receiver(of: initial, group: group, from: client) == expected)
            #expect(try receiver(of: initial, group: group, from: client) == expected)
        }
    }

    @Test("behind a QUIC-LB balancer the worker id follows the host's server ID: the program reads it at the offset given")
    func steeringAfterServerID() throws {
        let group = try UDPSocket.steeringGroup(bindingTo: SocketAddress("127.0.0.1:0")!, count: 2, workerIDOffset: 2)
        let client = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        for worker in [UInt8(1), 0, 1] {
            // Short header, then the DCID: first octet, server ID 0x2a, worker id, random nonce.
            let datagram: [UInt8] = [0x41, 0x27, 0x2a, 0x00, worker, 9, 9, 9, 9] + [UInt8](repeating: 0, count: 30)
            #expect(try receiver(of: datagram, group: group, from: client) == Int(worker))
            let handshake: [UInt8] = [0xe3, 0, 0, 0, 1, 8, 0x27, 0x2a, 0x00, worker, 4, 5, 6, 7] + [UInt8](repeating: 0, count: 60)
            #expect(try receiver(of: handshake, group: group, from: client) == Int(worker))
        }
    }

    @Test("a generation group: the running generation gets new clients, each generation keeps its connections' datagrams, the previous one its handshakes until it leaves")
    func generations() throws {
        // Two loops a generation: sockets and worker ids 0, 1 (generation 0) and 2, 3 (generation 1).
        let group = try UDPSocket.generationGroup(bindingTo: SocketAddress("127.0.0.1:0")!, loops: 2)
        #expect(group.count == 4 && Set(group.map(\.localAddress.port)).count == 1)
        let client = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        func short(_ worker: UInt8) -> [UInt8] { [0x41, 0x17, 0x00, worker, 9, 9, 9, 9, 9, 9] + [UInt8](repeating: 0, count: 30) }
        func long(_ high: UInt8, _ low: UInt8) -> [UInt8] { [0xc3, 0, 0, 0, 1, 8, 0x33, high, low, 3, 4, 5, 6, 7, 0] + [UInt8](repeating: 0, count: 1185) }
        func check(short expectedShort: [Int], long expectedLong: [((UInt8, UInt8), Int)]) throws {
            for (worker, socket) in expectedShort.enumerated() {
                #expect(try receiver(of: short(UInt8(worker)), group: group, from: client) == socket, "short header, worker \(worker)")
            }
            for ((high, low), socket) in expectedLong {
                #expect(try receiver(of: long(high, low), group: group, from: client) == socket, "long header, DCID \(high) \(low)")
            }
        }
        // Generation 0 alone: short headers by worker id; every long header to generation 0.
        try check(short: [0, 1, 2, 3], long: [((0, 0), 0), ((0, 1), 1), ((0, 2), 0), ((0, 3), 1), ((0x12, 0x35), 1), ((0xfe, 0xdc), 0)])
        // Generation 1 took over: generation 0's worker ids in long headers stay there, the rest
        // go to generation 1.
        try UDPSocket.steerGenerations(group[0].fileDescriptor, loops: 2, generation: 1, previousAlive: true)
        try check(short: [0, 1, 2, 3], long: [((0, 0), 0), ((0, 1), 1), ((0, 2), 2), ((0, 3), 3), ((0x12, 0x35), 3), ((0xfe, 0xdc), 2)])
        // Generation 0 left: every long header to generation 1; short headers still by worker id.
        try UDPSocket.steerGenerations(group[3].fileDescriptor, loops: 2, generation: 1, previousAlive: false)
        try check(short: [0, 1, 2, 3], long: [((0, 0), 2), ((0, 1), 3), ((0, 2), 2), ((0, 3), 3), ((0x12, 0x35), 3)])
        // And generation 0 again, with generation 1 alive.
        try UDPSocket.steerGenerations(group[1].fileDescriptor, loops: 2, generation: 0, previousAlive: true)
        try check(short: [0, 1, 2, 3], long: [((0, 0), 0), ((0, 1), 1), ((0, 2), 2), ((0, 3), 3), ((0x12, 0x35), 1)])
    }

    @Test("a socket passed over a unix socket (SCM_RIGHTS) and adopted is the same socket: same port, same queue")
    func adoptPassedSocket() throws {
        let original = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { _ = close(pair[0]); _ = close(pair[1]) }
        try DescriptorPassing.send(Array("sockets".utf8), descriptors: [original.fileDescriptor], on: pair[0])
        let (bytes, descriptors) = try DescriptorPassing.receive(on: pair[1])
        #expect(bytes == Array("sockets".utf8) && descriptors.count == 1)
        let adopted = try UDPSocket(adopting: try #require(descriptors.first))
        #expect(adopted.localAddress == original.localAddress && adopted.fileDescriptor != original.fileDescriptor)
        let client = try UDPSocket(bindingTo: SocketAddress("127.0.0.1:0")!)
        #expect(!UDPSocket.hasPendingDatagram(original.fileDescriptor))
        client.enqueue([1, 2, 3], to: original.localAddress)
        _ = try client.flush()
        #expect(try adopted.waitReadable(timeout: .seconds(1)))
        #expect(UDPSocket.hasPendingDatagram(original.fileDescriptor), "one queue, seen through either descriptor")
        #expect(try adopted.receive() == 1)
        adopted.withReceivedBytes(0) { #expect(Array($0) == [1, 2, 3]) }
        #expect(!UDPSocket.hasPendingDatagram(original.fileDescriptor))
        // Not a UDP socket: refused, and the descriptor closed.
        #expect(throws: QuiverError.self) { _ = try UDPSocket(adopting: dup(pair[0])) }
    }
}

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
}

import QuiverCore
import QuiverUDP
import Testing

@Suite("UDPSocket: datagrams queued without a copy")
struct UDPSharedSendTests {
    @Test("Shared ranges and copied datagrams go out in queue order, byte for byte")
    func interleaved() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(receiveBufferSize: 1 << 20))
        let first = datagram(1, size: 900) + datagram(2, size: 300)
        let second = (3..<7).flatMap { datagram($0, size: 1200) } + datagram(7, size: 100)
        #expect(a.enqueue(datagram(0, size: 50), to: b.localAddress))
        #expect(a.enqueue(sharing: first, range: 900..<1200, to: b.localAddress))
        #expect(a.enqueue(datagram(8, size: 60), to: b.localAddress))
        #expect(a.enqueue(sharing: second, to: b.localAddress, segmentSize: 1200))
        #expect(a.enqueue(sharing: first, range: 0..<900, to: b.localAddress))
        #expect(a.queuedDatagramCount == 1 + 1 + 1 + 5 + 1)
        #expect(try flushAll(a) == UDPSendResult(sent: 9, failed: 0, remaining: 0))
        let expected = [datagram(0, size: 50), datagram(2, size: 300), datagram(8, size: 60)]
            + (3..<7).map { datagram($0, size: 1200) } + [datagram(7, size: 100), datagram(1, size: 900)]
        #expect(try receive(9, on: b).map(\.bytes) == expected)

        // The copied part of the queue starts again at the front of the send buffer.
        #expect(a.enqueue(datagram(9, size: 70), to: b.localAddress))
        #expect(try flushAll(a).sent == 1)
        #expect(try receive(1, on: b).map(\.bytes) == [datagram(9, size: 70)])
    }

    @Test("The sender's later change to its array is not sent: the queue holds the array as it was")
    func valueSemantics() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        var bytes = datagram(1, size: 500)
        #expect(a.enqueue(sharing: bytes, to: b.localAddress))
        bytes.replaceSubrange(0..<500, with: datagram(2, size: 500))
        #expect(try flushAll(a).sent == 1)
        #expect(try receive(1, on: b).map(\.bytes) == [datagram(1, size: 500)])
    }

    @Test("A sent array queued to be recycled comes back empty with its capacity; others do not")
    func recycling() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(receiveBufferSize: 1 << 20))
        #expect(a.takeSpareBuffer() == nil)
        var train = [UInt8]()
        train.reserveCapacity(20_000)
        train += (0..<10).flatMap { datagram($0, size: 1200) }
        let capacity = train.capacity
        #expect(a.enqueue(sharing: train, to: b.localAddress, segmentSize: 1200, recycle: true))
        #expect(a.enqueue(sharing: datagram(20, size: 100), to: b.localAddress))
        train = []  // the sender goes on in other memory, as a datagram train does
        #expect(a.takeSpareBuffer() == nil, "nothing comes back before it is sent")
        #expect(try flushAll(a).sent == 11)
        let spare = try #require(a.takeSpareBuffer())
        #expect(spare.isEmpty)
        #expect(spare.capacity >= capacity)
        #expect(a.takeSpareBuffer() == nil, "the array queued without recycle is not kept")
        #expect(try receive(11, on: b).count == 11)

        // At most maxSpareBuffers arrays to recycle are queued at once (arrays without recycle
        // still are), all come back, and removeSpareBuffers lets them go.
        for i in 0..<UDPSocket.maxSpareBuffers {
            #expect(a.enqueue(sharing: datagram(i, size: 100), to: b.localAddress, recycle: true))
        }
        #expect(!a.enqueue(sharing: datagram(9, size: 100), to: b.localAddress, recycle: true))
        #expect(a.enqueue(sharing: datagram(9, size: 100), to: b.localAddress))
        #expect(try flushAll(a).sent == UDPSocket.maxSpareBuffers + 1)
        #expect(a.enqueue(sharing: datagram(10, size: 100), to: b.localAddress, recycle: true), "room again once sent")
        #expect(try flushAll(a).sent == 1)
        var kept = 0
        while a.takeSpareBuffer() != nil { kept += 1 }
        #expect(kept == UDPSocket.maxSpareBuffers)
        for i in 0..<2 { #expect(a.enqueue(sharing: datagram(i, size: 100), to: b.localAddress, recycle: true)) }
        #expect(try flushAll(a).sent == 2)
        a.removeSpareBuffers()
        #expect(a.takeSpareBuffer() == nil)
        #expect(try receive(UDPSocket.maxSpareBuffers + 4, on: b).count == UDPSocket.maxSpareBuffers + 4)
    }

    @Test("A sender that flushes when refused goes round the same few arrays")
    func steadyState() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(receiveBufferSize: 4 << 20))
        var train = [UInt8]()
        var fresh = 0
        for i in 0..<40 {
            if train.capacity < 2400 { fresh += 1; train.reserveCapacity(2400) }
            train += datagram(i, size: 1200) + datagram(i + 1000, size: 1200)
            if !a.enqueue(sharing: train, to: b.localAddress, segmentSize: 1200, recycle: true) {
                _ = try flushAll(a)
                #expect(a.enqueue(sharing: train, to: b.localAddress, segmentSize: 1200, recycle: true))
            }
            train = a.takeSpareBuffer() ?? []
        }
        _ = try flushAll(a)
        #expect(fresh <= UDPSocket.maxSpareBuffers + 1, "arrays made: \(fresh)")
        #expect(try receive(80, on: b).count == 80)
    }

    @Test("Shared bytes are bounded by the send queue's capacity, apart from copied ones")
    func capacity() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(sendQueueCapacity: 1000))
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(a.enqueue([UInt8](repeating: 1, count: 900), to: b.localAddress))
        #expect(a.enqueue(sharing: [UInt8](repeating: 2, count: 600), to: b.localAddress))
        #expect(!a.enqueue(sharing: [UInt8](repeating: 3, count: 600), to: b.localAddress))
        #expect(a.enqueue(sharing: [UInt8](repeating: 4, count: 400), to: b.localAddress))
        #expect(try flushAll(a).sent == 3)
        #expect(a.enqueue(sharing: [UInt8](repeating: 3, count: 600), to: b.localAddress))
        #expect(try flushAll(a).sent == 1)
        #expect(try receive(4, on: b).map(\.bytes.first) == [1, 2, 4, 3])
    }

    @Test("The queue's length bounds shared entries too, one per segment without GSO")
    func batchLimit() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(batchSize: 4, gso: false))
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        let train = (0..<3).flatMap { datagram($0, size: 1200) }
        #expect(a.enqueue(sharing: train, to: b.localAddress, segmentSize: 1200))
        #expect(a.queuedDatagramCount == 3)
        #expect(!a.enqueue(sharing: train, to: b.localAddress, segmentSize: 1200))
        #expect(a.enqueue(sharing: datagram(9, size: 10), to: b.localAddress))
        #expect(try flushAll(a).sent == 4)
        #expect(try receive(4, on: b).map(\.bytes) == (0..<3).map { datagram($0, size: 1200) } + [datagram(9, size: 10)])
    }

    @Test("A shared datagram the kernel refuses is dropped and listed; the rest still go")
    func refusedDatagram() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(a.enqueue(sharing: datagram(1, size: 100), to: b.localAddress))
        #expect(a.enqueue(sharing: [UInt8](repeating: 0, count: 70_000), to: b.localAddress, recycle: true))  // over 65507
        #expect(a.enqueue(datagram(2, size: 100), to: b.localAddress))
        #expect(a.enqueue(sharing: datagram(3, size: 100), to: b.localAddress))
        let result = try flushAll(a)
        #expect(result == UDPSendResult(sent: 3, failed: 1, remaining: 0))
        #expect(a.sendFailures.count == 1)
        #expect(try receive(3, on: b).map(\.bytes) == [datagram(1, size: 100), datagram(2, size: 100), datagram(3, size: 100)])
        #expect(a.takeSpareBuffer()?.capacity ?? 0 >= 70_000, "a dropped array is done with too")
    }
}

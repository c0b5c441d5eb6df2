import QuiverCore
import QuiverUDP
import Testing

@Suite("UDPSocket: ECN marks, GSO and GRO")
struct UDPOffloadTests {
    @Test("ECN: ECT(0), ECT(1) and CE marks are read back as sent", .enabled(if: Kernel.supportsECN, "the kernel refused IP_RECVTOS"),
          arguments: ["127.0.0.1", "::1"])
    func ecnMarks(host: String) throws {
        guard host == "127.0.0.1" || Kernel.hasIPv6 else { return }
        let a = try UDPSocket(host: host, port: 0)
        let b = try UDPSocket(host: host, port: 0)
        #expect(a.supportsECN && b.supportsECN)
        let marks: [ECNCodepoint] = [.ect0, .ect1, .ce, .notECT]
        for (i, mark) in marks.enumerated() { a.enqueue([UInt8(i)], to: b.localAddress, ecn: mark) }
        _ = try flushAll(a)
        let got = try receive(marks.count, on: b)
        #expect(got.map(\.bytes) == (0..<marks.count).map { [UInt8($0)] })
        #expect(got.map(\.ecn) == marks)
    }

    @Test("Without ECN configured, marks are neither sent nor reported")
    func ecnOff() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(ecn: false))
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(!a.supportsECN)
        a.enqueue([1], to: b.localAddress, ecn: .ce)
        _ = try flushAll(a)
        #expect(try receive(1, on: b).map(\.ecn) == [.notECT])
    }

    @Test("GSO: one 12000-byte send with UDP_SEGMENT=1200 arrives as 10 datagrams",
          .enabled(if: Kernel.supportsGSO, "the kernel refused UDP_SEGMENT; GSO untested"))
    func gsoSend() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(receiveBufferSize: 1 << 20))
        #expect(a.supportsGSO)
        let segments = (0..<10).map { datagram($0, size: 1200) }
        #expect(a.enqueue(segments.flatMap { $0 }, to: b.localAddress, ecn: .ect0, segmentSize: 1200))
        #expect(a.queuedDatagramCount == 10)
        #expect(try flushAll(a) == UDPSendResult(sent: 10, failed: 0, remaining: 0))
        let got = try receive(10, on: b)
        #expect(got.map(\.bytes) == segments)
        #expect(got.allSatisfy { $0.source == a.localAddress && $0.segmentSize == nil })
        if b.supportsECN { #expect(got.allSatisfy { $0.ecn == .ect0 }) }
    }

    @Test("GSO with a short last segment, beside plain datagrams in the same batch",
          .enabled(if: Kernel.supportsGSO, "the kernel refused UDP_SEGMENT; GSO untested"))
    func gsoShortLastSegment() throws {
        let a = try UDPSocket(host: "::1", port: 0)
        let b = try UDPSocket(host: "::1", port: 0)
        a.enqueue(datagram(100, size: 50), to: b.localAddress)
        let train = (0..<3).map { datagram($0, size: 1200) } + [datagram(3, size: 200)]
        a.enqueue(train.flatMap { $0 }, to: b.localAddress, segmentSize: 1200)
        a.enqueue(datagram(101, size: 60), to: b.localAddress)
        #expect(try flushAll(a).sent == 6)
        #expect(try receive(6, on: b).map(\.bytes) == [datagram(100, size: 50)] + train + [datagram(101, size: 60)])
    }

    @Test("Without GSO, a segmented datagram is sent as separate datagrams")
    func gsoFallback() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(gso: false))
        let b = try UDPSocket(host: "127.0.0.1", port: 0)
        #expect(!a.supportsGSO)
        let segments = (0..<10).map { datagram($0, size: 1200) } + [datagram(10, size: 7)]
        #expect(a.enqueue(segments.flatMap { $0 }, to: b.localAddress, segmentSize: 1200))
        #expect(a.queuedDatagramCount == 11)
        #expect(try flushAll(a).sent == 11)
        #expect(try receive(11, on: b).map(\.bytes) == segments)
    }

    @Test("GSO sender, GRO receiver: one coalesced buffer with segment size 1200",
          .enabled(if: Kernel.supportsGSO && Kernel.supportsGRO, "the kernel refused UDP_SEGMENT or UDP_GRO"))
    func gsoToGRO() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0)
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(gro: true, receiveBufferSize: 1 << 20))
        #expect(b.supportsGRO)
        let segments = (0..<10).map { datagram($0, size: 1200) }
        a.enqueue(segments.flatMap { $0 }, to: b.localAddress, ecn: .ect1, segmentSize: 1200)
        _ = try flushAll(a)
        let got = try receive(1, on: b)
        try #require(got.count == 1)
        #expect(got[0].bytes == segments.flatMap { $0 })
        #expect(got[0].segmentSize == 1200)
        #expect(got[0].source == a.localAddress)
        if b.supportsECN { #expect(got[0].ecn == .ect1) }
    }

    @Test("GRO receiver, plain datagrams: each arrives alone", .enabled(if: Kernel.supportsGRO, "the kernel refused UDP_GRO"))
    func groWithPlainDatagrams() throws {
        let a = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(gso: false))
        let b = try UDPSocket(host: "127.0.0.1", port: 0, configuration: .init(gro: true))
        for i in 0..<3 { a.enqueue(datagram(i, size: 1200), to: b.localAddress) }
        _ = try flushAll(a)
        let got = try receive(3, on: b)
        #expect(got.map(\.bytes) == (0..<3).map { datagram($0, size: 1200) })
        #expect(got.allSatisfy { $0.segmentSize == nil || $0.segmentSize == $0.bytes.count })
    }
}

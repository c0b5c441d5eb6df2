import Testing

@testable import QuiverCore

@Suite("Bytes, varints, addresses, time")
struct ByteCodingTests {
    @Test("varints: RFC 9000 §A.1 examples and boundaries")
    func varints() throws {
        let examples: [([UInt8], UInt64)] = [
            ([0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c], 151_288_809_941_952_652),
            ([0x9d, 0x7f, 0x3e, 0x7d], 494_878_333),
            ([0x7b, 0xbd], 15293),
            ([0x25], 37),
            ([0x40, 0x25], 37),
        ]
        for (bytes, value) in examples {
            var r = ByteReader(bytes)
            #expect(try r.readVarInt() == value)
            #expect(r.isAtEnd)
        }
        for value: UInt64 in [0, 63, 64, 16383, 16384, 1_073_741_823, 1_073_741_824, VarInt.max] {
            var w = ByteWriter()
            w.writeVarInt(value)
            #expect(w.count == VarInt.encodedLength(value))
            var r = ByteReader(w.bytes)
            #expect(try r.readVarInt() == value)
        }
        var short = ByteReader([0xc2, 0x19])
        #expect(throws: DecodeError.self) { try short.readVarInt() }
    }

    @Test("varints written together are the bytes of each written alone, for every length")
    func varintsTogether() throws {
        let values: [UInt64] = [0, 63, 64, 16383, 16384, 1_073_741_823, 1_073_741_824, VarInt.max, 37, 15293]
        for a in values {
            for b in values {
                for (c, d) in [(nil, nil), (UInt64(494_878_333), nil), (VarInt.max, VarInt.max), (0, 64)] as [(UInt64?, UInt64?)] {
                    var together = ByteWriter()
                    together.writeVarInt(0x11)  // after bytes already written
                    together.writeVarInts(a, b, c, d)
                    var alone = ByteWriter()
                    alone.writeVarInt(0x11)
                    for value in [a, b, c, d].compactMap({ $0 }) { alone.writeVarInt(value) }
                    #expect(together.bytes == alone.bytes)
                }
            }
        }
    }

    @Test("reader: integers, length prefixes, bounds")
    func reader() throws {
        var r = ByteReader([1, 0, 2, 0, 0, 3, 0, 0, 0, 4, 2, 9, 9, 7])
        #expect(try r.readUInt8() == 1)
        #expect(try r.readUInt16() == 2)
        #expect(try r.readUInt24() == 3)
        #expect(try r.readUInt32() == 4)
        var sub = try r.readLengthPrefixed(1)
        #expect(try sub.readBytes(2) == [9, 9])
        #expect(sub.isAtEnd)
        #expect(r.peekUInt8() == 7)
        #expect(throws: DecodeError.self) { try r.expectEnd() }
        #expect(throws: DecodeError.self) { try r.readUInt16() }
        var lying = ByteReader([0xff, 1, 2])
        #expect(throws: DecodeError.self) { try lying.readLengthPrefixedBytes(1) }
        var negative = ByteReader([1])
        #expect(throws: DecodeError.self) { try negative.readBytes(-1) }
    }

    @Test("writer: nested length prefixes are patched")
    func writer() {
        var w = ByteWriter()
        w.writeLengthPrefixed(2) { w in
            w.writeUInt8(1)
            w.writeLengthPrefixed(3) { $0.writeBytes([5, 6]) }
        }
        w.writeUInt64(0x0102_0304_0506_0708)
        #expect(w.bytes == [0, 6, 1, 0, 0, 2, 5, 6, 1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test("socket addresses parse and print", arguments: ["127.0.0.1:4433", "[::1]:443", "[fe80::1%2]:80", "0.0.0.0:0", "[::]:4433"])
    func addresses(_ text: String) throws {
        let address = try #require(SocketAddress(text))
        #expect(address.description == text)
        let (storage, _) = address.storage
        #expect(SocketAddress(storage: storage) == address)
    }

    @Test("socket addresses reject junk", arguments: ["localhost:1", "1.2.3.4", "[::1]", "1.2.3.4:99999", "[::1]x:1", ""])
    func badAddresses(_ text: String) {
        #expect(SocketAddress(text) == nil)
    }

    @Test("instants are monotonic and do arithmetic without overflow")
    func instants() {
        let a = Instant.now()
        let b = Instant.now()
        #expect(b >= a)
        let t = Instant(nanoseconds: 1_000)
        #expect(t + .microseconds(1) == Instant(nanoseconds: 2_000))
        #expect(t + .seconds(-1) == Instant(nanoseconds: 0))
        #expect(Instant(nanoseconds: .max - 1) + .seconds(10) == Instant(nanoseconds: .max))
        #expect(Instant(nanoseconds: 5_000) - t == .nanoseconds(4_000))
        #expect(t - Instant(nanoseconds: 5_000) == .nanoseconds(-4_000))
    }

    @Test("errors compare by code")
    func errors() {
        #expect(QuiverError(.io, "a") == QuiverError(.io, "b"))
        #expect(QuiverError(.io, "a") != QuiverError(.closed, "a"))
    }
}

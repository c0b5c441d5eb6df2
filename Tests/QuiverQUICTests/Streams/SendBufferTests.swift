import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct SendBufferTests {
        @Test(arguments: 1...12)
        func randomAckAndLossDeliversExactlyOnceInOrder(seed: Int) throws {
            var rng = SeededGenerator(seed: UInt64(seed))
            let data = rng.fastBytes(seed == 1 ? 0 : Int.random(in: 1...300_000, using: &rng))
            var sender = SendBuffer()
            var receiver = ReceiveBuffer()
            var received: [UInt8] = []
            var written = 0
            var inFlight: [(offset: UInt64, data: [UInt8], fin: Bool)] = []
            var acknowledged = ByteRangeSet()
            var iterations = 0
            while !sender.isFullyAcknowledged {
                iterations += 1
                try #require(iterations < 1_000_000)
                if written < data.count, Int.random(in: 0..<3, using: &rng) == 0 {
                    let end = min(data.count, written + Int.random(in: 1...40_000, using: &rng))
                    sender.write(Array(data[written..<end]))
                    written = end
                }
                if written == data.count, !sender.isFinished, Bool.random(using: &rng) { sender.finish() }
                for _ in 0..<Int.random(in: 0...4, using: &rng) {
                    let expectedOffset = sender.nextOffset()
                    guard let range = sender.nextRange(maxLength: Int.random(in: 1...3000, using: &rng)) else { break }
                    #expect(range.offset == expectedOffset)
                    let end = range.offset + UInt64(range.data.count)
                    // Never re-send bytes already acknowledged.
                    if end > range.offset { #expect(acknowledged.gaps(in: range.offset..<end) == [range.offset..<end]) }
                    #expect(range.data[...] == data[Int(range.offset)..<Int(end)])
                    inFlight.append(range)
                }
                while !inFlight.isEmpty, Int.random(in: 0..<3, using: &rng) != 0 {
                    let frame = inFlight.remove(at: Int.random(in: 0..<inFlight.count, using: &rng))
                    let length = frame.data.count
                    switch Int.random(in: 0..<20, using: &rng) {
                    case 0..<13:  // delivered and acknowledged
                        try receiver.insert(offset: frame.offset, data: frame.data[...], fin: frame.fin)
                        sender.onAcked(offset: frame.offset, length: length, fin: frame.fin)
                        acknowledged.insert(frame.offset..<(frame.offset + UInt64(length)))
                    case 13..<18:  // lost
                        sender.onLost(offset: frame.offset, length: length, fin: frame.fin)
                    default:  // delivered, but declared lost (spurious)
                        try receiver.insert(offset: frame.offset, data: frame.data[...], fin: frame.fin)
                        sender.onLost(offset: frame.offset, length: length, fin: frame.fin)
                    }
                }
                received += receiver.read(maxBytes: Int.random(in: 0...50_000, using: &rng))
            }
            received += receiver.read(maxBytes: .max)
            #expect(received == data)
            #expect(receiver.isFinished)
            #expect(sender.bufferedBytes == 0)
            #expect(sender.lostBytes == 0)
            #expect(sender.unacknowledgedBytes == 0)
            #expect(sender.nextRange(maxLength: 1000) == nil)
        }

        @Test func lostRangesGoFirstAndExactly() {
            var buffer = SendBuffer()
            buffer.write(Array(0..<100))
            let a = buffer.nextRange(maxLength: 30)
            let b = buffer.nextRange(maxLength: 30)
            let c = buffer.nextRange(maxLength: 30)
            #expect(a?.offset == 0 && b?.offset == 30 && c?.offset == 60)
            buffer.onAcked(offset: 30, length: 30)
            buffer.onLost(offset: 60, length: 30)
            buffer.onLost(offset: 0, length: 30)
            #expect(buffer.lostBytes == 60)
            // Lost data first, lowest offset first, split by maxLength.
            let r1 = buffer.nextRange(maxLength: 20)
            #expect(r1?.offset == 0 && r1?.data == Array(0..<20))
            let r2 = buffer.nextRange(maxLength: 100)
            #expect(r2?.offset == 20 && r2?.data == Array(20..<30))
            let r3 = buffer.nextRange(maxLength: 100)
            #expect(r3?.offset == 60 && r3?.data == Array(60..<90))
            // Then new data.
            let r4 = buffer.nextRange(maxLength: 100)
            #expect(r4?.offset == 90 && r4?.data == Array(90..<100) && r4?.fin == false)
            #expect(buffer.nextRange(maxLength: 100) == nil)
        }

        @Test func lossOfPartlyAcknowledgedRangeResendsOnlyTheGap() {
            var buffer = SendBuffer()
            buffer.write(Array(repeating: 7, count: 100))
            _ = buffer.nextRange(maxLength: 100)
            buffer.onAcked(offset: 10, length: 20)
            buffer.onAcked(offset: 50, length: 10)
            buffer.onLost(offset: 0, length: 100)
            #expect(buffer.lostBytes == 70)
            var ranges: [(UInt64, Int)] = []
            while let range = buffer.nextRange(maxLength: 1000) { ranges.append((range.offset, range.data.count)) }
            #expect(ranges.map(\.0) == [0, 30, 60])
            #expect(ranges.map(\.1) == [10, 20, 40])
            // A loss reported after the ack changes nothing.
            buffer.onAcked(offset: 0, length: 100)
            buffer.onLost(offset: 0, length: 100)
            #expect(buffer.lostBytes == 0)
            #expect(buffer.isAllDataAcknowledged)
        }

        @Test func newDataLimitAppliesToNewDataOnly() {
            var buffer = SendBuffer()
            buffer.write(Array(repeating: 1, count: 100))
            let first = buffer.nextRange(maxLength: 1000, newDataLimit: 40)
            #expect(first?.data.count == 40)
            #expect(buffer.nextRange(maxLength: 1000, newDataLimit: 40) == nil)
            #expect(!buffer.hasDataToSend(newDataLimit: 40))
            buffer.onLost(offset: 0, length: 40)
            #expect(buffer.nextRange(maxLength: 1000, newDataLimit: 0)?.data.count == 40)
            #expect(buffer.nextRange(maxLength: 1000, newDataLimit: 70)?.offset == 40)
        }

        @Test func finHandling() {
            var buffer = SendBuffer()
            buffer.write([1, 2, 3])
            buffer.finish()
            // FIN rides on the last data.
            let range = buffer.nextRange(maxLength: 10)
            #expect(range?.fin == true)
            #expect(buffer.nextRange(maxLength: 10) == nil)
            // FIN lost with its data: both come back.
            buffer.onLost(offset: 0, length: 3, fin: true)
            let again = buffer.nextRange(maxLength: 2)
            #expect(again?.fin == false && again?.data == [1, 2])
            let last = buffer.nextRange(maxLength: 2)
            #expect(last?.fin == true && last?.data == [3])
            buffer.onAcked(offset: 0, length: 3, fin: false)
            #expect(!buffer.isFullyAcknowledged)
            buffer.onAcked(offset: 2, length: 1, fin: true)
            #expect(buffer.isFullyAcknowledged)
        }

        @Test func finOnlyFrames() {
            var buffer = SendBuffer()
            buffer.finish()
            #expect(buffer.nextOffset() == 0)
            let empty = buffer.nextRange(maxLength: 0)
            #expect(empty?.offset == 0 && empty?.data == [] && empty?.fin == true)
            #expect(buffer.nextRange(maxLength: 10) == nil)
            buffer.onLost(offset: 0, length: 0, fin: true)
            #expect(buffer.nextRange(maxLength: 10)?.fin == true)
            buffer.onAcked(offset: 0, length: 0, fin: true)
            #expect(buffer.isFullyAcknowledged)

            var late = SendBuffer()
            late.write([1, 2])
            _ = late.nextRange(maxLength: 10)
            late.finish()
            let fin = late.nextRange(maxLength: 10)
            #expect(fin?.offset == 2 && fin?.data == [] && fin?.fin == true)
        }

        @Test func memoryIsReleasedAsThePrefixIsAcknowledged() {
            var buffer = SendBuffer()
            buffer.write(Array(repeating: 3, count: 1_000_000))
            var ranges: [(UInt64, Int)] = []
            while let range = buffer.nextRange(maxLength: 10_000) { ranges.append((range.offset, range.data.count)) }
            #expect(buffer.bufferedBytes == 1_000_000)
            // Acknowledge out of order: nothing released until the prefix is complete.
            buffer.onAcked(offset: ranges[1].0, length: ranges[1].1)
            #expect(buffer.bufferedBytes == 1_000_000)
            #expect(buffer.unacknowledgedBytes == 990_000)
            buffer.onAcked(offset: ranges[0].0, length: ranges[0].1)
            #expect(buffer.ackedOffset == 20_000)
            #expect(buffer.bufferedBytes == 980_000)
            for range in ranges { buffer.onAcked(offset: range.0, length: range.1) }
            #expect(buffer.bufferedBytes == 0)
        }

        @Test func fiftyMegabytesWithLoss() throws {
            var rng = SeededGenerator(seed: 99)
            let size = 50_000_000
            let data = rng.fastBytes(size)
            var sender = SendBuffer()
            sender.write(data)
            sender.finish()
            var receiver = ReceiveBuffer()
            var read = 0
            var mismatch = false
            var count = 0
            var pendingLoss: [(UInt64, Int, Bool)] = []
            while !sender.isFullyAcknowledged {
                guard let range = sender.nextRange(maxLength: 16_000) else {
                    for loss in pendingLoss { sender.onLost(offset: loss.0, length: loss.1, fin: loss.2) }
                    pendingLoss.removeAll()
                    continue
                }
                count += 1
                if count % 13 == 0 {
                    pendingLoss.append((range.offset, range.data.count, range.fin))
                    if pendingLoss.count > 20 {
                        for loss in pendingLoss { sender.onLost(offset: loss.0, length: loss.1, fin: loss.2) }
                        pendingLoss.removeAll()
                    }
                } else {
                    try receiver.insert(offset: range.offset, data: range.data[...], fin: range.fin)
                    sender.onAcked(offset: range.offset, length: range.data.count, fin: range.fin)
                }
                let chunk = receiver.read(maxBytes: .max)
                if chunk[...] != data[read..<(read + chunk.count)] { mismatch = true }
                read += chunk.count
            }
            #expect(!mismatch)
            #expect(read == size)
            #expect(receiver.isFinished)
            #expect(sender.bufferedBytes == 0)
        }
    }

    @Suite struct ByteRangeSetTests {
        @Test func matchesAReferenceModel() {
            var rng = SeededGenerator(seed: 3)
            var set = ByteRangeSet()
            var model = [Bool](repeating: false, count: 300)
            for _ in 0..<5000 {
                let lower = Int.random(in: 0..<300, using: &rng)
                let upper = min(300, lower + Int.random(in: 0...40, using: &rng))
                let range = UInt64(lower)..<UInt64(upper)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0, 1:
                    set.insert(range)
                    for i in lower..<upper { model[i] = true }
                case 2:
                    set.remove(range)
                    for i in lower..<upper { model[i] = false }
                default:
                    if let first = set.first {
                        set.removeFirst()
                        for i in Int(first.lowerBound)..<Int(first.upperBound) { model[i] = false }
                    }
                }
                var expected: [Range<UInt64>] = []
                var i = 0
                while i < 300 {
                    if model[i] {
                        let start = i
                        while i < 300, model[i] { i += 1 }
                        expected.append(UInt64(start)..<UInt64(i))
                    } else {
                        i += 1
                    }
                }
                #expect(Array(set.elements) == expected)
                #expect(set.totalLength == UInt64(model.filter { $0 }.count))
                let gaps = set.gaps(in: range)
                let expectedGaps = (lower..<upper).filter { !model[$0] }.count
                #expect(gaps.reduce(0) { $0 + $1.count } == expectedGaps)
            }
        }
    }
}

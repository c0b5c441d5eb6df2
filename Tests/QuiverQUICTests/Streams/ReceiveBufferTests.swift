import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct ReceiveBufferTests {
        /// Cuts `data` into random frames (1…2000 bytes, some larger), adds duplicates and
        /// random overlapping ranges, shuffles them.
        private func scrambledFrames(_ data: [UInt8], rng: inout SeededGenerator) -> [(offset: Int, end: Int)] {
            var frames: [(offset: Int, end: Int)] = []
            var offset = 0
            while offset < data.count {
                let length = Int.random(in: 0..<10, using: &rng) == 0
                    ? Int.random(in: 1...20_000, using: &rng) : Int.random(in: 1...2000, using: &rng)
                let end = min(offset + length, data.count)
                frames.append((offset, end))
                offset = end
            }
            if data.isEmpty { frames.append((0, 0)) }
            // Duplicates of ~20% of the frames.
            for frame in frames where Int.random(in: 0..<5, using: &rng) == 0 { frames.append(frame) }
            // Random overlapping ranges across frame boundaries.
            for _ in 0..<(frames.count / 10 + 1) where !data.isEmpty {
                let start = Int.random(in: 0..<data.count, using: &rng)
                let end = min(data.count, start + Int.random(in: 1...5000, using: &rng))
                frames.append((start, end))
            }
            frames.shuffle(using: &rng)
            return frames
        }

        @Test(arguments: [(0, 1), (1, 2), (1000, 3), (65_543, 4), (1_000_000, 5), (5_000_000, 6)])
        func reassemblesScrambledData(size: Int, seed: UInt64) throws {
            var rng = SeededGenerator(seed: seed)
            let data = rng.fastBytes(size)
            var buffer = ReceiveBuffer()
            var output: [UInt8] = []
            output.reserveCapacity(size)
            for frame in scrambledFrames(data, rng: &rng) {
                let fin = frame.end == data.count && Bool.random(using: &rng)
                try buffer.insert(offset: UInt64(frame.offset), data: data[frame.offset..<frame.end], fin: fin)
                #expect(buffer.bufferedBytes >= buffer.readableBytes)
                if Bool.random(using: &rng) {
                    output += buffer.read(maxBytes: Int.random(in: 0...100_000, using: &rng))
                }
            }
            // The last byte's frame may not have carried FIN; send a FIN-only frame.
            try buffer.insert(offset: UInt64(data.count), data: [], fin: true)
            #expect(buffer.isComplete)
            while buffer.readableBytes > 0 { output += buffer.read(maxBytes: 70_000) }
            #expect(output == data)
            #expect(buffer.isFinished)
            #expect(buffer.bufferedBytes == 0)
            #expect(buffer.chunkCount == 0)
        }

        @Test func inOrderTransferKeepsFewChunks() throws {
            var rng = SeededGenerator(seed: 7)
            let data = rng.fastBytes(1 << 20)
            var buffer = ReceiveBuffer()
            for offset in stride(from: 0, to: data.count, by: 1200) {
                let end = min(offset + 1200, data.count)
                try buffer.insert(offset: UInt64(offset), data: data[offset..<end], fin: end == data.count)
            }
            // 64 KiB chunks.
            #expect(buffer.chunkCount <= (1 << 20) / ReceiveBuffer.maxChunkSize + 1)
            var output: [UInt8] = []
            while !buffer.isFinished { output += buffer.read(maxBytes: .max) }
            #expect(output == data)
        }

        @Test func largeTransferWithLossAndLateRetransmission() throws {
            // 50 MB, every 7th packet arriving 100 packets late: exercises gaps at scale.
            var rng = SeededGenerator(seed: 50)
            let size = 50_000_000
            let data = rng.fastBytes(size)
            var buffer = ReceiveBuffer()
            var late: [(Int, Int)] = []
            var read = 0
            var index = 0
            var mismatch = false
            for offset in stride(from: 0, to: size, by: 1400) {
                let end = min(offset + 1400, size)
                if index % 7 == 3 {
                    late.append((offset, end))
                } else {
                    try buffer.insert(offset: UInt64(offset), data: data[offset..<end], fin: end == size)
                }
                if late.count > 14 || end == size {
                    for (lateOffset, lateEnd) in late {
                        try buffer.insert(offset: UInt64(lateOffset), data: data[lateOffset..<lateEnd], fin: lateEnd == size)
                    }
                    late.removeAll()
                }
                let chunk = buffer.read(maxBytes: .max)
                if chunk[...] != data[read..<(read + chunk.count)] { mismatch = true }
                read += chunk.count
                index += 1
            }
            #expect(!mismatch)
            #expect(read == size)
            #expect(buffer.isFinished)
        }

        @Test func finalSizeErrors() throws {
            // RFC 9000 §4.5.
            var buffer = ReceiveBuffer()
            try buffer.insert(offset: 0, data: [1, 2, 3], fin: false)
            try buffer.insert(offset: 10, data: [1, 2], fin: false)
            // FIN below data already received.
            #expect(transportError { try buffer.insert(offset: 0, data: [1], fin: true) } == .finalSizeError)
            try buffer.insert(offset: 12, data: [3], fin: true)
            #expect(buffer.finalSize == 13)
            // Data beyond the final size.
            #expect(transportError { try buffer.insert(offset: 13, data: [9], fin: false) } == .finalSizeError)
            #expect(transportError { try buffer.insert(offset: 12, data: [9, 9], fin: false) } == .finalSizeError)
            // A changed final size, larger or smaller.
            #expect(transportError { try buffer.insert(offset: 13, data: [], fin: true) } == nil)
            #expect(transportError { try buffer.insert(offset: 14, data: [], fin: true) } == .finalSizeError)
            #expect(transportError { try buffer.insert(offset: 5, data: [1], fin: true) } == .finalSizeError)
            #expect(transportError { try buffer.setFinalSize(12) } == .finalSizeError)
            #expect(transportError { try buffer.setFinalSize(14) } == .finalSizeError)
            // The same final size again is fine, with or without data.
            try buffer.insert(offset: 11, data: [2, 3], fin: true)
            try buffer.setFinalSize(13)
            // Still checked after everything was read.
            try buffer.insert(offset: 3, data: [4, 5, 6, 7, 8, 9, 10], fin: false)
            _ = buffer.read(maxBytes: 100)
            #expect(buffer.isFinished)
            #expect(transportError { try buffer.insert(offset: 13, data: [1], fin: false) } == .finalSizeError)
            #expect(transportError { try buffer.insert(offset: 0, data: [1], fin: true) } == .finalSizeError)
            try buffer.insert(offset: 0, data: [1], fin: false)
        }

        @Test func finalSizeFromResetBelowReceivedData() throws {
            var buffer = ReceiveBuffer()
            try buffer.insert(offset: 100, data: [1], fin: false)
            #expect(transportError { try buffer.setFinalSize(100) } == .finalSizeError)
            try buffer.setFinalSize(101)
            #expect(buffer.finalSize == 101)
        }

        @Test func neverHoldsMoreThanTheWindow() throws {
            var buffer = ReceiveBuffer(maxOffset: 1000)
            try buffer.insert(offset: 0, data: ArraySlice<UInt8>(repeating: 1, count: 1000), fin: false)
            #expect(transportError { try buffer.insert(offset: 1000, data: [1], fin: false) } == .flowControlError)
            #expect(transportError { try buffer.insert(offset: 999, data: [1, 2], fin: false) } == .flowControlError)
            #expect(transportError { try buffer.setFinalSize(1001) } == .flowControlError)
            #expect(buffer.bufferedBytes == 1000)
            _ = buffer.read(maxBytes: 500)
            buffer.maxOffset = 1500
            try buffer.insert(offset: 1000, data: ArraySlice<UInt8>(repeating: 2, count: 500), fin: false)
            #expect(buffer.bufferedBytes == 1000)
            #expect(buffer.readableBytes == 1000)
        }

        /// `read` returns all it may; `readChunk` stops at the end of a stored run that fits,
        /// so a stream's reader gets the run's array instead of a copy spanning two runs.
        @Test func readChunkStopsAtTheFirstStoredRun() throws {
            var buffer = ReceiveBuffer()
            try buffer.insert(offset: 0, data: ArraySlice<UInt8>(repeating: 1, count: ReceiveBuffer.maxChunkSize - 10), fin: false)
            try buffer.insert(offset: UInt64(ReceiveBuffer.maxChunkSize - 10), data: ArraySlice<UInt8>(repeating: 2, count: 100), fin: true)
            #expect(buffer.chunkCount == 2)
            var copy = buffer
            #expect(copy.read(maxBytes: 1 << 16).count == 1 << 16)  // all it may, across both runs
            let first = buffer.readChunk(maxBytes: 1 << 16)
            #expect(first == [UInt8](repeating: 1, count: ReceiveBuffer.maxChunkSize - 10))
            let second = buffer.readChunk(maxBytes: 1 << 16)
            #expect(second == [UInt8](repeating: 2, count: 100))
            #expect(buffer.isFinished)
        }

        @Test func cryptoBufferUsesItsOwnCode() {
            var buffer = ReceiveBuffer(maxOffset: 4096, overflowCode: .cryptoBufferExceeded)
            #expect(transportError { try buffer.insert(offset: 4000, data: ArraySlice<UInt8>(repeating: 0, count: 100), fin: false) } == .cryptoBufferExceeded)
        }

        @Test func rejectsOffsetsBeyondVarIntRange() {
            var buffer = ReceiveBuffer()
            #expect(transportError { try buffer.insert(offset: (1 << 62) - 1, data: [1], fin: false) } == .flowControlError)
            #expect(transportError { try buffer.insert(offset: .max, data: [1], fin: false) } == .flowControlError)
        }

        @Test func duplicatesAndReadDataAreIgnored() throws {
            var buffer = ReceiveBuffer()
            try buffer.insert(offset: 0, data: [0, 1, 2, 3], fin: false)
            #expect(buffer.read(maxBytes: 2) == [0, 1])
            try buffer.insert(offset: 0, data: [9, 9, 9, 9, 4, 5], fin: false)
            #expect(buffer.bufferedBytes == 4)
            #expect(buffer.read(maxBytes: 10) == [2, 3, 4, 5])
            try buffer.insert(offset: 8, data: [8], fin: false)
            try buffer.insert(offset: 6, data: [6, 7, 8, 9], fin: false)
            #expect(buffer.read(maxBytes: 10) == [6, 7, 8, 9])
            #expect(buffer.readOffset == 10)
        }

        @Test func skipAndRemoveAll() throws {
            var buffer = ReceiveBuffer()
            try buffer.insert(offset: 0, data: [0, 1, 2, 3], fin: false)
            try buffer.insert(offset: 10, data: [0], fin: false)
            #expect(buffer.skip(maxBytes: 100) == 4)
            #expect(buffer.readOffset == 4)
            buffer.removeAll()
            #expect(buffer.bufferedBytes == 0)
            #expect(buffer.readableBytes == 0)
            #expect(buffer.highestReceived == 11)
        }
    }
}

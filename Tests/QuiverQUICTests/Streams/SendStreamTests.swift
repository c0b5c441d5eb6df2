import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct SendStreamTests {
        let id = StreamID(index: 0, initiator: .client, direction: .bidirectional)

        private func frames(_ stream: inout SendStream) -> [Frame] {
            var frames: [Frame] = []
            stream.takeControlFrames(into: &frames)
            return frames
        }

        @Test func readySendDataSentDataRecvd() throws {
            var stream = SendStream(id: id, maxStreamData: 1000)
            #expect(stream.state == .ready)
            try stream.write([1, 2, 3])
            #expect(stream.state == .ready)
            let first = stream.nextFrame(maxLength: 1200, connectionCredit: 1000)
            #expect(first == .stream(id: id, offset: 0, data: [1, 2, 3], fin: false))
            #expect(stream.state == .send)
            try stream.write([4])
            try stream.finish()
            #expect(stream.state == .send)
            let second = stream.nextFrame(maxLength: 1200, connectionCredit: 1000)
            #expect(second == .stream(id: id, offset: 3, data: [4], fin: true))
            #expect(stream.state == .dataSent)
            // Loss in Data Sent: retransmitted, state unchanged.
            stream.onLost(offset: 3, length: 1, fin: true)
            #expect(stream.nextFrame(maxLength: 1200, connectionCredit: 0) == .stream(id: id, offset: 3, data: [4], fin: true))
            #expect(stream.state == .dataSent)
            stream.onAcked(offset: 3, length: 1, fin: true)
            #expect(stream.state == .dataSent)
            stream.onAcked(offset: 0, length: 3, fin: false)
            #expect(stream.state == .dataRecvd)
            #expect(stream.isTerminal)
            #expect(streamError { try stream.write([1]) } == .finished)
        }

        @Test func emptyStreamGoesStraightToDataSent() throws {
            var stream = SendStream(id: id, maxStreamData: 0)
            try stream.finish()
            #expect(stream.nextFrame(maxLength: 100, connectionCredit: 0) == .stream(id: id, offset: 0, data: [], fin: true))
            #expect(stream.state == .dataSent)
            stream.onAcked(offset: 0, length: 0, fin: true)
            #expect(stream.state == .dataRecvd)
        }

        @Test func streamDataBlockedMovesReadyToSend() throws {
            var stream = SendStream(id: id, maxStreamData: 0)
            try stream.write([1])
            #expect(stream.sendability(connectionCredit: 100) == .blockedByStream)
            stream.markBlockedIfNeeded()
            #expect(frames(&stream) == [.streamDataBlocked(id: id, limit: 0)])
            #expect(stream.state == .send)
            stream.markBlockedIfNeeded()
            #expect(frames(&stream) == [])
            stream.onBlockedLost(limit: 0)
            #expect(frames(&stream) == [.streamDataBlocked(id: id, limit: 0)])
            #expect(stream.onMaxStreamData(10) == true)
            #expect(stream.onMaxStreamData(5) == false)
            #expect(stream.sendability(connectionCredit: 0) == .blockedByConnection)
            #expect(stream.sendability(connectionCredit: 1) == .ready)
        }

        @Test(arguments: [SendStream.State.ready, .send, .dataSent])
        func resetFromEveryNonTerminalState(from: SendStream.State) throws {
            var stream = SendStream(id: id, maxStreamData: 1000)
            try stream.write([1, 2, 3, 4, 5])
            if from != .ready {
                if from == .dataSent { try stream.finish() }
                _ = stream.nextFrame(maxLength: 1200, connectionCredit: 1000)
            }
            #expect(stream.state == from)
            #expect(stream.reset(errorCode: 77) == true)
            #expect(stream.state == .resetSent)
            #expect(frames(&stream) == [.resetStream(id: id, errorCode: 77, finalSize: from == .ready ? 0 : 5)])
            #expect(stream.nextFrame(maxLength: 1200, connectionCredit: 1000) == nil)
            #expect(streamError { try stream.write([1]) } == .reset(errorCode: 77))
            #expect(stream.reset(errorCode: 78) == false)
            stream.onResetLost()
            #expect(frames(&stream) == [.resetStream(id: id, errorCode: 77, finalSize: from == .ready ? 0 : 5)])
            stream.onResetAcked()
            #expect(stream.state == .resetRecvd)
            #expect(stream.isTerminal)
            stream.onResetLost()
            #expect(frames(&stream) == [])
        }

        @Test(arguments: [SendStream.State.ready, .send, .dataSent])
        func stopSendingResetsWithTheGivenCode(from: SendStream.State) throws {
            var stream = SendStream(id: id, maxStreamData: 1000)
            try stream.write([1, 2])
            if from != .ready {
                if from == .dataSent { try stream.finish() }
                _ = stream.nextFrame(maxLength: 1200, connectionCredit: 1000)
            }
            #expect(stream.onStopSending(errorCode: 9) == true)
            #expect(stream.state == .resetSent)
            #expect(stream.stopSendingErrorCode == 9)
            #expect(frames(&stream) == [.resetStream(id: id, errorCode: 9, finalSize: from == .ready ? 0 : 2)])
            #expect(streamError { try stream.write([1]) } == .stopped(errorCode: 9))
            #expect(streamError { try stream.finish() } == .stopped(errorCode: 9))
            // A repeated STOP_SENDING changes nothing.
            #expect(stream.onStopSending(errorCode: 10) == false)
            #expect(frames(&stream) == [])
        }

        @Test func stopSendingAndResetInTerminalStatesAreIgnored() throws {
            var stream = SendStream(id: id, maxStreamData: 1000)
            try stream.write([1])
            try stream.finish()
            _ = stream.nextFrame(maxLength: 1200, connectionCredit: 1000)
            stream.onAcked(offset: 0, length: 1, fin: true)
            #expect(stream.state == .dataRecvd)
            #expect(stream.onStopSending(errorCode: 1) == false)
            #expect(stream.reset(errorCode: 1) == false)
            #expect(stream.state == .dataRecvd)
            #expect(frames(&stream) == [])
        }

        @Test func framesFitMaxLengthExactly() throws {
            var rng = SeededGenerator(seed: 11)
            let bigID = StreamID(index: 1 << 40, initiator: .server, direction: .unidirectional)
            var stream = SendStream(id: bigID, maxStreamData: 1 << 30)
            try stream.write(rng.fastBytes(300_000))
            try stream.finish()
            var offset: UInt64 = 0
            while let frame = stream.nextFrame(maxLength: Int.random(in: 1...20_000, using: &rng), connectionCredit: 1 << 30) {
                guard case .stream(_, let frameOffset, let data, _) = frame else { Issue.record("not STREAM"); return }
                #expect(frameOffset == offset)
                offset += UInt64(data.count)
                #expect(!data.isEmpty || frameOffset == 300_000)
            }
            for room in 0...400 {
                var copy = SendStream(id: bigID, maxStreamData: 1 << 30)
                try copy.write([UInt8](repeating: 0, count: 100_000))
                _ = copy.nextFrame(maxLength: 1000, connectionCredit: 1 << 30)
                if let frame = copy.nextFrame(maxLength: room, connectionCredit: 1 << 30) {
                    #expect(frame.encodedLength <= room)
                    #expect(frame.encodedLength >= room - 1)  // fills the room
                } else {
                    #expect(room <= 12)  // 1 type + 8 ID + 2 offset + 1 length + 1 data byte
                }
            }
        }

        @Test func maxDataLength() {
            #expect(SendStream.maxDataLength(room: 0) == nil)
            #expect(SendStream.maxDataLength(room: 1) == 0)
            #expect(SendStream.maxDataLength(room: 64) == 63)
            #expect(SendStream.maxDataLength(room: 65) == 63)
            #expect(SendStream.maxDataLength(room: 66) == 64)
            #expect(SendStream.maxDataLength(room: 16385) == 16383)
            #expect(SendStream.maxDataLength(room: 16386) == 16383)
            #expect(SendStream.maxDataLength(room: 16388) == 16384)
        }
    }
}

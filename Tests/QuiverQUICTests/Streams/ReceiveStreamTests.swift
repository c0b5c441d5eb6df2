import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct ReceiveStreamTests {
        let id = StreamID(index: 0, initiator: .client, direction: .bidirectional)
        let rtt = Duration.milliseconds(10)

        private func frames(_ stream: inout ReceiveStream) -> [Frame] {
            var frames: [Frame] = []
            stream.takeControlFrames(into: &frames)
            return frames
        }

        @Test func recvSizeKnownDataRecvdDataRead() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            #expect(stream.state == .recv)
            try stream.handleStream(offset: 5, data: [5, 6], fin: true)
            #expect(stream.state == .sizeKnown)
            try stream.handleStream(offset: 2, data: [2, 3, 4], fin: false)
            #expect(stream.state == .sizeKnown)
            #expect(stream.readableBytes == 0)
            try stream.handleStream(offset: 0, data: [0, 1], fin: false)
            #expect(stream.state == .dataRecvd)
            // A read returns up to maxBytes: a stored run whole when it fits (no copy), else a part.
            let part = try stream.read(maxBytes: 3, now: epoch, rtt: rtt)
            #expect(part.bytes == [0, 1] && !part.fin)
            let next = try stream.read(maxBytes: 1, now: epoch, rtt: rtt)
            #expect(next.bytes == [2] && !next.fin)
            #expect(stream.state == .dataRecvd)
            let rest = try stream.read(maxBytes: 10, now: epoch, rtt: rtt)
            #expect(rest.bytes == [3, 4, 5, 6] && rest.fin)
            #expect(stream.state == .dataRead)
            #expect(stream.isTerminal)
            // Late duplicates are fine; a different final size is not.
            try stream.handleStream(offset: 0, data: [0], fin: false)
            #expect(transportError { try stream.handleStream(offset: 7, data: [1], fin: false) } == .finalSizeError)
            #expect(transportError { try stream.handleReset(errorCode: 1, finalSize: 6) } == .finalSizeError)
            try stream.handleReset(errorCode: 1, finalSize: 7)
            #expect(stream.state == .dataRead)
            let again = try stream.read(maxBytes: 10, now: epoch, rtt: rtt)
            #expect(again.bytes == [] && again.fin)
        }

        @Test func inOrderDataWithFinGoesStraightToDataRecvd() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: [1], fin: true)
            #expect(stream.state == .dataRecvd)
            var empty = ReceiveStream(id: id, window: 0, maxWindow: 0)
            try empty.handleStream(offset: 0, data: [], fin: true)
            #expect(empty.state == .dataRecvd)
            #expect(try empty.read(maxBytes: 10, now: epoch, rtt: rtt).fin)
            #expect(empty.state == .dataRead)
        }

        @Test(arguments: [ReceiveStream.State.recv, .sizeKnown])
        func resetRecvdThenResetRead(from: ReceiveStream.State) throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: [1, 2], fin: false)
            if from == .sizeKnown { try stream.handleStream(offset: 10, data: [1], fin: true) }
            #expect(stream.state == from)
            #expect(transportError { try stream.handleReset(errorCode: 4, finalSize: 1) } == .finalSizeError)
            if from == .sizeKnown {
                #expect(transportError { try stream.handleReset(errorCode: 4, finalSize: 12) } == .finalSizeError)
            } else {
                #expect(transportError { try stream.handleReset(errorCode: 4, finalSize: 101) } == .flowControlError)
            }
            try stream.handleReset(errorCode: 4, finalSize: 11)
            #expect(stream.state == .resetRecvd)
            #expect(stream.releasedOffset == 11)
            #expect(stream.receivedOffset == 11)
            #expect(stream.isReadable)
            // Data after the reset is ignored but still checked against the final size.
            try stream.handleStream(offset: 2, data: [3], fin: false)
            #expect(transportError { try stream.handleStream(offset: 11, data: [3], fin: false) } == .finalSizeError)
            #expect(streamError { _ = try stream.read(maxBytes: 10, now: epoch, rtt: rtt) } == .resetByPeer(errorCode: 4))
            #expect(stream.state == .resetRead)
            #expect(stream.isTerminal)
            #expect(streamError { _ = try stream.read(maxBytes: 10, now: epoch, rtt: rtt) } == .resetByPeer(errorCode: 4))
        }

        @Test func resetInDataRecvdIsIgnored() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: [1, 2], fin: true)
            try stream.handleReset(errorCode: 3, finalSize: 2)
            #expect(stream.state == .dataRecvd)
            #expect(try stream.read(maxBytes: 10, now: epoch, rtt: rtt).bytes == [1, 2])
        }

        @Test func flowControlErrorBeyondTheStreamLimit() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 99, data: [1], fin: false)
            #expect(transportError { try stream.handleStream(offset: 100, data: [1], fin: false) } == .flowControlError)
            #expect(transportError { try stream.handleStream(offset: (1 << 62) - 1, data: [1], fin: false) } == .frameEncodingError)
        }

        @Test func maxStreamDataOnlyInRecv() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: ArraySlice<UInt8>(repeating: 1, count: 60), fin: false)
            _ = try stream.read(maxBytes: 50, now: epoch, rtt: rtt)
            #expect(frames(&stream) == [])  // exactly half consumed
            _ = try stream.read(maxBytes: 1, now: epoch, rtt: rtt)
            #expect(frames(&stream) == [.maxStreamData(id: id, max: 151)])
            // Lost: re-sent while current; stale values are not.
            stream.onMaxStreamDataLost(151)
            stream.onMaxStreamDataLost(100)
            #expect(frames(&stream) == [.maxStreamData(id: id, max: 151)])
            // Once the size is known, no more credit is sent.
            try stream.handleStream(offset: 60, data: ArraySlice<UInt8>(repeating: 1, count: 90), fin: true)
            _ = try stream.read(maxBytes: 100, now: epoch, rtt: rtt)
            #expect(stream.state == .dataRead)
            #expect(frames(&stream) == [])
        }

        @Test func windowAutoTunes() throws {
            var stream = ReceiveStream(id: id, window: 1000, maxWindow: 8000)
            var now = epoch
            var offset: UInt64 = 0
            for _ in 0..<6 {
                let room = Int(stream.flow.limit - offset)
                try stream.handleStream(offset: offset, data: ArraySlice<UInt8>(repeating: 0, count: room), fin: false)
                offset += UInt64(room)
                now = now + .milliseconds(5)
                _ = try stream.read(maxBytes: .max, now: now, rtt: rtt)
            }
            #expect(stream.flow.window == 8000)
            #expect(stream.buffer.maxOffset == stream.flow.limit)
        }

        @Test func stopSendingInRecvDiscardsDataAndEndsOnReset() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: [1, 2, 3], fin: false)
            #expect(stream.stopSending(errorCode: 8) == true)
            #expect(stream.stopSending(errorCode: 9) == false)
            #expect(stream.releasedOffset == 3)
            #expect(frames(&stream) == [.stopSending(id: id, errorCode: 8)])
            stream.onStopSendingLost()
            #expect(frames(&stream) == [.stopSending(id: id, errorCode: 8)])
            #expect(streamError { _ = try stream.read(maxBytes: 10, now: epoch, rtt: rtt) } == .readStopped(errorCode: 8))
            try stream.handleStream(offset: 3, data: [4, 5], fin: false)
            #expect(stream.releasedOffset == 5)
            try stream.handleReset(errorCode: 8, finalSize: 5)
            #expect(stream.state == .resetRead)
            stream.onStopSendingLost()
            #expect(frames(&stream) == [])
        }

        @Test func stopSendingInSizeKnownEndsWhenAllDataArrives() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 2, data: [3], fin: true)
            #expect(stream.stopSending(errorCode: 1) == true)
            try stream.handleStream(offset: 0, data: [1, 2], fin: false)
            #expect(stream.state == .dataRead)
            #expect(stream.releasedOffset == 3)
        }

        @Test func stopSendingInDataRecvdSkipsToDataRead() throws {
            var stream = ReceiveStream(id: id, window: 100, maxWindow: 100)
            try stream.handleStream(offset: 0, data: [1, 2], fin: true)
            #expect(stream.stopSending(errorCode: 1) == false)
            #expect(stream.state == .dataRead)
            #expect(frames(&stream) == [])
            #expect(stream.stopSending(errorCode: 1) == false)
        }
    }
}

import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct StreamManagerTests {
        // Stream IDs from the server's point of view (role .server).
        let clientBidi0 = StreamID(index: 0, initiator: .client, direction: .bidirectional)
        let clientUni0 = StreamID(index: 0, initiator: .client, direction: .unidirectional)
        let serverBidi0 = StreamID(index: 0, initiator: .server, direction: .bidirectional)
        let serverUni0 = StreamID(index: 0, initiator: .server, direction: .unidirectional)

        private func server(local: TransportParameters = streamParameters(), peer: TransportParameters = streamParameters(),
                            configuration: StreamManager.Configuration = .init()) -> StreamManager {
            StreamManager(role: .server, localParameters: local, peerParameters: peer, configuration: configuration)
        }

        // MARK: STREAM_STATE_ERROR (RFC 9000 §19.4, §19.5, §19.8, §19.10, §19.13)

        @Test func framesOnTheWrongPartOfAStreamAreStreamStateErrors() throws {
            var manager = server()
            let uniValue = manager.openStream(.unidirectional)
            let uni = try #require(uniValue)
            #expect(uni == serverUni0)
            // Our own unidirectional stream has no receiving part.
            #expect(transportError { try manager.handle(.stream(id: uni, offset: 0, data: [1], fin: false)) } == .streamStateError)
            #expect(transportError { try manager.handle(.resetStream(id: uni, errorCode: 0, finalSize: 0)) } == .streamStateError)
            #expect(transportError { try manager.handle(.streamDataBlocked(id: uni, limit: 0)) } == .streamStateError)
            // The peer's unidirectional stream has no sending part.
            #expect(transportError { try manager.handle(.maxStreamData(id: clientUni0, max: 10)) } == .streamStateError)
            #expect(transportError { try manager.handle(.stopSending(id: clientUni0, errorCode: 0)) } == .streamStateError)
            // The allowed directions work.
            try manager.handle(.maxStreamData(id: uni, max: 10))
            try manager.handle(.stopSending(id: uni, errorCode: 0))
            try manager.handle(.stream(id: clientUni0, offset: 0, data: [1], fin: false))
        }

        @Test func framesOnLocalStreamsNotYetOpenedAreStreamStateErrors() {
            var manager = server()
            let frames: [Frame] = [
                .stream(id: serverBidi0, offset: 0, data: [1], fin: false),
                .resetStream(id: serverBidi0, errorCode: 0, finalSize: 1),
                .maxStreamData(id: serverBidi0, max: 10),
                .stopSending(id: serverBidi0, errorCode: 0),
                .streamDataBlocked(id: serverBidi0, limit: 0),
                .maxStreamData(id: serverUni0, max: 10),
            ]
            for frame in frames {
                var copy = manager
                var thrown: QUICError?
                do { try copy.handle(frame) } catch { thrown = error }
                #expect(thrown?.code == .streamStateError)
                #expect(thrown?.frameType == frame.type.rawValue)
            }
            _ = manager.openStream(.bidirectional)
            for frame in frames.prefix(5) {
                #expect(transportError { try manager.handle(frame) } == nil)
            }
        }

        @Test func nonStreamFramesAreRejected() {
            var manager = server()
            #expect(transportError { try manager.handle(.ping) } == .internalError)
        }

        // MARK: Stream limits (RFC 9000 §4.6)

        @Test func peerExceedingOurLimitIsStreamLimitError() throws {
            var manager = server(local: streamParameters(maxStreamsBidi: 3, maxStreamsUni: 1))
            try manager.handle(.stream(id: StreamID(index: 2, initiator: .client, direction: .bidirectional), offset: 0, data: [], fin: false))
            let beyond = StreamID(index: 3, initiator: .client, direction: .bidirectional)
            #expect(transportError { try manager.handle(.stream(id: beyond, offset: 0, data: [1], fin: false)) } == .streamLimitError)
            #expect(transportError { try manager.handle(.maxStreamData(id: beyond, max: 1)) } == .streamLimitError)
            let uni1 = StreamID(index: 1, initiator: .client, direction: .unidirectional)
            #expect(transportError { try manager.handle(.resetStream(id: uni1, errorCode: 0, finalSize: 0)) } == .streamLimitError)
        }

        @Test func openingStreamNImplicitlyOpensLowerStreams() throws {
            var manager = server()
            let third = StreamID(index: 3, initiator: .client, direction: .bidirectional)
            try manager.handle(.stream(id: third, offset: 0, data: [1], fin: false))
            var accepted: [StreamID] = []
            while let id = manager.acceptStream() { accepted.append(id) }
            #expect(accepted == (0...3).map { StreamID(index: $0, initiator: .client, direction: .bidirectional) })
            #expect(manager.streamCount == 4)
            // Frames on implicitly-opened streams work.
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: [9], fin: true))
            #expect(try manager.read(from: clientBidi0, maxBytes: 10, at: epoch) == ([9], true))
        }

        @Test func openIsBlockedAtThePeerLimitAndSignalsOncePerLimit() throws {
            var manager = server(peer: streamParameters(maxStreamsBidi: 2, maxStreamsUni: 0))
            #expect(manager.openStream(.bidirectional) == serverBidi0)
            #expect(manager.openStream(.bidirectional) == StreamID(index: 1, initiator: .server, direction: .bidirectional))
            #expect(manager.openStream(.bidirectional) == nil)
            #expect(manager.openStream(.bidirectional) == nil)
            #expect(manager.openStream(.unidirectional) == nil)
            #expect(manager.pendingFrames() == [.streamsBlocked(bidirectional: true, limit: 2), .streamsBlocked(bidirectional: false, limit: 0)])
            #expect(manager.openStream(.bidirectional) == nil)
            #expect(manager.pendingFrames() == [])
            // Lost STREAMS_BLOCKED is re-sent while still current.
            manager.onFrameLost(.streamsBlocked(bidirectional: true, limit: 2))
            #expect(manager.pendingFrames() == [.streamsBlocked(bidirectional: true, limit: 2)])
            // MAX_STREAMS raises the limit; smaller values are ignored; > 2^60 is an encoding error.
            try manager.handle(.maxStreams(bidirectional: true, max: 3))
            try manager.handle(.maxStreams(bidirectional: true, max: 1))
            #expect(manager.availableOutgoingStreams(.bidirectional) == 1)
            #expect(transportError { try manager.handle(.maxStreams(bidirectional: true, max: (1 << 60) + 1)) } == .frameEncodingError)
            #expect(transportError { try manager.handle(.streamsBlocked(bidirectional: true, limit: (1 << 60) + 1)) } == .frameEncodingError)
            manager.onFrameLost(.streamsBlocked(bidirectional: true, limit: 2))  // stale
            #expect(manager.pendingFrames() == [])
            #expect(manager.openStream(.bidirectional) != nil)
            #expect(manager.openStream(.bidirectional) == nil)
            #expect(manager.pendingFrames() == [.streamsBlocked(bidirectional: true, limit: 3)])
        }

        @Test func maxStreamsIsIssuedAsPeerStreamsClose() throws {
            var manager = server(local: streamParameters(maxStreamsBidi: 2, maxStreamsUni: 2))
            let uni = (0..<2).map { StreamID(index: $0, initiator: .client, direction: .unidirectional) }
            for id in uni { try manager.handle(.stream(id: id, offset: 0, data: [1], fin: true)) }
            #expect(manager.pendingFrames() == [])
            _ = try manager.read(from: uni[0], maxBytes: 10, at: epoch)
            #expect(!manager.contains(uni[0]))
            #expect(manager.pendingFrames() == [.maxStreams(bidirectional: false, max: 3)])
            _ = try manager.read(from: uni[1], maxBytes: 10, at: epoch)
            // A peer-opened bidirectional stream closes once our sending part is done too.
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: [], fin: true))
            _ = try manager.read(from: clientBidi0, maxBytes: 10, at: epoch)
            #expect(manager.contains(clientBidi0))
            try manager.finish(clientBidi0)
            let finValue = manager.nextStreamFrame(maxLength: 100)
            let fin = try #require(finValue)
            manager.onFrameAcked(fin)
            #expect(!manager.contains(clientBidi0))
            #expect(manager.pendingFrames() == [.maxStreams(bidirectional: true, max: 3), .maxStreams(bidirectional: false, max: 4)])
            #expect(manager.advertisedIncomingLimit(.unidirectional) == 4)
            // The new credit is usable; lost MAX_STREAMS is re-sent while current.
            try manager.handle(.stream(id: StreamID(index: 3, initiator: .client, direction: .unidirectional), offset: 0, data: [], fin: false))
            manager.onFrameLost(.maxStreams(bidirectional: false, max: 4))
            manager.onFrameLost(.maxStreams(bidirectional: true, max: 2))
            #expect(manager.pendingFrames() == [.maxStreams(bidirectional: false, max: 4)])
        }

        @Test func framesForClosedStreamsAreIgnored() throws {
            var manager = server()
            try manager.handle(.stream(id: clientUni0, offset: 0, data: [1, 2], fin: true))
            _ = try manager.read(from: clientUni0, maxBytes: 10, at: epoch)
            #expect(!manager.contains(clientUni0))
            try manager.handle(.stream(id: clientUni0, offset: 0, data: [1, 2], fin: true))
            try manager.handle(.resetStream(id: clientUni0, errorCode: 1, finalSize: 2))
            #expect(manager.acceptStream() == nil)  // closed before it was accepted
            #expect(streamError { _ = try manager.read(from: clientUni0, maxBytes: 1, at: epoch) } == .unknownStream(clientUni0))
        }

        @Test func applicationErrorsForWrongStreams() throws {
            var manager = server()
            #expect(streamError { try manager.write([1], to: clientUni0) } == .notSendable(clientUni0))
            #expect(streamError { _ = try manager.read(from: serverUni0, maxBytes: 1, at: epoch) } == .notReceivable(serverUni0))
            #expect(streamError { try manager.write([1], to: serverBidi0) } == .unknownStream(serverBidi0))
            let uniValue = manager.openStream(.unidirectional)
            let uni = try #require(uniValue)
            #expect(streamError { try manager.stopSending(uni, errorCode: 1) } == .notReceivable(uni))
            try manager.handle(.stream(id: clientUni0, offset: 0, data: [1], fin: false))
            #expect(streamError { try manager.reset(clientUni0, errorCode: 1) } == .notSendable(clientUni0))
        }

        // MARK: Flow control (RFC 9000 §4.1)

        @Test func streamLevelFlowControlError() throws {
            var manager = server(local: streamParameters(bidiRemote: 100))
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 100), fin: false))
            #expect(transportError { try manager.handle(.stream(id: clientBidi0, offset: 100, data: [1], fin: false)) } == .flowControlError)
        }

        @Test func connectionLevelFlowControlErrorSumsStreams() throws {
            var manager = server(local: streamParameters(maxData: 250, bidiRemote: 100, uni: 100))
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 100), fin: false))
            try manager.handle(.stream(id: clientUni0, offset: 50, data: ArraySlice<UInt8>(repeating: 0, count: 50), fin: false))
            // A reset counts its whole final size.
            let second = StreamID(index: 1, initiator: .client, direction: .bidirectional)
            try manager.handle(.resetStream(id: second, errorCode: 0, finalSize: 40))
            #expect(manager.connectionReceive.received == 240)
            // Duplicates do not count twice.
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 100), fin: false))
            let third = StreamID(index: 2, initiator: .client, direction: .bidirectional)
            try manager.handle(.stream(id: third, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 10), fin: false))
            #expect(transportError { try manager.handle(.stream(id: third, offset: 10, data: [1], fin: false)) } == .flowControlError)
        }

        @Test func maxDataIsSentWhenMoreThanHalfTheConnectionWindowIsConsumed() throws {
            var manager = server(local: streamParameters(maxData: 1000, bidiRemote: 1000, uni: 1000),
                                 configuration: .init(maxStreamWindow: 1000, maxConnectionWindow: 1000))
            try manager.handle(.stream(id: clientUni0, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 800), fin: false))
            _ = try manager.read(from: clientUni0, maxBytes: 500, at: epoch)
            #expect(manager.pendingFrames() == [])
            _ = try manager.read(from: clientUni0, maxBytes: 1, at: epoch)
            // Stream and connection windows both more than half consumed.
            #expect(manager.pendingFrames() == [.maxStreamData(id: clientUni0, max: 1501), .maxData(1501)])
            #expect(manager.pendingFrames() == [])
            manager.onFrameLost(.maxData(1501))
            manager.onFrameLost(.maxStreamData(id: clientUni0, max: 1501))
            #expect(manager.pendingFrames() == [.maxStreamData(id: clientUni0, max: 1501), .maxData(1501)])
            manager.onFrameLost(.maxData(1000))  // stale
            #expect(manager.pendingFrames() == [])
        }

        @Test func resetReleasesConnectionCredit() throws {
            var manager = server(local: streamParameters(maxData: 1000, bidiRemote: 1000, uni: 1000))
            try manager.handle(.stream(id: clientUni0, offset: 0, data: ArraySlice<UInt8>(repeating: 0, count: 300), fin: false))
            try manager.handle(.resetStream(id: clientUni0, errorCode: 5, finalSize: 600))
            #expect(manager.pendingFrames() == [.maxData(1600)])
            #expect(streamError { _ = try manager.read(from: clientUni0, maxBytes: 1, at: epoch) } == .resetByPeer(errorCode: 5))
            #expect(!manager.contains(clientUni0))
        }

        @Test func connectionWindowAutoTunesWithReads() throws {
            var manager = server(local: streamParameters(maxData: 1000, bidiRemote: 1000, uni: 1000),
                                 configuration: .init(maxStreamWindow: 64_000, maxConnectionWindow: 100_000))
            manager.roundTripTime = .milliseconds(10)
            var now = epoch
            var offset: UInt64 = 0
            var maxData: UInt64 = 1000
            for _ in 0..<8 {
                let room = Int(min(maxData, manager.receiveStream(clientUni0)?.flow.limit ?? 1000) - offset)
                try manager.handle(.stream(id: clientUni0, offset: offset, data: ArraySlice<UInt8>(repeating: 0, count: room), fin: false))
                offset += UInt64(room)
                now = now + .milliseconds(2)
                _ = try manager.read(from: clientUni0, maxBytes: .max, at: now)
                for case .maxData(let value) in manager.pendingFrames() { maxData = value }
            }
            #expect(manager.receiveStream(clientUni0)?.flow.window == 64_000)
            #expect(manager.connectionReceive.window >= 96_000)
            #expect(maxData > 64_000)
        }

        @Test func blockedFramesAreSentOncePerLimit() throws {
            var manager = server(peer: streamParameters(maxData: 150, bidiRemote: 100, uni: 100))
            let aValue = manager.openStream(.bidirectional)
            let a = try #require(aValue)
            let bValue = manager.openStream(.bidirectional)
            let b = try #require(bValue)
            try manager.write([UInt8](repeating: 1, count: 120), to: a)
            try manager.write([UInt8](repeating: 2, count: 120), to: b)
            var sent: [Frame] = []
            while let frame = manager.nextStreamFrame(maxLength: 1000) { sent.append(frame) }
            #expect(sent.count == 2)
            #expect(manager.connectionSend.used == 150)
            // a is blocked by its stream limit (100) and b by the connection (50 of 150 left, then 0).
            #expect(manager.pendingFrames() == [.streamDataBlocked(id: a, limit: 100), .dataBlocked(150)])
            try manager.write([3], to: a)
            try manager.write([3], to: b)
            #expect(manager.nextStreamFrame(maxLength: 1000) == nil)
            #expect(manager.pendingFrames() == [])
            // New connection credit unblocks b up to its stream limit, then it is stream-blocked.
            try manager.handle(.maxData(1000))
            let moreValue = manager.nextStreamFrame(maxLength: 1000)
            let more = try #require(moreValue)
            #expect(more == .stream(id: b, offset: 50, data: ArraySlice<UInt8>(repeating: 2, count: 50), fin: false))
            #expect(manager.nextStreamFrame(maxLength: 1000) == nil)
            #expect(manager.pendingFrames() == [.streamDataBlocked(id: b, limit: 100)])
            try manager.handle(.maxStreamData(id: a, max: 200))
            try manager.handle(.maxStreamData(id: a, max: 150))  // ignored
            let fromAValue = manager.nextStreamFrame(maxLength: 1000)
            let fromA = try #require(fromAValue)
            #expect(fromA == .stream(id: a, offset: 100, data: [UInt8](repeating: 1, count: 20) + [3], fin: false))
            manager.onFrameLost(.streamDataBlocked(id: b, limit: 100))
            manager.onFrameLost(.dataBlocked(150))  // stale
            #expect(manager.pendingFrames() == [.streamDataBlocked(id: b, limit: 100)])
        }

        @Test func retransmissionsNeedNoCredit() throws {
            var manager = server(peer: streamParameters(maxData: 100, bidiRemote: 100))
            let aValue = manager.openStream(.bidirectional)
            let a = try #require(aValue)
            try manager.write([UInt8](repeating: 1, count: 100), to: a)
            let frameValue = manager.nextStreamFrame(maxLength: 1000)
            let frame = try #require(frameValue)
            #expect(manager.connectionSend.available == 0)
            manager.onFrameLost(frame)
            #expect(manager.nextStreamFrame(maxLength: 1000) == frame)
            #expect(manager.connectionSend.used == 100)
        }

        // MARK: Resets and STOP_SENDING

        @Test func stopSendingFromPeerResetsWithItsCode() throws {
            var manager = server()
            let aValue = manager.openStream(.bidirectional)
            let a = try #require(aValue)
            try manager.write([1, 2, 3], to: a)
            _ = manager.nextStreamFrame(maxLength: 1000)
            try manager.handle(.stopSending(id: a, errorCode: 42))
            #expect(manager.sendStream(a)?.state == .resetSent)
            let frames = manager.pendingFrames()
            #expect(frames == [.resetStream(id: a, errorCode: 42, finalSize: 3)])
            #expect(streamError { try manager.write([1], to: a) } == .stopped(errorCode: 42))
            manager.onFrameLost(frames[0])
            #expect(manager.pendingFrames() == frames)
            manager.onFrameAcked(frames[0])
            #expect(manager.sendStream(a)?.state == .resetRecvd)
            // The receiving part keeps the stream open.
            #expect(manager.contains(a))
            try manager.handle(.stream(id: a, offset: 0, data: [7], fin: true))
            #expect(try manager.read(from: a, maxBytes: 10, at: epoch) == ([7], true))
            #expect(!manager.contains(a))
        }

        @Test func localStopSendingAndReset() throws {
            var manager = server()
            try manager.handle(.stream(id: clientBidi0, offset: 0, data: [1], fin: false))
            try manager.stopSending(clientBidi0, errorCode: 3)
            try manager.reset(clientBidi0, errorCode: 4)
            #expect(manager.pendingFrames() == [.resetStream(id: clientBidi0, errorCode: 4, finalSize: 0),
                                                .stopSending(id: clientBidi0, errorCode: 3)])
            try manager.handle(.resetStream(id: clientBidi0, errorCode: 3, finalSize: 1))
            #expect(manager.receiveStream(clientBidi0)?.state == .resetRead)
            manager.onFrameAcked(.resetStream(id: clientBidi0, errorCode: 4, finalSize: 0))
            #expect(!manager.contains(clientBidi0))
        }

        // MARK: Scheduling

        @Test func hundredStreamsShareTheLinkRoundRobin() throws {
            var manager = server(peer: streamParameters(maxData: 1 << 30, bidiRemote: 1 << 20, maxStreamsBidi: 100))
            var ids: [StreamID] = []
            for _ in 0..<100 {
                let idValue = manager.openStream(.bidirectional)
                let id = try #require(idValue)
                try manager.write([UInt8](repeating: 0, count: 20_000), to: id)
                try manager.finish(id)
                ids.append(id)
            }
            var order: [StreamID] = []
            var bytes: [StreamID: Int] = [:]
            while let frame = manager.nextStreamFrame(maxLength: 1200) {
                guard case .stream(let id, _, let data, _) = frame else { Issue.record("not STREAM"); return }
                #expect(frame.encodedLength <= 1200)
                order.append(id)
                bytes[id, default: 0] += data.count
                // At every point, no stream is more than one frame ahead of another.
                if order.count % 100 == 0 {
                    let values = ids.map { bytes[$0, default: 0] }
                    #expect((values.max() ?? 0) - (values.min() ?? 0) <= 1200)
                }
            }
            // Each round visits every stream once, in the same order.
            let rounds = order.count / 100
            #expect(rounds >= 16)
            for round in 0..<rounds { #expect(Array(order[(round * 100)..<((round + 1) * 100)]) == ids) }
            #expect(ids.allSatisfy { bytes[$0] == 20_000 })
        }

        @Test func smallRoomSkipsStreamsThatDoNotFitWithoutLosingTheirTurn() throws {
            var manager = server(peer: streamParameters(maxStreamsBidi: 100))
            let aValue = manager.openStream(.bidirectional)
            let a = try #require(aValue)
            try manager.write([1, 2, 3], to: a)
            #expect(manager.nextStreamFrame(maxLength: 2) == nil)
            #expect(manager.nextStreamFrame(maxLength: 4) == .stream(id: a, offset: 0, data: [1], fin: false))
            #expect(manager.nextStreamFrame(maxLength: 100) == .stream(id: a, offset: 1, data: [2, 3], fin: false))
            #expect(manager.nextStreamFrame(maxLength: 100) == nil)
            #expect(!manager.hasStreamDataToSend)
        }

        @Test func peerParametersLearntLaterRaiseLimits() throws {
            var manager = StreamManager(role: .client, localParameters: streamParameters(), peerParameters: TransportParameters())
            #expect(manager.openStream(.bidirectional) == nil)
            manager.updatePeerParameters(streamParameters(maxData: 1000, bidiRemote: 500))
            let idValue = manager.openStream(.bidirectional)
            let id = try #require(idValue)
            try manager.write([UInt8](repeating: 0, count: 600), to: id)
            let frameValue = manager.nextStreamFrame(maxLength: 2000)
            let frame = try #require(frameValue)
            guard case .stream(_, _, let data, _) = frame else { Issue.record("not STREAM"); return }
            #expect(data.count == 500)
        }
    }
}

import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    /// A client and a server `StreamManager` exchanging frames directly over a lossy,
    /// reordering, duplicating "network" of packets, with acknowledgements and loss reports
    /// fed back as a connection would.
    @Suite struct StreamLoopbackTests {
        private struct Packet {
            var frames: [Frame]
            var toServer: Bool
        }

        private enum Event {
            case deliver(Packet)
            case ack(Packet)
            case lose(Packet)
        }

        /// - Parameters: `seed` for the data and the network; `lossPercent` of packets lost
        ///   (a third of those still delivered: spurious losses); 2% are duplicated.
        @Test(arguments: [(1, 6), (2, 6), (3, 6), (4, 25)])
        func manyStreamsTransferRandomDataExactly(seed: Int, lossPercent: Int) throws {
            var rng = SeededGenerator(seed: UInt64(seed) &* 0x1234_5678)
            let configuration = StreamManager.Configuration(maxStreamWindow: 128 * 1024, maxConnectionWindow: 256 * 1024)
            let clientParameters = streamParameters(maxData: 48 * 1024, bidiLocal: 16 * 1024, bidiRemote: 16 * 1024,
                                                    uni: 16 * 1024, maxStreamsBidi: 2, maxStreamsUni: 2)
            let serverParameters = streamParameters(maxData: 48 * 1024, bidiLocal: 16 * 1024, bidiRemote: 16 * 1024,
                                                    uni: 8 * 1024, maxStreamsBidi: 5, maxStreamsUni: 3)
            var client = StreamManager(role: .client, localParameters: clientParameters, peerParameters: serverParameters,
                                       configuration: configuration)
            var server = StreamManager(role: .server, localParameters: serverParameters, peerParameters: clientParameters,
                                       configuration: configuration)
            client.roundTripTime = .milliseconds(6)
            server.roundTripTime = .milliseconds(6)

            // The client's plan: 24 streams, bidirectional ones echoed back by the server.
            var plans: [(bidirectional: Bool, data: [UInt8])] = (0..<24).map { index in
                let size = Int.random(in: 0..<8, using: &rng) == 0 ? 0 : Int.random(in: 1...80_000, using: &rng)
                return (index % 3 != 0, rng.fastBytes(size))
            }
            plans.shuffle(using: &rng)
            var nextPlan = 0
            var sentData: [StreamID: [UInt8]] = [:]
            var echoes: [StreamID: [UInt8]] = [:]
            var serverReceived: [StreamID: [UInt8]] = [:]
            var completed = 0  // streams whose data (and echo) arrived exactly

            var schedule: [Int: [Event]] = [:]
            var inFlight = 0
            var step = 0
            let budget = 1200

            var lost = 0
            func transmit(_ manager: inout StreamManager, toServer: Bool, at step: Int,
                          rng: inout SeededGenerator, schedule: inout [Int: [Event]], inFlight: inout Int) {
                for _ in 0..<4 {
                    var frames = manager.pendingFrames()
                    var room = budget - frames.reduce(0) { $0 + $1.encodedLength }
                    while room > 0, let frame = manager.nextStreamFrame(maxLength: room) {
                        room -= frame.encodedLength
                        frames.append(frame)
                    }
                    guard !frames.isEmpty else { return }
                    let packet = Packet(frames: frames, toServer: toServer)
                    inFlight += 1
                    let roll = Int.random(in: 0..<100, using: &rng)
                    if roll < lossPercent {
                        lost += 1
                        schedule[step + 8, default: []].append(.lose(packet))
                        if roll < lossPercent / 3 { schedule[step + Int.random(in: 1...10, using: &rng), default: []].append(.deliver(packet)) }
                    } else {
                        let arrival = step + Int.random(in: 1...3, using: &rng)
                        schedule[arrival, default: []].append(.deliver(packet))
                        schedule[arrival + 2, default: []].append(.ack(packet))
                        if roll >= 98 { schedule[arrival + 1, default: []].append(.deliver(packet)) }
                    }
                }
            }

            while completed < plans.count || client.streamCount > 0 || server.streamCount > 0 || inFlight > 0 {
                step += 1
                try #require(step < 20_000, "no progress: \(completed)/\(plans.count) streams complete")
                let now = epoch + .milliseconds(step)

                // Client application: open what the limits allow, write everything, finish.
                while nextPlan < plans.count {
                    let plan = plans[nextPlan]
                    guard let id = client.openStream(plan.bidirectional ? .bidirectional : .unidirectional) else { break }
                    try client.write(plan.data, to: id)
                    try client.finish(id)
                    sentData[id] = plan.data
                    nextPlan += 1
                }
                // Server application: accept, read, echo bidirectional streams.
                while let id = server.acceptStream() { serverReceived[id] = [] }
                for id in server.streamIDs where server.receiveStream(id)?.isReadable == true {
                    let result = try server.read(from: id, maxBytes: Int.random(in: 1...40_000, using: &rng), at: now)
                    serverReceived[id, default: []] += result.bytes
                    if id.direction == .bidirectional {
                        try server.write(result.bytes, to: id)
                        if result.fin { try server.finish(id) }
                    } else if result.fin {
                        #expect(serverReceived[id] == sentData[id])
                        completed += 1
                    }
                }
                // Client application: read echoes.
                for id in client.streamIDs where client.receiveStream(id)?.isReadable == true {
                    let result = try client.read(from: id, maxBytes: Int.random(in: 1...40_000, using: &rng), at: now)
                    echoes[id, default: []] += result.bytes
                    if result.fin {
                        #expect(echoes[id] == sentData[id])
                        completed += 1
                    }
                }

                transmit(&client, toServer: true, at: step, rng: &rng, schedule: &schedule, inFlight: &inFlight)
                transmit(&server, toServer: false, at: step, rng: &rng, schedule: &schedule, inFlight: &inFlight)

                var events = schedule.removeValue(forKey: step) ?? []
                events.shuffle(using: &rng)
                for event in events {
                    switch event {
                    case .deliver(let packet):
                        for frame in packet.frames {
                            if packet.toServer { try server.handle(frame) } else { try client.handle(frame) }
                        }
                    case .ack(let packet):
                        inFlight -= 1
                        for frame in packet.frames {
                            if packet.toServer { client.onFrameAcked(frame) } else { server.onFrameAcked(frame) }
                        }
                    case .lose(let packet):
                        inFlight -= 1
                        for frame in packet.frames {
                            if packet.toServer { client.onFrameLost(frame) } else { server.onFrameLost(frame) }
                        }
                    }
                }
            }
            #expect(lost > 0)
            #expect(completed == plans.count)
            #expect(sentData.count == plans.count)
            #expect(client.streamCount == 0 && server.streamCount == 0)
            // Flow control auto-tuned beyond the initial windows.
            #expect(server.connectionReceive.limit > 48 * 1024)
        }
    }
}

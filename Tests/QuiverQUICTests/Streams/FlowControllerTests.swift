import QuiverCore
import Testing

@_spi(Wire) @testable import QuiverQUIC

extension StreamsTests {
    @Suite struct FlowControllerTests {
        @Test func receiveBeyondLimitIsFlowControlError() throws {
            var flow = ReceiveFlowController(window: 1000, maxWindow: 1000)
            try flow.receive(upTo: 1000)
            #expect(transportError { try flow.receive(upTo: 1001) } == .flowControlError)
            #expect(transportError { try flow.addReceived(1) } == .flowControlError)
            #expect(transportError { try flow.addReceived(.max) } == .flowControlError)
            try flow.receive(upTo: 10)  // lower values change nothing
            #expect(flow.received == 1000)
            #expect(flow.available == 0)
        }

        @Test func updateIsDueWhenMoreThanHalfTheWindowIsConsumed() throws {
            var flow = ReceiveFlowController(window: 1000, maxWindow: 1000)
            try flow.receive(upTo: 1000)
            flow.addConsumed(500)
            #expect(!flow.shouldSendUpdate)  // exactly half left
            flow.addConsumed(1)
            #expect(flow.shouldSendUpdate)
            #expect(flow.update(now: epoch, rtt: .milliseconds(100)) == 1501)
            #expect(!flow.shouldSendUpdate)
            // Consumption cannot pass what was received.
            flow.addConsumed(10_000)
            #expect(flow.consumed == 1000)
        }

        @Test func windowDoublesWhenUpdatesComeWithinTwoRoundTrips() throws {
            let rtt = Duration.milliseconds(50)
            var flow = ReceiveFlowController(window: 1000, maxWindow: 5000)
            var now = epoch
            var windows: [UInt64] = []
            for _ in 0..<5 {
                try flow.receive(upTo: flow.limit)
                flow.addConsumed(flow.limit - flow.consumed)
                #expect(flow.shouldSendUpdate)
                now = now + .milliseconds(60)  // < 2 RTT since the last update
                flow.update(now: now, rtt: rtt)
                windows.append(flow.window)
            }
            // No growth on the first update (no previous one), then doubling, capped.
            #expect(windows == [1000, 2000, 4000, 5000, 5000])
        }

        @Test func windowStaysWhenThePeerIsSlow() throws {
            let rtt = Duration.milliseconds(50)
            var flow = ReceiveFlowController(window: 1000, maxWindow: 1 << 20)
            var now = epoch
            for _ in 0..<4 {
                try flow.receive(upTo: flow.limit)
                flow.addConsumed(flow.limit - flow.consumed)
                now = now + .milliseconds(100)  // exactly 2 RTT: not faster
                flow.update(now: now, rtt: rtt)
            }
            #expect(flow.window == 1000)
            // Without `now` there is no auto-tuning and no timestamp.
            flow.update(now: nil, rtt: rtt)
            #expect(flow.lastUpdate == now)
        }

        @Test func ensureWindowIsCapped() {
            var flow = ReceiveFlowController(window: 100, maxWindow: 1000)
            flow.ensureWindow(atLeast: 500)
            #expect(flow.window == 500)
            flow.ensureWindow(atLeast: 5000)
            #expect(flow.window == 1000)
            flow.ensureWindow(atLeast: 10)
            #expect(flow.window == 1000)
        }

        @Test func blockedIsSignalledOncePerLimit() {
            var flow = SendFlowController(limit: 100)
            flow.markBlocked()
            #expect(flow.takeBlockedFrame() == nil)  // credit left: not blocked
            flow.consume(100)
            flow.markBlocked()
            #expect(flow.takeBlockedFrame() == 100)
            flow.markBlocked()
            #expect(flow.takeBlockedFrame() == nil)  // once per limit
            // A lost BLOCKED frame is sent again while still blocked at that limit.
            flow.onBlockedFrameLost(limit: 100)
            #expect(flow.takeBlockedFrame() == 100)
            #expect(flow.raiseLimit(to: 50) == false)  // smaller limits are ignored
            #expect(flow.raiseLimit(to: 200) == true)
            flow.onBlockedFrameLost(limit: 100)  // stale
            #expect(flow.takeBlockedFrame() == nil)
            flow.consume(100)
            flow.markBlocked()
            #expect(flow.takeBlockedFrame() == 200)
        }
    }
}

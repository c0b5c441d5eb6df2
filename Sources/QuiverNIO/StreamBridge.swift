public import NIOCore
import Quiver
import QuiverCore
import Synchronization

/// Moves the bytes of one NIO stream channel (an accepted TCP connection) to and from a TLS
/// ``Quiver/Listener`` through an in-memory ``Quiver/StreamPair``, on the channel's event loop.
///
/// When the channel becomes active the bridge makes a pair and attaches its listener end with
/// `listener.attach(.stream(end, peer:))` (the peer is the channel's remote address, or `nil`
/// when `reportingPeer` is false — unaddressed). Both directions have backpressure:
///
/// - **In:** the channel reads only on demand (`autoRead` is turned off); received bytes go
///   into the pair as far as it has room (`StreamPair.End.write` returns what it took) and the
///   rest waits — no further `read()` — until the listener drains the pair. The channel's end
///   of input (half-close, `allowRemoteHalfClosure` is turned on) finishes the pair after the
///   waiting bytes.
/// - **Out:** what the listener wrote into the pair is written to the channel while it is
///   writable, and resumes at `channelWritabilityChanged`. When the listener ends its
///   direction (the TLS connection is over) the bridge flushes, closes the channel's output,
///   discards further input and closes the channel at the peer's end of input (or after
///   ``lingerTimeout``).
/// - The channel closing closes the pair: the listener sees the end of the stream.
///
/// After moving input into the pair the bridge asks the ``ListenerLoop`` for a round.
/// Install it from a `ServerBootstrap` child channel initializer (``install(on:loop:reportingPeer:)``)
/// with the child channels on the loop's event loop.
public final class StreamBridge: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    /// How long a channel whose TLS connection ended waits for the peer to close before it is
    /// closed anyway.
    public static let lingerTimeout: TimeAmount = .seconds(10)

    /// Shared with the pair's activity handler (which runs on whatever thread the listener
    /// touches the pair from).
    private final class Signal: Sendable {
        let pumpQueued = Atomic<Bool>(false)
    }

    /// The loop driving the listener.
    public let loop: ListenerLoop
    /// Whether the listener is told the channel's remote address.
    public let reportingPeer: Bool
    private let capacity: Int
    private let signal = Signal()
    private var context: ChannelHandlerContext?
    private var pair: StreamPair?
    /// Received bytes the pair had no room for.
    private var waiting: ByteBuffer?
    /// The channel's input ended (peer half-closed or closed).
    private var inputEnded = false
    /// The pair was told the input ended.
    private var inputFinished = false
    /// The listener ended its direction: the channel's output is (being) closed.
    private var outputEnded = false
    /// Everything before the listener's end was written to the channel.
    private var outputFlushed = false
    private var closed = false

    /// A bridge feeding `loop`'s listener (a TLS listener in `.applicationDriven` mode);
    /// `capacity` is the pair's buffer per direction.
    public init(loop: ListenerLoop, reportingPeer: Bool = true, capacity: Int = 256 << 10) {
        precondition(loop.listener.transport == .tcp, "a StreamBridge feeds a TLS listener")
        self.loop = loop
        self.reportingPeer = reportingPeer
        self.capacity = capacity
    }

    /// Adds a new bridge for `loop` to `channel`'s pipeline; for child channel initializers.
    public static func install(on channel: any Channel, loop: ListenerLoop, reportingPeer: Bool = true) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(StreamBridge(loop: loop, reportingPeer: reportingPeer))
        }
    }

    // MARK: - Channel events

    public func handlerAdded(context: ChannelHandlerContext) {
        precondition(context.eventLoop === loop.eventLoop, "the channel must be on the listener loop's event loop")
        self.context = context
        let options = context.channel.syncOptions
        try? options?.setOption(.autoRead, value: false)
        try? options?.setOption(.allowRemoteHalfClosure, value: true)
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard pair == nil, !closed else { return }
        guard !loop.isClosed else {  // the listener is gone: refuse the connection
            context.close(promise: nil)
            return
        }
        let pair = StreamPair(capacity: capacity)
        self.pair = pair
        let peer = reportingPeer ? context.channel.remoteAddress.flatMap { QuiverCore.SocketAddress($0) } : nil
        let signal = signal
        let bound = NIOLoopBound(self, eventLoop: loop.eventLoop)
        let eventLoop = loop.eventLoop
        pair.second.setActivityHandler {
            guard !signal.pumpQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
            eventLoop.execute {
                signal.pumpQueued.store(false, ordering: .releasing)
                bound.value.pump()
            }
        }
        do {
            try loop.listener.attach(.stream(pair.first, peer: peer))
        } catch {
            pair.second.setActivityHandler(nil)
            context.close(promise: nil)
            return
        }
        loop.requestRound()
        context.read()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !outputEnded, let pair else { return }  // the TLS connection is over: discard
        if waiting != nil {
            waiting!.writeBuffer(&buffer)
            return
        }
        let taken = pair.second.write(buffer.readableBytesView)
        buffer.moveReaderIndex(forwardBy: taken)
        if buffer.readableBytes > 0 { waiting = buffer }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        loop.requestRound()
        if waiting == nil, !inputEnded { context.read() }
        context.fireChannelReadComplete()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            inputEnded = true
            if outputEnded {
                if outputFlushed { context.close(promise: nil) }  // else the final write's completion closes
            } else {
                finishInputIfDrained()
                loop.requestRound()
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { pump() }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        end()
        self.context = nil
    }

    /// The channel is gone: close the pair (the listener reads the end and its writes fail).
    private func end() {
        guard !closed else { return }
        closed = true
        waiting = nil
        if let pair {
            pair.second.setActivityHandler(nil)
            pair.second.close()
            loop.requestRound()
        }
    }

    // MARK: - Moving bytes

    /// Moves what can move: waiting input into the pair (then reads on), the listener's output
    /// into the channel while it is writable.
    private func pump() {
        guard let context, let pair, !closed else { return }
        var tookRoom = false
        // In.
        if var buffer = waiting {
            let taken = pair.second.write(buffer.readableBytesView)
            buffer.moveReaderIndex(forwardBy: taken)
            waiting = buffer.readableBytes > 0 ? buffer : nil
            if taken > 0 { loop.requestRound() }
            if waiting == nil {
                if inputEnded { finishInputIfDrained() } else { context.read() }
            }
        }
        // Out.
        var wrote = false
        while !outputEnded, context.channel.isWritable, let chunk = pair.second.read(maxBytes: 1 << 16) {
            tookRoom = true
            if chunk.isEmpty {
                endOutput(context: context)
                break
            }
            context.write(wrapOutboundOut(context.channel.allocator.buffer(bytes: chunk)), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if tookRoom { loop.requestRound() }  // the listener may have more to write now
    }

    private func finishInputIfDrained() {
        guard inputEnded, waiting == nil, !inputFinished, let pair else { return }
        inputFinished = true
        pair.second.finish()
    }

    /// The listener ended the TLS connection: after the written bytes, close the channel's
    /// output; close it entirely when the peer's input ends (or after the linger timeout).
    private func endOutput(context: ChannelHandlerContext) {
        outputEnded = true
        waiting = nil
        let channel = context.channel
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { [self] _ in
            outputFlushed = true
            if inputEnded {
                channel.close(promise: nil)
            } else {
                channel.close(mode: .output, promise: nil)
                channel.read()
                channel.eventLoop.scheduleTask(in: StreamBridge.lingerTimeout) { channel.close(promise: nil) }
            }
        }
    }
}

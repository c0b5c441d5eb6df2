public import QuiverCore

/// A message of one stream, as the peer's user sent it.
public struct SCTPMessage: Hashable, Sendable {
    public var stream: UInt16
    /// The Payload Protocol Identifier the sender attached (opaque to SCTP).
    public var ppid: UInt32
    /// Delivered as soon as it was whole, not in stream order.
    public var unordered: Bool
    public var bytes: [UInt8]

    public init(stream: UInt16, ppid: UInt32 = 0, unordered: Bool = false, bytes: [UInt8]) {
        self.stream = stream
        self.ppid = ppid
        self.unordered = unordered
        self.bytes = bytes
    }
}

/// How hard SCTP tries to deliver one message: partial reliability (PR-SCTP, RFC 3758).
///
/// A limited message is abandoned — never delivered, and skipped by the peer after a FORWARD
/// TSN — once its limit is reached; the messages after it on its stream are delivered without
/// it. Limits apply only when the peer supports PR-SCTP
/// (``SCTPAssociation/peerSupportsPartialReliability``); otherwise every message is reliable.
/// WebRTC data channels use the two limits here (`maxPacketLifeTime`, `maxRetransmits`).
public struct SCTPSendPolicy: Hashable, Sendable {
    /// Timed reliability (RFC 3758 §4.1): abandoned if not delivered within this time of being
    /// sent. `nil`: no limit.
    public var lifetime: Duration?
    /// Abandoned rather than retransmitted more than this many times (0: sent once). `nil`: no
    /// limit.
    public var maxRetransmissions: Int?

    public init(lifetime: Duration? = nil, maxRetransmissions: Int? = nil) {
        self.lifetime = lifetime
        self.maxRetransmissions = maxRetransmissions
    }

    /// Delivered whatever it takes (the default).
    public static let reliable = SCTPSendPolicy()
    /// Abandoned if not delivered within `lifetime`.
    public static func lifetime(_ lifetime: Duration) -> SCTPSendPolicy { SCTPSendPolicy(lifetime: lifetime) }
    /// Abandoned rather than retransmitted more than `count` times.
    public static func maxRetransmissions(_ count: Int) -> SCTPSendPolicy { SCTPSendPolicy(maxRetransmissions: count) }

}

/// How an association ended.
public enum SCTPCloseReason: Error, Hashable, Sendable, CustomStringConvertible {
    /// The SHUTDOWN sequence completed: everything sent was delivered.
    case shutdown
    /// The peer sent ABORT.
    case abortedByPeer([SCTPErrorCause])
    /// We sent ABORT (the user asked, or the peer broke the protocol).
    case aborted(SCTPErrorCause)
    /// Association.Max.Retrans consecutive timeouts, or Max.Init.Retransmits during setup.
    case timedOut
    /// The peer answered our INIT or COOKIE ECHO with something unusable.
    case handshakeFailed(String)
    /// The layer that carried the packets (a DTLS connection) failed or closed.
    case carrierClosed(String)

    public var description: String {
        switch self {
        case .shutdown: "shut down"
        case .abortedByPeer(let causes): "aborted by the peer" + (causes.isEmpty ? "" : " (\(causes.map(\.description).joined(separator: ", ")))")
        case .aborted(let cause): "aborted (\(cause))"
        case .timedOut: "the peer stopped answering"
        case .handshakeFailed(let reason): "association setup failed: \(reason)"
        case .carrierClosed(let reason): "its carrier closed: \(reason)"
        }
    }
}

/// What the application did wrong, or cannot do now. The association stays usable.
public enum SCTPError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stream is not one the association may send on.
    case invalidStream(UInt16, available: UInt16)
    /// Empty messages cannot be sent (RFC 9260 §6.2: a DATA chunk carries at least one byte).
    case emptyMessage
    /// Over ``SCTPConfiguration/maxMessageSize``.
    case messageTooLarge(Int, limit: Int)
    /// The send buffer is full; try again once the peer acknowledged data.
    case wouldBlock
    /// The association is shutting down or closed.
    case notWritable
    /// The peer did not list RE-CONFIG in its Supported Extensions (RFC 6525 §5.1.1).
    case streamResetUnsupported
    /// The stream's reset is under way: sends wait for its outcome (RFC 6525 §5.1.2 A1).
    case streamResetting(UInt16)

    public var description: String {
        switch self {
        case .invalidStream(let stream, let available): "stream \(stream) is not open (the association has \(available))"
        case .emptyMessage: "SCTP cannot send an empty message"
        case .messageTooLarge(let size, let limit): "a \(size)-byte message is over the \(limit)-byte limit"
        case .wouldBlock: "the send buffer is full"
        case .notWritable: "the association is shutting down or closed"
        case .streamResetUnsupported: "the peer does not support stream reconfiguration (RFC 6525)"
        case .streamResetting(let stream): "stream \(stream) is being reset"
        }
    }
}

/// Something the application should know about.
public enum SCTPEvent: Hashable, Sendable {
    /// The four-way handshake completed.
    case established
    /// Messages can be read (``SCTPAssociation/read()``).
    case readable
    /// The association ended; nothing more will be sent or received.
    case closed(SCTPCloseReason)
    /// The peer reset these streams of its own (RFC 6525): every message it sent on them
    /// before is readable already — for the application, the end of those streams. Their SSNs
    /// start again at 0.
    case incomingStreamsReset([UInt16])
    /// Our reset of these streams (``SCTPAssociation/resetOutgoingStreams(_:now:)``) was
    /// performed: the peer read everything sent on them; they may be used again.
    case outgoingStreamsReset([UInt16])
    /// The peer refused to reset these streams; they go on as they were.
    case streamResetRefused([UInt16])
}

/// One SCTP association (RFC 9260), sans-I/O: an ``SCTPEndpoint`` feeds it packets addressed
/// to it and takes its packets, and the application sends and reads messages.
///
/// Built: the four-way handshake with a stateless cookie, DATA/SACK with gap blocks and
/// duplicate reports, ordered and unordered delivery on many streams, fragmentation and
/// bounded reassembly, RTO and T3 retransmission, fast retransmit and fast recovery, §7's
/// congestion control and the receiver window, HEARTBEAT, SHUTDOWN, ABORT and ERROR; stream
/// reset (RFC 6525), SCTP-AUTH (RFC 4895), partial reliability (PR-SCTP, RFC 3758) and user
/// message interleaving (I-DATA, RFC 8260). Not built yet: multi-homing (one peer address,
/// the latest one a valid packet came from), the §5.2 collision cases other than a repeated COOKIE ECHO.
public final class SCTPAssociation {
    /// RFC 9260 §4's states.
    public enum State: Hashable, Sendable {
        case cookieWait, cookieEchoed, established
        case shutdownPending, shutdownSent, shutdownReceived, shutdownAckSent
        case closed
    }

    public private(set) var state: State
    /// Where the peer's packets come from and ours go (for UDP encapsulation, RFC 6951 §5.4:
    /// the source of the latest packet with our tag).
    public internal(set) var peerAddress: SocketAddress
    /// Streams we may send on and streams the peer may send on (after the handshake).
    public private(set) var outboundStreams: UInt16
    public private(set) var inboundStreams: UInt16
    /// Why it closed (`nil` while open).
    public private(set) var closeReason: SCTPCloseReason?

    public let configuration: SCTPConfiguration
    let localTag: UInt32
    private(set) var peerTag: UInt32 = 0
    let localPort: UInt16
    let peerPort: UInt16

    // MARK: Sending

    private typealias Fragment = SCTPOutboundFragment

    private struct Outstanding {
        var tsn: UInt32
        var fragment: Fragment
        var sentAt: Instant
        var transmissions: Int
        var inFlight: Bool
        var gapAcked = false
        var missIndications = 0
        var retransmit = false
        /// Given up (RFC 3758 §3.5 A2): finally acknowledged for us, its payload released;
        /// kept until the peer's cumulative TSN passes it after our FORWARD TSN.
        var abandoned = false
    }

    /// Fragments not yet given a TSN.
    private var queue = SCTPSendQueue()
    /// Chunks with a TSN not yet cumulatively acknowledged, TSN ascending.
    private var outstanding: [Outstanding] = []
    private var nextTSN: UInt32
    /// The peer's Cumulative TSN Ack: every TSN up to it arrived.
    private var ackedTSN: UInt32
    /// The next SSN (DATA) or ordered Message Identifier (I-DATA) of each stream, and with
    /// I-DATA the unordered one (RFC 8260 §2.1: two counters per stream).
    private var nextSequence: [UInt32]
    private var nextUnorderedMID: [UInt32] = []
    /// User bytes pending or outstanding (bounded by the send buffer); abandoned data no longer.
    private var bufferedBytes = 0
    /// Numbers the messages sent, for ``SCTPOutboundFragment/message``.
    private var nextMessage: UInt32 = 0
    /// Queued fragments whose lifetime starts at the next ``nextPacket(now:)``.
    private var lifetimesUnstamped = false
    private var flightSize = 0
    private var peerWindow: Int
    private var cwnd: Int
    private var ssthresh: Int
    private var partialBytesAcked = 0
    /// In fast recovery until this TSN is acknowledged (§7.2.4).
    private var fastRecoveryExit: UInt32?
    /// Marked chunks may be sent once regardless of cwnd (§7.2.4 step 3).
    private var fastRetransmitOwed = false
    private var t3: Instant?
    private var rttProbe: (tsn: UInt32, sentAt: Instant)?

    // MARK: Timing (integer nanoseconds)

    private var rto: Int64
    private var srtt: Int64?
    private var rttvar: Int64 = 0
    /// Consecutive timeouts without an answer (the association's error counter, §8.1).
    private var errorCount = 0

    // MARK: Receiving

    /// Every TSN up to it arrived.
    private var receivedTSN: UInt32
    /// TSNs above `receivedTSN` that arrived, as disjoint ascending ranges (inclusive).
    private var receivedAbove: [(first: UInt32, last: UInt32)] = []
    private var duplicates: [UInt32] = []
    /// Fragments of messages not yet whole, by TSN.
    private var fragments: [UInt32: SCTPDataChunk] = [:]
    /// Whole ordered messages waiting for an earlier one of their stream, by stream and SSN
    /// (DATA) or Message Identifier (I-DATA).
    private var waiting: [UInt16: [UInt32: SCTPMessage]] = [:]
    private var expectedSequence: [UInt32]
    /// I-DATA's messages not yet whole, by stream, U bit and Message Identifier (RFC 8260
    /// §2.2.3: reassembled by FSN, whatever their TSNs).
    private var partials: [PartialKey: Partial] = [:]
    /// The highest unordered Message Identifier an I-FORWARD-TSN skipped, by stream.
    private var skippedUnordered: [UInt16: UInt32] = [:]

    private struct PartialKey: Hashable {
        var stream: UInt16
        var unordered: Bool
        var messageID: UInt32
    }

    private struct Partial {
        var parts: [UInt32: ArraySlice<UInt8>] = [:]
        var ppid: UInt32 = 0
        var hasFirst = false
        var lastFSN: UInt32?
        var size = 0
    }
    private var readable: [SCTPMessage] = []
    private var readableHead = 0
    /// User bytes held in `fragments`, `waiting` and `readable`.
    private var heldBytes = 0
    /// The window last advertised (to send an update when reading opens it).
    private var advertisedWindow: Int
    private var sackOwed = false
    private var packetsUnacked = 0
    private var delayedAck: Instant?

    // MARK: Control

    /// Chunks to send before any DATA, with the verification tag their packet carries.
    private var control: [(chunk: SCTPChunk, tag: UInt32)] = []
    /// The INIT or COOKIE ECHO to repeat on T1 (RFC 9260 §5.1 A, C).
    private var handshakeChunk: SCTPChunk?
    private var t1: Instant?
    private var t1Count = 0
    /// T2-shutdown: repeats the SHUTDOWN or SHUTDOWN ACK (§9.2).
    private var t2: Instant?
    /// T5-shutdown-guard: ends a shutdown that takes too long (§9.2).
    private var t5: Instant?
    private var heartbeatDue: Instant?
    private var heartbeatNonce: [UInt8]?
    private var lastHeard: Instant
    private var events: [SCTPEvent] = []

    // MARK: Stream reconfiguration (RFC 6525)

    /// Both sides listed RE-CONFIG in Supported Extensions.
    public private(set) var peerSupportsStreamReset = false
    /// Our next Re-configuration Request Sequence Number (§4.1: starts at our initial TSN).
    private var nextRequestSeq: UInt32
    /// The peer's next expected one (its initial TSN at first).
    private var peerRequestSeq: UInt32 = 0
    /// The cumulative TSN of what we received, for tests.
    var receivedTSNForTests: UInt32 { receivedTSN }
    /// The peer's next expected request sequence number, for tests.
    var peerRequestSeqForTests: UInt32 { peerRequestSeq }
    /// Streams to reset, waiting for a request; with those in flight, the streams sends refuse.
    private var resetQueue: [UInt16] = []
    private var resetting: Set<UInt16> = []
    /// Our request in flight (§5.1.1: one at a time) and its timer.
    private var reconfigInFlight: (seq: UInt32, streams: [UInt16], chunk: SCTPChunk)?
    private var reconfigTimer: Instant?
    /// The peer answered "In progress": its timeouts count no error (§5.2.7 H2).
    private var reconfigInProgress = false
    /// Our answer to the peer's latest request, for its retransmission (§5.2.1).
    private var lastResponse: (seq: UInt32, result: UInt32)?
    /// The peer's reset waiting for the data before it (§5.2.2 E2).
    private var deferredReset: (seq: UInt32, lastTSN: UInt32, streams: [UInt16])?

    // MARK: Partial reliability (RFC 3758)

    /// Both sides offered PR-SCTP (RFC 3758 §3.3): messages with a limited ``SCTPSendPolicy``
    /// may be abandoned, and the peer's FORWARD TSN chunks are followed.
    public private(set) var peerSupportsPartialReliability = false
    /// A FORWARD TSN goes in the next packet.
    private var forwardTSNOwed = false
    /// The latest FORWARD TSN sent: a SACK short of it repeats it once a round trip passed
    /// (§3.5 F2's implementation note), not at every SACK.
    private var lastForwardTSN: (point: UInt32, sentAt: Instant)?
    /// Messages abandoned, for tests and statistics.
    public private(set) var abandonedMessages = 0
    /// Fragments and out-of-order messages of the peer's held, for tests.
    var heldForTests: (fragments: Int, waiting: Int) { (fragments.count + partials.count, waiting.count) }
    /// User bytes held by the sender, for tests.
    var bufferedBytesForTests: Int { bufferedBytes }

    static func offersPartialReliability(_ parameters: [SCTPParameter]) -> Bool {
        // §3.3.2 names the parameter; pion lists FORWARD TSN in Supported Extensions only.
        parameters.contains {
            $0.type == SCTPParameter.forwardTSNSupported
                || ($0.type == SCTPParameter.supportedExtensions && $0.value.contains(SCTPChunkType.forwardTSN))
        }
    }

    // MARK: Message interleaving (RFC 8260)

    /// Both sides listed I-DATA (RFC 8260 §2.2.1): messages are sent in I-DATA chunks, and
    /// those of different streams interleave; with PR-SCTP, I-FORWARD-TSN replaces FORWARD TSN.
    public private(set) var peerSupportsMessageInterleaving = false

    /// Whether we offer I-DATA: when configured, unless SCTP-AUTH is to cover DATA and does not
    /// list I-DATA (user data would then go unauthenticated).
    static func offersMessageInterleaving(_ configuration: SCTPConfiguration, auth: SCTPAuthentication?) -> Bool {
        guard configuration.messageInterleaving else { return false }
        guard let auth else { return true }
        return !auth.chunks.contains(SCTPChunkType.data) || auth.chunks.contains(SCTPChunkType.iData)
    }

    static func listsMessageInterleaving(_ parameters: [SCTPParameter]) -> Bool {
        parameters.contains { $0.type == SCTPParameter.supportedExtensions && $0.value.contains(SCTPChunkType.iData) }
    }

    static func listsIForwardTSN(_ parameters: [SCTPParameter]) -> Bool {
        parameters.contains { $0.type == SCTPParameter.supportedExtensions && $0.value.contains(SCTPChunkType.iForwardTSN) }
    }

    /// The DATA or I-DATA header.
    private var dataHeaderSize: Int { peerSupportsMessageInterleaving ? SCTPIDataChunk.headerSize : SCTPDataChunk.headerSize }

    // MARK: SCTP-AUTH (RFC 4895)

    /// What we sent in INIT or INIT ACK, when AUTH is configured.
    private var localAuth: SCTPAuthParameters?
    /// Keys and rules once both sides offered AUTH.
    private var auth: SCTPAuthState?

    /// Whether both sides offered SCTP-AUTH (chunks are then authenticated as each requested).
    public var isAuthenticating: Bool { auth != nil }

    /// The shared key identifier of the latest AUTH chunk from the peer that verified.
    public private(set) var peerKeyInUse: UInt16?

    /// Whether both require each other's DATA authenticated (RFC 6083 §4.4).
    public var authenticatesData: Bool {
        guard let auth else { return false }
        let type = peerSupportsMessageInterleaving ? SCTPChunkType.iData : SCTPChunkType.data
        return auth.weRequire(type) && auth.peerRequires(type)
    }

    /// Sets endpoint pair shared key `id` (RFC 4895 §6.1; RFC 6083 derives them from the DTLS
    /// exporter). Key 0 is the empty key until set.
    public func setSharedKey(_ key: [UInt8], id: UInt16) {
        auth?.setSharedKey(key, id: id)
    }

    /// Authenticates what we send with shared key `id` from now on; false if it is not set.
    @discardableResult
    public func useSharedKey(id: UInt16) -> Bool { auth?.useKey(id) ?? false }

    static func authParameters(_ settings: SCTPAuthentication, random: RandomSource) -> SCTPAuthParameters {
        SCTPAuthParameters(random: random.bytes(32), chunks: settings.chunks, hmacs: settings.hmacs)
    }

    /// Supported Extensions (RE-CONFIG, FORWARD TSN, AUTH, I-DATA, I-FORWARD-TSN),
    /// Forward-TSN-Supported and the AUTH parameters of our INIT or INIT ACK.
    static func initParameters(_ configuration: SCTPConfiguration, auth: SCTPAuthParameters?) -> [SCTPParameter] {
        var extensions: [UInt8] = []
        if configuration.streamReset { extensions.append(SCTPChunkType.reconfig) }
        if configuration.partialReliability { extensions.append(SCTPChunkType.forwardTSN) }
        if auth != nil { extensions.append(SCTPChunkType.auth) }
        if offersMessageInterleaving(configuration, auth: configuration.authentication) {
            extensions.append(SCTPChunkType.iData)
            if configuration.partialReliability { extensions.append(SCTPChunkType.iForwardTSN) }
        }
        var parameters = extensions.isEmpty ? [] : [SCTPParameter(type: SCTPParameter.supportedExtensions, value: extensions)]
        if configuration.partialReliability { parameters.append(SCTPParameter(type: SCTPParameter.forwardTSNSupported, value: [])) }
        parameters += auth?.parameters ?? []
        return parameters
    }

    /// The largest AUTH chunk (HMAC-SHA-256), kept free in every packet when AUTH is on.
    private static let authChunkSize = 8 + 32

    /// Counters for tests and statistics.
    public private(set) var retransmittedChunks = 0
    public private(set) var fastRetransmits = 0
    public private(set) var timeouts = 0

    // MARK: Creation

    /// A client association: sends INIT now (RFC 9260 §5.1 A).
    init(connecting configuration: SCTPConfiguration, localPort: UInt16, peerPort: UInt16, peerAddress: SocketAddress,
         localTag: UInt32, now: Instant) {
        self.configuration = configuration
        self.localPort = localPort
        self.peerPort = peerPort
        self.peerAddress = peerAddress
        self.localTag = localTag
        let initialTSN = Self.randomWord(configuration.random)
        state = .cookieWait
        outboundStreams = configuration.outboundStreams
        inboundStreams = configuration.inboundStreams
        nextTSN = initialTSN
        ackedTSN = initialTSN &- 1
        nextRequestSeq = initialTSN
        nextSequence = []
        expectedSequence = []
        receivedTSN = 0
        rto = configuration.rtoInitial.nanosecondsClamped
        advertisedWindow = configuration.receiveBufferSize
        peerWindow = 0
        cwnd = Self.initialWindow(configuration)
        ssthresh = Int(Int32.max)
        lastHeard = now
        localAuth = configuration.authentication.map { Self.authParameters($0, random: configuration.random) }
        let chunk = SCTPChunk.initiation(SCTPInitChunk(
            initiateTag: localTag, advertisedWindow: UInt32(configuration.receiveBufferSize),
            outboundStreams: configuration.outboundStreams, inboundStreams: configuration.inboundStreams,
            initialTSN: initialTSN, parameters: Self.initParameters(configuration, auth: localAuth)))
        sendHandshake(chunk, tag: 0, now: now)
    }

    /// A server association from a valid COOKIE ECHO (RFC 9260 §5.1 D): established at once.
    init(cookie: SCTPCookieState, configuration: SCTPConfiguration, peerAddress: SocketAddress, now: Instant) {
        self.configuration = configuration
        localPort = cookie.localPort
        peerPort = cookie.peerPort
        self.peerAddress = peerAddress
        localTag = cookie.localTag
        peerTag = cookie.peerTag
        state = .established
        outboundStreams = cookie.localOutboundStreams
        inboundStreams = cookie.localInboundStreams
        nextTSN = cookie.localInitialTSN
        ackedTSN = cookie.localInitialTSN &- 1
        nextRequestSeq = cookie.localInitialTSN
        peerRequestSeq = cookie.peerInitialTSN
        peerSupportsStreamReset = cookie.streamReset
        peerSupportsPartialReliability = cookie.partialReliability
        peerSupportsMessageInterleaving = cookie.messageInterleaving
        if let settings = configuration.authentication, cookie.localRandom.count == 32, let peer = SCTPAuthParameters.decode(cookie.peerAuth) {
            localAuth = SCTPAuthParameters(random: cookie.localRandom, chunks: settings.chunks, hmacs: settings.hmacs)
            auth = SCTPAuthState(local: localAuth!, peer: peer)
        }
        nextSequence = Array(repeating: 0, count: Int(outboundStreams))
        expectedSequence = Array(repeating: 0, count: Int(inboundStreams))
        if peerSupportsMessageInterleaving {
            nextUnorderedMID = Array(repeating: 0, count: Int(outboundStreams))
            queue.startInterleaving()
        }
        receivedTSN = cookie.peerInitialTSN &- 1
        rto = configuration.rtoInitial.nanosecondsClamped
        advertisedWindow = configuration.receiveBufferSize
        peerWindow = Int(cookie.peerWindow)
        cwnd = Self.initialWindow(configuration)
        ssthresh = Int(cookie.peerWindow)
        lastHeard = now
        control.append((.cookieAck, peerTag))
        events.append(.established)
        scheduleHeartbeat(now: now)
    }

    /// §7.2.1: min(4 × MTU, max(2 × MTU, 4 404)).
    private static func initialWindow(_ configuration: SCTPConfiguration) -> Int {
        min(4 * configuration.maxPacketSize, max(2 * configuration.maxPacketSize, 4404))
    }

    static func randomWord(_ random: RandomSource) -> UInt32 {
        random.bytes(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    // The INIT lists no addresses and no Supported Address Types (RFC 9260 §5.1.2: without it
    // every type is supported): the peer answers the packet's source, as over UDP it must (RFC
    // 6951 §5.3), and pion/sctp drops INITs that carry either parameter.

    // MARK: Application

    /// Queues a message. Returns at once; the message is sent as the windows allow.
    ///
    /// - Parameters:
    ///   - policy: when the message may be abandoned (PR-SCTP); reliable by default, and
    ///     always when the peer does not support PR-SCTP.
    ///   - now: when the message was sent, from which its ``SCTPSendPolicy/lifetime`` counts;
    ///     without it, from the next time the association is asked for a packet.
    public func send(_ bytes: [UInt8], stream: UInt16, ppid: UInt32 = 0, unordered: Bool = false,
                     policy: SCTPSendPolicy = .reliable, now: Instant? = nil) throws(SCTPError) {
        switch state {
        case .cookieWait, .cookieEchoed, .established: break
        default: throw .notWritable
        }
        guard !bytes.isEmpty else { throw .emptyMessage }
        guard bytes.count <= configuration.maxMessageSize else {
            throw .messageTooLarge(bytes.count, limit: configuration.maxMessageSize)
        }
        guard stream < outboundStreams else { throw .invalidStream(stream, available: outboundStreams) }
        guard !resetting.contains(stream) else { throw .streamResetting(stream) }
        guard bufferedBytes == 0 || bufferedBytes + bytes.count <= configuration.sendBufferSize else { throw .wouldBlock }
        bufferedBytes += bytes.count
        let message = nextMessage
        nextMessage &+= 1
        let deadline = policy.lifetime.flatMap { lifetime in now.map { $0 + lifetime } }
        if policy.lifetime != nil, deadline == nil { lifetimesUnstamped = true }
        // Room for an AUTH chunk when AUTH may be used, and for I-DATA's header when it may be
        // (the peer's answer is not known yet).
        let interleaving = state == .established ? peerSupportsMessageInterleaving
            : Self.offersMessageInterleaving(configuration, auth: configuration.authentication)
        let size = configuration.maxChunkPayload - (configuration.authentication == nil ? 0 : Self.authChunkSize)
            - (interleaving ? SCTPIDataChunk.headerSize - SCTPDataChunk.headerSize : 0)
        var start = 0
        var fsn: UInt32 = 0
        while start < bytes.count {
            let end = min(start + size, bytes.count)
            queue.append(Fragment(
                stream: stream, fsn: fsn, ppid: ppid, unordered: unordered, beginning: start == 0, ending: end == bytes.count,
                payload: bytes[start..<end], message: message, lifetime: policy.lifetime, deadline: deadline,
                maxRetransmissions: policy.maxRetransmissions))
            start = end
            fsn &+= 1
        }
    }

    /// Bytes ``send(_:stream:ppid:unordered:policy:now:)`` accepts now.
    public var writableBytes: Int {
        switch state {
        case .cookieWait, .cookieEchoed, .established: max(0, configuration.sendBufferSize - bufferedBytes)
        default: 0
        }
    }

    /// Whether everything sent was acknowledged.
    public var isIdle: Bool { queue.isEmpty && outstanding.isEmpty }

    /// Whether a stream reset of ours waits for a request or an answer.
    public var isResettingStreams: Bool { reconfigInFlight != nil || !resetQueue.isEmpty }

    /// Whether control chunks (a final ABORT or SHUTDOWN COMPLETE among them) wait to be sent.
    public var hasPendingControl: Bool { !control.isEmpty }

    /// The next message, in order for its stream.
    public func read() -> SCTPMessage? {
        guard readableHead < readable.count else { return nil }
        let message = readable[readableHead]
        readableHead += 1
        if readableHead == readable.count {
            readable.removeAll(keepingCapacity: readable.count < 64)
            readableHead = 0
        }
        heldBytes -= message.bytes.count
        // §6.2: tell the peer once the window opened by a packet's worth from a small value.
        if window - advertisedWindow >= configuration.maxPacketSize, advertisedWindow < configuration.receiveBufferSize / 2 {
            sackOwed = true
        }
        return message
    }

    /// The next event, oldest first.
    public func nextEvent() -> SCTPEvent? { events.isEmpty ? nil : events.removeFirst() }

    /// Begins the graceful SHUTDOWN (RFC 9260 §9.2): no more sends; the SHUTDOWN goes once
    /// everything queued is acknowledged.
    public func shutdown(now: Instant) {
        switch state {
        case .established:
            state = .shutdownPending
            t5 = now + .nanoseconds(5 * configuration.rtoMax.nanosecondsClamped)
            advanceShutdown(now: now)
        case .cookieWait, .cookieEchoed:
            close(.shutdown)
        default:
            break
        }
    }

    /// Sends ABORT with a User-Initiated Abort cause and closes (RFC 9260 §9.1).
    public func abort(reason: String = "", now: Instant) {
        guard state != .closed else { return }
        let cause = SCTPErrorCause(code: SCTPErrorCause.userInitiatedAbort, info: Array(reason.utf8.prefix(256)))
        sendAbort(cause)
    }

    /// Closes at once and sends nothing: the layer carrying the packets (the DTLS connection of
    /// SCTP over DTLS) failed or closed, so nothing reaches the peer any more.
    public func carrierClosed(_ reason: String) {
        control.removeAll()
        close(.carrierClosed(reason))
    }

    private var window: Int { max(0, configuration.receiveBufferSize - heldBytes) }

    // MARK: Receiving packets

    /// Handles a packet the endpoint routed here (checksum valid, ports ours).
    ///
    /// `raw` is the packet's bytes, for SCTP-AUTH: an AUTH chunk covers the bytes after it.
    func receive(_ packet: SCTPPacket, raw: [UInt8], from address: SocketAddress, now: Instant) {
        guard state != .closed else { return }
        let tagIsOurs = packet.verificationTag == localTag
        var receivedData = false
        var errorCauses: [SCTPErrorCause] = []
        var authenticated = false
        chunks: for (index, chunk) in packet.chunks.enumerated() {
            // RFC 4895 §6.3: chunks we asked for authenticated are dropped without an AUTH
            // before them.
            if let auth, !authenticated, auth.weRequire(chunk.type) { continue chunks }
            switch chunk {
            case .auth(let keyID, let hmacID, let hmac):
                guard let auth, tagIsOurs else { continue chunks }
                switch auth.check(raw, authAt: SCTPPacket.chunkOffset(raw, index: index), keyID: keyID, hmacID: hmacID, hmac: hmac) {
                case .valid:
                    authenticated = true
                    peerKeyInUse = keyID
                    continue chunks
                case .invalid:
                    return  // the chunks after it are discarded
                case .unsupported(let id):
                    control.append((.error(causes: [SCTPErrorCause(
                        code: SCTPErrorCause.unsupportedHMACIdentifier, info: [UInt8(id >> 8), UInt8(id & 0xFF)])]), peerTag))
                    return
                }
            case .abort(let reflected, let causes):
                // §8.5.1 B.
                guard reflected ? (peerTag != 0 && packet.verificationTag == peerTag) : tagIsOurs else { return }
                close(.abortedByPeer(causes))
                return
            case .shutdownComplete(let reflected):
                guard reflected ? packet.verificationTag == peerTag : tagIsOurs else { return }
                if state == .shutdownAckSent { close(.shutdown) }
                return
            case .initiation:
                // §8.5.1 A: an INIT comes alone with tag 0; the endpoint handles INITs. A
                // restarting peer is answered there.
                return
            case .cookieEcho:
                // The endpoint checked the cookie: a repeated one (§5.2.4 D, the COOKIE ACK was
                // lost) or the peer's for crossed INITs (§5.2.4 B, established just now).
                guard tagIsOurs else { return }
                if state != .cookieWait && state != .cookieEchoed { control.append((.cookieAck, peerTag)) }
                continue chunks
            default:
                break
            }
            guard tagIsOurs else { return }
            if address != peerAddress { peerAddress = address }
            lastHeard = now
            switch chunk {
            case .initiationAck(let ack):
                if !handleInitAck(ack, now: now) { return }
            case .cookieAck:
                if state == .cookieEchoed { establish(now: now) }
            case .data(let data):
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                // RFC 8260 §2.2.3: DATA once I-DATA was negotiated (and I-DATA when it was not)
                // ends the association.
                if peerSupportsMessageInterleaving { return violation("DATA on an association that uses I-DATA") }
                if data.payload.isEmpty {
                    sendAbort(SCTPErrorCause(code: SCTPErrorCause.noUserData, info: Self.word(data.tsn)))
                    return
                }
                receivedData = true
                receiveData(data, causes: &errorCauses)
            case .iData(let data):
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                if !peerSupportsMessageInterleaving { return violation("I-DATA on an association that uses DATA") }
                if data.payload.isEmpty {
                    sendAbort(SCTPErrorCause(code: SCTPErrorCause.noUserData, info: Self.word(data.tsn)))
                    return
                }
                receivedData = true
                receiveIData(data, causes: &errorCauses)
            case .sack(let sack):
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                if !handleSack(sack, now: now) { return }
            case .heartbeat(let info):
                control.append((.heartbeatAck(info: info), peerTag))
            case .reconfig(let parameters):
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                handleReconfig(parameters, now: now)
            case .forwardTSN(let cumulative, let streams) where peerSupportsPartialReliability:
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                // RFC 8260 §2.3.1: with I-DATA only I-FORWARD-TSN, and the other way round.
                if peerSupportsMessageInterleaving { return violation("FORWARD TSN on an association that uses I-DATA") }
                if moveCumulativeTSN(to: cumulative) {
                    dropSkippedFragments()
                    for entry in streams { skipOrdered(stream: entry.stream, through: UInt32(entry.ssn)) }
                    if readable.count > readableHead, events.last != .readable { events.append(.readable) }
                }
                receivedData = true  // §3.6: SACKed as if DATA arrived
            case .iForwardTSN(let cumulative, let streams) where peerSupportsPartialReliability:
                guard state != .cookieWait, state != .cookieEchoed else { continue chunks }
                if !peerSupportsMessageInterleaving { return violation("I-FORWARD-TSN on an association that uses DATA") }
                if moveCumulativeTSN(to: cumulative) { skipMessages(streams) }
                receivedData = true
            case .heartbeatAck(let info):
                handleHeartbeatAck(info, now: now)
            case .shutdown(let cumulative):
                if !handleShutdown(cumulative, now: now) { return }
            case .shutdownAck:
                switch state {
                case .shutdownSent, .shutdownAckSent:
                    control.append((.shutdownComplete(tagReflected: false), peerTag))
                    close(.shutdown)
                    return
                case .cookieWait, .cookieEchoed:
                    // §8.5.1 E: as out of the blue.
                    control.append((.shutdownComplete(tagReflected: true), packet.verificationTag))
                    return
                default:
                    break
                }
            case .error(let causes):
                if state == .cookieEchoed, causes.contains(where: { $0.code == SCTPErrorCause.staleCookie }) {
                    // §5.2.6: start again with a fresh INIT (no Cookie Preservative: our
                    // INIT timer already bounds the attempts).
                    restartHandshake(now: now)
                    return
                }
            case .unrecognized, .forwardTSN, .iForwardTSN:
                // §3.2: the two high bits of the type say what to do (a FORWARD TSN from a peer
                // that did not offer PR-SCTP is unrecognized, RFC 3758 §3.3.3).
                let type = chunk.type
                if type & 0x40 != 0 {
                    var writer = ByteWriter()
                    chunk.encode(into: &writer)
                    // One ERROR per packet, its causes bounded (a peer cannot make us send
                    // more than a packet's worth, nor a chunk over 64 KiB).
                    if errorCauses.reduce(0, { $0 + 4 + $1.info.count }) + 4 + writer.count <= Self.maxReportBytes {
                        errorCauses.append(SCTPErrorCause(code: SCTPErrorCause.unrecognizedChunkType, info: writer.bytes))
                    }
                }
                if type & 0x80 == 0 { break chunks }
            default:
                break
            }
            if state == .closed { return }
        }
        if !errorCauses.isEmpty { control.append((.error(causes: errorCauses), peerTag)) }
        if receivedData {
            dataArrived(now: now)
            performDeferredReset()
        }
        startReconfigIfReady(now: now)
        advanceShutdown(now: now)
    }

    /// The most bytes of unrecognized chunks or parameters reported back at once.
    static let maxReportBytes = 512

    private static func word(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private func handleInitAck(_ ack: SCTPInitChunk, now: Instant) -> Bool {
        guard state == .cookieWait else { return true }  // a late duplicate (§5.2.3)
        guard ack.initiateTag != 0, ack.outboundStreams != 0, ack.inboundStreams != 0 else {
            // §3.3.3: an INIT ACK with a zero tag or no streams is answered with ABORT.
            peerTag = ack.initiateTag
            sendAbort(SCTPErrorCause(code: SCTPErrorCause.invalidMandatoryParameter))
            close(.handshakeFailed("the INIT ACK had a zero tag or no streams"))
            return false
        }
        var cookie: [UInt8]?
        var unrecognized: [SCTPParameter] = []
        parameters: for parameter in ack.parameters {
            switch parameter.type {
            case SCTPParameter.stateCookie: cookie = parameter.value
            case SCTPParameter.ipv4Address, SCTPParameter.ipv6Address, SCTPParameter.unrecognizedParameter,
                 SCTPParameter.supportedExtensions, SCTPParameter.random, SCTPParameter.chunkList, SCTPParameter.hmacAlgorithms: break
            case SCTPParameter.forwardTSNSupported where configuration.partialReliability: break
            default:
                // §3.2.1; what is reported is bounded by the packet we send it in.
                let action = parameter.unrecognizedAction
                if action.report, unrecognized.reduce(0, { $0 + 8 + $1.value.count }) + 8 + parameter.value.count <= Self.maxReportBytes {
                    unrecognized.append(parameter)
                }
                if !action.skip { break parameters }
            }
        }
        peerTag = ack.initiateTag
        guard let cookie else {
            sendAbort(SCTPErrorCause(code: SCTPErrorCause.missingMandatoryParameter, info: [0, 0, 0, 1, 0, 7]))
            close(.handshakeFailed("the INIT ACK had no State Cookie"))
            return false
        }
        outboundStreams = min(configuration.outboundStreams, ack.inboundStreams)
        inboundStreams = min(configuration.inboundStreams, ack.outboundStreams)
        nextSequence = Array(repeating: 0, count: Int(outboundStreams))
        expectedSequence = Array(repeating: 0, count: Int(inboundStreams))
        if let localAuth {
            do throws(SCTPCloseReason) {
                if let peer = try SCTPAuthParameters.from(ack.parameters) { auth = SCTPAuthState(local: localAuth, peer: peer) }
            } catch {
                if case .aborted(let cause) = error { sendAbort(cause) }
                return false
            }
        }
        receivedTSN = ack.initialTSN &- 1
        peerRequestSeq = ack.initialTSN
        peerSupportsStreamReset = configuration.streamReset && Self.listsStreamReset(ack.parameters)
        peerSupportsMessageInterleaving = Self.offersMessageInterleaving(configuration, auth: configuration.authentication)
            && Self.listsMessageInterleaving(ack.parameters)
        peerSupportsPartialReliability = configuration.partialReliability && Self.offersPartialReliability(ack.parameters)
            && (!peerSupportsMessageInterleaving || Self.listsIForwardTSN(ack.parameters))
        peerWindow = Int(ack.advertisedWindow)
        ssthresh = Int(ack.advertisedWindow)
        state = .cookieEchoed
        t1Count = 0
        sendHandshake(.cookieEcho(cookie: cookie), tag: peerTag, now: now)
        if !unrecognized.isEmpty {
            // §3.2.1: reported in an ERROR bundled with the COOKIE ECHO.
            let info = unrecognized.flatMap { parameter in
                parameter.encoded + Array(repeating: 0, count: (4 - parameter.value.count % 4) % 4)
            }
            control.append((.error(causes: [SCTPErrorCause(code: SCTPErrorCause.unrecognizedParameters, info: info)]), peerTag))
        }
        return true
    }

    /// RFC 9260 §5.2.1: an INIT arriving while ours is out (both sides started at once) is
    /// answered with our own tag and initial TSN, so either side's COOKIE ECHO completes this
    /// association. `nil` once the handshake is over.
    var collisionParameters: (tag: UInt32, initialTSN: UInt32, auth: SCTPAuthParameters?)? {
        state == .cookieWait || state == .cookieEchoed ? (localTag, nextTSN, localAuth) : nil
    }

    /// §5.2.4 B: the peer's COOKIE ECHO for our INIT ACK of a colliding INIT: the association
    /// takes the peer's parameters from the cookie and is established (the COOKIE ACK goes when
    /// the packet's COOKIE ECHO is then processed, as for a repeated one).
    func acceptCollidingCookie(_ cookie: SCTPCookieState, now: Instant) {
        guard collisionParameters != nil else { return }
        peerTag = cookie.peerTag
        outboundStreams = cookie.localOutboundStreams
        inboundStreams = cookie.localInboundStreams
        expectedSequence = Array(repeating: 0, count: Int(inboundStreams))
        receivedTSN = cookie.peerInitialTSN &- 1
        peerRequestSeq = cookie.peerInitialTSN
        peerSupportsStreamReset = cookie.streamReset
        peerSupportsPartialReliability = cookie.partialReliability
        peerSupportsMessageInterleaving = cookie.messageInterleaving
        if let localAuth, let peer = SCTPAuthParameters.decode(cookie.peerAuth) { auth = SCTPAuthState(local: localAuth, peer: peer) }
        peerWindow = Int(cookie.peerWindow)
        ssthresh = Int(cookie.peerWindow)
        establish(now: now)
    }

    private func establish(now: Instant) {
        state = .established
        t1 = nil
        handshakeChunk = nil
        if nextSequence.count != Int(outboundStreams) { nextSequence = Array(repeating: 0, count: Int(outboundStreams)) }
        if peerSupportsMessageInterleaving { nextUnorderedMID = Array(repeating: 0, count: Int(outboundStreams)) }
        events.append(.established)
        scheduleHeartbeat(now: now)
        // Messages queued before the handshake on streams the peer does not accept are dropped
        // (the stream count is known only now).
        bufferedBytes -= queue.removeStreams(from: outboundStreams)
        if peerSupportsMessageInterleaving { queue.startInterleaving() }
    }

    private func restartHandshake(now: Instant) {
        state = .cookieWait
        peerTag = 0
        let initialTSN = nextTSN
        sendHandshake(.initiation(SCTPInitChunk(
            initiateTag: localTag, advertisedWindow: UInt32(configuration.receiveBufferSize),
            outboundStreams: configuration.outboundStreams, inboundStreams: configuration.inboundStreams,
            initialTSN: initialTSN, parameters: Self.initParameters(configuration, auth: localAuth))), tag: 0, now: now)
    }

    private func sendHandshake(_ chunk: SCTPChunk, tag: UInt32, now: Instant) {
        handshakeChunk = chunk
        control.append((chunk, tag))
        t1 = now + .nanoseconds(rto)
    }

    // MARK: DATA

    private func receiveData(_ data: SCTPDataChunk, causes: inout [SCTPErrorCause]) {
        guard acceptTSN(data.tsn, stream: data.stream, size: data.payload.count, immediate: data.immediate, causes: &causes)
        else { return }
        heldBytes += data.payload.count
        if data.beginning && data.ending {
            deliver(SCTPMessage(stream: data.stream, ppid: data.ppid, unordered: data.unordered, bytes: Array(data.payload)),
                    sequence: UInt32(data.ssn))
        } else {
            fragments[data.tsn] = data
            reassemble(around: data)
        }
    }

    /// The TSN rules DATA and I-DATA share (§6.2, §6.5); true if the payload is to be kept.
    private func acceptTSN(_ tsn: UInt32, stream: UInt16, size: Int, immediate: Bool, causes: inout [SCTPErrorCause]) -> Bool {
        if immediate { sackOwed = true }
        let offset = tsn &- receivedTSN
        if offset == 0 || offset > 0x8000_0000 || isReceived(tsn) {
            if duplicates.count < 16 { duplicates.append(tsn) }
            sackOwed = true  // §6.2: a duplicate is acknowledged at once
            return false
        }
        // A TSN beyond any window the peer could have, or data we have no room for: dropped
        // unacknowledged (§6.2: the peer retransmits it).
        guard offset <= 0xFFFF, heldBytes + size <= configuration.receiveBufferSize,
              receivedAbove.count < 256 || offset == 1
        else { return false }
        guard stream < inboundStreams else {
            // §6.5: acknowledged, reported, discarded.
            markReceived(tsn)
            causes.append(SCTPErrorCause(
                code: SCTPErrorCause.invalidStreamIdentifier, info: [UInt8(stream >> 8), UInt8(stream & 0xFF), 0, 0]))
            return false
        }
        markReceived(tsn)
        if offset != 1 || !receivedAbove.isEmpty { sackOwed = true }  // a gap: report it at once
        return true
    }

    /// RFC 8260 §2.2.3: a message of I-DATA chunks is found by stream, U bit and Message
    /// Identifier and put together by FSN; the TSNs say nothing about it.
    private func receiveIData(_ data: SCTPIDataChunk, causes: inout [SCTPErrorCause]) {
        guard acceptTSN(data.tsn, stream: data.stream, size: data.payload.count, immediate: data.immediate, causes: &causes)
        else { return }
        heldBytes += data.payload.count
        if data.beginning && data.ending {
            return deliver(SCTPMessage(stream: data.stream, ppid: data.ppid, unordered: data.unordered, bytes: Array(data.payload)),
                           sequence: data.messageID)
        }
        // A fragment of a message an I-FORWARD-TSN skipped, come late under a TSN above it (with
        // I-DATA the skipped message's TSNs need not be below it): it would wait for ever.
        if isSkipped(data) { return heldBytes -= data.payload.count }
        let key = PartialKey(stream: data.stream, unordered: data.unordered, messageID: data.messageID)
        var partial = partials.removeValue(forKey: key) ?? Partial()
        guard partial.parts[data.fsn] == nil, partial.lastFSN.map({ data.fsn <= $0 }) ?? true,
              !data.ending || partial.parts.keys.allSatisfy({ $0 <= data.fsn })
        else {
            // A second copy of a fragment under another TSN, or one past the last: not ours to
            // guess which is right.
            return violation("I-DATA fragments of message \(data.messageID) on stream \(data.stream) disagree")
        }
        partial.parts[data.fsn] = data.payload
        partial.size += data.payload.count
        if data.beginning {
            partial.hasFirst = true
            partial.ppid = data.ppid
        }
        if data.ending { partial.lastFSN = data.fsn }
        guard partial.size <= configuration.maxMessageSize else { return abortOversized() }
        guard partial.hasFirst, let last = partial.lastFSN, partial.parts.count == Int(last) + 1 else {
            partials[key] = partial
            return
        }
        // Every FSN from 0 to the last is here (no key is past it, none repeats).
        var bytes: [UInt8] = []
        bytes.reserveCapacity(partial.size)
        for fsn in 0...last { bytes.append(contentsOf: partial.parts[fsn]!) }
        let message = SCTPMessage(stream: data.stream, ppid: partial.ppid, unordered: data.unordered, bytes: bytes)
        deliver(message, sequence: data.messageID)
    }

    /// Whether an I-DATA fragment belongs to a message already skipped: ordered, behind its
    /// stream; unordered, at or below the highest MID an I-FORWARD-TSN skipped on its stream.
    private func isSkipped(_ data: SCTPIDataChunk) -> Bool {
        if data.unordered {
            guard let through = skippedUnordered[data.stream] else { return false }
            return Serial.lessOrEqual(data.messageID, through)
        }
        return data.messageID &- expectedSequence[Int(data.stream)] >= 0x8000_0000
    }

    /// I-FORWARD-TSN (RFC 8260 §2.3.1): the partial messages of each stream and kind up to the
    /// Message Identifier listed are dropped; ordered streams go on after it.
    private func skipMessages(_ streams: [SCTPIForwardTSNStream]) {
        var skipped: [PartialKey: UInt32] = [:]  // the message ID zeroed: stream and kind
        for entry in streams where entry.stream < inboundStreams {
            skipped[PartialKey(stream: entry.stream, unordered: entry.unordered, messageID: 0)] = entry.messageID
            if entry.unordered, skippedUnordered[entry.stream].map({ Serial.less($0, entry.messageID) }) ?? true {
                skippedUnordered[entry.stream] = entry.messageID
            }
        }
        if !partials.isEmpty, !skipped.isEmpty {
            for (key, partial) in partials {
                guard let through = skipped[PartialKey(stream: key.stream, unordered: key.unordered, messageID: 0)],
                      Serial.lessOrEqual(key.messageID, through)
                else { continue }
                heldBytes -= partial.size
                partials[key] = nil
            }
        }
        for entry in streams where !entry.unordered { skipOrdered(stream: entry.stream, through: entry.messageID) }
        if readable.count > readableHead, events.last != .readable { events.append(.readable) }
    }

    private func isReceived(_ tsn: UInt32) -> Bool {
        if Serial.lessOrEqual(tsn, receivedTSN) { return true }
        return receivedAbove.contains { Serial.lessOrEqual($0.first, tsn) && Serial.lessOrEqual(tsn, $0.last) }
    }

    private func markReceived(_ tsn: UInt32) {
        if tsn == receivedTSN &+ 1 {
            receivedTSN = tsn
            if let first = receivedAbove.first, first.first == receivedTSN &+ 1 {
                receivedTSN = first.last
                receivedAbove.removeFirst()
            }
            return
        }
        var index = 0
        while index < receivedAbove.count, Serial.less(receivedAbove[index].last &+ 1, tsn) { index += 1 }
        if index < receivedAbove.count, receivedAbove[index].last &+ 1 == tsn {
            receivedAbove[index].last = tsn
            if index + 1 < receivedAbove.count, receivedAbove[index + 1].first == tsn &+ 1 {
                receivedAbove[index].last = receivedAbove[index + 1].last
                receivedAbove.remove(at: index + 1)
            }
        } else if index < receivedAbove.count, receivedAbove[index].first == tsn &+ 1 {
            receivedAbove[index].first = tsn
        } else {
            receivedAbove.insert((tsn, tsn), at: index)
        }
    }

    private func violation(_ reason: String) {
        sendAbort(SCTPErrorCause(code: SCTPErrorCause.protocolViolation, info: Array(reason.utf8)))
    }

    /// FORWARD TSN and I-FORWARD-TSN (RFC 3758 §3.6): every TSN up to `cumulative` counts as
    /// received, then the cumulative TSN moves on over what arrived beyond it. False if it is
    /// out of date (behind or at ours): then it is only SACKed.
    ///
    /// A distant `cumulative` (even one the peer cannot have sent) costs no more than a near
    /// one: only the ranges held are touched, never the TSNs in between.
    private func moveCumulativeTSN(to cumulative: UInt32) -> Bool {
        sackOwed = true  // the sender frees its buffer on our SACK: at once
        let offset = cumulative &- receivedTSN
        guard offset != 0, offset < 0x8000_0000 else { return false }
        receivedTSN = cumulative
        while let first = receivedAbove.first, Serial.lessOrEqual(first.first, receivedTSN &+ 1) {
            if Serial.less(receivedTSN, first.last) { receivedTSN = first.last }
            receivedAbove.removeFirst()
        }
        return true
    }

    /// §3.6: the messages held for sequence numbers up to `sequence` (an SSN, or with I-DATA a
    /// Message Identifier) on an ordered stream are delivered, then those after it in order. A
    /// number behind the stream's is from an older FORWARD TSN.
    private func skipOrdered(stream: UInt16, through sequence: UInt32) {
        guard stream < inboundStreams else { return }
        let (mask, half) = sequenceSpace
        let index = Int(stream)
        let expected = expectedSequence[index]
        let skipped = (sequence &- expected) & mask
        guard skipped < half else { return }
        if let held = waiting[stream] {
            let distance = { (key: UInt32) in (key &- expected) & mask }
            for key in held.keys.sorted(by: { distance($0) < distance($1) }) where distance(key) <= skipped {
                readable.append(waiting[stream]!.removeValue(forKey: key)!)
            }
        }
        expectedSequence[index] = (sequence &+ 1) & mask
        while let next = waiting[stream]?.removeValue(forKey: expectedSequence[index]) {
            readable.append(next)
            expectedSequence[index] = (expectedSequence[index] &+ 1) & mask
        }
        if waiting[stream]?.isEmpty == true { waiting[stream] = nil }
    }

    /// SSNs are 16 bits, Message Identifiers 32 (serial arithmetic on either, RFC 1982).
    private var sequenceSpace: (mask: UInt32, half: UInt32) {
        peerSupportsMessageInterleaving ? (0xFFFF_FFFF, 0x8000_0000) : (0xFFFF, 0x8000)
    }

    /// §3.6: removes the partial messages missing a TSN at or below the cumulative TSN. Only
    /// one can still complete: the one holding that TSN, if every fragment from its first to
    /// there is here (any other has a fragment at or below it that will not come).
    private func dropSkippedFragments() {
        var keepFrom = receivedTSN &+ 1
        var tsn = receivedTSN
        if var fragment = fragments[tsn], !fragment.ending {
            while true {
                if fragment.beginning {
                    keepFrom = tsn
                    break
                }
                guard let previous = fragments[tsn &- 1], !previous.ending, previous.stream == fragment.stream,
                      previous.unordered == fragment.unordered, fragment.unordered || previous.ssn == fragment.ssn
                else { break }
                tsn &-= 1
                fragment = previous
            }
        }
        let receivedTSN = receivedTSN
        let dropped = fragments.keys.filter { Serial.lessOrEqual($0, receivedTSN) && Serial.less($0, keepFrom) }
        for tsn in dropped { heldBytes -= fragments.removeValue(forKey: tsn)!.payload.count }
    }

    /// Finds the whole message `data` belongs to, if all its fragments are here: consecutive
    /// TSNs of one stream from a B to an E fragment (and one SSN when ordered).
    private func reassemble(around data: SCTPDataChunk) {
        func belongs(_ other: SCTPDataChunk) -> Bool {
            other.stream == data.stream && other.unordered == data.unordered && (data.unordered || other.ssn == data.ssn)
        }
        var first = data.tsn
        var size = data.payload.count
        while !fragments[first]!.beginning {
            guard let previous = fragments[first &- 1], belongs(previous), !previous.ending else { return }
            first &-= 1
            size += previous.payload.count
            guard size <= configuration.maxMessageSize else { return abortOversized() }
        }
        var last = data.tsn
        while !fragments[last]!.ending {
            guard let next = fragments[last &+ 1], belongs(next), !next.beginning else { return }
            last &+= 1
            size += next.payload.count
            guard size <= configuration.maxMessageSize else { return abortOversized() }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)
        var tsn = first
        while true {
            bytes.append(contentsOf: fragments.removeValue(forKey: tsn)!.payload)
            if tsn == last { break }
            tsn &+= 1
        }
        let message = SCTPMessage(stream: data.stream, ppid: data.ppid, unordered: data.unordered, bytes: bytes)
        deliver(message, sequence: UInt32(data.ssn))
    }

    private func abortOversized() {
        sendAbort(SCTPErrorCause(code: SCTPErrorCause.outOfResource))
    }

    private func deliver(_ message: SCTPMessage, sequence: UInt32) {
        if message.unordered {
            readable.append(message)
        } else {
            let stream = Int(message.stream)
            let (mask, half) = sequenceSpace
            if sequence == expectedSequence[stream] {
                readable.append(message)
                expectedSequence[stream] = (expectedSequence[stream] &+ 1) & mask
                while let next = waiting[message.stream]?.removeValue(forKey: expectedSequence[stream]) {
                    readable.append(next)
                    expectedSequence[stream] = (expectedSequence[stream] &+ 1) & mask
                }
                if waiting[message.stream]?.isEmpty == true { waiting[message.stream] = nil }
            } else if (sequence &- expectedSequence[stream]) & mask >= half {
                // Behind the stream: a message a FORWARD TSN skipped came after all. It cannot
                // be placed; holding it would hold it for ever.
                heldBytes -= message.bytes.count
            } else {
                waiting[message.stream, default: [:]][sequence] = message
            }
        }
        if readable.count > readableHead, events.last != .readable { events.append(.readable) }
    }

    private func dataArrived(now: Instant) {
        packetsUnacked += 1
        // §6.2: a SACK for every second packet with DATA, at most `delayedAckTimeout` later.
        if packetsUnacked >= 2 { sackOwed = true }
        if state == .shutdownSent {
            // §9.2: SACK and SHUTDOWN again at once.
            sackOwed = true
            control.append((.shutdown(cumulativeTSN: receivedTSN), peerTag))
        }
        if !sackOwed, delayedAck == nil { delayedAck = now + configuration.delayedAckTimeout }
    }

    private func makeSack() -> SCTPChunk {
        var gaps: [ClosedRange<UInt16>] = []
        for range in receivedAbove {
            let start = range.first &- receivedTSN
            let end = range.last &- receivedTSN
            guard end <= 0xFFFF, gaps.count < 128 else { break }
            gaps.append(UInt16(start)...UInt16(end))
        }
        let sack = SCTPSackChunk(
            cumulativeTSN: receivedTSN, advertisedWindow: UInt32(window), gapBlocks: gaps, duplicates: duplicates)
        duplicates.removeAll()
        advertisedWindow = window
        sackOwed = false
        packetsUnacked = 0
        delayedAck = nil
        return .sack(sack)
    }

    // MARK: SACK

    /// RFC 9260 §6.2.1, §7.2. Returns false if it aborted the association.
    private func handleSack(_ sack: SCTPSackChunk, now: Instant) -> Bool {
        let cumulative = sack.cumulativeTSN
        // An old SACK (reordered) changes nothing (§6.2.1 D i).
        guard Serial.lessOrEqual(ackedTSN, cumulative) else { return true }
        guard Serial.less(cumulative, nextTSN) else {
            sendAbort(SCTPErrorCause(code: SCTPErrorCause.protocolViolation, info: Array("a SACK for a TSN never sent".utf8)))
            return false
        }
        let cumulativeAdvanced = cumulative != ackedTSN
        let flightBefore = flightSize
        var bytesAcked = 0
        var highestNewlyAcked: UInt32?
        ackedTSN = cumulative
        var removed = 0
        while removed < outstanding.count, Serial.lessOrEqual(outstanding[removed].tsn, cumulative) {
            let chunk = outstanding[removed]
            // Abandoned chunks (their payload released) credit nothing (RFC 3758 §3.5 A2).
            if !chunk.gapAcked, !chunk.abandoned {
                bytesAcked += chunk.fragment.payload.count
                highestNewlyAcked = chunk.tsn
                sampleRTT(chunk, now: now)
            }
            if chunk.inFlight { flightSize -= chunk.fragment.payload.count }
            bufferedBytes -= chunk.fragment.payload.count
            removed += 1
        }
        outstanding.removeFirst(removed)
        var highestGapAcked = cumulative
        if !sack.gapBlocks.isEmpty {
            var block = 0
            for index in outstanding.indices where !outstanding[index].abandoned {
                let offset = outstanding[index].tsn &- cumulative
                while block < sack.gapBlocks.count, UInt32(sack.gapBlocks[block].upperBound) < offset { block += 1 }
                let acked = block < sack.gapBlocks.count && UInt32(sack.gapBlocks[block].lowerBound) <= offset
                if acked {
                    highestGapAcked = outstanding[index].tsn
                    if !outstanding[index].gapAcked {
                        outstanding[index].gapAcked = true
                        outstanding[index].retransmit = false
                        bytesAcked += outstanding[index].fragment.payload.count
                        highestNewlyAcked = outstanding[index].tsn
                        sampleRTT(outstanding[index], now: now)
                        if outstanding[index].inFlight {
                            outstanding[index].inFlight = false
                            flightSize -= outstanding[index].fragment.payload.count
                        }
                    }
                } else if outstanding[index].gapAcked {
                    // Reneged (§6.2.1 D iv): no longer acknowledged; T3 resends it.
                    outstanding[index].gapAcked = false
                }
            }
        }
        // §7.2.4: chunks below the highest newly acknowledged TSN that are still missing get
        // a miss indication; the third marks them for fast retransmit.
        var newlyMarked = false
        if let highestNewlyAcked {
            let limit = fastRecoveryExit == nil ? highestGapAcked : highestNewlyAcked
            for index in outstanding.indices {
                guard Serial.less(outstanding[index].tsn, limit) else { break }
                guard !outstanding[index].gapAcked, !outstanding[index].retransmit, !outstanding[index].abandoned else { continue }
                outstanding[index].missIndications += 1
                if outstanding[index].missIndications == 3 {
                    // Abandoned instead when its policy says so; the congestion response is
                    // the same (RFC 3758 §3.5 F5).
                    markForRetransmit(index, now: now)
                    newlyMarked = true
                }
            }
        }
        if let exit = fastRecoveryExit, Serial.lessOrEqual(exit, cumulative) { fastRecoveryExit = nil }
        let mtu = configuration.maxPacketSize
        if cumulativeAdvanced, fastRecoveryExit == nil {
            if cwnd <= ssthresh {
                if flightBefore >= cwnd { cwnd += min(bytesAcked, mtu) }  // §7.2.1
            } else {
                partialBytesAcked += bytesAcked  // §7.2.2
                if partialBytesAcked >= cwnd, flightBefore >= cwnd {
                    partialBytesAcked -= cwnd
                    cwnd += mtu
                }
            }
        }
        if newlyMarked, fastRecoveryExit == nil {
            ssthresh = max(cwnd / 2, 4 * mtu)
            cwnd = ssthresh
            partialBytesAcked = 0
            fastRecoveryExit = nextTSN &- 1
            fastRetransmitOwed = true
            fastRetransmits += 1
        }
        if flightSize == 0 { partialBytesAcked = 0 }
        peerWindow = max(0, Int(sack.advertisedWindow) - flightSize)
        if cumulativeAdvanced { errorCount = 0 }
        // RFC 3758 §3.5 C1–C3.
        scheduleForwardTSN(now: now, repeating: false)
        if outstanding.allSatisfy({ $0.gapAcked }) {
            t3 = nil
        } else if cumulativeAdvanced {
            t3 = now + .nanoseconds(rto)
        }
        return true
    }

    private func markForRetransmit(_ index: Int, now: Instant) {
        if mayAbandon(outstanding[index].fragment, transmissions: outstanding[index].transmissions, now: now) {
            return abandonMessage(at: index, now: now)
        }
        outstanding[index].retransmit = true
        if outstanding[index].inFlight {
            outstanding[index].inFlight = false
            flightSize -= outstanding[index].fragment.payload.count
        }
    }

    /// Karn's rule: only chunks sent once, one measurement in flight (§6.3.1 C1–C3).
    private func sampleRTT(_ chunk: Outstanding, now: Instant) {
        guard let probe = rttProbe, probe.tsn == chunk.tsn else { return }
        rttProbe = nil
        guard chunk.transmissions == 1 else { return }
        updateRTO(sample: (now - probe.sentAt).nanosecondsClamped)
    }

    private func updateRTO(sample: Int64) {
        if let srtt {
            rttvar = rttvar - rttvar / 4 + abs(srtt - sample) / 4
            self.srtt = srtt - srtt / 8 + sample / 8
        } else {
            srtt = sample
            rttvar = sample / 2
        }
        let granularity: Int64 = 1_000_000
        rto = clampRTO(srtt! + max(4 * rttvar, granularity))
    }

    private func clampRTO(_ value: Int64) -> Int64 {
        min(max(value, configuration.rtoMin.nanosecondsClamped), configuration.rtoMax.nanosecondsClamped)
    }

    /// The smoothed round-trip time, once measured.
    public var smoothedRTT: Duration? { srtt.map { .nanoseconds($0) } }
    /// The congestion window in bytes.
    public var congestionWindow: Int { cwnd }

    // MARK: Stream reconfiguration

    static func listsStreamReset(_ parameters: [SCTPParameter]) -> Bool {
        parameters.contains { $0.type == SCTPParameter.supportedExtensions && $0.value.contains(SCTPChunkType.reconfig) }
    }

    /// Resets our outgoing `streams` (RFC 6525 §5.1.2): once everything queued on them was
    /// given a TSN, an Outgoing SSN Reset Request tells the peer to expect SSN 0 on them after
    /// our last TSN; the peer sees the end of those streams once it has read everything before.
    /// Sends on them wait (``SCTPError/streamResetting(_:)``) until
    /// ``SCTPEvent/outgoingStreamsReset(_:)`` or ``SCTPEvent/streamResetRefused(_:)``.
    public func resetOutgoingStreams(_ streams: [UInt16], now: Instant) throws(SCTPError) {
        guard state == .established else { throw .notWritable }
        guard peerSupportsStreamReset else { throw .streamResetUnsupported }
        if let invalid = streams.first(where: { $0 >= outboundStreams }) { throw .invalidStream(invalid, available: outboundStreams) }
        for stream in streams where resetting.insert(stream).inserted { resetQueue.append(stream) }
        startReconfigIfReady(now: now)
    }

    /// Sends the request for the queued streams whose data all have TSNs, if none is in flight.
    private func startReconfigIfReady(now: Instant) {
        guard reconfigInFlight == nil, !resetQueue.isEmpty, state == .established else { return }
        let waiting = queue.streamsWaiting
        let ready = resetQueue.filter { !waiting.contains($0) }
        guard !ready.isEmpty else { return }
        resetQueue.removeAll { ready.contains($0) }
        var value = ByteWriter(capacity: 12 + 2 * ready.count)
        value.writeUInt32(nextRequestSeq)
        value.writeUInt32(peerRequestSeq &- 1)
        value.writeUInt32(nextTSN &- 1)  // A3: the last TSN we assigned
        for stream in ready { value.writeUInt16(stream) }
        let chunk = SCTPChunk.reconfig(parameters: [SCTPParameter(type: SCTPParameter.outgoingSSNResetRequest, value: value.bytes)])
        reconfigInFlight = (nextRequestSeq, ready, chunk)
        nextRequestSeq &+= 1
        reconfigInProgress = false
        control.append((chunk, peerTag))
        reconfigTimer = now + .nanoseconds(rto)
    }

    /// §5.2: requests are answered (ours: only the Outgoing SSN Reset; the others are denied),
    /// responses settle our request.
    private func handleReconfig(_ parameters: [SCTPParameter], now: Instant) {
        var responses: [SCTPParameter] = []
        for parameter in parameters.prefix(2) {
            var reader = ByteReader(parameter.value)
            guard let seq = try? reader.readUInt32() else { continue }
            switch parameter.type {
            case SCTPParameter.outgoingSSNResetRequest:
                guard (try? reader.readUInt32()) != nil, let lastTSN = try? reader.readUInt32(), reader.remaining % 2 == 0 else { continue }
                var streams: [UInt16] = []
                while let stream = try? reader.readUInt16() { streams.append(stream) }
                responses.append(answerOutgoingReset(seq: seq, lastTSN: lastTSN, streams: streams))
            case SCTPParameter.incomingSSNResetRequest, SCTPParameter.ssnTSNResetRequest,
                 SCTPParameter.addOutgoingStreamsRequest, SCTPParameter.addIncomingStreamsRequest:
                responses.append(answerDenied(seq: seq))
            case SCTPParameter.reconfigurationResponse:
                guard let result = try? reader.readUInt32() else { continue }
                handleReconfigResponse(seq: seq, result: result, now: now)
            default:
                continue
            }
        }
        if !responses.isEmpty {
            control.append((.reconfig(parameters: responses), peerTag))
            sackOwed = true  // §5.2.1: a SACK with the response speeds up any retransmission
        }
    }

    private static func response(_ seq: UInt32, _ result: UInt32) -> SCTPParameter {
        SCTPParameter(type: SCTPParameter.reconfigurationResponse, value: word(seq) + word(result))
    }

    private enum ReconfigResult {
        static let performed: UInt32 = 1
        static let denied: UInt32 = 2
        static let badSequenceNumber: UInt32 = 5
        static let inProgress: UInt32 = 6
    }

    /// §5.2.2 with §5.2.1's sequence numbers: the expected request is performed (or deferred
    /// until the data before it arrived), its retransmission gets the same answer.
    private func answerOutgoingReset(seq: UInt32, lastTSN: UInt32, streams: [UInt16]) -> SCTPParameter {
        if seq == peerRequestSeq {
            peerRequestSeq &+= 1
            if Serial.lessOrEqual(lastTSN, receivedTSN) {
                resetIncoming(streams)
                lastResponse = (seq, ReconfigResult.performed)
            } else {
                deferredReset = (seq, lastTSN, streams)
                lastResponse = (seq, ReconfigResult.inProgress)
            }
            return Self.response(seq, lastResponse!.result)
        }
        if seq == peerRequestSeq &- 1, let last = lastResponse, last.seq == seq {
            return Self.response(seq, last.result)
        }
        return Self.response(seq, ReconfigResult.badSequenceNumber)
    }

    private func answerDenied(seq: UInt32) -> SCTPParameter {
        if seq == peerRequestSeq {
            peerRequestSeq &+= 1
            lastResponse = (seq, ReconfigResult.denied)
            return Self.response(seq, ReconfigResult.denied)
        }
        if seq == peerRequestSeq &- 1, let last = lastResponse, last.seq == seq { return Self.response(seq, last.result) }
        return Self.response(seq, ReconfigResult.badSequenceNumber)
    }

    /// E2–E5 once the cumulative TSN reached the deferred request's last TSN.
    private func performDeferredReset() {
        guard let deferred = deferredReset, Serial.lessOrEqual(deferred.lastTSN, receivedTSN) else { return }
        deferredReset = nil
        resetIncoming(deferred.streams)
        lastResponse = (deferred.seq, ReconfigResult.performed)
        control.append((.reconfig(parameters: [Self.response(deferred.seq, ReconfigResult.performed)]), peerTag))
    }

    /// E3: the streams' next SSN is 0 again; the application learns their end.
    private func resetIncoming(_ requested: [UInt16]) {
        let streams = requested.isEmpty ? Array(0..<inboundStreams) : requested.filter { $0 < inboundStreams }
        for stream in streams {
            expectedSequence[Int(stream)] = 0
            // Messages waiting for an earlier SSN came after the sender's last TSN, which A1
            // forbids: they cannot be placed in the new sequence.
            if let dropped = waiting.removeValue(forKey: stream) { heldBytes -= dropped.values.reduce(0) { $0 + $1.bytes.count } }
        }
        events.append(.incomingStreamsReset(streams))
    }

    /// §5.2.7.
    private func handleReconfigResponse(seq: UInt32, result: UInt32, now: Instant) {
        guard let request = reconfigInFlight, request.seq == seq else { return }
        switch result {
        case ReconfigResult.inProgress:
            reconfigInProgress = true
            reconfigTimer = now + .nanoseconds(rto)
            return
        case 0, ReconfigResult.performed:
            // RFC 8260 §2.3.2: both Message Identifier counters too.
            for stream in request.streams {
                nextSequence[Int(stream)] = 0
                if peerSupportsMessageInterleaving { nextUnorderedMID[Int(stream)] = 0 }
            }
            events.append(.outgoingStreamsReset(request.streams))
        default:
            events.append(.streamResetRefused(request.streams))
        }
        for stream in request.streams { resetting.remove(stream) }
        reconfigInFlight = nil
        reconfigTimer = nil
        reconfigInProgress = false
        startReconfigIfReady(now: now)
    }

    // MARK: Shutdown

    private func handleShutdown(_ cumulative: UInt32, now: Instant) -> Bool {
        // The Cumulative TSN Ack acknowledges as a SACK would (§9.2).
        if Serial.lessOrEqual(ackedTSN, cumulative), Serial.less(cumulative, nextTSN), cumulative != ackedTSN {
            if !handleSack(SCTPSackChunk(cumulativeTSN: cumulative, advertisedWindow: UInt32(clamping: peerWindow + flightSize)), now: now) {
                return false
            }
        }
        switch state {
        case .established, .shutdownPending:
            state = .shutdownReceived
            if t5 == nil { t5 = now + .nanoseconds(5 * configuration.rtoMax.nanosecondsClamped) }
        case .shutdownSent:
            // Both sent SHUTDOWN (§9.2): answer with SHUTDOWN ACK.
            state = .shutdownReceived
        default:
            break
        }
        return true
    }

    /// Sends SHUTDOWN or SHUTDOWN ACK once everything we sent is acknowledged.
    private func advanceShutdown(now: Instant) {
        guard isIdle else { return }
        switch state {
        case .shutdownPending:
            state = .shutdownSent
            control.append((.shutdown(cumulativeTSN: receivedTSN), peerTag))
            t3 = nil
            t2 = now + .nanoseconds(rto)
        case .shutdownReceived:
            state = .shutdownAckSent
            control.append((.shutdownAck, peerTag))
            t3 = nil
            t2 = now + .nanoseconds(rto)
        default:
            break
        }
    }

    // MARK: Heartbeat

    private func scheduleHeartbeat(now: Instant) {
        guard let interval = configuration.heartbeatInterval else { return }
        heartbeatDue = now + interval + .nanoseconds(rto)
    }

    private func sendHeartbeat(now: Instant) {
        var info = Self.word(UInt32(truncatingIfNeeded: now.nanoseconds >> 32)) + Self.word(UInt32(truncatingIfNeeded: now.nanoseconds))
        info += configuration.random.bytes(8)
        heartbeatNonce = info
        control.append((.heartbeat(info: info), peerTag))
    }

    private func handleHeartbeatAck(_ info: [UInt8], now: Instant) {
        guard info == heartbeatNonce, info.count == 16 else { return }
        heartbeatNonce = nil
        errorCount = 0
        let sent = info[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if sent <= now.nanoseconds { updateRTO(sample: Int64(clamping: now.nanoseconds - sent)) }
    }

    // MARK: Timers

    /// When ``handleTimeout(now:)`` is next due.
    public var nextDeadline: Instant? {
        guard state != .closed else { return nil }
        // Without an array: the endpoint asks every association each round.
        let handshake = Self.earlier(t1, Self.earlier(t2, t5))
        return Self.earlier(Self.earlier(handshake, t3), Self.earlier(Self.earlier(delayedAck, heartbeatDue), reconfigTimer))
    }

    private static func earlier(_ a: Instant?, _ b: Instant?) -> Instant? {
        guard let a else { return b }
        guard let b else { return a }
        return min(a, b)
    }

    /// Whether ``nextPacket(now:)`` may have something to send: checked before a packet buffer
    /// is made, since the endpoint asks every association in turn.
    var mayHaveOutput: Bool {
        if !control.isEmpty || sackOwed { return true }
        guard state != .closed, state != .cookieWait, state != .cookieEchoed else { return false }
        return canSendNew || hasRetransmission || forwardTSNOwed
    }

    /// Runs the timers that expired.
    public func handleTimeout(now: Instant) {
        if let deadline = t1, deadline <= now, let chunk = handshakeChunk {
            t1Count += 1
            timeouts += 1
            guard t1Count <= configuration.maxInitRetransmits else { return close(.timedOut) }
            rto = clampRTO(2 * rto)
            control.append((chunk, state == .cookieWait ? 0 : peerTag))
            t1 = now + .nanoseconds(rto)
        }
        if let deadline = t5, deadline <= now {
            // §9.2: the shutdown took too long.
            return sendAbort(SCTPErrorCause(code: SCTPErrorCause.userInitiatedAbort, info: Array("shutdown guard timer".utf8)))
        }
        if let deadline = t2, deadline <= now {
            timeouts += 1
            guard countTimeout() else { return }
            control.append((state == .shutdownSent ? .shutdown(cumulativeTSN: receivedTSN) : .shutdownAck, peerTag))
            t2 = now + .nanoseconds(rto)
        }
        if let deadline = t3, deadline <= now {
            // §6.3.3: back off, collapse the window, resend everything outstanding.
            timeouts += 1
            t3 = nil
            guard countTimeout() else { return }
            let mtu = configuration.maxPacketSize
            ssthresh = max(cwnd / 2, 4 * mtu)
            cwnd = mtu
            partialBytesAcked = 0
            fastRecoveryExit = nil
            fastRetransmitOwed = false
            rttProbe = nil
            for index in outstanding.indices where !outstanding[index].gapAcked && !outstanding[index].abandoned {
                markForRetransmit(index, now: now)
            }
            // RFC 3758 §3.5 A5: the FORWARD TSN again, moved as far as it now goes.
            scheduleForwardTSN(now: now, repeating: true)
        }
        if let deadline = delayedAck, deadline <= now {
            delayedAck = nil
            sackOwed = true
        }
        if let deadline = reconfigTimer, deadline <= now, let request = reconfigInFlight {
            // §5.1.1: resend with back-off; an "In progress" request counts no error (§5.2.7 H2).
            if reconfigInProgress {
                rto = clampRTO(2 * rto)
            } else {
                timeouts += 1
                guard countTimeout() else { return }
            }
            control.append((request.chunk, peerTag))
            reconfigTimer = now + .nanoseconds(rto)
        }
        if let deadline = heartbeatDue, deadline <= now {
            if heartbeatNonce != nil, outstanding.isEmpty {
                // The last one went unanswered.
                timeouts += 1
                guard countTimeout() else { return }
            }
            // Only an idle path is probed (§8.3); with data out, T3 watches the peer.
            if outstanding.isEmpty, state == .established || state == .shutdownPending { sendHeartbeat(now: now) }
            heartbeatDue = nil
            scheduleHeartbeat(now: now)
        }
    }

    /// Counts a timeout against Association.Max.Retrans and doubles the RTO (§6.3.3 E2, §8.1).
    /// Returns false if that closed the association.
    private func countTimeout() -> Bool {
        errorCount += 1
        rto = clampRTO(2 * rto)
        if errorCount > configuration.maxRetransmits {
            close(.timedOut)
            return false
        }
        return true
    }

    // MARK: Transmitting

    /// The next packet to send now, or `nil` when windows, timers or an empty queue say wait.
    func nextPacket(now: Instant) -> [UInt8]? {
        if lifetimesUnstamped { stampLifetimes(now: now) }
        guard mayHaveOutput else { return nil }
        let limit = configuration.maxPacketSize - (auth == nil ? 0 : Self.authChunkSize)
        var writer = ByteWriter(capacity: configuration.maxPacketSize)
        let tag = control.first?.tag ?? peerTag
        writer.writeUInt16(localPort)
        writer.writeUInt16(peerPort)
        writer.writeUInt32(tag)
        writer.writeUInt32(0)
        var chunks = 0
        while let next = control.first, next.tag == tag {
            let start = writer.count
            next.chunk.encode(into: &writer)
            if chunks > 0, writer.count > limit {
                writer.bytes.removeSubrange(start...)
                break
            }
            control.removeFirst()
            chunks += 1
            // INIT is alone in its packet (§6.10); ABORT and the shutdown's end carry no DATA.
            switch next.chunk {
            case .initiation, .abort, .shutdownComplete: return seal(writer, authenticate: !(next.chunk.type == SCTPChunkType.initiation || next.chunk.type == SCTPChunkType.shutdownComplete))
            default: break
            }
        }
        // SACK and DATA go with the peer's tag, after the control chunks.
        guard control.isEmpty, tag == peerTag, state != .closed, state != .cookieWait else {
            return chunks > 0 ? seal(writer, authenticate: tag != 0) : nil
        }
        let sendsData = state != .cookieEchoed && state != .shutdownAckSent && state != .shutdownSent
        let dataWaits = sendsData && (hasRetransmission || canSendNew)
        if sackOwed || (dataWaits && (delayedAck != nil || packetsUnacked > 0)) {
            makeSack().encode(into: &writer)
            chunks += 1
        }
        if sendsData {
            chunks += writeForwardTSN(into: &writer, limit: limit, now: now)
            chunks += writeRetransmissions(into: &writer, limit: limit, now: now)
            chunks += writeNewData(into: &writer, limit: limit, now: now)
        }
        return chunks > 0 ? seal(writer, authenticate: true) : nil
    }

    /// The packet with its checksum; with an AUTH chunk first when the peer asked for one of
    /// its chunks to be authenticated (RFC 4895 §6.2: it then covers all of them).
    private func seal(_ writer: ByteWriter, authenticate: Bool) -> [UInt8] {
        var bytes = writer.bytes
        if authenticate, let auth, Self.chunkTypes(bytes).contains(where: auth.peerRequires) {
            let length = SCTPAuthentication.hmacLength(auth.sendHMAC)!
            var chunk = ByteWriter(capacity: 8 + length)
            SCTPChunk.auth(keyID: auth.activeKey, hmacID: auth.sendHMAC, hmac: Array(repeating: 0, count: length)).encode(into: &chunk)
            bytes.insert(contentsOf: chunk.bytes, at: SCTPPacket.headerSize)
            auth.seal(&bytes, authAt: SCTPPacket.headerSize)
        }
        SCTPPacket.seal(&bytes)
        return bytes
    }

    /// The chunk types of a packet we wrote.
    private static func chunkTypes(_ bytes: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var offset = SCTPPacket.headerSize
        while offset + 4 <= bytes.count {
            types.append(bytes[offset])
            offset += (Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3]) + 3) & ~3
        }
        return types
    }

    private var hasRetransmission: Bool { !outstanding.isEmpty && outstanding.contains { $0.retransmit } }

    private var canSendNew: Bool {
        guard let next = queue.first else { return false }
        // §6.1 A (the zero-window probe: one chunk when nothing is in flight) and B.
        return flightSize == 0 || (flightSize < cwnd && peerWindow >= next.payload.count)
    }

    private func writeRetransmissions(into writer: inout ByteWriter, limit: Int, now: Instant) -> Int {
        var written = 0
        for index in outstanding.indices where outstanding[index].retransmit {
            // RFC 3758 §4.1 TR4: one whose lifetime is over is abandoned instead (its FORWARD
            // TSN goes in the next packet).
            if peerSupportsPartialReliability, let deadline = outstanding[index].fragment.deadline, deadline <= now {
                abandonMessage(at: index, now: now)
                continue
            }
            guard fastRetransmitOwed || flightSize < cwnd || flightSize == 0 else { break }
            let size = dataHeaderSize + outstanding[index].fragment.payload.count
            guard writer.count + size <= limit else { break }
            writeData(outstanding[index].tsn, outstanding[index].fragment, into: &writer)
            outstanding[index].retransmit = false
            outstanding[index].inFlight = true
            outstanding[index].transmissions += 1
            outstanding[index].missIndications = 0
            outstanding[index].sentAt = now
            flightSize += outstanding[index].fragment.payload.count
            retransmittedChunks += 1
            written += 1
        }
        if written > 0 {
            fastRetransmitOwed = false
            if t3 == nil { t3 = now + .nanoseconds(rto) }
        }
        return written
    }

    private func writeNewData(into writer: inout ByteWriter, limit: Int, now: Instant) -> Int {
        var written = 0
        var dropped = false
        while let next = queue.first {
            if let deadline = next.deadline, deadline <= now, peerSupportsPartialReliability {
                // RFC 3758 §4.1 TR3: expired before its TSN: dropped, no FORWARD TSN needed. A
                // message partly sent is abandoned whole (TR4, §3.5 A3), unless all that was
                // sent of it is acknowledged: the peer holds its start, so it is finished.
                if next.beginning {
                    dropQueuedMessage(next)
                    dropped = true
                    continue
                }
                if let sent = outstanding.lastIndex(where: { $0.fragment.message == next.message }) {
                    abandonMessage(at: sent, now: now)
                    dropped = true
                    continue
                }
            }
            guard canSendNew else { break }
            guard writer.count + dataHeaderSize + next.payload.count <= limit else { break }
            var fragment = queue.removeFirst()
            assignSequence(&fragment)
            let tsn = nextTSN
            nextTSN &+= 1
            writeData(tsn, fragment, into: &writer)
            outstanding.append(Outstanding(tsn: tsn, fragment: fragment, sentAt: now, transmissions: 1, inFlight: true))
            flightSize += fragment.payload.count
            peerWindow = max(0, peerWindow - fragment.payload.count)
            if rttProbe == nil { rttProbe = (tsn, now) }
            if t3 == nil { t3 = now + .nanoseconds(rto) }
            written += 1
        }
        if written > 0 {
            queue.packetDone()
            scheduleHeartbeat(now: now)
        }
        if written > 0 || dropped, !resetQueue.isEmpty { startReconfigIfReady(now: now) }
        return written
    }

    /// The SSN or Message Identifier, when the fragment gets its TSN (TR3). A stream has one
    /// message in progress at a time (DATA: one in all), so a message's later fragments take
    /// the number its first took.
    private func assignSequence(_ fragment: inout Fragment) {
        let stream = Int(fragment.stream)
        if peerSupportsMessageInterleaving && fragment.unordered {
            if fragment.beginning { nextUnorderedMID[stream] &+= 1 }
            fragment.sequence = nextUnorderedMID[stream] &- 1
        } else if !fragment.unordered {
            if fragment.beginning { nextSequence[stream] &+= 1 }
            fragment.sequence = nextSequence[stream] &- 1
        }
    }

    // MARK: Abandoning (RFC 3758 §3.5, §4.1)

    /// Gives the lifetime of messages sent without a time its start.
    private func stampLifetimes(now: Instant) {
        lifetimesUnstamped = false
        queue.updateAll { fragment in
            if fragment.deadline == nil, let lifetime = fragment.lifetime { fragment.deadline = now + lifetime }
        }
    }

    /// Whether a sent chunk's message is to be abandoned rather than sent again: its lifetime
    /// is over or it has had its retransmissions. Never when the peer lacks PR-SCTP.
    private func mayAbandon(_ fragment: Fragment, transmissions: Int, now: Instant) -> Bool {
        guard peerSupportsPartialReliability else { return false }
        if let deadline = fragment.deadline, deadline <= now { return true }
        if let limit = fragment.maxRetransmissions, transmissions > limit { return true }
        return false
    }

    /// Drops a message none of which has a TSN.
    private func dropQueuedMessage(_ first: Fragment) {
        for fragment in queue.removeMessage(first.message, stream: first.stream) { bufferedBytes -= fragment.payload.count }
        abandonedMessages += 1
    }

    /// §3.5 A2, A3: the message of `outstanding[index]` is abandoned whole: its chunks count
    /// as acknowledged for us (out of the flight and the send buffer, their payload released),
    /// and a FORWARD TSN will skip them. (With I-DATA its chunks need not be adjacent.)
    private func abandonMessage(at index: Int, now: Instant) {
        let message = outstanding[index].fragment.message
        let stream = outstanding[index].fragment.stream
        for chunk in outstanding.indices where outstanding[chunk].fragment.message == message && !outstanding[chunk].abandoned {
            let size = outstanding[chunk].fragment.payload.count
            if outstanding[chunk].inFlight { flightSize -= size }
            bufferedBytes -= size
            outstanding[chunk].inFlight = false
            outstanding[chunk].retransmit = false
            outstanding[chunk].abandoned = true
            outstanding[chunk].fragment.payload = []
            if rttProbe?.tsn == outstanding[chunk].tsn { rttProbe = nil }
        }
        // Its fragments not sent yet take their TSNs now, abandoned unsent: the peer may hold
        // every fragment sent, and only a cumulative TSN it cannot reach without our FORWARD
        // TSN makes it drop them (and skip the SSN).
        for var fragment in queue.removeMessage(message, stream: stream) {
            bufferedBytes -= fragment.payload.count
            fragment.payload = []
            assignSequence(&fragment)
            outstanding.append(Outstanding(
                tsn: nextTSN, fragment: fragment, sentAt: now, transmissions: 0, inFlight: false, abandoned: true))
            nextTSN &+= 1
        }
        abandonedMessages += 1
        scheduleForwardTSN(now: now, repeating: false)
    }

    /// §3.5 C1–C3: owes a FORWARD TSN when the Advanced.Peer.Ack.Point is ahead of the peer's
    /// cumulative TSN: at once if it moved, again after a round trip (or when `repeating`, on
    /// T3) if it did not.
    ///
    /// The ack point (A1) is not stored: it is the peer's cumulative TSN (C1) moved over the
    /// abandoned chunks after it (C2), computed by ``forwardTSN()``.
    private func scheduleForwardTSN(now: Instant, repeating: Bool) {
        guard peerSupportsPartialReliability else { return }
        let point = forwardTSN().newCumulativeTSN
        guard Serial.less(ackedTSN, point) else { return }
        if repeating { forwardTSNOwed = true }
        guard let last = lastForwardTSN, last.point == point else {
            forwardTSNOwed = true
            return
        }
        if now - last.sentAt >= .nanoseconds(srtt ?? rto) { forwardTSNOwed = true }
    }

    /// The FORWARD TSN for the abandoned chunks after the peer's cumulative TSN (C2, C4): the
    /// highest SSN skipped on each ordered stream — with I-DATA an I-FORWARD-TSN with the
    /// highest Message Identifier skipped of each stream's ordered and unordered messages (RFC
    /// 8260 §2.3.1); fewer chunks when the streams would not fit a packet.
    private func forwardTSN() -> (newCumulativeTSN: UInt32, chunk: SCTPChunk) {
        let interleaving = peerSupportsMessageInterleaving
        let maxStreams = (configuration.maxPacketSize - SCTPPacket.headerSize - Self.authChunkSize - 8) / (interleaving ? 8 : 4)
        var skipped: [PartialKey: UInt32] = [:]  // stream and kind; the message ID zeroed
        var point = ackedTSN
        for chunk in outstanding {
            guard chunk.abandoned else { break }
            if interleaving || !chunk.fragment.unordered {
                let key = PartialKey(stream: chunk.fragment.stream, unordered: chunk.fragment.unordered, messageID: 0)
                if skipped[key] == nil, skipped.count == maxStreams { break }
                skipped[key] = chunk.fragment.sequence  // ascending for each key
            }
            point = chunk.tsn
        }
        let keys = skipped.keys.sorted { ($0.stream, $0.unordered ? 1 : 0) < ($1.stream, $1.unordered ? 1 : 0) }
        if interleaving {
            let streams = keys.map { SCTPIForwardTSNStream(stream: $0.stream, unordered: $0.unordered, messageID: skipped[$0]!) }
            return (point, .iForwardTSN(newCumulativeTSN: point, streams: streams))
        }
        let streams = keys.map { SCTPForwardTSNStream(stream: $0.stream, ssn: UInt16(truncatingIfNeeded: skipped[$0]!)) }
        return (point, .forwardTSN(newCumulativeTSN: point, streams: streams))
    }

    /// The owed FORWARD TSN, if it fits; C5: T3 runs while one is out.
    private func writeForwardTSN(into writer: inout ByteWriter, limit: Int, now: Instant) -> Int {
        guard forwardTSNOwed else { return 0 }
        let (point, chunk) = forwardTSN()
        guard Serial.less(ackedTSN, point) else {
            forwardTSNOwed = false
            return 0
        }
        let start = writer.count
        chunk.encode(into: &writer)
        guard writer.count <= limit else {
            writer.bytes.removeSubrange(start...)
            return 0
        }
        forwardTSNOwed = false
        lastForwardTSN = (point, now)
        if t3 == nil { t3 = now + .nanoseconds(rto) }
        return 1
    }

    /// A DATA chunk, or with I-DATA negotiated an I-DATA chunk (RFC 8260 §2.1: the first
    /// fragment carries the PPID, the others their FSN).
    private func writeData(_ tsn: UInt32, _ fragment: Fragment, into writer: inout ByteWriter) {
        let interleaving = peerSupportsMessageInterleaving
        let length = dataHeaderSize + fragment.payload.count
        writer.writeUInt8(interleaving ? SCTPChunkType.iData : SCTPChunkType.data)
        writer.writeUInt8((fragment.unordered ? 4 : 0) | (fragment.beginning ? 2 : 0) | (fragment.ending ? 1 : 0))
        writer.writeUInt16(UInt16(length))
        writer.writeUInt32(tsn)
        writer.writeUInt16(fragment.stream)
        if interleaving {
            writer.writeUInt16(0)
            writer.writeUInt32(fragment.sequence)
            writer.writeUInt32(fragment.beginning ? fragment.ppid : fragment.fsn)
        } else {
            writer.writeUInt16(UInt16(truncatingIfNeeded: fragment.sequence))
            writer.writeUInt32(fragment.ppid)
        }
        writer.writeBytes(fragment.payload)
        writer.writeZeros((4 - length % 4) % 4)
    }

    // MARK: Closing

    private func sendAbort(_ cause: SCTPErrorCause) {
        control.removeAll()
        control.append((.abort(tagReflected: false, causes: [cause]), peerTag))
        close(.aborted(cause))
    }

    private func close(_ reason: SCTPCloseReason) {
        guard state != .closed else { return }
        state = .closed
        closeReason = reason
        t1 = nil
        t2 = nil
        t3 = nil
        t5 = nil
        delayedAck = nil
        heartbeatDue = nil
        reconfigTimer = nil
        reconfigInFlight = nil
        deferredReset = nil
        forwardTSNOwed = false
        queue.removeAll()
        outstanding.removeAll()
        fragments.removeAll()
        partials.removeAll()
        waiting.removeAll()
        bufferedBytes = 0
        flightSize = 0
        events.append(.closed(reason))
    }
}

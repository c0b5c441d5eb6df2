import QuiverCore
import QuiverTLS

/// The state of one packet number space (RFC 9000 §12.3): received packet numbers to
/// acknowledge, the next packet number, the CRYPTO stream of its encryption level and the
/// packet keys. 0-RTT and 1-RTT share the Application Data space; their keys live in
/// ``ApplicationKeys`` and ``QUICConnection``.
struct PacketSpaceState {
    /// Received packets and the ACK to send.
    var ack: AckTracker
    /// The next packet number to send; packet numbers never repeat (§12.3).
    var nextPacketNumber: UInt64 = 0
    /// Handshake bytes to send at this level (CRYPTO frames, §19.6).
    var cryptoSend = SendBuffer()
    /// Handshake bytes received at this level, reassembled.
    var cryptoReceive: ReceiveBuffer
    /// Initial / Handshake keys (1-RTT keys are in ``ApplicationKeys``): out of line, as the
    /// Application Data space, kept in every connection, never has them.
    @OutOfLine var readKey: PacketKey?
    @OutOfLine var writeKey: PacketKey?
    /// Keys discarded (RFC 9001 §4.9): nothing more is sent or accepted in this space.
    var isDiscarded = false
    /// Ack-eliciting probe packets to send now (PTO, RFC 9002 §6.2.4).
    var probesDue = 0

    /// Whether packets can be sent in this space now: it has a write key and was not
    /// discarded.
    var canSend: Bool {
        guard !isDiscarded, case .some = writeKey else { return false }
        return true
    }

    /// How far ahead of the reading position CRYPTO data may reach before the connection
    /// closes with CRYPTO_BUFFER_EXCEEDED (RFC 9000 §7.5: at least 4096 bytes).
    static let cryptoBufferLimit: UInt64 = 64 << 10

    init(space: PacketNumberSpace, maxAckDelay: Duration) {
        ack = AckTracker(space: space, maxAckDelay: maxAckDelay)
        cryptoReceive = ReceiveBuffer(maxOffset: Self.cryptoBufferLimit, overflowCode: .cryptoBufferExceeded)
    }

    /// Takes the contiguous CRYPTO bytes received so far.
    mutating func readCrypto() -> [UInt8] {
        let bytes = cryptoReceive.read(maxBytes: cryptoReceive.readableBytes)
        cryptoReceive.maxOffset = cryptoReceive.readOffset + Self.cryptoBufferLimit
        return bytes
    }
}

/// The 1-RTT packet keys and the key update state (RFC 9001 §6).
///
/// Header protection keys never change; the AEAD keys of phase n+1 derive from phase n with
/// the "quic ku" label. After we initiate or accept an update the previous read key stays
/// usable for packets that were delayed, until three PTOs pass (§6.5).
struct ApplicationKeys {
    var read: PacketKey
    var write: PacketKey
    /// The read key of the next phase, computed in advance so that a peer-initiated update is
    /// recognised by trial decryption with no timing signal (§6.3). The next write key is
    /// derived only when the phase advances: sending reveals the phase anyway, and an idle
    /// connection keeps one AEAD context fewer.
    var nextRead: PacketKey
    /// The current key phase bit.
    var phase = false
    /// The previous phase's read key, while it may still be needed.
    var previousRead: PacketKey?
    /// When ``previousRead`` is dropped.
    var previousReadExpiry: Instant?
    /// The smallest packet number received in the current phase, once one is.
    var firstReceivedInPhase: UInt64?
    /// The first packet number we sent in the current phase.
    var firstSentInPhase: UInt64?
    /// Whether the peer acknowledged a packet we sent in the current phase.
    var isCurrentPhaseAcknowledged = false
    /// Packets we sent in the current phase (for the update interval and AEAD limits).
    var packetsSentInPhase: UInt64 = 0
    /// The number of key updates so far.
    var updates = 0
    /// Packets we may send in one phase before updating keys: the configured interval, within
    /// the AEAD's confidentiality limit (RFC 9001 §6.6).
    let updateThreshold: UInt64
    /// Packets that failed authentication, in every phase: past the AEAD's integrity limit,
    /// forgeries could succeed, and the connection ends (RFC 9001 §6.6).
    var authenticationFailures: UInt64 = 0

    init(read: PacketKey, write: PacketKey, updateThreshold: UInt64) {
        self.read = read
        self.write = write
        self.updateThreshold = updateThreshold
        nextRead = read.nextPhase()
    }

    /// Moves to the next phase (§6.1, §6.2): new keys both ways, the old read key kept until
    /// three PTOs after the first packet of the new phase arrives (§6.5; see
    /// ``noteReceived(packetNumber:now:previousKeyLifetime:)``).
    // The three below are mutating so that a connection calls them in place through its
    // optional `appKeys` (`appKeys?.noteSent(_:)`): a read of a field through the optional
    // copies the whole keys out first (their contexts retained and released), per packet.

    /// Counts a 1-RTT packet sent in this phase.
    mutating func noteSent(_ packetNumber: UInt64) {
        packetsSentInPhase += 1
        if firstSentInPhase == nil { firstSentInPhase = packetNumber }
    }

    /// Notes an acknowledged 1-RTT packet: one sent in this phase makes a further key update
    /// possible (RFC 9001 §6.1).
    mutating func noteAcknowledged(_ packetNumber: UInt64) {
        if let first = firstSentInPhase, packetNumber >= first { isCurrentPhaseAcknowledged = true }
    }

    /// Whether this phase has sent ``updateThreshold`` packets or more: time for a key update.
    /// (Mutating only so that the optional stored property is read in place, not copied.)
    mutating func isUpdateDue() -> Bool { packetsSentInPhase >= updateThreshold }

    mutating func advance() {
        previousRead = read
        previousReadExpiry = nil
        read = nextRead
        write = write.nextPhase()
        nextRead = read.nextPhase()
        phase.toggle()
        firstReceivedInPhase = nil
        firstSentInPhase = nil
        isCurrentPhaseAcknowledged = false
        packetsSentInPhase = 0
        updates += 1
    }

    /// Records a packet decrypted in the current phase; the first one starts the countdown
    /// to dropping the previous phase's key. The lifetime is evaluated only then: computing it
    /// (three PTOs, from the recovery state) for every packet received cost 3 % of a
    /// downloading client's instructions.
    mutating func noteReceived(packetNumber: UInt64, now: Instant, previousKeyLifetime: @autoclosure () -> Duration) {
        if firstReceivedInPhase == nil, previousRead != nil { previousReadExpiry = now + previousKeyLifetime() }
        firstReceivedInPhase = min(firstReceivedInPhase ?? packetNumber, packetNumber)
    }

    /// Picks the key for a packet with `keyPhase` and `packetNumber` (§6.3, §6.5): the
    /// current key for the current phase; for the other phase, the previous key for packets
    /// older than the current phase's first, else the next key (a peer-initiated update).
    func candidate(keyPhase: Bool, packetNumber: UInt64) -> (key: PacketKey, isNext: Bool)? {
        if keyPhase == phase { return (read, false) }
        if let previous = previousRead, firstReceivedInPhase.map({ packetNumber < $0 }) ?? true {
            return (previous, false)
        }
        return (nextRead, true)
    }
}

extension Optional<ApplicationKeys> {
    /// Whether the 1-RTT keys are installed, asked through an exclusive access: `appKeys != nil`
    /// on the connection's property copies the keys out first (their contexts retained and
    /// released), several times per packet.
    mutating func isInstalled() -> Bool {
        if case .some = self { return true }
        return false
    }
}

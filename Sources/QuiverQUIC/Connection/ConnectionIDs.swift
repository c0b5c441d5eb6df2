import QuiverCore

/// The connection IDs of a connection (RFC 9000 §5.1): those we issued for the peer to use,
/// and those the peer issued for us to use, with sequence numbers, stateless reset tokens and
/// retirement.
struct ConnectionIDs {
    /// The most connection IDs we keep issued at once (the peer's active_connection_id_limit
    /// may lower it, never below 2, RFC 9000 §18.2): one in use and three spare for migration
    /// and NAT rebinding, as quic-go does. Every one costs an endpoint routing entry, a
    /// stateless reset token and a NEW_CONNECTION_ID frame, per connection.
    static let maximumIssued = 4

    struct Issued {
        var sequence: UInt64
        var id: ConnectionID
        var resetToken: [UInt8]
    }

    /// Ours, not retired: any of them routes to this connection.
    private(set) var local: [Issued] = []
    private var nextLocalSequence: UInt64 = 0
    /// NEW_CONNECTION_ID frames to send (by sequence number; the content is in ``local``).
    var pendingNewConnectionIDs: [UInt64] = []

    /// The peer's, not retired, by sequence number; `active` is the one we send with.
    private(set) var peer: [Issued] = []
    private(set) var activePeerSequence: UInt64 = 0
    /// RETIRE_CONNECTION_ID frames to send.
    var pendingRetirements: [UInt64] = []
    /// The largest Retire Prior To the peer sent.
    private var peerRetirePriorTo: UInt64 = 0
    /// Sequence numbers of peer IDs we retired (so that repeated NEW_CONNECTION_ID frames for
    /// them are ignored, §19.15); bounded by the peer's sequence numbers.
    private var retiredPeerBelow: UInt64 = 0

    /// The peer's current connection ID (our packets' Destination Connection ID).
    var activePeer: ConnectionID { peer.first(where: { $0.sequence == activePeerSequence })?.id ?? .empty }

    /// Registers a connection ID of ours; returns its record.
    @discardableResult
    mutating func issueLocal(_ id: ConnectionID, resetKey: [UInt8], announce: Bool) -> Issued {
        let issued = Issued(sequence: nextLocalSequence, id: id,
                            resetToken: StatelessReset.token(key: resetKey, connectionID: id.bytes))
        nextLocalSequence += 1
        local.append(issued)
        if announce { pendingNewConnectionIDs.append(issued.sequence) }
        return issued
    }

    func localID(sequence: UInt64) -> Issued? { local.first { $0.sequence == sequence } }

    func isLocal(_ id: ConnectionID) -> Bool { local.contains { $0.id == id } }

    /// The peer retired one of ours (RETIRE_CONNECTION_ID, §19.16).
    ///
    /// - Parameter packetDestination: the DCID of the packet carrying the frame, which must
    ///   not be the retired one.
    /// - Returns: the retired ID, if it was active.
    mutating func retireLocal(sequence: UInt64, packetDestination: ConnectionID) throws(QUICError) -> ConnectionID? {
        guard sequence < nextLocalSequence else {
            throw QUICError(.protocolViolation, "RETIRE_CONNECTION_ID for sequence \(sequence) never issued",
                            frameType: FrameType.retireConnectionID.rawValue)
        }
        guard let index = local.firstIndex(where: { $0.sequence == sequence }) else { return nil }
        guard local[index].id != packetDestination else {
            throw QUICError(.protocolViolation, "RETIRE_CONNECTION_ID retires the packet's own connection ID",
                            frameType: FrameType.retireConnectionID.rawValue)
        }
        pendingNewConnectionIDs.removeAll { $0 == sequence }
        return local.remove(at: index).id
    }

    /// Sets the peer's first connection ID (from its first Initial, or a Retry).
    mutating func setInitialPeer(_ id: ConnectionID, resetToken: [UInt8]? = nil) {
        peer = [Issued(sequence: 0, id: id, resetToken: resetToken ?? [])]
        activePeerSequence = 0
    }

    /// The server's stateless_reset_token transport parameter belongs to sequence 0.
    mutating func setPeerResetToken(_ token: [UInt8]) {
        if let index = peer.firstIndex(where: { $0.sequence == 0 }) { peer[index].resetToken = token }
    }

    /// The stateless reset tokens that end this connection: only that of the connection ID
    /// in use, never of IDs unused or retired (§10.3.1).
    var peerResetTokens: [[UInt8]] {
        peer.filter { $0.sequence == activePeerSequence && $0.resetToken.count == 16 }.map(\.resetToken)
    }

    /// A NEW_CONNECTION_ID frame (§19.15, §5.1.2).
    ///
    /// - Parameter limit: our active_connection_id_limit.
    mutating func addPeer(sequence: UInt64, retirePriorTo: UInt64, id: [UInt8], resetToken: [UInt8], limit: UInt64) throws(QUICError) {
        let frameType = FrameType.newConnectionID.rawValue
        guard activePeer.count > 0 else {
            throw QUICError(.protocolViolation, "NEW_CONNECTION_ID while using zero-length connection IDs", frameType: frameType)
        }
        if let existing = peer.first(where: { $0.sequence == sequence }) {
            guard existing.id.bytes == id, existing.resetToken == resetToken else {
                throw QUICError(.protocolViolation, "NEW_CONNECTION_ID reuses sequence \(sequence) for another ID", frameType: frameType)
            }
        } else if peer.contains(where: { $0.id.bytes == id }) {
            throw QUICError(.protocolViolation, "NEW_CONNECTION_ID repeats an ID under a new sequence", frameType: frameType)
        } else if sequence >= retiredPeerBelow && sequence >= peerRetirePriorTo {
            peer.append(Issued(sequence: sequence, id: ConnectionID(unchecked: id), resetToken: resetToken))
        } else {
            // Already retired: retire it again (§19.15).
            try queueRetirement(sequence, limit: limit)
        }
        if retirePriorTo > peerRetirePriorTo {
            peerRetirePriorTo = retirePriorTo
            for issued in peer where issued.sequence < retirePriorTo { try queueRetirement(issued.sequence, limit: limit) }
            peer.removeAll { $0.sequence < retirePriorTo }
            retiredPeerBelow = max(retiredPeerBelow, retirePriorTo)
            if activePeerSequence < retirePriorTo, let next = peer.min(by: { $0.sequence < $1.sequence }) {
                activePeerSequence = next.sequence
            }
        }
        guard UInt64(peer.count) <= limit else {
            throw QUICError(.connectionIDLimitError, "the peer issued more than \(limit) connection IDs", frameType: frameType)
        }
    }

    /// Queues RETIRE_CONNECTION_ID once per sequence; a peer that makes us owe more than
    /// twice its limit of retirements is refused (§5.1.2).
    private mutating func queueRetirement(_ sequence: UInt64, limit: UInt64) throws(QUICError) {
        guard !pendingRetirements.contains(sequence) else { return }
        guard UInt64(pendingRetirements.count) < 2 * max(limit, 2) else {
            throw QUICError(.connectionIDLimitError, "too many connection IDs to retire",
                            frameType: FrameType.newConnectionID.rawValue)
        }
        pendingRetirements.append(sequence)
    }

    /// Switches to an unused peer connection ID, retiring the current one (§9.5); false when
    /// none is available.
    mutating func rotatePeer() -> Bool {
        guard let next = peer.filter({ $0.sequence > activePeerSequence }).min(by: { $0.sequence < $1.sequence }) else { return false }
        let old = activePeerSequence
        peer.removeAll { $0.sequence == old }
        pendingRetirements.append(old)
        activePeerSequence = next.sequence
        return true
    }
}

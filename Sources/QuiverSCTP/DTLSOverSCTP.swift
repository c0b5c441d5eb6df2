public import QuiverCore
public import QuiverTLS

/// DTLS over SCTP (RFC 6083), sans-I/O: DTLS 1.2 on one SCTP association, each DTLS record one
/// SCTP user message, and the association's SCTP-AUTH keyed from the DTLS exporter once the
/// handshake is done (§4.7: label `EXPORTER_DTLS_OVER_SCTP`, 64 bytes, the key's identifier the
/// epoch, 1).
///
/// **Streams (§4.4).** Handshake, ChangeCipherSpec and alert records go on stream 0, ordered.
/// Application data goes on the stream the application names (``write(_:stream:unordered:)``)
/// and is read with it (``read(now:)``): stream *n* of the association carries the protected
/// messages of stream *n*. Records of different streams overtake each other, so DTLS replay
/// detection is off, as §3.3 requires (SCTP delivers each message once).
///
/// The association must have SCTP-AUTH configured with DATA among the chunks to authenticate
/// (§4.4), and the peer must offer it: ``start(now:)`` refuses otherwise. Feed the association
/// through its endpoint as usual and call ``process(now:)`` after each round: it runs the
/// handshake, the DTLS timers and the key change. Records are taken from the association only
/// as the application reads, so the association's receive window still holds a peer back.
///
/// Not built yet: DTLS 1.3 (the bis draft), re-keying at later epochs (renegotiation is not
/// supported by QuiverTLS), and turning the DTLS retransmission timer off (over SCTP a flight
/// is never lost, so it only resends one whose answer takes over a second; DTLS drops the
/// duplicates).
public final class DTLSOverSCTP {
    public let association: SCTPAssociation
    public let dtls: DTLSConnection
    /// Records DTLS made on its own (handshake flights, alerts) that the association's send
    /// buffer did not take yet; they go on stream 0.
    private var waiting: [[UInt8]] = []
    /// Application messages decrypted and not read yet (the rest of one record's worth).
    private var plaintext: [SCTPMessage] = []
    private var keyInstalled = false
    private var keyInUse = false

    public static let exporterLabel = "EXPORTER_DTLS_OVER_SCTP"
    /// The shared key identifier of the exporter key: the epoch of the first application keys.
    public static let keyID: UInt16 = 1
    /// Room kept for a record's header, explicit nonce and tag when checking the send buffer.
    static let recordOverhead = 64
    /// The largest message ``write(_:stream:unordered:)`` takes: one record's plaintext.
    public static let maxMessageSize = DTLSConnection.maxMessageSize

    /// Why DTLS over SCTP cannot run on an association.
    public struct Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `dtls` is a client (not started yet) or a server connection; records of up to 2^14 bytes
    /// go in one message, so DTLS fragments nothing (§3.2).
    public init(association: SCTPAssociation, dtls: DTLSConnection) {
        self.association = association
        self.dtls = dtls
        dtls.mtu = 1 << 14
        dtls.replayDetection = false
    }

    /// Checks the association (established, authenticating DATA) and starts a client's
    /// handshake.
    public func start(now: Instant) throws(Refusal) {
        guard association.state == .established else { throw Refusal(description: "the association is not established") }
        guard association.isAuthenticating, association.authenticatesData else {
            throw Refusal(description: "RFC 6083 §4.4 needs SCTP-AUTH with DATA authenticated, on both sides")
        }
        // A server connection's start does nothing: it waits for the ClientHello.
        do throws(TLSError) { try dtls.start(now: now) } catch { throw Refusal(description: "\(error)") }
    }

    /// Runs the handshake (the records that arrived for it), the DTLS timers, the key change,
    /// and sends what DTLS made.
    public func process(now: Instant) throws(TLSError) {
        while !dtls.isHandshakeComplete, dtls.error == nil, let message = association.read() {
            try receive(message, now: now)
        }
        if let deadline = dtls.nextTimeout, deadline <= now { try dtls.handleTimeout(now: now) }
        if dtls.isHandshakeComplete, !keyInstalled,
           let key = dtls.handshake.exportKeyingMaterial(label: Self.exporterLabel, context: [], length: 64) {
            association.setSharedKey(key, id: Self.keyID)
            keyInstalled = true
        }
        // Sending with the new key waits until the peer has it: the server of a full handshake
        // completes when it sends its Finished, which must reach a client that has no new key
        // yet; it switches when the client's first packet under the new key verified. The
        // client completes on the server's Finished, when both have the key.
        if keyInstalled, !keyInUse, dtls.handshake.role == .client || association.peerKeyInUse == Self.keyID {
            association.useSharedKey(id: Self.keyID)
            keyInUse = true
        }
        for datagram in dtls.takeDatagrams() { waiting += Self.records(datagram) }
        sendWaiting()
    }

    /// The next application message and its stream, or `nil` when none has arrived.
    public func read(now: Instant) throws(TLSError) -> SCTPMessage? {
        while plaintext.isEmpty, dtls.error == nil, let message = association.read() {
            try receive(message, now: now)
        }
        return plaintext.isEmpty ? nil : plaintext.removeFirst()
    }

    /// Sends `bytes` as one record, one message on `stream`.
    /// - Throws: `.wouldBlock` while the association's send buffer has no room for the record
    ///   (or before the handshake completed), `.messageTooLarge` over ``maxMessageSize``,
    ///   `.notWritable` once DTLS or the association closed, and the association's own errors.
    public func write(_ bytes: [UInt8], stream: UInt16, unordered: Bool = false) throws(SCTPError) {
        guard !bytes.isEmpty else { throw .emptyMessage }
        guard bytes.count <= Self.maxMessageSize else { throw .messageTooLarge(bytes.count, limit: Self.maxMessageSize) }
        guard dtls.error == nil, !dtls.isLocallyClosed else { throw .notWritable }
        guard isEstablished, waiting.isEmpty else { throw .wouldBlock }
        let room = association.writableBytes
        guard room >= bytes.count + Self.recordOverhead || room == association.configuration.sendBufferSize else {
            throw room == 0 && association.state != .established ? .notWritable : .wouldBlock
        }
        do throws(TLSError) { try dtls.write(bytes) } catch { throw .notWritable }
        for record in dtls.takeDatagrams().flatMap(Self.records) {
            // Application data on its stream; anything else DTLS adds belongs on stream 0.
            if record.first == 23 {
                try association.send(record, stream: stream, unordered: unordered)
            } else {
                waiting.append(record)
            }
        }
        sendWaiting()
    }

    /// Queues our `close_notify` (on stream 0); nothing is written after it.
    public func close() {
        dtls.close()
        for datagram in dtls.takeDatagrams() { waiting += Self.records(datagram) }
        sendWaiting()
    }

    /// After ``process(now:)``, ``read(now:)`` or ``start(now:)`` failed: queues the fatal alert
    /// DTLS made for the failure, if it made one (on stream 0, as all alerts). Returns whether it
    /// did: the association should then end with a SHUTDOWN, which delivers the alert first,
    /// rather than an ABORT, which would discard it, so the peer learns why.
    public func sendFailureAlert() -> Bool {
        let datagrams = dtls.takeDatagrams()
        for datagram in datagrams { waiting += Self.records(datagram) }
        sendWaiting()
        return !datagrams.isEmpty && association.state == .established
    }

    /// When ``process(now:)`` must run for the DTLS timers.
    public var nextDeadline: Instant? { dtls.nextTimeout }

    /// Whether the DTLS handshake is done and its exporter key installed (our packets use it once
    /// the peer has shown it has it too).
    public var isEstablished: Bool { dtls.isHandshakeComplete && keyInstalled }

    private func receive(_ message: SCTPMessage, now: Instant) throws(TLSError) {
        try dtls.receive(message.bytes, now: now)
        while let bytes = dtls.read() {
            plaintext.append(SCTPMessage(stream: message.stream, ppid: message.ppid, unordered: message.unordered, bytes: bytes))
        }
    }

    private func sendWaiting() {
        while let record = waiting.first {
            do throws(SCTPError) { try association.send(record, stream: 0) } catch {
                if error == .wouldBlock { break }
                waiting.removeAll()  // the association is closing: nothing carries them any more
                break
            }
            waiting.removeFirst()
        }
    }

    /// The DTLS records of a datagram (13-byte DTLS 1.2 headers with their lengths).
    static func records(_ datagram: [UInt8]) -> [[UInt8]] {
        var records: [[UInt8]] = []
        var offset = 0
        while datagram.count - offset >= 13 {
            let length = Int(datagram[offset + 11]) << 8 | Int(datagram[offset + 12])
            let end = min(datagram.count, offset + 13 + length)
            records.append(Array(datagram[offset..<end]))
            offset = end
        }
        return records
    }
}

public import QuiverCore
public import QuiverTLS

/// DTLS over SCTP (RFC 6083), sans-I/O: DTLS 1.2 on one SCTP association, each DTLS record one
/// SCTP user message on stream 0 (ordered, so DTLS's replay window never sees records out of
/// order), and the association's SCTP-AUTH keyed from the DTLS exporter once the handshake is
/// done (§4.7: label `EXPORTER_DTLS_OVER_SCTP`, 64 bytes, the key's identifier the epoch, 1).
///
/// The association must have SCTP-AUTH configured with DATA among the chunks to authenticate
/// (§4.4), and the peer must offer it: ``start()`` refuses otherwise. Feed the association
/// through its ``SCTPEndpoint`` as usual and call ``process(now:)`` after each round; it moves
/// records both ways and runs the DTLS timers.
///
/// Not built yet: DTLS 1.3 (the bis draft), application data on other streams, re-keying at
/// later epochs, and turning the DTLS retransmission timer off (over SCTP a flight is never
/// lost, so it only resends one whose answer takes over a second; DTLS drops the duplicates).
public final class DTLSOverSCTP {
    public let association: SCTPAssociation
    public let dtls: DTLSConnection
    /// Records DTLS made that the association's send buffer did not take yet.
    private var waiting: [[UInt8]] = []
    private var keyInstalled = false
    private var keyInUse = false

    public static let exporterLabel = "EXPORTER_DTLS_OVER_SCTP"
    /// The shared key identifier of the exporter key: the epoch of the first application keys.
    public static let keyID: UInt16 = 1

    /// Why DTLS over SCTP cannot run on an association.
    public struct Refusal: Error, Hashable, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// `dtls` is a client (not started yet) or a server connection; records of up to 2^14 bytes
    /// go in one message, so DTLS fragments nothing.
    public init(association: SCTPAssociation, dtls: DTLSConnection) {
        self.association = association
        self.dtls = dtls
        dtls.mtu = 1 << 14
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

    /// Moves what arrived to DTLS and what DTLS made to the association; installs the exporter
    /// key once the handshake is complete.
    public func process(now: Instant) throws(TLSError) {
        while let message = association.read() {
            try dtls.receive(message.bytes, now: now)
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
        while let record = waiting.first {
            do throws(SCTPError) { try association.send(record, stream: 0) } catch {
                if error == .wouldBlock { break }
                waiting.removeAll()  // the association is closing: nothing carries them any more
                break
            }
            waiting.removeFirst()
        }
    }

    /// When ``process(now:)`` must run for the DTLS timers.
    public var nextDeadline: Instant? { dtls.nextTimeout }

    /// Whether the DTLS handshake is done and its exporter key installed (our packets use it once
    /// the peer has shown it has it too).
    public var isEstablished: Bool { dtls.isHandshakeComplete && keyInstalled }

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

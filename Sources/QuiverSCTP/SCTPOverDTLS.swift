public import QuiverCore
public import QuiverTLS

/// SCTP over one DTLS connection (RFC 8261, as WebRTC's data channels run it), sans-I/O: each
/// SCTP packet is the payload of one DTLS application-data record, so DTLS protects the whole
/// packet and the SCTP layer sees one peer. Datagrams go in and out as for the
/// ``DTLSConnection`` alone; the SCTP associations are the ``sctp`` endpoint's.
///
/// The SCTP roles are independent of DTLS's: either side may send the INIT (``connect(port:now:)``).
/// An INIT made before the DTLS handshake completed waits for it. RFC 8261 §5 has SCTP size its
/// packets to fit a record in the path MTU, which ``defaultMaxPacketSize`` does for 1 280-byte
/// IPv6 paths. Many peers on one socket: ``SCTPOverDTLSEndpoint``.
public final class SCTPOverDTLS {
    public let dtls: DTLSConnection
    public let sctp: SCTPEndpoint
    /// The address the SCTP endpoint sees its one peer at.
    public let peer: SocketAddress
    /// Packets SCTP made before DTLS could carry them.
    private var waiting: [[UInt8]] = []
    /// Datagrams DTLS made that ``nextDatagram(now:)`` did not hand out yet.
    private var outgoing: [[UInt8]] = []

    /// 1 280 minus IPv6 and UDP headers (48) and a DTLS 1.2 AES-GCM record's 29 bytes of
    /// overhead, rounded down to a multiple of four.
    public static let defaultMaxPacketSize = 1200

    /// The address the SCTP endpoint sees its one peer at when none is given (DTLS is the path).
    public static let defaultPeer = SocketAddress(host: "::1", port: 0)!

    /// `dtls` is a started client or a server connection; `configuration`'s `port` is the SCTP
    /// port (WebRTC: 5000); `peer` is the address SCTP sees (the DTLS peer's, for logs).
    public init(dtls: DTLSConnection, configuration: SCTPEndpoint.Configuration, peer: SocketAddress = SCTPOverDTLS.defaultPeer) {
        self.dtls = dtls
        self.peer = peer
        sctp = SCTPEndpoint(configuration: configuration)
    }

    /// Starts an association with the peer's SCTP `port`.
    public func connect(port: UInt16, now: Instant) -> SCTPAssociation {
        sctp.connect(to: peer, port: port, now: now)
    }

    /// A datagram from the peer: DTLS takes it, and each application record's payload goes to
    /// SCTP as a packet.
    public func receive(_ datagram: [UInt8], now: Instant) throws(TLSError) {
        try dtls.receive(datagram, now: now)
        deliverRecords(now: now)
    }

    /// Hands the application records DTLS decrypted to SCTP, as packets (for a connection
    /// whose datagrams something else feeds, a `DTLSEndpoint`).
    public func deliverRecords(now: Instant) {
        while let packet = dtls.read() { sctp.receive(packet, from: peer, now: now) }
    }

    /// Runs both layers' timers.
    public func handleTimeout(now: Instant) throws(TLSError) {
        if let deadline = dtls.nextTimeout, deadline <= now { try dtls.handleTimeout(now: now) }
        if let deadline = sctp.nextDeadline, deadline <= now { sctp.handleTimeout(now: now) }
    }

    /// When ``handleTimeout(now:)`` is next due.
    public var nextDeadline: Instant? {
        [dtls.nextTimeout, sctp.nextDeadline].compactMap { $0 }.min()
    }

    /// The next datagram to send now, or `nil`: DTLS's own first, then one SCTP packet in a
    /// record. A failed or closed DTLS connection carries no more packets (they are dropped).
    public func nextDatagram(now: Instant) -> [UInt8]? {
        if !waiting.isEmpty { flushWaiting() }
        if outgoing.isEmpty { outgoing = dtls.takeDatagrams() }
        while outgoing.isEmpty, let (packet, _) = sctp.nextDatagram(now: now) {
            waiting.append(packet)
            flushWaiting()
            outgoing = dtls.takeDatagrams()
        }
        return outgoing.isEmpty ? nil : outgoing.removeFirst()
    }

    /// Hands the waiting packets to DTLS once its handshake is complete (a packet DTLS refuses —
    /// the connection failed meanwhile — is dropped, as is everything once it closed).
    private func flushWaiting() {
        if dtls.isLocallyClosed || dtls.error != nil {
            waiting.removeAll()  // nothing carries them any more
        } else if dtls.isHandshakeComplete {
            defer { waiting.removeAll() }
            for packet in waiting { try? dtls.write(packet) }
        }
    }
}

public import QuiverCore

/// SCTP on one datagram socket (sans-I/O): the associations of one local SCTP port with any
/// number of peers, as `QUICEndpoint` and `DTLSEndpoint` are for their protocols.
///
/// The lower layer carries one SCTP packet per datagram: UDP encapsulation (RFC 6951, where
/// the UDP and SCTP ports differ), SCTP packets as plain UDP payloads (usrsctp's AF_CONN
/// style, pion), or DTLS records (RFC 8261). Datagrams go in with their source and come out
/// with their destination; the endpoint checks checksums, routes packets by verification tag,
/// answers INIT statelessly with a cookie (RFC 9260 §5.1.3) and out-of-the-blue packets as
/// §8.4 says, and creates an association only for a valid COOKIE ECHO.
public final class SCTPEndpoint {
    public struct Configuration: Sendable {
        /// The SCTP port (the common header's), not the UDP port under it.
        public var port: UInt16
        /// Settings of every association.
        public var association = SCTPConfiguration()
        /// Whether peers may set up associations (a server); a client-only endpoint answers
        /// INIT with ABORT.
        public var acceptsAssociations = true
        /// Associations at once; a COOKIE ECHO beyond it is answered with ABORT (Out of
        /// Resource).
        public var maxAssociations = 4096
        /// Cookies; endpoints that share a jar's secret accept each other's.
        public var cookies = SCTPCookieJar()

        public init(port: UInt16) { self.port = port }
    }

    /// Why datagrams were dropped, for statistics and tests.
    public struct Statistics: Sendable, Hashable {
        public var badChecksum = 0
        public var malformed = 0
        public var outOfTheBlue = 0
        public var invalidCookies = 0
        public var staleCookies = 0
        public var refused = 0
    }

    public let configuration: Configuration
    public private(set) var statistics = Statistics()

    private struct PeerKey: Hashable {
        var address: SocketAddress
        var port: UInt16
    }

    private var byTag: [UInt32: SCTPAssociation] = [:]
    private var byPeer: [PeerKey: SCTPAssociation] = [:]
    /// Associations in creation order (sending takes turns over them).
    private var all: [SCTPAssociation] = []
    private var turn = 0
    private var accepted: [SCTPAssociation] = []
    /// Associations that received a packet or ran a timer since ``takeActiveAssociations()``.
    private var active: [ObjectIdentifier: SCTPAssociation] = [:]
    /// Answers to packets of no association (INIT ACK, ABORT …), bounded.
    private var replies: [(bytes: [UInt8], to: SocketAddress)] = []
    private static let maxReplies = 64

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    /// Associations open or still sending their last packets.
    public var associationCount: Int { all.count }

    /// The associations open or still sending their last packets, in creation order.
    public var associations: [SCTPAssociation] { all }

    /// Starts an association with the SCTP endpoint on `port` at `address` (the INIT goes out
    /// with the next datagrams).
    public func connect(to address: SocketAddress, port: UInt16, now: Instant) -> SCTPAssociation {
        let association = SCTPAssociation(
            connecting: configuration.association, localPort: configuration.port, peerPort: port, peerAddress: address,
            localTag: freshTag(), now: now)
        add(association)
        return association
    }

    /// The next association a peer set up, in the order their handshakes completed.
    public func accept() -> SCTPAssociation? { accepted.isEmpty ? nil : accepted.removeFirst() }

    /// The associations that received packets or ran timers since the last call: a driver
    /// looks at their events without scanning every association.
    public func takeActiveAssociations() -> [SCTPAssociation] {
        defer { active.removeAll(keepingCapacity: true) }
        return Array(active.values)
    }

    // MARK: Receiving

    /// Handles one datagram from `address`.
    public func receive(_ datagram: [UInt8], from address: SocketAddress, now: Instant) {
        guard SCTPPacket.checksumIsValid(datagram) else {
            statistics.badChecksum += 1
            return
        }
        let packet: SCTPPacket
        do {
            packet = try SCTPPacket.parse(datagram)
        } catch {
            statistics.malformed += 1
            return
        }
        guard packet.destinationPort == configuration.port, let first = packet.chunks.first else {
            statistics.malformed += 1
            return
        }
        if packet.verificationTag == 0 {
            // §8.5.1 A: only an INIT, alone, carries tag 0.
            guard case .initiation(let initiation) = first, packet.chunks.count == 1 else {
                statistics.malformed += 1
                return
            }
            return answerInit(initiation, packet: packet, from: address, now: now)
        }
        if case .cookieEcho(let cookie) = first {
            return receiveCookieEcho(cookie, packet: packet, datagram: datagram, from: address, now: now)
        }
        // RFC 4895 §6.3: an AUTH may come first, the COOKIE ECHO second.
        if case .auth = first, packet.chunks.count > 1, case .cookieEcho(let cookie) = packet.chunks[1] {
            return receiveCookieEcho(cookie, packet: packet, datagram: datagram, from: address, now: now)
        }
        if let association = byTag[packet.verificationTag], association.peerPort == packet.sourcePort {
            let previous = association.peerAddress
            association.receive(packet, raw: datagram, from: address, now: now)
            active[ObjectIdentifier(association)] = association
            if association.peerAddress != previous {
                // RFC 6951 §5.4: replies follow the peer's latest address (a NAT rebinding).
                let old = PeerKey(address: previous, port: association.peerPort)
                if byPeer[old] === association { byPeer[old] = nil }
                byPeer[PeerKey(address: association.peerAddress, port: association.peerPort)] = association
            }
            return
        }
        // ABORT and SHUTDOWN COMPLETE may carry the peer's tag with the T bit (§8.5.1 B, C).
        if let association = byPeer[PeerKey(address: address, port: packet.sourcePort)],
           packet.verificationTag == association.peerTag {
            association.receive(packet, raw: datagram, from: address, now: now)
            active[ObjectIdentifier(association)] = association
            return
        }
        answerOutOfTheBlue(packet, from: address)
    }

    /// RFC 9260 §8.4.
    private func answerOutOfTheBlue(_ packet: SCTPPacket, from address: SocketAddress) {
        statistics.outOfTheBlue += 1
        var reply: SCTPChunk = .abort(tagReflected: true, causes: [])
        for chunk in packet.chunks {
            switch chunk {
            case .abort, .shutdownComplete, .cookieAck:
                return
            case .error(let causes) where causes.contains { $0.code == SCTPErrorCause.staleCookie }:
                return
            case .shutdownAck:
                reply = .shutdownComplete(tagReflected: true)
            default:
                continue
            }
        }
        queueReply(reply, tag: packet.verificationTag, to: address, port: packet.sourcePort)
    }

    /// RFC 9260 §5.1 B: an INIT ACK with a cookie, nothing kept.
    private func answerInit(_ initiation: SCTPInitChunk, packet: SCTPPacket, from address: SocketAddress, now: Instant) {
        guard initiation.initiateTag != 0 else { return statistics.malformed += 1 }
        let association = configuration.association
        guard configuration.acceptsAssociations else {
            statistics.refused += 1
            return queueReply(.abort(tagReflected: false, causes: []), tag: initiation.initiateTag, to: address, port: packet.sourcePort)
        }
        guard initiation.outboundStreams != 0, initiation.inboundStreams != 0 else {
            // §3.3.2: no streams is an invalid mandatory parameter.
            return queueReply(
                .abort(tagReflected: false, causes: [SCTPErrorCause(code: SCTPErrorCause.invalidMandatoryParameter)]),
                tag: initiation.initiateTag, to: address, port: packet.sourcePort)
        }
        // §3.2.1. The reports are bounded: an INIT ACK must not amplify an INIT (it goes to an
        // address nobody proved) beyond its cookie.
        var unrecognized: [SCTPParameter] = []
        var reported = 0
        parameters: for parameter in initiation.parameters {
            switch parameter.type {
            case SCTPParameter.ipv4Address, SCTPParameter.ipv6Address, SCTPParameter.cookiePreservative,
                 SCTPParameter.supportedAddressTypes, SCTPParameter.supportedExtensions:
                continue
            case SCTPParameter.forwardTSNSupported where association.partialReliability:
                continue
            case let type where association.authentication != nil
                && [SCTPParameter.random, SCTPParameter.chunkList, SCTPParameter.hmacAlgorithms].contains(type):
                continue
            default:
                let action = parameter.unrecognizedAction
                if action.report, reported + 8 + parameter.value.count <= SCTPAssociation.maxReportBytes {
                    unrecognized.append(parameter)
                    reported += 8 + parameter.value.count
                }
                if !action.skip { break parameters }
            }
        }
        // §5.2.1: our own INIT to this peer is out; the answer carries its tag and TSN (and its
        // RANDOM, RFC 4895 §6.1).
        let colliding = byPeer[PeerKey(address: address, port: packet.sourcePort)]?.collisionParameters
        let localTag = colliding?.tag ?? freshTag()
        let initialTSN = colliding?.initialTSN ?? SCTPAssociation.randomWord(association.random)
        // SCTP-AUTH when both offer it; a RANDOM that is not 32 bytes is refused (§6.1).
        var localAuth: SCTPAuthParameters?
        var peerAuth: SCTPAuthParameters?
        if let settings = association.authentication {
            do throws(SCTPCloseReason) {
                peerAuth = try SCTPAuthParameters.from(initiation.parameters)
            } catch {
                guard case .aborted(let cause) = error else { return }
                return queueReply(.abort(tagReflected: false, causes: [cause]), tag: initiation.initiateTag, to: address, port: packet.sourcePort)
            }
            localAuth = colliding?.auth ?? SCTPAssociation.authParameters(settings, random: association.random)
        }
        let interleaving = SCTPAssociation.offersMessageInterleaving(association, auth: association.authentication)
            && SCTPAssociation.listsMessageInterleaving(initiation.parameters)
        let cookie = configuration.cookies.make(SCTPCookieState(
            localTag: localTag, peerTag: initiation.initiateTag, localInitialTSN: initialTSN,
            peerInitialTSN: initiation.initialTSN, peerWindow: initiation.advertisedWindow,
            localOutboundStreams: min(association.outboundStreams, initiation.inboundStreams),
            localInboundStreams: min(association.inboundStreams, initiation.outboundStreams),
            localPort: configuration.port, peerPort: packet.sourcePort, created: now.nanoseconds,
            streamReset: association.streamReset && SCTPAssociation.listsStreamReset(initiation.parameters),
            partialReliability: association.partialReliability && SCTPAssociation.offersPartialReliability(initiation.parameters)
                && (!interleaving || SCTPAssociation.listsIForwardTSN(initiation.parameters)),
            messageInterleaving: interleaving,
            localRandom: peerAuth == nil ? [] : localAuth?.random ?? [], peerAuth: localAuth == nil ? [] : peerAuth?.keyVector ?? []))
        var parameters = [SCTPParameter(type: SCTPParameter.stateCookie, value: cookie)]
        parameters += SCTPAssociation.initParameters(association, auth: localAuth)
        // §3.3.3: each parameter to report in an Unrecognized Parameter of its own.
        parameters += unrecognized.map { SCTPParameter(type: SCTPParameter.unrecognizedParameter, value: $0.encoded) }
        let ack = SCTPInitChunk(
            initiateTag: localTag, advertisedWindow: UInt32(association.receiveBufferSize),
            outboundStreams: association.outboundStreams, inboundStreams: association.inboundStreams,
            initialTSN: initialTSN, parameters: parameters)
        queueReply(.initiationAck(ack), tag: initiation.initiateTag, to: address, port: packet.sourcePort)
    }

    /// RFC 9260 §5.1 D and §5.2.4.
    private func receiveCookieEcho(_ cookie: [UInt8], packet: SCTPPacket, datagram: [UInt8], from address: SocketAddress, now: Instant) {
        let state: SCTPCookieState
        do {
            state = try configuration.cookies.open(cookie, now: now)
        } catch .stale(let microseconds, let peerTag) {
            statistics.staleCookies += 1
            let cause = SCTPErrorCause(code: SCTPErrorCause.staleCookie, info: [
                UInt8(microseconds >> 24), UInt8((microseconds >> 16) & 0xFF), UInt8((microseconds >> 8) & 0xFF),
                UInt8(microseconds & 0xFF),
            ])
            return queueReply(.error(causes: [cause]), tag: peerTag, to: address, port: packet.sourcePort)
        } catch {
            statistics.invalidCookies += 1
            return
        }
        guard packet.verificationTag == state.localTag, packet.sourcePort == state.peerPort else {
            statistics.invalidCookies += 1
            return
        }
        if let existing = byTag[state.localTag] {
            // Our INIT and the peer's crossed (§5.2.4 B), or the same cookie came again (its
            // COOKIE ACK was lost, §5.2.4 D): the association answers.
            existing.acceptCollidingCookie(state, now: now)
            existing.receive(packet, raw: datagram, from: address, now: now)
            active[ObjectIdentifier(existing)] = existing
            return
        }
        let key = PeerKey(address: address, port: packet.sourcePort)
        if let previous = byPeer[key] {
            // The peer restarted (a new INIT from the same address and port): the old
            // association is gone on its side.
            previous.abort(reason: "the peer restarted", now: now)
            active[ObjectIdentifier(previous)] = previous
        }
        // A restart replaces an association: only a new one counts against the bound.
        guard byPeer[key] != nil || all.count < configuration.maxAssociations else {
            statistics.refused += 1
            return queueReply(
                .abort(tagReflected: false, causes: [SCTPErrorCause(code: SCTPErrorCause.outOfResource)]),
                tag: state.peerTag, to: address, port: packet.sourcePort)
        }
        let association = SCTPAssociation(cookie: state, configuration: configuration.association, peerAddress: address, now: now)
        add(association)
        accepted.append(association)
        active[ObjectIdentifier(association)] = association
        // Chunks bundled after the COOKIE ECHO (DATA, §6.10).
        if packet.chunks.count > 1 { association.receive(packet, raw: datagram, from: address, now: now) }
    }

    private func queueReply(_ chunk: SCTPChunk, tag: UInt32, to address: SocketAddress, port: UInt16) {
        guard replies.count < Self.maxReplies else { return }
        let packet = SCTPPacket(sourcePort: configuration.port, destinationPort: port, verificationTag: tag, chunks: [chunk])
        replies.append((packet.encoded(), address))
    }

    private func add(_ association: SCTPAssociation) {
        byTag[association.localTag] = association
        byPeer[PeerKey(address: association.peerAddress, port: association.peerPort)] = association
        all.append(association)
    }

    /// A nonzero tag no association of ours uses (RFC 9260 §5.3.1: random, unpredictable).
    private func freshTag() -> UInt32 {
        while true {
            let tag = SCTPAssociation.randomWord(configuration.association.random)
            if tag != 0, byTag[tag] == nil { return tag }
        }
    }

    // MARK: Sending

    /// The next datagram to send now and where to, or `nil` when nothing is due.
    public func nextDatagram(now: Instant) -> (bytes: [UInt8], to: SocketAddress)? {
        if !replies.isEmpty { return replies.removeFirst() }
        var checked = 0
        while checked < all.count {
            if turn >= all.count { turn = 0 }
            let association = all[turn]
            if let packet = association.nextPacket(now: now) {
                turn += 1  // the next association's turn: one busy association cannot starve the rest
                return (packet, association.peerAddress)
            }
            if association.state == .closed {
                remove(at: turn)
            } else {
                turn += 1
            }
            checked += 1
        }
        return nil
    }

    private func remove(at index: Int) {
        let association = all.remove(at: index)
        if byTag[association.localTag] === association { byTag[association.localTag] = nil }
        let key = PeerKey(address: association.peerAddress, port: association.peerPort)
        if byPeer[key] === association { byPeer[key] = nil }
    }

    /// When ``handleTimeout(now:)`` is next due.
    public var nextDeadline: Instant? {
        all.lazy.compactMap(\.nextDeadline).min()
    }

    /// Runs the associations' expired timers.
    public func handleTimeout(now: Instant) {
        for association in all {
            if let deadline = association.nextDeadline, deadline <= now {
                association.handleTimeout(now: now)
                active[ObjectIdentifier(association)] = association
            }
        }
    }
}

/// What carries SCTP associations over datagrams for a driver: ``SCTPEndpoint`` itself (SCTP
/// packets as datagrams), or ``SCTPOverDTLSEndpoint`` (each packet in a DTLS record). A driver
/// feeds every datagram in, sends every datagram out, runs the timer, and takes the
/// associations peers set up and the ones that changed.
public protocol SCTPDatagramEndpoint: AnyObject {
    /// Handles one datagram from `address`.
    func receive(_ datagram: [UInt8], from address: SocketAddress, now: Instant)
    /// The next datagram to send now and where to, or `nil` when nothing is due.
    func nextDatagram(now: Instant) -> (bytes: [UInt8], to: SocketAddress)?
    /// When ``handleTimeout(now:)`` is next due.
    var nextDeadline: Instant? { get }
    /// Runs the expired timers.
    func handleTimeout(now: Instant)
    /// The next association a peer set up.
    func accept() -> SCTPAssociation?
    /// The associations that received packets or ran timers since the last call.
    func takeActiveAssociations() -> [SCTPAssociation]
    /// Associations open or still sending their last packets.
    var associationCount: Int { get }
    /// Why datagrams were dropped.
    var statistics: SCTPEndpoint.Statistics { get }
}

extension SCTPEndpoint: SCTPDatagramEndpoint {}

extension SCTPEndpoint.Statistics {
    mutating func add(_ other: Self) {
        badChecksum += other.badChecksum
        malformed += other.malformed
        outOfTheBlue += other.outOfTheBlue
        invalidCookies += other.invalidCookies
        staleCookies += other.staleCookies
        refused += other.refused
    }
}

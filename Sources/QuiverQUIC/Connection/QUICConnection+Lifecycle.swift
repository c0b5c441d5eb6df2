public import QuiverCore
import QuiverTLS

extension QUICConnection {
    // MARK: - Keys and TLS

    func installInitialKeys(version: QUICVersion) {
        let keys = PacketKey.initial(version: version, destinationConnectionID: initialSecretConnectionID.bytes)
        initialKeys[version] = role == .client ? (keys.server, keys.client) : (keys.client, keys.server)
        spaces[0].readKey = initialKeys[version]?.read
        spaces[0].writeKey = initialKeys[version]?.write
    }

    /// Applies what the TLS handshake asks for (RFC 9001 §4).
    func pumpTLS() throws(QUICError) {
        while let event = tls.nextEvent() {
            switch event {
            case .send(let level, let bytes):
                spaces[space(for: level).rawValue].cryptoSend.write(bytes)
                if role == .server, level == .initial { initialCryptoSent += bytes }
            case .installReadSecret(let level, let secret):
                switch level {
                case .initial: break
                case .earlyData: zeroRTTRead = PacketKey(secret: secret, version: originalVersion)
                case .handshake: spaces[1].readKey = PacketKey(secret: secret, version: version)
                case .application:
                    appReadSecret = secret
                    makeApplicationKeys()
                }
            case .installWriteSecret(let level, let secret):
                switch level {
                case .initial: break
                case .earlyData: zeroRTTWrite = PacketKey(secret: secret, version: originalVersion)
                case .handshake:
                    spaces[1].writeKey = PacketKey(secret: secret, version: version)
                    recovery.hasHandshakeKeys = true
                case .application:
                    appWriteSecret = secret
                    makeApplicationKeys()
                }
            case .handshakeComplete:
                try onHandshakeComplete()
            case .sessionTicket(let ticket):
                if let parameters = peerTransportParameters {
                    emit(.resumptionTicket(QUICResumptionTicket(ticket: ticket, transportParameters: parameters, version: version)))
                }
            case .ticketIssued:
                break
            case .earlyData(let accepted):
                if role == .client {
                    emit(.earlyDataAccepted(accepted))
                    if !accepted { rejectEarlyData() }
                }
            case .changeWriteCipherSpec, .expectChangeCipherSpec, .warningAlert:
                // TLS 1.2 only, which a QUIC handshake never negotiates (RFC 9001 §4.2).
                throw QUICError(.internalError, "TLS 1.2 event in a QUIC handshake")
            }
        }
        if role == .client, !serverParametersValidated, let bytes = tls.peerTransportParameters {
            serverParametersValidated = true
            try acceptServerTransportParameters(bytes)
        }
        if let parameters = deferredPeerParameters, zeroRTTWrite == nil {
            deferredPeerParameters = nil
            applyPeerTransportParameters(parameters)
        }
    }

    private func space(for level: EncryptionLevel) -> PacketNumberSpace {
        switch level {
        case .initial: .initial
        case .handshake: .handshake
        case .earlyData, .application: .applicationData
        }
    }

    private func makeApplicationKeys() {
        guard appKeys == nil, let read = appReadSecret, let write = appWriteSecret else { return }
        appKeys = ApplicationKeys(read: PacketKey(secret: read, version: version), write: PacketKey(secret: write, version: version))
        // RFC 9001 §6.6: AES-GCM's confidentiality limit is 2^23 packets per key; update well before.
        let limit: UInt64 = read.suite == .chacha20Poly1305SHA256 ? 1 << 40 : 1 << 22
        keyUpdateThreshold = min(configuration.keyUpdateInterval ?? limit, limit)
        appReadSecret = nil
        appWriteSecret = nil
    }

    /// Client: the server refused 0-RTT. What 0-RTT packets carried is sent again in 1-RTT
    /// packets (RFC 9001 §4.6.2); they are not losses for congestion control.
    ///
    /// All stream state is reset (RFC 9001 §4.6.2): the streams are opened again, in order and
    /// with their data, once the server's new parameters allow; a stream beyond the new stream
    /// limit waits for MAX_STREAMS.
    private func rejectEarlyData() {
        earlyDataRejected = true
        zeroRTTWrite = nil
        recovery.discard(space: .applicationData)
        for id in streams.streamIDs where id.initiator == .client {
            guard let send = streams.sendStream(id)?.buffer else { continue }
            earlyStreamReplay.append((id, send.retainedBytes.bytes, send.isFinished))
        }
        streams = StreamManager(role: .client, localParameters: localParameters, peerParameters: TransportParameters(),
                                configuration: configuration.streamWindows)
        pendingControl.removeAll()
    }

    /// Opens again, with the same IDs, the streams refused 0-RTT carried.
    func replayEarlyStreams() {
        while let first = earlyStreamReplay.first, let id = streams.openStream(first.id.direction) {
            earlyStreamReplay.removeFirst()
            assert(id == first.id, "replayed streams keep their IDs")
            try? streams.write(first.bytes, to: id)
            if first.fin { try? streams.finish(id) }
        }
    }

    // MARK: - Transport parameters

    /// Server: validates the client's transport parameters (RFC 9000 §7.3, §18.2), chooses
    /// the version (RFC 9368 §6) and returns ours.
    func acceptClientTransportParameters(_ bytes: [UInt8]) throws(QUICError) -> [UInt8] {
        let parameters = try TransportParameters(decoding: bytes, sentBy: .client)
        guard parameters.initialSourceConnectionID == peerInitialSourceConnectionID else {
            throw QUICError(.transportParameterError, "initial_source_connection_id does not match the Initial packet")
        }
        var ours = localParameters
        if let info = parameters.versionInformation {
            guard info.chosenVersion == originalVersion.rawValue else {
                throw QUICError(.versionNegotiationError, "the client's chosen version differs from its Initial packets")
            }
            // Our most preferred version the client can use (v1 and v2 are compatible).
            let offered = Set(info.availableVersions)
            if let best = configuration.supportedVersions.first(where: { $0.isSupported && offered.contains($0.rawValue) }),
               best != version {
                version = best
                installInitialKeys(version: best)
                tls.issuedTicketContext = best.rawValue  // its tickets are the negotiated version's (RFC 9369 §5)
            }
        }
        if configuration.supportedVersions.count > 1 || parameters.versionInformation != nil {
            ours.versionInformation = .init(chosenVersion: version.rawValue,
                                            availableVersions: configuration.supportedVersions.map(\.rawValue))
        }
        applyPeerTransportParameters(parameters)
        return ours.encode()
    }

    /// Client: validates the server's transport parameters (RFC 9000 §7.3, RFC 9368 §4).
    private func acceptServerTransportParameters(_ bytes: [UInt8]) throws(QUICError) {
        let parameters = try TransportParameters(decoding: bytes, sentBy: .server)
        guard parameters.initialSourceConnectionID == peerInitialSourceConnectionID else {
            throw QUICError(.transportParameterError, "initial_source_connection_id does not match the server's packets")
        }
        guard parameters.originalDestinationConnectionID == originalDestinationConnectionID else {
            throw QUICError(.transportParameterError, "original_destination_connection_id does not match")
        }
        guard parameters.retrySourceConnectionID == retrySourceConnectionID else {
            throw QUICError(.transportParameterError, retrySourceConnectionID == nil
                            ? "retry_source_connection_id without a Retry" : "retry_source_connection_id does not match the Retry")
        }
        if let info = parameters.versionInformation, info.chosenVersion != version.rawValue {
            throw QUICError(.versionNegotiationError, "the server's chosen version is not the version in use")
        }
        if version != originalVersion, parameters.versionInformation == nil {
            throw QUICError(.versionNegotiationError, "version changed without version_information")
        }
        if let resumption, tls.earlyDataAccepted == true {
            // RFC 9000 §7.4.1: a server accepting 0-RTT must not reduce the remembered limits.
            let old = resumption.transportParameters
            guard parameters.initialMaxData >= old.initialMaxData,
                  parameters.initialMaxStreamDataBidiLocal >= old.initialMaxStreamDataBidiLocal,
                  parameters.initialMaxStreamDataBidiRemote >= old.initialMaxStreamDataBidiRemote,
                  parameters.initialMaxStreamDataUni >= old.initialMaxStreamDataUni,
                  parameters.initialMaxStreamsBidi >= old.initialMaxStreamsBidi,
                  parameters.initialMaxStreamsUni >= old.initialMaxStreamsUni,
                  parameters.activeConnectionIDLimit >= old.activeConnectionIDLimit,
                  (parameters.maxDatagramFrameSize ?? 0) >= (old.maxDatagramFrameSize ?? 0)
            else { throw QUICError(.protocolViolation, "0-RTT accepted with smaller limits than remembered") }
        }
        if let token = parameters.statelessResetToken { cids.setPeerResetToken(token) }
        if zeroRTTWrite != nil {
            deferredPeerParameters = parameters
        } else {
            applyPeerTransportParameters(parameters)
        }
    }

    private func applyPeerTransportParameters(_ parameters: TransportParameters) {
        peerTransportParameters = parameters
        qlog?.parametersSet(parameters, initiator: "remote")
        streams.updatePeerParameters(parameters)
        let local = configuration.idleTimeout > .zero ? configuration.idleTimeout : nil
        let peer = parameters.maxIdleTimeout > 0 ? Duration.milliseconds(Int64(min(parameters.maxIdleTimeout, 1 << 40))) : nil
        switch (local, peer) {
        case (let a?, let b?): idleTimeout = min(a, b)
        case (let a?, nil): idleTimeout = a
        case (nil, let b?): idleTimeout = b
        case (nil, nil): idleTimeout = nil
        }
        recovery.maxAckDelay = .milliseconds(Int64(parameters.maxAckDelay))
        datagramSizeChanged()
    }

    /// Tells congestion control and pacing the current datagram size limit.
    func datagramSizeChanged() {
        let size = datagramSizeLimit
        if size != congestion.maxDatagramSize {
            congestion.setMaxDatagramSize(size)
            pacer.setMaxDatagramSize(size)
        }
    }

    /// The payload room of a 1-RTT packet in a full datagram.
    var maxPayloadForShortPacket: Int { datagramSizeLimit - 1 - cids.activePeer.count - 4 - AEADKey.tagLength }

    /// The largest datagram we send now: what path MTU discovery proved, within
    /// ``datagramSizeCeiling``.
    package var datagramSizeLimit: Int {
        configuration.pathMTUDiscovery ? min(path.mtu, datagramSizeCeiling) : datagramSizeCeiling
    }

    /// The largest datagram we may ever send on this connection: our configured maximum
    /// within the peer's max_udp_payload_size.
    var datagramSizeCeiling: Int {
        // Long headers use a 2-byte Length field (RFC 9000 §16: up to 16383).
        max(1200, min(configuration.datagramSizeMaximum, peerMaxUDPPayloadSize, 16383))
    }

    // MARK: - Handshake progress

    private func onHandshakeComplete() throws(QUICError) {
        guard !handshakeCompleteReported else { return }
        handshakeCompleteReported = true
        state = .established
        if role == .client {
            zeroRTTWrite = nil
            guard peerTransportParameters != nil || tls.peerTransportParameters != nil else {
                throw QUICError(.transportParameterError, "no transport parameters from the server")
            }
        } else {
            // The server's handshake is confirmed when it completes (RFC 9001 §4.1.2).
            handshakeDonePending = true
            confirmHandshake()
        }
        emit(.handshakeCompleted)
    }

    /// The handshake is confirmed: Handshake keys are discarded (RFC 9001 §4.9.2), the
    /// Application Data PTO is armed, and we issue connection IDs.
    func confirmHandshake() {
        guard !isHandshakeConfirmed else { return }
        isHandshakeConfirmed = true
        recovery.confirmHandshake()
        discardSpace(.initial)
        discardSpace(.handshake)
        issueConnectionIDs()
    }

    func discardSpace(_ space: PacketNumberSpace) {
        let index = space.rawValue
        guard space != .applicationData, !spaces[index].isDiscarded else { return }
        spaces[index].isDiscarded = true
        spaces[index].readKey = nil
        spaces[index].writeKey = nil
        spaces[index].probesDue = 0
        if space == .initial {
            initialKeys.removeAll()
            initialCryptoSent = []
            initialCryptoRepeat = nil
        }
        recovery.discard(space: space)
    }

    /// Issues connection IDs up to the peer's active_connection_id_limit (at most 8).
    func issueConnectionIDs() {
        guard isHandshakeConfirmed || (role == .client && handshakeCompleteReported),
              localConnectionIDLength > 0, let limit = peerTransportParameters?.activeConnectionIDLimit else { return }
        var attempts = 0
        while cids.local.count < Int(min(limit, UInt64(ConnectionIDs.maximumIssued))), attempts < 32 {
            attempts += 1
            let id = configuration.makeConnectionID()
            guard !cids.isLocal(id) else { continue }
            let issued = cids.issueLocal(id, resetKey: configuration.statelessResetKey, announce: true)
            emit(.connectionIDIssued(id, resetToken: issued.resetToken))
        }
    }

    /// Starts a key update (RFC 9001 §6.1) when allowed: handshake confirmed, a packet of the
    /// current phase acknowledged, and a packet of the peer received in it.
    func initiateKeyUpdate() -> Bool {
        guard isHandshakeConfirmed, state == .established, var keys = appKeys,
              keys.isCurrentPhaseAcknowledged, keys.firstReceivedInPhase != nil || keys.updates == 0
        else { return false }
        keys.advance()
        appKeys = keys
        return true
    }

    // MARK: - Paths

    /// A non-probing packet arrived from a new address (RFC 9000 §9.3): the peer migrated or
    /// its NAT rebound. We follow it, validate the new path with PATH_CHALLENGE and respect
    /// the amplification limit there until it answers. We also move to another of the peer's
    /// connection IDs where it gave us one: a connection ID is not used towards two
    /// addresses (§9.5), so that the two paths cannot be linked.
    func migrate(to remote: SocketAddress, datagramSize: Int) {
        guard role == .server, isHandshakeConfirmed else { return }
        statistics.peerMigrations += 1
        if cids.activePeer.count > 0 { _ = cids.rotatePeer() }
        let portOnly = remote.addressBytes == path.remote.addressBytes
        var newPath = Path(remote: remote, isValidated: false, bytesReceived: datagramSize)
        var challenge = configuration.random.bytes(Frame.pathDataLength)
        if challenge.allSatisfy({ $0 == 0 }) { challenge[0] = 1 }
        newPath.challenge = challenge
        newPath.challengePending = true
        newPath.challengeDeadline = now + max(recovery.probeTimeout(for: .applicationData) * 3, .milliseconds(6 * Int64(configuration.initialRTT.nanosecondsClamped / 1_000_000)))
        if path.isValidated { previousPath = path }
        path = newPath
        spin = SpinBit(allowed: configuration.spinBit, random: configuration.random)  // a new path decides anew
        restartECNValidation()
        if !portOnly {
            // A new network: congestion and RTT state start over (RFC 9000 §9.4).
            congestion = congestion.startingOver(at: now)
            recovery.resetRTT(initialRTT: configuration.initialRTT)
        }
        datagramSizeChanged()  // the new path's MTU is not known yet
    }

    // MARK: - Closing

    /// Closes because of a protocol error we detected.
    func closeWithError(_ error: QUICError) {
        enterClosing(ConnectionClose(error), origin: .local)
    }

    func enterClosing(_ frame: ConnectionClose, origin: ConnectionCloseInfo.Origin) {
        guard state == .handshaking || state == .established else { return }
        let info = ConnectionCloseInfo(origin: origin, frame: frame)
        closeInfo = info
        closeFrame = frame
        state = .closing
        closeSendsPending = 1
        closeDeadline = now + recovery.probeTimeout(for: .applicationData) * 3
        emit(.closed(info))
    }

    func enterDraining(_ frame: ConnectionClose) {
        guard state == .handshaking || state == .established else { return }
        let info = ConnectionCloseInfo(origin: .peer, frame: frame)
        closeInfo = info
        state = .draining
        closeDeadline = now + recovery.probeTimeout(for: .applicationData) * 3
        emit(.closed(info))
    }

    // MARK: - Time

    func advanceClock(_ time: Instant) {
        if time > now { now = time }
    }

    /// When ``handleTimeout(at:)`` is next due; `nil` once the connection is closed.
    public var nextDeadline: Instant? {
        var deadline: Instant?
        func consider(_ time: Instant?) {
            if let time, deadline.map({ time < $0 }) ?? true { deadline = time }
        }
        switch state {
        case .closed:
            return nil
        case .closing, .draining:
            return closeDeadline
        case .handshaking, .established:
            break
        }
        consider(recovery.lossDetectionDeadline())
        consider(idleDeadline)
        // ACK deadlines count only where an ACK can be sent now: 0-RTT packets are
        // acknowledged in 1-RTT packets, which a server sends once it has both 1-RTT keys.
        // Nothing at all can be sent with less than 64 bytes of amplification budget: the
        // next datagram from the peer, not a timer, unblocks us.
        if path.amplificationBudget >= 64 {
            // By index: iterating `spaces` would copy each space's state.
            for index in spaces.indices where spaces[index].canSend { consider(spaces[index].ack.ackDeadline) }
            if appKeys.isInstalled() { consider(spaces[PacketNumberSpace.applicationData.rawValue].ack.ackDeadline) }
        }
        consider(appKeys?.previousReadExpiry)
        consider(zeroRTTReadExpiry)
        consider(pacingDeadline)
        consider(path.challengeDeadline)
        consider(keepAliveDeadline)
        return deadline
    }

    /// When a keep-alive PING is due (established connections only).
    var keepAliveDeadline: Instant? {
        guard let interval = configuration.keepAliveInterval, state == .established, interval > .zero else { return nil }
        return lastAckElicitingSent + interval
    }

    /// When the connection idles out: the negotiated idle timeout after the last packet
    /// received (or the first ack-eliciting one sent since), but at least three current PTOs
    /// (RFC 9000 §10.1). The PTO here is the period without backoff: with the backoff, every
    /// unanswered probe would move the deadline further out than it had waited, and a peer
    /// that vanished would never be declared gone (quinn and ngtcp2 count it the same way).
    var idleDeadline: Instant? {
        guard let idleTimeout else {
            // Before the peer's parameters, our own timeout bounds the handshake.
            return configuration.idleTimeout > .zero ? idleDeadlineBase + configuration.idleTimeout : nil
        }
        let probePeriod = recovery.rtt.probeTimeout(maxAckDelay: recovery.maxAckDelay)
        return idleDeadlineBase + max(idleTimeout, probePeriod.scaled(by: 3))
    }

    /// Handles the timers due at `now`: loss detection and PTO, idle timeout, the end of the
    /// closing or draining period, key discards. ACK deadlines are served by ``transmit(at:)``.
    public func handleTimeout(at now: Instant) {
        advanceClock(now)
        defer { qlog?.checkpoint() }
        switch state {
        case .closed:
            return
        case .closing, .draining:
            if let deadline = closeDeadline, deadline <= now { state = .closed }
            return
        case .handshaking, .established:
            break
        }
        if let deadline = idleDeadline, deadline <= now {
            let info = ConnectionCloseInfo(origin: .idleTimeout, frame: .transport(.noError, reason: "idle timeout"))
            closeInfo = info
            state = .closed
            emit(.closed(info))
            return
        }
        if let expiry = appKeys?.previousReadExpiry, expiry <= now {
            appKeys?.previousRead = nil
            appKeys?.previousReadExpiry = nil
        }
        if let expiry = zeroRTTReadExpiry, expiry <= now {
            zeroRTTRead = nil
            zeroRTTReadExpiry = nil
        }
        if let deadline = pacingDeadline, deadline <= now { pacingDeadline = nil }
        if let deadline = keepAliveDeadline, deadline <= now {
            // A PING (RFC 9000 §10.1.2); the probe machinery sends it even when the window is full.
            let index = PacketNumberSpace.applicationData.rawValue
            spaces[index].probesDue = max(spaces[index].probesDue, 1)
            lastAckElicitingSent = now
        }
        if let deadline = path.challengeDeadline, deadline <= now, !path.isValidated {
            // The new path did not answer (RFC 9000 §9.3.2): return to the last validated one,
            // or, without one, end silently (nothing may be sent to an unvalidated address).
            if let previous = previousPath {
                path = previous
                previousPath = nil
                restartECNValidation()
                datagramSizeChanged()
            } else {
                let info = ConnectionCloseInfo(origin: .local, frame: .transport(.noViablePath, reason: "path validation failed"))
                closeInfo = info
                state = .closed
                emit(.closed(info))
                return
            }
        }
        if let (deadline, _) = recovery.lossDetectionTimer, deadline <= now {
            switch recovery.onLossDetectionTimeout(now: now) {
            case .none:
                break
            case .lost(let loss):
                onPacketsLost(loss)
            case .probe(let space, let count, let antiDeadlock):
                statistics.ptoCount += 1
                onProbeTimeout(space: space, count: count, antiDeadlock: antiDeadlock)
            }
        }
    }

    /// A PTO fired (RFC 9002 §6.2.4): send probes. In the handshake spaces the unacknowledged
    /// CRYPTO data is sent again in them, which recovers a lost flight in one round trip; in
    /// the Application Data space everything outstanding is queued again (§6.2.4: "retransmit
    /// previously sent data"), lowest offsets first, so that probes repair the oldest hole even
    /// when the peer's acknowledgments are being lost; acknowledgments that arrive later cancel
    /// the rest.
    private func onProbeTimeout(space: PacketNumberSpace, count: Int, antiDeadlock: Bool) {
        var target = space
        if antiDeadlock, role == .client {
            // RFC 9002 §6.2.2.1: a Handshake probe once we have Handshake keys, else Initial.
            target = spaces[1].writeKey != nil ? .handshake : .initial
        }
        let index = target.rawValue
        guard !spaces[index].isDiscarded else { return }
        spaces[index].probesDue = max(spaces[index].probesDue, count)
        if target != .applicationData {
            for packet in recovery.sentPackets(in: target).outstandingPackets {
                for case .crypto(let offset, let length) in packet.frames {
                    spaces[index].cryptoSend.onLost(offset: offset, length: length)
                }
            }
            // The client also probes its Initial space while the server may lack its flight.
            if role == .client, target == .handshake, !spaces[0].isDiscarded, spaces[0].cryptoSend.unacknowledgedBytes > 0 {
                spaces[0].probesDue = max(spaces[0].probesDue, 1)
            }
        } else {
            for packet in recovery.sentPackets(in: target).outstandingPackets where packet.ackEliciting {
                requeue(packet.frames.filter { if case .ack = $0 { false } else { true } }, space: target)
            }
        }
    }
}

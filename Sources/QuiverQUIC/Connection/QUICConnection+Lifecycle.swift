import QuiverCore
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
                case .earlyData: early.read = PacketKey(secret: secret, version: originalVersion)
                case .handshake: spaces[1].readKey = PacketKey(secret: secret, version: version)
                case .application:
                    appReadSecret = secret
                    makeApplicationKeys()
                }
            case .installWriteSecret(let level, let secret):
                switch level {
                case .initial: break
                case .earlyData: early.write = PacketKey(secret: secret, version: originalVersion)
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
        if let parameters = early.deferredPeerParameters, early.write == nil {
            early.deferredPeerParameters = nil
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
        // RFC 9001 §6.6: AES-GCM's confidentiality limit is 2^23 packets per key; update well before.
        let limit: UInt64 = read.suite == .chacha20Poly1305SHA256 ? 1 << 40 : 1 << 22
        appKeys = ApplicationKeys(read: PacketKey(secret: read, version: version), write: PacketKey(secret: write, version: version),
                                  updateThreshold: min(configuration.keyUpdateInterval ?? limit, limit))
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
        early.rejected = true
        early.write = nil
        recovery.discard(space: .applicationData)
        for id in streams.streamIDs where id.initiator == .client {
            guard let send = streams.sendStream(id)?.buffer else { continue }
            early.streamReplay.append((id, send.retainedBytes.bytes, send.isFinished))
        }
        streams = StreamManager(role: .client, localParameters: localParameters, peerParameters: TransportParameters(),
                                configuration: configuration.streamWindows)
        pendingControl.removeAll()
    }

    /// Opens again, with the same IDs, the streams refused 0-RTT carried.
    func replayEarlyStreams() {
        while let first = early.streamReplay.first, let id = streams.openStream(first.id.direction) {
            early.streamReplay.removeFirst()
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
        ours.preferredAddress = offerPreferredAddress()
        return ours.encode()
    }

    /// Server: the preferred_address transport parameter (RFC 9000 §9.6.1, §18.2) for the
    /// configured ``QUICConfiguration/preferredAddresses``, with a new connection ID — sequence
    /// number 1 (§5.1.1), routed to this connection like the others — and its reset token;
    /// `nil` without addresses, or with zero-length connection IDs (which §18.2 forbids).
    private func offerPreferredAddress() -> TransportParameters.PreferredAddress? {
        let addresses = configuration.preferredAddresses
        guard !addresses.isEmpty, localConnectionIDLength > 0, cids.local.count == 1 else { return nil }
        var id = configuration.makeConnectionID()
        var attempts = 0
        while cids.isLocal(id) {
            attempts += 1
            guard attempts < 32 else { return nil }
            id = configuration.makeConnectionID()
        }
        let issued = cids.issueLocal(id, resetKey: configuration.statelessResetKey, announce: false)
        emit(.connectionIDIssued(id, resetToken: issued.resetToken))
        var preferred = TransportParameters.PreferredAddress(connectionID: id, statelessResetToken: issued.resetToken)
        if let v4 = addresses.first(where: { $0.addressBytes.count == 4 }) {
            preferred.ipv4Address = v4.addressBytes
            preferred.ipv4Port = v4.port
        }
        if let v6 = addresses.first(where: { $0.addressBytes.count == 16 }) {
            preferred.ipv6Address = v6.addressBytes
            preferred.ipv6Port = v6.port
        }
        return preferred
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
        if let preferred = parameters.preferredAddress {
            // Its connection ID has sequence number 1 (RFC 9000 §5.1.1) and may be used on any path.
            do throws(QUICError) {
                try cids.addPeer(sequence: 1, retirePriorTo: 0, id: preferred.connectionID.bytes,
                                 resetToken: preferred.statelessResetToken, limit: localParameters.activeConnectionIDLimit)
            } catch {
                throw QUICError(.transportParameterError, "preferred_address: \(error.reason)")
            }
        }
        if early.write != nil {
            early.deferredPeerParameters = parameters
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
        configuration.pathMTUDiscovery ? min(paths.current.mtu, datagramSizeCeiling) : datagramSizeCeiling
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
            early.write = nil
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
        if role == .client { moveToPreferredAddress() }
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

    /// PATH_CHALLENGE data: 8 random bytes, not all zero.
    func newChallenge() -> [UInt8] {
        var challenge = configuration.random.bytes(Frame.pathDataLength)
        if challenge.allSatisfy({ $0 == 0 }) { challenge[0] = 1 }
        return challenge
    }

    /// How long a new path has to answer PATH_CHALLENGE: three PTOs, and at least six times
    /// the initial RTT (RFC 9000 §8.2.4).
    private var pathValidationTimeout: Duration {
        max(recovery.probeTimeout(for: .applicationData) * 3, .milliseconds(6 * Int64(configuration.initialRTT.nanosecondsClamped / 1_000_000)))
    }

    /// Client, once the handshake is confirmed: moves to the server's preferred address of the
    /// current address family (RFC 9000 §9.6.1), with the connection ID that came with it
    /// (sequence 1, or the next unused one), checking the new path with PATH_CHALLENGE. The
    /// original path is kept: packets from there are still taken (``Paths/originalServerAddress``),
    /// and if the server does not answer at the new one within ``pathValidationTimeout`` the
    /// connection goes back there. The addresses are this connection's only (§9.6.2);
    /// disable_active_migration does not forbid this move (§18.2).
    private func moveToPreferredAddress() {
        guard configuration.followsPreferredAddress, state == .established,
              let preferred = peerTransportParameters?.preferredAddress,
              let remote = preferred.address(family: paths.current.remote), remote != paths.current.remote,
              cids.rotatePeer()
        else { return }
        paths.previous = paths.current
        paths.originalServerAddress = paths.current.remote
        // The server's address needs no amplification limit (only a server has one).
        paths.current = Path(remote: remote, isValidated: true, challenge: newChallenge(), challengePending: true)
        paths.current.challengeDeadline = now + pathValidationTimeout
        startingOnNewPath(newNetwork: true)
    }

    /// A path's per-path state starts over on a new one: the spin bit, ECN validation, path
    /// MTU discovery (the path's MTU is not known yet), and on a new network (another IP
    /// address at either end) congestion control and the RTT estimate too (RFC 9000 §9.4).
    func startingOnNewPath(newNetwork: Bool) {
        spin = SpinBit(allowed: configuration.spinBit, random: configuration.random)  // a new path decides anew
        restartECNValidation()
        if newNetwork {
            congestion = congestion.startingOver(at: now)
            recovery.resetRTT(initialRTT: configuration.initialRTT)
        }
        datagramSizeChanged()
    }

    /// Server: the client proved the path to it from our preferred address (RFC 9000 §9.6.2)
    /// and already sends non-probing packets there: from now on we send from there only, and
    /// packets still arriving at the original address never move us back.
    func probeValidated() {
        guard var probe = paths.probe.take() else { return }
        statistics.pathsValidated += 1
        statistics.preferredAddressMigrations += 1
        probe.challenge = nil
        probe.challengePending = false
        probe.challengeDeadline = nil
        let newNetwork = probe.local?.addressBytes != paths.current.local?.addressBytes
        paths.current = probe
        paths.previous = nil
        paths.movedLocalAddress = true
        if cids.activePeer.count > 0 { _ = cids.rotatePeer() }  // a connection ID is not used on two paths (§9.5)
        startingOnNewPath(newNetwork: newNetwork)
    }

    /// A non-probing packet arrived on a new path (RFC 9000 §9.3): from a new address — the
    /// peer migrated or its NAT rebound — or at another address of ours.
    ///
    /// From a new address, we follow it, validate the new path with PATH_CHALLENGE and respect
    /// the amplification limit there until it answers. We also move to another of the peer's
    /// connection IDs where it gave us one: a connection ID is not used towards two addresses
    /// (§9.5), so that the two paths cannot be linked.
    ///
    /// From the client's address at another address of ours — it moved to our preferred
    /// address — we check the path from there first and keep sending non-probing packets from
    /// the original address until it answers (§9.6.2: ``Paths/probe``). Once we moved, packets
    /// at the original address do not move us back.
    func migrate(to remote: SocketAddress, local: SocketAddress?, datagramSize: Int) {
        // The datagram's own PATH_RESPONSE may have moved us to its path already (``probeValidated()``).
        guard role == .server, isHandshakeConfirmed, remote != paths.current.remote || local != paths.current.local else { return }
        if local != paths.current.local {
            if paths.movedLocalAddress { return }  // late packets to the original address (§9.6.2)
            if remote == paths.current.remote {
                if paths.probe.map({ $0.remote == remote && $0.local == local }) != true {
                    paths.probe = Path(remote: remote, local: local, isValidated: true, bytesReceived: datagramSize,
                                     challenge: newChallenge(), challengePending: true, challengeDeadline: now + pathValidationTimeout)
                }
                return
            }
            // The client moved to our preferred address from a new address too (§9.6.3): a
            // migration like any other, checked from the preferred address.
            paths.movedLocalAddress = true
            statistics.preferredAddressMigrations += 1
            paths.probe = nil
        }
        statistics.peerMigrations += 1
        if cids.activePeer.count > 0 { _ = cids.rotatePeer() }
        let portOnly = remote.addressBytes == paths.current.remote.addressBytes && local?.addressBytes == paths.current.local?.addressBytes
        var newPath = Path(remote: remote, local: local, isValidated: false, bytesReceived: datagramSize)
        newPath.challenge = newChallenge()
        newPath.challengePending = true
        newPath.challengeDeadline = now + pathValidationTimeout
        if paths.current.isValidated { paths.previous = paths.current }
        paths.current = newPath
        startingOnNewPath(newNetwork: !portOnly)
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
        closing.frame = frame
        state = .closing
        closing.sendsPending = 1
        closing.deadline = now + recovery.probeTimeout(for: .applicationData) * 3
        emit(.closed(info))
    }

    func enterDraining(_ frame: ConnectionClose) {
        guard state == .handshaking || state == .established else { return }
        let info = ConnectionCloseInfo(origin: .peer, frame: frame)
        closeInfo = info
        state = .draining
        closing.deadline = now + recovery.probeTimeout(for: .applicationData) * 3
        emit(.closed(info))
    }

    /// A PTO fired (RFC 9002 §6.2.4): send probes. In the handshake spaces the unacknowledged
    /// CRYPTO data is sent again in them, which recovers a lost flight in one round trip; in
    /// the Application Data space everything outstanding is queued again (§6.2.4: "retransmit
    /// previously sent data"), lowest offsets first, so that probes repair the oldest hole even
    /// when the peer's acknowledgments are being lost; acknowledgments that arrive later cancel
    /// the rest.
    func onProbeTimeout(space: PacketNumberSpace, count: Int, antiDeadlock: Bool) {
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

public import QuiverCore
import QuiverTLS

extension QUICConnection {
    /// Processes a received UDP datagram (RFC 9000 §12.2: it may hold several coalesced
    /// packets). Packets that cannot be decrypted, duplicates and packets for other
    /// connections are dropped; protocol violations close the connection.
    ///
    /// Packets are decrypted where they lie, so pass a datagram nothing else holds (a
    /// datagram shared with the caller is copied once before decryption), or use
    /// the `inout` variant of this method with a buffer you reuse.
    ///
    /// - Parameters:
    ///   - datagram: the UDP payload.
    ///   - remote: the address it came from.
    ///   - local: a server's: the address of ours it came to, when it has several — the one the
    ///     client connected to and the preferred address it announced
    ///     (``QUICConfiguration/preferredAddresses``). Together with `remote` it names the
    ///     path (RFC 9000 §9), and the connection's datagrams on that path leave from it
    ///     (``OutgoingDatagram/source``). A client's local address is its own business
    ///     (``migrateLocalAddress(newAddress:)``): clients ignore it.
    ///   - ecn: the ECN codepoint of its IP packet.
    ///   - now: the current time.
    public func receive(_ datagram: consuming [UInt8], from remote: SocketAddress, to local: SocketAddress? = nil,
                        ecn: ECNCodepoint = .notECT, at now: Instant) {
        var datagram = datagram
        receive(&datagram, firstHeader: nil, from: remote, to: local, ecn: ecn, at: now)
    }

    /// Processes a received UDP datagram held in a buffer the caller reuses: its packets are
    /// decrypted in it (afterwards its contents are unspecified) and nothing keeps a reference
    /// to it, so the caller's next datagram needs no new allocation.
    ///
    /// - Parameters:
    ///   - datagram: the UDP payload; decrypted in place.
    ///   - remote: the address it came from.
    ///   - local: a server's address it came to (see ``receive(_:from:to:ecn:at:)``).
    ///   - ecn: the ECN codepoint of its IP packet.
    ///   - now: the current time.
    public func receive(_ datagram: inout [UInt8], from remote: SocketAddress, to local: SocketAddress? = nil,
                        ecn: ECNCodepoint = .notECT, at now: Instant) {
        receive(&datagram, firstHeader: nil, from: remote, to: local, ecn: ecn, at: now)
    }

    /// ``receive(_:from:to:ecn:at:)`` for the endpoint, which parsed the first packet's header to
    /// route the datagram: it is not parsed again.
    func receive(_ datagram: inout [UInt8], firstHeader: PacketHeader?, from remote: SocketAddress, to local: SocketAddress?,
                 ecn: ECNCodepoint, at now: Instant) {
        advanceClock(now)
        defer { qlog?.checkpoint() }
        switch state {
        case .closed, .draining:
            return
        case .closing:
            // Answer with CONNECTION_CLOSE, less and less often (RFC 9000 §10.2.1).
            closing.receivedDatagrams += 1
            if closing.receivedDatagrams & (closing.receivedDatagrams - 1) == 0 { closing.sendsPending = 1 }
            return
        case .handshaking, .established:
            break
        }
        let size = datagram.count
        statistics.datagramsReceived += 1
        statistics.bytesReceived += size
        let local = role == .server ? local : nil
        let fromCurrentPath = remote == paths.current.remote && local == paths.current.local
        if fromCurrentPath {
            paths.current.bytesReceived += size
        } else if paths.probe.map({ remote == $0.remote && local == $0.local }) == true {
            paths.probe!.bytesReceived += size
        }
        // A client takes packets from the server's address, and from its original one once it
        // moved to the preferred address (``Paths/originalServerAddress``).
        if role == .client && !fromCurrentPath && remote != paths.originalServerAddress {
            dropPacket(nil, size: size, .rejected)  // not from the server's address
            return
        }

        currentDatagram = (remote, local, size)
        defer { currentDatagram = nil }
        var processedAny = false
        var parsedAny = false
        var nonProbingFromNewPath = false
        var offset = 0
        // Coalesced packets one after another (RFC 9000 §12.2): each long-header packet ends
        // where its Length says; a short-header packet, Retry or Version Negotiation runs to
        // the end. Parsing stops at the first packet that does not parse.
        while offset < size {
            let header: PacketHeader
            if offset == 0, let firstHeader {
                header = firstHeader
            } else if let parsed = try? PacketHeader.parse(datagram, at: offset, shortHeaderConnectionIDLength: localConnectionIDLength) {
                header = parsed
            } else {
                break
            }
            parsedAny = true
            let range = offset..<header.packetEnd(from: offset, datagramSize: size)
            offset = range.upperBound
            do {
                switch header {
                case .versionNegotiation(let vn):
                    handleVersionNegotiation(vn)
                case .retry(let retry):
                    handleRetry(retry, packet: Array(datagram[range]))
                case .unsupportedVersion:
                    dropPacket(nil, size: range.count, .unsupported)
                case .long(let long):
                    if let result = try processLongPacket(&datagram, range, header: long, ecn: ecn, datagramSize: size) {
                        processedAny = true
                        nonProbingFromNewPath = nonProbingFromNewPath || (!fromCurrentPath && result)
                    }
                case .short(let short):
                    if let result = try processShortPacket(&datagram, range, header: short, ecn: ecn) {
                        processedAny = true
                        nonProbingFromNewPath = nonProbingFromNewPath || (!fromCurrentPath && result)
                    }
                }
            } catch {
                closeWithError(error)
                return
            }
            if state != .handshaking && state != .established { return }
        }
        if processedAny {
            statistics.ecn.noteReceived(ecn)
            idleDeadlineBase = now
            ackElicitingSentSinceReceive = false
            if nonProbingFromNewPath { migrate(to: remote, local: local, datagramSize: size) }
        } else if !parsedAny || isShortHeader(datagram) {
            // Decryption failed in place, but only the payload before the last 16 bytes and
            // the header's protected bits changed: the token at the end is intact.
            checkStatelessReset(datagram)
        }
        // A server that was blocked by the amplification limit may send again (RFC 9002 A.6).
        recovery.isAtAntiAmplificationLimit = paths.current.amplificationBudget == 0
    }

    private func isShortHeader(_ datagram: [UInt8]) -> Bool { datagram.first.map { $0 & 0x80 == 0 } ?? false }

    /// A datagram that decrypts to nothing and ends with a peer's reset token ends the
    /// connection (RFC 9000 §10.3.1).
    private func checkStatelessReset(_ datagram: [UInt8]) {
        guard datagram.count >= 21, StatelessReset.matches(datagram: datagram, tokens: cids.peerResetTokens) else { return }
        closeInfo = ConnectionCloseInfo(origin: .statelessReset, frame: .transport(.noError))
        state = .closed
        emit(.closed(closeInfo!))
    }

    // MARK: - Long headers

    /// Decrypts and processes an Initial, 0-RTT or Handshake packet.
    ///
    /// - Returns: whether it was processed and is non-probing; `nil` when it was dropped.
    private func processLongPacket(_ datagram: inout [UInt8], _ range: Range<Int>, header: LongHeader, ecn: ECNCodepoint,
                                   datagramSize: Int) throws(QUICError) -> Bool? {
        guard let space = PacketNumberSpace(header.type) else { return nil }
        // Packets for our connection IDs only (a server also accepts the client's chosen DCID
        // on Initial and 0-RTT packets until the handshake completes).
        let dcid = header.destinationConnectionID
        let acceptable = cids.isLocal(dcid)
            || (role == .server && (header.type == .initial || header.type == .zeroRTT)
                && (dcid == initialSecretConnectionID || dcid == originalDestinationConnectionID))
        guard acceptable else {
            dropPacket(header.type, size: range.count, .connectionUnknown)
            return nil
        }
        // Compatible version negotiation (RFC 9368 §2.3): the server may answer in another
        // version we offered, possibly after acknowledging our first packets in the original
        // one; we follow until its handshake flight arrives. A server still accepts the
        // client's original version for Initial and 0-RTT packets (RFC 9369 §4: 0-RTT always
        // uses the original version).
        var switchesVersion = false
        if header.version != version {
            if role == .client, header.type == .initial, version == originalVersion, spaces[1].readKey == nil,
               configuration.supportedVersions.contains(header.version), localParameters.versionInformation != nil {
                switchesVersion = true
            } else if !(role == .server && header.version == originalVersion && (header.type == .initial || header.type == .zeroRTT)) {
                dropPacket(header.type, size: range.count, .unsupported)
                return nil
            }
        }
        // RFC 9000 §17.2.2: a server's Initial carries no token.
        if role == .client, header.type == .initial, !header.token.isEmpty {
            dropPacket(header.type, size: range.count, .invalid)
            return nil
        }
        // A server discards Initial packets in datagrams smaller than 1200 bytes (§14.1).
        if role == .server, header.type == .initial, datagramSize < 1200 {
            dropPacket(header.type, size: range.count, .invalid)
            return nil
        }
        // After the server's first packet its Source Connection ID is fixed (RFC 9000 §7.2).
        if role == .client, hasReceivedPacket, header.type != .zeroRTT, header.sourceConnectionID != peerInitialSourceConnectionID {
            dropPacket(header.type, size: range.count, .invalid)
            return nil
        }
        let key: PacketKey?
        switch header.type {
        case .initial where switchesVersion:
            key = PacketKey.initial(version: header.version, destinationConnectionID: initialSecretConnectionID.bytes).server
        case .initial: key = spaces[0].isDiscarded ? nil : initialKeys[header.version]?.read
        case .handshake: key = spaces[1].readKey
        case .zeroRTT: key = role == .server ? early.read : nil
        default: key = nil
        }
        let largest = spaces[space.rawValue].ack.largestReceived
        guard let key else {
            dropPacket(header.type, size: range.count, .keyUnavailable)
            return nil
        }
        guard let opened = datagram.withUnsafeMutableBytes({
            key.unprotect(inPlace: UnsafeMutableRawBufferPointer(rebasing: $0[range]), packetNumberOffset: header.packetNumberOffset,
                          largestReceived: largest)
        }) else {
            dropPacket(header.type, size: range.count, .decryptionFailure)
            return nil
        }
        // Only an authenticated packet may change the connection's version or peer ID.
        if switchesVersion {
            version = header.version
            installInitialKeys(version: version)
        }
        if role == .client, !hasReceivedPacket {
            peerInitialSourceConnectionID = header.sourceConnectionID
            cids.setInitialPeer(header.sourceConnectionID)
        }
        return try processPayload(datagram, payload: payload(of: range, after: opened), header: opened, packetType: header.type,
                                  space: space, ecn: ecn, destination: header.destinationConnectionID)
    }

    /// The plaintext payload of the packet at `range` once decrypted in place: after the
    /// header, before the AEAD tag.
    private func payload(of range: Range<Int>, after header: UnmaskedHeader) -> Range<Int> {
        (range.lowerBound + header.length)..<(range.upperBound - AEADKey.tagLength)
    }

    // MARK: - Short headers

    private func processShortPacket(_ datagram: inout [UInt8], _ range: Range<Int>, header: ShortHeader, ecn: ECNCodepoint) throws(QUICError) -> Bool? {
        // The keys are used where they are stored: a copy of them is 300 bytes with references.
        guard appKeys.isInstalled() else {
            dropPacket(.oneRTT, size: range.count, .keyUnavailable)
            return nil
        }
        guard cids.isLocal(header.destinationConnectionID) else {
            dropPacket(.oneRTT, size: range.count, .connectionUnknown)
            return nil
        }
        let largest = spaces[PacketNumberSpace.applicationData.rawValue].ack.largestReceived
        var isNext = false
        let opened: UnmaskedHeader? = datagram.withUnsafeMutableBytes { bytes in
            let packet = UnsafeMutableRawBufferPointer(rebasing: bytes[range])
            guard let unmasked = appKeys!.read.removeHeaderProtection(packet, packetNumberOffset: header.packetNumberOffset,
                                                                       largestReceived: largest),
                  let candidate = appKeys!.candidate(keyPhase: unmasked.keyPhase, packetNumber: unmasked.packetNumber)
            else { return nil }
            if candidate.key.open(packet, header: unmasked) {
                isNext = candidate.isNext
                return unmasked
            }
            // RFC 9001 §6.6: past the AEAD's integrity limit, forgeries could succeed.
            appKeys!.authenticationFailures += 1
            return nil
        }
        guard let unmasked = opened else {
            dropPacket(.oneRTT, size: range.count, .decryptionFailure)
            let limit: UInt64 = appKeys!.read.secret.suite == .chacha20Poly1305SHA256 ? 1 << 36 : 1 << 52
            if appKeys!.authenticationFailures >= limit { throw QUICError(.aeadLimitReached, "too many packets failed authentication") }
            return nil
        }
        // Only the highest-numbered non-probing packet moves the path (RFC 9000 §9.3).
        let isNewest = largest.map { unmasked.packetNumber > $0 } ?? true
        if isNext {
            // The peer updated its keys (RFC 9001 §6.2): we update ours in answer.
            appKeys!.advance()
        }
        if unmasked.keyPhase == appKeys!.phase {
            appKeys!.noteReceived(packetNumber: unmasked.packetNumber, now: now,
                                  previousKeyLifetime: self.recovery.probeTimeout(for: .applicationData) * 3)
        }
        let nonProbing = try processPayload(datagram, payload: payload(of: range, after: unmasked), header: unmasked, packetType: .oneRTT,
                                            space: .applicationData, ecn: ecn, destination: header.destinationConnectionID)
        if isNewest, nonProbing != nil, state == .established, spin.received(header.spinBit, as: role) { qlog?.spinBitUpdated(spin.sentValue) }
        return nonProbing.map { $0 && isNewest }
    }

    // MARK: - Frames

    /// Processes a decrypted packet's frames.
    ///
    /// - Returns: whether the packet is non-probing (RFC 9000 §9.1), or `nil` for a duplicate.
    private func processPayload(_ datagram: [UInt8], payload: Range<Int>, header: UnmaskedHeader, packetType: PacketType,
                                space: PacketNumberSpace, ecn: ECNCodepoint, destination: ConnectionID) throws(QUICError) -> Bool? {
        let index = space.rawValue
        guard !spaces[index].ack.isDuplicate(header.packetNumber) else {
            dropPacket(packetType, size: header.length + payload.count + AEADKey.tagLength, .duplicate)
            return nil
        }
        guard header.reservedBits == 0 else {
            throw QUICError(.protocolViolation, "reserved header bits are not zero")
        }
        // RFC 9000 §12.4: a packet holds at least one frame.
        guard !payload.isEmpty else { throw QUICError(.protocolViolation, "packet contains no frames") }
        statistics.packetsReceived += 1
        hasReceivedPacket = true
        qlog?.packetReceived(datagram, payload: payload, header: header, packetType: packetType)

        // Each frame is handled as it is decoded, straight from the decrypted datagram.
        var reader = ByteReader(datagram, in: payload)
        var ackEliciting = false
        var nonProbing = false
        var traced: [FrameType] = []
        while !reader.isAtEnd {
            let frame = try Frame.decodeNext(from: &reader, in: packetType)
            if traceHandler != nil { traced.append(frame.type) }
            switch frame {
            case .padding, .ack, .connectionClose: break
            default: ackEliciting = true
            }
            switch frame {
            case .padding, .pathChallenge, .pathResponse, .newConnectionID: break
            default: nonProbing = true
            }
            try handle(frame, space: space, destination: destination)
            if state != .handshaking && state != .established { break }
        }
        if let traceHandler {
            traceHandler("\(now) \(role) received \(packetType) pn=\(header.packetNumber) \(traced)")
        }
        spaces[index].ack.onPacketReceived(header.packetNumber, ackEliciting: ackEliciting, ecn: ecn, now: now)

        // A server validates the client's address on its first Handshake packet and then
        // discards the Initial keys (RFC 9000 §8.1, RFC 9001 §4.9.1).
        if role == .server, packetType == .handshake {
            paths.current.isValidated = true
            recovery.isAtAntiAmplificationLimit = false
            discardSpace(.initial)
        }
        if role == .server, packetType == .oneRTT, early.read != nil, early.readExpiry == nil {
            early.readExpiry = now + recovery.probeTimeout(for: .applicationData) * 3
        }
        return nonProbing
    }

    private func handle(_ frame: Frame, space: PacketNumberSpace, destination: ConnectionID) throws(QUICError) {
        switch frame {
        case .padding:
            break
        case .ping:
            // A client probing in the Initial space has no Handshake keys (RFC 9002
            // §6.2.2.1), so it lacks our ServerHello: repeat it if it was acknowledged.
            if role == .server, space == .initial { repeatInitialCrypto() }
        case .ack(let ack):
            try handleAck(ack, space: space)
        case .crypto(let offset, let data):
            try handleCrypto(offset: offset, data: data, space: space)
        case .newToken(let token):
            guard role == .client else {
                throw QUICError(.protocolViolation, "a client sent NEW_TOKEN", frameType: FrameType.newToken.rawValue)
            }
            emit(.newToken(token))
        case .stream(let id, _, _, _), .resetStream(let id, _, _), .streamDataBlocked(let id, _):
            try streams.handle(frame)
            announceOpenedStreams()
            if streams.contains(id), streams.receiveStream(id) != nil, readableNotified.insert(id).inserted {
                emit(.streamReadable(id))
            }
        case .stopSending(let id, let code):
            try streams.handle(frame)
            announceOpenedStreams()
            emit(.streamStopped(id, errorCode: code))
        case .maxData, .maxStreamData, .maxStreams, .dataBlocked, .streamsBlocked:
            try streams.handle(frame)
            announceOpenedStreams()
        case .newConnectionID(let sequence, let retirePriorTo, let id, let token):
            try cids.addPeer(sequence: sequence, retirePriorTo: retirePriorTo, id: id, resetToken: token,
                             limit: localParameters.activeConnectionIDLimit)
        case .retireConnectionID(let sequence):
            if let retired = try cids.retireLocal(sequence: sequence, packetDestination: destination) {
                emit(.connectionIDRetired(retired))
                issueConnectionIDs()
            }
        case .pathChallenge(let data):
            if paths.pendingResponses.count < 4, let datagram = currentDatagram {
                paths.pendingResponses.append(PathResponse(data: data, to: datagram.source, from: datagram.local, budget: 3 * datagram.size))
            }
        case .pathResponse(let data):
            if let challenge = paths.current.challenge, challenge == data {
                statistics.pathsValidated += 1
                paths.current.isValidated = true
                paths.current.challenge = nil
                paths.current.challengePending = false
                paths.current.challengeDeadline = nil
                // A client keeps an earlier path only while it moves to the preferred address.
                if role == .client, paths.previous != nil { statistics.preferredAddressMigrations += 1 }
                paths.previous = nil
            } else if let probe = paths.probe, probe.challenge == data {
                // The client answered our challenge from the preferred address: the path is
                // proved, and the client already sends non-probing packets there.
                probeValidated()
            }
        case .connectionClose(let close):
            enterDraining(close)
        case .handshakeDone:
            guard role == .client else {
                throw QUICError(.protocolViolation, "a client sent HANDSHAKE_DONE", frameType: FrameType.handshakeDone.rawValue)
            }
            confirmHandshake()
        case .datagram(let data):
            guard let limit = localParameters.maxDatagramFrameSize, limit > 0, UInt64(1 + data.count) <= limit else {
                throw QUICError(.protocolViolation, "unexpected or oversized DATAGRAM frame", frameType: frame.type.rawValue)
            }
            // Unreliable by design (RFC 9221 §5): beyond 256 unread datagrams new ones are dropped.
            if queuedDatagramEvents < 256 {
                queuedDatagramEvents += 1
                emit(.datagramReceived(data))
            }
        }
    }

    /// The client sent its Initial CRYPTO data again, or probes in the Initial space: it lacks
    /// our ServerHello, perhaps even though it acknowledged the packet that carried it (a
    /// client that ignored the CRYPTO frames of a packet in the negotiated version, say).
    /// Repeat our Initial CRYPTO data now rather than at a PTO, which never comes for
    /// acknowledged data — a limited number of times per connection and within the
    /// amplification limit (RFC 9002 §6.2.3).
    private func repeatInitialCrypto() {
        guard !spaces[PacketNumberSpace.initial.rawValue].isDiscarded, !initialCryptoSent.isEmpty,
              initialCryptoRepeat == nil, initialCryptoRepeats < Self.maxInitialCryptoRepeats
        else { return }
        initialCryptoRepeats += 1
        initialCryptoRepeat = 0..<initialCryptoSent.count
    }

    /// How often a server repeats its Initial CRYPTO data for duplicates (RFC 9002 §6.2.3).
    static let maxInitialCryptoRepeats = 3

    private func announceOpenedStreams() {
        while let id = streams.acceptStream() { emit(.streamOpened(id)) }
    }

    private func handleCrypto(offset: UInt64, data: [UInt8], space: PacketNumberSpace) throws(QUICError) {
        let index = space.rawValue
        if role == .server, space == .initial, !data.isEmpty, offset + UInt64(data.count) <= spaces[index].cryptoReceive.readOffset {
            repeatInitialCrypto()
        }
        try spaces[index].cryptoReceive.insert(offset: offset, data: data[...], fin: false)
        let bytes = spaces[index].readCrypto()
        guard !bytes.isEmpty else { return }
        let level: EncryptionLevel = switch space {
        case .initial: .initial
        case .handshake: .handshake
        case .applicationData: .application
        }
        do {
            try tls.receive(bytes, at: level)
        } catch {
            throw transportParameterError ?? QUICError(error)
        }
        try pumpTLS()
    }

    // MARK: - Acknowledgments

    private func handleAck(_ ack: AckFrame, space: PacketNumberSpace) throws(QUICError) {
        let exponent = peerTransportParameters?.ackDelayExponent ?? TransportParameters.defaultAckDelayExponent
        let maxAckDelay = Duration.milliseconds(Int64(peerTransportParameters?.maxAckDelay ?? TransportParameters.defaultMaxAckDelay))
        let previousLargest = recovery.largestAcked(in: space)
        let outcome = try recovery.onAckReceived(ack, ackDelayExponent: exponent, space: space, now: now,
                                                 handshakeConfirmed: isHandshakeConfirmed, maxAckDelay: maxAckDelay)
        // Each record borrowed where it lies: a `for` loop, or an array subscript, copies each one
        // (its frame list retained and released).
        var newlyAckedMarked = 0
        outcome.newlyAcked.withUnsafeBufferPointer { packets in
            for index in packets.indices {
                onPacketAcked(packets[index], space: space)
                if packets[index].ecn != .notECT { newlyAckedMarked += 1 }
            }
        }
        if outcome.newlyAcked.contains(where: \.inFlight) {
            congestion.onPacketsAcknowledged(outcome.ackedInFlight, now: now, rtt: recovery.rtt.snapshot,
                                             bytesInFlight: recovery.bytesInFlight, isAppLimited: isApplicationLimited)
        }
        processECN(ack.ecn, space: space, newlyAckedMarked: newlyAckedMarked,
                   largestAckedIncreased: previousLargest.map { ack.largestAcknowledged > $0 } ?? true,
                   largestNewlyAckedSentTime: outcome.largestNewlyAckedSentTime)
        onPacketsLost(outcome.loss)
        streams.roundTripTime = recovery.rtt.smoothedRTT
        recovery.recycle(consume outcome)
    }

    /// Whether the sender has less to send than the window allows (RFC 9002 §7.8).
    var isApplicationLimited: Bool {
        recovery.bytesInFlight + 2 * congestion.maxDatagramSize < congestion.congestionWindow
            && !streams.hasStreamDataToSend
    }

    private func onPacketAcked(_ packet: borrowing SentPacket, space: PacketNumberSpace) {
        let index = space.rawValue
        for position in packet.frames.indices {  // by index: iterating would copy the list
            let info = packet.frames[position]
            switch info {
            case .crypto(let offset, let length):
                spaces[index].cryptoSend.onAcked(offset: offset, length: length)
            case .stream(let id, let offset, let length, let fin):
                streams.onStreamDataAcked(id, offset: offset, length: length, fin: fin)
            case .ack(let largest):
                spaces[index].ack.onAckOfAck(largest: largest)
            case .pmtuProbe(let size):
                paths.current.mtuProbeAcknowledged(size)
                datagramSizeChanged()
            default:
                if let frame = info.streamControlFrame { streams.onFrameAcked(frame) }
            }
        }
        if space == .applicationData { appKeys?.noteAcknowledged(packet.packetNumber) }
    }

    /// Counts a packet dropped unprocessed, and logs why (qlog's packet_dropped).
    private func dropPacket(_ type: PacketType?, size: Int, _ trigger: PacketDropTrigger) {
        statistics.packetsDropped += 1
        qlog?.packetDropped(type, size: size, trigger: trigger)
    }

    /// Re-frames what lost packets carried (RFC 9000 §13.3) and informs congestion control.
    func onPacketsLost(_ loss: LossEvent) {
        guard !loss.isEmpty else { return }
        qlog?.packetsLost(loss)
        onMarkedPacketsLost(loss)
        var congestive = loss
        if loss.packets.contains(where: \.isPMTUProbe) { congestive.packets.removeAll(where: \.isPMTUProbe) }  // RFC 9000 §14.4
        statistics.packetsLost += congestive.packets.count
        statistics.mtuProbesLost += loss.packets.count - congestive.packets.count
        if let sent = congestive.newestLostSentTime, congestive.packets.contains(where: \.inFlight) {
            if congestion.algorithm == .bbr {  // BBR adapts its model to each lost packet (draft-ietf-ccwg-bbr §5.2.4)
                congestion.onPacketsLost(AckedInFlight(packets: congestive.packets), now: now, bytesInFlight: recovery.bytesInFlight)
            }
            congestion.onCongestionEvent(sentTime: sent, now: now, lostBytes: congestive.lostBytes)
        }
        if loss.persistentCongestion { congestion.onPersistentCongestion() }
        for packet in loss.packets { requeue(packet.frames, space: loss.space) }
    }

    /// Queues again the information of frames whose packet was lost or discarded.
    func requeue(_ frames: some Sequence<SentFrameInfo>, space: PacketNumberSpace) {
        let index = space.rawValue
        for info in frames {
            switch info {
            case .crypto(let offset, let length):
                spaces[index].cryptoSend.onLost(offset: offset, length: length)
            case .stream(let id, let offset, let length, let fin):
                streams.onStreamDataLost(id, offset: offset, length: length, fin: fin)
            case .newConnectionID(let sequence):
                if cids.localID(sequence: sequence) != nil, !cids.pendingNewConnectionIDs.contains(sequence) {
                    cids.pendingNewConnectionIDs.append(sequence)
                }
            case .retireConnectionID(let sequence):
                if !cids.pendingRetirements.contains(sequence) { cids.pendingRetirements.append(sequence) }
            case .handshakeDone:
                handshakeDonePending = true
            case .newToken:
                if pendingNewToken == nil, let token = lastNewToken { pendingNewToken = token }
            case .pathChallenge:
                if paths.current.challenge != nil { paths.current.challengePending = true }
                if paths.probe?.challenge != nil { paths.probe!.challengePending = true }
            case .pmtuProbe(let size):
                paths.current.mtuProbeLost(size)
            default:
                if let frame = info.streamControlFrame { streams.onFrameLost(frame) }
            }
        }
    }

    // MARK: - Retry and Version Negotiation (client)

    private func handleRetry(_ retry: RetryPacket, packet: [UInt8]) {
        guard role == .client, !hasReceivedPacket, retrySourceConnectionID == nil,
              retry.destinationConnectionID == cids.local.first?.id,
              retry.sourceConnectionID != originalDestinationConnectionID,
              RetryIntegrity.isValid(retryPacket: packet, originalDestinationConnectionID: originalDestinationConnectionID.bytes,
                                     version: retry.version)
        else {
            dropPacket(.retry, size: packet.count, .invalid)
            return
        }
        // RFC 9000 §17.2.5.2: new DCID and token; Initial keys from the new DCID; everything
        // sent in Initial packets is sent again (packet numbers continue).
        retrySourceConnectionID = retry.sourceConnectionID
        initialSecretConnectionID = retry.sourceConnectionID
        initialToken = retry.token
        cids.setInitialPeer(retry.sourceConnectionID)
        installInitialKeys(version: version)
        for packet in recovery.discard(space: .initial) { requeue(packet.frames, space: .initial) }
        // 0-RTT packets sent so far used the old DCID; the server could not decrypt them.
        for packet in recovery.discard(space: .applicationData) { requeue(packet.frames, space: .applicationData) }
    }

    private func handleVersionNegotiation(_ vn: VersionNegotiationPacket) {
        // RFC 9000 §6.2: only before any other packet, only if it does not list our version.
        guard role == .client, !hasReceivedPacket, retrySourceConnectionID == nil, vn.destinationConnectionID == cids.local.first?.id.bytes,
              vn.sourceConnectionID == originalDestinationConnectionID.bytes, !vn.supportedVersions.contains(version)
        else { return }
        let info = ConnectionCloseInfo(origin: .versionNegotiation(vn.supportedVersions),
                                       frame: .transport(.versionNegotiationError, reason: "server offers \(vn.supportedVersions)"))
        closeInfo = info
        state = .closed
        emit(.closed(info))
    }
}

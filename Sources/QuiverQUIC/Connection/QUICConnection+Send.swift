public import QuiverCore
import QuiverTLS

extension QUICConnection {
    /// One packet being assembled in a datagram's buffer: its header written first
    /// (``makePlan(space:type:into:)``, a long header's Length field filled in by
    /// ``seal(_:in:)``), then its frames, then room for the AEAD tag. Offsets are from the
    /// packet's first byte. The records of its frames are gathered in the train's scratch
    /// (``DatagramTrain/plannedFrames``), so that a plan is a few plain words that copy for free.
    private struct PacketPlan {
        var space: PacketNumberSpace
        var type: PacketType
        var packetNumber: UInt64
        var packetNumberLength: Int
        var headerLength: Int
        /// Where the packet number starts (header protection needs it).
        var packetNumberOffset: Int
        /// Where the packet starts in the datagram's buffer.
        var start: Int
        /// The packet's bytes, header and tag included, once its frames are chosen.
        var size = 0
        var ackEliciting = false
        var padded = false
        var carriesAck = false
        var pathFrames = false

        /// The payload written so far into `writer`, where the packet is the last thing.
        func payloadCount(in writer: ByteWriter) -> Int { writer.count - start - headerLength }
    }

    /// What one attempt to write a datagram did.
    private enum DatagramOutcome {
        /// A datagram was written into the train.
        case written
        /// The train has no room for what is due next: send it and offer an empty one.
        case noRoom
        /// Nothing is due now (flow, congestion, pacing or the amplification limit may hold
        /// data back; ``nextDeadline`` says when to try again).
        case nothing
    }

    /// Starts a packet for the next packet number of `space` at the end of `train`'s buffer: writes its
    /// header (the Length field of a long header to be filled in by ``seal(_:in:)``).
    private func makePlan(space: PacketNumberSpace, type: PacketType, into train: inout DatagramTrain) -> PacketPlan {
        train.plannedFrames[space.rawValue] = SentFrameInfos()
        let number = spaces[space.rawValue].nextPacketNumber
        let pnLength = PacketNumber.encodingLength(number, largestAcknowledged: recovery.largestAcked(in: space))
        let start = train.writer.count
        let pnOffset: Int
        if type == .oneRTT {
            let spinBit = spin.value(forConnectionID: cids.activePeerSequence, random: configuration.random)
            pnOffset = ShortHeader(destinationConnectionID: cids.activePeer, spinBit: spinBit)
                .encode(into: &train.writer, packetNumber: number, packetNumberLength: pnLength, keyPhase: appKeys?.phase ?? false)
        } else {
            // The Length field is written with 2 bytes (room for any packet that fits a UDP
            // datagram of up to 16 383 bytes); seal(_:in:) writes the real value.
            pnOffset = LongHeader(type: type, version: type == .zeroRTT ? originalVersion : version,
                                  destinationConnectionID: cids.activePeer,
                                  sourceConnectionID: cids.local.first?.id ?? .empty,
                                  token: type == .initial ? initialToken : [])
                .encode(into: &train.writer, packetNumber: number, packetNumberLength: pnLength, payloadLength: 0)
        }
        return PacketPlan(space: space, type: type, packetNumber: number, packetNumberLength: pnLength,
                          headerLength: train.writer.count - start, packetNumberOffset: pnOffset - start, start: start)
    }

    /// Drops a plan that will not be sent: its bytes (the last thing in `train`'s buffer) and its
    /// frame records. Nothing else changed for it (state changes only when a packet is sealed).
    private func discard(_ plan: PacketPlan, in train: inout DatagramTrain) {
        train.writer.bytes.removeLast(train.writer.count - plan.start)
        train.plannedFrames[plan.space.rawValue] = SentFrameInfos()
    }

    /// Ends the plan whose frames are written: pads a payload too short to sample for header
    /// protection, reserves the tag's room and records the packet's size.
    private func finish(_ plan: inout PacketPlan, in train: inout DatagramTrain) {
        // Header protection samples 16 bytes starting 4 bytes after the packet number
        // (RFC 9001 §5.4.2): the packet number and payload together need at least 4 bytes.
        let short = 4 - plan.packetNumberLength - plan.payloadCount(in: train.writer)
        if short > 0 {
            train.writer.writeZeros(short)
            plan.padded = true
        }
        train.writer.writeZeros(AEADKey.tagLength)
        plan.size = train.writer.count - plan.start
    }

    /// Adds this connection's next datagrams to `train` while it has room for them: an empty
    /// train takes any datagram, a train for this connection's path the next ones that fit its
    /// segment size. Packets are encoded and sealed in the train's buffer.
    ///
    /// Call it after every ``receive(_:from:to:ecn:at:)``, ``handleTimeout(at:)`` and application
    /// command until it returns `false`, sending the train (and offering it again, emptied)
    /// each time it returns `true`.
    ///
    /// - Returns: `true` when the train has no room for what is due next (send it and call
    ///   again); `false` when nothing more is due now (flow, congestion, pacing or the
    ///   amplification limit may hold data back; ``nextDeadline`` says when to try again).
    @discardableResult
    public func transmit(at now: Instant, into train: inout DatagramTrain) -> Bool {
        while true {
            switch writeDatagram(at: now, into: &train) {
            case .written: continue
            case .noRoom: return true
            case .nothing:
                qlog?.checkpoint()
                return false
            }
        }
    }

    /// The next datagram to send, or `nil` when nothing is due (flow, congestion, pacing or
    /// the amplification limit may hold data back; ``nextDeadline`` says when to try again).
    /// Call it until it returns `nil` after every ``receive(_:from:to:ecn:at:)``,
    /// ``handleTimeout(at:)`` and application command. ``transmit(at:into:)`` does the same
    /// without allocating per datagram.
    public func transmit(at now: Instant) -> OutgoingDatagram? {
        var train = DatagramTrain(maxDatagrams: 1)
        guard writeDatagram(at: now, into: &train) == .written, let destination = train.destination else {
            qlog?.checkpoint()
            return nil
        }
        return OutgoingDatagram(bytes: train.bytes, destination: destination, source: train.source, ecn: train.ecn)
    }

    /// Writes the next datagram at the end of `train`'s buffer, if one is due and fits.
    private func writeDatagram(at now: Instant, into train: inout DatagramTrain) -> DatagramOutcome {
        advanceClock(now)
        switch state {
        case .closed, .draining:
            return .nothing
        case .closing:
            return writeClose(into: &train)
        case .handshaking, .established:
            break
        }
        if appKeys?.isUpdateDue() == true { _ = initiateKeyUpdate() }
        if !early.streamReplay.isEmpty, case .some = peerTransportParameters { replayEarlyStreams() }
        if let index = paths.pendingResponses.firstIndex(where: { $0.to != paths.current.remote || $0.from != paths.current.local }) {
            let response = paths.pendingResponses[index]
            guard let room = train.room(for: response.to, from: response.from, ecn: .notECT, limit: datagramSizeLimit) else { return .noRoom }
            paths.pendingResponses.remove(at: index)
            if writePathResponse(response, room: room, into: &train) { return .written }
        }
        if let probe = paths.probe, probe.challengePending, let challenge = probe.challenge {
            guard let room = train.room(for: probe.remote, from: probe.local, ecn: .notECT, limit: datagramSizeLimit) else { return .noRoom }
            // The client's address is validated: the challenge is padded to 1200 bytes (§8.2.1).
            if writeSinglePacket(.pathChallenge(challenge), .pathChallenge, paddedTo: min(1200, room), room: room,
                                 to: probe.remote, from: probe.local, ecn: .notECT, into: &train) {
                paths.probe!.challengePending = false
                return .written
            }
        }

        let limit = datagramSizeLimit
        // One codepoint per datagram, and per train: a train ends where marking changes.
        let mark = ecnCodepoint()
        guard let room = train.room(for: paths.current.remote, from: paths.current.local, ecn: mark, limit: limit) else { return .noRoom }
        let budget = min(room, paths.current.amplificationBudget)
        guard budget >= 64 else {
            recovery.isAtAntiAmplificationLimit = role == .server && !paths.current.isValidated
            return .nothing
        }
        // Once both handshake spaces are discarded (for the rest of the connection) only
        // Application Data is left to plan and probe.
        let firstSpace = spaces[0].isDiscarded && spaces[1].isDiscarded ? PacketNumberSpace.applicationData.rawValue : 0
        let probing = (firstSpace..<spaces.count).contains { spaces[$0].probesDue > 0 }  // by index: no copy of a space's state
        var allowData = probing || recovery.bytesInFlight + limit <= congestion.congestionWindow
        if allowData, !probing, configuration.pacing, hasDataToSend {
            let wait = if let rate = congestion.pacingRate {
                pacer.delay(until: now, bytes: limit, rate: rate)  // BBR's own rate (draft-ietf-ccwg-bbr §5.6.2)
            } else {
                pacer.delay(until: now, bytes: limit, cwnd: congestion.congestionWindow, smoothedRTTNanoseconds: recovery.rtt.smoothedRTTNanoseconds)
            }
            if let wait, wait > now {
                pacingDeadline = wait
                allowData = false
            } else {
                pacingDeadline = nil
            }
        }

        if allowData, hasDataToSend, let probe = pathMTUProbeDue() {
            // A probe is larger than the path's datagrams: it starts a train of its own.
            guard train.room(for: paths.current.remote, from: paths.current.local, ecn: mark, limit: probe) == probe else { return .noRoom }
            if writePathMTUProbe(size: probe, ecn: mark, into: &train) { return .written }
        }

        // The datagram's packets, one per space at most, are written one after the other.
        // Each is sealed once the next one is planned; the last stays open for PADDING.
        let datagramStart = train.writer.count
        var last: PacketPlan?
        var used = 0
        var needsPadding = false
        var sentAckEliciting = false
        var sentHandshake = false
        func sealPlanned(_ plan: PacketPlan) {
            seal(plan, in: &train, ecn: mark)
            sentAckEliciting = sentAckEliciting || plan.ackEliciting
            sentHandshake = sentHandshake || plan.type == .handshake
        }
        for rawSpace in firstSpace..<spaces.count {
            let space = PacketNumberSpace(rawValue: rawSpace)!
            // A datagram with an ack-eliciting Initial packet must reach 1200 bytes (RFC 9000
            // §14.1): below that budget a server can still acknowledge.
            let ackOnly = space == .initial && budget < 1200
            guard let plan = planPacket(space: space, room: budget - used, allowData: allowData, ackOnly: ackOnly, into: &train)
            else { continue }
            if let previous = last.take() { sealPlanned(previous) }
            used += plan.size
            // Padding (RFC 9000 §14.1, §8.2.1): datagrams with Initial packets (the client's
            // all, the server's ack-eliciting ones) and path validation frames reach 1200 bytes.
            needsPadding = needsPadding || (plan.type == .initial && (role == .client || plan.ackEliciting)) || plan.pathFrames
            last = plan
            if budget - used < 64 { break }
        }
        guard var plan = last.take() else { return .nothing }
        let target = min(1200, budget)
        if needsPadding, used < target {
            // Zeros after the tag's room become the payload's end: PADDING frames are zero
            // bytes, and the tag is written over the packet's last 16 bytes when it is sealed.
            train.writer.writeZeros(target - used)
            plan.size += target - used
            plan.padded = true
            used = target
        }
        sealPlanned(plan)
        assert(train.writer.count - datagramStart == used, "datagram of \(train.writer.count - datagramStart) bytes, \(used) planned")
        statistics.datagramsSent += 1
        statistics.bytesSent += used
        paths.current.bytesSent += used
        if role == .server, !paths.current.isValidated { recovery.isAtAntiAmplificationLimit = paths.current.amplificationBudget == 0 }
        if sentAckEliciting { lastAckElicitingSent = now }
        if sentAckEliciting, !ackElicitingSentSinceReceive {
            idleDeadlineBase = now
            ackElicitingSentSinceReceive = true
        }
        // A client discards Initial keys when it first sends a Handshake packet (RFC 9001 §4.9.1).
        if role == .client, sentHandshake { discardSpace(.initial) }
        train.commit(length: used, room: room, destination: paths.current.remote, source: paths.current.local, ecn: mark)
        return .written
    }

    private var hasDataToSend: Bool {
        streams.hasStreamDataToSend || !pendingDatagrams.isEmpty
    }

    /// The type of the packets sent in `space` now, which decides their key (the space's, 1-RTT,
    /// or a client's 0-RTT); `nil` when it has no key. Asked for every packet planned: it looks
    /// at the keys without copying one (a key copy retains its contexts).
    private func sendPacketType(for space: PacketNumberSpace) -> PacketType? {
        switch space {
        case .initial: return spaces[0].isDiscarded || spaces[0].writeKey == nil ? nil : .initial
        case .handshake: return spaces[1].isDiscarded || spaces[1].writeKey == nil ? nil : .handshake
        case .applicationData:
            if appKeys.isInstalled() { return .oneRTT }
            return role == .client && early.write != nil ? .zeroRTT : nil
        }
    }

    /// The most bytes a long-header packet is planned with: its Length field is written with 2
    /// bytes (up to 16 383).
    private static let maxLongPacket = 16_000

    private func headerLength(type: PacketType, packetNumberLength: Int) -> Int {
        let dcid = cids.activePeer.count
        guard type != .oneRTT else { return 1 + dcid + packetNumberLength }
        let scid = cids.local.first?.id.count ?? 0
        var length = 1 + 4 + 1 + dcid + 1 + scid + 2 + packetNumberLength
        if type == .initial { length += VarInt.encodedLength(UInt64(initialToken.count)) + initialToken.count }
        return length
    }

    /// Chooses the frames of the next packet in `space`, within `room` bytes, and writes the
    /// packet (unsealed) at the end of `train`'s buffer; `nil`, with nothing written, when nothing is
    /// worth sending.
    private func planPacket(space: PacketNumberSpace, room: Int, allowData: Bool, ackOnly: Bool = false,
                            into train: inout DatagramTrain) -> PacketPlan? {
        guard let type = sendPacketType(for: space) else { return nil }
        let index = space.rawValue
        let room = type == .oneRTT ? room : min(room, Self.maxLongPacket)
        var plan = makePlan(space: space, type: type, into: &train)
        var remaining = room - plan.headerLength - AEADKey.tagLength
        guard remaining >= 16 else {
            discard(plan, in: &train)
            return nil
        }

        // ACK (not in 0-RTT) first. Frames are encoded as they are chosen; a plan that ends up
        // with nothing worth sending is dropped whole (ACK state changes only when it is sealed).
        if type != .zeroRTT, spaces[index].ack.hasNewPackets,
           let ack = spaces[index].ack.makeAckFrame(now: now, ackDelayExponent: configuration.ackDelayExponent) {
            let frame = Frame.ack(ack)
            let length = frame.encodedLength
            if length <= remaining {
                frame.encode(into: &train.writer)
                train.plannedFrames[index].append(.ack(largest: ack.largestAcknowledged))
                plan.carriesAck = true
                remaining -= length
            }
        }
        let probe = spaces[index].probesDue > 0
        func add(_ frame: Frame, _ info: SentFrameInfo?) {
            remaining -= frame.encodedLength
            frame.encode(into: &train.writer)
            if let info { train.plannedFrames[index].append(info) }
            plan.ackEliciting = true
        }

        // Handshake data is not held back by the congestion window: a window filled with
        // 1-RTT packets the server cannot decrypt yet would otherwise block the client's
        // retransmitted Finished while no PTO is armed (RFC 9002 §6.2.1 arms no Application
        // Data PTO before confirmation).
        if !ackOnly, allowData || probe || space != .applicationData {
            // CRYPTO data, retransmissions first.
            if type == .initial, let range = initialCryptoRepeat {
                // A repeat of our Initial CRYPTO data (RFC 9002 §6.2.3), before anything new.
                let length = min(range.count, remaining - 1 - 8 - 2)
                if remaining > 24, length > 0 {
                    let data = Array(initialCryptoSent[range.lowerBound..<(range.lowerBound + length)])
                    add(.crypto(offset: UInt64(range.lowerBound), data: data), .crypto(offset: UInt64(range.lowerBound), length: length))
                    initialCryptoRepeat = length == range.count ? nil : (range.lowerBound + length)..<range.upperBound
                }
            }
            if type != .zeroRTT {
                while remaining > 24,
                      let range = spaces[index].cryptoSend.nextRange(maxLength: remaining - 1 - 8 - 2) {
                    add(.crypto(offset: range.offset, data: range.data), .crypto(offset: range.offset, length: range.data.count))
                }
            }
            if type == .oneRTT { addControlFrames(&plan, &remaining, into: &train) }
            if type == .oneRTT || type == .zeroRTT {
                while let datagram = pendingDatagrams.first, Frame.datagram(data: datagram).encodedLength <= remaining {
                    pendingDatagrams.removeFirst()
                    add(.datagram(data: datagram), .datagram)
                }
                while remaining > 16 {
                    let before = train.writer.count
                    guard let info = streams.encodeNextStreamFrame(into: &train.writer, maxLength: remaining) else { break }
                    remaining -= train.writer.count - before
                    train.plannedFrames[index].append(info)
                    plan.ackEliciting = true
                }
            }
            if probe, !plan.ackEliciting { add(.ping, .ping) }
        }
        guard plan.ackEliciting || (plan.carriesAck && spaces[index].ack.isAckDue(at: now)) else {
            discard(plan, in: &train)
            return nil
        }
        finish(&plan, in: &train)
        return plan
    }

    /// Adds the 1-RTT control frames that fit: HANDSHAKE_DONE, path validation, connection
    /// IDs, NEW_TOKEN and the stream layer's flow-control and reset frames.
    private func addControlFrames(_ plan: inout PacketPlan, _ remaining: inout Int, into train: inout DatagramTrain) {
        func add(_ frame: Frame, _ info: SentFrameInfo?) -> Bool {
            let length = frame.encodedLength
            guard length <= remaining else { return false }
            remaining -= length
            frame.encode(into: &train.writer)
            if let info { train.plannedFrames[plan.space.rawValue].append(info) }
            plan.ackEliciting = true
            return true
        }
        if handshakeDonePending, add(.handshakeDone, .handshakeDone) { handshakeDonePending = false }
        while let index = paths.pendingResponses.firstIndex(where: { $0.to == paths.current.remote && $0.from == paths.current.local }),
              add(.pathResponse(paths.pendingResponses[index].data), .pathResponse) {
            paths.pendingResponses.remove(at: index)
            plan.pathFrames = true
        }
        if paths.current.challengePending, let data = paths.current.challenge, add(.pathChallenge(data), .pathChallenge) {
            paths.current.challengePending = false
            plan.pathFrames = true
        }
        while let sequence = cids.pendingNewConnectionIDs.first {
            guard let issued = cids.localID(sequence: sequence) else {
                cids.pendingNewConnectionIDs.removeFirst()
                continue
            }
            let frame = Frame.newConnectionID(sequence: sequence, retirePriorTo: 0, connectionID: issued.id.bytes, resetToken: issued.resetToken)
            guard add(frame, .newConnectionID(sequence: sequence)) else { break }
            cids.pendingNewConnectionIDs.removeFirst()
        }
        while let sequence = cids.pendingRetirements.first, add(.retireConnectionID(sequence: sequence), .retireConnectionID(sequence: sequence)) {
            cids.pendingRetirements.removeFirst()
        }
        if isHandshakeConfirmed, let token = pendingNewToken, add(.newToken(token), .newToken) {
            lastNewToken = token
            pendingNewToken = nil
        }
        pendingControl += streams.pendingFrames()
        while let frame = pendingControl.first, add(frame, SentFrameInfo(streamFrame: frame)) {
            pendingControl.removeFirst()
        }
    }

    /// Seals `plan`'s packet where it lies in `train`'s buffer (the long header's Length field,
    /// encryption and header protection) and records it as sent in a datagram marked `ecn`.
    private func seal(_ plan: PacketPlan, in train: inout DatagramTrain, ecn codepoint: ECNCodepoint) {
        let index = plan.space.rawValue
        train.writer.bytes.withUnsafeMutableBytes { bytes in
            let packet = UnsafeMutableRawBufferPointer(rebasing: bytes[plan.start..<(plan.start + plan.size)])
            if plan.type != .oneRTT {
                // The long header's Length field (2 bytes before the packet number): the packet
                // number and the payload with its tag. Plans of long-header packets are capped
                // at maxLongPacket, so it fits 2 bytes.
                let length = plan.size - plan.headerLength + plan.packetNumberLength
                packet[plan.packetNumberOffset - 2] = 0x40 | UInt8(truncatingIfNeeded: length >> 8)
                packet[plan.packetNumberOffset - 1] = UInt8(truncatingIfNeeded: length)
            }
            // With the key sendPacketType(for:) chose when the packet was planned, in this same
            // call; used where it is stored (a copy per packet retains its contexts).
            switch plan.space {
            case .initial, .handshake:
                spaces[index].writeKey!.protectInPlace(
                    sealing: packet, packetNumberOffset: plan.packetNumberOffset, packetNumber: plan.packetNumber)
            case .applicationData where appKeys.isInstalled():
                appKeys!.write.protectInPlace(sealing: packet, packetNumberOffset: plan.packetNumberOffset, packetNumber: plan.packetNumber)
            case .applicationData:
                early.write!.protectInPlace(sealing: packet, packetNumberOffset: plan.packetNumberOffset, packetNumber: plan.packetNumber)
            }
        }

        spaces[index].nextPacketNumber += 1
        if plan.carriesAck { spaces[index].ack.onAckSent() }
        if plan.ackEliciting, spaces[index].probesDue > 0 { spaces[index].probesDue -= 1 }
        // A PTO sends two probes (RFC 9002 §6.2.4): in the handshake spaces both carry the
        // CRYPTO data, so that one lost probe does not leave only a PING to arrive.
        if plan.space != .applicationData, spaces[index].probesDue > 0 {
            for case .crypto(let offset, let length) in train.plannedFrames[index] {
                spaces[index].cryptoSend.onLost(offset: offset, length: length)
            }
        }
        if plan.type == .oneRTT {
            appKeys?.noteSent(plan.packetNumber)
        }
        let inFlight = plan.ackEliciting || plan.padded
        qlog?.packetSent(type: plan.type, packetNumber: plan.packetNumber, size: plan.size, frames: train.plannedFrames[index])
        if let traceHandler {
            traceHandler("\(now) \(role) sent \(plan.type) pn=\(plan.packetNumber) size=\(plan.size) \(Array(train.plannedFrames[index]))")
        }
        var frames = SentFrameInfos()
        swap(&frames, &train.plannedFrames[index])  // moved into the record, not copied
        let delivery = inFlight
            ? congestion.deliveryState(sending: plan.size, now: now, bytesInFlight: recovery.bytesInFlight + plan.size) : DeliveryState()
        recovery.onPacketSent(SentPacket(packetNumber: plan.packetNumber, size: plan.size, ackEliciting: plan.ackEliciting,
                                         inFlight: inFlight, frames: frames, ecn: codepoint, delivery: delivery), space: plan.space, now: now)
        if codepoint != .notECT { onMarkedPacketSent(space: plan.space) }
        if inFlight {
            congestion.onPacketSent(bytes: plan.size, now: now, bytesInFlight: recovery.bytesInFlight)
            pacer.onSent(bytes: plan.size, now: now)
        }
        statistics.packetsSent += 1
    }

    /// Writes a datagram of one packet in the 1-RTT space holding `frame` (recorded as `info`),
    /// padded with PADDING frames to `size` bytes when given, marked `ecn`: `false`, with
    /// nothing written, when it does not fit `room` or 1-RTT keys are missing.
    private func writeSinglePacket(_ frame: Frame, _ info: SentFrameInfo, paddedTo size: Int?, room: Int, to destination: SocketAddress,
                                   from source: SocketAddress?, ecn codepoint: ECNCodepoint, into train: inout DatagramTrain) -> Bool {
        guard sendPacketType(for: .applicationData) == .oneRTT else { return false }
        var plan = makePlan(space: .applicationData, type: .oneRTT, into: &train)
        frame.encode(into: &train.writer)
        train.plannedFrames[plan.space.rawValue].append(info)
        plan.ackEliciting = true
        finish(&plan, in: &train)
        if let size, plan.size < size {
            train.writer.writeZeros(size - plan.size)
            plan.size = size
            plan.padded = true
        }
        guard plan.size <= room else {
            discard(plan, in: &train)
            return false
        }
        seal(plan, in: &train, ecn: codepoint)
        statistics.datagramsSent += 1
        statistics.bytesSent += plan.size
        train.commit(length: plan.size, room: room, destination: destination, source: source, ecn: codepoint)
        return true
    }

    /// A PATH_RESPONSE on a path other than the current one, where the challenge came from
    /// (RFC 9000 §8.2.2), padded to 1200 bytes if the 3× budget there allows.
    private func writePathResponse(_ response: PathResponse, room: Int, into train: inout DatagramTrain) -> Bool {
        let target = min(1200, response.budget, room)
        return writeSinglePacket(.pathResponse(response.data), .pathResponse, paddedTo: target, room: min(room, max(target, 64)),
                                 to: response.to, from: response.from, ecn: .notECT, into: &train)
    }

    // MARK: - Path MTU discovery

    /// The size of the path MTU probe to send now, if one is due (RFC 9000 §14.3): after the
    /// handshake is confirmed, on a validated path, one probe at a time, within the window.
    private func pathMTUProbeDue() -> Int? {
        guard configuration.pathMTUDiscovery, isHandshakeConfirmed, appKeys.isInstalled(), paths.current.isValidated, paths.current.mtuProbe == nil,
              let size = paths.current.nextMTUProbe(ceiling: datagramSizeCeiling),
              recovery.bytesInFlight + size <= congestion.congestionWindow
        else { return nil }
        return size
    }

    /// A datagram of exactly `size` bytes holding one 1-RTT packet with PING and PADDING
    /// (RFC 9000 §14.4), marked `ecn` like the path's other datagrams.
    private func writePathMTUProbe(size: Int, ecn: ECNCodepoint, into train: inout DatagramTrain) -> Bool {
        guard writeSinglePacket(.ping, .pmtuProbe(size: size), paddedTo: size, room: size, to: paths.current.remote, from: paths.current.local, ecn: ecn,
                                into: &train)
        else { return false }
        paths.current.mtuProbe = size
        paths.current.bytesSent += size
        lastAckElicitingSent = now
        return true
    }

    // MARK: - Closing

    /// CONNECTION_CLOSE in every space we can send in (RFC 9000 §10.2.3): an application
    /// close becomes APPLICATION_ERROR without a reason in Initial and Handshake packets.
    private func writeClose(into train: inout DatagramTrain) -> DatagramOutcome {
        guard closing.sendsPending > 0, let close = closing.frame else { return .nothing }
        guard let room = train.room(for: paths.current.remote, from: paths.current.local, ecn: .notECT, limit: datagramSizeLimit) else { return .noRoom }
        closing.sendsPending -= 1
        let budget = min(room, paths.current.amplificationBudget)
        let datagramStart = train.writer.count
        for space in PacketNumberSpace.allCases {
            guard let type = sendPacketType(for: space), type != .zeroRTT else { continue }
            var frame = close
            if type != .oneRTT, close.isApplication {
                frame = .transport(.applicationError)
            }
            frame.reason = Array(frame.reason.prefix(128))
            var plan = makePlan(space: space, type: type, into: &train)
            Frame.connectionClose(frame).encode(into: &train.writer)
            finish(&plan, in: &train)
            let used = train.writer.count - datagramStart
            if type == .initial, role == .client, used < 1200 {
                train.writer.writeZeros(1200 - used)
                plan.size += 1200 - used
            }
            guard train.writer.count - datagramStart <= budget else {
                discard(plan, in: &train)
                break
            }
            seal(plan, in: &train, ecn: .notECT)
        }
        let length = train.writer.count - datagramStart
        guard length > 0 else { return .nothing }
        statistics.datagramsSent += 1
        statistics.bytesSent += length
        paths.current.bytesSent += length
        train.commit(length: length, room: room, destination: paths.current.remote, source: paths.current.local, ecn: .notECT)
        return .written
    }
}

public import QuiverCore
import QuiverTLS

extension QUICConnection {
    /// One packet being assembled.
    private struct PacketPlan {
        var space: PacketNumberSpace
        var type: PacketType
        var packetNumber: UInt64
        var packetNumberLength: Int
        var headerLength: Int
        /// Where the packet number starts (header protection needs it).
        var packetNumberOffset: Int
        /// The packet as it is built: the header (``makePlan(space:type:capacity:)`` writes it
        /// first, a long header's Length field to be filled in by ``seal(_:)``), then the
        /// frames; sealing encrypts in place and appends the tag.
        var buffer: ByteWriter
        var infos: [SentFrameInfo] = []
        var ackEliciting = false
        var padded = false
        var carriesAck = false
        var pathFrames = false

        var payloadCount: Int { buffer.count - headerLength }
        var size: Int { buffer.count + AEADKey.tagLength }
    }

    /// The packets of one datagram, at most one per packet-number space, kept inline: no heap
    /// allocation per datagram for the list.
    private struct DatagramPlans {
        private var plans: InlineArray<3, PacketPlan?> = .init(repeating: nil)
        private(set) var count = 0

        var isEmpty: Bool { count == 0 }

        subscript(index: Int) -> PacketPlan { plans[index]! }

        mutating func append(_ plan: PacketPlan) {
            plans[count] = plan
            count += 1
        }

        func contains(where predicate: (PacketPlan) -> Bool) -> Bool {
            for index in 0..<count where predicate(plans[index]!) { return true }
            return false
        }

        /// PADDING at the end of the last packet.
        mutating func padLast(with bytes: Int) {
            plans[count - 1]!.buffer.writeZeros(bytes)
            plans[count - 1]!.padded = true
        }

        /// Seals plan `index` with `seal`. The plan is moved out first, so its buffer — which
        /// becomes the packet — is uniquely referenced and sealed without a copy.
        mutating func seal(_ index: Int, with seal: (inout PacketPlan) -> [UInt8]) -> [UInt8] {
            var plan = plans[index].take()!
            defer { plans[index] = plan }
            return seal(&plan)
        }
    }

    /// A packet plan for the next packet number of `space`, its header written (the packet is
    /// built in one buffer, which becomes the datagram). `capacity` is the room the frames may
    /// fill, header included.
    private func makePlan(space: PacketNumberSpace, type: PacketType, capacity: Int = 1200) -> PacketPlan {
        let number = spaces[space.rawValue].nextPacketNumber
        let pnLength = PacketNumber.encodingLength(number, largestAcknowledged: recovery.largestAcked(in: space))
        let headerLength = headerLength(type: type, packetNumberLength: pnLength)
        var buffer = ByteWriter(capacity: max(capacity, headerLength) + AEADKey.tagLength)
        let pnOffset: Int
        if type == .oneRTT {
            pnOffset = ShortHeader(destinationConnectionID: cids.activePeer)
                .encode(into: &buffer, packetNumber: number, packetNumberLength: pnLength, keyPhase: appKeys?.phase ?? false)
        } else {
            // The Length field is written with 2 bytes (room for any packet that fits a UDP
            // datagram of up to 16 383 bytes); seal(_:) writes the real value.
            pnOffset = LongHeader(type: type, version: type == .zeroRTT ? originalVersion : version,
                                  destinationConnectionID: cids.activePeer,
                                  sourceConnectionID: cids.local.first?.id ?? .empty,
                                  token: type == .initial ? initialToken : [])
                .encode(into: &buffer, packetNumber: number, packetNumberLength: pnLength, payloadLength: 0)
        }
        assert(buffer.count == headerLength, "header of \(buffer.count) bytes, \(headerLength) planned")
        return PacketPlan(space: space, type: type, packetNumber: number, packetNumberLength: pnLength, headerLength: buffer.count,
                          packetNumberOffset: pnOffset, buffer: buffer)
    }

    /// The next datagram to send, or `nil` when nothing is due (flow, congestion, pacing or
    /// the amplification limit may hold data back; ``nextDeadline`` says when to try again).
    /// Call it until it returns `nil` after every ``receive(_:from:ecn:at:)``,
    /// ``handleTimeout(at:)`` and application command.
    public func transmit(at now: Instant) -> OutgoingDatagram? {
        advanceClock(now)
        switch state {
        case .closed, .draining:
            return nil
        case .closing:
            return transmitClose()
        case .handshaking, .established:
            break
        }
        if let keys = appKeys, keys.packetsSentInPhase >= keyUpdateThreshold { _ = initiateKeyUpdate() }
        if !earlyStreamReplay.isEmpty, peerTransportParameters != nil { replayEarlyStreams() }
        if let index = pendingPathResponses.firstIndex(where: { $0.to != path.remote }) {
            let response = pendingPathResponses.remove(at: index)
            if let datagram = transmitPathResponse(response) { return datagram }
        }

        let limit = datagramSizeLimit
        let budget = min(limit, path.amplificationBudget)
        guard budget >= 64 else {
            recovery.isAtAntiAmplificationLimit = role == .server && !path.isValidated
            return nil
        }
        let probing = spaces.contains { $0.probesDue > 0 }
        var allowData = probing || recovery.bytesInFlight + limit <= congestion.congestionWindow
        if allowData, !probing, configuration.pacing, hasDataToSend {
            if let wait = pacer.delay(until: now, bytes: limit, cwnd: congestion.congestionWindow, smoothedRTT: recovery.rtt.smoothedRTT),
               wait > now {
                pacingDeadline = wait
                allowData = false
            } else {
                pacingDeadline = nil
            }
        }

        if allowData, hasDataToSend, let probe = pathMTUProbeDue(), let datagram = transmitPathMTUProbe(size: probe) {
            return datagram
        }

        var plans = DatagramPlans()
        var used = 0
        for space in PacketNumberSpace.allCases {
            // A datagram with an ack-eliciting Initial packet must reach 1200 bytes (RFC 9000
            // §14.1): below that budget a server can still acknowledge.
            let ackOnly = space == .initial && budget < 1200
            guard let plan = planPacket(space: space, room: budget - used, allowData: allowData, ackOnly: ackOnly) else { continue }
            used += plan.size
            plans.append(plan)
            if budget - used < 64 { break }
        }
        guard !plans.isEmpty else { return nil }

        // Padding (RFC 9000 §14.1, §8.2.1): datagrams with Initial packets (the client's all,
        // the server's ack-eliciting ones) and path validation frames reach 1200 bytes.
        let hasInitial = plans.contains { $0.type == .initial && (role == .client || $0.ackEliciting) }
        let pathFrames = plans.contains { $0.pathFrames }
        if hasInitial || pathFrames {
            let target = min(1200, budget)
            if used < target {
                plans.padLast(with: target - used)
                used = target
            }
        }

        var datagram: [UInt8] = []
        if plans.count > 1 { datagram.reserveCapacity(used) }
        var sentAckEliciting = false
        var sentHandshake = false
        for i in 0..<plans.count {
            let sealed = plans.seal(i, with: seal)  // first: the plan's buffer becomes the packet, uniquely
            if plans.count == 1 { datagram = sealed } else { datagram += sealed }
            let plan = plans[i]
            // A PTO sends two probes (RFC 9002 §6.2.4): in the handshake spaces both carry the
            // CRYPTO data, so that one lost probe does not leave only a PING to arrive.
            if plan.space != .applicationData, spaces[plan.space.rawValue].probesDue > 0 {
                for case .crypto(let offset, let length) in plan.infos {
                    spaces[plan.space.rawValue].cryptoSend.onLost(offset: offset, length: length)
                }
            }
            sentAckEliciting = sentAckEliciting || plan.ackEliciting
            sentHandshake = sentHandshake || plan.type == .handshake
        }
        statistics.datagramsSent += 1
        statistics.bytesSent += datagram.count
        path.bytesSent += datagram.count
        if role == .server, !path.isValidated { recovery.isAtAntiAmplificationLimit = path.amplificationBudget == 0 }
        if sentAckEliciting { lastAckElicitingSent = now }
        if sentAckEliciting, !ackElicitingSentSinceReceive {
            idleDeadlineBase = now
            ackElicitingSentSinceReceive = true
        }
        // A client discards Initial keys when it first sends a Handshake packet (RFC 9001 §4.9.1).
        if role == .client, sentHandshake { discardSpace(.initial) }
        return OutgoingDatagram(bytes: datagram, destination: path.remote)
    }

    private var hasDataToSend: Bool {
        streams.hasStreamDataToSend || !pendingDatagrams.isEmpty
    }

    /// The packet type and key for `space` now, if we can send in it.
    private func sendKey(for space: PacketNumberSpace) -> (PacketType, PacketKey)? {
        switch space {
        case .initial:
            return spaces[0].isDiscarded ? nil : spaces[0].writeKey.map { (.initial, $0) }
        case .handshake:
            return spaces[1].isDiscarded ? nil : spaces[1].writeKey.map { (.handshake, $0) }
        case .applicationData:
            if let keys = appKeys { return (.oneRTT, keys.write) }
            if role == .client, let key = zeroRTTWrite { return (.zeroRTT, key) }
            return nil
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

    /// Chooses the frames of the next packet in `space`, within `room` bytes.
    private func planPacket(space: PacketNumberSpace, room: Int, allowData: Bool, ackOnly: Bool = false) -> PacketPlan? {
        guard let (type, _) = sendKey(for: space) else { return nil }
        let index = space.rawValue
        var plan = makePlan(space: space, type: type, capacity: type == .oneRTT ? room : min(room, Self.maxLongPacket))
        var remaining = room - plan.headerLength - AEADKey.tagLength
        guard remaining >= 16 else { return nil }

        // ACK (not in 0-RTT) first. Frames are encoded as they are chosen; a plan that ends up
        // with nothing worth sending is dropped whole (ACK state changes only when it is sealed).
        if type != .zeroRTT, spaces[index].ack.hasNewPackets,
           let ack = spaces[index].ack.makeAckFrame(now: now, ackDelayExponent: configuration.ackDelayExponent) {
            let frame = Frame.ack(ack)
            let length = frame.encodedLength
            if length <= remaining {
                frame.encode(into: &plan.buffer)
                plan.infos.append(.ack(largest: ack.largestAcknowledged))
                plan.carriesAck = true
                remaining -= length
            }
        }
        let probe = spaces[index].probesDue > 0
        func add(_ frame: Frame, _ info: SentFrameInfo?) {
            remaining -= frame.encodedLength
            frame.encode(into: &plan.buffer)
            if let info { plan.infos.append(info) }
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
            if type == .oneRTT { addControlFrames(&plan, &remaining) }
            if type == .oneRTT || type == .zeroRTT {
                while let datagram = pendingDatagrams.first, Frame.datagram(data: datagram).encodedLength <= remaining {
                    pendingDatagrams.removeFirst()
                    add(.datagram(data: datagram), .datagram)
                }
                while remaining > 16 {
                    let before = plan.buffer.count
                    guard let info = streams.encodeNextStreamFrame(into: &plan.buffer, maxLength: remaining) else { break }
                    remaining -= plan.buffer.count - before
                    plan.infos.append(info)
                    plan.ackEliciting = true
                }
            }
            if probe, !plan.ackEliciting { add(.ping, .ping) }
        }
        guard plan.ackEliciting || (plan.carriesAck && spaces[index].ack.isAckDue(at: now))
        else { return nil }
        // Header protection samples 16 bytes starting 4 bytes after the packet number
        // (RFC 9001 §5.4.2): the packet number and payload together need at least 4 bytes.
        if plan.packetNumberLength + plan.payloadCount < 4 {
            plan.buffer.writeZeros(4 - plan.packetNumberLength - plan.payloadCount)
            plan.padded = true
        }
        return plan
    }

    /// Adds the 1-RTT control frames that fit: HANDSHAKE_DONE, path validation, connection
    /// IDs, NEW_TOKEN and the stream layer's flow-control and reset frames.
    private func addControlFrames(_ plan: inout PacketPlan, _ remaining: inout Int) {
        func add(_ frame: Frame, _ info: SentFrameInfo?) -> Bool {
            let length = frame.encodedLength
            guard length <= remaining else { return false }
            remaining -= length
            frame.encode(into: &plan.buffer)
            if let info { plan.infos.append(info) }
            plan.ackEliciting = true
            return true
        }
        if handshakeDonePending, add(.handshakeDone, .handshakeDone) { handshakeDonePending = false }
        while let index = pendingPathResponses.firstIndex(where: { $0.to == path.remote }),
              add(.pathResponse(pendingPathResponses[index].data), .pathResponse) {
            pendingPathResponses.remove(at: index)
            plan.pathFrames = true
        }
        if path.challengePending, let data = path.challenge, add(.pathChallenge(data), .pathChallenge) {
            path.challengePending = false
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

    /// Writes the header into `plan`'s buffer, protects the packet in place and records it;
    /// returns the packet (taken out of `plan`).
    private func seal(_ plan: inout PacketPlan) -> [UInt8] {
        guard let (_, key) = sendKey(for: plan.space) else { return [] }
        let index = plan.space.rawValue
        let length = plan.packetNumberLength + plan.payloadCount + AEADKey.tagLength
        var packet = plan.buffer.bytes
        plan.buffer.bytes = []  // the packet's storage is now uniquely `packet`'s
        if plan.type != .oneRTT {
            // The long header's Length field (2 bytes before the packet number): the packet
            // number and the payload with its tag. Plans of long-header packets are capped at
            // maxLongPacket, so it fits 2 bytes.
            packet[plan.packetNumberOffset - 2] = 0x40 | UInt8(truncatingIfNeeded: length >> 8)
            packet[plan.packetNumberOffset - 1] = UInt8(truncatingIfNeeded: length)
        }
        key.protect(&packet, packetNumberOffset: plan.packetNumberOffset, packetNumber: plan.packetNumber)

        spaces[index].nextPacketNumber += 1
        if plan.carriesAck { spaces[index].ack.onAckSent() }
        if plan.ackEliciting, spaces[index].probesDue > 0 { spaces[index].probesDue -= 1 }
        if plan.type == .oneRTT {
            appKeys?.packetsSentInPhase += 1
            if appKeys?.firstSentInPhase == nil { appKeys?.firstSentInPhase = plan.packetNumber }
        }
        let inFlight = plan.ackEliciting || plan.padded
        recovery.onPacketSent(SentPacket(packetNumber: plan.packetNumber, size: packet.count, ackEliciting: plan.ackEliciting,
                                         inFlight: inFlight, frames: plan.infos), space: plan.space, now: now)
        if inFlight {
            congestion.onPacketSent(bytes: packet.count, now: now, bytesInFlight: recovery.bytesInFlight)
            pacer.onSent(bytes: packet.count, now: now)
        }
        statistics.packetsSent += 1
        if let traceHandler {
            traceHandler("\(now) \(role) sent \(plan.type) pn=\(plan.packetNumber) size=\(packet.count) \(plan.infos)")
        }
        return packet
    }

    /// A PATH_RESPONSE to an address other than the current path's, where the challenge came
    /// from (RFC 9000 §8.2.2), padded to 1200 bytes if the 3× budget there allows.
    private func transmitPathResponse(_ response: (data: [UInt8], to: SocketAddress, budget: Int)) -> OutgoingDatagram? {
        guard appKeys != nil else { return nil }
        var plan = makePlan(space: .applicationData, type: .oneRTT)
        Frame.pathResponse(response.data).encode(into: &plan.buffer)
        plan.infos = [.pathResponse]
        plan.ackEliciting = true
        let target = min(1200, response.budget)
        if plan.size < target { plan.buffer.writeZeros(target - plan.size) }
        guard plan.size <= max(target, 64) else { return nil }
        let bytes = seal(&plan)
        statistics.datagramsSent += 1
        statistics.bytesSent += bytes.count
        return OutgoingDatagram(bytes: bytes, destination: response.to)
    }

    // MARK: - Path MTU discovery

    /// The size of the path MTU probe to send now, if one is due (RFC 9000 §14.3): after the
    /// handshake is confirmed, on a validated path, one probe at a time, within the window.
    private func pathMTUProbeDue() -> Int? {
        guard configuration.pathMTUDiscovery, isHandshakeConfirmed, appKeys != nil, path.isValidated, path.mtuProbe == nil,
              let size = path.nextMTUProbe(ceiling: datagramSizeCeiling),
              recovery.bytesInFlight + size <= congestion.congestionWindow
        else { return nil }
        return size
    }

    /// A datagram of exactly `size` bytes holding one 1-RTT packet with PING and PADDING
    /// (RFC 9000 §14.4).
    private func transmitPathMTUProbe(size: Int) -> OutgoingDatagram? {
        var plan = makePlan(space: .applicationData, type: .oneRTT, capacity: size)
        Frame.ping.encode(into: &plan.buffer)
        guard plan.size < size else { return nil }
        plan.buffer.writeZeros(size - plan.size)
        plan.infos = [.pmtuProbe(size: size)]
        plan.ackEliciting = true
        plan.padded = true
        path.mtuProbe = size
        let bytes = seal(&plan)
        statistics.datagramsSent += 1
        statistics.bytesSent += bytes.count
        path.bytesSent += bytes.count
        lastAckElicitingSent = now
        return OutgoingDatagram(bytes: bytes, destination: path.remote)
    }

    // MARK: - Closing

    /// CONNECTION_CLOSE in every space we can send in (RFC 9000 §10.2.3): an application
    /// close becomes APPLICATION_ERROR without a reason in Initial and Handshake packets.
    private func transmitClose() -> OutgoingDatagram? {
        guard closeSendsPending > 0, let close = closeFrame else { return nil }
        closeSendsPending -= 1
        let budget = min(datagramSizeLimit, path.amplificationBudget)
        var datagram: [UInt8] = []
        for space in PacketNumberSpace.allCases {
            guard let (type, _) = sendKey(for: space), type != .zeroRTT else { continue }
            var frame = close
            if type != .oneRTT, close.isApplication {
                frame = .transport(.applicationError)
            }
            frame.reason = Array(frame.reason.prefix(128))
            var plan = makePlan(space: space, type: type)
            Frame.connectionClose(frame).encode(into: &plan.buffer)
            if plan.packetNumberLength + plan.payloadCount < 4 { plan.buffer.writeZeros(4 - plan.packetNumberLength - plan.payloadCount) }
            if type == .initial, role == .client, datagram.count + plan.size < 1200 {
                plan.buffer.writeZeros(1200 - datagram.count - plan.size)
            }
            guard datagram.count + plan.size <= budget else { break }
            datagram += seal(&plan)
        }
        guard !datagram.isEmpty else { return nil }
        statistics.datagramsSent += 1
        statistics.bytesSent += datagram.count
        path.bytesSent += datagram.count
        return OutgoingDatagram(bytes: datagram, destination: path.remote)
    }
}

public import QuiverCore

/// DTLS 1.2 (RFC 6347) with one peer, with no I/O: the record layer and the handshake's
/// datagram transport (fragmentation, reassembly, flights and their retransmission) around a
/// ``TLSHandshake`` in datagram mode. The suites, extensions and refusals are TLS 1.2's.
///
/// Contract:
/// - Client: ``start(now:)`` queues the first flight. Server: create it for a ClientHello that
///   passed ``DTLSCookieGate`` and feed that datagram first.
/// - Feed every datagram from the peer to ``receive(_:now:)``; send every datagram
///   ``takeDatagrams()`` returns; call ``handleTimeout(now:)`` at ``nextTimeout``.
/// - Messages: ``write(_:)`` sends one record (at most ``maxMessageSize`` bytes); ``read()``
///   returns one record's payload. Datagram semantics: nothing is retransmitted after the
///   handshake, a lost message is lost.
/// - A thrown ``TLSError`` is fatal (its alert, if any, is queued). Records that do not parse,
///   authenticate or belong (old epoch, replayed) are dropped silently (RFC 6347 §4.1.2.7).
///
/// Bounds: handshake messages up to 128 KiB, reassembled only for the next 8 message_seq and
/// 128 KiB in all;
/// at most ``maxQueuedMessages`` unread messages (later ones are dropped, as the network
/// could have); a flight is retransmitted at most ``maxRetransmissions`` times (1 s, doubling
/// up to 60 s, RFC 6347 §4.2.4.1), then the handshake fails. Records of the next epoch that
/// arrive before the ChangeCipherSpec are dropped (the peer's retransmission brings them back).
/// Not thread-safe.
public final class DTLSConnection {
    /// The handshake (negotiated values are read from it).
    public let handshake: TLSHandshake
    /// The largest datagram sent (UDP payload): handshake messages are fragmented to fit
    /// (1 200 by default, what every IPv6 path carries with room for headers).
    public var mtu = 1200
    /// The largest ``write(_:)``: one record's plaintext.
    public static let maxMessageSize = 1 << 14
    /// Unread messages kept for ``read()``; more are dropped.
    public static let maxQueuedMessages = 256
    /// Retransmissions of one flight before the handshake fails.
    public static let maxRetransmissions = 6

    static let version: UInt16 = 0xFEFD
    static let headerLength = 13

    private var outgoing: [[UInt8]] = []
    private var received: [[UInt8]] = []
    private var receivedStart = 0

    // Writing.
    private var writeEpoch: UInt16 = 0
    private var writeSequence: [UInt64] = [0, 0]
    private var writeKey: TLS12RecordKey?
    /// The flight last sent, kept to retransmit: records to send again (handshake messages
    /// and ChangeCipherSpec, with the epoch each goes out in).
    private var flight: [(epoch: UInt16, type: UInt8, bytes: [UInt8])] = []
    private var timeout: Duration = .seconds(1)
    private var retransmissions = 0
    public private(set) var nextTimeout: Instant?

    // Reading.
    private var readEpoch: UInt16 = 0
    private var readKey: TLS12RecordKey?
    private var pendingReadKey: TLS12RecordKey?
    private var replay = ReplayWindow()
    private var nextReceiveSeq: UInt16 = 0
    private var fragments: [UInt16: MessageReassembly] = [:]
    private var peerRetransmitted = false
    private var sawClientHello = false
    private var failure: TLSError?

    /// `true` once the peer's `close_notify` arrived.
    public private(set) var isPeerClosed = false
    /// `true` once we queued our `close_notify`.
    public private(set) var isLocallyClosed = false

    /// A client connection.
    public convenience init(client configuration: TLSConfiguration, serverName: String?, resumption: SessionTicket? = nil) {
        self.init(handshake: TLSHandshake(client: configuration, serverName: serverName, resumption: resumption, datagram: true))
    }

    /// A server connection, for a ClientHello that passed the cookie check.
    public convenience init(server configuration: TLSConfiguration) {
        self.init(handshake: TLSHandshake(server: configuration, datagram: true))
    }

    init(handshake: TLSHandshake) {
        self.handshake = handshake
    }

    /// `true` once the handshake completed.
    public var isHandshakeComplete: Bool { handshake.isHandshakeComplete }
    /// The error that ended the connection, if any.
    public var error: TLSError? { failure }

    /// Client: queues the first flight (the ClientHello).
    public func start(now: Instant) throws(TLSError) {
        guard handshake.role == .client else { return }
        try guarded { () throws(TLSError) in
            try handshake.start()
            try drainHandshake(now: now)
        }
    }

    /// Datagrams to send, in order; empties the queue.
    public func takeDatagrams() -> [[UInt8]] {
        defer { outgoing = [] }
        return outgoing
    }

    /// Whether datagrams wait in ``takeDatagrams()``.
    public var hasDatagrams: Bool { !outgoing.isEmpty }

    /// Bytes held for handshake messages being reassembled.
    var reassemblyBytes: Int { fragments.values.reduce(0) { $0 + $1.length } }

    /// Messages waiting in ``read()``.
    public var queuedMessageCount: Int { received.count - receivedStart }

    /// The next message received, one record's payload; `nil` when none waits.
    public func read() -> [UInt8]? {
        guard receivedStart < received.count else { return nil }
        defer {
            receivedStart += 1
            if receivedStart == received.count { received = []; receivedStart = 0 }
        }
        return received[receivedStart]
    }

    /// Sends `message` as one record after the handshake.
    /// - Throws: the connection's error once it failed; `internal_error` (the connection goes
    ///   on) before the handshake completed, after ``close()``, or for a message over
    ///   ``maxMessageSize``.
    public func write(_ message: [UInt8]) throws(TLSError) {
        if let failure { throw failure }
        guard handshake.isHandshakeComplete, !isLocallyClosed else {
            throw TLSError(.internalError, "DTLS write before the handshake completed or after close")
        }
        guard message.count <= Self.maxMessageSize else {
            throw TLSError(.internalError, "DTLS message of \(message.count) bytes over one record's \(Self.maxMessageSize)")
        }
        outgoing.append(record(type: 23, message[...]))
    }

    /// Queues `close_notify`; nothing is sent after it.
    public func close() {
        guard !isLocallyClosed, failure == nil else { return }
        outgoing.append(record(type: 21, [1, AlertDescription.closeNotify.rawValue]))
        isLocallyClosed = true
        nextTimeout = nil
    }

    /// Ends the connection abortively: a fatal `user_canceled` alert instead of `close_notify`,
    /// so the peer sees a failed close (what a TCP reset is to TLS).
    public func abort() {
        guard !isLocallyClosed, failure == nil else { return }
        outgoing.append(record(type: 21, [2, AlertDescription.userCanceled.rawValue]))
        isLocallyClosed = true
        nextTimeout = nil
    }

    /// Feeds one datagram from the peer.
    public func receive(_ datagram: [UInt8], now: Instant) throws(TLSError) {
        try guarded { () throws(TLSError) in
            var offset = 0
            while datagram.count - offset >= Self.headerLength {
                let length = Int(datagram[offset + 11]) << 8 | Int(datagram[offset + 12])
                guard datagram.count - offset - Self.headerLength >= length else { break }  // truncated: the rest is dropped
                try processRecord(datagram[offset..<(offset + Self.headerLength + length)], now: now)
                offset += Self.headerLength + length
            }
            if peerRetransmitted {
                // RFC 6347 §4.2.4: the peer sent a flight again, so ours was lost: send it again.
                peerRetransmitted = false
                if !flight.isEmpty && !isLocallyClosed { sendFlight() }
            }
        }
    }

    /// Retransmits the flight that got no answer; fails the handshake after
    /// ``maxRetransmissions``.
    public func handleTimeout(now: Instant) throws(TLSError) {
        try guarded { () throws(TLSError) in
            guard let deadline = nextTimeout, !(now < deadline) else { return }
            guard retransmissions < Self.maxRetransmissions else {
                nextTimeout = nil
                throw TLSError.timedOut("DTLS handshake: no answer after \(retransmissions) retransmissions")
            }
            retransmissions += 1
            timeout = min(timeout * 2, .seconds(60))
            sendFlight()
            nextTimeout = now + timeout
        }
    }

    // MARK: Internals

    private func guarded(_ body: () throws(TLSError) -> Void) throws(TLSError) {
        if let failure { throw failure }
        do {
            try body()
        } catch {
            failure = error
            nextTimeout = nil
            if error.origin == .local && !isLocallyClosed {
                outgoing.append(record(type: 21, [2, error.alert.rawValue]))
                isLocallyClosed = true
            }
            throw error
        }
    }

    /// One record of `type` at the current write epoch.
    private func record(type: UInt8, _ content: ArraySlice<UInt8>) -> [UInt8] {
        record(type: type, content, epoch: writeEpoch)
    }

    private func record(type: UInt8, _ content: ArraySlice<UInt8>, epoch: UInt16) -> [UInt8] {
        let sequence = writeSequence[Int(epoch)]
        writeSequence[Int(epoch)] += 1
        let key = epoch == 0 ? nil : writeKey
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerLength + content.count + (key?.overhead ?? 0))
        out.append(type)
        out.append(UInt8(Self.version >> 8))
        out.append(UInt8(truncatingIfNeeded: Self.version))
        let epochSequence = UInt64(epoch) << 48 | sequence
        withUnsafeBytes(of: epochSequence.bigEndian) { out.append(contentsOf: $0) }
        let length = content.count + (key?.overhead ?? 0)
        out.append(UInt8(length >> 8))
        out.append(UInt8(truncatingIfNeeded: length))
        if let key {
            key.appendFragment(type: type, version: Self.version, content, sequence: epochSequence, into: &out)
        } else {
            out.append(contentsOf: content)
        }
        return out
    }

    /// Applies handshake events: messages join the flight being built, key changes switch epochs.
    private func drainHandshake(now: Instant) throws(TLSError) {
        var newFlight: [(epoch: UInt16, type: UInt8, bytes: [UInt8])] = []
        while let event = handshake.nextEvent() {
            switch event {
            case .send(_, let bytes):
                // Whole messages with DTLS headers, one after the other.
                var offset = 0
                while offset + 12 <= bytes.count {
                    let length = Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                    newFlight.append((writeEpoch, 22, Array(bytes[offset..<(offset + 12 + length)])))
                    offset += 12 + length
                }
            case .changeWriteCipherSpec(let key):
                newFlight.append((writeEpoch, 20, [1]))
                writeKey = key
                writeEpoch = 1
            case .expectChangeCipherSpec(let key):
                pendingReadKey = key
            case .warningAlert(let alert):
                outgoing.append(record(type: 21, [1, alert.rawValue]))
            case .handshakeComplete, .sessionTicket, .ticketIssued, .earlyData:
                break
            case .installReadSecret, .installWriteSecret:
                throw TLSError(.internalError, "TLS 1.3 keys in a DTLS 1.2 handshake")
            }
        }
        guard !newFlight.isEmpty else {
            if handshake.isHandshakeComplete {
                // The peer's final flight arrived: ours was answered, and nothing of ours is
                // left to repeat (the peer repeats its final flight only if we repeat ours).
                flight = []
                nextTimeout = nil
            }
            return
        }
        flight = newFlight
        retransmissions = 0
        timeout = .seconds(1)
        sendFlight()
        // The final flight gets no answer: no timer; it is kept only to repeat when the peer
        // repeats its own flight (RFC 6347 §4.2.4, the FINISHED state), until the peer's
        // application data shows it arrived.
        nextTimeout = handshake.isHandshakeComplete ? nil : now + timeout
    }

    /// Sends the flight: records packed into datagrams of at most ``mtu`` bytes, handshake
    /// messages fragmented to fit.
    private func sendFlight() {
        var datagram: [UInt8] = []
        func emit(_ record: [UInt8]) {
            if !datagram.isEmpty && datagram.count + record.count > mtu {
                outgoing.append(datagram)
                datagram = []
            }
            datagram += record
        }
        for item in flight {
            guard item.type == 22 else {
                emit(record(type: item.type, item.bytes[...], epoch: item.epoch))
                continue
            }
            // A handshake message, fragmented: each fragment repeats the 12-byte header with
            // its offset and length (RFC 6347 §4.2.3).
            let body = item.bytes[12...]
            let overhead = Self.headerLength + 12 + (item.epoch == 0 ? 0 : writeKey?.overhead ?? 0)
            let room = max(64, mtu - overhead)
            var offset = 0
            repeat {
                let end = min(body.count, offset + room)
                var fragment = Array(item.bytes[0..<6])
                fragment += [UInt8(truncatingIfNeeded: offset >> 16), UInt8(truncatingIfNeeded: offset >> 8), UInt8(truncatingIfNeeded: offset)]
                let length = end - offset
                fragment += [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
                fragment += body[(body.startIndex + offset)..<(body.startIndex + end)]
                emit(record(type: 22, fragment[...], epoch: item.epoch))
                offset = end
            } while offset < body.count
        }
        if !datagram.isEmpty { outgoing.append(datagram) }
    }

    private func processRecord(_ bytes: ArraySlice<UInt8>, now: Instant) throws(TLSError) {
        let h = bytes.startIndex
        let type = bytes[h]
        guard bytes[h + 1] == 0xFE else { return }  // not DTLS
        let epoch = UInt16(bytes[h + 3]) << 8 | UInt16(bytes[h + 4])
        let sequence = bytes[(h + 5)..<(h + 11)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        if handshake.role == .server && !sawClientHello {
            // The ClientHello that passed the cookie check: its message_seq and record sequence
            // number are where ours continue (RFC 6347 §4.2.1, §4.2.2).
            guard type == 22, epoch == 0, bytes.count >= Self.headerLength + 12, bytes[h + Self.headerLength] == HandshakeType.clientHello.rawValue else { return }
            sawClientHello = true
            nextReceiveSeq = UInt16(bytes[h + Self.headerLength + 4]) << 8 | UInt16(bytes[h + Self.headerLength + 5])
            writeSequence[0] = sequence
        }
        let body = bytes[(h + Self.headerLength)...]
        guard body.count <= (1 << 14) + 2048 else { return }
        let content: [UInt8]
        if epoch == 0 {
            // Plaintext: handshake messages (also the peer's retransmissions after our epoch
            // changed), ChangeCipherSpec, alerts before the keys.
            guard type == 22 || type == 20 || type == 21 && readEpoch == 0 else { return }
            content = Array(body)
        } else if epoch == readEpoch, let key = readKey {
            guard !replay.isReplay(sequence) else { return }
            let version = UInt16(bytes[h + 1]) << 8 | UInt16(bytes[h + 2])
            guard let opened = key.openFragment(type: type, version: version, body, sequence: UInt64(epoch) << 48 | sequence),
                  opened.count <= 1 << 14
            else { return }
            replay.mark(sequence)
            content = opened
        } else {
            return  // an epoch we cannot read (yet, or any more)
        }
        switch type {
        case 20:
            guard content == [1], let key = pendingReadKey, epoch == 0 else { return }
            readKey = key
            pendingReadKey = nil
            readEpoch = 1
        case 22:
            try receiveHandshake(content, epoch: epoch, now: now)
        case 23:
            guard handshake.isHandshakeComplete, epoch == 1 else { return }
            flight = []  // the peer has our final flight
            guard received.count - receivedStart < Self.maxQueuedMessages else { return }
            received.append(content)
        case 21:
            guard content.count == 2 else { return }
            let alert = AlertDescription(rawValue: content[1])
            if alert == .closeNotify {
                isPeerClosed = true
                nextTimeout = nil
            } else if content[0] == 2 {
                throw TLSError.received(alert)
            }
        default:
            return
        }
    }

    /// Handshake fragments: reassembled per message_seq, handed to the handshake in order.
    private func receiveHandshake(_ content: [UInt8], epoch: UInt16, now: Instant) throws(TLSError) {
        var offset = 0
        while content.count - offset >= 12 {
            let type = content[offset]
            let length = Int(content[offset + 1]) << 16 | Int(content[offset + 2]) << 8 | Int(content[offset + 3])
            let seq = UInt16(content[offset + 4]) << 8 | UInt16(content[offset + 5])
            let fragmentOffset = Int(content[offset + 6]) << 16 | Int(content[offset + 7]) << 8 | Int(content[offset + 8])
            let fragmentLength = Int(content[offset + 9]) << 16 | Int(content[offset + 10]) << 8 | Int(content[offset + 11])
            let start = offset + 12
            guard content.count - start >= fragmentLength, fragmentOffset + fragmentLength <= length,
                  length <= HandshakeReassembler.maximumMessageSize
            else { return }  // malformed: the record is dropped
            offset = start + fragmentLength
            if seq < nextReceiveSeq {
                peerRetransmitted = true
                continue
            }
            // Only the next few messages are buffered (a flight is at most a handful).
            guard seq < nextReceiveSeq &+ 8 else { continue }
            // A message must arrive under the epoch its position calls for; Finished is the
            // only message after ChangeCipherSpec, and it is never at epoch 0.
            if fragments[seq] == nil {
                // At most 128 KiB announced by the messages being reassembled together, so a
                // peer cannot make a connection hold 8 × 128 KiB.
                guard reassemblyBytes + length <= HandshakeReassembler.maximumMessageSize else { continue }
                fragments[seq] = MessageReassembly(type: type, length: length, epoch: epoch)
            }
            guard fragments[seq]?.type == type, fragments[seq]?.length == length, fragments[seq]?.epoch == epoch else { continue }
            fragments[seq]?.add(offset: fragmentOffset, content[start..<(start + fragmentLength)])
        }
        while let next = fragments[nextReceiveSeq], next.isComplete {
            fragments[nextReceiveSeq] = nil
            let message = HandshakeMessage(type: HandshakeType(rawValue: next.type), body: next.body, messageSeq: nextReceiveSeq)
            nextReceiveSeq &+= 1
            // Our flight's timer runs until the peer's whole flight got us to send the next one
            // (or completed the handshake), so a flight lost in part is asked for again.
            try handshake.receive(message.encoded, at: next.epoch == 0 ? .initial : .application)
            try drainHandshake(now: now)
        }
    }
}

/// One handshake message being reassembled from fragments.
struct MessageReassembly {
    let type: UInt8
    let length: Int
    let epoch: UInt16
    private(set) var body: [UInt8]
    /// Received byte ranges, merged.
    private var ranges: [Range<Int>] = []

    init(type: UInt8, length: Int, epoch: UInt16) {
        self.type = type
        self.length = length
        self.epoch = epoch
        body = [UInt8](repeating: 0, count: length)
    }

    var isComplete: Bool { length == 0 || ranges.count == 1 && ranges[0] == 0..<length }

    mutating func add(offset: Int, _ bytes: ArraySlice<UInt8>) {
        guard !bytes.isEmpty else { return }
        body.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        var merged = offset..<(offset + bytes.count)
        ranges.removeAll { range in
            guard range.overlaps(merged) || range.upperBound == merged.lowerBound || merged.upperBound == range.lowerBound else { return false }
            merged = min(range.lowerBound, merged.lowerBound)..<max(range.upperBound, merged.upperBound)
            return true
        }
        ranges.append(merged)
    }
}

/// The anti-replay window of RFC 6347 §4.1.2.6: the highest sequence number seen and a
/// 64-record bitmap below it.
struct ReplayWindow {
    private var highest: UInt64?
    private var bitmap: UInt64 = 0

    func isReplay(_ sequence: UInt64) -> Bool {
        guard let highest else { return false }
        if sequence > highest { return false }
        let distance = highest - sequence
        return distance >= 64 || bitmap & (1 << distance) != 0
    }

    /// Records an authenticated record's sequence number.
    mutating func mark(_ sequence: UInt64) {
        guard let current = highest else {
            highest = sequence
            bitmap = 1
            return
        }
        if sequence > current {
            let shift = sequence - current
            bitmap = shift >= 64 ? 1 : bitmap << shift | 1
            highest = sequence
        } else {
            bitmap |= 1 << (current - sequence)
        }
    }
}

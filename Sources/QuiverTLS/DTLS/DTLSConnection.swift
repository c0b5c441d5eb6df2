public import QuiverCore

/// DTLS 1.2 (RFC 6347) or DTLS 1.3 (RFC 9147) with one peer, with no I/O: the record layers and
/// the handshake's datagram transport (fragmentation, reassembly, flights and their
/// retransmission; in 1.3 ACKs) around a ``TLSHandshake`` in datagram mode. The version is the
/// handshake's: the client offers what its ``TLSConfiguration`` allows (both by default), the
/// server takes the newest both allow.
///
/// Contract:
/// - Client: ``start(now:)`` queues the first flight. Server: create it for a ClientHello that
///   passed ``DTLSCookieGate`` (in 1.3 with what the gate answered, ``init(server:after:)``) and
///   feed that datagram first.
/// - Feed every datagram from the peer to ``receive(_:now:)``; send every datagram
///   ``takeDatagrams()`` returns; call ``handleTimeout(now:)`` at ``nextTimeout``.
/// - Messages: ``write(_:)`` sends one record (at most ``maxMessageSize`` bytes); ``read()``
///   returns one record's payload. Datagram semantics: nothing is retransmitted after the
///   handshake, a lost message is lost.
/// - A thrown ``TLSError`` is fatal (its alert, if any, is queued). Records that do not parse,
///   authenticate or belong (old epoch, replayed) are dropped silently (RFC 6347 §4.1.2.7,
///   RFC 9147 §4.5.2).
///
/// DTLS 1.3 specifics: the unified header (``DTLS13Key``); epochs 0 (plaintext), 2 (handshake),
/// 3 and up (application; a peer's KeyUpdate moves its sending epoch on, and the old one is kept
/// for records still in flight). Every handshake record is listed for an ACK: the server ACKs
/// the client's final flight, either side ACKs post-handshake messages and a flight repeated
/// after ours was answered (RFC 9147 §7.1). An ACK received takes the messages it covers out of
/// retransmission; one that covers a whole flight ends it. The client's final flight and our
/// KeyUpdate are retransmitted until ACKed; our KeyUpdate's new keys are used only once it is
/// (RFC 9147 §8); after 2^23 records under one key a write sends a KeyUpdate. Connection IDs
/// (RFC 9146, RFC 9147 §9) when both offer them: ``localConnectionID``, ``peerConnectionID``.
/// Not implemented: new Connection IDs mid-connection, early data, resumption.
///
/// Bounds: handshake messages up to 128 KiB, reassembled only for the next 8 message_seq and
/// 128 KiB in all;
/// at most ``maxQueuedMessages`` unread messages (later ones are dropped, as the network
/// could have); a flight is retransmitted at most ``maxRetransmissions`` times (1 s, doubling
/// up to 60 s, RFC 6347 §4.2.4.1), then the handshake fails. Records of the next epoch that
/// arrive before their keys are dropped (the peer's retransmission brings them back).
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

    /// One message of the flight last sent, kept to retransmit: a handshake message (with its
    /// 12-byte header) or a ChangeCipherSpec, with the epoch it goes out in. DTLS 1.3: the
    /// records each transmission put it in, and whether an ACK covered all of one.
    private struct FlightMessage {
        var epoch: UInt16
        var type: UInt8
        var bytes: [UInt8]
        var transmissions: [[DTLSRecordNumber]] = []
        var acknowledged = false
    }

    private var outgoing: [[UInt8]] = []
    private var received: [[UInt8]] = []
    private var receivedStart = 0

    // Writing.
    private(set) var writeEpoch: UInt16 = 0
    private var writeSequence: [UInt16: UInt64] = [:]
    private var writeKey: TLS12RecordKey?
    private var flight: [FlightMessage] = []
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

    // DTLS 1.3.
    private var writeKeys13: [UInt16: DTLS13Key] = [:]
    private var readEpochs13: [UInt16: DTLS13ReadEpoch] = [:]
    /// Our KeyUpdate's new sending keys, used once the KeyUpdate is ACKed (RFC 9147 §8).
    private var pendingWriteSecret: TrafficSecret?
    /// Handshake records of the peer's current flight (and post-handshake ones) to ACK: the
    /// newest 64 (a peer repeating records while our flight is out cannot make it grow).
    private var toAcknowledge: [DTLSRecordNumber] = []

    private func listForACK(_ number: DTLSRecordNumber) {
        if toAcknowledge.count >= 64 { toAcknowledge.removeFirst() }
        toAcknowledge.append(number)
    }
    /// Record numbers the peer ACKed for our current flight.
    private var acknowledged: Set<DTLSRecordNumber> = []
    /// An ACK goes out once the datagram being read is done.
    private var ackDue = false
    /// The latest time given (for a flight started by ``write(_:)``: a KeyUpdate).
    private var lastNow = Instant(nanoseconds: 0)
    /// DTLS 1.3: records sent under one key before we update it (RFC 9147 §4.5.3, RFC 8446
    /// §5.5: AES-GCM's confidentiality limit is 2^24.5 full-size records; the same for all).
    var keyUpdateInterval: UInt64 = 1 << 23

    /// Whether DTLS 1.2 records already seen are dropped (RFC 6347 §4.1.2.6). Set it to
    /// `false` on a reliable carrier that may reorder records across its streams — DTLS over
    /// SCTP, whose RFC 6083 §3.3 forbids replay detection — before records arrive.
    public var replayDetection = true

    /// `true` once the peer's `close_notify` arrived.
    public private(set) var isPeerClosed = false
    /// `true` once we queued our `close_notify`.
    public private(set) var isLocallyClosed = false

    /// A client connection. It offers Connection IDs with an empty one of its own (RFC 9146:
    /// it sends with the server's, so the server can follow it across address changes, and
    /// wants none in what it receives); set ``localConnectionID`` to `nil` before starting not
    /// to offer them.
    public convenience init(client configuration: TLSConfiguration, serverName: String?, resumption: SessionTicket? = nil) {
        self.init(handshake: TLSHandshake(client: configuration, serverName: serverName, resumption: resumption, datagram: true))
        handshake.localConnectionID = []
    }

    /// A server connection, for a ClientHello that passed the cookie check.
    public convenience init(server configuration: TLSConfiguration) {
        self.init(handshake: TLSHandshake(server: configuration, datagram: true))
    }

    /// A DTLS 1.3 server connection for the second ClientHello, after ``DTLSCookieGate``
    /// answered the first statelessly with `retry`.
    public convenience init(server configuration: TLSConfiguration, after retry: DTLSHelloRetry) {
        self.init(handshake: TLSHandshake(server: configuration, after: retry))
    }

    /// Whether DTLS 1.3 was negotiated.
    public var isDTLS13: Bool { handshake.negotiatedVersion == .tls13 }

    /// The Connection ID we want in the records we receive (RFC 9146, RFC 9147 §9; empty: none,
    /// though we send with the peer's); `nil`: not offered (client) or not accepted (server).
    /// Set it before the handshake starts. A server's must be unique among its connections and
    /// of the length its endpoint reads (``DTLSEndpoint`` chooses them).
    public var localConnectionID: [UInt8]? {
        get { handshake.localConnectionID }
        set { handshake.localConnectionID = newValue }
    }

    /// The Connection ID we put in the records we send, once both sides agreed on Connection
    /// IDs (empty: none); `nil` otherwise.
    public var peerConnectionID: [UInt8]? { handshake.peerConnectionID }

    /// Whether the peer's protected records must carry our Connection ID.
    private var expectsConnectionID: Bool { handshake.peerConnectionID != nil && handshake.localConnectionID?.isEmpty == false }

    /// Whether the last ``receive(_:now:)`` authenticated a protected record newer (epoch, then
    /// sequence number) than every one before: the condition for following a peer's new
    /// address (RFC 9146 §6).
    public private(set) var receivedNewestRecord = false
    private var newestRecord: (epoch: UInt16, sequence: UInt64)?

    private func noteAuthenticated(epoch: UInt16, sequence: UInt64) {
        if newestRecord.map({ (epoch, sequence) > $0 }) ?? true {
            newestRecord = (epoch, sequence)
            receivedNewestRecord = true
        }
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
        lastNow = now
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
        if isDTLS13, writeSequence[writeEpoch, default: 0] >= keyUpdateInterval, flight.isEmpty, pendingWriteSecret == nil {
            try guarded { () throws(TLSError) in
                try handshake.updateKeys(requestPeerUpdate: false)
                try drainHandshake(now: lastNow)
            }
        }
    }

    /// DTLS 1.3: sends a KeyUpdate; our new keys are used once the peer ACKs it (RFC 9147 §8).
    /// - Parameter requestPeerUpdate: ask the peer to update its sending keys too.
    /// - Throws: the connection's error once it failed; `internal_error` (the connection goes
    ///   on) in DTLS 1.2, before the handshake completed, after ``close()``, or while a flight
    ///   of ours (an earlier KeyUpdate) waits for its ACK.
    public func updateKeys(requestPeerUpdate: Bool, now: Instant) throws(TLSError) {
        if let failure { throw failure }
        guard isDTLS13, handshake.isHandshakeComplete, !isLocallyClosed, flight.isEmpty else {
            throw TLSError(.internalError, "DTLS KeyUpdate outside DTLS 1.3, before the handshake completed, after close or before the last was ACKed")
        }
        try guarded { () throws(TLSError) in
            try handshake.updateKeys(requestPeerUpdate: requestPeerUpdate)
            try drainHandshake(now: now)
        }
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
        lastNow = now
        receivedNewestRecord = false
        try guarded { () throws(TLSError) in
            var offset = 0
            while offset < datagram.count {
                if datagram[offset] & 0xE0 == 0x20 {
                    // RFC 9147 §4.1: a DTLS 1.3 unified header.
                    guard let end = try processRecord13(datagram, at: offset, now: now) else { break }
                    offset = end
                    continue
                }
                // RFC 9146 §4: a tls12_cid record has our Connection ID before its length.
                let cidLength = datagram[offset] == 25 ? handshake.localConnectionID?.count ?? 0 : 0
                if datagram[offset] == 25 && cidLength == 0 { break }
                let header = Self.headerLength + cidLength
                guard datagram.count - offset >= header else { break }
                let length = Int(datagram[offset + header - 2]) << 8 | Int(datagram[offset + header - 1])
                guard datagram.count - offset - header >= length else { break }  // truncated: the rest is dropped
                try processRecord(datagram[offset..<(offset + header + length)], connectionIDLength: cidLength, now: now)
                offset += header + length
            }
            if peerRetransmitted {
                // RFC 6347 §4.2.4: the peer sent a flight again, so ours was lost: send it
                // again. DTLS 1.3 with no flight of ours outstanding: ours was answered, and the
                // peer lacks our ACK (RFC 9147 §7.1).
                peerRetransmitted = false
                if !flight.isEmpty && !isLocallyClosed {
                    sendFlight()
                } else if isDTLS13 {
                    ackDue = true
                }
            }
            if ackDue {
                ackDue = false
                sendACK()
            }
        }
    }

    /// Retransmits the flight that got no answer; fails the handshake after
    /// ``maxRetransmissions``.
    public func handleTimeout(now: Instant) throws(TLSError) {
        lastNow = now
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

    /// Whether a flight of ours waits for its answer or ACK after the handshake (DTLS 1.3: the
    /// client's final flight, our KeyUpdate): the connection then has a timer.
    public var isRetransmittingAfterHandshake: Bool { isHandshakeComplete && nextTimeout != nil }

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
        let sequence = writeSequence[epoch, default: 0]
        writeSequence[epoch] = sequence + 1
        if epoch >= 2, let key = writeKeys13[epoch] {
            return key.seal(type: type, content, epoch: epoch, sequence: sequence, connectionID: handshake.peerConnectionID ?? [])
        }
        let key = epoch == 0 ? nil : writeKey
        let epochSequence = UInt64(epoch) << 48 | sequence
        if let key, let cid = handshake.peerConnectionID, !cid.isEmpty {
            // RFC 9146 §4: tls12_cid, the Connection ID after the sequence number, the real
            // type inside the encryption (DTLSInnerPlaintext, no padding).
            let inner = Array(content) + [type]
            let length = inner.count + key.overhead
            var out: [UInt8] = [25, 0xFE, 0xFD]
            out.reserveCapacity(Self.headerLength + cid.count + length)
            withUnsafeBytes(of: epochSequence.bigEndian) { out.append(contentsOf: $0) }
            out += cid + [UInt8(length >> 8), UInt8(truncatingIfNeeded: length)]
            let ad = TLS12RecordKey.connectionIDAdditionalData(sequence: epochSequence, version: Self.version, connectionID: cid, length: inner.count)
            ad.withUnsafeBytes { key.appendFragment(inner[...], sequence: epochSequence, additionalData: $0, into: &out) }
            return out
        }
        var out: [UInt8] = []
        out.reserveCapacity(Self.headerLength + content.count + (key?.overhead ?? 0))
        out.append(type)
        out.append(UInt8(Self.version >> 8))
        out.append(UInt8(truncatingIfNeeded: Self.version))
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
        var newFlight: [FlightMessage] = []
        var completed = false
        while let event = handshake.nextEvent() {
            switch event {
            case .send(_, let bytes):
                // Whole messages with DTLS headers, one after the other.
                var offset = 0
                while offset + 12 <= bytes.count {
                    let length = Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
                    newFlight.append(FlightMessage(epoch: writeEpoch, type: 22, bytes: Array(bytes[offset..<(offset + 12 + length)])))
                    offset += 12 + length
                }
            case .changeWriteCipherSpec(let key):
                newFlight.append(FlightMessage(epoch: writeEpoch, type: 20, bytes: [1]))
                writeKey = key
                writeEpoch = 1
            case .expectChangeCipherSpec(let key):
                pendingReadKey = key
            case .warningAlert(let alert):
                outgoing.append(record(type: 21, [1, alert.rawValue]))
            case .handshakeComplete:
                completed = true
            case .sessionTicket, .ticketIssued, .earlyData:
                break
            case .installWriteSecret(let level, let secret):
                if handshake.isHandshakeComplete && level == .application && writeEpoch >= 3 {
                    pendingWriteSecret = secret  // our KeyUpdate: its keys once it is ACKed
                } else {
                    writeEpoch = level == .handshake ? 2 : 3
                    writeKeys13[writeEpoch] = DTLS13Key(secret)
                }
            case .installReadSecret(let level, let secret):
                installReadKey(level, secret)
            }
        }
        guard !newFlight.isEmpty else {
            if completed && (!isDTLS13 || handshake.role == .server) {
                // The peer's final flight arrived: ours was answered, and nothing of ours is
                // left to repeat (DTLS 1.2: the peer repeats its final flight only if we repeat
                // ours). DTLS 1.3: the server ACKs the client's final flight.
                flight = []
                nextTimeout = nil
                if isDTLS13 { ackDue = true }
            }
            return
        }
        flight = newFlight
        acknowledged = []
        toAcknowledge = []  // our answer acknowledges the peer's flight
        retransmissions = 0
        timeout = .seconds(1)
        sendFlight()
        // DTLS 1.2: the final flight gets no answer: no timer; it is kept only to repeat when
        // the peer repeats its own flight (RFC 6347 §4.2.4, the FINISHED state), until the
        // peer's application data shows it arrived. DTLS 1.3: it is repeated until ACKed.
        nextTimeout = handshake.isHandshakeComplete && !isDTLS13 ? nil : now + timeout
    }

    /// DTLS 1.3: the peer's keys for `level`; a KeyUpdate's next generation gets the next
    /// epoch, and of older application epochs only the last is kept (for its late records).
    private func installReadKey(_ level: EncryptionLevel, _ secret: TrafficSecret) {
        let epoch: UInt16
        switch level {
        case .handshake: epoch = 2
        case .application: epoch = max(3, (readEpochs13.keys.max() ?? 2) + 1)
        default: return  // no early data in DTLS here
        }
        readEpochs13[epoch] = DTLS13ReadEpoch(key: DTLS13Key(secret))
        if epoch >= 5 { readEpochs13[epoch - 2] = nil }
    }

    /// Sends the flight: records packed into datagrams of at most ``mtu`` bytes, handshake
    /// messages fragmented to fit; in DTLS 1.3 the messages not yet ACKed.
    private func sendFlight() {
        var datagram: [UInt8] = []
        func emit(_ record: [UInt8]) {
            if !datagram.isEmpty && datagram.count + record.count > mtu {
                outgoing.append(datagram)
                datagram = []
            }
            datagram += record
        }
        for index in flight.indices where !flight[index].acknowledged {
            let item = flight[index]
            var numbers: [DTLSRecordNumber] = []
            func emitRecord(_ content: ArraySlice<UInt8>) {
                numbers.append(DTLSRecordNumber(epoch: UInt64(item.epoch), sequence: writeSequence[item.epoch, default: 0]))
                emit(record(type: item.type, content, epoch: item.epoch))
            }
            guard item.type == 22 else {
                emitRecord(item.bytes[...])
                continue
            }
            // A handshake message, fragmented: each fragment repeats the 12-byte header with
            // its offset and length (RFC 6347 §4.2.3, RFC 9147 §5.5).
            let body = item.bytes[12...]
            // A protected record's header, tag and inner content type, and the peer's Connection ID.
            let protection = item.epoch == 0 ? Self.headerLength
                : (writeKeys13[item.epoch] != nil ? DTLS13Key.overhead : Self.headerLength + 1 + (writeKey?.overhead ?? 0))
                    + (handshake.peerConnectionID?.count ?? 0)
            let room = max(64, mtu - protection - 12)
            var offset = 0
            repeat {
                let end = min(body.count, offset + room)
                var fragment = Array(item.bytes[0..<6])
                fragment += [UInt8(truncatingIfNeeded: offset >> 16), UInt8(truncatingIfNeeded: offset >> 8), UInt8(truncatingIfNeeded: offset)]
                let length = end - offset
                fragment += [UInt8(truncatingIfNeeded: length >> 16), UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
                fragment += body[(body.startIndex + offset)..<(body.startIndex + end)]
                emitRecord(fragment[...])
                offset = end
            } while offset < body.count
            flight[index].transmissions.append(numbers)
        }
        if !datagram.isEmpty { outgoing.append(datagram) }
    }

    /// DTLS 1.3: an ACK of the handshake records listed, at our current epoch (RFC 9147 §7).
    private func sendACK() {
        guard !toAcknowledge.isEmpty else { return }
        // At most what fits in one datagram: 16 bytes each.
        let numbers = Array(toAcknowledge.suffix(max(1, (mtu - DTLS13Key.overhead - (handshake.peerConnectionID?.count ?? 0) - 2) / 16)))
        outgoing.append(record(type: 26, DTLSRecordNumber.encodeACK(numbers)[...]))
        toAcknowledge = []
    }

    /// DTLS 1.3: an ACK received takes the messages it covers out of retransmission (RFC 9147
    /// §7.2); once all are covered the flight is over, and our KeyUpdate's keys take effect.
    /// An ACK in a handshake epoch counts only for records of that epoch or older: a record
    /// cannot be acknowledged in a weaker epoch than its own (RFC 9147 §7), so a forged
    /// plaintext ACK stops nothing protected. After the handshake the two directions' epochs
    /// move on apart (KeyUpdate), and an ACK in any application epoch counts.
    private func receiveACK(_ content: [UInt8], epoch: UInt16) {
        guard let numbers = DTLSRecordNumber.decodeACK(content), !flight.isEmpty else { return }
        acknowledged.formUnion(numbers.filter { epoch >= 3 || $0.epoch <= UInt64(epoch) })
        var progressed = false
        for index in flight.indices where !flight[index].acknowledged {
            if flight[index].transmissions.contains(where: { !$0.isEmpty && $0.allSatisfy(acknowledged.contains) }) {
                flight[index].acknowledged = true
                progressed = true
            }
        }
        guard progressed else { return }
        if flight.allSatisfy(\.acknowledged) {
            flight = []
            acknowledged = []
            nextTimeout = nil
            if let secret = pendingWriteSecret {
                pendingWriteSecret = nil
                writeEpoch += 1
                writeKeys13[writeEpoch] = DTLS13Key(secret)
                writeKeys13[writeEpoch - 1] = nil
            }
        } else if !isLocallyClosed {
            sendFlight()  // what is left of the flight, at once (RFC 9147 §7.2)
        }
    }

    /// DTLS 1.3: one record with a unified header at `offset`; returns where the next record
    /// starts, or `nil` when the rest of the datagram is unusable.
    private func processRecord13(_ datagram: [UInt8], at offset: Int, now: Instant) throws(TLSError) -> Int? {
        let first = datagram[offset]
        // RFC 9147 §9: with Connection IDs agreed, every protected record carries ours.
        let cidLength = first & 0x10 != 0 ? handshake.localConnectionID?.count ?? 0 : 0
        guard (first & 0x10 != 0) == expectsConnectionID, datagram.count - offset > cidLength,
              datagram[(offset + 1)..<(offset + 1 + cidLength)].elementsEqual((handshake.localConnectionID ?? []).prefix(cidLength))
        else { return nil }
        let sequenceLength = first & 0x08 != 0 ? 2 : 1
        let sequenceOffset = offset + 1 + cidLength
        var i = sequenceOffset + sequenceLength
        let length: Int
        if first & 0x04 != 0 {
            guard datagram.count - i >= 2 else { return nil }
            length = Int(datagram[i]) << 8 | Int(datagram[i + 1])
            i += 2
        } else {
            length = datagram.count - i
        }
        guard datagram.count - i >= length else { return nil }
        let end = i + length
        // The epoch: the newest we read whose low bits match (RFC 9147 §4.2.2).
        guard length >= 16, length <= (1 << 14) + 256,
              let epoch = readEpochs13.keys.filter({ $0 & 3 == UInt16(first & 3) }).max(), var state = readEpochs13[epoch]
        else { return end }
        let mask = datagram.withUnsafeBytes { state.key.sequenceMask.mask(sample: $0.baseAddress! + i) }
        var header = Array(datagram[offset..<i])
        let s = sequenceOffset - offset
        header[s] ^= mask[0]
        if sequenceLength == 2 { header[s + 1] ^= mask[1] }
        let truncated = sequenceLength == 2 ? UInt64(header[s]) << 8 | UInt64(header[s + 1]) : UInt64(header[s])
        let expected = state.replay.highestSeen.map { $0 + 1 } ?? 0
        let sequence = reconstructSequence(truncated, bits: 8 * sequenceLength, expected: expected)
        guard !state.replay.isReplay(sequence),
              var inner = state.key.aead.open(datagram[i..<end], sequence: sequence, additionalData: header[...])
        else { return end }
        state.replay.mark(sequence)
        readEpochs13[epoch] = state
        noteAuthenticated(epoch: epoch, sequence: sequence)
        // TLSInnerPlaintext: the content type is the last non-zero byte.
        while inner.last == 0 { inner.removeLast() }
        guard let type = inner.popLast() else { throw TLSError(.unexpectedMessage, "DTLS 1.3 record without a content type") }
        guard inner.count <= 1 << 14 else { throw TLSError(.recordOverflow, "DTLS 1.3 record of \(inner.count) bytes") }
        let number = DTLSRecordNumber(epoch: UInt64(epoch), sequence: sequence)
        switch type {
        case 22:
            let wasComplete = handshake.isHandshakeComplete
            if try receiveHandshake(inner, epoch: epoch, now: now) {
                listForACK(number)
                // Post-handshake messages are ACKed at once (RFC 9147 §7.1).
                if wasComplete { ackDue = true }
            }
        case 23:
            guard handshake.isHandshakeComplete, epoch >= 3, received.count - receivedStart < Self.maxQueuedMessages else { break }
            received.append(inner)
        case 21:
            try receiveAlert(inner)
        case 26:
            receiveACK(inner, epoch: epoch)
        default:
            throw TLSError(.unexpectedMessage, "DTLS 1.3 record of content type \(type)")
        }
        return end
    }

    private func receiveAlert(_ content: [UInt8]) throws(TLSError) {
        guard content.count == 2 else { return }
        let alert = AlertDescription(rawValue: content[1])
        if alert == .closeNotify {
            isPeerClosed = true
            nextTimeout = nil
        } else if content[0] == 2 {
            throw TLSError.received(alert)
        }
    }

    private func processRecord(_ bytes: ArraySlice<UInt8>, connectionIDLength: Int, now: Instant) throws(TLSError) {
        let h = bytes.startIndex
        var type = bytes[h]
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
        let body = bytes[(h + Self.headerLength + connectionIDLength)...]
        guard body.count <= (1 << 14) + 2048 else { return }
        var content: [UInt8]
        if type == 25 {
            // RFC 9146: a record with our Connection ID (the only kind once one is agreed).
            guard epoch == readEpoch, let key = readKey, expectsConnectionID, !replay.isReplay(sequence),
                  bytes[(h + 11)..<(h + 11 + connectionIDLength)].elementsEqual(handshake.localConnectionID ?? []),
                  let opened = key.openFragment(body, sequence: UInt64(epoch) << 48 | sequence, additionalData: { length in
                      TLS12RecordKey.connectionIDAdditionalData(sequence: UInt64(epoch) << 48 | sequence, version: Self.version,
                                                                connectionID: handshake.localConnectionID ?? [], length: length)
                  })
            else { return }
            replay.mark(sequence)
            noteAuthenticated(epoch: epoch, sequence: sequence)
            content = opened
            while content.last == 0 { content.removeLast() }
            guard let real = content.popLast(), content.count <= 1 << 14 else { return }
            type = real
        } else if epoch == 0 {
            // Plaintext: handshake messages (also the peer's retransmissions after our epoch
            // changed), ChangeCipherSpec, alerts before the keys; in DTLS 1.3 an ACK of
            // plaintext records.
            guard type == 22 || type == 20 || type == 21 && readEpoch == 0 && readEpochs13.isEmpty || type == 26 else { return }
            content = Array(body)
        } else if epoch == readEpoch, let key = readKey {
            guard !(replayDetection && replay.isReplay(sequence)), !expectsConnectionID else { return }
            let version = UInt16(bytes[h + 1]) << 8 | UInt16(bytes[h + 2])
            guard let opened = key.openFragment(type: type, version: version, body, sequence: UInt64(epoch) << 48 | sequence),
                  opened.count <= 1 << 14
            else { return }
            replay.mark(sequence)
            noteAuthenticated(epoch: epoch, sequence: sequence)
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
            if try receiveHandshake(content, epoch: epoch, now: now), isDTLS13 {
                listForACK(DTLSRecordNumber(epoch: 0, sequence: sequence))
            }
        case 23:
            guard handshake.isHandshakeComplete, epoch == 1 else { return }
            flight = []  // the peer has our final flight
            guard received.count - receivedStart < Self.maxQueuedMessages else { return }
            received.append(content)
        case 21:
            try receiveAlert(content)
        case 26 where epoch == 0:
            receiveACK(content, epoch: 0)
        default:
            return
        }
    }

    /// Handshake fragments: reassembled per message_seq, handed to the handshake in order.
    /// Returns whether any fragment was kept or was a repeat (what an ACK may list).
    @discardableResult
    private func receiveHandshake(_ content: [UInt8], epoch: UInt16, now: Instant) throws(TLSError) -> Bool {
        var kept = false
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
            else { return kept }  // malformed: the rest of the record is dropped
            offset = start + fragmentLength
            if seq < nextReceiveSeq {
                peerRetransmitted = true
                kept = true
                continue
            }
            // Only the next few messages are buffered (a flight is at most a handful).
            guard seq < nextReceiveSeq &+ 8 else { continue }
            // DTLS 1.3: once the handshake keys are in, plaintext can only repeat old messages
            // (anyone can forge plaintext; a new message there would end the handshake).
            if isDTLS13 && epoch == 0 && readEpochs13[2] != nil { continue }
            // DTLS 1.3: a message or fragment out of order means part of the flight was lost:
            // an ACK of what arrived gets the rest sent at once (RFC 9147 §7.1).
            if isDTLS13 && (seq != nextReceiveSeq || fragmentOffset > (fragments[seq]?.contiguousLength ?? 0)) { ackDue = true }
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
            kept = true
        }
        while let next = fragments[nextReceiveSeq], next.isComplete {
            fragments[nextReceiveSeq] = nil
            let message = HandshakeMessage(type: HandshakeType(rawValue: next.type), body: next.body, messageSeq: nextReceiveSeq)
            nextReceiveSeq &+= 1
            // Our flight's timer runs until the peer's whole flight got us to send the next one
            // (or completed the handshake), so a flight lost in part is asked for again.
            let level: EncryptionLevel = next.epoch == 0 ? .initial : next.epoch == 2 && isDTLS13 ? .handshake : .application
            try handshake.receive(message.encoded, at: level)
            try drainHandshake(now: now)
        }
        return kept
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

    /// How many bytes from the start have arrived.
    var contiguousLength: Int { ranges.first { $0.lowerBound == 0 }?.upperBound ?? 0 }

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

    /// The highest sequence number authenticated so far.
    var highestSeen: UInt64? { highest }

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

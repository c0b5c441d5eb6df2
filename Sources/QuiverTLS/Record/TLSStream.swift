import QuiverCore

/// TLS 1.3 or TLS 1.2 over a byte stream (TCP or an in-memory pair), with no I/O: the record
/// layer (RFC 8446 §5; RFC 5246 §6.2 with AEAD, RFC 5288 and RFC 7905) wrapped around a
/// ``TLSHandshake``.
///
/// Contract:
/// - Feed every byte read from the transport to ``receive(_:)``; call ``receiveEOF()`` when the
///   transport reports end of stream.
/// - After every call, send ``takeOutgoing()`` to the transport (it may be empty).
/// - Read decrypted application data with ``read(maxBytes:)``; ``isPeerClosed`` turns true after
///   the peer's `close_notify` (a clean EOF).
/// - ``write(_:)`` queues application data: before the handshake completes it is held (or sent
///   as 0-RTT when a resumption allows it, and re-sent after the handshake if the server
///   refuses it — no data is lost).
/// - A thrown ``TLSError`` is fatal; the alert for it is already queued in ``takeOutgoing()``.
///
/// Limits enforced on input: records over 2^14 (+256 when protected), or over the
/// `record_size_limit` we announced (RFC 8449) → `record_overflow`; more than 32 consecutive
/// empty records or warning alerts → `unexpected_message`; handshake messages over 128 KiB →
/// `unexpected_message`. Application data before the application keys, or inside a fragmented
/// handshake message, is `unexpected_message`; the only records skipped unread are a server's
/// refused 0-RTT (RFC 8446 §4.2.10). Records we send respect the peer's `record_size_limit`.
///
/// TLS 1.2: a ChangeCipherSpec is accepted only where the handshake expects one, at a handshake
/// message boundary; application data only after both Finished messages; warning alerts are
/// skipped (at most 32 in a row). TLS 1.2 has no KeyUpdate: at ``keyUpdateRecordLimit``
/// records we send `close_notify` instead (the connection must be re-established).
/// Not thread-safe.
public final class TLSStream {
    /// The handshake driven by this stream (negotiated values are read from it).
    public let handshake: TLSHandshake

    /// Pads every protected record's content to a multiple of this many bytes (0: no padding).
    public var paddingBlockSize = 0

    private var inbound: [UInt8] = []
    private var inboundStart = 0
    private var outbound: [UInt8] = []
    private var plaintext: [UInt8] = []
    private var plaintextStart = 0
    private var pendingWrites: [UInt8] = []
    private var earlyDataSent: [UInt8] = []
    private var events: [TLSEvent] = []

    private var readKey: AEADKey?
    private var readSequence: UInt64 = 0
    private var readLevel: EncryptionLevel = .initial
    private var writeKey: AEADKey?
    private var writeSequence: UInt64 = 0
    private var writeLevel: EncryptionLevel = .initial
    /// TLS 1.2 record protection, once each side's ChangeCipherSpec switched it on.
    private var readKey12: TLS12RecordKey?
    private var writeKey12: TLS12RecordKey?
    /// TLS 1.2: the key the peer's awaited ChangeCipherSpec switches on.
    private var pendingReadKey12: TLS12RecordKey?

    private var sentChangeCipherSpec = false
    private var emptyRecordRun = 0
    private var warningAlertRun = 0
    private var earlyDataReceived = 0
    private var skippingRejectedEarlyData = false
    private var skippedEarlyData = 0
    private var failure: TLSError?

    /// `true` once the peer's `close_notify` arrived: no more data will come.
    public private(set) var isPeerClosed = false
    /// `true` once we queued our `close_notify`.
    public private(set) var isLocallyClosed = false

    /// Keys are updated automatically after this many records under one key (AES-GCM's
    /// safety margin, RFC 8446 §5.5, is 2^24.5 records); TLS 1.2, which cannot update keys,
    /// closes the connection with `close_notify` there.
    public var keyUpdateRecordLimit: UInt64 = 1 << 23

    package static let maxPlaintext = 1 << 14
    static let maxCiphertext = (1 << 14) + 256
    static let maxEmptyRun = 32

    /// Wraps a handshake; call ``start()`` next (clients).
    public init(handshake: TLSHandshake) {
        precondition(!handshake.isQUIC, "TLSStream is for TLS over byte streams; QUIC carries the handshake itself")
        self.handshake = handshake
    }

    /// A client stream.
    public convenience init(client configuration: TLSConfiguration, serverName: String?, resumption: SessionTicket? = nil, attemptEarlyData: Bool = false) {
        self.init(handshake: TLSHandshake(client: configuration, serverName: serverName, resumption: resumption, attemptEarlyData: attemptEarlyData))
    }

    /// A server stream.
    public convenience init(server configuration: TLSConfiguration) {
        self.init(handshake: TLSHandshake(server: configuration))
    }

    /// Client: queues the ClientHello. Servers need not call it.
    public func start() throws(TLSError) {
        guard handshake.role == .client else { return }
        try guarded { () throws(TLSError) in
            try handshake.start()
            try drainHandshake()
        }
    }

    /// `true` once the handshake has completed.
    public var isHandshakeComplete: Bool { handshake.isHandshakeComplete }

    /// The error that ended this stream, if any.
    public var error: TLSError? { failure }

    /// The next notable event: `.handshakeComplete`, `.sessionTicket`, `.ticketIssued`,
    /// `.earlyData(accepted:)` (bytes to send and keys are handled internally).
    public func nextEvent() -> TLSEvent? {
        guard !events.isEmpty else { return nil }
        let event = events.removeFirst()
        if events.isEmpty { events = [] }  // an idle connection keeps no room for events
        return event
    }

    /// Bytes to send to the transport; empties the queue.
    public func takeOutgoing() -> [UInt8] {
        defer { Self.empty(&outbound) }
        return outbound
    }

    /// Moves the bytes to send into `buffer`, which must be empty, and gives the stream
    /// `buffer`'s room for its next records: neither a copy nor a new buffer (a driver that
    /// keeps its send buffer between writes trades buffers with the stream).
    public func takeOutgoing(into buffer: inout [UInt8]) {
        precondition(buffer.isEmpty, "takeOutgoing(into:) needs an empty buffer")
        swap(&buffer, &outbound)
    }

    /// Buffers up to this capacity are given back when they empty; larger ones — a connection
    /// moving full records — keep their room, so the next records need no growing copies.
    static let keptBufferCapacity = 16_384

    /// Empties `buffer`: an idle connection keeps no room for small traffic (handshakes, short
    /// messages), a busy one keeps room for its next records.
    package static func empty(_ buffer: inout [UInt8]) {
        if buffer.capacity > keptBufferCapacity { buffer.removeAll(keepingCapacity: true) } else { buffer = [] }
    }

    /// `true` when ``takeOutgoing()`` has bytes.
    public var hasOutgoing: Bool { !outbound.isEmpty }

    /// Number of decrypted bytes waiting in ``read(maxBytes:)``.
    public var readableBytes: Int { plaintext.count - plaintextStart }

    /// Returns up to `maxBytes` decrypted application bytes (empty when none are buffered).
    public func read(maxBytes: Int = .max) -> [UInt8] {
        let n = min(maxBytes, plaintext.count - plaintextStart)
        let out = Array(plaintext[plaintextStart..<(plaintextStart + n)])
        plaintextStart += n
        if plaintextStart == plaintext.count {  // all read
            Self.empty(&plaintext)
            plaintextStart = 0
        }
        return out
    }

    /// Queues application data (see the type's contract for data written before completion).
    public func write(_ data: [UInt8]) throws(TLSError) {
        try write(data[...])
    }

    /// Queues application data from a slice (no copy before the records are built).
    public func write(_ data: ArraySlice<UInt8>) throws(TLSError) {
        try guarded { () throws(TLSError) in
            guard !isLocallyClosed else { throw TLSError(.internalError, "write after close") }
            if handshake.isHandshakeComplete {
                try writeRecords(type: 23, data)
            } else if writeLevel == .earlyData {
                // Within the ticket's max_early_data_size; the rest waits for the handshake.
                let room = max(0, Int(handshake.earlyDataLimit) - earlyDataSent.count)
                let early = Array(data.prefix(room))
                if !early.isEmpty {
                    earlyDataSent.append(contentsOf: early)
                    try writeRecords(type: 23, early[...])
                }
                pendingWrites.append(contentsOf: data.dropFirst(room))
            } else {
                pendingWrites.append(contentsOf: data)
            }
        }
    }

    /// Queues `close_notify`: we will send no more data. Reading continues until the peer closes.
    public func close() {
        guard !isLocallyClosed, failure == nil else { return }
        try? flushPending()
        try? writeRecords(type: 21, [1, AlertDescription.closeNotify.rawValue][...])
        isLocallyClosed = true
    }

    /// Sends a KeyUpdate, optionally asking the peer to update too.
    public func updateKeys(requestPeerUpdate: Bool) throws(TLSError) {
        try guarded { () throws(TLSError) in
            try handshake.updateKeys(requestPeerUpdate: requestPeerUpdate)
            try drainHandshake()
        }
    }

    /// Feeds bytes read from the transport.
    public func receive(_ bytes: [UInt8]) throws(TLSError) {
        try guarded { () throws(TLSError) in
            inbound.append(contentsOf: bytes)
            while try processRecord() {}
            if inboundStart == inbound.count {  // every record taken
                Self.empty(&inbound)
                inboundStart = 0
            } else if inboundStart > 0 {
                inbound.removeFirst(inboundStart)
                inboundStart = 0
            }
        }
    }

    /// Reports the end of the transport's byte stream. Throws a truncation error unless the
    /// peer's `close_notify` was received first.
    public func receiveEOF() throws(TLSError) {
        try guarded { () throws(TLSError) in
            guard isPeerClosed else {
                throw TLSError.truncated(handshake.isHandshakeComplete
                    ? "the peer closed the connection without close_notify" : "the peer closed the connection during the handshake")
            }
        }
    }

    // MARK: Internals

    private func guarded(_ body: () throws(TLSError) -> Void) throws(TLSError) {
        if let failure { throw failure }
        do {
            try body()
        } catch {
            failure = error
            if error.origin == .local && !isLocallyClosed {
                try? writeRecords(type: 21, [2, error.alert.rawValue][...])
                isLocallyClosed = true
            }
            throw error
        }
    }

    /// Applies handshake events in order: bytes become records, secrets become keys.
    private func drainHandshake() throws(TLSError) {
        while let event = handshake.nextEvent() {
            switch event {
            case .send(let level, let bytes):
                guard level == writeLevel else { throw TLSError(.internalError, "handshake bytes for \(level) while writing at \(writeLevel)") }
                try writeRecords(type: 22, bytes[...])
                if level == .initial && handshake.role == .server && handshake.middleboxCompatibility {
                    // RFC 8446 §D.4: the server's one dummy change_cipher_spec goes right after its
                    // first handshake message, the ServerHello or a HelloRetryRequest.
                    sendChangeCipherSpecOnce()
                }
            case .installWriteSecret(let level, let secret):
                if handshake.role == .client && level != .application {
                    // RFC 8446 §D.4: the client's one dummy change_cipher_spec goes before its
                    // first protected record.
                    sendChangeCipherSpecOnce()
                }
                writeKey = AEADKey(secret)
                writeSequence = 0
                writeLevel = level
            case .installReadSecret(let level, let secret):
                readKey = AEADKey(secret)
                readSequence = 0
                readLevel = level
                if level == .handshake && handshake.role == .server && handshake.earlyDataAccepted == false && !handshake.didHelloRetry {
                    // Refused in the ServerHello: the client's 0-RTT records may still follow.
                    // (After a HelloRetryRequest they all came before the second ClientHello.)
                    skippingRejectedEarlyData = true
                }
            case .earlyData(let accepted):
                if handshake.role == .client {
                    if accepted { earlyDataSent = [] } else { pendingWrites = earlyDataSent + pendingWrites; earlyDataSent = [] }
                    if !accepted && writeLevel == .earlyData {
                        // Refused (HelloRetryRequest or EncryptedExtensions): back to plaintext
                        // until the handshake key is installed.
                        writeKey = nil
                        writeLevel = .initial
                    }
                }
                events.append(event)
            case .handshakeComplete:
                events.append(event)
                try flushPending()
            case .sessionTicket, .ticketIssued:
                events.append(event)
            case .changeWriteCipherSpec(let key):
                outbound.append(contentsOf: Self.changeCipherSpecRecord)
                writeKey12 = key
                writeSequence = 0
                writeLevel = .application
            case .expectChangeCipherSpec(let key):
                pendingReadKey12 = key
            case .warningAlert(let alert):
                try writeRecords(type: 21, [1, alert.rawValue][...])
            }
        }
    }

    private static let changeCipherSpecRecord: [UInt8] = [20, 3, 3, 0, 1, 1]

    private func sendChangeCipherSpecOnce() {
        guard !sentChangeCipherSpec else { return }
        outbound.append(contentsOf: Self.changeCipherSpecRecord)
        sentChangeCipherSpec = true
    }

    private func flushPending() throws(TLSError) {
        guard handshake.isHandshakeComplete, !pendingWrites.isEmpty else { return }
        let data = pendingWrites
        pendingWrites = []
        try writeRecords(type: 23, data[...])
    }

    /// The largest protected-record plaintext (content, type byte and padding) we may send:
    /// 2^14 + 1, or less when the peer announced a `record_size_limit` (RFC 8449).
    private var protectedPlaintextLimit: Int {
        min(Self.maxPlaintext + 1, handshake.peerRecordSizeLimit ?? Self.maxPlaintext + 1)
    }

    private func writeRecords(type: UInt8, _ data: ArraySlice<UInt8>) throws(TLSError) {
        if let key = writeKey12 {
            // TLS 1.2: the limit counts the plaintext alone (RFC 8449 §4).
            let chunk = min(Self.maxPlaintext, handshake.peerRecordSizeLimit ?? Self.maxPlaintext)
            var offset = data.startIndex
            repeat {
                let end = min(data.endIndex, offset + chunk)
                key.sealRecord(type: type, data[offset..<end], sequence: writeSequence, into: &outbound)
                writeSequence += 1
                offset = end
            } while offset < data.endIndex
            if writeSequence >= keyUpdateRecordLimit && type == 23 && !isLocallyClosed {
                close()
            }
            return
        }
        let chunk = writeKey == nil ? Self.maxPlaintext : protectedPlaintextLimit - 1
        var offset = data.startIndex
        repeat {
            let end = min(data.endIndex, offset + chunk)
            try writeRecord(type: type, data[offset..<end])
            offset = end
        } while offset < data.endIndex
    }

    private func writeRecord(type: UInt8, _ content: ArraySlice<UInt8>) throws(TLSError) {
        guard let key = writeKey else {
            outbound.append(contentsOf: [type, 3, 3, UInt8(content.count >> 8), UInt8(truncatingIfNeeded: content.count)])
            outbound.append(contentsOf: content)
            return
        }
        // TLSInnerPlaintext (content, type, padding) sealed where it lies in `outbound`, after
        // its header, the additional data (RFC 8446 §5.2).
        var innerLength = content.count + 1
        if paddingBlockSize > 1 {
            innerLength = min(protectedPlaintextLimit, (innerLength + paddingBlockSize - 1) / paddingBlockSize * paddingBlockSize)
        }
        let length = innerLength + AEADKey.tagLength
        let start = outbound.count
        outbound.append(contentsOf: [23, 3, 3, UInt8(length >> 8), UInt8(truncatingIfNeeded: length)])
        outbound.append(contentsOf: content)
        outbound.append(type)
        outbound.append(contentsOf: repeatElement(0, count: innerLength - content.count - 1 + AEADKey.tagLength))
        outbound.withUnsafeMutableBytes { raw in
            key.seal(UnsafeMutableRawBufferPointer(rebasing: raw[start...]), payloadOffset: 5, length: innerLength, sequence: writeSequence)
        }
        writeSequence += 1
        if writeSequence >= keyUpdateRecordLimit && writeLevel == .application && handshake.isHandshakeComplete && type == 23 {
            try handshake.updateKeys(requestPeerUpdate: false)
            try drainHandshake()
        }
    }

    /// Processes one complete record from `inbound`; `false` when more bytes are needed.
    private func processRecord() throws(TLSError) -> Bool {
        let available = inbound.count - inboundStart
        guard available >= 5 else { return false }
        let h = inboundStart
        let type = inbound[h]
        let length = Int(inbound[h + 3]) << 8 | Int(inbound[h + 4])
        guard inbound[h + 1] == 3 else { throw TLSError(.decodeError, "record with version \(inbound[h + 1]).\(inbound[h + 2])") }
        guard length <= Self.maxCiphertext else { throw TLSError(.recordOverflow, "record of \(length) bytes") }
        guard available >= 5 + length else { return false }
        // Records are opened where they lie in `inbound`; `contentRange` ends up on the content.
        let bodyRange = (h + 5)..<(h + 5 + length)
        inboundStart += 5 + length
        guard !isPeerClosed else { throw TLSError(.unexpectedMessage, "record after close_notify") }

        if type == 20 {
            guard length == 1, inbound[bodyRange.lowerBound] == 1 else { throw TLSError(.unexpectedMessage, "malformed change_cipher_spec record") }
            if handshake.negotiatedVersion == .tls12 {
                // RFC 5246 §7.1: only where the handshake expects it, between two messages.
                guard let key = pendingReadKey12, !handshake.hasPartialMessage(at: readLevel) else {
                    throw TLSError(.unexpectedMessage, "unexpected change_cipher_spec")
                }
                readKey12 = key
                pendingReadKey12 = nil
                readSequence = 0
                readLevel = .application
                return true
            }
            // RFC 8446 §5: a change_cipher_spec of one byte 0x01 is dropped during the handshake.
            guard !handshake.isHandshakeComplete else { throw TLSError(.unexpectedMessage, "change_cipher_spec record") }
            return true
        }
        if pendingReadKey12 != nil {
            throw TLSError(.unexpectedMessage, "record of type \(type) where change_cipher_spec was due")
        }
        var contentType = type
        var contentRange = bodyRange
        // RFC 8446 §5: a peer that could not use our flight (a client that failed on the
        // ServerHello) reports it with an unprotected alert. It is read as an alert, so a fatal
        // one ends the stream without an alert of ours.
        let unprotectedAlert = type == 21 && !handshake.isHandshakeComplete
        if let key = readKey12 {
            guard let opened = key.openInPlace(type: type, version: 0x0303, &inbound, bodyRange, sequence: readSequence) else {
                throw TLSError(.badRecordMAC, "record authentication failed")
            }
            readSequence += 1
            guard opened.count <= Self.maxPlaintext else { throw TLSError(.recordOverflow, "protected record content over 2^14 bytes") }
            contentRange = opened
        } else if let key = readKey, !unprotectedAlert {
            guard type == 23 else { throw TLSError(.unexpectedMessage, "unprotected record of type \(type) after keys were installed") }
            let innerRange = bodyRange.lowerBound..<max(bodyRange.lowerBound, bodyRange.upperBound - AEADKey.tagLength)
            let authentic = inbound.withUnsafeMutableBytes { raw in
                key.open(UnsafeRawBufferPointer(rebasing: raw[bodyRange]), into: UnsafeMutableRawBufferPointer(rebasing: raw[innerRange]),
                         sequence: readSequence, additionalData: UnsafeRawBufferPointer(rebasing: raw[h..<(h + 5)]))
            }
            guard authentic else {
                if skippingRejectedEarlyData, skippedEarlyData + length <= max(Int(handshake.configuration.maxEarlyDataSize), Self.maxCiphertext) {
                    skippedEarlyData += length  // RFC 8446 §4.2.10: skip 0-RTT records the server refused
                    return true
                }
                throw TLSError(.badRecordMAC, "record authentication failed")
            }
            skippingRejectedEarlyData = false
            readSequence += 1
            guard innerRange.count <= Self.maxPlaintext + 1 else { throw TLSError(.recordOverflow, "protected record content over 2^14 bytes") }
            if let limit = handshake.localRecordSizeLimit, readLevel != .earlyData, innerRange.count > limit {
                // RFC 8449 §4: records over the limit we announced (0-RTT was sent before the
                // client could know it).
                throw TLSError(.recordOverflow, "protected record plaintext of \(innerRange.count) bytes over our record_size_limit \(limit)")
            }
            guard let last = inbound[innerRange].lastIndex(where: { $0 != 0 }) else {
                throw TLSError(.unexpectedMessage, "protected record without a content type")
            }
            contentType = inbound[last]
            contentRange = innerRange.lowerBound..<last
        } else {
            guard length <= Self.maxPlaintext else { throw TLSError(.recordOverflow, "plaintext record over 2^14 bytes") }
            if type == 23 && handshake.role == .server && handshake.earlyDataAccepted == false && !handshake.hasPartialMessage(at: readLevel) {
                // 0-RTT the client offered with a first ClientHello we answered with
                // HelloRetryRequest (RFC 8446 §4.2.10). Any other unprotected application data
                // is refused below: before the ClientHello, between its fragments, or when no
                // 0-RTT was offered.
                guard skippedEarlyData + length <= max(Int(handshake.configuration.maxEarlyDataSize), Self.maxCiphertext) else {
                    throw TLSError(.unexpectedMessage, "too much unreadable early data")
                }
                skippedEarlyData += length
                return true
            }
        }

        let content = inbound[contentRange]
        if content.isEmpty && contentType != 23 {
            throw TLSError(.unexpectedMessage, "empty record of type \(contentType)")
        }
        if contentType == 23 && handshake.negotiatedVersion == .tls12 && !handshake.isHandshakeComplete {
            throw TLSError(.unexpectedMessage, "application data before the TLS 1.2 handshake completed")
        }
        if contentType == 23 && readLevel != .application && readLevel != .earlyData {
            // Empty or not: application data has no place before the handshake keys give way to
            // the application keys (RFC 8446 §5.1, §2).
            throw TLSError(.unexpectedMessage, "application data before the handshake completed")
        }
        if contentType == 23 && handshake.hasPartialMessage(at: readLevel) {
            // RFC 8446 §5.1: handshake messages must not be interleaved with other record types.
            throw TLSError(.unexpectedMessage, "application data inside a fragmented handshake message")
        }
        if content.isEmpty {
            emptyRecordRun += 1
            guard emptyRecordRun <= Self.maxEmptyRun else { throw TLSError(.unexpectedMessage, "too many empty records") }
            return true
        }
        emptyRecordRun = 0
        switch contentType {
        case 22:
            try handshake.receive(Array(content), at: readLevel)
            try drainHandshake()
        case 23:
            if readLevel == .earlyData {
                earlyDataReceived += content.count
                guard earlyDataReceived <= Int(handshake.configuration.maxEarlyDataSize) else {
                    throw TLSError(.unexpectedMessage, "more early data than max_early_data_size")
                }
            }
            plaintext.append(contentsOf: content)
        case 21:
            guard content.count == 2 else { throw TLSError(.decodeError, "alert of \(content.count) bytes") }
            let level = content[content.startIndex]
            let alert = AlertDescription(rawValue: content[content.startIndex + 1])
            if alert == .closeNotify {
                isPeerClosed = true
            } else if alert == .userCanceled || handshake.negotiatedVersion == .tls12 && level == 1 {
                // TLS 1.2 warnings (RFC 5246 §7.2) are skipped, as TLS 1.3's user_canceled is.
                warningAlertRun += 1
                guard warningAlertRun <= Self.maxEmptyRun else { throw TLSError(.unexpectedMessage, "too many warning alerts") }
            } else {
                throw TLSError.received(alert)
            }
        default:
            throw TLSError(.unexpectedMessage, "record of unknown type \(contentType)")
        }
        return true
    }
}

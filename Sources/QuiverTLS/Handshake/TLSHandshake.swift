import QuiverCore
public import X509

/// A TLS 1.3 (RFC 8446) or, over TCP, TLS 1.2 (RFC 5246) handshake, client or server, with no
/// I/O. TLS 1.2 lives in `TLS12/`; the version is chosen by the ClientHello and ServerHello
/// (``negotiatedVersion``).
///
/// Contract (the driving loop, as in quinn-proto's `Connection`):
/// 1. A client calls ``start()`` once; a server waits for bytes.
/// 2. Feed handshake bytes received at an ``EncryptionLevel`` with ``receive(_:at:)``
///    (QUIC: CRYPTO frame data in order; TCP: the content of handshake records).
/// 3. After every call, drain ``nextEvent()`` until `nil` and act on each ``TLSEvent`` in
///    order: send bytes at a level, install secrets, note completion and tickets.
/// 4. A thrown ``TLSError`` is fatal: send its alert (``TLSError/alert``) and stop. Every later
///    call throws the same error.
///
/// Negotiated values (``negotiatedALPN``, ``serverName``, ``peerCertificates``…) are readable
/// once the handshake has reached them. Not thread-safe: use from one thread at a time.
public final class TLSHandshake {
    /// Which side of the handshake this is.
    public enum Role: Sendable { case client, server }

    /// The role.
    public let role: Role
    let configuration: TLSConfiguration
    /// `true` for QUIC (RFC 9001 §8): transport parameters required, no EndOfEarlyData,
    /// no middlebox compatibility, KeyUpdate messages forbidden.
    public let isQUIC: Bool
    /// `true` for DTLS (RFC 6347, RFC 9147): ClientHello with a cookie field and version 0xFEFD,
    /// handshake messages with 12-byte headers (message_seq), the DTLS version numbers in
    /// supported_versions. DTLS 1.2: HelloVerifyRequest, and the transcript hashes the 12-byte
    /// headers (RFC 6347 §4.2.6). DTLS 1.3: the `"dtls13"` label prefix, no legacy session ID
    /// echoed, no PSK resumption or tickets here (not implemented). The DTLS record layer
    /// (``DTLSConnection``) fragments, orders, acknowledges and retransmits the messages.
    let isDatagram: Bool
    /// The HKDF label prefix: `"dtls13"` in DTLS (only TLS 1.3's key schedule uses labels).
    var labelPrefix: TLSLabelPrefix { isDatagram ? .dtls13 : .tls13 }
    /// The wire value of TLS 1.3 in supported_versions: 0x0304, or DTLS 1.3's 0xFEFC.
    var wireVersion13: UInt16 { isDatagram ? 0xFEFC : 0x0304 }
    /// DTLS: the message_seq of our next handshake message.
    var datagramSendSeq: UInt16 = 0
    /// DTLS client: HelloVerifyRequests answered so far (a few at most).
    var helloVerifyRequests = 0
    /// DTLS: the Connection ID we want in the records we receive (RFC 9146; empty: we send
    /// with the peer's but want none); `nil`: Connection IDs are not offered (client) or not
    /// accepted (server).
    var localConnectionID: [UInt8]?
    /// DTLS: the Connection ID to put in the records we send (empty: none), once both sides
    /// agreed to use Connection IDs; `nil` otherwise.
    public internal(set) var peerConnectionID: [UInt8]?
    var localTransportParameters: [UInt8]?
    /// DTLS: the SRTP protection profile both sides agreed on in `use_srtp` (RFC 5764).
    public internal(set) var negotiatedSRTPProfile: SRTPProtectionProfile?

    /// Server under QUIC: called with the client's transport parameters as soon as the
    /// ClientHello is parsed, before anything is sent; returns the transport parameters to send
    /// in EncryptedExtensions (replacing those given at init). QUIC uses it to validate the
    /// client's parameters and to choose a version by compatible version negotiation
    /// (RFC 9368 §6), which the server's parameters must announce. A thrown error aborts the
    /// handshake with that alert.
    public var transportParametersProvider: ((_ clientParameters: [UInt8]) throws(TLSError) -> [UInt8])?
    /// Server: what a session ticket must carry to be accepted for resumption (a ticket sealed
    /// with other bytes gets a full handshake). QUIC puts the version the client started the
    /// connection in here: a ticket belongs to the version of the connection that got it (RFC
    /// 9369 §5). 0 by default (TLS over TCP).
    public var acceptedTicketContext: UInt32 = 0
    /// Server: what every session ticket issued carries (see ``acceptedTicketContext``; QUIC:
    /// the connection's version after compatible version negotiation).
    public var issuedTicketContext: UInt32 = 0

    var state: State
    var events: [TLSEvent] = []
    var eventIndex = 0
    var failure: TLSError?
    var transcript = Transcript()
    var reassemblers = [HandshakeReassembler](repeating: HandshakeReassembler(), count: 4)

    // Negotiated state, readable by the driver.
    /// The protocol version, once the ServerHello fixed it.
    public internal(set) var negotiatedVersion: TLSVersion?
    /// The cipher suite, once chosen.
    public internal(set) var cipherSuite: CipherSuite?
    /// The key-exchange group, once chosen.
    public internal(set) var group: NamedGroup?
    /// The ALPN protocol both sides agreed on.
    public internal(set) var negotiatedALPN: String?
    /// The server name: sent (client) or received (server) in `server_name`.
    public internal(set) var serverName: String?
    /// The peer's certificates (leaf first), once verified.
    public internal(set) var peerCertificates: [Certificate] = []
    /// The peer's QUIC transport parameters (opaque bytes), once received.
    public internal(set) var peerTransportParameters: [UInt8]?
    /// Whether the handshake resumed a session with a PSK.
    public internal(set) var isResumed = false
    /// Whether 0-RTT data was accepted (`nil` until known or when not attempted).
    public internal(set) var earlyDataAccepted: Bool?
    /// Client: how many bytes of 0-RTT data the ticket allows (0 when not attempting 0-RTT).
    public internal(set) var earlyDataLimit: UInt32 = 0
    /// Whether a HelloRetryRequest was part of this handshake.
    public internal(set) var didHelloRetry = false
    /// `true` once both Finished messages are done.
    public internal(set) var isHandshakeComplete = false
    /// The algorithm our Certificate was compressed with (RFC 8879), when it was.
    public internal(set) var sentCertificateCompression: CertificateCompressionAlgorithm?
    /// The algorithm the peer's Certificate arrived compressed with (RFC 8879), when it did.
    public internal(set) var receivedCertificateCompression: CertificateCompressionAlgorithm?
    /// The certificate compression algorithms the peer offered (`compress_certificate`).
    var peerCertificateCompression: [CertificateCompressionAlgorithm]?
    /// The peer's `record_size_limit` (RFC 8449): the largest protected-record plaintext it
    /// accepts, content type and padding included; `nil` when the peer sent none.
    public internal(set) var peerRecordSizeLimit: Int?
    /// Our `record_size_limit` once both sides exchanged the extension: the peer's protected
    /// records (after 0-RTT) larger than this are `record_overflow`.
    public internal(set) var localRecordSizeLimit: Int?
    /// Whether the client sent a non-empty legacy_session_id (TLS over TCP middlebox
    /// compatibility, RFC 8446 §D.4): the server then sends one change_cipher_spec record.
    public internal(set) var middleboxCompatibility = false

    // Secrets kept for later use.
    var clientRandom: [UInt8] = []
    /// TLS 1.2: the server's random (key block, exporter).
    var serverRandom: [UInt8] = []
    /// TLS 1.2: the master secret, kept after the handshake for the exporter (RFC 5705) only.
    var tls12Master: TLS12MasterSecret?
    var masterSecret: MasterSecret?
    var clientApplicationSecret: TrafficSecret?
    var serverApplicationSecret: TrafficSecret?
    var resumptionMasterSecret: [UInt8]?
    var exporterMasterSecret: [UInt8]?
    var keyUpdatePending = false

    /// Creates a client handshake.
    /// - Parameters:
    ///   - configuration: shared client settings.
    ///   - serverName: the name to send in SNI and to verify the certificate against (a DNS
    ///     name or an IP literal; IP literals are verified but not sent, RFC 6066 §3).
    ///   - quicTransportParameters: our encoded transport parameters when running under QUIC.
    ///   - resumption: a ticket to offer; 0-RTT is attempted when `attemptEarlyData` is set and
    ///     the ticket allows it (see ``earlyDataAccepted``).
    public convenience init(client configuration: TLSConfiguration, serverName: String?, quicTransportParameters: [UInt8]? = nil,
                            resumption: SessionTicket? = nil, attemptEarlyData: Bool = false) {
        self.init(client: configuration, serverName: serverName, quicTransportParameters: quicTransportParameters, resumption: resumption,
                  attemptEarlyData: attemptEarlyData, datagram: false)
    }

    /// Creates a server handshake.
    public convenience init(server configuration: TLSConfiguration, quicTransportParameters: [UInt8]? = nil) {
        self.init(server: configuration, quicTransportParameters: quicTransportParameters, datagram: false)
    }

    init(client configuration: TLSConfiguration, serverName: String?, quicTransportParameters: [UInt8]? = nil,
         resumption: SessionTicket? = nil, attemptEarlyData: Bool = false, datagram: Bool) {
        role = .client
        self.configuration = configuration
        isQUIC = quicTransportParameters != nil
        isDatagram = datagram
        localTransportParameters = quicTransportParameters
        self.serverName = serverName
        state = .clientStart(ClientStart(ticket: resumption, attemptEarlyData: attemptEarlyData && !datagram))
        for i in reassemblers.indices { reassemblers[i].datagram = datagram }
    }

    init(server configuration: TLSConfiguration, quicTransportParameters: [UInt8]? = nil, datagram: Bool) {
        role = .server
        self.configuration = configuration
        isQUIC = quicTransportParameters != nil
        isDatagram = datagram
        localTransportParameters = quicTransportParameters
        state = .serverExpectClientHello(ServerExpectClientHello(retried: nil))
        for i in reassemblers.indices { reassemblers[i].datagram = datagram }
    }

    /// A DTLS 1.3 server whose first ClientHello was answered statelessly with `retry` (by
    /// ``DTLSCookieGate``): its transcript starts `message_hash(ClientHello1) ‖
    /// HelloRetryRequest` (RFC 8446 §4.4.1), and it expects the second ClientHello.
    convenience init(server configuration: TLSConfiguration, after retry: DTLSHelloRetry) {
        self.init(server: configuration, datagram: true)
        let hrr = Self.helloRetryRequest(suite: retry.suite, group: retry.group, cookie: retry.cookie, sessionID: [], datagram: true)
        let hash = retry.clientHelloHash
        transcript = Transcript(tlsForm: [HandshakeType.messageHash.rawValue, 0, 0, UInt8(hash.count)] + hash + hrr.encoded)
        didHelloRetry = true
        cipherSuite = retry.suite
        state = .serverExpectClientHello(ServerExpectClientHello(retried: (retry.group, retry.cookie, retry.suite)))
    }

    /// The next thing to do, or `nil` when there is nothing more for now.
    public func nextEvent() -> TLSEvent? {
        guard eventIndex < events.count else {
            if !events.isEmpty { events.removeAll(keepingCapacity: !isHandshakeComplete); eventIndex = 0 }
            return nil
        }
        defer { eventIndex += 1 }
        return events[eventIndex]
    }

    /// Client: produces the ClientHello. Call once.
    public func start() throws(TLSError) {
        try guarded { () throws(TLSError) in
            guard case .clientStart(let start) = state else { throw TLSError(.internalError, "start() called twice or on a server") }
            try clientSendHello(start)
        }
    }

    /// Feeds handshake bytes received at `level`.
    public func receive(_ bytes: [UInt8], at level: EncryptionLevel) throws(TLSError) {
        try guarded { () throws(TLSError) in
            reassemblers[level.rawValue].append(bytes)
            while let message = try reassemblers[level.rawValue].next() {
                try handle(message, at: level)
            }
        }
    }

    /// Whether part of a handshake message received at `level` waits for the rest (a record
    /// layer must not accept other record types in between, RFC 8446 §5.1).
    func hasPartialMessage(at level: EncryptionLevel) -> Bool {
        !reassemblers[level.rawValue].isEmpty
    }

    /// Initiates a KeyUpdate (TLS over TCP only; QUIC updates keys in packets, RFC 9001 §6).
    /// - Parameter requestPeerUpdate: ask the peer to update its sending keys too.
    public func updateKeys(requestPeerUpdate: Bool) throws(TLSError) {
        try guarded { () throws(TLSError) in
            guard isHandshakeComplete, !isQUIC, negotiatedVersion == .tls13 else {
                throw TLSError(.internalError, "KeyUpdate before the handshake completed, under QUIC or in TLS 1.2")
            }
            sendKeyUpdate(requestUpdate: requestPeerUpdate)
        }
    }

    /// TLS-Exporter (RFC 8446 §7.5; in TLS 1.2 RFC 5705 §4 with a context, extended master
    /// secret), available once the handshake is complete.
    public func exportKeyingMaterial(label: String, context: [UInt8], length: Int) -> [UInt8]? {
        if let master = tls12Master, isHandshakeComplete {
            return master.export(label: label, context: context, clientRandom: clientRandom, serverRandom: serverRandom, length: length)
        }
        guard let secret = exporterMasterSecret, let hash = cipherSuite?.hash else { return nil }
        return hash.exporter(secret: secret, label: label, context: context, length: length, prefix: labelPrefix)
    }

    /// The error that ended the handshake, if any.
    public var error: TLSError? { failure }

    func guarded(_ body: () throws(TLSError) -> Void) throws(TLSError) {
        if let failure { throw failure }
        do {
            try body()
        } catch {
            failure = error
            state = .failed
            throw error
        }
    }

    func emit(_ event: TLSEvent) { events.append(event) }

    func send(_ level: EncryptionLevel, _ message: [UInt8], transcript include: Bool = true) {
        var message = message
        if isDatagram {
            // One TLS-framed message in: the DTLS form with our next message_seq out.
            message = HandshakeMessage(type: HandshakeType(rawValue: message[0]), body: Array(message[4...]), messageSeq: datagramSendSeq).encoded
            datagramSendSeq &+= 1
        }
        if include { transcript.append(message) }
        if case .send(let l, let pending)? = events.last, l == level, eventIndex < events.count {
            events[events.count - 1] = .send(level, pending + message)
        } else {
            emit(.send(level, message))
        }
    }

    func logSecret(_ label: String, _ secret: [UInt8]) {
        guard let keyLog = configuration.keyLog else { return }
        keyLog("\(label) \(hexString(clientRandom)) \(hexString(secret))")
    }

    /// DTLS server: a `connection_id` extension for the ServerHello when the client offered one
    /// and we take them (RFC 9146 §3), noting the client's.
    func answerConnectionID(_ hello: ClientHello, into ext: inout Extensions) throws(TLSError) {
        guard isDatagram, let mine = localConnectionID,
              let theirs = try hello.extensions.decode(.connectionID, { r throws(DecodeError) in try r.readLengthPrefixedBytes(1) })
        else { return }
        ext.append(.connectionID) { $0.writeLengthPrefixedBytes(1, mine) }
        peerConnectionID = theirs
    }

    /// DTLS client: the server's `connection_id` in its ServerHello (only when we offered one).
    func acceptConnectionID(_ ext: Extensions) throws(TLSError) {
        guard let theirs = try ext.decode(.connectionID, { r throws(DecodeError) in try r.readLengthPrefixedBytes(1) }) else { return }
        guard isDatagram, localConnectionID != nil else { throw TLSError(.unsupportedExtension, "connection_id in ServerHello, which was not offered") }
        peerConnectionID = theirs
    }

    /// DTLS server: `use_srtp` for the ServerHello (DTLS 1.2) or EncryptedExtensions (DTLS 1.3)
    /// when the client offered a profile we accept: ours in our order of preference, with the
    /// client's MKI echoed (RFC 5764 §4.1.1). No profile in common: no extension, and the
    /// client decides whether to go on (§4.1.2).
    func answerSRTP(_ hello: ClientHello, into ext: inout Extensions) throws(TLSError) {
        guard isDatagram, !configuration.srtpProtectionProfiles.isEmpty,
              let offer = try hello.extensions.decode(.useSRTP, SRTPProtectionProfile.decodeOffer)
        else { return }
        guard let chosen = configuration.srtpProtectionProfiles.first(where: offer.profiles.contains) else { return }
        negotiatedSRTPProfile = chosen
        ext.append(.useSRTP) { SRTPProtectionProfile.encode([chosen], mki: offer.mki, into: &$0) }
    }

    /// DTLS client: the server's `use_srtp`: one profile we offered, and no MKI (we send none).
    func acceptSRTP(_ ext: Extensions) throws(TLSError) {
        guard let answer = try ext.decode(.useSRTP, SRTPProtectionProfile.decodeOffer) else { return }
        guard isDatagram, answer.profiles.count == 1, configuration.srtpProtectionProfiles.contains(answer.profiles[0]) else {
            throw TLSError(.illegalParameter, "use_srtp in the server's answer with profiles \(answer.profiles), which were not offered")
        }
        guard answer.mki.isEmpty else { throw TLSError(.illegalParameter, "use_srtp with an MKI we did not offer") }
        negotiatedSRTPProfile = answer.profiles[0]
    }

    /// Dispatches one complete message: post-handshake messages here, handshake states in the
    /// role files. A message at the wrong level is `unexpected_message`.
    func handle(_ message: HandshakeMessage, at level: EncryptionLevel) throws(TLSError) {
        switch state {
        case .connected:
            guard level == .application else { throw TLSError(.unexpectedMessage, "\(message.type) at \(level) after the handshake") }
            try handlePostHandshake(message)
        case .failed:
            throw failure ?? TLSError(.internalError, "handshake failed")
        default:
            switch (negotiatedVersion, role) {
            case (.tls12?, .client): try client12Handle(message, at: level)
            case (.tls12?, .server): try server12Handle(message, at: level)
            case (_, .client): try clientHandle(message, at: level)
            case (_, .server): try serverHandle(message, at: level)
            }
        }
    }

    /// Once both Finished messages are done: the transcript and the master secret served
    /// their last purpose (the resumption master secret), so an established connection keeps
    /// neither — less memory per connection, and no secret held longer than needed. Our QUIC
    /// transport parameters were sent (ClientHello, EncryptedExtensions) and go too.
    func releaseHandshakeSecrets() {
        transcript = Transcript()
        masterSecret = nil
        localTransportParameters = nil
    }

    func handlePostHandshake(_ message: HandshakeMessage) throws(TLSError) {
        if negotiatedVersion == .tls12 {
            // RFC 5746 §4.2, §4.4: Quiver never renegotiates; a request gets a warning and the
            // connection goes on.
            switch message.type {
            case .helloRequest where role == .client && message.body.isEmpty, .clientHello where role == .server:
                emit(.warningAlert(.noRenegotiation))
                return
            default:
                throw TLSError(.unexpectedMessage, "\(message.type) after a TLS 1.2 handshake")
            }
        }
        switch message.type {
        case .newSessionTicket where role == .client:
            try clientReceiveTicket(message.body)
        case .keyUpdate where !isQUIC:
            let requested = try MessageCodec.keyUpdate(message.body)
            let peerSecret = (role == .client ? serverApplicationSecret : clientApplicationSecret)
            guard let next = peerSecret?.updated() else { throw TLSError(.internalError, "no application secret") }
            if role == .client { serverApplicationSecret = next } else { clientApplicationSecret = next }
            emit(.installReadSecret(.application, next))
            if requested && !keyUpdatePending { sendKeyUpdate(requestUpdate: false) }
            keyUpdatePending = false
        default:
            throw TLSError(.unexpectedMessage, "\(message.type) after the handshake")
        }
    }

    func sendKeyUpdate(requestUpdate: Bool) {
        send(.application, MessageCodec.encodeKeyUpdate(requestUpdate: requestUpdate), transcript: false)
        let mine = role == .client ? clientApplicationSecret : serverApplicationSecret
        guard let next = mine?.updated() else { return }
        if role == .client { clientApplicationSecret = next } else { serverApplicationSecret = next }
        emit(.installWriteSecret(.application, next))
        if requestUpdate { keyUpdatePending = true }
    }

    /// The content signed in CertificateVerify (RFC 8446 §4.4.3).
    static func signedContent(server: Bool, transcriptHash: [UInt8]) -> [UInt8] {
        [UInt8](repeating: 0x20, count: 64) + Array((server ? "TLS 1.3, server CertificateVerify" : "TLS 1.3, client CertificateVerify").utf8)
            + [0] + transcriptHash
    }

    /// Our Certificate message, compressed when the peer offered an algorithm we use (RFC 8879)
    /// and there is a chain to compress.
    func sendCertificate(context: [UInt8], chain: [[UInt8]]) {
        let (message, algorithm) = CertificateCompression.message(
            MessageCodec.encodeCertificate(context: context, chain: chain),
            configured: chain.isEmpty ? [] : configuration.certificateCompressionAlgorithms, peer: peerCertificateCompression,
            cache: configuration.certificateCompressionCache)
        sentCertificateCompression = algorithm
        send(.handshake, message)
    }

    /// The body of the peer's Certificate, or of its CompressedCertificate decompressed (only
    /// when we offered compression: otherwise that message is unexpected).
    func certificateBody(_ message: HandshakeMessage) throws(TLSError) -> [UInt8] {
        guard message.type == .compressedCertificate else { return message.body }
        let offered = configuration.certificateCompressionAlgorithms.filter { CertificateCompressionAlgorithm.supported.contains($0) }
        guard !offered.isEmpty else { throw TLSError(.unexpectedMessage, "CompressedCertificate, but no compression was offered") }
        let body = try CertificateCompression.decompress(message.body, offered: offered, limit: HandshakeReassembler.maximumMessageSize)
        receivedCertificateCompression = CertificateCompressionAlgorithm(rawValue: UInt16(message.body[0]) << 8 | UInt16(message.body[1]))
        return body
    }

    /// Compares secrets without an early exit.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}

func hexString(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

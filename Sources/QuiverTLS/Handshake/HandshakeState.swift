import X509

/// The handshake's state: one case per "expecting message X" point, each carrying exactly
/// what the next step needs (rustls-style). Transitions live in `TLSHandshake+Client.swift`
/// and `TLSHandshake+Server.swift`; anything else arriving is `unexpected_message`.
///
/// `indirect`: the payloads (keys, flights, offers) live in their own allocation for the few
/// steps of the handshake, so a connected handshake object — one per established connection —
/// does not carry 800 bytes of inline room for them.
indirect enum State {
    case clientStart(ClientStart)
    case clientExpectServerHello(ClientHelloContext)
    case clientExpectEncryptedExtensions(ClientFlight)
    case clientExpectCertificateOrRequest(ClientFlight)
    case clientExpectCertificate(ClientFlight)
    case clientExpectCertificateVerify(ClientFlight)
    case clientExpectFinished(ClientFlight)
    case serverExpectClientHello(ServerExpectClientHello)
    case serverExpectEndOfEarlyData(ServerFlight)
    case serverExpectCertificate(ServerFlight)
    case serverExpectCertificateVerify(ServerFlight)
    case serverExpectFinished(ServerFlight)
    case server12ExpectCertificate(Server12Flight)
    case server12ExpectClientKeyExchange(Server12Flight)
    case server12ExpectCertificateVerify(Server12Flight)
    case server12ExpectFinished(Server12Flight)
    case client12ExpectCertificate(Client12Flight)
    case client12ExpectServerKeyExchange(Client12Flight)
    case client12ExpectCertificateRequestOrDone(Client12Flight)
    case client12ExpectServerHelloDone(Client12Flight)
    case client12ExpectTicket(Client12Flight)
    case client12ExpectFinished(Client12Flight)
    case connected
    case failed
}

struct ClientStart {
    var ticket: SessionTicket?
    var attemptEarlyData: Bool
}

/// What the client offered, kept to check the reply and to rebuild after HelloRetryRequest.
struct ClientHelloContext {
    var keyShares: [KeySharePrivate]
    var sessionID: [UInt8]
    var ticket: SessionTicket?
    /// A TLS 1.2 ticket offered in the session_ticket extension.
    var ticket12: SessionTicket?
    /// DTLS: the cookie of the last HelloVerifyRequest (empty before one).
    var dtlsCookie: [UInt8] = []
    var offeredEarlyData: Bool
    var helloRetry: ServerHello?
    var cookie: [UInt8]?
}

/// Handshake keys agreed with the server.
struct HandshakeKeys {
    var suite: CipherSuite
    var hash: TLSHash
    var handshakeSecret: HandshakeSecret
    var clientSecret: [UInt8]
    var serverSecret: [UInt8]
}

/// The client between ServerHello and its own Finished.
struct ClientFlight {
    var context: ClientHelloContext
    var keys: HandshakeKeys
    var certificateRequestContext: [UInt8]?
    var serverLeaf: Certificate?
}

struct ServerExpectClientHello {
    /// Set after a HelloRetryRequest: the group asked for (`nil`: only a cookie was asked
    /// for, by a DTLS 1.3 server's stateless first step), the cookie sent, the suite chosen.
    var retried: (group: NamedGroup?, cookie: [UInt8], suite: CipherSuite)?
}

/// The server between its Finished and the client's.
struct ServerFlight {
    var keys: HandshakeKeys
    var clientLeaf: Certificate?
    var requestedCertificate: Bool
}

/// A TLS 1.2 server from its ServerHello to the client's Finished.
struct Server12Flight {
    var suite: CipherSuite
    var hash: TLSHash
    var serverRandom: [UInt8]
    /// Full handshake: our ephemeral ECDHE key, until the ClientKeyExchange.
    var ephemeral: KeySharePrivate?
    /// From the ClientKeyExchange, or from the session ticket when resuming.
    var master: TLS12MasterSecret?
    var clientLeaf: Certificate?
    var requestedCertificate: Bool
    var resumed: Bool
    /// Whether the ServerHello promised a NewSessionTicket (RFC 5077 §3.2).
    var issueTicket: Bool
}

/// A TLS 1.2 client from the ServerHello to the server's Finished.
struct Client12Flight {
    var suite: CipherSuite
    var hash: TLSHash
    var serverRandom: [UInt8]
    var serverLeaf: Certificate?
    /// The server's ECDHE group and public point (ServerKeyExchange).
    var serverShare: (group: NamedGroup, point: [UInt8])?
    /// The schemes of a CertificateRequest, when the server sent one.
    var certificateRequest: [SignatureScheme]?
    var master: TLS12MasterSecret?
    /// Resuming the session of a ticket: the server's Finished comes first.
    var resumed: Bool
    /// Whether the ServerHello promised a NewSessionTicket (RFC 5077 §3.2).
    var expectTicket: Bool
}

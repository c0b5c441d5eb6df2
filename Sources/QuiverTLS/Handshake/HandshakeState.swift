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
    /// Set after a HelloRetryRequest: the group asked for and the cookie sent.
    var retried: (group: NamedGroup, cookie: [UInt8], suite: CipherSuite)?
}

/// The server between its Finished and the client's.
struct ServerFlight {
    var keys: HandshakeKeys
    var clientLeaf: Certificate?
    var requestedCertificate: Bool
}

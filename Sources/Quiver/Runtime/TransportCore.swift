import QuiverCore

/// The I/O half of a listener or client connection, one per transport (``QUICCore``,
/// ``TLSCore``): what ``Listener`` and ``Connection`` ask of it, so that neither switches over
/// the transport. The driver runs it through ``DriverCore``; `…Locked` members are called with
/// ``lock`` held.
protocol TransportCore: DriverCore {
    /// Guards the core's state.
    var lock: Monitor { get }
    /// The driver running the core: its event loop (a listener has one per loop).
    var driver: Driver { get }
    /// Where failed handshakes are logged (set before the driver starts).
    var handshakeLog: HandshakeFailureLog? { get set }
    /// A listener's metrics (set before the driver starts; `nil` without a metrics backend).
    var metrics: ListenerMetrics? { get set }
    /// The local addresses of the socket attachments.
    var localAddresses: [SocketAddress] { get }

    /// Adds an attachment (lock held, or before the driver starts).
    func attachLocked(_ attachment: Attachment) throws(QuiverError)

    /// The listener's counters.
    var statistics: Listener.Statistics { get }
    /// Counters and connection state, for diagnostics.
    var debugDescription: String { get }

    /// Forks the process and hands `session` — one of this core's connections — to the child
    /// (``Listener/fork(handingOff:)``).
    func fork(handingOff session: any Session) throws(QuiverError) -> Listener.ForkResult
    /// Closes every connection (with `code`), wakes every waiter and stops the driver.
    func close(code: UInt64, reason: String)
    /// Stops accepting connections on listening sockets and closes this core's descriptors of
    /// them, its connections untouched (``Listener/closeListeningSockets()``).
    func closeListeningSockets()
    /// A client's shutdown: the core closes once its connection's closing period is over
    /// (QUIC, thread-assisted), or at once.
    func lingerThenClose()
    /// A client connection object went away: the core closes, unless it lingers after a
    /// shutdown already.
    func closeUnlessLingering()
}

extension TransportCore {
    /// The datagram transports' sockets carry their connections too: nothing to close.
    func closeListeningSockets() {}
}

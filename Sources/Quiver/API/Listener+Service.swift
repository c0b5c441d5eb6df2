public import ServiceLifecycle

/// A listener in a `ServiceGroup` (swift-service-lifecycle): its lifetime is the group's.
///
/// ```swift
/// let listener = try Listener(.quic, tls: tls, bind: "[::]:4433")
/// let group = ServiceGroup(services: [listener, MyServer(listener)], gracefulShutdownSignals: [.sigterm], logger: log)
/// try await group.run()
/// ```
///
/// ``run()`` waits for the group's graceful shutdown (or cancellation), then closes the listener:
/// its connections end with their transport's clean close (code 0) and `connections` and
/// `accept` end, so an accept loop in another service returns. A server that drains first — stops
/// taking requests and lets those in progress finish, as `HTTP3Service` does — runs its own
/// listener and closes it itself.
extension Listener: Service {
    public func run() async throws {
        // Returns at graceful shutdown; throws CancellationError when the group is cancelled.
        try? await gracefulShutdown()
        close(code: 0, reason: "shutting down")
    }
}

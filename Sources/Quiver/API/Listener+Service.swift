public import ServiceLifecycle

/// A listener in a `ServiceGroup` (swift-service-lifecycle): its lifetime is the group's.
///
/// ```swift
/// let listener = try Listener(.quic, tls: tls, bind: "[::]:4433")
/// let server = ClosureService { await listener.serve { connection in await handle(connection) } }
/// try await ServiceGroup(services: [server], gracefulShutdownSignals: [.sigterm], logger: log).run()
/// ```
///
/// Two ways in. ``serve(maxConnections:_:)`` runs a server's accept loop with the group's
/// graceful shutdown built in (stop accepting, let the connections end, close). And the listener
/// is itself a `Service` for an application that accepts elsewhere: ``run()`` waits for the
/// graceful shutdown (or cancellation), then closes the listener, which ends accept loops.
extension Listener: Service {
    public func run() async throws {
        // Returns at graceful shutdown; throws CancellationError when the group is cancelled.
        try? await gracefulShutdown()
        close(code: 0, reason: "shutting down")
    }

    /// Serves each connection with `handler`, in a task on the connection's event loop, until
    /// the enclosing `ServiceGroup` shuts down gracefully, the listener closes, or
    /// `maxConnections` were accepted; then waits until the connections ended and their closing
    /// periods are over (RFC 9000 §10.2: a CONNECTION_CLOSE lost on the way is sent again only
    /// while the socket is open), and closes the listener.
    ///
    /// The handlers see the graceful shutdown too (a task-local of the group): an HTTP/3
    /// server drains its connections (`HTTP3Server.serve`); a handler that does not look at it
    /// runs until its connection ends. Cancellation — the group's `maximumGracefulShutdownDuration`
    /// — closes the listener, and with it the connections still open.
    public func serve(maxConnections: Int? = nil, _ handler: @escaping @Sendable (Connection) async -> Void) async {
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                var accepted = 0
                // Not `cancelOnGracefulShutdown()`: its merge waits for connections in an
                // unstructured task of its own, which does not inherit the executor preference
                // (SE-0417) and so runs on the global pool, a hop per connection that a busy
                // pool delays. The shutdown handler ends the accepting instead: it takes the
                // accept queue's lock only, never a loop's.
                await withGracefulShutdownHandler {
                    do {
                        for try await connection in connections {
                            accepted += 1
                            group.addTask(executorPreference: connection.taskExecutor) {
                                await handler(connection)
                                await connection.waitUntilClosed()
                            }
                            if let maxConnections, accepted >= maxConnections { break }
                        }
                    } catch {}  // the listener closed, or stopped accepting
                } onGracefulShutdown: {
                    self.acceptQueue.stopAccepting()
                }
            }
        } onCancel: {
            // A cancellation handler must not block on the loops: a task closes the listener.
            Task { self.close(code: 0, reason: "shutting down") }
        }
        close(code: 0, reason: "shutting down")
    }
}

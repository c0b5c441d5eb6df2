// What a server written against the listener API names comes with `import Quiver` alone:
// the modules whose types make up `Listener`'s and `Connection`'s signatures.
//
// - QuiverCore: `QuiverError`, `SocketAddress`, `QUICVersion`.
// - QuiverTLS: `TLSConfiguration`, `CertificateChain`, `PrivateKey`, `SelfSignedCertificate`,
//   `CertificateVerifier`, `ClientAuthentication`, `AntiReplay`, `CipherSuite`.
// - QuiverUDP and QuiverTLSSocket: `UDPSocket` and `TCPSocket` for attachments, `KeyLogFile`.
//
// Whole modules rather than typealiases: a typealias list would have to follow every type the
// API grows, and a file importing both `Quiver` and `QuiverTLS` would see each name twice.
// Re-exported modules are the same declarations, so nothing is ambiguous.
//
// QuiverQUIC, the sans-I/O engine, is not re-exported, and no file of this module imports it
// publicly: the compiler rejects any engine type in a public signature. The QUIC settings and
// counters a server uses are Quiver's own (`Listener.Options.retryPolicy`, `quicVersions`, …,
// `Listener.Statistics.QUIC`, `ResumptionTicket`); `QUICVersion` is QuiverCore vocabulary. The
// full engine configuration stays reachable for tests and benchmarks as
// `@_spi(QUICEngine) configureQUIC` (declared in files that import QuiverQUIC `@_spiOnly`):
// `@_spi(QUICEngine) import Quiver` plus `import QuiverQUIC`.
@_exported public import QuiverCore
@_exported public import QuiverTLS
@_exported public import QuiverUDP
@_exported public import QuiverTLSSocket

// What a server written against the listener API names comes with `import Quiver` alone:
// the modules whose types make up `Listener`'s and `Connection`'s signatures.
//
// - QuiverCore: `QuiverError`, `SocketAddress`.
// - QuiverTLS: `TLSConfiguration`, `CertificateChain`, `PrivateKey`, `SelfSignedCertificate`,
//   `CertificateVerifier`, `ClientAuthentication`, `AntiReplay`, `CipherSuite`.
// - QuiverUDP and QuiverTLSSocket: `UDPSocket` and `TCPSocket` for attachments, `KeyLogFile`.
//
// Whole modules rather than typealiases: a typealias list would have to follow every type the
// API grows, and a file importing both `Quiver` and `QuiverTLS` would see each name twice.
// Re-exported modules are the same declarations, so nothing is ambiguous. QuiverQUIC (the
// sans-I/O engine: `Frame`, `Role`, …) is not re-exported; `Listener.Options.configureQUIC`
// works on its `QUICConfiguration` without naming it, and code that names QUIC types imports
// `QuiverQUIC` itself.
@_exported public import QuiverCore
@_exported public import QuiverTLS
@_exported public import QuiverUDP
@_exported public import QuiverTLSSocket

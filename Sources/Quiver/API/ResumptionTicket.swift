import QuiverCore
import QuiverQUIC

/// What a QUIC client keeps from a connection to resume the session in a later one: its
/// handshake then needs no certificate, and data written before it completes can go as 0-RTT
/// (RFC 9000 §7.4.1, RFC 9001 §4.6).
///
/// Get one from a connection (``Connection/QUIC/resumptionTicket``), keep it — in memory, or as
/// ``serialized`` bytes across processes — and pass it as ``ClientOptions/resumption`` when
/// connecting to the same server again.
public struct ResumptionTicket: Sendable {
    /// The engine's ticket: the TLS session ticket and the server's transport parameters that
    /// limit 0-RTT data.
    let engine: QUICResumptionTicket

    init(_ engine: QUICResumptionTicket) {
        self.engine = engine
    }

    /// Restores a ticket from its ``serialized`` form.
    /// - Throws: `QuiverError` `.configuration` when `bytes` are not a ticket.
    public init(serialized bytes: [UInt8]) throws(QuiverError) {
        do throws(QUICError) {
            engine = try QUICResumptionTicket(serialized: bytes)
        } catch {
            throw QuiverError(.configuration, "not a resumption ticket: \(error.reason)")
        }
    }

    /// A byte form for keeping the ticket across processes (`quiver get --resume FILE`). It
    /// contains the resumption secret: store it like a key.
    public var serialized: [UInt8] { engine.serialized }

    /// The QUIC version of the connection that issued the ticket; a resumed connection starts
    /// in it, as 0-RTT data is only sent in the same version (RFC 9369 §5).
    public var quicVersion: QUICVersion { engine.version }
}

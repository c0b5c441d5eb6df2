import QuiverCore

/// The TLS half behind ``Listener`` and ``Connection``.
extension TLSCore: TransportCore {
    func attachLocked(_ attachment: Attachment) throws(QuiverError) { try addAttachment(attachment) }
    var debugDescription: String { "\(statistics)" }

    func fork(handingOff session: any Session) throws(QuiverError) -> Listener.ForkResult {
        guard let session = session as? TLSSession else { throw QuiverError(.configuration, "the connection is not this listener's") }
        return try fork(handingOff: session)
    }

    /// TLS has no closing period: the close_notify is sent at once.
    func lingerThenClose() { close(code: 0, reason: "") }
    func closeUnlessLingering() { close(code: 0, reason: "") }
}

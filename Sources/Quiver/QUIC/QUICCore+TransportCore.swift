import QuiverCore

/// The QUIC half behind ``Listener`` and ``Connection``.
extension QUICCore: TransportCore {
    func attachLocked(_ attachment: Attachment) throws(QuiverError) { try addAttachment(attachment) }

    func fork(handingOff session: any Session) throws(QuiverError) -> Listener.ForkResult {
        guard let session = session.quic else { throw QuiverError(.configuration, "the connection is not this listener's") }
        return try fork(handingOff: session)
    }

    func closeUnlessLingering() {
        if !isLingering { close(code: 0, reason: "") }
    }
}

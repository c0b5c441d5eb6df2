import Crypto
public import QuiverCore
import Synchronization

/// A ticket received from a server, with what is needed to resume (RFC 8446 §4.6.1; for TLS
/// 1.2, RFC 5077).
///
/// Holds the resumption PSK (TLS 1.2: the master secret): treat it as a secret. ``serialized`` and
/// ``init(serialized:)`` let a client keep it across processes (`--resume FILE`).
public struct SessionTicket: Sendable, Hashable, CustomStringConvertible {
    /// The TLS version of the session: a TLS 1.3 ticket is offered as a PSK, a TLS 1.2 ticket
    /// in the `session_ticket` extension.
    public let version: TLSVersion
    /// The cipher suite of the original connection (the PSK's hash must match).
    public let suite: CipherSuite
    /// The resumption PSK (TLS 1.2: the master secret).
    let psk: [UInt8]
    /// The opaque ticket, sent back as the PSK identity.
    public let ticket: [UInt8]
    /// Seconds the ticket may be used for.
    public let lifetime: UInt32
    /// The server's `ticket_age_add`.
    let ageAdd: UInt32
    /// When the ticket arrived (milliseconds since the Unix epoch).
    public let receivedAt: UInt64
    /// The server's limit for 0-RTT data with this ticket (0: no 0-RTT).
    public let maxEarlyDataSize: UInt32
    /// The ALPN protocol of the original connection.
    public let alpn: String?
    /// The server name of the original connection.
    public let serverName: String?

    init(version: TLSVersion = .tls13, suite: CipherSuite, psk: [UInt8], ticket: [UInt8], lifetime: UInt32, ageAdd: UInt32, receivedAt: UInt64,
         maxEarlyDataSize: UInt32, alpn: String?, serverName: String?) {
        self.version = version
        self.suite = suite
        self.psk = psk
        self.ticket = ticket
        self.lifetime = lifetime
        self.ageAdd = ageAdd
        self.receivedAt = receivedAt
        self.maxEarlyDataSize = maxEarlyDataSize
        self.alpn = alpn
        self.serverName = serverName
    }

    /// Whether the ticket is still within its lifetime at `now` (ms since the epoch).
    public func isValid(at now: UInt64) -> Bool { now >= receivedAt && now - receivedAt < UInt64(lifetime) * 1000 }

    /// A byte form for storing the ticket (contains the PSK: store it like a key).
    public var serialized: [UInt8] {
        var w = ByteWriter()
        w.writeUInt8(2)
        w.writeUInt16(version.rawValue)
        w.writeUInt16(suite.rawValue)
        w.writeLengthPrefixedBytes(1, psk)
        w.writeLengthPrefixedBytes(2, ticket)
        w.writeUInt32(lifetime)
        w.writeUInt32(ageAdd)
        w.writeUInt64(receivedAt)
        w.writeUInt32(maxEarlyDataSize)
        w.writeLengthPrefixedBytes(1, Array((alpn ?? "").utf8))
        w.writeLengthPrefixedBytes(2, Array((serverName ?? "").utf8))
        return w.bytes
    }

    /// Restores a ticket from ``serialized``.
    public init(serialized bytes: [UInt8]) throws(DecodeError) {
        var r = ByteReader(bytes)
        // Format 1 predates TLS 1.2 and holds TLS 1.3 tickets only.
        switch try r.readUInt8() {
        case 1:
            version = .tls13
        case 2:
            guard let parsed = TLSVersion(rawValue: try r.readUInt16()) else { throw DecodeError(.invalidValue, "unknown ticket version") }
            version = parsed
        default:
            throw DecodeError(.invalidValue, "unknown ticket format")
        }
        suite = CipherSuite(rawValue: try r.readUInt16())
        psk = try r.readLengthPrefixedBytes(1)
        ticket = try r.readLengthPrefixedBytes(2)
        lifetime = try r.readUInt32()
        ageAdd = try r.readUInt32()
        receivedAt = try r.readUInt64()
        maxEarlyDataSize = try r.readUInt32()
        let a = try r.readLengthPrefixedBytes(1)
        alpn = a.isEmpty ? nil : String(decoding: a, as: UTF8.self)
        let s = try r.readLengthPrefixedBytes(2)
        serverName = s.isEmpty ? nil : String(decoding: s, as: UTF8.self)
        try r.expectEnd("ticket")
    }

    public var description: String { "SessionTicket(\(version), \(suite), lifetime \(lifetime)s, 0-RTT \(maxEarlyDataSize))" }
}

/// The keys sealing stateless session tickets, rotating on a fixed schedule.
///
/// Keys derive from one secret and the epoch number (`now / rotationInterval`), so several
/// processes given the same secret (prefork workers, a fleet) seal and open each other's
/// tickets without coordination, and rotation needs no timer. Tickets sealed in the current
/// or the previous ``acceptedEpochs`` − 1 epochs are accepted. Tickets are AES-256-GCM sealed:
/// `epoch (4) ‖ nonce (12) ‖ ciphertext ‖ tag`.
public struct SessionTicketKeys: Sendable {
    private let secret: [UInt8]
    /// Seconds between key changes.
    public let rotationInterval: UInt64
    /// How many epochs (current included) may open a ticket.
    public let acceptedEpochs: UInt64

    /// Creates ticket keys from a shared `secret` (32 random bytes by default).
    public init(secret: [UInt8] = RandomSource.system.bytes(32), rotationInterval: UInt64 = 3600, acceptedEpochs: UInt64 = 3) {
        precondition(secret.count >= 16, "ticket secret must have at least 16 bytes")
        precondition(rotationInterval > 0 && acceptedEpochs > 0, "rotation interval and accepted epochs must be positive")
        self.secret = secret
        self.rotationInterval = rotationInterval
        self.acceptedEpochs = acceptedEpochs
    }

    private func key(epoch: UInt32) -> SymmetricKey {
        var info = Array("quiver ticket key".utf8)
        info += [UInt8(epoch >> 24), UInt8(truncatingIfNeeded: epoch >> 16), UInt8(truncatingIfNeeded: epoch >> 8), UInt8(truncatingIfNeeded: epoch)]
        return SymmetricKey(data: TLSHash.sha256.expand(prk: TLSHash.sha256.extract(salt: [], ikm: secret), info: info, length: 32))
    }

    private func epoch(at ms: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: ms / 1000 / rotationInterval) }

    func seal(_ plaintext: [UInt8], at ms: UInt64, random: RandomSource) -> [UInt8] {
        let e = epoch(at: ms)
        let header: [UInt8] = [UInt8(e >> 24), UInt8(truncatingIfNeeded: e >> 16), UInt8(truncatingIfNeeded: e >> 8), UInt8(truncatingIfNeeded: e)]
        let nonce = random.bytes(12)
        guard let n = try? AES.GCM.Nonce(data: nonce),
              let box = try? AES.GCM.seal(plaintext, using: key(epoch: e), nonce: n, authenticating: header)
        else { return [] }
        return header + nonce + Array(box.ciphertext) + Array(box.tag)
    }

    func open(_ ticket: [UInt8], at ms: UInt64) -> [UInt8]? {
        guard ticket.count >= 4 + 12 + 16 else { return nil }
        let e = UInt32(ticket[0]) << 24 | UInt32(ticket[1]) << 16 | UInt32(ticket[2]) << 8 | UInt32(ticket[3])
        let now = epoch(at: ms)
        guard e <= now, UInt64(now - e) < acceptedEpochs else { return nil }
        guard let n = try? AES.GCM.Nonce(data: ticket[4..<16]),
              let box = try? AES.GCM.SealedBox(nonce: n, ciphertext: ticket[16..<(ticket.count - 16)], tag: ticket[(ticket.count - 16)...]),
              let plain = try? AES.GCM.open(box, using: key(epoch: e), authenticating: ticket[0..<4])
        else { return nil }
        return Array(plain)
    }
}

/// The server's guard against 0-RTT replay (RFC 8446 §8).
///
/// Two checks, both bounded: the client's ticket age must match the real age within
/// ``window`` (§8.3 freshness), and each ticket may carry early data once (§8.1 single-use),
/// remembered until the ticket expires. When ``capacity`` tickets are remembered and none has
/// expired, further 0-RTT is refused (the handshake falls back to 1-RTT), so memory stays
/// bounded under a flood. Share one instance between the connections of a server.
public final class AntiReplay: Sendable {
    /// Allowed difference between the client's and our view of the ticket's age, in ms.
    public let window: UInt64
    /// The most tickets remembered at once.
    public let capacity: Int
    private let seen = Mutex<[[UInt8]: UInt64]>([:])

    /// Creates a replay guard.
    public init(window milliseconds: UInt64 = 10_000, capacity: Int = 100_000) {
        window = milliseconds
        self.capacity = capacity
    }

    /// Records `id` (a ticket's unique id) as used for 0-RTT; `false` if already used, stale or full.
    func admit(id: [UInt8], expectedAge: UInt64, reportedAge: UInt64, expiresAt: UInt64, now: UInt64) -> Bool {
        let skew = expectedAge > reportedAge ? expectedAge - reportedAge : reportedAge - expectedAge
        guard skew <= window else { return false }
        return seen.withLock { seen in
            if seen[id] != nil { return false }
            if seen.count >= capacity {
                seen = seen.filter { $0.value > now }
                if seen.count >= capacity { return false }
            }
            seen[id] = expiresAt
            return true
        }
    }
}

public import QuiverCore
#if canImport(Glibc)
import Glibc
#endif
import QuiverTLS
import Synchronization

/// Why a QUIC-LB configuration was refused.
public struct QUICLBConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String
}

/// A QUIC-LB configuration (draft-ietf-quic-load-balancers-21 §5.3): what a load balancer
/// and the servers behind it agree on so that the balancer can route a packet by the server
/// ID its Destination Connection ID carries, without per-connection state.
///
/// A connection ID is the first octet — the config rotation bits (§3.1) and either the
/// length of the rest (§3.3) or random bits — then the server ID and a nonce, encrypted with
/// AES-128 when there is a key (§5.4): in one pass when they fill exactly 16 octets, else by
/// a four-round Feistel network.
public struct QUICLBConfiguration: Sendable, Hashable {
    /// The config rotation codepoint, 0–6 (0b111 marks unroutable IDs, §3.2).
    public let configID: UInt8
    /// Octets of server ID (at least 1).
    public let serverIDLength: Int
    /// Octets of nonce (at least 4; with the server ID at most 19, QUIC v1's 20-octet limit).
    public let nonceLength: Int
    /// The 16-octet AES-128 key, or `nil` for plaintext server IDs (which any observer can
    /// read: connections of one server become linkable across migrations).
    public let key: [UInt8]?
    /// Whether the first octet's low 5 bits give the length of the rest (§3.3); else they are
    /// random.
    public let encodesLength: Bool

    /// - Throws: ``QUICLBConfigurationError`` for lengths or a key the draft does not allow.
    public init(configID: UInt8, serverIDLength: Int, nonceLength: Int, key: [UInt8]? = nil, encodesLength: Bool = true)
    throws(QUICLBConfigurationError) {
        guard configID < 7 else { throw QUICLBConfigurationError(description: "QUIC-LB config IDs are 0 to 6 (0b111 marks unroutable connection IDs)") }
        guard serverIDLength >= 1 else { throw QUICLBConfigurationError(description: "a QUIC-LB server ID has at least 1 octet") }
        guard nonceLength >= 4 else { throw QUICLBConfigurationError(description: "a QUIC-LB nonce has at least 4 octets") }
        guard serverIDLength + nonceLength <= 19 else {
            throw QUICLBConfigurationError(description: "QUIC-LB server ID and nonce lengths sum to at most 19 octets (\(serverIDLength) + \(nonceLength))")
        }
        if let key, key.count != 16 { throw QUICLBConfigurationError(description: "a QUIC-LB key has 16 octets, not \(key.count)") }
        self.configID = configID
        self.serverIDLength = serverIDLength
        self.nonceLength = nonceLength
        self.key = key
        self.encodesLength = encodesLength
    }

    /// The length of the connection IDs: the first octet, the server ID and the nonce.
    public var connectionIDLength: Int { 1 + serverIDLength + nonceLength }

    /// The config rotation codepoint of unroutable connection IDs (§3.2).
    public static let unroutableConfigID: UInt8 = 0b111
}

/// Makes and reads the connection IDs of one ``QUICLBConfiguration``: a server's generator
/// (``generator(serverID:random:)``) and a load balancer's decoder (``serverID(in:)``).
public struct QUICLBConnectionIDs: Sendable {
    public let configuration: QUICLBConfiguration
    private let encrypting: AESBlockKey?
    /// The single-pass case's inverse cipher (the Feistel network only ever encrypts).
    private let decrypting: AESBlockKey?

    public init(_ configuration: QUICLBConfiguration) {
        self.configuration = configuration
        encrypting = configuration.key.map { AESBlockKey($0) }
        decrypting = configuration.key.flatMap { configuration.serverIDLength + configuration.nonceLength == 16 ? AESBlockKey($0, decrypting: true) : nil }
    }

    private var plaintextLength: Int { configuration.serverIDLength + configuration.nonceLength }

    /// The connection ID for `serverID` and `nonce`; `randomBits` fill the first octet's low
    /// bits when the configuration does not encode the length.
    /// - Precondition: `serverID` and `nonce` have the configured lengths.
    public func connectionID(serverID: [UInt8], nonce: [UInt8], randomBits: UInt8 = 0) -> ConnectionID {
        precondition(serverID.count == configuration.serverIDLength && nonce.count == configuration.nonceLength,
                     "a QUIC-LB server ID of \(configuration.serverIDLength) and a nonce of \(configuration.nonceLength) octets")
        let first = configuration.configID << 5 | (configuration.encodesLength ? UInt8(plaintextLength) : randomBits & 0x1f)
        return ConnectionID(unchecked: [first] + encrypt(serverID + nonce))
    }

    /// The server ID in `id`, or `nil` when `id` is not one of this configuration's: another
    /// config rotation codepoint, or too short (§4.1's unroutable IDs). Octets after the
    /// configured length (a server's own additions, §5.4) are ignored.
    public func serverID(in id: some Collection<UInt8>) -> [UInt8]? {
        decode(id).map(\.serverID)
    }

    /// The server ID and nonce in `id` (see ``serverID(in:)``).
    public func decode(_ id: some Collection<UInt8>) -> (serverID: [UInt8], nonce: [UInt8])? {
        guard let first = id.first, first >> 5 == configuration.configID, id.count >= configuration.connectionIDLength else { return nil }
        let plaintext = decrypt(Array(id.dropFirst().prefix(plaintextLength)))
        return (Array(plaintext.prefix(configuration.serverIDLength)), Array(plaintext.suffix(configuration.nonceLength)))
    }

    /// A generator for ``QUICConfiguration/connectionIDGenerator``: IDs with `serverID`. With a
    /// key the nonce is a counter from a random start (§9.6: never reused under one key, and
    /// nothing linkable shows through the encryption); once it comes round to its start the
    /// generator makes unroutable IDs (config 0b111, §3.2) rather than repeat one. Without a key
    /// the nonce is random, so plaintext IDs are not linkable by their nonces.
    /// - Precondition: `serverID` has the configured length.
    public func generator(serverID: [UInt8], random: RandomSource = .system) -> @Sendable () -> ConnectionID {
        precondition(serverID.count == configuration.serverIDLength, "a QUIC-LB server ID of \(configuration.serverIDLength) octets")
        let nonceLength = configuration.nonceLength
        let counter = configuration.key == nil ? nil : NonceCounter(start: random.bytes(nonceLength)) { random.bytes(nonceLength) }
        let length = configuration.connectionIDLength
        return { [self] in
            let randomBits = random.bytes(1)[0]
            guard let counter else { return connectionID(serverID: serverID, nonce: random.bytes(configuration.nonceLength), randomBits: randomBits) }
            guard let nonce = counter.next() else {
                // Exhausted: unroutable, length-encoded, random (§3.2).
                return ConnectionID(unchecked: [QUICLBConfiguration.unroutableConfigID << 5 | UInt8(length - 1)] + random.bytes(length - 1))
            }
            return connectionID(serverID: serverID, nonce: nonce, randomBits: randomBits)
        }
    }

    // MARK: - The ciphers (§5.4)

    private func encrypt(_ plaintext: [UInt8]) -> [UInt8] {
        guard let encrypting else { return plaintext }
        if plaintext.count == 16 { return encrypting.apply(plaintext) }
        var (left, right) = split(plaintext)
        right = feistel(pass: 1, from: left, into: right, isRight: true)
        left = feistel(pass: 2, from: right, into: left, isRight: false)
        right = feistel(pass: 3, from: left, into: right, isRight: true)
        left = feistel(pass: 4, from: right, into: left, isRight: false)
        return join(left, right)
    }

    private func decrypt(_ ciphertext: [UInt8]) -> [UInt8] {
        guard encrypting != nil else { return ciphertext }
        if ciphertext.count == 16, let decrypting { return decrypting.apply(ciphertext) }
        var (left, right) = split(ciphertext)
        left = feistel(pass: 4, from: right, into: left, isRight: false)
        right = feistel(pass: 3, from: left, into: right, isRight: true)
        left = feistel(pass: 2, from: right, into: left, isRight: false)
        right = feistel(pass: 1, from: left, into: right, isRight: true)
        return join(left, right)
    }

    /// One round: `into` XOR the first half of AES(expand(length, pass, from)), with the
    /// shared nibble cleared for an odd length (§5.4.2.3 steps 3–11).
    private func feistel(pass: UInt8, from: [UInt8], into: [UInt8], isRight: Bool) -> [UInt8] {
        // expand(): the half, zero padding, the plaintext length, the pass (§5.4.2.2).
        var block = from + [UInt8](repeating: 0, count: 14 - from.count)
        block += [UInt8(plaintextLength), pass]
        let mask = encrypting!.apply(block)
        var result = into
        for index in result.indices { result[index] ^= mask[index] }
        if plaintextLength % 2 == 1 {
            if isRight { result[0] &= 0x0f } else { result[result.count - 1] &= 0xf0 }
        }
        return result
    }

    /// The two halves of half the length rounded up; for an odd length they share the middle
    /// octet, the left keeping its high nibble and the right its low one (§5.4.2.3 step 2).
    private func split(_ bytes: [UInt8]) -> (left: [UInt8], right: [UInt8]) {
        let half = (bytes.count + 1) / 2
        var left = Array(bytes.prefix(half)), right = Array(bytes.suffix(half))
        if bytes.count % 2 == 1 {
            left[half - 1] &= 0xf0
            right[0] &= 0x0f
        }
        return (left, right)
    }

    /// The inverse of ``split(_:)`` (step 12).
    private func join(_ left: [UInt8], _ right: [UInt8]) -> [UInt8] {
        guard plaintextLength % 2 == 1 else { return left + right }
        return left.dropLast() + [left[left.count - 1] | right[0]] + right.dropFirst()
    }
}

/// A big-endian counter over a nonce's octets, from a random start, that ends when it comes
/// round to that start. A forked process starts over from a new random start: continuing its
/// parent's sequence would issue the parent's next IDs again (a fork hand-off's child shares
/// its parent's configuration). The lock is free whenever a process forks: a listener forks
/// with its one loop parked, and only that loop makes its connection IDs.
final class NonceCounter: Sendable {
    private let state: Mutex<(next: [UInt8], start: [UInt8], exhausted: Bool, process: Int32)>
    private let newStart: @Sendable () -> [UInt8]

    init(start: [UInt8], newStart: @escaping @Sendable () -> [UInt8]) {
        state = Mutex((start, start, false, getpid()))
        self.newStart = newStart
    }

    func next() -> [UInt8]? {
        state.withLock { state in
            if state.process != getpid() {
                let start = newStart()
                state = (start, start, false, getpid())
            }
            guard !state.exhausted else { return nil }
            let nonce = state.next
            var index = state.next.count - 1
            while index >= 0 {
                state.next[index] &+= 1
                if state.next[index] != 0 { break }
                index -= 1
            }
            if state.next == state.start { state.exhausted = true }
            return nonce
        }
    }
}

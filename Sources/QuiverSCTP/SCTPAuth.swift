internal import Crypto
import QuiverCore

/// SCTP-AUTH (RFC 4895) settings: which chunks the peer must authenticate for us, and the HMACs
/// we ask for. RFC 6083 (DTLS over SCTP) requires it, with keys from the DTLS exporter.
public struct SCTPAuthentication: Sendable, Hashable {
    /// Chunk types we accept only after an AUTH chunk (the CHUNKS parameter). INIT, INIT ACK,
    /// SHUTDOWN COMPLETE and AUTH cannot be listed (§3.2), and COOKIE ECHO is not supported
    /// here yet (the endpoint would have to check the AUTH before it creates the association,
    /// §6.3): they are left out.
    public var chunks: [UInt8]
    /// HMAC identifiers in our order of preference (the HMAC-ALGO parameter): SHA-256 (3) and
    /// SHA-1 (1), which §6.1 requires in the list.
    public var hmacs: [UInt16] = [SCTPAuthentication.sha256, SCTPAuthentication.sha1]

    public static let sha1: UInt16 = 1
    public static let sha256: UInt16 = 3

    public init(chunks: [UInt8]) {
        self.chunks = chunks.filter { ![SCTPChunkType.initiation, SCTPChunkType.initiationAck,
                                        SCTPChunkType.shutdownComplete, SCTPChunkType.auth, SCTPChunkType.cookieEcho].contains($0) }
    }

    static func hmacLength(_ id: UInt16) -> Int? {
        switch id {
        case sha1: 20
        case sha256: 32
        default: nil
        }
    }
}

/// One side's RANDOM, CHUNKS and HMAC-ALGO parameters, as sent (RFC 4895 §6.1's key vector is
/// their concatenation without padding).
struct SCTPAuthParameters: Hashable, Sendable {
    var random: [UInt8]
    var chunks: [UInt8]
    var hmacs: [UInt16]

    var parameters: [SCTPParameter] {
        var list = [SCTPParameter(type: SCTPParameter.random, value: random)]
        if !chunks.isEmpty { list.append(SCTPParameter(type: SCTPParameter.chunkList, value: chunks)) }
        list.append(SCTPParameter(type: SCTPParameter.hmacAlgorithms, value: hmacs.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }))
        return list
    }

    /// The key vector: the parameters with their headers, without padding, in the order sent.
    var keyVector: [UInt8] { parameters.flatMap(\.encoded) }

    /// The peer's parameters from an INIT or INIT ACK; `nil` when it does not offer AUTH (no
    /// RANDOM or no HMAC-ALGO). A RANDOM that is not 32 bytes is a protocol violation (§6.1).
    static func from(_ parameters: [SCTPParameter]) throws(SCTPCloseReason) -> SCTPAuthParameters? {
        guard let random = parameters.first(where: { $0.type == SCTPParameter.random }),
              let hmacs = parameters.first(where: { $0.type == SCTPParameter.hmacAlgorithms }) else { return nil }
        guard random.value.count == 32 else {
            throw .aborted(SCTPErrorCause(code: SCTPErrorCause.protocolViolation, info: Array("a RANDOM of \(random.value.count) bytes".utf8)))
        }
        let list = stride(from: 0, to: hmacs.value.count - 1, by: 2).map { UInt16(hmacs.value[$0]) << 8 | UInt16(hmacs.value[$0 + 1]) }
        let chunks = parameters.first(where: { $0.type == SCTPParameter.chunkList })?.value ?? []
        return SCTPAuthParameters(random: random.value, chunks: chunks, hmacs: list)
    }

    /// The encoded form kept in a cookie: the key vector, parsed back by ``decode(_:)``.
    static func decode(_ bytes: [UInt8]) -> SCTPAuthParameters? {
        var reader = ByteReader(bytes)
        var parameters: [SCTPParameter] = []
        while !reader.isAtEnd {
            guard let type = try? reader.readUInt16(), let length = try? reader.readUInt16(), length >= 4,
                  let value = try? reader.readBytes(Int(length) - 4) else { return nil }
            parameters.append(SCTPParameter(type: type, value: value))
        }
        return (try? from(parameters)) ?? nil
    }
}

/// An association's AUTH state once both sides offered it (RFC 4895 §6): the association shared
/// keys, the HMAC to send with, what must arrive authenticated.
struct SCTPAuthState {
    let local: SCTPAuthParameters
    let peer: SCTPAuthParameters
    /// The first HMAC the peer asked for that we have (§6.1).
    let sendHMAC: UInt16
    /// Endpoint pair shared keys by identifier; key 0 is the empty one until replaced.
    private(set) var sharedKeys: [UInt16: [UInt8]] = [0: []]
    private(set) var activeKey: UInt16 = 0
    /// The association keys by shared key identifier, ready for each HMAC: a key longer than
    /// the hash's 64-byte block is its hash in HMAC (RFC 2104 §2), and these keys always are
    /// (two key vectors of over 40 bytes each), so it is hashed once here, not per packet.
    private var associationKeys: [UInt16: (sha1: SymmetricKey, sha256: SymmetricKey)] = [:]

    init?(local: SCTPAuthParameters, peer: SCTPAuthParameters) {
        guard let hmac = peer.hmacs.first(where: { SCTPAuthentication.hmacLength($0) != nil }) else { return nil }
        self.local = local
        self.peer = peer
        sendHMAC = hmac
        associationKeys[0] = Self.hmacKeys(Self.associationKey(shared: [], local.keyVector, peer.keyVector))
    }

    /// The HMAC keys for `key` (RFC 2104 §2: hashed first when longer than 64 bytes).
    static func hmacKeys(_ key: SymmetricKey) -> (sha1: SymmetricKey, sha256: SymmetricKey) {
        let bytes = key.withUnsafeBytes { Array($0) }
        guard bytes.count > 64 else { return (key, key) }
        return (SymmetricKey(data: Array(Insecure.SHA1.hash(data: bytes))), SymmetricKey(data: Array(SHA256.hash(data: bytes))))
    }

    /// §6.1: the endpoint pair key, then the numerically smaller key vector, then the larger
    /// (the shorter first when they are equal as numbers).
    static func associationKey(shared: [UInt8], _ a: [UInt8], _ b: [UInt8]) -> SymmetricKey {
        func number(_ bytes: [UInt8]) -> ArraySlice<UInt8> { bytes.drop { $0 == 0 } }
        let (na, nb) = (number(a), number(b))
        let aFirst = na.count != nb.count ? na.count < nb.count
            : !na.elementsEqual(nb) ? na.lexicographicallyPrecedes(nb) : a.count <= b.count
        return SymmetricKey(data: shared + (aFirst ? a + b : b + a))
    }

    mutating func setSharedKey(_ key: [UInt8], id: UInt16) {
        sharedKeys[id] = key
        associationKeys[id] = Self.hmacKeys(Self.associationKey(shared: key, local.keyVector, peer.keyVector))
    }

    mutating func useKey(_ id: UInt16) -> Bool {
        guard sharedKeys[id] != nil else { return false }
        activeKey = id
        return true
    }

    /// Whether the peer wants chunks of `type` authenticated.
    func peerRequires(_ type: UInt8) -> Bool { peer.chunks.contains(type) }
    /// Whether we accept chunks of `type` only authenticated.
    func weRequire(_ type: UInt8) -> Bool { local.chunks.contains(type) }

    static func mac(_ id: UInt16, keys: (sha1: SymmetricKey, sha256: SymmetricKey), _ data: ArraySlice<UInt8>) -> [UInt8] {
        id == SCTPAuthentication.sha1 ? Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: keys.sha1))
            : Array(HMAC<SHA256>.authenticationCode(for: data, using: keys.sha256))
    }

    /// Writes an AUTH chunk at `offset` of `packet` (its header and a zero HMAC already
    /// there, the chunks it covers after it) and fills in the HMAC (§6.2).
    func seal(_ packet: inout [UInt8], authAt offset: Int) {
        let length = SCTPAuthentication.hmacLength(sendHMAC)!
        let code = Self.mac(sendHMAC, keys: associationKeys[activeKey]!, packet[offset...])
        packet.replaceSubrange(offset + 8..<offset + 8 + length, with: code)
    }

    /// The AUTH chunk `offset` of the packet: whether the HMAC over it (HMAC zeroed) and the
    /// chunks after it is right (§6.3). An HMAC we did not ask for is `.unsupported`.
    enum Check { case valid, invalid, unsupported(UInt16) }

    func check(_ packet: [UInt8], authAt offset: Int, keyID: UInt16, hmacID: UInt16, hmac: [UInt8]) -> Check {
        guard local.hmacs.contains(hmacID), let length = SCTPAuthentication.hmacLength(hmacID) else { return .unsupported(hmacID) }
        guard hmac.count == length, let keys = associationKeys[keyID], offset + 8 + length <= packet.count else { return .invalid }
        var copy = Array(packet[offset...])
        for index in 8..<8 + length { copy[index] = 0 }
        let expected = Self.mac(hmacID, keys: keys, copy[...])
        // Constant-time comparison.
        return zip(expected, hmac).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0 ? .valid : .invalid
    }
}

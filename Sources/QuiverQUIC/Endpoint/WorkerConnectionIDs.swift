public import QuiverCore

/// Connection IDs that carry a worker id, so that whatever routes datagrams — a
/// SO_REUSEPORT BPF program in front of prefork workers, a QUIC-LB load balancer — can send a
/// connection's packets to the worker that owns it without shared state.
///
/// The layout is a plaintext QUIC-LB configuration (``quicLB``, draft-ietf-quic-load-balancers
/// §5): byte 0 holds config rotation codepoint 0 in its top 3 bits and random low bits; bytes
/// 1–2 hold the worker id (the server ID), big-endian; the rest is a random nonce. A
/// short-header packet's DCID starts at datagram offset 1, so the id sits at offsets 2–3 of
/// every 1-RTT datagram.
public struct WorkerConnectionIDs: Sendable, Hashable {
    /// This worker's id.
    public let workerID: UInt16
    /// The length of the IDs (7 to 20: QUIC-LB's nonce has at least 4 octets).
    public let length: Int

    /// - Precondition: `7 <= length <= 20`.
    public init(workerID: UInt16, length: Int = 8) {
        precondition((7...ConnectionID.maxLength).contains(length), "worker connection IDs need 7 to 20 bytes")
        self.workerID = workerID
        self.length = length
    }

    /// The offset of the worker id in a short-header datagram (after the first byte).
    public static let datagramOffset = 2

    /// This layout as a QUIC-LB configuration: config 0, the worker id as a 2-octet server ID,
    /// no key, random (not length) bits in the first octet.
    public var quicLB: QUICLBConfiguration {
        // Valid by the initializer's precondition.
        try! QUICLBConfiguration(configID: 0, serverIDLength: 2, nonceLength: length - 3, encodesLength: false)
    }

    /// A generator for ``QUICConfiguration/connectionIDGenerator``.
    public func generator(random: RandomSource = .system) -> @Sendable () -> ConnectionID {
        QUICLBConnectionIDs(quicLB).generator(serverID: [UInt8(workerID >> 8), UInt8(workerID & 0xff)], random: random)
    }

    /// The worker id in a connection ID made by a generator of this layout, if it is long enough.
    public static func workerID(in id: [UInt8]) -> UInt16? {
        guard id.count >= 4 else { return nil }
        return UInt16(id[1]) << 8 | UInt16(id[2])
    }
}

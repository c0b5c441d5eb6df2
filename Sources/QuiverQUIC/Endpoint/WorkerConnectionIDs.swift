public import QuiverCore

/// Connection IDs that carry a worker id, so that whatever routes datagrams — a
/// SO_REUSEPORT BPF program in front of prefork workers, a QUIC-LB style load balancer — can
/// send a connection's packets to the worker that owns it without shared state.
///
/// Layout: byte 0 is random except its top bit, which is 0 (room for QUIC-LB's config
/// rotation bits later); bytes 1–2 hold the worker id, big-endian; the rest is random. A
/// short-header packet's DCID starts at datagram offset 1, so the id sits at offsets 2–3 of
/// every 1-RTT datagram.
public struct WorkerConnectionIDs: Sendable, Hashable {
    /// This worker's id.
    public let workerID: UInt16
    /// The length of the IDs (4 to 20).
    public let length: Int

    /// - Precondition: `4 <= length <= 20`.
    public init(workerID: UInt16, length: Int = 8) {
        precondition((4...ConnectionID.maxLength).contains(length), "worker connection IDs need 4 to 20 bytes")
        self.workerID = workerID
        self.length = length
    }

    /// The offset of the worker id in a short-header datagram (after the first byte).
    public static let datagramOffset = 2

    /// A generator for ``QUICConfiguration/connectionIDGenerator``.
    public func generator(random: RandomSource = .system) -> @Sendable () -> ConnectionID {
        let workerID = self.workerID
        let length = self.length
        return {
            var bytes = random.bytes(length)
            bytes[0] &= 0x7f
            bytes[1] = UInt8(workerID >> 8)
            bytes[2] = UInt8(workerID & 0xff)
            return ConnectionID(unchecked: bytes)
        }
    }

    /// The worker id in a connection ID made by a generator of this layout, if it is long enough.
    public static func workerID(in id: [UInt8]) -> UInt16? {
        guard id.count >= 4 else { return nil }
        return UInt16(id[1]) << 8 | UInt16(id[2])
    }
}

import QuiverCore

extension QUICConnection {
    /// A PATH_RESPONSE owed: the challenge's data, the path it came on, and what we may send
    /// there before the address is validated.
    struct PathResponse {
        var data: [UInt8]
        var to: SocketAddress
        var from: SocketAddress?
        var budget: Int
    }

    /// A network path (RFC 9000 §9): the peer's address, ours (a server's, as its listener
    /// reported it; `nil` for a client, or when not told), and the path's validation state.
    struct Path {
        var remote: SocketAddress
        var local: SocketAddress? = nil
        var isValidated: Bool
        var bytesReceived = 0
        var bytesSent = 0
        /// PATH_CHALLENGE data awaiting a response.
        var challenge: [UInt8]?
        var challengePending = false
        var challengeDeadline: Instant?

        /// Path MTU discovery (RFC 8899 §5.3; the search is ``nextMTUProbe(ceiling:)``): the
        /// largest datagram size proved on this path, the size of the probe in flight, the lost
        /// probes of that size so far, and the smallest size found not to pass.
        var mtu = 1200
        var mtuProbe: Int?
        var mtuProbeLosses = 0
        var mtuFailed: Int?

        /// Bytes we may still send before the address is validated (RFC 9000 §8.1: three
        /// times what we received).
        var amplificationBudget: Int { isValidated ? Int.max : max(0, 3 * bytesReceived - bytesSent) }

        /// The sizes probed first, in ascending order: the UDP payload of a 1500-byte Ethernet
        /// MTU and of a 9000-byte jumbo frame, each after an IPv6 header (so also under IPv4).
        /// RFC 8899 §5.3.2 leaves the probe sizes to the implementation; common sizes first
        /// means a 1500-byte path settles with one probe, and a larger one climbs in few.
        static let commonMTUs = [1452, 8952]

        /// The size to probe next below `ceiling`, or `nil` when the search is over.
        ///
        /// The common sizes (``commonMTUs``) and then `ceiling` itself, ascending, each only
        /// while every size so far passed: once one fails above the first common size, the
        /// path keeps the larger size it proved (a path wider than Ethernet's but narrower
        /// than a jumbo frame is rare, and not worth the lost probes of a search). When the
        /// first common size fails, the path is narrower than Ethernet's (a tunnel, PPPoE):
        /// binary search between the proved and the failed size until they are within 32 bytes.
        func nextMTUProbe(ceiling: Int) -> Int? {
            guard mtu < ceiling else { return nil }
            let upper = min(mtuFailed ?? .max, ceiling + 1)
            var next = ceiling
            for size in Self.commonMTUs where size > mtu && size < ceiling {
                next = size
                break
            }
            if next < upper { return next }
            guard mtu < Self.commonMTUs[0] else { return nil }
            return upper - mtu > 32 ? (mtu + upper) / 2 : nil
        }

        /// A probe of `size` was acknowledged: the path carries it — if it is the probe in
        /// flight on this path. A probe sent on the path before a migration, or one declared
        /// lost and acknowledged late, proves nothing here: the first could raise a new,
        /// narrower path to a jumbo size, and the search sends the second size again.
        mutating func mtuProbeAcknowledged(_ size: Int) {
            guard mtuProbe == size else { return }
            mtu = max(mtu, size)
            mtuProbe = nil
            mtuProbeLosses = 0
        }

        /// A probe of `size` was lost; three losses of one size fail it (MAX_PROBES, RFC 8899 §5.1.2).
        mutating func mtuProbeLost(_ size: Int) {
            guard mtuProbe == size else { return }
            mtuProbe = nil
            mtuProbeLosses += 1
            if mtuProbeLosses >= 3 {
                mtuFailed = min(mtuFailed ?? .max, size)
                mtuProbeLosses = 0
            }
        }
    }

    /// The connection's paths (RFC 9000 §8.2, §9): the one it uses, and the others it
    /// checks or may return to. A path's own state — validation, amplification budget, path
    /// MTU discovery — is in ``Path``.
    struct Paths {
        /// The path the connection sends on.
        var current: Path
        /// The last validated path, to return to if validating a new one fails (RFC 9000
        /// §9.3.2). A client moving to the server's preferred address keeps the original one
        /// here until the server answers from the new one.
        @OutOfLine var previous: Path?
        /// Server: the path to the client from another of our addresses — the preferred address
        /// the client moved to — which we check with PATH_CHALLENGE before sending non-probing
        /// packets from it (RFC 9000 §9.6.2); meanwhile ``current`` stays the original one.
        @OutOfLine var probe: Path?
        /// PATH_RESPONSE data owed, each with the path its challenge came on (the response goes
        /// back on it, RFC 9000 §8.2.2), and what we may send there before it is validated.
        var pendingResponses: [PathResponse] = []
        /// Client: the server's address before we moved to its preferred address. Its packets
        /// from there are still taken — all of them until the server answered at the new one
        /// (it sends from there until then, RFC 9000 §9.6.2), late ones afterwards.
        @OutOfLine var originalServerAddress: SocketAddress?
        /// Server: we moved to another local address (the preferred one): packets that still
        /// come to the original address are processed but never move the path back (§9.6.2).
        var movedLocalAddress = false

        init(current: Path) { self.current = current }
    }

    /// 0-RTT (RFC 9001 §4.6): its packet keys, and what a client keeps while the server may
    /// still refuse its early data.
    struct EarlyData {
        /// Client: the key of the 0-RTT packets we send, until the handshake completes.
        @OutOfLine var write: PacketKey?
        /// Server: the key of the client's 0-RTT packets, kept a while after 1-RTT starts
        /// (until ``readExpiry``) for reordered ones.
        @OutOfLine var read: PacketKey?
        /// Server: when ``read`` is dropped, three PTOs after the first 1-RTT packet.
        var readExpiry: Instant?
        /// Client: the server refused our 0-RTT data.
        var rejected = false
        /// Client: streams written in refused 0-RTT, to open and write again under the server's
        /// new limits (RFC 9001 §4.6.2 resets all stream state).
        var streamReplay: [(id: StreamID, bytes: [UInt8], fin: Bool)] = []
        /// Client: the server's validated parameters, applied once 0-RTT is over (RFC 9000
        /// §7.4.1: 0-RTT keeps the remembered limits).
        @OutOfLine var deferredPeerParameters: TransportParameters?
    }

    /// The closing and draining periods (RFC 9000 §10.2).
    struct Closing {
        /// The CONNECTION_CLOSE we send, and repeat to a peer that keeps sending.
        var frame: ConnectionClose?
        /// When the closing or draining period ends (three PTOs).
        var deadline: Instant?
        /// Datagrams with the CONNECTION_CLOSE still to send.
        var sendsPending = 0
        /// Datagrams received while closing: the close is repeated at each power of two.
        var receivedDatagrams = 0
    }
}

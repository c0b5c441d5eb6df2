public import QuiverCore

/// QUIC transport parameters (RFC 9000 §7.4, §18), carried in the TLS
/// `quic_transport_parameters` extension, plus the extension parameters Quiver understands:
/// `max_datagram_frame_size` (RFC 9221 §3), `version_information` (RFC 9368 §3) and
/// `grease_quic_bit` (RFC 9287 §3).
///
/// A fresh value holds the defaults of §18.2: absent parameters mean 0, except
/// `max_udp_payload_size` (65527), `ack_delay_exponent` (3), `max_ack_delay` (25 ms) and
/// `active_connection_id_limit` (2). ``encode(includeGrease:)`` omits every parameter equal to
/// its default, so the defaults round-trip to nothing. Connection IDs are optional because the
/// presence of `initial_source_connection_id` matters even when the ID is empty (§7.3).
///
/// ```swift
/// var local = TransportParameters()
/// local.initialMaxData = 1 << 20
/// local.initialSourceConnectionID = sourceCID
/// let bytes = local.encode()
/// let peer = try TransportParameters(decoding: peerBytes, sentBy: .server)
/// ```
public struct TransportParameters: Hashable, Sendable {
    /// The server's preferred address (RFC 9000 §9.6, §18.2 Figure 22). An all-zero address and
    /// port means the server offers no address of that family.
    public struct PreferredAddress: Hashable, Sendable {
        /// The IPv4 address, 4 bytes in network order.
        public var ipv4Address: [UInt8]
        /// The IPv4 port.
        public var ipv4Port: UInt16
        /// The IPv6 address, 16 bytes in network order.
        public var ipv6Address: [UInt8]
        /// The IPv6 port.
        public var ipv6Port: UInt16
        /// The connection ID with sequence number 1 to use at that address; never empty.
        public var connectionID: ConnectionID
        /// The stateless reset token for `connectionID`, 16 bytes.
        public var statelessResetToken: [UInt8]

        /// Creates a preferred address.
        public init(ipv4Address: [UInt8] = [0, 0, 0, 0], ipv4Port: UInt16 = 0,
                    ipv6Address: [UInt8] = [UInt8](repeating: 0, count: 16), ipv6Port: UInt16 = 0,
                    connectionID: ConnectionID, statelessResetToken: [UInt8]) {
            self.ipv4Address = ipv4Address
            self.ipv4Port = ipv4Port
            self.ipv6Address = ipv6Address
            self.ipv6Port = ipv6Port
            self.connectionID = connectionID
            self.statelessResetToken = statelessResetToken
        }

        /// The offered address of `other`'s family (IPv4 or IPv6), or `nil` when the server
        /// offers none of that family (an all-zero address, or port 0).
        public func address(family other: SocketAddress) -> SocketAddress? {
            switch other {
            case .v4:
                guard ipv4Port != 0, ipv4Address.count == 4, ipv4Address.contains(where: { $0 != 0 }) else { return nil }
                return .v4(address: (ipv4Address[0], ipv4Address[1], ipv4Address[2], ipv4Address[3]), port: ipv4Port)
            case .v6:
                guard ipv6Port != 0, ipv6Address.count == 16, ipv6Address.contains(where: { $0 != 0 }) else { return nil }
                return .v6(address: ipv6Address, port: ipv6Port, scopeID: 0)
            }
        }
    }

    /// Version Information for compatible version negotiation (RFC 9368 §3).
    public struct VersionInformation: Hashable, Sendable {
        /// The version the sender uses for this connection; never 0.
        public var chosenVersion: UInt32
        /// From a client: the versions its first flight is compatible with, by preference, the
        /// chosen one included. From a server: its fully deployed versions; may be empty.
        public var availableVersions: [UInt32]

        /// Creates Version Information.
        public init(chosenVersion: UInt32, availableVersions: [UInt32]) {
            self.chosenVersion = chosenVersion
            self.availableVersions = availableVersions
        }
    }

    /// A reserved transport parameter (ID `31 * n + 27`, RFC 9000 §18.1) to send so that peers
    /// keep ignoring unknown parameters. Its content is meaningless.
    public struct GreaseParameter: Hashable, Sendable {
        /// The `n` of `31 * n + 27`.
        public var n: UInt64
        /// The value bytes.
        public var value: [UInt8]

        /// The parameter ID.
        public var id: UInt64 { TransportParameters.greaseParameterID(n) }

        /// Creates a reserved parameter with ID `31 * n + 27`.
        public init(n: UInt64, value: [UInt8]) {
            self.n = n
            self.value = value
        }

        /// Derives a reserved parameter from caller-supplied random bytes, so that the result
        /// is deterministic for tests: bytes 0–1 give `n` (0…65535), byte 2 the length (0…16)
        /// and the following bytes the value (shorter if `entropy` runs out).
        public init(entropy: [UInt8]) {
            let byte = { (i: Int) -> UInt64 in i < entropy.count ? UInt64(entropy[i]) : 0 }
            self.n = byte(0) << 8 | byte(1)
            let length = Int(byte(2) % 17)
            self.value = Array(entropy.dropFirst(3).prefix(length))
        }
    }

    /// original_destination_connection_id (0x00): the Destination Connection ID of the client's
    /// first Initial packet. Server only.
    public var originalDestinationConnectionID: ConnectionID?
    /// max_idle_timeout (0x01) in milliseconds; 0 disables the idle timeout.
    public var maxIdleTimeout: UInt64 = 0
    /// stateless_reset_token (0x02), 16 bytes. Server only.
    public var statelessResetToken: [UInt8]?
    /// max_udp_payload_size (0x03); at least 1200, default 65527.
    public var maxUDPPayloadSize: UInt64 = TransportParameters.defaultMaxUDPPayloadSize
    /// initial_max_data (0x04).
    public var initialMaxData: UInt64 = 0
    /// initial_max_stream_data_bidi_local (0x05): the limit on bidirectional streams the sender opens.
    public var initialMaxStreamDataBidiLocal: UInt64 = 0
    /// initial_max_stream_data_bidi_remote (0x06): the limit on bidirectional streams the receiver opens.
    public var initialMaxStreamDataBidiRemote: UInt64 = 0
    /// initial_max_stream_data_uni (0x07): the limit on unidirectional streams the receiver opens.
    public var initialMaxStreamDataUni: UInt64 = 0
    /// initial_max_streams_bidi (0x08); at most 2^60.
    public var initialMaxStreamsBidi: UInt64 = 0
    /// initial_max_streams_uni (0x09); at most 2^60.
    public var initialMaxStreamsUni: UInt64 = 0
    /// ack_delay_exponent (0x0a); at most 20, default 3.
    public var ackDelayExponent: UInt64 = TransportParameters.defaultAckDelayExponent
    /// max_ack_delay (0x0b) in milliseconds; below 2^14, default 25.
    public var maxAckDelay: UInt64 = TransportParameters.defaultMaxAckDelay
    /// disable_active_migration (0x0c).
    public var disableActiveMigration: Bool = false
    /// preferred_address (0x0d). Server only.
    public var preferredAddress: PreferredAddress?
    /// active_connection_id_limit (0x0e); at least 2, default 2.
    public var activeConnectionIDLimit: UInt64 = TransportParameters.defaultActiveConnectionIDLimit
    /// initial_source_connection_id (0x0f): the Source Connection ID of the sender's first
    /// Initial packet. Required from both endpoints (RFC 9000 §7.3), possibly empty.
    public var initialSourceConnectionID: ConnectionID?
    /// retry_source_connection_id (0x10): the Source Connection ID of the Retry packet. Server only.
    public var retrySourceConnectionID: ConnectionID?
    /// max_datagram_frame_size (0x20, RFC 9221 §3); absent or 0 means DATAGRAM is not supported.
    public var maxDatagramFrameSize: UInt64?
    /// grease_quic_bit (0x2ab2, RFC 9287 §3): the sender accepts packets with the QUIC Bit cleared.
    public var greaseQUICBit: Bool = false
    /// version_information (0x11, RFC 9368 §3).
    public var versionInformation: VersionInformation?

    /// The default max_udp_payload_size, the largest UDP payload (RFC 9000 §18.2).
    public static let defaultMaxUDPPayloadSize: UInt64 = 65527
    /// The smallest valid max_udp_payload_size (RFC 9000 §18.2).
    public static let minimumMaxUDPPayloadSize: UInt64 = 1200
    /// The default ack_delay_exponent (RFC 9000 §18.2).
    public static let defaultAckDelayExponent: UInt64 = 3
    /// The largest valid ack_delay_exponent (RFC 9000 §18.2).
    public static let maximumAckDelayExponent: UInt64 = 20
    /// The default max_ack_delay in milliseconds (RFC 9000 §18.2).
    public static let defaultMaxAckDelay: UInt64 = 25
    /// max_ack_delay values must be below this (2^14 ms, RFC 9000 §18.2).
    public static let maxAckDelayLimit: UInt64 = 1 << 14
    /// The default (and minimum) active_connection_id_limit (RFC 9000 §18.2).
    public static let defaultActiveConnectionIDLimit: UInt64 = 2
    /// The largest initial_max_streams_* value (RFC 9000 §4.6).
    public static let maxStreamsLimit: UInt64 = 1 << 60

    /// Parameter IDs (RFC 9000 §18.2, RFC 9221 §3, RFC 9368 §3, RFC 9287 §3).
    enum ID {
        static let originalDestinationConnectionID: UInt64 = 0x00
        static let maxIdleTimeout: UInt64 = 0x01
        static let statelessResetToken: UInt64 = 0x02
        static let maxUDPPayloadSize: UInt64 = 0x03
        static let initialMaxData: UInt64 = 0x04
        static let initialMaxStreamDataBidiLocal: UInt64 = 0x05
        static let initialMaxStreamDataBidiRemote: UInt64 = 0x06
        static let initialMaxStreamDataUni: UInt64 = 0x07
        static let initialMaxStreamsBidi: UInt64 = 0x08
        static let initialMaxStreamsUni: UInt64 = 0x09
        static let ackDelayExponent: UInt64 = 0x0a
        static let maxAckDelay: UInt64 = 0x0b
        static let disableActiveMigration: UInt64 = 0x0c
        static let preferredAddress: UInt64 = 0x0d
        static let activeConnectionIDLimit: UInt64 = 0x0e
        static let initialSourceConnectionID: UInt64 = 0x0f
        static let retrySourceConnectionID: UInt64 = 0x10
        static let versionInformation: UInt64 = 0x11
        static let maxDatagramFrameSize: UInt64 = 0x20
        static let greaseQUICBit: UInt64 = 0x2ab2
    }

    /// Creates transport parameters holding the defaults of RFC 9000 §18.2.
    public init() {}

    /// The ID of the `n`-th reserved transport parameter, `31 * n + 27` (RFC 9000 §18.1).
    ///
    /// - Precondition: the result fits a variable-length integer (`n` ≤ (2^62 − 28) / 31).
    public static func greaseParameterID(_ n: UInt64) -> UInt64 {
        let id = 31 * n + 27
        precondition(id <= VarInt.max, "reserved transport parameter ID out of range")
        return id
    }

    /// Whether `id` has the reserved form `31 * N + 27` (RFC 9000 §18.1).
    public static func isReservedParameterID(_ id: UInt64) -> Bool { id >= 27 && (id - 27) % 31 == 0 }

    // MARK: - Encoding

    /// Encodes the parameters as the `quic_transport_parameters` extension body, in ascending ID
    /// order, omitting every parameter that is absent or equal to its default.
    ///
    /// - Parameter grease: a reserved parameter to append (RFC 9000 §18.1), or `nil`.
    /// - Precondition: integers ≤ 2^62 − 1, tokens 16 bytes, addresses 4 and 16 bytes (API misuse otherwise).
    public func encode(includeGrease grease: GreaseParameter? = nil) -> [UInt8] {
        var w = ByteWriter(capacity: 128)
        if let cid = originalDestinationConnectionID { Self.write(&w, ID.originalDestinationConnectionID, cid.bytes) }
        if maxIdleTimeout != 0 { Self.write(&w, ID.maxIdleTimeout, integer: maxIdleTimeout) }
        if let token = statelessResetToken {
            precondition(token.count == 16, "stateless reset token must be 16 bytes")
            Self.write(&w, ID.statelessResetToken, token)
        }
        if maxUDPPayloadSize != Self.defaultMaxUDPPayloadSize { Self.write(&w, ID.maxUDPPayloadSize, integer: maxUDPPayloadSize) }
        if initialMaxData != 0 { Self.write(&w, ID.initialMaxData, integer: initialMaxData) }
        if initialMaxStreamDataBidiLocal != 0 { Self.write(&w, ID.initialMaxStreamDataBidiLocal, integer: initialMaxStreamDataBidiLocal) }
        if initialMaxStreamDataBidiRemote != 0 { Self.write(&w, ID.initialMaxStreamDataBidiRemote, integer: initialMaxStreamDataBidiRemote) }
        if initialMaxStreamDataUni != 0 { Self.write(&w, ID.initialMaxStreamDataUni, integer: initialMaxStreamDataUni) }
        if initialMaxStreamsBidi != 0 { Self.write(&w, ID.initialMaxStreamsBidi, integer: initialMaxStreamsBidi) }
        if initialMaxStreamsUni != 0 { Self.write(&w, ID.initialMaxStreamsUni, integer: initialMaxStreamsUni) }
        if ackDelayExponent != Self.defaultAckDelayExponent { Self.write(&w, ID.ackDelayExponent, integer: ackDelayExponent) }
        if maxAckDelay != Self.defaultMaxAckDelay { Self.write(&w, ID.maxAckDelay, integer: maxAckDelay) }
        if disableActiveMigration { Self.write(&w, ID.disableActiveMigration, []) }
        if let address = preferredAddress {
            precondition(address.ipv4Address.count == 4 && address.ipv6Address.count == 16, "bad preferred address")
            precondition(address.statelessResetToken.count == 16, "stateless reset token must be 16 bytes")
            var value = ByteWriter(capacity: 41 + address.connectionID.count)
            value.writeBytes(address.ipv4Address)
            value.writeUInt16(address.ipv4Port)
            value.writeBytes(address.ipv6Address)
            value.writeUInt16(address.ipv6Port)
            value.writeUInt8(UInt8(address.connectionID.count))
            value.writeBytes(address.connectionID.bytes)
            value.writeBytes(address.statelessResetToken)
            Self.write(&w, ID.preferredAddress, value.bytes)
        }
        if activeConnectionIDLimit != Self.defaultActiveConnectionIDLimit {
            Self.write(&w, ID.activeConnectionIDLimit, integer: activeConnectionIDLimit)
        }
        if let cid = initialSourceConnectionID { Self.write(&w, ID.initialSourceConnectionID, cid.bytes) }
        if let cid = retrySourceConnectionID { Self.write(&w, ID.retrySourceConnectionID, cid.bytes) }
        if let info = versionInformation {
            var value = ByteWriter(capacity: 4 * (1 + info.availableVersions.count))
            value.writeUInt32(info.chosenVersion)
            for version in info.availableVersions { value.writeUInt32(version) }
            Self.write(&w, ID.versionInformation, value.bytes)
        }
        if let size = maxDatagramFrameSize { Self.write(&w, ID.maxDatagramFrameSize, integer: size) }
        if greaseQUICBit { Self.write(&w, ID.greaseQUICBit, []) }
        if let grease { Self.write(&w, grease.id, grease.value) }
        return w.bytes
    }

    private static func write(_ w: inout ByteWriter, _ id: UInt64, integer: UInt64) {
        w.writeVarInt(id)
        w.writeVarInt(UInt64(VarInt.encodedLength(integer)))
        w.writeVarInt(integer)
    }

    private static func write(_ w: inout ByteWriter, _ id: UInt64, _ value: [UInt8]) {
        w.writeVarInt(id)
        w.writeVarInt(UInt64(value.count))
        w.writeBytes(value)
    }

    // MARK: - Decoding

    /// Decodes and validates the peer's transport parameters.
    ///
    /// Unknown parameters, reserved ones (RFC 9000 §18.1) included, are skipped. Absent
    /// parameters take their defaults.
    ///
    /// - Parameters:
    ///   - bytes: the `quic_transport_parameters` extension body.
    ///   - sender: the role of the endpoint that sent them.
    /// - Throws: `TRANSPORT_PARAMETER_ERROR` (RFC 9000 §7.4, §18.2) for: a truncated parameter or
    ///   a value whose length does not match its type; a repeated parameter; max_udp_payload_size
    ///   below 1200; ack_delay_exponent above 20; max_ack_delay of 2^14 or more;
    ///   active_connection_id_limit below 2; initial_max_streams_* above 2^60; a connection ID
    ///   longer than 20 bytes; original_destination_connection_id, stateless_reset_token,
    ///   preferred_address or retry_source_connection_id from a client; a preferred address with
    ///   an empty connection ID (or from a server whose own connection ID is empty); a non-empty
    ///   disable_active_migration or grease_quic_bit (RFC 9287 §3); a version_information that is
    ///   shorter than 4 bytes, not a multiple of 4, names version 0 or, from a client, lacks its
    ///   chosen version among the available ones (RFC 9368 §4).
    public init(decoding bytes: [UInt8], sentBy sender: Role) throws(QUICError) {
        self.init()
        do {
            try decodeParameters(bytes, sentBy: sender)
        } catch {
            throw QUICError(.transportParameterError, error.reason)
        }
    }

    private mutating func decodeParameters(_ bytes: [UInt8], sentBy sender: Role) throws(DecodeError) {
        var reader = ByteReader(bytes)
        var seenKnown: UInt32 = 0
        var seenOther: Set<UInt64> = []
        while !reader.isAtEnd {
            let id = try reader.readVarInt()
            let length = try reader.readVarInt()
            guard length <= UInt64(reader.remaining) else {
                throw DecodeError(.truncated, "transport parameter 0x\(String(id, radix: 16)) length \(length) exceeds the \(reader.remaining) bytes left")
            }
            let value = try reader.readBytes(Int(length))

            if let bit = Self.knownBit(id) {
                guard seenKnown & bit == 0 else { throw Self.invalid("duplicate transport parameter 0x\(String(id, radix: 16))") }
                seenKnown |= bit
            } else {
                guard seenOther.insert(id).inserted else { throw Self.invalid("duplicate transport parameter 0x\(String(id, radix: 16))") }
                continue  // unknown or reserved (RFC 9000 §18.1): ignored
            }
            try decodeKnown(id: id, value: value, sentBy: sender)
        }
        // RFC 9000 §18.2: a server that chose a zero-length connection ID must not send a preferred address.
        if sender == .server, preferredAddress != nil, initialSourceConnectionID?.count == 0 {
            throw Self.invalid("preferred_address from a server using a zero-length connection ID")
        }
    }

    private mutating func decodeKnown(id: UInt64, value: [UInt8], sentBy sender: Role) throws(DecodeError) {
        switch id {
        case ID.originalDestinationConnectionID:
            try Self.requireServer(sender, "original_destination_connection_id")
            originalDestinationConnectionID = try Self.connectionID(value, "original_destination_connection_id")
        case ID.maxIdleTimeout:
            maxIdleTimeout = try Self.integer(value, "max_idle_timeout")
        case ID.statelessResetToken:
            try Self.requireServer(sender, "stateless_reset_token")
            guard value.count == 16 else { throw Self.invalid("stateless_reset_token of \(value.count) bytes") }
            statelessResetToken = value
        case ID.maxUDPPayloadSize:
            let size = try Self.integer(value, "max_udp_payload_size")
            guard size >= Self.minimumMaxUDPPayloadSize else { throw Self.invalid("max_udp_payload_size \(size) below 1200") }
            maxUDPPayloadSize = size
        case ID.initialMaxData:
            initialMaxData = try Self.integer(value, "initial_max_data")
        case ID.initialMaxStreamDataBidiLocal:
            initialMaxStreamDataBidiLocal = try Self.integer(value, "initial_max_stream_data_bidi_local")
        case ID.initialMaxStreamDataBidiRemote:
            initialMaxStreamDataBidiRemote = try Self.integer(value, "initial_max_stream_data_bidi_remote")
        case ID.initialMaxStreamDataUni:
            initialMaxStreamDataUni = try Self.integer(value, "initial_max_stream_data_uni")
        case ID.initialMaxStreamsBidi:
            initialMaxStreamsBidi = try Self.streamLimit(value, "initial_max_streams_bidi")
        case ID.initialMaxStreamsUni:
            initialMaxStreamsUni = try Self.streamLimit(value, "initial_max_streams_uni")
        case ID.ackDelayExponent:
            let exponent = try Self.integer(value, "ack_delay_exponent")
            guard exponent <= Self.maximumAckDelayExponent else { throw Self.invalid("ack_delay_exponent \(exponent) above 20") }
            ackDelayExponent = exponent
        case ID.maxAckDelay:
            let delay = try Self.integer(value, "max_ack_delay")
            guard delay < Self.maxAckDelayLimit else { throw Self.invalid("max_ack_delay \(delay) not below 2^14") }
            maxAckDelay = delay
        case ID.disableActiveMigration:
            guard value.isEmpty else { throw Self.invalid("disable_active_migration with a value") }
            disableActiveMigration = true
        case ID.preferredAddress:
            try Self.requireServer(sender, "preferred_address")
            preferredAddress = try Self.preferredAddress(value)
        case ID.activeConnectionIDLimit:
            let limit = try Self.integer(value, "active_connection_id_limit")
            guard limit >= 2 else { throw Self.invalid("active_connection_id_limit \(limit) below 2") }
            activeConnectionIDLimit = limit
        case ID.initialSourceConnectionID:
            initialSourceConnectionID = try Self.connectionID(value, "initial_source_connection_id")
        case ID.retrySourceConnectionID:
            try Self.requireServer(sender, "retry_source_connection_id")
            retrySourceConnectionID = try Self.connectionID(value, "retry_source_connection_id")
        case ID.versionInformation:
            versionInformation = try Self.versionInformation(value, sentBy: sender)
        case ID.maxDatagramFrameSize:
            maxDatagramFrameSize = try Self.integer(value, "max_datagram_frame_size")
        case ID.greaseQUICBit:
            // RFC 9287 §3: a non-empty value is a TRANSPORT_PARAMETER_ERROR.
            guard value.isEmpty else { throw Self.invalid("grease_quic_bit with a value") }
            greaseQUICBit = true
        default:
            break
        }
    }

    /// A bit per known parameter, for duplicate detection without allocating.
    private static func knownBit(_ id: UInt64) -> UInt32? {
        switch id {
        case 0x00...0x11: return 1 << UInt32(id)
        case ID.maxDatagramFrameSize: return 1 << 18
        case ID.greaseQUICBit: return 1 << 19
        default: return nil
        }
    }

    private static func invalid(_ reason: String) -> DecodeError { DecodeError(.invalidValue, reason) }

    /// RFC 9000 §18.2: a server must reject server-only parameters from a client.
    private static func requireServer(_ sender: Role, _ name: String) throws(DecodeError) {
        guard sender == .server else { throw invalid("\(name) sent by a client") }
    }

    /// An integer parameter: one variable-length integer filling the value exactly.
    private static func integer(_ value: [UInt8], _ name: String) throws(DecodeError) -> UInt64 {
        var reader = ByteReader(value)
        let integer: UInt64
        do {
            integer = try reader.readVarInt()
            try reader.expectEnd(name)
        } catch {
            throw invalid("malformed \(name): \(error.reason)")
        }
        return integer
    }

    private static func streamLimit(_ value: [UInt8], _ name: String) throws(DecodeError) -> UInt64 {
        let limit = try integer(value, name)
        guard limit <= maxStreamsLimit else { throw invalid("\(name) \(limit) above 2^60") }
        return limit
    }

    private static func connectionID(_ value: [UInt8], _ name: String) throws(DecodeError) -> ConnectionID {
        guard let cid = ConnectionID(value) else { throw invalid("\(name) of \(value.count) bytes exceeds 20") }
        return cid
    }

    private static func preferredAddress(_ value: [UInt8]) throws(DecodeError) -> PreferredAddress {
        var reader = ByteReader(value)
        do throws(DecodeError) {
            let ipv4 = try reader.readBytes(4)
            let ipv4Port = try reader.readUInt16()
            let ipv6 = try reader.readBytes(16)
            let ipv6Port = try reader.readUInt16()
            let cidLength = Int(try reader.readUInt8())
            // RFC 9000 §18.2: a zero-length connection ID here is a TRANSPORT_PARAMETER_ERROR.
            guard (1...ConnectionID.maxLength).contains(cidLength) else {
                throw invalid("preferred_address connection ID length \(cidLength) outside 1...20")
            }
            let cid = ConnectionID(unchecked: try reader.readBytes(cidLength))
            let token = try reader.readBytes(16)
            try reader.expectEnd("preferred_address")
            return PreferredAddress(ipv4Address: ipv4, ipv4Port: ipv4Port, ipv6Address: ipv6, ipv6Port: ipv6Port,
                                    connectionID: cid, statelessResetToken: token)
        } catch {
            throw invalid("malformed preferred_address: \(error.reason)")
        }
    }

    /// RFC 9368 §4: parsing failures are a TRANSPORT_PARAMETER_ERROR in QUIC v1.
    private static func versionInformation(_ value: [UInt8], sentBy sender: Role) throws(DecodeError) -> VersionInformation {
        guard value.count >= 4, value.count % 4 == 0 else {
            throw invalid("version_information of \(value.count) bytes is not a non-empty multiple of 4")
        }
        var reader = ByteReader(value)
        var versions: [UInt32] = []
        versions.reserveCapacity(value.count / 4)
        while !reader.isAtEnd {
            let version = try reader.readUInt32()
            guard version != 0 else { throw invalid("version_information names version 0") }
            versions.append(version)
        }
        let info = VersionInformation(chosenVersion: versions[0], availableVersions: Array(versions.dropFirst()))
        if sender == .client, !info.availableVersions.contains(info.chosenVersion) {
            throw invalid("client version_information lacks its chosen version among the available ones")
        }
        return info
    }
}

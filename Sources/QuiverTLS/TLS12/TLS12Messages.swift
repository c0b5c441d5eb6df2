import QuiverCore

/// The handshake messages TLS 1.2 has and TLS 1.3 does not, or encodes differently (RFC 5246
/// §7.4, RFC 8422 §5, RFC 5077 §3.3).
enum TLS12Codec {
    /// `ServerECDHParams` (RFC 8422 §5.4): `named_curve`, the group and the public point.
    static func encodeECDHParams(group: NamedGroup, publicKey: [UInt8]) -> [UInt8] {
        var w = ByteWriter()
        w.writeUInt8(3)  // ECCurveType.named_curve
        w.writeUInt16(group.rawValue)
        w.writeLengthPrefixedBytes(1, publicKey)
        return w.bytes
    }

    /// `ServerKeyExchange` for ECDHE: the parameters, then the signature over
    /// `client_random ‖ server_random ‖ params` with its scheme (RFC 5246 §7.4.1.4.1 pairs, which
    /// share TLS 1.3's code points).
    static func encodeServerKeyExchange(params: [UInt8], scheme: SignatureScheme, signature: [UInt8]) -> [UInt8] {
        HandshakeMessage.encode(.serverKeyExchange) { w in
            w.writeBytes(params)
            w.writeUInt16(scheme.rawValue)
            w.writeLengthPrefixedBytes(2, signature)
        }
    }

    struct ServerKeyExchange {
        var group: NamedGroup
        var publicKey: [UInt8]
        /// The encoded `ServerECDHParams`, as signed.
        var params: [UInt8]
        var scheme: SignatureScheme
        var signature: [UInt8]
    }

    static func serverKeyExchange(_ body: [UInt8]) throws(TLSError) -> ServerKeyExchange {
        let parsed = try MessageCodec.decode("ServerKeyExchange", body) { r in
            let curveType = try r.readUInt8()
            guard curveType == 3 else { throw TLSError(.illegalParameter, "ServerKeyExchange curve type \(curveType), not named_curve") }
            let group = NamedGroup(rawValue: try r.readUInt16())
            let point = try r.readLengthPrefixedBytes(1)
            guard !point.isEmpty else { throw DecodeError(.invalidValue, "empty ECDH public key") }
            let scheme = SignatureScheme(rawValue: try r.readUInt16())
            let signature = try r.readLengthPrefixedBytes(2)
            return (group, point, scheme, signature)
        }
        return ServerKeyExchange(
            group: parsed.0, publicKey: parsed.1, params: encodeECDHParams(group: parsed.0, publicKey: parsed.1),
            scheme: parsed.2, signature: parsed.3)
    }

    /// `ClientKeyExchange` for ECDHE (RFC 8422 §5.7): the client's public point.
    static func encodeClientKeyExchange(_ publicKey: [UInt8]) -> [UInt8] {
        HandshakeMessage.encode(.clientKeyExchange) { $0.writeLengthPrefixedBytes(1, publicKey) }
    }

    static func clientKeyExchange(_ body: [UInt8]) throws(TLSError) -> [UInt8] {
        let point = try MessageCodec.decode("ClientKeyExchange", body) { r in try r.readLengthPrefixedBytes(1) }
        guard !point.isEmpty else { throw TLSError(.decodeError, "empty ClientKeyExchange") }
        return point
    }

    /// TLS 1.2 `Certificate` (RFC 5246 §7.4.2): DER certificates, no context or extensions.
    static func encodeCertificate(_ chain: [[UInt8]]) -> [UInt8] {
        HandshakeMessage.encode(.certificate) { w in
            w.writeLengthPrefixed(3) { w in
                for der in chain { w.writeLengthPrefixedBytes(3, der) }
            }
        }
    }

    static func certificate(_ body: [UInt8]) throws(TLSError) -> [[UInt8]] {
        try MessageCodec.decode("Certificate", body) { r in
            var list = try r.readLengthPrefixed(3)
            var chain: [[UInt8]] = []
            while !list.isAtEnd {
                let der = try list.readLengthPrefixedBytes(3)
                guard !der.isEmpty else { throw DecodeError(.invalidValue, "empty certificate entry") }
                chain.append(der)
            }
            return chain
        }
    }

    /// TLS 1.2 `CertificateRequest` (RFC 5246 §7.4.4): ECDSA and RSA certificates, the schemes we
    /// accept, no certificate authorities.
    static func encodeCertificateRequest(schemes: [SignatureScheme]) -> [UInt8] {
        HandshakeMessage.encode(.certificateRequest) { w in
            w.writeLengthPrefixedBytes(1, [64, 1])  // ecdsa_sign, rsa_sign
            ExtensionCodec.writeUInt16List(&w, schemes.map(\.rawValue))
            w.writeUInt16(0)
        }
    }

    /// The schemes of a TLS 1.2 `CertificateRequest`.
    static func certificateRequest(_ body: [UInt8]) throws(TLSError) -> [SignatureScheme] {
        try MessageCodec.decode("CertificateRequest", body) { r in
            _ = try r.readLengthPrefixedBytes(1)
            let schemes = try ExtensionCodec.readUInt16List(&r).map(SignatureScheme.init(rawValue:))
            _ = try r.readLengthPrefixedBytes(2)
            return schemes
        }
    }

    /// TLS 1.2 `NewSessionTicket` (RFC 5077 §3.3).
    static func encodeNewSessionTicket(lifetimeHint: UInt32, ticket: [UInt8]) -> [UInt8] {
        HandshakeMessage.encode(.newSessionTicket) { w in
            w.writeUInt32(lifetimeHint)
            w.writeLengthPrefixedBytes(2, ticket)
        }
    }

    static func newSessionTicket(_ body: [UInt8]) throws(TLSError) -> (lifetimeHint: UInt32, ticket: [UInt8]) {
        try MessageCodec.decode("NewSessionTicket", body) { r in (try r.readUInt32(), try r.readLengthPrefixedBytes(2)) }
    }
}

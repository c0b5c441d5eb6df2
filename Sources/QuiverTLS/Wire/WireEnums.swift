import QuiverCore

/// Declares the open wire-enum pattern used for TLS code points: a struct over the integer with
/// named constants, so unknown values (including GREASE) round-trip instead of failing to parse.

/// A TLS protocol version Quiver speaks.
public enum TLSVersion: UInt16, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// TLS 1.2 (RFC 5246), over TCP only: ECDHE with AEAD suites, extended master secret
    /// required (RFC 7627), no renegotiation (RFC 5746).
    case tls12 = 0x0303
    /// TLS 1.3 (RFC 8446); the only version QUIC uses (RFC 9001).
    case tls13 = 0x0304

    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.rawValue < b.rawValue }

    public var description: String { self == .tls12 ? "TLS 1.2" : "TLS 1.3" }
}

/// A cipher suite: TLS 1.3's (RFC 8446 §B.4) and the TLS 1.2 ECDHE AEAD suites (RFC 5289,
/// RFC 7905) — Mozilla's "intermediate" profile: no CBC, no static RSA.
public struct CipherSuite: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let aes128GCMSHA256 = CipherSuite(rawValue: 0x1301)
    public static let aes256GCMSHA384 = CipherSuite(rawValue: 0x1302)
    public static let chacha20Poly1305SHA256 = CipherSuite(rawValue: 0x1303)

    public static let ecdheECDSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02B)
    public static let ecdheECDSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC02C)
    public static let ecdheRSAWithAES128GCMSHA256 = CipherSuite(rawValue: 0xC02F)
    public static let ecdheRSAWithAES256GCMSHA384 = CipherSuite(rawValue: 0xC030)
    public static let ecdheRSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA8)
    public static let ecdheECDSAWithChaCha20Poly1305SHA256 = CipherSuite(rawValue: 0xCCA9)
    /// TLS_EMPTY_RENEGOTIATION_INFO_SCSV (RFC 5746 §3.3): a client signalling secure
    /// renegotiation support without the extension.
    static let emptyRenegotiationInfoSCSV = CipherSuite(rawValue: 0x00FF)
    /// TLS_FALLBACK_SCSV (RFC 7507): a client retrying with a lower version than it supports.
    static let fallbackSCSV = CipherSuite(rawValue: 0x5600)

    /// The TLS 1.3 suites Quiver implements, in its default preference order.
    public static let supported: [CipherSuite] = [.aes128GCMSHA256, .aes256GCMSHA384, .chacha20Poly1305SHA256]
    /// The TLS 1.2 suites Quiver implements, in its default preference order (Mozilla's
    /// "intermediate" list).
    public static let supportedTLS12: [CipherSuite] = [
        .ecdheECDSAWithAES128GCMSHA256, .ecdheRSAWithAES128GCMSHA256, .ecdheECDSAWithAES256GCMSHA384,
        .ecdheRSAWithAES256GCMSHA384, .ecdheECDSAWithChaCha20Poly1305SHA256, .ecdheRSAWithChaCha20Poly1305SHA256,
    ]

    public var description: String {
        switch self {
        case .aes128GCMSHA256: return "TLS_AES_128_GCM_SHA256"
        case .aes256GCMSHA384: return "TLS_AES_256_GCM_SHA384"
        case .chacha20Poly1305SHA256: return "TLS_CHACHA20_POLY1305_SHA256"
        case .ecdheECDSAWithAES128GCMSHA256: return "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case .ecdheECDSAWithAES256GCMSHA384: return "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithAES128GCMSHA256: return "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case .ecdheRSAWithAES256GCMSHA384: return "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case .ecdheRSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case .ecdheECDSAWithChaCha20Poly1305SHA256: return "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        default: return "CipherSuite(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// A key-exchange group (RFC 8446 §4.2.7; X25519MLKEM768 from draft-ietf-tls-ecdhe-mlkem).
public struct NamedGroup: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let secp256r1 = NamedGroup(rawValue: 0x0017)
    public static let secp384r1 = NamedGroup(rawValue: 0x0018)
    public static let secp521r1 = NamedGroup(rawValue: 0x0019)
    public static let x25519 = NamedGroup(rawValue: 0x001D)
    public static let x448 = NamedGroup(rawValue: 0x001E)
    public static let x25519MLKEM768 = NamedGroup(rawValue: 0x11EC)

    /// The groups Quiver implements, in its default preference order.
    public static let supported: [NamedGroup] = [.x25519, .secp256r1, .secp384r1, .secp521r1, .x25519MLKEM768]

    public var description: String {
        switch self {
        case .secp256r1: return "secp256r1"
        case .secp384r1: return "secp384r1"
        case .secp521r1: return "secp521r1"
        case .x25519: return "x25519"
        case .x448: return "x448"
        case .x25519MLKEM768: return "X25519MLKEM768"
        default: return "NamedGroup(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// A signature scheme (RFC 8446 §4.2.3).
public struct SignatureScheme: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let rsaPKCS1SHA256 = SignatureScheme(rawValue: 0x0401)
    public static let rsaPKCS1SHA384 = SignatureScheme(rawValue: 0x0501)
    public static let rsaPKCS1SHA512 = SignatureScheme(rawValue: 0x0601)
    public static let ecdsaSecp256r1SHA256 = SignatureScheme(rawValue: 0x0403)
    public static let ecdsaSecp384r1SHA384 = SignatureScheme(rawValue: 0x0503)
    public static let ecdsaSecp521r1SHA512 = SignatureScheme(rawValue: 0x0603)
    public static let rsaPSSRSAESHA256 = SignatureScheme(rawValue: 0x0804)
    public static let rsaPSSRSAESHA384 = SignatureScheme(rawValue: 0x0805)
    public static let rsaPSSRSAESHA512 = SignatureScheme(rawValue: 0x0806)
    public static let ed25519 = SignatureScheme(rawValue: 0x0807)
    public static let ed448 = SignatureScheme(rawValue: 0x0808)
    public static let rsaPSSPSSSHA256 = SignatureScheme(rawValue: 0x0809)
    public static let rsaPSSPSSSHA384 = SignatureScheme(rawValue: 0x080a)
    public static let rsaPSSPSSSHA512 = SignatureScheme(rawValue: 0x080b)

    /// Schemes Quiver can produce and check in CertificateVerify, in preference order.
    public static let supported: [SignatureScheme] = [
        .ecdsaSecp256r1SHA256, .ecdsaSecp384r1SHA384, .ecdsaSecp521r1SHA512, .ed25519,
        .rsaPSSRSAESHA256, .rsaPSSRSAESHA384, .rsaPSSRSAESHA512,
    ]

    /// Schemes accepted in certificate signatures (`signature_algorithms_cert`): the above plus
    /// RSA PKCS#1 v1.5, which RFC 8446 §4.2.3 allows in certificates only.
    public static let supportedInCertificates: [SignatureScheme] =
        supported + [.rsaPKCS1SHA256, .rsaPKCS1SHA384, .rsaPKCS1SHA512]

    public var description: String {
        switch self {
        case .rsaPKCS1SHA256: return "rsa_pkcs1_sha256"
        case .rsaPKCS1SHA384: return "rsa_pkcs1_sha384"
        case .rsaPKCS1SHA512: return "rsa_pkcs1_sha512"
        case .ecdsaSecp256r1SHA256: return "ecdsa_secp256r1_sha256"
        case .ecdsaSecp384r1SHA384: return "ecdsa_secp384r1_sha384"
        case .ecdsaSecp521r1SHA512: return "ecdsa_secp521r1_sha512"
        case .rsaPSSRSAESHA256: return "rsa_pss_rsae_sha256"
        case .rsaPSSRSAESHA384: return "rsa_pss_rsae_sha384"
        case .rsaPSSRSAESHA512: return "rsa_pss_rsae_sha512"
        case .ed25519: return "ed25519"
        case .ed448: return "ed448"
        case .rsaPSSPSSSHA256: return "rsa_pss_pss_sha256"
        case .rsaPSSPSSSHA384: return "rsa_pss_pss_sha384"
        case .rsaPSSPSSSHA512: return "rsa_pss_pss_sha512"
        default: return "SignatureScheme(0x\(String(rawValue, radix: 16)))"
        }
    }
}

/// A TLS alert description (RFC 8446 §6).
public struct AlertDescription: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let closeNotify = AlertDescription(rawValue: 0)
    public static let unexpectedMessage = AlertDescription(rawValue: 10)
    public static let badRecordMAC = AlertDescription(rawValue: 20)
    public static let recordOverflow = AlertDescription(rawValue: 22)
    public static let handshakeFailure = AlertDescription(rawValue: 40)
    public static let badCertificate = AlertDescription(rawValue: 42)
    public static let unsupportedCertificate = AlertDescription(rawValue: 43)
    public static let certificateRevoked = AlertDescription(rawValue: 44)
    public static let certificateExpired = AlertDescription(rawValue: 45)
    public static let certificateUnknown = AlertDescription(rawValue: 46)
    public static let illegalParameter = AlertDescription(rawValue: 47)
    public static let unknownCA = AlertDescription(rawValue: 48)
    public static let accessDenied = AlertDescription(rawValue: 49)
    public static let decodeError = AlertDescription(rawValue: 50)
    public static let decryptError = AlertDescription(rawValue: 51)
    public static let protocolVersion = AlertDescription(rawValue: 70)
    public static let insufficientSecurity = AlertDescription(rawValue: 71)
    public static let internalError = AlertDescription(rawValue: 80)
    public static let inappropriateFallback = AlertDescription(rawValue: 86)
    public static let userCanceled = AlertDescription(rawValue: 90)
    /// TLS 1.2 only, always a warning (RFC 5246 §7.2.2): renegotiation refused.
    public static let noRenegotiation = AlertDescription(rawValue: 100)
    public static let missingExtension = AlertDescription(rawValue: 109)
    public static let unsupportedExtension = AlertDescription(rawValue: 110)
    public static let unrecognizedName = AlertDescription(rawValue: 112)
    public static let badCertificateStatusResponse = AlertDescription(rawValue: 113)
    public static let unknownPSKIdentity = AlertDescription(rawValue: 115)
    public static let certificateRequired = AlertDescription(rawValue: 116)
    public static let noApplicationProtocol = AlertDescription(rawValue: 120)

    public var description: String {
        let names: [UInt8: String] = [
            0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
            40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
            44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
            47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
            51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
            86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation", 109: "missing_extension",
            110: "unsupported_extension", 112: "unrecognized_name", 113: "bad_certificate_status_response",
            115: "unknown_psk_identity", 116: "certificate_required", 120: "no_application_protocol",
        ]
        return names[rawValue] ?? "alert(\(rawValue))"
    }
}

/// An SRTP protection profile of DTLS-SRTP's `use_srtp` extension (RFC 5764 §4.1.2, RFC 7714 §14.2).
public struct SRTPProtectionProfile: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let aes128CMHMACSHA1_80 = SRTPProtectionProfile(rawValue: 0x0001)
    public static let aes128CMHMACSHA1_32 = SRTPProtectionProfile(rawValue: 0x0002)
    public static let aeadAES128GCM = SRTPProtectionProfile(rawValue: 0x0007)
    public static let aeadAES256GCM = SRTPProtectionProfile(rawValue: 0x0008)

    /// What WebRTC implementations offer, most preferred first.
    public static let webRTC: [SRTPProtectionProfile] = [.aeadAES128GCM, .aes128CMHMACSHA1_80]

    public var description: String {
        switch self {
        case .aes128CMHMACSHA1_80: "SRTP_AES128_CM_HMAC_SHA1_80"
        case .aes128CMHMACSHA1_32: "SRTP_AES128_CM_HMAC_SHA1_32"
        case .aeadAES128GCM: "SRTP_AEAD_AES_128_GCM"
        case .aeadAES256GCM: "SRTP_AEAD_AES_256_GCM"
        default: "SRTPProtectionProfile(0x\(String(rawValue, radix: 16)))"
        }
    }

    /// `UseSRTPData` (RFC 5764 §4.1.1): a list of profiles and an MKI.
    static func encode(_ profiles: [SRTPProtectionProfile], mki: [UInt8], into writer: inout ByteWriter) {
        writer.writeLengthPrefixed(2) { list in for profile in profiles { list.writeUInt16(profile.rawValue) } }
        writer.writeLengthPrefixedBytes(1, mki)
    }

    static func decodeOffer(_ reader: inout ByteReader) throws(DecodeError) -> (profiles: [SRTPProtectionProfile], mki: [UInt8]) {
        var list = try reader.readLengthPrefixed(2)
        guard list.remaining % 2 == 0, !list.isAtEnd else { throw DecodeError(.invalidValue, "use_srtp profile list of \(list.remaining) bytes") }
        var profiles: [SRTPProtectionProfile] = []
        while !list.isAtEnd { profiles.append(SRTPProtectionProfile(rawValue: try list.readUInt16())) }
        let mki = try reader.readLengthPrefixedBytes(1)
        try reader.expectEnd("use_srtp")
        return (profiles, mki)
    }
}

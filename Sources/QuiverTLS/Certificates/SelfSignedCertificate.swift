#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
public import QuiverCore
import SwiftASN1
public import X509

/// Self-signed certificates for the zero-configuration default and for tests.
///
/// ```swift
/// let (chain, key) = try SelfSignedCertificate.generate(names: ["localhost"])
/// ```
public enum SelfSignedCertificate {
    /// Generates a key of `algorithm` and a self-signed certificate for `names`.
    ///
    /// The certificate is an end-entity certificate (`CA:false`, key usage `digitalSignature`,
    /// extended key usage `serverAuth` and `clientAuth`). Its subject common name is
    /// `names.first`; its subject alternative names list each name as a DNS name or, when it
    /// parses as an IPv4 or IPv6 literal, an IP address. When `names` contains `localhost`,
    /// `127.0.0.1` and `::1` are added as IP addresses. It is valid from one hour before now
    /// (to tolerate clock skew) until `validityDays` days from now.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when `names` is empty, `validityDays`
    ///   is not positive, or generation fails.
    public static func generate(
        names: [String] = ["localhost"], algorithm: PrivateKey.Algorithm = .ecdsaP256,
        validityDays: Int = 365, clock: WallClock = .system
    ) throws(QuiverError) -> (chain: CertificateChain, key: PrivateKey) {
        guard validityDays > 0, validityDays <= 100 * 366 else {
            throw QuiverError(.certificate, "validityDays must be between 1 and 36600, not \(validityDays)")
        }
        let now = clock.millisecondsSinceEpoch()
        let hour: UInt64 = 3_600_000
        return try generate(
            names: names, algorithm: algorithm, issuer: nil, isCA: false,
            notBefore: now >= hour ? now - hour : 0,
            notAfter: now + UInt64(validityDays) * 24 * hour)
    }

    /// Generates a key of `algorithm` and a certificate for `names` signed by `issuer`, or
    /// self-signed when `issuer` is nil.
    ///
    /// With `isCA` the certificate is a certificate authority (`CA:true`, key usage
    /// `keyCertSign`, `cRLSign` and `digitalSignature`, no subject alternative names), for building
    /// test chains: root → intermediate → leaf. Otherwise it is an end-entity certificate as
    /// described in ``generate(names:algorithm:validityDays:clock:)``. The returned chain holds only
    /// the new certificate: to serve a leaf, append its issuers' chains (`derEncoded`) after it.
    ///
    /// - Parameters:
    ///   - notBefore: Start of validity, in milliseconds since the Unix epoch (truncated to seconds).
    ///   - notAfter: End of validity, in milliseconds since the Unix epoch (truncated to seconds).
    /// - Throws: ``QuiverError`` with code `.certificate` when `names` is empty or a name is not a
    ///   valid DNS name or IP literal, `notAfter` precedes `notBefore`, the issuer is not a CA whose
    ///   key matches its certificate, or generation fails.
    public static func generate(
        names: [String], algorithm: PrivateKey.Algorithm, issuer: (certificate: X509.Certificate, key: PrivateKey)?,
        isCA: Bool, notBefore: UInt64, notAfter: UInt64
    ) throws(QuiverError) -> (chain: CertificateChain, key: PrivateKey) {
        guard let commonName = names.first, !commonName.isEmpty else {
            throw QuiverError(.certificate, "a certificate needs at least one non-empty name")
        }
        guard notAfter >= notBefore else {
            throw QuiverError(.certificate, "notAfter (\(notAfter) ms) is before notBefore (\(notBefore) ms)")
        }
        if let issuer {
            guard issuer.key.matches(issuer.certificate) else {
                throw QuiverError(.certificate, "the issuer key does not match the issuer certificate")
            }
            guard case .some(.isCertificateAuthority) = try? issuer.certificate.extensions.basicConstraints else {
                throw QuiverError(.certificate, "the issuer certificate is not a CA (basicConstraints CA:true)")
            }
        }

        let key = try PrivateKey.generate(algorithm)
        let publicKey = key.x509PrivateKey.publicKey
        let signingKey = issuer?.key ?? key
        do {
            let subject = try DistinguishedName { CommonName(commonName) }
            let issuerName = issuer?.certificate.subject ?? subject
            let subjectKeyID = SubjectKeyIdentifier(hash: publicKey)
            let authorityKeyID: ArraySlice<UInt8> =
                if let issuer {
                    (try? issuer.certificate.extensions.subjectKeyIdentifier)?.keyIdentifier
                        ?? SubjectKeyIdentifier(hash: issuer.certificate.publicKey).keyIdentifier
                } else {
                    subjectKeyID.keyIdentifier
                }
            let alternativeNames = isCA ? [] : try subjectAlternativeNames(for: names)
            let extensions = try X509.Certificate.Extensions {
                if isCA {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                    Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                } else {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(alternativeNames)
                }
                subjectKeyID
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
            }
            let certificate = try X509.Certificate(
                version: .v3,
                serialNumber: X509.Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: Date(timeIntervalSince1970: Double(notBefore / 1000)),
                notValidAfter: Date(timeIntervalSince1970: Double(notAfter / 1000)),
                issuer: issuerName,
                subject: subject,
                signatureAlgorithm: signingKey.certificateSignatureAlgorithm,
                extensions: extensions,
                issuerPrivateKey: signingKey.x509PrivateKey)
            return (try CertificateChain(certificates: [certificate]), key)
        } catch let error as QuiverError {
            throw error
        } catch {
            throw QuiverError(.certificate, "certificate generation failed: \(error)")
        }
    }

    /// The subject alternative names for `names`: IP literals as IP addresses, the rest as DNS
    /// names, plus 127.0.0.1 and ::1 when `localhost` is among them.
    static func subjectAlternativeNames(for names: [String]) throws(QuiverError) -> [GeneralName] {
        var result: [GeneralName] = []
        var addresses: [[UInt8]] = []
        func addAddress(_ bytes: [UInt8]) {
            guard !addresses.contains(bytes) else { return }
            addresses.append(bytes)
            result.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        var dnsNames: Set<String> = []
        for name in names {
            if let bytes = ipAddressBytes(name) {
                addAddress(bytes)
            } else {
                var lowered = name.lowercased()
                if lowered.count > 1 && lowered.hasSuffix(".") { lowered.removeLast() }
                guard isValidDNSName(lowered) else {
                    throw QuiverError(.certificate, "'\(name)' is neither a valid DNS name nor an IP address")
                }
                if dnsNames.insert(lowered).inserted { result.append(.dnsName(lowered)) }
            }
        }
        if dnsNames.contains("localhost") {
            addAddress([127, 0, 0, 1])
            addAddress([UInt8](repeating: 0, count: 15) + [1])
        }
        return result
    }

    /// The address bytes of an IPv4 or IPv6 literal (`[::1]` brackets allowed), or nil.
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var host = text
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Whether `name` is an ASCII DNS name (letters, digits, hyphens; a leading `*.` wildcard allowed).
    private static func isValidDNSName(_ name: String) -> Bool {
        var labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.last == "" { labels.removeLast() }  // trailing root dot
        guard !labels.isEmpty, name.utf8.count <= 253 else { return false }
        for (index, label) in labels.enumerated() {
            if index == 0 && label == "*" && labels.count > 1 { continue }
            guard !label.isEmpty, label.utf8.count <= 63, label.first != "-", label.last != "-",
                label.utf8.allSatisfy({ $0.isASCIILetterDigitOrHyphen })
            else { return false }
        }
        return true
    }
}

extension UInt8 {
    fileprivate var isASCIILetterDigitOrHyphen: Bool {
        (self >= 0x61 && self <= 0x7a) || (self >= 0x41 && self <= 0x5a) || (self >= 0x30 && self <= 0x39) || self == 0x2d
            || self == 0x5f  // underscore: not a hostname character, but common in internal DNS names
    }
}

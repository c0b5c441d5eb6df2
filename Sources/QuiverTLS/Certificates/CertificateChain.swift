public import QuiverCore
import SwiftASN1
public import X509

/// A certificate chain, leaf first.
///
/// Keeps both the parsed certificates and their exact DER encodings: the encodings are what a
/// TLS Certificate message carries, so a chain read from disk is sent byte for byte as loaded.
///
/// ```swift
/// let chain = try CertificateChain(pemFile: "/etc/quiver/fullchain.pem")
/// let leaf = chain.certificates[0]
/// ```
public struct CertificateChain: Sendable, Hashable {
    /// The parsed certificates, leaf first.
    public let certificates: [X509.Certificate]
    /// The DER encoding of each certificate, in the same order as ``certificates``.
    public let derEncoded: [[UInt8]]

    /// Parses a chain from DER-encoded certificates, leaf first.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when the list is empty or a certificate
    ///   does not parse.
    public init(derEncoded: [[UInt8]]) throws(QuiverError) {
        guard !derEncoded.isEmpty else {
            throw QuiverError(.certificate, "a certificate chain needs at least one certificate")
        }
        var certificates: [X509.Certificate] = []
        certificates.reserveCapacity(derEncoded.count)
        for (index, der) in derEncoded.enumerated() {
            do {
                certificates.append(try X509.Certificate(derEncoded: der))
            } catch {
                throw QuiverError(.certificate, "certificate \(index) of the chain is not a valid X.509 certificate: \(error)")
            }
        }
        self.certificates = certificates
        self.derEncoded = derEncoded
    }

    /// Parses a chain from PEM text holding one or more `CERTIFICATE` blocks, leaf first.
    ///
    /// Blocks of other types (a private key kept in the same file, for example) are skipped.
    ///
    /// - Throws: ``QuiverError`` with code `.certificate` when the text is not PEM, holds no
    ///   certificate, or a certificate does not parse.
    public init(pem: String) throws(QuiverError) {
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: pem)
        } catch {
            throw QuiverError(.certificate, "the certificate PEM text is malformed: \(error)")
        }
        let ders = documents.filter { $0.discriminator == "CERTIFICATE" }.map(\.derBytes)
        guard !ders.isEmpty else {
            throw QuiverError(.certificate, "the PEM text holds no CERTIFICATE block")
        }
        try self.init(derEncoded: ders)
    }

    /// Reads and parses a PEM file holding one or more certificates, leaf first.
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when the file cannot be read, or
    ///   `.certificate` when its contents are not valid certificates.
    public init(pemFile path: String) throws(QuiverError) {
        let text = try CertificateFiles.readText(path, what: "certificate file")
        do {
            try self.init(pem: text)
        } catch {
            throw QuiverError(error.code, "\(path): \(error.reason)")
        }
    }

    /// The chain as PEM text: one `CERTIFICATE` block per certificate, leaf first.
    public var pemRepresentation: String {
        derEncoded.map { PEMDocument(type: "CERTIFICATE", derBytes: $0).pemString }.joined(separator: "\n") + "\n"
    }

    /// Builds a chain from parsed certificates, serializing each to DER.
    init(certificates: [X509.Certificate]) throws(QuiverError) {
        var ders: [[UInt8]] = []
        for certificate in certificates {
            ders.append(try Self.serialize(certificate))
        }
        self.certificates = certificates
        self.derEncoded = ders
    }

    /// The DER encoding of `certificate`.
    static func serialize(_ certificate: X509.Certificate) throws(QuiverError) -> [UInt8] {
        do {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return serializer.serializedBytes
        } catch {
            throw QuiverError(.certificate, "cannot DER-encode certificate: \(error)")
        }
    }
}

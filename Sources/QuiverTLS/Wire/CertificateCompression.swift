import CQuiverBrotli
import CQuiverZlib
import QuiverCore
import Synchronization

/// A certificate compression algorithm (RFC 8879 §3). Quiver implements zlib and Brotli (the
/// system libraries); zstd is named so that it prints and round-trips.
public struct CertificateCompressionAlgorithm: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// zlib (RFC 1950).
    public static let zlib = CertificateCompressionAlgorithm(rawValue: 1)
    /// Brotli (RFC 7932).
    public static let brotli = CertificateCompressionAlgorithm(rawValue: 2)
    /// Zstandard (RFC 8478); not implemented.
    public static let zstd = CertificateCompressionAlgorithm(rawValue: 3)

    /// The algorithms Quiver implements.
    public static let supported: [CertificateCompressionAlgorithm] = [.zlib, .brotli]

    public var description: String {
        switch self {
        case .zlib: return "zlib"
        case .brotli: return "brotli"
        case .zstd: return "zstd"
        default: return "CertificateCompressionAlgorithm(\(rawValue))"
        }
    }
}

/// Certificate compression (RFC 8879): the `compress_certificate` extension and the
/// CompressedCertificate message, which replaces Certificate (and stands for it in the
/// transcript). The compressed bytes are the Certificate message's body.
enum CertificateCompression {
    /// Reads a peer's `compress_certificate` list (`algorithms<2..2^8-2>`).
    static func peerAlgorithms(_ extensions: Extensions) throws(TLSError) -> [CertificateCompressionAlgorithm]? {
        try extensions.decode(.compressCertificate) { r throws(DecodeError) in
            var list = try r.readLengthPrefixed(1)
            guard list.remaining >= 2, list.remaining % 2 == 0 else { throw DecodeError(.invalidValue, "bad compress_certificate list length") }
            var out: [CertificateCompressionAlgorithm] = []
            while !list.isAtEnd { out.append(CertificateCompressionAlgorithm(rawValue: try list.readUInt16())) }
            return out
        }
    }

    /// Writes our `compress_certificate` extension (the implemented algorithms among `configured`).
    static func offer(_ configured: [CertificateCompressionAlgorithm], into extensions: inout Extensions) {
        let algorithms = configured.filter { CertificateCompressionAlgorithm.supported.contains($0) }
        guard !algorithms.isEmpty else { return }
        extensions.append(.compressCertificate) { w in
            w.writeLengthPrefixed(1) { w in for a in algorithms { w.writeUInt16(a.rawValue) } }
        }
    }

    /// The Certificate message `certificate` (encoded, header included) as a CompressedCertificate
    /// with the first of our `configured` algorithms the peer offered, or `certificate` itself
    /// (and `nil`) when there is none.
    static func message(
        _ certificate: [UInt8], configured: [CertificateCompressionAlgorithm], peer: [CertificateCompressionAlgorithm]?,
        cache: CertificateCompressionCache? = nil
    ) -> (message: [UInt8], algorithm: CertificateCompressionAlgorithm?) {
        guard let peer, let algorithm = configured.first(where: { peer.contains($0) && CertificateCompressionAlgorithm.supported.contains($0) }) else {
            return (certificate, nil)
        }
        let body = Array(certificate.dropFirst(4))
        let compressed = cache.map { $0.compressed(body, algorithm: algorithm) { compress(body, algorithm) } } ?? compress(body, algorithm)
        guard let compressed else { return (certificate, nil) }
        let message = HandshakeMessage.encode(.compressedCertificate) { w in
            w.writeUInt16(algorithm.rawValue)
            w.writeUInt24(UInt32(body.count))
            w.writeLengthPrefixedBytes(3, compressed)
        }
        return (message, algorithm)
    }

    /// The Certificate message body inside a CompressedCertificate body.
    ///
    /// - Parameters:
    ///   - offered: the algorithms we offered; another is `illegal_parameter`.
    ///   - limit: the largest Certificate body accepted, as without compression; a larger
    ///     uncompressed_length is `bad_certificate` before anything is decompressed.
    /// - Throws: `decode_error` for a malformed message; `bad_certificate` when the data does not
    ///   decompress to exactly uncompressed_length bytes (RFC 8879 §4, §5).
    static func decompress(_ body: [UInt8], offered: [CertificateCompressionAlgorithm], limit: Int) throws(TLSError) -> [UInt8] {
        var r = ByteReader(body)
        let algorithm: CertificateCompressionAlgorithm
        let length: Int
        let data: [UInt8]
        do {
            algorithm = CertificateCompressionAlgorithm(rawValue: try r.readUInt16())
            length = Int(try r.readUInt24())
            data = try r.readLengthPrefixedBytes(3)
            try r.expectEnd("CompressedCertificate")
        } catch {
            throw TLSError.decode(error, in: "CompressedCertificate")
        }
        guard !data.isEmpty else { throw TLSError(.decodeError, "CompressedCertificate with no data") }
        guard offered.contains(algorithm), CertificateCompressionAlgorithm.supported.contains(algorithm) else {
            throw TLSError(.illegalParameter, "CompressedCertificate with \(algorithm), which was not offered")
        }
        guard length > 0, length <= limit else {
            throw TLSError(.badCertificate, "CompressedCertificate announces \(length) bytes (limit \(limit))")
        }
        let decompressed = algorithm == .brotli ? brotliDecompress(data, exactLength: length) : zlibDecompress(data, exactLength: length)
        guard let plain = decompressed else {
            throw TLSError(.badCertificate, "CompressedCertificate does not decompress to its \(length) announced bytes")
        }
        return plain
    }

    /// `input` compressed with `algorithm` (one of ``CertificateCompressionAlgorithm/supported``).
    static func compress(_ input: [UInt8], _ algorithm: CertificateCompressionAlgorithm) -> [UInt8]? {
        algorithm == .brotli ? brotliCompress(input) : zlibCompress(input)
    }

    static func zlibCompress(_ input: [UInt8]) -> [UInt8]? {
        var outputLength = compressBound(uLong(input.count))
        var output = [UInt8](repeating: 0, count: Int(outputLength))
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                compress2(out.baseAddress, &outputLength, source.baseAddress, uLong(source.count), Z_BEST_COMPRESSION)
            }
        }
        guard status == Z_OK else { return nil }
        output.removeSubrange(Int(outputLength)...)
        return output
    }

    /// Inflates a zlib stream into a buffer of exactly `exactLength` bytes: more output, less
    /// output, a truncated or corrupt stream or bytes after its end all give `nil`. Memory is
    /// bounded by `exactLength` whatever the input claims.
    static func zlibDecompress(_ input: [UInt8], exactLength: Int) -> [UInt8]? {
        var output = [UInt8](repeating: 0, count: exactLength)
        var outputLength = uLong(exactLength)
        var inputLength = uLong(input.count)
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                uncompress2(out.baseAddress, &outputLength, source.baseAddress, &inputLength)
            }
        }
        guard status == Z_OK, Int(outputLength) == exactLength, Int(inputLength) == input.count else { return nil }
        return output
    }

    /// Brotli at its best quality: a chain is compressed once per configuration (the cache).
    static func brotliCompress(_ input: [UInt8]) -> [UInt8]? {
        var outputLength = BrotliEncoderMaxCompressedSize(input.count)
        guard outputLength > 0 else { return nil }
        var output = [UInt8](repeating: 0, count: outputLength)
        let status = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                BrotliEncoderCompress(BROTLI_MAX_QUALITY, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC,
                                      source.count, source.baseAddress, &outputLength, out.baseAddress)
            }
        }
        guard status == BROTLI_TRUE else { return nil }
        output.removeSubrange(outputLength...)
        return output
    }

    /// Decodes a Brotli stream into a buffer of exactly `exactLength` bytes, with the same
    /// rules as ``zlibDecompress(_:exactLength:)``: more output, less output, a truncated or
    /// corrupt stream or bytes after its end all give `nil`, and memory stays bounded by
    /// `exactLength` (the decoder writes only into that buffer).
    static func brotliDecompress(_ input: [UInt8], exactLength: Int) -> [UInt8]? {
        guard let decoder = BrotliDecoderCreateInstance(nil, nil, nil) else { return nil }
        defer { BrotliDecoderDestroyInstance(decoder) }
        var output = [UInt8](repeating: 0, count: exactLength)
        let (result, inputLeft, outputLeft) = output.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                var availableIn = source.count
                var nextIn = source.baseAddress
                var availableOut = out.count
                var nextOut = out.baseAddress
                let result = BrotliDecoderDecompressStream(decoder, &availableIn, &nextIn, &availableOut, &nextOut, nil)
                return (result, availableIn, availableOut)
            }
        }
        guard result == BROTLI_DECODER_RESULT_SUCCESS, inputLeft == 0, outputLeft == 0 else { return nil }
        return output
    }
}

/// Compressed Certificate bodies, shared by the handshakes of one configuration: a server
/// sends the same chain to every client, so it compresses it once. Bounded: emptied when it
/// would exceed ``capacity`` entries (a configuration has a few chains).
final class CertificateCompressionCache: Sendable {
    private struct Key: Hashable {
        var algorithm: CertificateCompressionAlgorithm
        var body: [UInt8]
    }

    static let capacity = 32
    private let entries = Mutex<[Key: [UInt8]]>([:])

    /// The number of cached bodies.
    var count: Int { entries.withLock { $0.count } }

    /// The compressed form of `body`, computed by `compress` (outside the lock) when not cached.
    func compressed(_ body: [UInt8], algorithm: CertificateCompressionAlgorithm, _ compress: () -> [UInt8]?) -> [UInt8]? {
        let key = Key(algorithm: algorithm, body: body)
        if let hit = entries.withLock({ $0[key] }) { return hit }
        guard let value = compress() else { return nil }
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[key] = value
        }
        return value
    }
}

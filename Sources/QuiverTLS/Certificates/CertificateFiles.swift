#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import QuiverCore

/// Reads the small text files the certificate layer loads (PEM certificates, keys, trust bundles).
enum CertificateFiles {
    /// Files larger than this are refused: no PEM file Quiver reads should come near it.
    static let maximumSize = 16 * 1024 * 1024

    /// Reads the whole file at `path` as UTF-8 text.
    ///
    /// - Throws: ``QuiverError`` with code `.configuration` when the file cannot be opened or read.
    static func readText(_ path: String, what: String) throws(QuiverError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw QuiverError(.configuration, "cannot open \(what) '\(path)': \(errorText(errno))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw QuiverError(.configuration, "cannot read \(what) '\(path)': \(errorText(errno))")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            guard bytes.count <= maximumSize else {
                throw QuiverError(.configuration, "\(what) '\(path)' is larger than \(maximumSize) bytes")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The regular files (following symlinks) in `directory` whose names end in one of `suffixes`, sorted.
    static func files(in directory: String, suffixes: [String]) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix("."), suffixes.contains(where: { name.hasSuffix($0) }) else { continue }
            let path = directory.hasSuffix("/") ? directory + name : directory + "/" + name
            var info = stat()
            guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            names.append(path)
        }
        return names.sorted()
    }

    private static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// Files only their owner may read: private keys.
enum PrivateFile {
    /// Writes `bytes` to `path` with mode 0600. The bytes go to a new file in the same
    /// directory that is created 0600 (`mkstemp`), never readable by others, not even for a
    /// moment, and which then replaces `path` (`rename`): an existing file's looser mode is not
    /// inherited, and a reader never sees half a key.
    static func write(_ bytes: [UInt8], to path: String) throws(CommandError) {
        let directory = (path as NSString).deletingLastPathComponent
        var template = Array(((directory.isEmpty ? "." : directory) + "/.quiver-key-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CommandError("cannot create a file in \(directory.isEmpty ? "." : directory): \(String(cString: strerror(errno)))") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var written = 0
        var failure: Int32 = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                break
            }
            written += n
        }
        if failure == 0, fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0, rename(temporary, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw CommandError("cannot write \(path): \(String(cString: strerror(failure)))")
        }
    }
}

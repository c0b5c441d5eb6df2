import Foundation

/// A temporary directory for files handed to interop peers (certificates, keys), removed at
/// deinit. Test support shared by the test targets; not part of Quiver's API.
public final class TemporaryDirectory: @unchecked Sendable {
    // @unchecked: `path` is immutable; the directory's contents are the test's business.
    /// The directory's path.
    public let path: String

    /// Creates a fresh directory under the system's temporary directory.
    public init() throws {
        path = NSTemporaryDirectory() + "quiver-test-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `text` to `name` in the directory and returns the file's path.
    public func write(_ name: String, _ text: String) throws -> String {
        let file = path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import QuiverCore
import QuiverHTTP3
import Testing

/// `ResponseBody.file(root:path:)`, the file server's only way to the file system (issue 17,
/// item 16): regular files that resolve inside the root, their length from the file opened.
@Suite("ResponseBody.file: what the file server may serve")
struct ResponseBodyTests {
    /// A scratch tree: `base/www` (the root, with `index.html`, 11 bytes), `base/www2/secret`
    /// (a sibling whose name starts with the root's) and `base/outside` (6 bytes).
    private final class Tree {
        let base: String
        var root: String { base + "/www" }

        init() throws {
            base = NSTemporaryDirectory() + "quiver-body-\(getpid())-\(UUID().uuidString)"
            for directory in ["/www/sub", "/www2"] {
                try FileManager.default.createDirectory(atPath: base + directory, withIntermediateDirectories: true)
            }
            try write("/www/index.html", "hello world")
            try write("/www2/secret", "sibling secret")
            try write("/outside", "secret")
        }

        deinit { try? FileManager.default.removeItem(atPath: base) }

        func write(_ path: String, _ text: String) throws { try text.write(toFile: base + path, atomically: false, encoding: .utf8) }
        func link(_ path: String, to target: String) throws { try FileManager.default.createSymbolicLink(atPath: base + path, withDestinationPath: target) }
    }

    private func bytes(_ body: ResponseBody) async throws -> [UInt8] {
        var collected: [UInt8] = []
        try await body.write(chunk: 4) { piece in collected += piece }
        return collected
    }

    @Test("A regular file is served with its length and bytes")
    func regularFile() async throws {
        let tree = try Tree()
        let body = try #require(ResponseBody.file(root: tree.root, path: "/index.html"))
        #expect(body.count == 11)
        #expect(try await bytes(body) == Array("hello world".utf8))
    }

    @Test("Links that leave the root are not followed: absolute, relative, to a sibling sharing the root's prefix, to /etc/passwd")
    func linksOutside() async throws {
        let tree = try Tree()
        try tree.link("/www/absolute", to: tree.base + "/outside")
        try tree.link("/www/relative", to: "../outside")
        try tree.link("/www/sibling", to: "../www2/secret")
        try tree.link("/www/passwd", to: "/etc/passwd")
        try tree.link("/www/up", to: "..")
        for path in ["/absolute", "/relative", "/sibling", "/passwd", "/up/outside", "/up/www2/secret"] {
            #expect(ResponseBody.file(root: tree.root, path: path) == nil, "\(path) was served")
        }
    }

    @Test("A link inside the root is served with the target's length, not the link's")
    func linkInside() async throws {
        let tree = try Tree()
        try tree.write("/www/sub/long.txt", String(repeating: "x", count: 5000))
        try tree.link("/www/short", to: "sub/long.txt")  // the link itself is 12 bytes long
        let body = try #require(ResponseBody.file(root: tree.root, path: "/short"))
        #expect(body.count == 5000)
        #expect(try await bytes(body) == [UInt8](repeating: UInt8(ascii: "x"), count: 5000))
    }

    @Test("A root that is itself reached through a link still serves its files")
    func rootThroughLink() async throws {
        let tree = try Tree()
        try tree.link("/alias", to: "www")
        #expect(ResponseBody.file(root: tree.base + "/alias", path: "/index.html")?.count == 11)
    }

    @Test("Directories, FIFOs, dangling links and dot segments are not found; /N without a file is generated")
    func notFiles() async throws {
        let tree = try Tree()
        #expect(mkfifo(tree.root + "/fifo", 0o600) == 0)
        try tree.link("/www/dangling", to: "nowhere")
        try tree.link("/www/7", to: "/etc/passwd")
        for path in ["/", "/sub", "/sub/", "/fifo", "/dangling", "/../outside", "/./index.html", "/7"] {
            #expect(ResponseBody.file(root: tree.root, path: path) == nil, "\(path) was served")
        }
        let generated = try #require(ResponseBody.file(root: tree.root, path: "/30"))
        #expect(try await bytes(generated) == ResponseBody.generatedBytes(0..<30))
        #expect(ResponseBody.file(root: tree.base + "/missing", path: "/index.html") == nil)
    }

    @Test("The length announced is the one of the file opened, and exactly that many bytes are written")
    func lengthFromOpenedFile() async throws {
        let tree = try Tree()
        let body = try #require(ResponseBody.file(root: tree.root, path: "/index.html"))
        try tree.write("/www/index.html", "hello world, and more")  // replaced after opening
        #expect(body.count == 11)
        #expect(try await bytes(body).count == 11)
    }
}

// quiver cert: private keys 0600 (issue 17, item 21).
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Quiver
import QuiverTestSupport
import Testing

extension QuiverCommandTests {
    // MARK: - Item 21: private keys

    @Test("cert writes key.pem with mode 0600, also over an existing world-readable key.pem")
    func certKeyMode() throws {
        let directory = try TemporaryDirectory()
        let key = directory.path + "/key.pem"
        #expect(FileManager.default.createFile(atPath: key, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644]))
        let process = try run(["cert", "--out", directory.path])
        #expect(process.waitForExit(timeout: 1) == 0, "\(process.transcript)")
        var status = stat()
        #expect(stat(key, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600, "key.pem mode \(String(status.st_mode & 0o777, radix: 8))")
        #expect(try String(contentsOfFile: key, encoding: .utf8).contains("PRIVATE KEY"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()) == ["cert.pem", "key.pem"])
    }
}

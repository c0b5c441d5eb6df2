// What a fresh clone of the repository gives a new user (issue 17, item 23 and the licence of
// item 17): a manifest whose excludes exist, documents that stand on their own, examples that
// end, a licence; and a tool that does not lean on the demos.
import Foundation
import Testing

@Suite("The repository as a fresh clone has it")
struct RepositoryTests {
    /// The package's root directory.
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    private func text(_ path: String) throws -> String { try String(contentsOfFile: Self.root + "/" + path, encoding: .utf8) }

    /// The documents a user reads: README.md, docs/*.md, Demos/README.md.
    private func documents() throws -> [String] {
        let docs = try FileManager.default.contentsOfDirectory(atPath: Self.root + "/docs").filter { $0.hasSuffix(".md") }.map { "docs/" + $0 }
        return ["README.md", "Demos/README.md"] + docs.sorted()
    }

    @Test("Every path Package.swift excludes is tracked by git (no \"Invalid Exclude\" warning in a fresh clone)",
          .enabled(if: FileManager.default.fileExists(atPath: root + "/.git") && ToolPeer.find("git") != nil, "not a git checkout"))
    func excludesExist() throws {
        let manifest = try text("Package.swift")
        // Each `exclude: [...]` belongs to the test target named before it (its directory under Tests/).
        var excluded: [String] = []
        var rest = manifest[...]
        while let range = rest.range(of: "exclude: [") {
            let before = rest[..<range.lowerBound]
            let target = before.components(separatedBy: "Target(").last ?? ""  // .testTarget( or .target(
            let name = target.components(separatedBy: "name: \"").dropFirst().first?.prefix { $0 != "\"" } ?? ""
            let end = rest[range.upperBound...].firstIndex(of: "]") ?? rest.endIndex
            for item in rest[range.upperBound..<end].split(separator: ",") {
                let path = item.trimmingCharacters(in: CharacterSet(charactersIn: " \"\n"))
                if !path.isEmpty { excluded.append("Tests/\(name)/\(path)") }
            }
            rest = rest[end...]
        }
        #expect(!excluded.isEmpty)
        for path in excluded {
            let git = try ChildProcess(try ToolPeer.path("git"), ["-C", Self.root, "ls-files", "--", path])
            #expect(git.waitForExit(timeout: 20) == 0, "\(git.transcript)")
            #expect(!git.standardOutput.isEmpty, "Package.swift excludes \(path), which a fresh clone does not have")
        }
    }

    @Test("The documents do not point to files outside the repository (../shared/…)")
    func documentsStandAlone() throws {
        for document in try documents() {
            for (number, line) in try text(document).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("../shared") || line.contains("shared/design") {
                Issue.record("\(document):\(number + 1) points outside the repository: \(line)")
            }
        }
    }

    @Test("The quiver tool does not build on demo code (Demos/ are self-contained examples)")
    func toolIndependentOfDemos() throws {
        let manifest = try text("Package.swift")
        let tool = try #require(manifest.range(of: "name: \"quiver\"")).upperBound
        let dependencies = manifest[tool...].prefix { $0 != "]" }
        #expect(!dependencies.contains("Demo"), "the quiver target depends on \(dependencies)")
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.root + "/Sources/quiver").filter { $0.hasSuffix(".swift") }
        #expect(!sources.isEmpty)
        for file in sources {
            #expect(!(try text("Sources/quiver/" + file)).contains("import DemoSupport"), "Sources/quiver/\(file) imports demo code")
        }
    }

    @Test("The README's gtlsclient examples exit when their streams close")
    func gtlsclientExamplesExit() throws {
        let lines = try text("README.md").split(separator: "\n").filter { $0.hasPrefix("gtlsclient ") }
        #expect(!lines.isEmpty)
        for line in lines { #expect(line.contains("--exit-on-all-streams-close"), "\(line)") }
    }

    @Test("The repository has the Apache License 2.0, and the README names it")
    func licence() throws {
        let licence = try text("LICENSE")
        #expect(licence.contains("Apache License") && licence.contains("Version 2.0, January 2004"))
        #expect(licence.contains("END OF TERMS AND CONDITIONS"))
        #expect(try text("README.md").contains("Apache License 2.0"))
    }
}

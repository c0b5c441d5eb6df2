// swift-tools-version:6.0
// libFuzzer targets for Quiver's wire parsers. A separate package so that plain
// `swift build` / `swift test` of the main package are unaffected. Build and run with
// `Fuzz/run.sh` (see Fuzz/README.md); the targets only work with `--sanitize=fuzzer`.
import PackageDescription

let package = Package(
    name: "QuiverFuzz",
    dependencies: [
        .package(name: "Quiver", path: ".."),
        // FuzzSCTP computes SCTP-AUTH HMACs itself; the version the main package pins.
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
    ],
    targets: [
        // Declares libFuzzer's LLVMFuzzerRunDriver for Swift (no code of its own).
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "FuzzPacketHeader",
            dependencies: ["FuzzDriver", .product(name: "QuiverCore", package: "Quiver"), .product(name: "QuiverQUIC", package: "Quiver")]
        ),
        .executableTarget(
            name: "FuzzFrames",
            dependencies: ["FuzzDriver", .product(name: "QuiverCore", package: "Quiver"), .product(name: "QuiverQUIC", package: "Quiver")]
        ),
        .executableTarget(
            name: "FuzzTransportParameters",
            dependencies: ["FuzzDriver", .product(name: "QuiverQUIC", package: "Quiver")]
        ),
        .executableTarget(
            name: "FuzzTLS",
            dependencies: ["FuzzDriver", .product(name: "QuiverCore", package: "Quiver"), .product(name: "QuiverTLS", package: "Quiver")]
        ),
        .executableTarget(
            name: "FuzzSCTP",
            dependencies: [
                "FuzzDriver", .product(name: "QuiverCore", package: "Quiver"), .product(name: "QuiverSCTP", package: "Quiver"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

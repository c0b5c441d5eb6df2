// swift-tools-version:6.0
// Benchmarks live in their own package so `swift build`/`swift test` of Quiver stay lean.
// Run: swift run -c release --package-path Benchmarks quic-packet-bench
import PackageDescription

let package = Package(
    name: "QuiverBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Quiver", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        // BoringSSL, for the DTLS 1.3 peer server (boring-dtls-server).
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
    ],
    targets: [
        .target(name: "CMallocCounter"),
        .target(name: "CPrecisePoll"),
        .executableTarget(
            name: "quic-packet-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "QuiverQUIC", package: "Quiver"),
                .product(name: "QuiverTLS", package: "Quiver"),
                .product(name: "QuiverCore", package: "Quiver"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "udp-bench",
            dependencies: [
                "CMallocCounter",
                .product(name: "QuiverUDP", package: "Quiver"),
                .product(name: "QuiverCore", package: "Quiver"),
            ]
        ),
        .executableTarget(
            name: "quic-sim-bench",
            dependencies: [
                .product(name: "QuiverQUIC", package: "Quiver"),
                .product(name: "QuiverQUICSim", package: "Quiver"),
                .product(name: "QuiverNetSim", package: "Quiver"),
                .product(name: "QuiverTLS", package: "Quiver"),
                .product(name: "QuiverCore", package: "Quiver"),
            ]
        ),
        .executableTarget(
            name: "buffer-bench",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "QuiverCore", package: "Quiver"),
            ]
        ),
        .executableTarget(
            name: "boring-dtls-server",
            dependencies: [.product(name: "NIOSSL", package: "swift-nio-ssl")]
        ),
        .executableTarget(
            name: "quiver-bench",
            dependencies: [
                "CPrecisePoll",
                .product(name: "Quiver", package: "Quiver"),
                .product(name: "QuiverQUIC", package: "Quiver"),
                .product(name: "QuiverTLS", package: "Quiver"),
                .product(name: "QuiverUDP", package: "Quiver"),
                .product(name: "QuiverCore", package: "Quiver"),
                .product(name: "QuiverSCTP", package: "Quiver"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// swift-tools-version:6.0
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Quiver",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "QuiverCore", targets: ["QuiverCore"]),
        .library(name: "QuiverTLS", targets: ["QuiverTLS"]),
        .library(name: "QuiverQUIC", targets: ["QuiverQUIC"]),
        .library(name: "QuiverTLSSocket", targets: ["QuiverTLSSocket"]),
        .library(name: "QuiverNetSim", targets: ["QuiverNetSim"]),
        .library(name: "QuiverQUICSim", targets: ["QuiverQUICSim"]),
        .library(name: "QuiverUDP", targets: ["QuiverUDP"]),
        .library(name: "QuiverSCTP", targets: ["QuiverSCTP"]),
        .library(name: "Quiver", targets: ["Quiver"]),
        .library(name: "QuiverHTTP3", targets: ["QuiverHTTP3"]),
        .library(name: "QuiverNIO", targets: ["QuiverNIO"]),
        .library(name: "QuiverHummingbird", targets: ["QuiverHummingbird"]),
        .executable(name: "quiver", targets: ["quiver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", exact: "1.5.0"),
    ],
    targets: [
        .target(name: "QuiverCore", swiftSettings: strict),
        // Context-reusing AEAD and AES/ChaCha20 blocks over the BoringSSL swift-crypto links in.
        .target(name: "CQuiverCrypto", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The system zlib, for certificate compression (RFC 8879); Debian: zlib1g-dev.
        .systemLibrary(name: "CQuiverZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "CQuiverBrotli", pkgConfig: "libbrotlienc", providers: [.apt(["libbrotli-dev"]), .brew(["brotli"])]),
        .target(
            name: "QuiverTLS",
            dependencies: [
                "QuiverCore", "CQuiverCrypto", "CQuiverZlib", "CQuiverBrotli",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QuiverQUIC",
            dependencies: [
                "QuiverCore", "QuiverTLS", "CQuiverCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(name: "QuiverNetSim", dependencies: ["QuiverCore"], swiftSettings: strict),
        .target(
            name: "QuiverSCTP",
            dependencies: ["QuiverCore", "QuiverTLS", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(name: "QuiverQUICSim", dependencies: ["QuiverCore", "QuiverQUIC", "QuiverNetSim"], swiftSettings: strict),
        .target(name: "QuiverTestSupport", swiftSettings: strict),  // shared by the test targets only
        // Counts heap allocations per thread (it stands in for malloc): for the test executable only.
        .target(name: "CQuiverAllocationCounter"),
        .target(name: "CQuiverUDP"),  // sendmmsg/recvmmsg and CMSG_* shims (Glibc lacks them)
        .target(name: "QuiverUDP", dependencies: ["QuiverCore", "CQuiverUDP"], swiftSettings: strict),
        .target(
            name: "QuiverTLSSocket",
            dependencies: ["QuiverCore", "QuiverTLS"],
            swiftSettings: strict
        ),
        .target(name: "CQuiverPoll"),  // epoll and eventfd shims (Glibc lacks them)
        .target(
            name: "Quiver",
            dependencies: [
                "QuiverCore", "QuiverTLS", "QuiverQUIC", "QuiverUDP", "QuiverTLSSocket", "QuiverSCTP", "CQuiverPoll",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "QuiverHTTP3",
            dependencies: [
                "Quiver", "QuiverCore",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        // HTTP/3 for Hummingbird 2: a router or any responder served by QuiverHTTP3.
        .target(
            name: "QuiverHummingbird",
            dependencies: [
                "Quiver", "QuiverHTTP3",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // The bridge between SwiftNIO channels (which own the sockets) and listeners on memory pairs.
        .target(
            name: "QuiverNIO",
            dependencies: [
                "Quiver", "QuiverCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "quiver",
            dependencies: [
                "Quiver", "QuiverCore", "QuiverTLS", "QuiverTLSSocket", "QuiverHTTP3", "QuiverUDP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // The DDD demos (Demos/README.md).
        .target(
            name: "DemoSupport",
            dependencies: ["Quiver", "QuiverCore", "QuiverTLS", "QuiverTLSSocket", "QuiverUDP",
                           .product(name: "Logging", package: "swift-log")],
            path: "Demos/DemoSupport", swiftSettings: strict),
        .executableTarget(name: "ddd-01-fork", dependencies: ["DemoSupport", "Quiver"], path: "Demos/ddd-01-fork", swiftSettings: strict),
        .executableTarget(
            name: "ddd-02-prefork", dependencies: ["DemoSupport", "Quiver", "QuiverTLSSocket", "QuiverUDP"],
            path: "Demos/ddd-02-prefork", swiftSettings: strict),
        .executableTarget(name: "ddd-03-mt", dependencies: ["DemoSupport", "Quiver"], path: "Demos/ddd-03-mt", swiftSettings: strict),
        .executableTarget(name: "ddd-04-async", dependencies: ["DemoSupport", "Quiver", "QuiverCore"], path: "Demos/ddd-04-async", swiftSettings: strict),
        .executableTarget(name: "ddd-04b-async-await", dependencies: ["DemoSupport", "Quiver"], path: "Demos/ddd-04b-async-await", swiftSettings: strict),
        .executableTarget(name: "ddd-07-dtls", dependencies: ["DemoSupport", "Quiver"], path: "Demos/ddd-07-dtls", swiftSettings: strict),
        .executableTarget(name: "ddd-08-sctp", dependencies: ["DemoSupport", "Quiver"], path: "Demos/ddd-08-sctp", swiftSettings: strict),
        .executableTarget(
            name: "ddd-05-async-nonpollable",
            dependencies: ["DemoSupport", "Quiver", "QuiverCore", "QuiverNIO",
                           .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "NIOPosix", package: "swift-nio")],
            path: "Demos/ddd-05-async-nonpollable", swiftSettings: strict),
        .testTarget(name: "QuiverCoreTests", dependencies: ["QuiverCore"], swiftSettings: strict),
        .testTarget(
            name: "QuiverQUICTests",
            dependencies: [
                "QuiverCore", "QuiverTLS", "QuiverQUIC",
                .product(name: "Crypto", package: "swift-crypto"),  // the oracle for the packet crypto
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "QuiverConnectionTests",
            dependencies: [
                "Quiver", "QuiverCore", "QuiverTLS", "QuiverQUIC", "QuiverNetSim", "QuiverQUICSim", "QuiverUDP", "QuiverTestSupport",
                "QuiverNIO", "QuiverHTTP3", "CQuiverAllocationCounter",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            // Run by the aioquic interop tests and the example's test, not built.
            exclude: ["Interop/aioquic_peer.py", "Interop/aioquic_h3_peer.py", "Examples/aioquic_h3_request.py"],
            swiftSettings: strict),
        .testTarget(
            name: "QuiverTests",
            dependencies: ["Quiver", "QuiverCore", "QuiverTLS", "QuiverQUIC", "QuiverUDP", "QuiverTLSSocket", "QuiverHTTP3",
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "CoreMetrics", package: "swift-metrics"),
                           .product(name: "MetricsTestKit", package: "swift-metrics")],
            swiftSettings: strict),
        .testTarget(name: "QuiverNetSimTests", dependencies: ["QuiverCore", "QuiverNetSim"], swiftSettings: strict),
        .testTarget(name: "QuiverUDPTests", dependencies: ["QuiverCore", "QuiverUDP"], swiftSettings: strict),
        .testTarget(
            name: "QuiverSCTPTests",
            dependencies: ["QuiverCore", "QuiverSCTP", "QuiverNetSim", "QuiverUDP", "QuiverTestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "QuiverTLSTests",
            dependencies: [
                "QuiverCore", "QuiverTLS", "QuiverTLSSocket", "QuiverTestSupport", "QuiverSCTP",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

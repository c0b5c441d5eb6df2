// swift-tools-version:6.0
import PackageDescription

// HTTP/3 for a Hummingbird 2 application with Quiver: the same routes on TCP (HTTP/1.1, with an
// Alt-Svc header advertising h3) and on UDP (HTTP/3). Built against this checkout of Quiver.
let package = Package(
    name: "hummingbird-http3",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Quiver", path: "../.."),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "hummingbird-http3",
            dependencies: [
                .product(name: "Quiver", package: "Quiver"),
                .product(name: "QuiverHummingbird", package: "Quiver"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)

// swift-tools-version: 6.1
import PackageDescription

// Shared settings: Swift 6 language mode (strict concurrency is an error) and the upcoming
// features the style guide asks for.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

// The sample loops of the audio core and of the test-signal generator run hundreds of millions
// of iterations in tests; unoptimised they would make the test suite crawl. Optimise these two
// modules even in debug builds (tests still build with testability).
let optimisedInDebug: [SwiftSetting] = swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "callrec",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "callrec", targets: ["callrec"]),
        .library(name: "CallAudio", targets: ["CallAudio"]),
        .library(name: "CallAPI", targets: ["CallAPI"]),
        .library(name: "CallPipeline", targets: ["CallPipeline"]),
        // Synthetic audio and helpers for tests and for bench/ (not for applications).
        .library(name: "CallTesting", targets: ["CallTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
    ],
    targets: [
        // C libraries, through system-library targets: a modulemap and a one-include shim each.
        .systemLibrary(name: "CCallSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CCallLame", pkgConfig: "lame", providers: [.apt(["libmp3lame-dev"])]),
        .systemLibrary(name: "CCallSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),

        // decode · validate · encode · chunk · transcode (no network, no database)
        .target(
            name: "CallAudio",
            dependencies: [
                "CCallSndFile", "CCallLame", "CCallSoxr",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: optimisedInDebug
        ),
        // Pipedrive / Telnyx / VoipNow models and clients (no audio)
        .target(
            name: "CallAPI",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The local API emulator (Pipedrive CallLogs, Telnyx recordings, VoipNow call events).
        // Never imports CallAPI: it is the independent peer the client is tested against.
        .target(
            name: "CallSandbox",
            dependencies: [
                "CallAudio",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // scan, fingerprint, sidecars, the per-recording pipeline and batch runner
        .target(
            name: "CallPipeline",
            dependencies: [
                "CallAudio", "CallAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // test support: synthetic audio, fixtures, process helpers
        .target(name: "CallTesting", dependencies: ["CallAudio", "CCallSndFile"], swiftSettings: optimisedInDebug),
        // the CLI: argument parsing and wiring only
        .executableTarget(
            name: "callrec",
            dependencies: [
                "CallPipeline", "CallAudio", "CallAPI", "CallSandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "CallAudioTests", dependencies: ["CallAudio", "CallTesting"], swiftSettings: swiftSettings),
        .testTarget(
            name: "CallAPITests",
            dependencies: [
                "CallAPI", "CallSandbox", "CallTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallSandboxTests",
            dependencies: [
                "CallSandbox", "CallTesting", "CallAudio",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallPipelineTests",
            dependencies: ["CallPipeline", "CallAudio", "CallTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "callrecTests", dependencies: ["CallTesting", "CallAudio"], swiftSettings: swiftSettings),
    ]
)

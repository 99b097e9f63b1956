// swift-tools-version: 6.1
import PackageDescription

// Shared settings: Swift 6 language mode (strict concurrency is an error) and the upcoming
// features the style guide asks for.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // Imports say what a module exposes (`public import`) and what each file uses.
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
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
        // bench/ and process tests only: the benchmarks' plumbing, kept out of `callrec`.
        .executable(name: "callrec-bench", targets: ["callrec-bench"]),
        // tests and bench/ only: writes FreePBX, 3CX and FusionPBX trees and CDRs as a live PBX would
        .executable(name: "callrec-pbx-sim", targets: ["callrec-pbx-sim"]),
        .executable(name: "callrec-webhook-load", targets: ["callrec-webhook-load"]),
        .library(name: "CallApp", targets: ["CallApp"]),
        .library(name: "CallConsole", targets: ["CallConsole"]),
        .library(name: "CallAudio", targets: ["CallAudio"]),
        .library(name: "CallAPI", targets: ["CallAPI"]),
        .library(name: "CallJobs", targets: ["CallJobs"]),
        .library(name: "CallPipeline", targets: ["CallPipeline"]),
        .library(name: "CallStore", targets: ["CallStore"]),
        .library(name: "CallStoreSQLite", targets: ["CallStoreSQLite"]),
        .library(name: "CallStorePostgres", targets: ["CallStorePostgres"]),
        .library(name: "CallPhone", targets: ["CallPhone"]),
        .library(name: "CallMatch", targets: ["CallMatch"]),
        .library(name: "CallSources", targets: ["CallSources"]),
        .library(name: "CallTelnyx", targets: ["CallTelnyx"]),
        // fuzz/ only (the multipart parser's harness): the API emulator, not for applications
        .library(name: "CallSandbox", targets: ["CallSandbox"]),
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
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.25.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // C libraries, through system-library targets: a modulemap and a one-include shim each.
        .systemLibrary(name: "CCallSndFile", pkgConfig: "sndfile", providers: [.apt(["libsndfile1-dev"])]),
        .systemLibrary(name: "CCallLame", pkgConfig: "lame", providers: [.apt(["libmp3lame-dev"])]),
        .systemLibrary(name: "CCallSoxr", pkgConfig: "soxr", providers: [.apt(["libsoxr-dev"])]),
        // Keeps libmpg123 (libsndfile's MP3 decoder) off the user's terminal: every handle made in
        // the process gets MPG123_QUIET (see the C file). libmpg123-dev comes with libsndfile1-dev.
        .target(name: "CCallQuietMPG123", linkerSettings: [.linkedLibrary("mpg123", .when(platforms: [.linux])), .linkedLibrary("dl", .when(platforms: [.linux]))]),

        // libphonenumber (C++, Debian's libphonenumber-dev, which ships no .pc file) behind a C
        // interface: Swift sees plain C functions, never C++.
        .target(
            name: "CCallPhoneNumber",
            linkerSettings: [.linkedLibrary("phonenumber", .when(platforms: [.linux])), .linkedLibrary("protobuf", .when(platforms: [.linux]))]
        ),
        // phone numbers to E.164 through CCallPhoneNumber (the PBX sources, and call matching)
        .target(name: "CallPhone", dependencies: ["CCallPhoneNumber"], swiftSettings: swiftSettings),
        // the matching rules: a call's other party, a number's candidates in the CRM index → what
        // the call log links and why, its owner (pure: the index's types, no store, no network)
        .target(name: "CallMatch", dependencies: ["CallStore", "CallPhone", "CallAPI"], swiftSettings: swiftSettings),
        // what a PBX leaves behind, read: file-name layouts, CDR exports, the call's facts and the
        // call log made from them (pure: no store, no audio, no network)
        .target(
            name: "CallSources",
            dependencies: ["CallPhone", "CallAPI", "CallSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // what Telnyx tells about a call, read: signed webhooks verified, events parsed, the call's
        // facts and the recording's identity (pure: no store, no network)
        .target(
            name: "CallTelnyx",
            dependencies: ["CallSources", "CallPhone", "CallAPI", "CallSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),

        // what every layer shares: the one backoff rule, Duration units, the one wake-up primitive
        .target(name: "CallSupport", swiftSettings: swiftSettings),

        // decode · validate · encode · chunk · transcode (no network, no database)
        .target(
            name: "CallAudio",
            dependencies: [
                "CCallSndFile", "CCallLame", "CCallSoxr", "CCallQuietMPG123",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: optimisedInDebug
        ),
        // Pipedrive / Telnyx / VoipNow models and clients (no audio)
        .target(
            name: "CallAPI",
            dependencies: [
                "CallSupport",
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
        // Never imports CallAPI nor CallAudio: it is the independent peer the client is tested
        // against (it reads MPEG frame headers itself to check an upload).
        .target(
            name: "CallSandbox",
            dependencies: [
                "CallSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // the ledger and the job queue: model and protocol (no database code)
        .target(
            name: "CallStore",
            dependencies: ["CallSupport", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            swiftSettings: swiftSettings
        ),
        // the embedded default backend: SQLite through GRDB
        .target(
            name: "CallStoreSQLite",
            dependencies: [
                "CallStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // the shared backend: PostgreSQL through postgres-nio
        .target(
            name: "CallStorePostgres",
            dependencies: [
                "CallStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // the job runner: the worker (slots, leases, heartbeats, rescue, shutdown), the handler
        // protocol, typed queue and kind names, outcomes (no domain work: no audio, no API)
        .target(
            name: "CallJobs",
            dependencies: [
                "CallStore", "CallSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // scan, fingerprint, sidecars, the per-recording pipeline, batch runner and job handlers
        .target(
            name: "CallPipeline",
            dependencies: [
                "CallAudio", "CallAPI", "CallStore", "CallJobs", "CallSources", "CallSupport", "CallTelnyx", "CallMatch",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // test support: synthetic audio, fixtures, process helpers
        .target(name: "CallTesting", dependencies: ["CallAudio", "CallSupport", "CCallSndFile", .product(name: "Logging", package: "swift-log")],
                swiftSettings: optimisedInDebug),
        // the operator's console: server-side rendered pages over the ledger and the queue (Mustache
        // templates compiled in, no external assets), its audio endpoint and its audited actions
        .target(
            name: "CallConsole",
            dependencies: [
                "CallStore", "CallPipeline", "CallJobs", "CallAudio", "CallSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // what the commands do, composed from the layers below: opening the store, the API
        // clients, the upload run, deletions, reconcile passes, the worker and its services
        .target(
            name: "CallApp",
            dependencies: [
                "CallPipeline", "CallJobs", "CallAudio", "CallAPI", "CallSandbox", "CallStore", "CallStoreSQLite", "CallStorePostgres",
                "CallSources", "CallPhone", "CallTelnyx", "CallMatch", "CallConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // the CLI: argument parsing, output and exit codes only
        .executableTarget(
            name: "callrec",
            dependencies: [
                "CallApp", "CallPipeline", "CallJobs", "CallAudio", "CallAPI", "CallSandbox", "CallStore", "CallSources", "CallTelnyx", "CallMatch",
                "CallConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // the benchmarks' plumbing (bench/*.sh, the worker process tests): not in `callrec`
        .executableTarget(
            name: "callrec-bench",
            dependencies: [
                "CallApp", "CallPipeline", "CallJobs", "CallAPI", "CallStore", "CallSources", "CallTesting", "CallMatch", "CallSandbox",
                "CallStoreSQLite", "CallStorePostgres", "CallSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "bench/Tools/callrec-bench",
            swiftSettings: swiftSettings
        ),
        // the PBX simulator (tests and bench/watch.sh): synthetic calls written as a PBX writes them
        .executableTarget(
            name: "callrec-pbx-sim",
            dependencies: [
                "CallTesting", "CallSources", "CallPhone", "CallAudio",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "bench/Tools/pbx-sim",
            swiftSettings: swiftSettings
        ),
        // the webhook load generator (bench/webhooks.sh): signed Telnyx events at a fixed rate
        .executableTarget(
            name: "callrec-webhook-load",
            dependencies: [
                "CallTelnyx",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "bench/Tools/webhook-load",
            swiftSettings: swiftSettings
        ),

        .testTarget(name: "CallAudioTests", dependencies: ["CallAudio", "CallTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "CallTelnyxTests", dependencies: ["CallTelnyx", "CallSources", "CallPhone", "CallAPI", "CallTesting",
                                                            .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "CallPhoneTests", dependencies: ["CallPhone", "CallTesting"], swiftSettings: swiftSettings),
        .testTarget(name: "CallMatchTests", dependencies: ["CallMatch", "CallStore", "CallPhone", "CallAPI"], swiftSettings: swiftSettings),
        .testTarget(name: "CallSourcesTests", dependencies: ["CallSources", "CallPhone", "CallAPI", "CallTesting"],
                    swiftSettings: swiftSettings),
        .testTarget(
            name: "CallAPITests",
            dependencies: [
                "CallAPI", "CallSupport", "CallSandbox", "CallTesting",
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
                "CallSandbox", "CallTesting", "CallAudio", "CallTelnyx",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallStoreTests",
            dependencies: [
                "CallStore", "CallStoreSQLite", "CallStorePostgres", "CallTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallJobsTests",
            dependencies: [
                "CallJobs", "CallStore", "CallStoreSQLite", "CallTesting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallPipelineTests",
            dependencies: [
                "CallPipeline", "CallJobs", "CallAudio", "CallTesting", "CallStore", "CallStoreSQLite", "CallStorePostgres",
                "CallAPI", "CallSandbox", "CallTelnyx", "CallSources",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallAppTests",
            dependencies: ["CallApp", "CallAPI", "CallStore", "CallStoreSQLite", "CallStorePostgres", "CallTelnyx", "CallSandbox", "CallTesting", "CallMatch",
                           .product(name: "Logging", package: "swift-log"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CallConsoleTests",
            dependencies: ["CallConsole", "CallStore", "CallStoreSQLite", "CallTesting"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "callrecTests",
            dependencies: ["CallTesting", "CallAudio", "CallStore", "CallStoreSQLite", "CallStorePostgres", "CallTelnyx",
                           .product(name: "Crypto", package: "swift-crypto"), .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)

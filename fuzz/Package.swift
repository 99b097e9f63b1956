// swift-tools-version: 6.1
import PackageDescription

// libFuzzer harnesses for callrec's parsers of untrusted bytes, one executable per parser.
// A separate package (like bench/) so the sanitizer build never touches callrec's own .build:
// scripts/fuzz.sh builds it into .build-fuzz with SwiftPM's fuzzer sanitizer, address sanitizer
// and coverage instrumentation, then runs every harness on its seed corpus (fuzz/corpus/NAME/).
let package = Package(
    name: "callrec-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "callrec", path: ".."),
    ],
    targets: [
        // what several harnesses share: the scratch file a path-reading parser is given, the input split
        .target(name: "FuzzSupport"),
        // sidecar JSON (call-17.json beside call-17.wav)
        .executableTarget(name: "FuzzSidecar", dependencies: ["FuzzSupport", .product(name: "CallPipeline", package: "callrec")]),
        // CDR exports: Asterisk Master.csv, FreePBX and FusionPBX CSV
        .executableTarget(name: "FuzzCDR", dependencies: ["FuzzSupport", .product(name: "CallSources", package: "callrec")]),
        // the PBXs' recording file names (FreePBX, 3CX, FusionPBX)
        .executableTarget(name: "FuzzNames", dependencies: ["FuzzSupport", .product(name: "CallSources", package: "callrec")]),
        // the container sniffer and the WAV header salvage (before libsndfile sees a byte)
        .executableTarget(name: "FuzzContainer", dependencies: ["FuzzSupport", .product(name: "CallAudio", package: "callrec")]),
        // the MPEG Layer III frame counter
        .executableTarget(name: "FuzzMPEG", dependencies: ["FuzzSupport", .product(name: "CallAudio", package: "callrec")]),
        // Telnyx webhook events
        .executableTarget(name: "FuzzTelnyx", dependencies: ["FuzzSupport", .product(name: "CallTelnyx", package: "callrec")]),
        // the sandbox's streaming multipart/form-data parser
        .executableTarget(name: "FuzzMultipart", dependencies: ["FuzzSupport", .product(name: "CallSandbox", package: "callrec")]),
    ]
)

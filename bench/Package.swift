// swift-tools-version: 6.1
import PackageDescription

// package-benchmark suites for callrec's audio core (decode, validate, encode, chunk planning).
// A separate package so the benchmark plugin and its dependencies stay out of callrec's graph.
// Run from the repository root: swift package --package-path bench benchmark
let package = Package(
    name: "callrec-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "callrec", path: ".."),
        .package(url: "https://github.com/ordo-one/package-benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "AudioBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                .product(name: "CallAudio", package: "callrec"),
                .product(name: "CallTesting", package: "callrec"),
            ],
            path: "Benchmarks/AudioBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "package-benchmark")]
        ),
    ]
)

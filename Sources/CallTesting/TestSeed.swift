public import Foundation

/// Random choices a test can replay: a SplitMix64 generator seeded from `CALLREC_TEST_SEED` when
/// it is set, else from a seed chosen now. The seed is printed with the test's name, so a
/// failure's log says how to run the same choices again
/// (`CALLREC_TEST_SEED=<seed> swift test --filter <test>`).
public struct TestSeed: RandomNumberGenerator, Sendable {
    /// The seed the choices come from.
    public let seed: UInt64
    private var generator: SplitMix64

    /// - Parameter test: the test's name, printed with the seed.
    public init(_ test: String, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let given = environment["CALLREC_TEST_SEED"].flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
        seed = given ?? UInt64.random(in: 0...UInt64.max)
        generator = SplitMix64(seed: seed)
        print("\(test): random choices from seed \(seed) (replay with CALLREC_TEST_SEED=\(seed))")
    }

    public mutating func next() -> UInt64 { generator.next() }
}

/// SplitMix64: a small deterministic generator, so that a seed replays the same choices (tests,
/// the PBX simulator).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    public mutating func chance(_ p: Double) -> Bool { p > 0 && unit() < p }
    public mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    public mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
}

import Foundation

/// Exponential backoff with jitter, the one retry-delay rule of callrec:
/// `min(cap, base·2^(n−1)) · U(jitter)`.
///
/// The queue's default jitter is ±25 % around the delay (`0.75…1.25`: workers that failed
/// together do not retry together); the API clients use the upper half of full jitter
/// (`0.5…1.0`: never longer than the cap).
public struct Backoff: Sendable {
    public var base: Duration
    public var cap: Duration
    /// The factor the capped delay is multiplied by, drawn uniformly from this range.
    public var jitter: ClosedRange<Double>
    /// Returns a uniform value in 0..<1; injectable for tests.
    public var random: @Sendable () -> Double

    public init(base: Duration = .seconds(30), cap: Duration = .seconds(3600), jitter: ClosedRange<Double> = 0.75...1.25,
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self.random = random
    }

    /// The wait after failed attempt `attempt` (1 = the first attempt failed).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponent = min(max(attempt - 1, 0), 60)
        let raw = min(base.seconds, 1e9) * pow(2, Double(exponent))
        let capped = min(raw, cap.seconds)
        let factor = jitter.lowerBound + (jitter.upperBound - jitter.lowerBound) * random()
        return .seconds(capped * factor)
    }
}

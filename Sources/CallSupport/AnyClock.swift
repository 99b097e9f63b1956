/// Any `Clock` whose durations are `Duration`, behind one concrete type: for code that keeps
/// time but is not generic over its clock (an actor every client of a credential shares, a
/// configuration value). Production code passes `ContinuousClock()`, tests a clock they move by
/// hand; the code under test reads ``now`` and sleeps on it, and never asks which it is.
///
/// Its instants count from the moment it was made (``ElapsedInstant/offset``), so instants of two
/// `AnyClock`s made at different times must not be compared.
public struct AnyClock: Clock {
    public typealias Instant = ElapsedInstant

    private let elapsed: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration, Duration?) async throws -> Void
    public let minimumResolution: Duration

    /// Wraps `clock` (an `AnyClock` is taken as it is).
    public init<C: Clock>(_ clock: C) where C.Duration == Duration {
        if let same = clock as? AnyClock {
            self = same
            return
        }
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleeper = { offset, tolerance in try await clock.sleep(until: origin.advanced(by: offset), tolerance: tolerance) }
        minimumResolution = clock.minimumResolution
    }

    /// The process's monotonic clock.
    public static var continuous: AnyClock { AnyClock(ContinuousClock()) }

    public var now: Instant { Instant(offset: elapsed()) }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        try await sleeper(deadline.offset, tolerance)
    }
}

/// An instant as the time since its clock was made: the instants of ``AnyClock`` and of a test's
/// manual clock.
public struct ElapsedInstant: InstantProtocol, CustomStringConvertible {
    /// Time since the clock was made.
    public var offset: Duration

    public init(offset: Duration) { self.offset = offset }
    public func advanced(by duration: Duration) -> ElapsedInstant { ElapsedInstant(offset: offset + duration) }
    public func duration(to other: ElapsedInstant) -> Duration { other.offset - offset }
    public static func < (lhs: ElapsedInstant, rhs: ElapsedInstant) -> Bool { lhs.offset < rhs.offset }
    public var description: String { "t+\(offset)" }
    public static func + (lhs: ElapsedInstant, rhs: Duration) -> ElapsedInstant { lhs.advanced(by: rhs) }
    public static func - (lhs: ElapsedInstant, rhs: ElapsedInstant) -> Duration { rhs.duration(to: lhs) }
}

import CallSupport
public import Foundation
import Synchronization

/// A clock that moves only when a test says so (as Hummingbird's `MockClock` in its tests): time
/// in tests is a parameter, not a wait.
///
/// Give it to the code under test (a worker, a store, the limiter), let that code reach its
/// sleep (``waitForSleepers(_:timeout:)``), then ``advance(by:)``: every sleep whose deadline
/// has come returns, in deadline order. ``date`` is the same time as a `Date`, for code that
/// stamps rows (a store's `now`), starting at ``start``.
public final class ManualClock: Clock, Sendable {
    /// Its instants count from the moment it was made (``ElapsedInstant/offset``).
    public typealias Instant = ElapsedInstant

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [UInt64: Sleeper] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    /// What ``date`` is at the clock's start.
    public let start: Date

    public init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        self.start = start
    }

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Duration { .zero }

    /// ``now`` as a date.
    public var date: Date { start.addingTimeInterval(now.offset.seconds) }

    /// Tasks sleeping on this clock now.
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// The earliest deadline of a sleeping task.
    public var nextDeadline: Instant? { state.withLock { $0.sleepers.values.map(\.deadline).min() } }

    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let result = state.withLock { state -> Result<Void, any Error>? in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if deadline <= state.now { return .success(()) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return nil
                }
                if let result { continuation.resume(with: result) }
            }
        } onCancel: {
            let sleeper = state.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves the clock on; every sleep whose deadline has come returns (earliest first).
    public func advance(by duration: Duration) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers[id] = nil }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Moves the clock to the earliest deadline of a sleeping task (none: nothing moves).
    public func advanceToNextDeadline() {
        guard let next = nextDeadline else { return }
        advance(by: max(.zero, now.duration(to: next)))
    }

    /// Waits, in real time and for at most `timeout`, until at least `count` tasks sleep on
    /// this clock (the code under test reached its waits). Returns whether they did.
    @discardableResult
    public func waitForSleepers(_ count: Int, timeout: Duration = .seconds(60)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while sleepers < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }
}

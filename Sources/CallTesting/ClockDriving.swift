// The clock types tests use (ElapsedInstant, Duration.seconds) come with the test support.
@_exported import CallSupport

extension ManualClock {
    /// Runs `body` while moving the clock on to the next deadline whenever the code under test
    /// sleeps on it, until `body` returns: for code whose waits are many and mixed with real I/O
    /// (requests over loopback through a limiter, retries after 429s), so that a test covers
    /// seconds of windows and pauses without waiting for them. Time only ever jumps to a deadline
    /// someone sleeps until; what the code does between its waits takes no time on the clock.
    ///
    /// After `timeout` of real time the clock is left alone (a hung `body` then shows as the
    /// test's own time limit, not as a clock racing on).
    public func driving<T>(timeout: Duration = .seconds(120), _ body: () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                let deadline = ContinuousClock.now + timeout
                while !Task.isCancelled, ContinuousClock.now < deadline {
                    if sleepers > 0 { advanceToNextDeadline() }
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
            defer { group.cancelAll() }
            return try await body()
        }
    }
}

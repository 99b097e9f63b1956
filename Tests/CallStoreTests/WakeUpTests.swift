import CallSupport
import Testing

/// The one wake-up primitive: an event's signal is taken by one wait; a state's (`keepsSignal`)
/// lets every wait through until it is reset.
@Suite struct WakeUpTests {
    /// An event: a signal no one waited for is kept for the next wait only.
    @Test(.timeLimit(.minutes(1))) func anEventsSignalIsTakenByTheNextWait() async throws {
        let wake = WakeUp()
        wake.signal()
        await wake.wait()  // returns at once: the kept signal
        let waiter = Task { await wake.wait() }
        try await untilWaits(wake, count: 1)
        #expect(wake.waiting == 1, "the signal was taken: the second wait waits")
        wake.signal()
        await waiter.value
        #expect(wake.waiting == 0)
    }

    /// A state ("the listener is up"): a PostgreSQL store's waits each check the state, then wait
    /// for its signal. When the state was set between a wait's check and its registration, that
    /// wait must not wait for a signal that came already. With one flag that the first wait took,
    /// 19 of 20 such waits sat to their timeout (CI: `waitsLeaveNoWaiterBehind`, "1 of 20 waiters").
    @Test(.timeLimit(.minutes(1))) func aStatesSignalLetsEveryLaterWaitThroughUntilReset() async throws {
        let up = WakeUp(keepsSignal: true)
        up.signal()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<20 { group.addTask { await up.wait() } }
        }
        #expect(up.waiting == 0)
        // Reset (the listener lost its connection): waits wait again, and the next signal wakes
        // every one of them.
        up.reset()
        let waiters = (0..<5).map { _ in Task { await up.wait() } }
        try await untilWaits(up, count: 5)
        up.signal()
        for waiter in waiters { await waiter.value }
        #expect(up.waiting == 0)
    }

    /// Until `count` waits are registered, for 30 s at most (a short sleep, not a spin that
    /// holds one of the cooperative pool's two threads).
    func untilWaits(_ wake: WakeUp, count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while wake.waiting < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }
}

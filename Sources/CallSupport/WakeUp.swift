import Synchronization

/// A level-triggered wake-up shared between tasks, the one such primitive of callrec (the
/// worker's claim loops, the stores' `waitForWork`).
///
/// ``signal()`` wakes every task waiting now; when none waits it is kept (one flag, not a
/// count), so that the next ``wait()`` returns at once: a task that found nothing to do and is
/// about to wait does not miss the signal that came in between. Each wait ends exactly once (a
/// signal, its task's cancellation, its timeout, or ``close()``) and leaves no entry behind.
///
/// A wake-up that `keepsSignal` stands for a state rather than an event ("the listener is up"):
/// its signal lets every later wait through, not just the next one, until ``reset()``. (With one
/// flag that the first wait takes, the other tasks that had seen the state unset just before it
/// was set waited for a signal that had come already.)
public final class WakeUp: Sendable {
    private struct State {
        var pending = false
        var closed = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let keepsSignal: Bool

    /// - Parameter keepsSignal: a signal stays until ``reset()`` (every wait returns at once
    ///   meanwhile) instead of being taken by the next wait.
    public init(keepsSignal: Bool = false) {
        self.keepsSignal = keepsSignal
    }

    /// Waits in progress (for tests of leaks).
    public var waiting: Int { state.withLock { $0.waiters.count } }

    /// Wakes every waiting task, or the next wait when none waits.
    public func signal() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.waiters.isEmpty || keepsSignal { state.pending = true }
            if state.waiters.isEmpty { return [] }
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Forgets a signal no one waited for (or, when it `keepsSignal`, the state it stood for).
    public func reset() {
        state.withLock { $0.pending = false }
    }

    /// Wakes every waiter; every later wait returns at once.
    public func close() {
        let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.closed = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.resume() }
    }

    /// Waits until signalled (or closed), or until the task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock: a cancellation that came before the registration has
                // set the task's flag before its handler (which then found nothing) ran.
                let resumeNow = state.withLock { state -> Bool in
                    if state.closed || Task.isCancelled { return true }
                    if state.pending {
                        if !keepsSignal { state.pending = false }
                        return true
                    }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume()
        }
    }

    /// Waits until signalled, for `timeout` on `clock`, or until the task is cancelled,
    /// whichever comes first.
    public func wait<C: Clock>(timeout: C.Duration, clock: C) async {
        guard timeout > .zero, !Task.isCancelled else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask { try? await clock.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Waits until signalled, for `timeout`, or until the task is cancelled.
    public func wait(timeout: Duration) async {
        await wait(timeout: timeout, clock: ContinuousClock())
    }
}

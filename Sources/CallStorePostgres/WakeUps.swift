import CallStore
import CallSupport
import Synchronization

/// The waiters of ``PostgresStore/waitForWork(timeout:)`` in this process, and the state of the
/// store's listening connection, on the one wake-up primitive (`WakeUp`, level-triggered).
///
/// A notification wakes every waiting task. One that arrives while no task waits is kept (one
/// flag, not a count), so that the next wait returns at once: a worker that found no job and is
/// about to wait must not miss the job enqueued in between. After the listener reconnects every
/// waiter is woken too (notifications may have been missed while it was away).
///
/// Each wait ends exactly once (by a wake-up, its task's cancellation, its timeout or the store's
/// close) and leaves no entry behind.
final class WakeUps: Sendable {
    /// Notifications (and reconnections of the listener).
    private let work = WakeUp()
    /// The listener is listening (the first wait of a store waits for it). A state, not an
    /// event: every wait that saw it unset before the listener came up must get through.
    private let up = WakeUp(keepsSignal: true)
    /// A waiter asked for the listener: it starts on the first wait, not before.
    private let requested = WakeUp()
    private let state = Mutex(State())

    private struct State {
        var listening = false
        var requested = false
    }

    /// Waits in progress (for tests of leaks).
    var count: Int { work.waiting + up.waiting }

    /// Waits for a notification in progress (past the wait for the listener).
    var waitingForWork: Int { work.waiting }

    /// Whether the listening connection is up.
    var listening: Bool { state.withLock { $0.listening } }

    /// Asks for the listener (once; later calls do nothing).
    func requestListener() {
        let first = state.withLock { state -> Bool in
            defer { state.requested = true }
            return !state.requested
        }
        if first { requested.signal() }
    }

    /// Returns once a waiter asked for the listener, or when the task is cancelled.
    func waitUntilRequested() async {
        await requested.wait()
    }

    /// Returns when the listener is listening, after `timeout`, or when the task is cancelled.
    func waitUntilListening(timeout: Duration) async {
        guard !listening else { return }
        await up.wait(timeout: timeout)
    }

    /// Returns on a notification (or one kept since the last wait), after `timeout`, or when
    /// the task is cancelled.
    func waitForNotification(timeout: Duration) async {
        await work.wait(timeout: timeout)
    }

    /// A notification arrived: wakes the waiters of work, or keeps it for the next one.
    /// Forgets a notification no one waited for (tests that wait for a new one).
    func forgetPending() {
        work.reset()
    }

    func notified() {
        work.signal()
    }

    /// The listener is listening. After a reconnection, everyone is woken (or the next wait
    /// returns at once).
    func listenerStarted(reconnected: Bool) {
        state.withLock { $0.listening = true }
        up.signal()
        if reconnected { work.signal() }
    }

    /// The listener lost its connection.
    func listenerStopped() {
        state.withLock { $0.listening = false }
        up.reset()
    }

    /// Wakes every waiter; later waits return at once.
    func close() {
        work.close()
        up.close()
        requested.close()
    }
}

import Foundation

/// The waiters of ``PostgresStore/waitForWork(timeout:)`` in this process, and the state of the
/// store's listening connection.
///
/// A notification wakes every waiting task. One that arrives while no task waits is kept (one
/// flag, not a count), so that the next wait returns at once: a worker that found no job and is
/// about to wait must not miss the job enqueued in between. After the listener reconnects every
/// waiter is woken too (notifications may have been missed while it was away).
///
/// Each wait ends exactly once (by a wake-up, its task's cancellation, its timeout or the store's
/// close) and leaves no entry behind.
final class WakeUps: @unchecked Sendable {
    enum Kind {
        /// Waits for a notification.
        case work
        /// Waits for the listener to be listening (the first `waitForWork` of a store).
        case listening
    }

    private struct Waiter {
        var kind: Kind
        var continuation: CheckedContinuation<Void, Never>
    }

    private let lock = NSLock()
    private var waiters: [UInt64: Waiter] = [:]
    private var nextID: UInt64 = 0
    private var pending = false
    private var isListening = false
    private var closed = false
    private var listener: Task<Void, Never>?

    /// Waits in progress (for tests of leaks).
    var count: Int { lock.withLock { waiters.count } }

    /// Whether the listening connection is up.
    var listening: Bool { lock.withLock { isListening } }

    /// Starts the listener with `make` unless it runs already or the store is closed.
    func startListener(_ make: () -> Task<Void, Never>) {
        lock.withLock {
            guard listener == nil, !closed else { return }
            listener = make()
        }
    }

    /// Waits until woken (`kind`), for `timeout`, or until the task is cancelled, whichever
    /// comes first.
    func wait(_ kind: Kind, timeout: Duration) async {
        guard timeout > .zero, !Task.isCancelled else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(kind) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Waits until woken or cancelled.
    private func wait(_ kind: Kind) async {
        let id: UInt64 = lock.withLock {
            nextID += 1
            return nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                // Checked under the lock: a cancellation that comes before the registration has
                // set the task's flag before its handler (which then found nothing) ran.
                let resumeNow: Bool = lock.withLock {
                    if closed || Task.isCancelled { return true }
                    switch kind {
                    case .work:
                        if pending {
                            pending = false
                            return true
                        }
                    case .listening:
                        if isListening { return true }
                    }
                    waiters[id] = Waiter(kind: kind, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = lock.withLock { waiters.removeValue(forKey: id) }
            waiter?.continuation.resume()
        }
    }

    /// A notification arrived: wakes the waiters of work, or keeps it for the next one.
    func notified() {
        let woken: [Waiter] = lock.withLock {
            let work = waiters.filter { $0.value.kind == .work }
            if work.isEmpty {
                pending = true
                return []
            }
            for id in work.keys { waiters[id] = nil }
            return Array(work.values)
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// The listener is listening. After a reconnection, everyone is woken (or the next wait
    /// returns at once).
    func listenerStarted(reconnected: Bool) {
        let woken: [Waiter] = lock.withLock {
            isListening = true
            let chosen = waiters.filter { $0.value.kind == .listening || reconnected }
            if reconnected && chosen.allSatisfy({ $0.value.kind == .listening }) { pending = true }
            for id in chosen.keys { waiters[id] = nil }
            return Array(chosen.values)
        }
        for waiter in woken { waiter.continuation.resume() }
    }

    /// The listener lost its connection.
    func listenerStopped() {
        lock.withLock { isListening = false }
    }

    /// Wakes every waiter; later waits return at once. Returns the listener task (to cancel
    /// and await).
    func close() -> Task<Void, Never>? {
        let (woken, task): ([Waiter], Task<Void, Never>?) = lock.withLock {
            closed = true
            let all = Array(waiters.values)
            waiters.removeAll()
            let task = listener
            listener = nil
            return (all, task)
        }
        for waiter in woken { waiter.continuation.resume() }
        return task
    }
}

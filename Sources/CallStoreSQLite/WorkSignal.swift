import Foundation

/// Wakes the tasks waiting in ``SQLiteStore/waitForWork(timeout:)`` of this process. Each wait
/// ends exactly once: by a signal, by its task's cancellation, or by its timeout; and leaves no
/// entry behind.
final class WorkSignal: @unchecked Sendable {
    private enum Waiter {
        /// Announced, continuation not registered yet.
        case pending
        case waiting(CheckedContinuation<Void, Never>)
        /// Ended (signal, timeout or cancellation) before its continuation was registered.
        case fired
    }

    private let lock = NSLock()
    private var waiters: [UInt64: Waiter] = [:]
    private var nextID: UInt64 = 0

    /// How many waits are in progress (for tests of leaks).
    var count: Int { lock.withLock { waiters.count } }

    /// Waits for a signal, for `timeout`, or for the task's cancellation, whichever comes first.
    func wait(timeout: Duration) async {
        let id: UInt64 = lock.withLock {
            nextID += 1
            waiters[nextID] = .pending
            return nextID
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.end(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow: Bool = lock.withLock {
                    guard case .pending = waiters[id] else { return true }
                    waiters[id] = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            end(id)
        }
        timer.cancel()
        lock.withLock { waiters[id] = nil }
    }

    /// Wakes every waiting task.
    func signal() {
        let continuations: [CheckedContinuation<Void, Never>] = lock.withLock {
            var woken: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in waiters {
                switch waiter {
                case .waiting(let continuation):
                    woken.append(continuation)
                    waiters[id] = .fired
                case .pending:
                    waiters[id] = .fired
                case .fired:
                    break
                }
            }
            return woken
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Ends one wait (its timeout or cancellation); nothing when it has ended already.
    private func end(_ id: UInt64) {
        let continuation: CheckedContinuation<Void, Never>? = lock.withLock {
            switch waiters[id] {
            case .waiting(let continuation):
                waiters[id] = .fired
                return continuation
            case .pending:
                waiters[id] = .fired
                return nil
            case .fired, nil:
                return nil
            }
        }
        continuation?.resume()
    }
}

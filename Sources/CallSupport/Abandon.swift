import Synchronization

extension Task where Success: Sendable, Failure == any Error {
    /// The task's value, or `CancellationError` as soon as the caller is cancelled: the task is
    /// then cancelled and left to end on its own. For a call into something that may not answer
    /// (a database behind a partition) that a caller must be able to walk away from.
    public func valueUnlessCancelled() async throws -> Success {
        let waiter = Waiter<Success>()
        let task = self
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Success, any Error>) in
                waiter.set(continuation)
                if Task<Never, Never>.isCancelled { waiter.resume(with: .failure(_Concurrency.CancellationError())) }
                Task<Void, Never> { waiter.resume(with: await task.result) }
            }
        } onCancel: {
            task.cancel()
            waiter.resume(with: .failure(_Concurrency.CancellationError()))
        }
    }
}

/// A continuation resumed once, by whichever comes first.
private final class Waiter<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
    /// Set before any resume: a resume that came first (a cancel) found nothing and is repeated
    /// by the caller's own check.
    func set(_ continuation: CheckedContinuation<T, any Error>) { self.continuation.withLock { $0 = continuation } }
    func resume(with result: Result<T, any Error>) { continuation.withLock { $0.take() }?.resume(with: result) }
}

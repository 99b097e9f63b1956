import Synchronization

extension Task where Success: Sendable, Failure == any Error {
    /// The task's value, or `CancellationError` as soon as the caller is cancelled: the task is
    /// then cancelled and left to end on its own. For a call into something that may not answer
    /// (a database behind a partition) that a caller must be able to walk away from.
    public func valueUnlessCancelled() async throws -> Success {
        let waiter = Waiter<Success>()
        let task = self
        Task<Void, Never> { waiter.resume(with: await task.result) }
        return try await waiter.value { task.cancel() }
    }
}

/// `body`'s value; or, once `timeout` passes without one, the error `timedOut` makes (`body` is
/// then cancelled and left to end on its own); or `CancellationError` as soon as the caller is
/// cancelled. For calls that must not hang forever on a peer that stopped answering (a pooled
/// database connection that died without anyone noticing).
public func withDeadline<T: Sendable>(_ timeout: Duration, timedOut: @escaping @Sendable () -> any Error,
                                      _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let waiter = Waiter<T>()
    let work = Task<Void, Never> {
        do {
            waiter.resume(with: .success(try await body()))
        } catch {
            waiter.resume(with: .failure(error))
        }
    }
    let timer = Task<Void, Never> {
        guard (try? await Task.sleep(for: timeout)) != nil else { return }
        waiter.resume(with: .failure(timedOut()))
        work.cancel()
    }
    defer { timer.cancel() }
    return try await waiter.value { work.cancel() }
}

/// A result delivered once, to one waiter, whichever comes first; it may come before the wait.
private final class Waiter<T: Sendable>: Sendable {
    private enum State {
        case empty
        case waiting(CheckedContinuation<T, any Error>)
        case done(Result<T, any Error>)
        case delivered
    }

    private let state = Mutex<State>(.empty)

    func resume(with result: Result<T, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<T, any Error>? in
            switch state {
            case .empty:
                state = .done(result)
                return nil
            case .waiting(let continuation):
                state = .delivered
                return continuation
            case .done, .delivered:
                return nil
            }
        }
        waiting?.resume(with: result)
    }

    /// Waits for the result; a cancellation of the caller delivers `CancellationError` (after
    /// `onCancel`).
    func value(onCancel: @escaping @Sendable () -> Void) async throws -> T {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                let ready = state.withLock { state -> Result<T, any Error>? in
                    if case .done(let result) = state {
                        state = .delivered
                        return result
                    }
                    state = .waiting(continuation)
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
                // A cancellation that came before the wait found nothing to resume.
                if Task<Never, Never>.isCancelled { resume(with: .failure(_Concurrency.CancellationError())) }
            }
        } onCancel: {
            onCancel()
            resume(with: .failure(_Concurrency.CancellationError()))
        }
    }
}

import CallSupport
import CallTelnyx
import Foundation
import Synchronization

/// Group commit for webhooks: each request hands its verified event over and waits; one writer
/// commits everything waiting (up to ``batchLimit``) in one transaction, then answers each of
/// them. Every request that arrives while a commit runs goes into the next one, so the commits
/// per second stay few however many events come. The backlog is bounded: a request that finds
/// it full is refused at once (503: Telnyx delivers it again), as is one that comes after
/// ``close()``.
final class WebhookBatcher: Sendable {
    /// Why an event was not committed: the answer is 503 in every case.
    struct Refusal: Error, CustomStringConvertible {
        enum Code: String {
            /// The backlog is full.
            case full
            /// The server is shutting down.
            case closed
            /// The commit failed (the store is unavailable).
            case store
        }

        var code: Code
        var description: String
    }

    private struct Waiting {
        var event: TelnyxEvent
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var closed = false
    }

    let backlog: Int
    let batchLimit: Int
    private let commit: @Sendable ([TelnyxEvent]) async throws -> Void
    private let state = Mutex(State())
    private let wake = WakeUp()

    /// - Parameter commit: commits one batch (``TelnyxIntake/accept(_:receivedAt:)``).
    init(backlog: Int = 10_000, batchLimit: Int = 500, commit: @escaping @Sendable ([TelnyxEvent]) async throws -> Void) {
        self.backlog = max(1, backlog)
        self.batchLimit = max(1, batchLimit)
        self.commit = commit
    }

    /// Events handed over and not yet taken by the writer.
    var waiting: Int { state.withLock { $0.queue.count } }

    /// Returns once the event is committed; throws a ``Refusal`` when it was not.
    func submit(_ event: TelnyxEvent) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let refusal = state.withLock { state -> Refusal? in
                if state.closed { return Refusal(code: .closed, description: "shutting down") }
                if state.queue.count >= backlog { return Refusal(code: .full, description: "\(backlog) events wait for their commit already") }
                state.queue.append(Waiting(event: event, continuation: continuation))
                return nil
            }
            if let refusal { continuation.resume(throwing: refusal) } else { wake.signal() }
        }
    }

    /// Refuses new events; the writer commits those waiting, then ``run(onBatch:)`` returns.
    func close() {
        state.withLock { $0.closed = true }
        wake.signal()
    }

    /// The writer: commits batches until closed and drained, or cancelled (events still
    /// waiting are then refused). `onBatch` hears each batch's size, whether it committed, and
    /// how long its commit took.
    func run(onBatch: @Sendable (Int, Bool, Duration) -> Void = { _, _, _ in }) async {
        while true {
            let (batch, done) = state.withLock { state -> ([Waiting], Bool) in
                let batch = Array(state.queue.prefix(batchLimit))
                state.queue.removeFirst(batch.count)
                return (batch, batch.isEmpty && state.closed)
            }
            if done { return }
            if batch.isEmpty {
                await wake.wait()
                if Task.isCancelled {
                    refuseAll()
                    return
                }
                continue
            }
            let started = ContinuousClock.now
            do {
                try await commit(batch.map(\.event))
                onBatch(batch.count, true, ContinuousClock.now - started)
                for waiting in batch { waiting.continuation.resume() }
            } catch {
                onBatch(batch.count, false, ContinuousClock.now - started)
                let refusal = Refusal(code: .store, description: "\(error)")
                for waiting in batch { waiting.continuation.resume(throwing: refusal) }
            }
        }
    }

    /// Closes and refuses every event still waiting (the writer was cancelled).
    private func refuseAll() {
        let left = state.withLock { state -> [Waiting] in
            state.closed = true
            defer { state.queue.removeAll() }
            return state.queue
        }
        for waiting in left { waiting.continuation.resume(throwing: Refusal(code: .closed, description: "shutting down")) }
    }
}

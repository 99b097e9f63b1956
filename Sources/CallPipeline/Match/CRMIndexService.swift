import CallStore
public import CallSupport
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

/// Keeps the CRM index fresh in a worker: the first build (a full pass), an incremental refresh
/// every `refresh`, a full pass every `fullPass`, and a persons refresh brought forward by a
/// number the index did not know (at most one per `missRefresh`). Each refresh is one of
/// ``CRMIndexSync``; a failed one is logged and tried again after a backoff, and nothing a match
/// needs waits for it (a match reads what the index holds).
public final class CRMIndexService: Service, Sendable {
    let sync: CRMIndexSync
    let clock: AnyClock
    let logger: Logger
    let missed = WakeUp()
    /// When the last persons listing began (any mode), on `clock`.
    private let lastPersons = Mutex<AnyClock.Instant?>(nil)
    private let misses: Mutex<MissRefreshPolicy>

    /// After a failed refresh: 5 s, growing to 10 minutes.
    static let backoff = Backoff(base: .seconds(5), cap: .seconds(600), jitter: 0.5...1.0)

    public init(sync: CRMIndexSync, clock: AnyClock = .continuous, logger: Logger) {
        self.sync = sync
        misses = Mutex(MissRefreshPolicy(settings: sync.settings))
        self.clock = clock
        self.logger = logger
    }

    /// A lookup found nothing for `number`: the next persons refresh may come early
    /// (``MissRefreshPolicy``).
    public func noteMiss(_ number: String) {
        misses.withLock { $0.noteMiss(number) }
        missed.signal()
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            var failures = 0
            while !Task.isCancelled {
                var wait = sync.settings.refresh
                do {
                    let states = try await sync.store.crmSyncStates()
                    let now = sync.now()
                    if let mode = sync.due(states, at: now) {
                        try await run(mode)
                    } else if misses.withLock({ $0.due(elapsed: sinceLastPersons()) }) {
                        try await run(.persons)
                    }
                    failures = 0
                    wait = untilNext(try await sync.store.crmSyncStates(), now: sync.now())
                } catch is CancellationError {
                    return
                } catch {
                    failures += 1
                    wait = Self.backoff.delay(afterAttempt: failures)
                    logger.error("CRM index refresh failed; the index keeps what it has", metadata: ["error": "\(error)", "retry_in": "\(wait)"])
                }
                // A miss wakes the loop early; it only runs a refresh when one is allowed.
                if let allowedIn = misses.withLock({ $0.wait(elapsed: sinceLastPersons()) }), allowedIn < wait { wait = max(allowedIn, .milliseconds(10)) }
                await missed.wait(timeout: wait, clock: clock)
                missed.reset()
            }
        }
    }

    private func run(_ mode: CRMIndexSync.Mode) async throws {
        let began = clock.now
        let before = misses.withLock { $0 }
        let report = try await sync.refresh(mode, scheduled: true)
        // Only a listing of the persons settles misses (a scheduled one may have skipped them).
        if report.rows[.person] != nil {
            lastPersons.withLock { $0 = began }
            let found = try await before.found(in: sync.store)
            misses.withLock { $0.listed(found: found, missRefresh: mode == .persons, settled: before.pending) }
        }
    }

    private func sinceLastPersons() -> Duration {
        lastPersons.withLock { $0 }.map { $0.duration(to: clock.now) } ?? .seconds(1 << 40)
    }

    /// Until the next scheduled refresh (at least a second): the schedule ``CRMIndexSync/due(_:at:)`` reads.
    func untilNext(_ states: [CRMEntityKind: CRMSyncState], now: Date) -> Duration {
        let next = sync.schedule(states)
        let seconds = min(next.fullPass ?? now, next.incremental).timeIntervalSince(now)
        return .milliseconds(Int64(max(1, seconds) * 1000))
    }
}

import CallConsole
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// The overview's counts: live on a small ledger; on a ledger slow to count, the last count with
/// its age while a fresh one runs in the background; never a count older than `idleAfter`.
@Suite(.timeLimit(.minutes(2)))
struct OverviewCounterTests {
    static func withLedger(_ body: (SQLiteStore, ManualClock) async throws -> Void) async throws {
        let clock = ManualClock()
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/callrec.db", now: { clock.date })
            try await store.migrate()
            try await withRunningStore(store) { _ in try await body(store, clock) }
        }
    }

    static func register(_ store: SQLiteStore, _ n: Int) async throws {
        try await store.commit([.insertRecording(Recording(key: String(format: "%064x", n), path: "/pbx/\(n).wav", state: .pending))])
    }

    static func pending(_ answer: OverviewCounter<ManualClock>.Answer) -> Int { answer.counts.recordings[.pending] ?? 0 }

    @Test func aLedgerQuickToCountIsCountedForEveryPage() async throws {
        try await Self.withLedger { store, clock in
            // The manual clock does not move while the store counts: every count is "quick".
            let counter = OverviewCounter(store: store, clock: clock)
            try await Self.register(store, 1)
            let first = try await counter.counts()
            #expect(Self.pending(first) == 1 && first.age == nil)
            try await Self.register(store, 2)
            let second = try await counter.counts()
            #expect(Self.pending(second) == 2 && second.age == nil)
        }
    }

    @Test func aSlowLedgerShowsTheLastCountWithItsAgeAndRecountsInTheBackground() async throws {
        try await Self.withLedger { store, clock in
            // Every count is taken as slow.
            let counter = OverviewCounter(store: store, clock: clock, liveBelow: .zero, maxAge: .seconds(10), idleAfter: .seconds(300))
            try await Self.register(store, 1)
            let first = try await counter.counts()
            #expect(Self.pending(first) == 1 && first.age == nil)

            try await Self.register(store, 2)
            clock.advance(by: .seconds(4))
            let cached = try await counter.counts()
            #expect(Self.pending(cached) == 1 && cached.age == .seconds(4))

            // Older than maxAge: still the last count, and a new one starts.
            clock.advance(by: .seconds(7))
            let stale = try await counter.counts()
            #expect(Self.pending(stale) == 1 && stale.age == .seconds(11))
            let deadline = Date().addingTimeInterval(30)
            var recounted = stale
            while Self.pending(recounted) != 2, Date() < deadline {
                try await Task.sleep(for: .milliseconds(5))
                recounted = try await counter.counts()
            }
            #expect(Self.pending(recounted) == 2 && recounted.age == .zero, "the background count did not land")
        }
    }

    @Test func aCountOlderThanIdleAfterIsNotShown() async throws {
        try await Self.withLedger { store, clock in
            let counter = OverviewCounter(store: store, clock: clock, liveBelow: .zero, maxAge: .seconds(10), idleAfter: .seconds(300))
            #expect(Self.pending(try await counter.counts()) == 0)
            try await Self.register(store, 1)
            clock.advance(by: .seconds(301))
            let answer = try await counter.counts()
            #expect(Self.pending(answer) == 1 && answer.age == nil)
        }
    }
}

public import CallStore
public import Foundation

/// The overview's numbers, and how old they may be when shown.
///
/// Counting them reads every recording (recordings per state is a scan of the ledger's state
/// index: about 170 ms on SQLite and 500 ms on PostgreSQL at a million recordings, measured with
/// bench/console.sh). A small ledger is counted for every page. Once a count takes `liveBelow` or
/// longer, the page shows the last count with its age, and a count older than `maxAge` starts a
/// fresh one in the background: at most one at a time, however many pages are asked for. A count
/// older than `idleAfter` (nobody looked for a while) is not shown: that page waits for a fresh
/// one, as the first page does.
public actor OverviewCounter<C: Clock> where C.Duration == Duration {
    /// One count, as the overview shows it.
    public struct Counts: Sendable {
        public var recordings: [RecordingState: Int]
        public var queue: QueueStats
        public var failures: [FailureCount]
        public var uploadedHour: Int
        public var uploadedDay: Int
        public var sources: [SourceActivity]
        /// The store's clock when the count began.
        public var at: Date
    }

    /// What ``counts()`` gives: a count, and its age when it is an earlier one.
    public struct Answer: Sendable {
        public var counts: Counts
        /// Nil: counted for this page.
        public var age: Duration?
    }

    public let liveBelow: Duration
    public let maxAge: Duration
    public let idleAfter: Duration
    private let store: any ConsoleStore
    private let clock: C
    private var last: (counts: Counts, began: C.Instant, took: Duration)?
    private var running: Task<Counts, any Error>?

    public init(store: any ConsoleStore, clock: C, liveBelow: Duration = .milliseconds(25), maxAge: Duration = .seconds(10),
                idleAfter: Duration = .seconds(300)) {
        self.store = store
        self.clock = clock
        self.liveBelow = liveBelow
        self.maxAge = maxAge
        self.idleAfter = idleAfter
    }

    public func counts() async throws -> Answer {
        if let last, last.took >= liveBelow {
            let age = last.began.duration(to: clock.now)
            if age <= idleAfter {
                if age > maxAge { _ = count() }
                return Answer(counts: last.counts, age: age)
            }
        }
        return Answer(counts: try await count().value, age: nil)
    }

    /// The count under way, or a new one.
    private func count() -> Task<Counts, any Error> {
        if let running { return running }
        let task = Task { [store, clock] in
            let began = clock.now
            do {
                let counts = try await Self.count(store)
                self.finished(counts, began: began, took: began.duration(to: clock.now))
                return counts
            } catch {
                self.finished(nil, began: began, took: .zero)
                throw error
            }
        }
        running = task
        return task
    }

    private func finished(_ counts: Counts?, began: C.Instant, took: Duration) {
        running = nil
        if let counts { last = (counts, began, took) }
    }

    private static func count(_ store: any ConsoleStore) async throws -> Counts {
        let now = try await store.now()
        return Counts(recordings: try await store.recordingCounts(), queue: try await store.queueStats(),
                      failures: try await store.failureCounts(limit: 20),
                      uploadedHour: try await store.recordingCount(state: .uploaded, changedSince: now.addingTimeInterval(-3600)),
                      uploadedDay: try await store.recordingCount(state: .uploaded, changedSince: now.addingTimeInterval(-86400)),
                      sources: try await store.sourceActivity(), at: now)
    }
}

import CallStore
import CallTesting
import Foundation
import PostgresNIO
import Testing

@testable import CallStorePostgres
@testable import CallStoreSQLite

/// The backends every conformance test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// Whether the PostgreSQL tests can run here: a server given (`CALLREC_TEST_POSTGRES_URL`) or
/// installable as a throwaway cluster (`scripts/pg-cluster.sh available`), or `CI` set (then a
/// missing server fails the test rather than skipping it). A test of PostgreSQL takes
/// `.enabled(if: postgresAvailable)`, so that a skip shows as one.
let postgresAvailable = TestPostgres.available

/// The backends every conformance test runs against: PostgreSQL only where it can run (see
/// ``postgresAvailable``; the skipped cases are listed by `scripts/test.sh`).
let backends: [Backend] = postgresAvailable ? Backend.allCases : [.sqlite]

/// The PostgreSQL cases of the conformance suites, shown skipped where PostgreSQL is not available.
@Suite struct ConformanceBackends {
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available: the conformance suites ran on SQLite only"))
    func theConformanceSuitesRunOnPostgres() {
        #expect(backends.contains(.postgres))
    }
}

/// Runs `body` against a fresh, migrated, running store of `backend`, and closes it afterwards.
///
/// `clock`: the store's time (SQLite: its `now`, from the clock's start; PostgreSQL: the
/// database's `now()` plus the time the clock has moved). A test makes leases expire and jobs
/// come due by advancing it, not by sleeping. Without one, the real time.
func withStore(_ backend: Backend, clock: ManualClock? = nil, _ body: (any CallStore) async throws -> Void) async throws {
    switch backend {
    case .sqlite:
        try await withTemporaryDirectory { directory in
            let now: @Sendable () -> Date = if let clock { { clock.date } } else { { Date() } }
            let store = try SQLiteStore(path: directory + "/state/callrec.db", now: now)
            try await run(store, body)
        }
    case .postgres:
        let url = try #require(try TestPostgres.freshDatabase(prefix: "conf"), "PostgreSQL is not installed (scripts/setup.sh --test installs it)")
        let offset: @Sendable () -> Duration = if let clock { { clock.now.offset } } else { { .zero } }
        try await run(try PostgresStore(url: url, timeOffset: offset), body)
    }
}

private func run(_ store: any CallStore, _ body: (any CallStore) async throws -> Void) async throws {
    try await store.migrate()
    try await withRunningStore(store, body)
}

/// Runs every store (their `run()`) around `body`, then closes them.
func withRunning<T>(_ stores: [any CallStore], _ body: () async throws -> T) async throws -> T {
    guard let first = stores.first else { return try await body() }
    return try await withRunningStore(first) { _ in try await withRunning(Array(stores.dropFirst()), body) }
}

// MARK: fixtures

let queueA = "qa"
let queueB = "qb"

func newJob(_ queue: String = queueA, kind: String = "test", uniqueKey: String? = nil, priority: Int = 2,
            maxAttempts: Int = 5, delay: Duration = .zero) -> NewJob {
    NewJob(queue: queue, kind: kind, args: #"{"n":1}"#, uniqueKey: uniqueKey, priority: priority,
           maxAttempts: maxAttempts, delay: delay)
}

extension CallStore {
    /// Enqueues and returns the new id (the test fails when it was a duplicate).
    func insert(_ job: NewJob, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Int64 {
        let result = try await enqueue(job)
        guard case .inserted(let id) = result else {
            Issue.record("expected an insertion, got \(result)", sourceLocation: sourceLocation)
            throw StoreError(.conflict, "duplicate")
        }
        return id
    }

    /// Claims exactly one job of `queue`.
    func claimOne(_ queue: String = queueA, owner: String = "test-worker", leaseTTL: Duration = .seconds(30),
                  sourceLocation: SourceLocation = #_sourceLocation) async throws -> Job {
        let jobs = try await claim(queue: queue, limit: 1, owner: owner, leaseTTL: leaseTTL)
        return try #require(jobs.first, "no job of \(queue) could be claimed", sourceLocation: sourceLocation)
    }

    func existingJob(_ id: Int64, sourceLocation: SourceLocation = #_sourceLocation) async throws -> Job {
        try #require(try await job(id: id), "job \(id) does not exist", sourceLocation: sourceLocation)
    }
}

/// A lease nobody holds.
func bogus(_ job: Job) -> Lease { Lease(jobID: job.id, token: (job.leaseToken ?? 1) &+ 7_777_777) }

// MARK: time

extension Date {
    /// Unix milliseconds, so that both backends' precisions compare equal.
    var ms: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    /// A fixed, millisecond-aligned time `offset` seconds after a base.
    static func fixture(_ offset: Double = 0) -> Date { Date(timeIntervalSince1970: 1_750_000_000.125 + offset) }
}

/// Whether `a` is within `tolerance` seconds of `b`.
func near(_ a: Date?, _ b: Date, tolerance: Double = 2) -> Bool {
    guard let a else { return false }
    return abs(a.timeIntervalSince(b)) <= tolerance
}

/// Values with every Date rounded to milliseconds.
protocol MillisecondNormalizable { var normalized: Self { get } }

private func round(_ date: Date) -> Date { Date(timeIntervalSince1970: Double(date.ms) / 1000) }

extension Recording: MillisecondNormalizable {
    var normalized: Recording {
        var copy = self
        copy.createdAt = round(createdAt)
        copy.updatedAt = round(updatedAt)
        return copy
    }
}

extension Part: MillisecondNormalizable {
    var normalized: Part {
        var copy = self
        copy.createStartedAt = createStartedAt.map(round)
        copy.attachedAt = attachedAt.map(round)
        return copy
    }
}

extension Deletion: MillisecondNormalizable {
    var normalized: Deletion {
        var copy = self
        copy.createdAt = round(createdAt)
        copy.finishedAt = finishedAt.map(round)
        copy.steps = steps.map { step in
            var step = step
            step.updatedAt = round(step.updatedAt)
            return step
        }
        return copy
    }
}

extension AuditEntry: MillisecondNormalizable {
    var normalized: AuditEntry {
        var copy = self
        copy.at = round(at)
        return copy
    }
}

extension Tombstone: MillisecondNormalizable {
    var normalized: Tombstone {
        var copy = self
        copy.deletedAt = round(deletedAt)
        return copy
    }
}

extension Job: MillisecondNormalizable {
    var normalized: Job {
        var copy = self
        copy.runAt = round(runAt)
        copy.leaseExpiresAt = leaseExpiresAt.map(round)
        copy.createdAt = round(createdAt)
        copy.updatedAt = round(updatedAt)
        copy.finalizedAt = finalizedAt.map(round)
        copy.errors = errors.normalized
        return copy
    }
}

extension JobErrorRecord: MillisecondNormalizable {
    var normalized: JobErrorRecord {
        var copy = self
        copy.at = round(at)
        return copy
    }
}

extension SourceFile: MillisecondNormalizable {
    var normalized: SourceFile {
        var copy = self
        copy.seenAt = round(seenAt)
        return copy
    }
}

extension StoredCDRRow: MillisecondNormalizable {
    var normalized: StoredCDRRow {
        var copy = self
        copy.ingestedAt = round(ingestedAt)
        return copy
    }
}

extension Optional: MillisecondNormalizable where Wrapped: MillisecondNormalizable {
    var normalized: Self { map(\.normalized) }
}

extension Array: MillisecondNormalizable where Element: MillisecondNormalizable {
    var normalized: Self { map(\.normalized) }
}

/// Returns once `count` callers wait inside `waitForWork` (PostgreSQL: with the listener up,
/// so that a notification reaches them), or after 30 s.
func untilWaiting(_ store: any CallStore, count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    // Generous: under the whole suite's load the waiters' tasks can wait long for a thread.
    let deadline = ContinuousClock.now + .seconds(90)
    while waiting(store) < count, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(5))
    }
    if waiting(store) < count {
        Issue.record("\(waiting(store)) of \(count) waiters after 90 s", sourceLocation: sourceLocation)
    }
}

/// Forgets a wake-up no one waited for (a store keeps the signal of the last enqueue, or of a
/// listener's reconnection, for the next wait), so that the next wait waits for a new one.
func forgetPendingWakeUp(_ store: any CallStore) {
    (store as? SQLiteStore)?.signal.reset()
    (store as? PostgresStore)?.wakeUps.forgetPending()
}

/// The tasks waiting for work in `store` (PostgreSQL: only once its listener listens).
func waiting(_ store: any CallStore) -> Int {
    if let sqlite = store as? SQLiteStore { return sqlite.signal.waiting }
    if let postgres = store as? PostgresStore { return postgres.wakeUps.listening ? postgres.wakeUps.waitingForWork : 0 }
    return 0
}

/// A fresh PostgreSQL database migrated up to `version` only (the SQL of those migrations, as a
/// ledger of that version was made), with a running store on it: the upgrade tests' start.
func withPostgresAtVersion(_ version: Int, prefix: String, _ body: (PostgresStore) async throws -> Void) async throws {
    let url = try #require(try TestPostgres.freshDatabase(prefix: prefix), "PostgreSQL is not installed")
    let store = try PostgresStore(url: url)
    try await withRunningStore(store) { _ in
        try await store.client.query(PostgresQuery(unsafeSQL: PostgresSchema.versionTable))
        for migration in PostgresSchema.migrations where migration.version <= version {
            for statement in migration.statements { try await store.client.query(PostgresQuery(unsafeSQL: statement)) }
            try await store.client.query("INSERT INTO callrec_schema (version) VALUES (\(migration.version))")
        }
        try await body(store)
    }
}

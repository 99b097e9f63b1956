import CallStore
import CallStorePostgres
import CallSupport
import CallTesting
import Foundation
import Testing

@testable import CallStoreSQLite

/// The backends every conformance test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// Runs `body` against a fresh, migrated store of `backend`, and closes it afterwards.
///
/// PostgreSQL: a fresh database on the test server. Without PostgreSQL installed (and `CI`
/// unset) the test prints that it was skipped and passes; under CI `TestPostgres` throws instead.
func withStore(_ backend: Backend, _ body: (any CallStore) async throws -> Void) async throws {
    switch backend {
    case .sqlite:
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state/callrec.db")
            try await run(store, body)
        }
    case .postgres:
        guard let url = try TestPostgres.freshDatabase(prefix: "conf") else {
            print("◇ skipped on postgres: PostgreSQL is not installed (scripts/setup.sh --test installs it)")
            return
        }
        try await run(try PostgresStore(url: url), body)
    }
}

private func run(_ store: any CallStore, _ body: (any CallStore) async throws -> Void) async throws {
    do {
        try await store.migrate()
        try await body(store)
    } catch {
        try? await store.close()
        throw error
    }
    try await store.close()
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
        copy.errors = errors.map { record in
            var record = record
            record.at = round(record.at)
            return record
        }
        return copy
    }
}

extension Optional: MillisecondNormalizable where Wrapped: MillisecondNormalizable {
    var normalized: Self { map(\.normalized) }
}

extension Array: MillisecondNormalizable where Element: MillisecondNormalizable {
    var normalized: Self { map(\.normalized) }
}

/// Returns once `count` callers wait inside `waitForWork`. SQLite's in-process signal wakes only
/// those already waiting (the worker polls besides), so a test that signals must know they are
/// there; PostgreSQL's wake-ups are remembered, so a short pause is enough there.
func untilWaiting(_ store: any CallStore, count: Int) async throws {
    guard let sqlite = store as? SQLiteStore else {
        try await Task.sleep(for: .milliseconds(300))
        return
    }
    let deadline = ContinuousClock.now + .seconds(30)
    while sqlite.signal.waiting < count, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
}

public import CallStore
import CallSupport
public import Foundation
import GRDB

extension SQLiteStore {
    // MARK: enqueue and claim

    public func enqueue(_ job: NewJob) async throws -> EnqueueResult {
        try job.validate()
        let result = try await write("enqueue") { db in
            try Self.insertJob(db, job, now: Millis.from(self.clock()))
        }
        if case .inserted = result { signal.signal() }
        return result
    }

    /// INSERT … ON CONFLICT (the live unique key) DO NOTHING RETURNING id.
    static func insertJob(_ db: Database, _ job: NewJob, now: Int64) throws -> EnqueueResult {
        let id = try Int64.fetchOne(db, sql: """
            INSERT INTO queue_job (queue, kind, args, unique_key, priority, max_attempts, run_at, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available','running') DO NOTHING
            RETURNING id
            """, arguments: [job.queue, job.kind, job.args, job.uniqueKey, job.priority, job.maxAttempts,
                             now + job.delay.milliseconds, now, now])
        return id.map { .inserted($0) } ?? .duplicate
    }

    public func claim(queue: String, limit: Int, owner: String, leaseTTL: Duration) async throws -> [Job] {
        guard limit > 0 else { return [] }
        guard leaseTTL > .zero else { throw StoreError(.invalid, "lease TTL must be positive") }
        let ttl = leaseTTL.milliseconds
        // One random base per claim; each job's token is base + id, so the tokens of one batch
        // differ and a job's next claim gets another (with overwhelming probability).
        let base = Int64.random(in: 1...(Int64.max / 2))
        let jobs = try await write("claim") { db in
            let now = Millis.from(self.clock())
            let rows = try Row.fetchAll(db, sql: """
                UPDATE queue_job
                SET state = 'running', attempt = attempt + 1, lease_owner = ?, lease_token = ? + id,
                    lease_expires_at = ?, updated_at = ?
                WHERE id IN (SELECT id FROM queue_job
                             WHERE state = 'available' AND queue = ? AND run_at <= ?
                             ORDER BY priority, run_at, id LIMIT ?)
                RETURNING *
                """, arguments: [owner, base, now + ttl, now, queue, now, limit])
            return try rows.map(Self.job(from:))
        }
        // RETURNING gives no order: restore the claim order.
        return jobs.sorted { ($0.priority, $0.runAt, $0.id) < ($1.priority, $1.runAt, $1.id) }
    }

    // MARK: fenced transitions

    public func heartbeat(_ leases: [Lease], leaseTTL: Duration) async throws -> Set<Lease> {
        guard !leases.isEmpty else { return [] }
        let ttl = leaseTTL.milliseconds
        return try await write("heartbeat") { db in
            let now = Millis.from(self.clock())
            var held: Set<Lease> = []
            let statement = try db.cachedStatement(sql: """
                UPDATE queue_job SET lease_expires_at = ?, updated_at = ?
                WHERE id = ? AND lease_token = ? AND state = 'running'
                """)
            for lease in leases {
                try statement.execute(arguments: [now + ttl, now, lease.jobID, lease.token])
                if db.changesCount > 0 { held.insert(lease) }
            }
            return held
        }
    }

    public func complete(_ lease: Lease) async throws -> Bool {
        try await write("complete") { db in
            let now = Millis.from(self.clock())
            try db.execute(sql: """
                UPDATE queue_job SET state = 'completed', finalized_at = ?, updated_at = ?,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE id = ? AND lease_token = ? AND state = 'running'
                """, arguments: [now, now, lease.jobID, lease.token])
            return db.changesCount > 0
        }
    }

    public func fail(_ lease: Lease, error: String, permanent: Bool, retryIn: Duration) async throws -> JobState? {
        let delay = max(retryIn, .zero).milliseconds
        let state = try await write("fail") { db -> JobState? in
            try self.transition(db, lease) { job, now in
                let discard = permanent || job.attempt >= job.maxAttempts
                return Transition(state: discard ? .discarded : .available, attempt: job.attempt,
                                  snoozeCount: job.snoozeCount, runAt: discard ? job.runAt : now + delay,
                                  error: error, kind: "failed", recordedAttempt: job.attempt)
            }
        }
        if state == .available { signal.signal() }
        return state
    }

    public func snooze(_ lease: Lease, delay: Duration, notBefore: Date?, reason: String, maxSnoozes: Int) async throws -> JobState? {
        let delay = max(delay, .zero).milliseconds
        let notBefore = notBefore.map(Millis.from) ?? 0
        let state = try await write("snooze") { db -> JobState? in
            try self.transition(db, lease) { job, now in
                let snoozes = job.snoozeCount + 1
                return Transition(state: snoozes > maxSnoozes ? .discarded : .available, attempt: max(job.attempt - 1, 0),
                                  snoozeCount: snoozes, runAt: max(now + delay, notBefore), error: reason, kind: "snoozed",
                                  recordedAttempt: job.attempt)
            }
        }
        if state == .available { signal.signal() }
        return state
    }

    public func release(_ lease: Lease, reason: String) async throws -> Bool {
        let state = try await write("release") { db -> JobState? in
            try self.transition(db, lease) { job, now in
                Transition(state: .available, attempt: max(job.attempt - 1, 0), snoozeCount: job.snoozeCount,
                           runAt: now, error: reason, kind: "released", recordedAttempt: job.attempt)
            }
        }
        if state != nil { signal.signal() }
        return state != nil
    }

    /// What a fail, snooze or release does to a running job.
    struct Transition {
        var state: JobState
        var attempt: Int
        var snoozeCount: Int
        /// Unix ms.
        var runAt: Int64
        var error: String
        var kind: String
        var recordedAttempt: Int
    }

    /// The fenced read-modify-write of fail, snooze and release (inside the write transaction,
    /// so no one else changes the row in between). Nil when the lease is not the job's.
    private func transition(_ db: Database, _ lease: Lease,
                            _ decide: (StoredJob, Int64) -> Transition) throws -> JobState? {
        let now = Millis.from(self.clock())
        guard let row = try Row.fetchOne(db, sql: """
            SELECT attempt, max_attempts, snooze_count, run_at, errors FROM queue_job
            WHERE id = ? AND lease_token = ? AND state = 'running'
            """, arguments: [lease.jobID, lease.token]) else { return nil }
        let job = StoredJob(attempt: row["attempt"], maxAttempts: row["max_attempts"], snoozeCount: row["snooze_count"],
                            runAt: row["run_at"], errors: row["errors"])
        let change = decide(job, now)
        let errors = appendError(job.errors, JobErrorRecord(at: Millis.date(now), attempt: change.recordedAttempt,
                                                             error: change.error, kind: change.kind))
        let final = JobState.final.contains(change.state)
        try db.execute(sql: """
            UPDATE queue_job SET state = ?, attempt = ?, snooze_count = ?, run_at = ?, last_error = ?, errors = ?,
                finalized_at = ?, updated_at = ?, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = ?
            """, arguments: [change.state.rawValue, change.attempt, change.snoozeCount, change.runAt, change.error, errors,
                             final ? now : nil, now, lease.jobID])
        return change.state
    }

    struct StoredJob {
        var attempt: Int
        var maxAttempts: Int
        var snoozeCount: Int
        var runAt: Int64
        var errors: String
    }

    // MARK: rescue and retention

    public func expireLeases(ownedBy owners: [String]) async throws -> Int {
        let owners = Array(Set(owners))
        guard !owners.isEmpty else { return 0 }
        return try await write("expire leases") { db in
            let now = Millis.from(self.clock())
            let marks = Array(repeating: "?", count: owners.count).joined(separator: ",")
            var arguments: StatementArguments = [now - 1, now]
            arguments += StatementArguments(owners)
            try db.execute(sql: """
                UPDATE queue_job SET lease_expires_at = ?, updated_at = ?
                WHERE state = 'running' AND lease_owner IN (\(marks))
                """, arguments: arguments)
            return db.changesCount
        }
    }

    public func rescueExpiredLeases(poisonRescues: Int) async throws -> RescueReport {
        let report = try await write("rescue") { db in
            let now = Millis.from(self.clock())
            let rows = try Row.fetchAll(db, sql: """
                SELECT id, attempt, max_attempts, rescue_count, errors FROM queue_job
                WHERE state = 'running' AND lease_expires_at < ?
                ORDER BY id
                """, arguments: [now])
            var report = RescueReport()
            let message = "lease expired (worker lost)"
            for row in rows {
                let id: Int64 = row["id"]
                let attempt: Int = row["attempt"]
                let maxAttempts: Int = row["max_attempts"]
                let rescues: Int = row["rescue_count"] + 1
                let discard = attempt >= maxAttempts || rescues >= poisonRescues
                let errors = appendError(row["errors"], JobErrorRecord(at: Millis.date(now), attempt: attempt,
                                                                        error: message, kind: "rescued"))
                try db.execute(sql: """
                    UPDATE queue_job SET state = ?, rescue_count = ?, run_at = ?, last_error = ?, errors = ?,
                        finalized_at = ?, updated_at = ?, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                    WHERE id = ?
                    """, arguments: [discard ? JobState.discarded.rawValue : JobState.available.rawValue, rescues,
                                     now, message, errors, discard ? now : nil, now, id])
                if discard { report.discarded.append(id) } else { report.requeued.append(id) }
            }
            return report
        }
        if !report.requeued.isEmpty { signal.signal() }
        return report
    }

    public func prune(completedAge: Duration, finalAge: Duration, limit: Int) async throws -> Int {
        guard limit > 0 else { return 0 }
        return try await write("prune") { db in
            let now = Millis.from(self.clock())
            try db.execute(sql: """
                DELETE FROM queue_job WHERE id IN (
                  SELECT id FROM queue_job
                  WHERE (state = 'completed' AND finalized_at < ?)
                     OR (state IN ('discarded','cancelled') AND finalized_at < ?)
                  ORDER BY finalized_at, id LIMIT ?)
                """, arguments: [now - completedAge.milliseconds, now - finalAge.milliseconds, limit])
            return db.changesCount
        }
    }

    public func purge(states: Set<JobState>, finalizedBefore before: Date) async throws -> Int {
        let live = states.subtracting(JobState.final)
        guard live.isEmpty else {
            throw StoreError(.invalid, "purge deletes final jobs only, not \(live.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        guard !states.isEmpty else { return 0 }
        let names = states.map(\.rawValue).sorted()
        return try await write("purge") { db in
            try db.execute(sql: "DELETE FROM queue_job WHERE state IN (\(placeholders(names.count))) AND finalized_at < ?",
                           arguments: StatementArguments(names) + [Millis.from(before)])
            return db.changesCount
        }
    }

    // MARK: reading and operating

    public func job(id: Int64) async throws -> Job? {
        try await read("job") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM queue_job WHERE id = ?", arguments: [id]).map(Self.job(from:))
        }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        guard query.limit > 0 else { return [] }
        if let ids = query.ids, ids.isEmpty { return [] }
        if let states = query.states, states.isEmpty { return [] }
        var filter = SQLFilter()
        filter.oneOf("state", query.states?.map(\.rawValue).sorted())
        filter.compare("queue", query.queue)
        filter.compare("kind", query.kind)
        filter.oneOf("id", query.ids)
        filter.compare("unique_key", query.uniqueKey)
        let arguments = filter.arguments + [query.limit]
        let sql = "SELECT * FROM queue_job \(filter.clause) ORDER BY id LIMIT ?"
        return try await read("jobs") { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.job(from:))
        }
    }

    public func retry(ids: [Int64]) async throws -> [Int64] {
        let ids = Array(Set(ids)).sorted()
        guard !ids.isEmpty else { return [] }
        let retried = try await write("retry") { db in
            let now = Millis.from(self.clock())
            var retried: [Int64] = []
            let wake = try db.cachedStatement(sql: """
                UPDATE queue_job SET run_at = ?, updated_at = ? WHERE id = ? AND state = 'available' AND run_at > ?
                """)
            for id in ids {
                try wake.execute(arguments: [now, now, id, now])
                if db.changesCount > 0 { retried.append(id) }
            }
            for id in ids where !retried.contains(id) {
                if try Self.retryFinished(db, id: id, now: now) == nil { retried.append(id) }
            }
            return retried
        }
        if !retried.isEmpty { signal.signal() }
        return retried.sorted()
    }

    /// Makes the discarded or cancelled job `id` available again with its attempts reset;
    /// returns why it was left alone (missing, in another state, its key live in another job).
    static func retryFinished(_ db: Database, id: Int64, now: Int64) throws -> String? {
        guard let row = try Row.fetchOne(db, sql: "SELECT state, unique_key FROM queue_job WHERE id = ?",
                                         arguments: [id]) else { return "does not exist" }
        let state: String = row["state"]
        guard state == JobState.discarded.rawValue || state == JobState.cancelled.rawValue else {
            return "is \(state), not discarded or cancelled"
        }
        if let key: String = row["unique_key"], let other = try Int64.fetchOne(db, sql: """
            SELECT id FROM queue_job WHERE unique_key = ? AND state IN ('available','running') AND id <> ? LIMIT 1
            """, arguments: [key, id]) {
            return "has its unique key \(key) live in job \(other)"
        }
        try db.execute(sql: """
            UPDATE queue_job SET state = 'available', attempt = 0, rescue_count = 0, snooze_count = 0,
                run_at = ?, finalized_at = NULL, updated_at = ?,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = ?
            """, arguments: [now, now, id])
        return nil
    }

    public func cancel(ids: [Int64]) async throws -> [Int64] {
        let ids = Array(Set(ids)).sorted()
        guard !ids.isEmpty else { return [] }
        return try await write("cancel") { db in
            let now = Millis.from(self.clock())
            var cancelled: [Int64] = []
            let statement = try db.cachedStatement(sql: """
                UPDATE queue_job SET state = 'cancelled', finalized_at = ?, updated_at = ?,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE id = ? AND state IN ('available','running')
                """)
            for id in ids {
                try statement.execute(arguments: [now, now, id])
                if db.changesCount > 0 { cancelled.append(id) }
            }
            return cancelled
        }
    }

    public func queueStats() async throws -> QueueStats {
        try await read("queue stats") { db in
            let now = Millis.from(self.clock())
            var counts: [JobState: Int] = [:]
            var byQueue: [String: [JobState: Int]] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT queue, state, count(*) AS n FROM queue_job GROUP BY queue, state") {
                let queue: String = row["queue"]
                guard let state = JobState(rawValue: row["state"]) else { continue }
                let n: Int = row["n"]
                counts[state, default: 0] += n
                byQueue[queue, default: [:]][state] = n
            }
            var due = 0
            var dueByQueue: [String: Int] = [:]
            var oldest: Int64?
            for row in try Row.fetchAll(db, sql: """
                SELECT queue, count(*) AS n, min(run_at) AS oldest FROM queue_job
                WHERE state = 'available' AND run_at <= ? GROUP BY queue
                """, arguments: [now]) {
                let n: Int = row["n"]
                due += n
                dueByQueue[row["queue"]] = n
                let first: Int64 = row["oldest"]
                oldest = min(oldest ?? first, first)
            }
            let next = try Int64.fetchOne(db, sql: "SELECT min(run_at) FROM queue_job WHERE state = 'available' AND run_at > ?",
                                          arguments: [now])
            return QueueStats(counts: counts, byQueue: byQueue, due: due, dueByQueue: dueByQueue,
                              oldestDueSeconds: oldest.map { Double(now - $0) / 1000 }, nextRunAt: Millis.date(next))
        }
    }

    public func waitForWork(timeout: Duration) async {
        await signal.wait(timeout: timeout)
    }

    // MARK: rows

    static func job(from row: Row) throws -> Job {
        let id: Int64 = row["id"]
        let stateName: String = row["state"]
        guard let state = JobState(rawValue: stateName) else {
            throw StoreError(.unavailable, "job \(id) has an unknown state \(stateName)")
        }
        return Job(id: id, queue: row["queue"], kind: row["kind"], args: row["args"], uniqueKey: row["unique_key"],
                   state: state, priority: row["priority"], attempt: row["attempt"], maxAttempts: row["max_attempts"],
                   rescueCount: row["rescue_count"], snoozeCount: row["snooze_count"],
                   runAt: Millis.date(row["run_at"] as Int64), leaseOwner: row["lease_owner"],
                   leaseToken: row["lease_token"], leaseExpiresAt: Millis.date(row["lease_expires_at"] as Int64?),
                   lastError: row["last_error"], errors: decodeErrors(row["errors"]),
                   createdAt: Millis.date(row["created_at"] as Int64), updatedAt: Millis.date(row["updated_at"] as Int64),
                   finalizedAt: Millis.date(row["finalized_at"] as Int64?))
    }
}

// MARK: error history

/// One entry of the `errors` column: `{"at": unix ms, "attempt", "error", "kind"}`.
private struct StoredError: Codable {
    var at: Int64
    var attempt: Int
    var error: String
    var kind: String
}

private func decodeErrors(_ text: String) -> [JobErrorRecord] {
    guard let stored = try? JSONDecoder().decode([StoredError].self, from: Data(text.utf8)) else { return [] }
    return stored.map { JobErrorRecord(at: Millis.date($0.at), attempt: $0.attempt, error: $0.error, kind: $0.kind) }
}

/// `text` plus `record`, keeping the last ``JobErrorRecord/historyLimit``.
private func appendError(_ text: String, _ record: JobErrorRecord) -> String {
    var stored = (try? JSONDecoder().decode([StoredError].self, from: Data(text.utf8))) ?? []
    stored.append(StoredError(at: Millis.from(record.at), attempt: record.attempt, error: record.error, kind: record.kind))
    stored = Array(stored.suffix(JobErrorRecord.historyLimit))
    let data = (try? JSONEncoder.sorted.encode(stored)) ?? Data("[]".utf8)
    return String(decoding: data, as: UTF8.self)
}

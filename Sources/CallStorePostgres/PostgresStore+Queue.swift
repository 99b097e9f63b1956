public import CallStore
public import Foundation
import PostgresNIO

extension PostgresStore {
    // MARK: enqueue and claim

    public func enqueue(_ job: NewJob) async throws -> EnqueueResult {
        try job.validate()
        let rows = try await query("enqueue", Self.insertJob(job, offset: offset))
        return try decode("enqueue") { try Self.enqueueResult(rows) }
    }

    /// One multi-row INSERT per 1,000 jobs (from arrays, `unnest … WITH ORDINALITY`) and one
    /// `pg_notify` per queue, all in one transaction: enqueueing is one round trip per thousand
    /// jobs instead of one per job.
    public func enqueue(_ jobs: [NewJob]) async throws -> [EnqueueResult] {
        guard !jobs.isEmpty else { return [] }
        for job in jobs { try job.validate() }
        let logger = self.logger
        let offset = self.offset
        return try await transaction("enqueue") { connection -> [EnqueueResult] in
            var results: [EnqueueResult] = []
            results.reserveCapacity(jobs.count)
            var start = 0
            while start < jobs.count {
                let chunk = jobs[start..<min(start + 1000, jobs.count)]
                var s = Statement(offset: offset)
                let queues = try s.bind(array: chunk.map(\.queue)), kinds = try s.bind(array: chunk.map(\.kind))
                let args = try s.bind(array: chunk.map(\.args)), keys = try s.bind(array: chunk.map { $0.uniqueKey ?? "" })
                let priorities = try s.bind(array: chunk.map { Int64($0.priority) })
                let attempts = try s.bind(array: chunk.map { SQL.int32($0.maxAttempts) }), delays = try s.bind(array: chunk.map { SQL.ms($0.delay) })
                s.sql = """
                    INSERT INTO queue_job (queue, kind, args, unique_key, priority, max_attempts, run_at, created_at, updated_at)
                    SELECT q, k, a, NULLIF(u, ''), p, m, \(s.now(plus: "d")), \(s.now()), \(s.now())
                    FROM unnest(\(queues)::text[], \(kinds)::text[], \(args)::text[], \(keys)::text[], \(priorities)::int8[],
                                \(attempts)::int8[], \(delays)::int8[]) WITH ORDINALITY AS t(q, k, a, u, p, m, d, n)
                    ORDER BY n
                    ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available','running') DO NOTHING
                    RETURNING id, unique_key
                    """
                let rows = try await connection.query(s.query, logger: logger).collect()
                var plain: [Int64] = []
                var keyed: [String: Int64] = [:]
                for row in rows {
                    let (id, key) = try row.decode((Int64, String?).self)
                    if let key { keyed[key] = id } else { plain.append(id) }
                }
                // Ids come from one sequence in row order: the n-th plain row is the n-th plain job.
                plain.sort()
                var next = 0
                for job in chunk {
                    if let key = job.uniqueKey {
                        results.append(keyed.removeValue(forKey: key).map { .inserted($0) } ?? .duplicate)
                    } else {
                        results.append(.inserted(plain[next]))
                        next += 1
                    }
                }
                start += chunk.count
            }
            let woken = Array(Set(zip(jobs, results).compactMap { job, result in result == .duplicate ? nil : job.queue })).sorted()
            if !woken.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.channel), q) FROM unnest(\(woken)::text[]) AS q", logger: logger)
            }
            return results
        }
    }

    /// INSERT … ON CONFLICT (the live unique key) DO NOTHING RETURNING id, and `pg_notify` of
    /// the queue when a row went in (delivered when the transaction commits).
    static func insertJob(_ job: NewJob, offset: Int64) -> PostgresQuery {
        var s = Statement(offset: offset)
        let values = [
            s.bind(job.queue), s.bind(job.kind), s.bind(job.args), s.bind(job.uniqueKey),
            s.bind(job.priority), s.bind(SQL.int32(job.maxAttempts)),
            s.now(plus: s.bind(SQL.ms(job.delay))), s.now(), s.now(),
        ]
        s.sql = """
            WITH inserted AS (
              INSERT INTO queue_job (queue, kind, args, unique_key, priority, max_attempts, run_at, created_at, updated_at)
              VALUES (\(values.joined(separator: ", ")))
              ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available','running') DO NOTHING
              RETURNING id, queue)
            SELECT id, pg_notify(\(s.bind(channel)), queue) FROM inserted
            """
        return s.query
    }

    static func enqueueResult(_ rows: [PostgresRow]) throws -> EnqueueResult {
        guard let row = rows.first else { return .duplicate }
        return .inserted(try row.makeRandomAccess()[0].decode(Int64.self))
    }

    public func claim(queue: String, limit: Int, owner: String, leaseTTL: Duration) async throws -> [Job] {
        guard limit > 0 else { return [] }
        guard leaseTTL > .zero else { throw StoreError(.invalid, "lease TTL must be positive") }
        var s = statement()
        let queueName = s.bind(queue), count = s.bind(limit), owner = s.bind(owner), ttl = s.bind(SQL.ms(leaseTTL))
        let now = s.now()
        // The CTE (materialized: never folded into the UPDATE) picks and locks, skipping rows
        // other claimers hold; one statement, committed at once.
        s.sql = """
            WITH picked AS MATERIALIZED (
              SELECT id FROM queue_job
              WHERE state = 'available' AND queue = \(queueName) AND run_at <= \(now)
              ORDER BY priority, run_at, id
              LIMIT \(count)
              FOR UPDATE SKIP LOCKED),
            claimed AS (
              UPDATE queue_job j
              SET state = 'running', attempt = j.attempt + 1, lease_owner = \(owner),
                  lease_token = nextval('queue_lease_seq'), lease_expires_at = \(s.now(plus: ttl)), updated_at = \(now)
              FROM picked WHERE j.id = picked.id
              RETURNING j.*)
            SELECT \(Self.jobColumns) FROM claimed ORDER BY priority, run_at, id
            """
        // A claim answers in milliseconds: one that hangs (a connection that died unnoticed in a
        // restart) gives way soon, so the queue is claimed from again at once.
        let rows = try await query("claim", s.query, timeout: .seconds(10))
        return try decode("claim") { try rows.map(Self.job(from:)) }
    }

    // MARK: fenced transitions

    public func heartbeat(_ leases: [Lease], leaseTTL: Duration) async throws -> Set<Lease> {
        guard !leases.isEmpty else { return [] }
        let sorted = leases.sorted { ($0.jobID, $0.token) < ($1.jobID, $1.token) }
        var s = statement()
        let ids = try s.bind(array: sorted.map(\.jobID)), tokens = try s.bind(array: sorted.map(\.token))
        let ttl = s.bind(SQL.ms(leaseTTL))
        s.sql = """
            UPDATE queue_job q SET lease_expires_at = \(s.now(plus: ttl)), updated_at = \(s.now())
            FROM unnest(\(ids)::int8[], \(tokens)::int8[]) AS t(id, token)
            WHERE q.id = t.id AND q.lease_token = t.token AND q.state = 'running'
            RETURNING q.id, q.lease_token
            """
        let rows = try await query("heartbeat", s.query)
        return try decode("heartbeat") {
            Set(try rows.map { row in
                let (id, token) = try row.decode((Int64, Int64).self)
                return Lease(jobID: id, token: token)
            })
        }
    }

    public func complete(_ lease: Lease) async throws -> Bool {
        let rows = try await query("complete", """
            UPDATE queue_job SET state = 'completed', finalized_at = \(now: offset), updated_at = \(now: offset),
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            WHERE id = \(lease.jobID) AND lease_token = \(lease.token) AND state = 'running'
            RETURNING id
            """)
        return !rows.isEmpty
    }

    public func fail(_ lease: Lease, error: String, permanent: Bool, retryIn: Duration) async throws -> JobState? {
        var s = statement()
        let id = s.bind(lease.jobID), token = s.bind(lease.token), message = s.bind(error)
        let discard = "(\(s.bind(permanent)) OR attempt >= max_attempts)"
        let delay = s.bind(SQL.ms(retryIn)), now = s.now()
        s.sql = """
            WITH changed AS (
              UPDATE queue_job SET
                state = CASE WHEN \(discard) THEN 'discarded' ELSE 'available' END,
                finalized_at = CASE WHEN \(discard) THEN \(now) END,
                run_at = CASE WHEN \(discard) THEN run_at ELSE \(s.now(plus: delay)) END,
                last_error = \(message), errors = \(Self.appendError(kind: "failed", error: message, &s)),
                updated_at = \(now), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
              WHERE id = \(id) AND lease_token = \(token) AND state = 'running'
              RETURNING state, queue, run_at)
            \(Self.selectStateNotifying(&s))
            """
        return try await transition("fail", s.query)
    }

    public func snooze(_ lease: Lease, delay: Duration, notBefore: Date?, reason: String, maxSnoozes: Int) async throws -> JobState? {
        var s = statement()
        let id = s.bind(lease.jobID), token = s.bind(lease.token), message = s.bind(reason)
        let discard = "(snooze_count + 1 > \(s.bind(maxSnoozes)))"
        let wait = s.bind(SQL.ms(delay)), earliest = s.bind(SQL.ms(notBefore)), now = s.now()
        s.sql = """
            WITH changed AS (
              UPDATE queue_job SET
                state = CASE WHEN \(discard) THEN 'discarded' ELSE 'available' END,
                finalized_at = CASE WHEN \(discard) THEN \(now) END,
                attempt = greatest(attempt - 1, 0), snooze_count = snooze_count + 1,
                run_at = greatest(\(s.now(plus: wait)), \(SQL.epochPlus)\(earliest)),
                last_error = \(message), errors = \(Self.appendError(kind: "snoozed", error: message, &s)),
                updated_at = \(now), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
              WHERE id = \(id) AND lease_token = \(token) AND state = 'running'
              RETURNING state, queue, run_at)
            \(Self.selectStateNotifying(&s))
            """
        return try await transition("snooze", s.query)
    }

    public func release(_ lease: Lease, reason: String) async throws -> Bool {
        var s = statement()
        let id = s.bind(lease.jobID), token = s.bind(lease.token), message = s.bind(reason), now = s.now()
        s.sql = """
            WITH changed AS (
              UPDATE queue_job SET
                state = 'available', attempt = greatest(attempt - 1, 0), run_at = \(now),
                last_error = \(message), errors = \(Self.appendError(kind: "released", error: message, &s)),
                updated_at = \(now), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
              WHERE id = \(id) AND lease_token = \(token) AND state = 'running'
              RETURNING state, queue, run_at)
            \(Self.selectStateNotifying(&s))
            """
        return try await transition("release", s.query) != nil
    }

    /// After `WITH changed AS (UPDATE … RETURNING state, queue, run_at)`: the new state, and a
    /// notification when the job is due again at once (one retried after a backoff is found
    /// by the workers' polls; waking every idle worker for it would only cost empty claims).
    static func selectStateNotifying(_ s: inout Statement) -> String {
        """
        SELECT state, CASE WHEN state = 'available' AND run_at <= \(s.now()) THEN pg_notify(\(s.bind(channel)), queue) END
        FROM changed
        """
    }

    private func transition(_ what: String, _ statement: PostgresQuery) async throws -> JobState? {
        let rows = try await query(what, statement)
        guard let row = rows.first else { return nil }
        return try decode(what) { try Self.jobState(try row.makeRandomAccess()[0].decode(String.self)) }
    }

    /// `errors` with one more `{"at", "attempt", "error", "kind"}` (at: the database's now in
    /// unix ms; attempt: the attempt that ran), keeping the last ``JobErrorRecord/historyLimit``.
    /// `error` is the placeholder of the message; the kind and the limit are bound in `s`.
    static func appendError(kind: String, error: String, _ s: inout Statement) -> String {
        """
        (SELECT coalesce(jsonb_agg(kept.e ORDER BY kept.n), '[]'::jsonb) FROM (
           SELECT h.e, h.n FROM jsonb_array_elements(errors || jsonb_build_array(jsonb_build_object(
             'at', \(SQL.ms(s.now())), 'attempt', attempt, 'error', \(error)::text, 'kind', \(s.bind(kind))::text)))
             WITH ORDINALITY AS h(e, n)
           ORDER BY h.n DESC LIMIT \(s.bind(JobErrorRecord.historyLimit))) AS kept)
        """
    }

    // MARK: rescue and retention

    public func rescueExpiredLeases(poisonRescues: Int) async throws -> RescueReport {
        var s = statement()
        let poison = s.bind(poisonRescues), message = s.bind("lease expired (worker lost)"), now = s.now()
        let discard = "(attempt >= max_attempts OR rescue_count + 1 >= \(poison))"
        s.sql = """
            WITH expired AS MATERIALIZED (
              SELECT id FROM queue_job
              WHERE state = 'running' AND lease_expires_at < \(now)
              ORDER BY id
              FOR UPDATE SKIP LOCKED),
            changed AS (
              UPDATE queue_job SET
                state = CASE WHEN \(discard) THEN 'discarded' ELSE 'available' END,
                finalized_at = CASE WHEN \(discard) THEN \(now) END,
                rescue_count = rescue_count + 1, run_at = \(now),
                last_error = \(message), errors = \(Self.appendError(kind: "rescued", error: message, &s)),
                updated_at = \(now), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
              FROM expired WHERE queue_job.id = expired.id
              RETURNING queue_job.id, queue_job.state, queue_job.queue)
            SELECT id, state, CASE WHEN state = 'available' THEN pg_notify(\(s.bind(Self.channel)), queue) END
            FROM changed ORDER BY id
            """
        let statement = s.query
        let logger = self.logger
        return try await transaction("rescue") { connection -> RescueReport in
            // One rescuer at a time across every process; the others skip this pass.
            let locked = try await connection.query("SELECT pg_try_advisory_xact_lock(\(PostgresSchema.rescueLock))",
                                                    logger: logger).collect()
            guard try locked.first?.decode(Bool.self) == true else { return RescueReport() }
            var report = RescueReport()
            for row in try await connection.query(statement, logger: logger).collect() {
                let random = row.makeRandomAccess()
                let id = try random[0].decode(Int64.self)
                if try Self.jobState(try random[1].decode(String.self)) == .discarded {
                    report.discarded.append(id)
                } else {
                    report.requeued.append(id)
                }
            }
            return report
        }
    }

    public func prune(completedAge: Duration, finalAge: Duration, limit: Int) async throws -> Int {
        guard limit > 0 else { return 0 }
        var s = statement()
        let completed = s.bind(SQL.ms(completedAge)), final = s.bind(SQL.ms(finalAge)), most = s.bind(limit), now = s.now()
        s.sql = """
            WITH doomed AS MATERIALIZED (
              SELECT id FROM queue_job
              WHERE (state = 'completed' AND finalized_at < \(now) - INTERVAL '1 millisecond' * \(completed))
                 OR (state IN ('discarded','cancelled') AND finalized_at < \(now) - INTERVAL '1 millisecond' * \(final))
              ORDER BY finalized_at, id
              LIMIT \(most)
              FOR UPDATE SKIP LOCKED),
            deleted AS (DELETE FROM queue_job WHERE id IN (SELECT id FROM doomed) RETURNING 1)
            SELECT count(*)::int8 FROM deleted
            """
        return try await count("prune", s.query)
    }

    public func purge(states: Set<JobState>, finalizedBefore before: Date) async throws -> Int {
        let live = states.subtracting(JobState.final)
        guard live.isEmpty else {
            throw StoreError(.invalid, "purge deletes final jobs only, not \(live.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        guard !states.isEmpty else { return 0 }
        var s = statement()
        let names = try s.bind(array: states.map(\.rawValue).sorted()), cutoff = s.bind(SQL.ms(before))
        s.sql = """
            WITH deleted AS (
              DELETE FROM queue_job WHERE state = ANY(\(names)::text[]) AND finalized_at < (\(SQL.epochPlus)\(cutoff))
              RETURNING 1)
            SELECT count(*)::int8 FROM deleted
            """
        return try await count("purge", s.query)
    }

    private func count(_ what: String, _ statement: PostgresQuery) async throws -> Int {
        let rows = try await query(what, statement)
        return try decode(what) { try rows.first?.decode(Int.self) ?? 0 }
    }

    // MARK: reading and operating

    public func job(id: Int64) async throws -> Job? {
        let rows = try await query("job", "SELECT \(unescaped: Self.jobColumns) FROM queue_job WHERE id = \(id)")
        return try decode("job") { try rows.first.map(Self.job(from:)) }
    }

    public func jobs(_ query: JobQuery) async throws -> [Job] {
        guard query.limit > 0 else { return [] }
        if let ids = query.ids, ids.isEmpty { return [] }
        if let states = query.states, states.isEmpty { return [] }
        var s = statement()
        var conditions: [String] = []
        if let states = query.states {
            conditions.append("state = ANY(\(try s.bind(array: states.map(\.rawValue).sorted()))::text[])")
        }
        if let queue = query.queue { conditions.append("queue = \(s.bind(queue))") }
        if let kind = query.kind { conditions.append("kind = \(s.bind(kind))") }
        if let ids = query.ids { conditions.append("id = ANY(\(try s.bind(array: ids))::int8[])") }
        if let key = query.uniqueKey { conditions.append("unique_key = \(s.bind(key))") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        s.sql = "SELECT \(Self.jobColumns) FROM queue_job \(whereClause) ORDER BY id LIMIT \(s.bind(query.limit))"
        let rows = try await self.query("jobs", s.query)
        return try decode("jobs") { try rows.map(Self.job(from:)) }
    }

    /// The SET list that makes a finished job available again with its attempts reset.
    static func retryReset(_ s: inout Statement) -> String {
        """
        state = 'available', attempt = 0, rescue_count = 0, snooze_count = 0, run_at = \(s.now()),
        finalized_at = NULL, updated_at = \(s.now()), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
        """
    }

    /// UPDATE … SET ``retryReset(_:)`` of the discarded or cancelled job `id` unless its unique
    /// key is live in another job, RETURNING its queue.
    static func retryOne(_ id: Int64, offset: Int64) -> PostgresQuery {
        var s = Statement(offset: offset)
        s.sql = """
            UPDATE queue_job j SET \(retryReset(&s))
            WHERE j.id = \(s.bind(id)) AND j.state IN ('discarded','cancelled')
              AND NOT EXISTS (SELECT 1 FROM queue_job o
                              WHERE o.unique_key = j.unique_key AND o.state IN ('available','running') AND o.id <> j.id)
            RETURNING j.queue
            """
        return s.query
    }

    public func retry(ids: [Int64]) async throws -> [Int64] {
        let ids = Array(Set(ids)).sorted()
        guard !ids.isEmpty else { return [] }
        let offset = self.offset
        var s = Statement(offset: offset)
        s.sql = """
            UPDATE queue_job SET \(Self.retryReset(&s))
            WHERE id = ANY(\(try s.bind(array: ids))::int8[]) AND state IN ('discarded','cancelled') AND unique_key IS NULL
            RETURNING id
            """
        let unkeyed = s.query
        let logger = self.logger
        let retried = try await transaction("retry") { connection -> [Int64] in
            // Waiting jobs become due now, keeping their attempts.
            let woken = try await connection.query("""
                UPDATE queue_job SET run_at = \(now: offset), updated_at = \(now: offset)
                WHERE id = ANY(\(ids)::int8[]) AND state = 'available' AND run_at > \(now: offset)
                RETURNING id
                """, logger: logger).collect().map { try $0.decode(Int64.self) }
            // Without a unique key nothing can clash: all at once.
            var retried = woken
            retried += try await connection.query(unkeyed, logger: logger).collect().map { try $0.decode(Int64.self) }
            // With one, in id order: a job is left alone when its key is live in another job
            // (which may be one retried just before it, or one enqueued concurrently: its unique
            // violation rolls back to the savepoint and skips this job).
            let keyed = try await connection.query("""
                SELECT id FROM queue_job
                WHERE id = ANY(\(ids)::int8[]) AND state IN ('discarded','cancelled') AND unique_key IS NOT NULL
                ORDER BY id FOR UPDATE
                """, logger: logger).collect().map { try $0.decode(Int64.self) }
            for id in keyed {
                try await connection.query("SAVEPOINT callrec_retry", logger: logger)
                do {
                    let rows = try await connection.query(Self.retryOne(id, offset: offset), logger: logger).collect()
                    try await connection.query("RELEASE SAVEPOINT callrec_retry", logger: logger)
                    if !rows.isEmpty { retried.append(id) }
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                    try await connection.query("ROLLBACK TO SAVEPOINT callrec_retry", logger: logger)
                }
            }
            if !retried.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.channel), '')", logger: logger)
            }
            return retried.sorted()
        }
        return retried
    }

    public func expireLeases(ownedBy owners: [String]) async throws -> Int {
        let owners = Array(Set(owners)).sorted()
        guard !owners.isEmpty else { return 0 }
        let rows = try await query("expire leases", """
            UPDATE queue_job SET lease_expires_at = \(now: offset) - interval '1 millisecond', updated_at = \(now: offset)
            WHERE state = 'running' AND lease_owner = ANY(\(owners)::text[])
            RETURNING id
            """)
        return rows.count
    }

    public func cancel(ids: [Int64]) async throws -> [Int64] {
        let ids = Array(Set(ids)).sorted()
        guard !ids.isEmpty else { return [] }
        let rows = try await query("cancel", """
            WITH target AS MATERIALIZED (
              SELECT id FROM queue_job WHERE id = ANY(\(ids)::int8[]) AND state IN ('available','running')
              ORDER BY id FOR UPDATE)
            UPDATE queue_job SET state = 'cancelled', finalized_at = \(now: offset), updated_at = \(now: offset),
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
            FROM target WHERE queue_job.id = target.id AND queue_job.state IN ('available','running')
            RETURNING queue_job.id
            """)
        return try decode("cancel") { try rows.map { try $0.decode(Int64.self) }.sorted() }
    }

    public func queueStats() async throws -> QueueStats {
        // One statement, so one snapshot and one now().
        var s = statement()
        let now = s.now()
        s.sql = """
            SELECT 'count' AS part, queue, state, count(*)::int8 AS n, NULL::int8 AS at
              FROM queue_job GROUP BY queue, state
            UNION ALL
            SELECT 'due', queue, NULL, count(*)::int8, \(SQL.ms("min(run_at)"))
              FROM queue_job WHERE state = 'available' AND run_at <= \(now) GROUP BY queue
            UNION ALL
            SELECT 'next', NULL, NULL, NULL, \(SQL.ms("min(run_at)"))
              FROM queue_job WHERE state = 'available' AND run_at > \(now)
            UNION ALL
            SELECT 'now', NULL, NULL, NULL, \(SQL.ms(now))
            """
        let rows = try await query("queue stats", s.query)
        return try decode("queue stats") {
            var counts: [JobState: Int] = [:]
            var byQueue: [String: [JobState: Int]] = [:]
            var due = 0
            var dueByQueue: [String: Int] = [:]
            var oldest: Int64?
            var next: Int64?
            var now: Int64 = 0
            for row in rows {
                let (part, queue, state, n, at) = try row.decode((String, String?, String?, Int?, Int64?).self)
                switch part {
                case "count":
                    guard let queue, let state = state.flatMap(JobState.init(rawValue:)), let n else { continue }
                    counts[state, default: 0] += n
                    byQueue[queue, default: [:]][state] = n
                case "due":
                    guard let queue, let n else { continue }
                    due += n
                    dueByQueue[queue] = n
                    if let at { oldest = min(oldest ?? at, at) }
                case "next":
                    next = at
                default:
                    now = at ?? 0
                }
            }
            return QueueStats(counts: counts, byQueue: byQueue, due: due, dueByQueue: dueByQueue,
                              oldestDueSeconds: oldest.map { Double(now - $0) / 1000 }, nextRunAt: SQL.date(next))
        }
    }

    // MARK: rows

    /// The columns ``job(from:)`` reads, in its order (times as unix ms).
    static let jobColumns = [
        "id", "queue", "kind", "args", "unique_key", "state", "priority", "attempt", "max_attempts",
        "rescue_count", "snooze_count", SQL.ms("run_at"), "lease_owner", "lease_token", SQL.ms("lease_expires_at"),
        "last_error", "errors::text", SQL.ms("created_at"), SQL.ms("updated_at"), SQL.ms("finalized_at"),
    ].joined(separator: ", ")

    static func job(from row: PostgresRow) throws -> Job {
        let r = row.makeRandomAccess()
        let id = try r[0].decode(Int64.self)
        return Job(
            id: id, queue: try r[1].decode(String.self), kind: try r[2].decode(String.self),
            args: try r[3].decode(String.self), uniqueKey: try r[4].decode(String?.self),
            state: try jobState(try r[5].decode(String.self)), priority: try r[6].decode(Int.self),
            attempt: try r[7].decode(Int.self), maxAttempts: try r[8].decode(Int.self),
            rescueCount: try r[9].decode(Int.self), snoozeCount: try r[10].decode(Int.self),
            runAt: SQL.date(try r[11].decode(Int64.self)), leaseOwner: try r[12].decode(String?.self),
            leaseToken: try r[13].decode(Int64?.self), leaseExpiresAt: SQL.date(try r[14].decode(Int64?.self)),
            lastError: try r[15].decode(String?.self), errors: decodeErrors(try r[16].decode(String.self)),
            createdAt: SQL.date(try r[17].decode(Int64.self)), updatedAt: SQL.date(try r[18].decode(Int64.self)),
            finalizedAt: SQL.date(try r[19].decode(Int64?.self)))
    }

    static func jobState(_ name: String) throws -> JobState {
        guard let state = JobState(rawValue: name) else {
            throw StoreError(.unavailable, "unknown job state \(name)")
        }
        return state
    }
}

/// One entry of the `errors` column: `{"at": unix ms, "attempt", "error", "kind"}` (as in the
/// SQLite store).
private struct StoredError: Codable {
    var at: Int64
    var attempt: Int
    var error: String
    var kind: String
}

private func decodeErrors(_ text: String) -> [JobErrorRecord] {
    guard let stored = try? JSONDecoder().decode([StoredError].self, from: Data(text.utf8)) else { return [] }
    return stored.map { JobErrorRecord(at: SQL.date($0.at), attempt: $0.attempt, error: $0.error, kind: $0.kind) }
}

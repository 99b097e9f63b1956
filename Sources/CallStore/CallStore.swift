public import Foundation
public import ServiceLifecycle

/// The ledger and the job queue behind one protocol, with two backends (`SQLiteStore` in
/// CallStoreSQLite, `PostgresStore` in CallStorePostgres) that pass one conformance suite.
///
/// The logical schema (both backends; see each backend's migration for the SQL):
///
/// - `queue_job`: research/queue-and-reconcile.md §(2) plus `snooze_count`; a partial unique
///   index on `unique_key` among `available`/`running` jobs.
/// - `recording` (key PK, path, metadata, state, error_code, error_message, part_count, seconds,
///   created_at, updated_at), `part` (recording_key + idx PK, spool_path, bytes, seconds, sha256,
///   state, call_log_id, marker, create_started_at, attached_at, call_log_origin), `provider_ref`
///   (recording_key + provider PK, reference, state), `deletion` (id PK, recording_key, reason,
///   created_at, finished_at), `deletion_step` (deletion_id + target PK, position, state
///   pending/done/failed/skipped, http_status, detail, updated_at), `audit` (id autoincrement, append-only), `tombstone` (key PK; never deleted).
///
/// Every method is one short transaction; none is held open while a job runs. Times of leases
/// are the database's (PostgreSQL `now()`, so that machines need not agree about clocks) or the
/// process's (SQLite: one host).
///
/// Lifetime: a store is a ServiceLifecycle `Service`. Its ``run()`` holds what runs in the
/// background (PostgreSQL: the connection pool and the LISTEN connection; SQLite: nothing) until
/// the task is cancelled, the group shuts down gracefully, or ``close()``. A long-running caller
/// puts the store in its `ServiceGroup` before the services that use it (a group shuts its
/// services down in reverse order, so the store outlives them); a one-shot command wraps its
/// work in ``withRunningStore(_:_:)``. ``migrate()`` needs no running store.
public protocol CallStore: Service, CRMIndexStore, Sendable {
    /// Human-readable location without credentials (`sqlite:/path/state.db`, `postgres://host:5432/db`).
    var location: String { get }

    /// Creates or upgrades the schema; safe to call from several processes at once.
    func migrate() async throws
    /// Closes the store: it refuses work afterwards, and ``run()`` returns. Idempotent.
    func close() async throws
    /// The clock leases are measured by.
    func now() async throws -> Date

    // MARK: queue

    /// Inserts a job, or reports a live duplicate of its unique key.
    func enqueue(_ job: NewJob) async throws -> EnqueueResult
    /// Enqueues many jobs in one transaction, without a ledger change (a backend may insert
    /// them in one statement); one result per job, in order.
    func enqueue(_ jobs: [NewJob]) async throws -> [EnqueueResult]
    /// Claims up to `limit` due jobs of `queue` (priority, then `runAt`, then id), marks them
    /// running with a fresh fencing token each and a lease of `leaseTTL`, and counts an attempt.
    func claim(queue: String, limit: Int, owner: String, leaseTTL: Duration) async throws -> [Job]
    /// Extends the leases still held; returns those (a missing one was lost: stop that job).
    func heartbeat(_ leases: [Lease], leaseTTL: Duration) async throws -> Set<Lease>
    /// Marks the job completed; false when the lease is no longer the job's (nothing changed).
    func complete(_ lease: Lease) async throws -> Bool
    /// Records a failure: the job becomes available again after `retryIn`, or discarded when
    /// `permanent` or out of attempts. Returns the new state, or nil when the lease was lost.
    func fail(_ lease: Lease, error: String, permanent: Bool, retryIn: Duration) async throws -> JobState?
    /// Makes the job available again after `delay`, and not before `notBefore` (an instant such
    /// as a budget's reset, counted where the change is recorded), without using up its attempt
    /// (429, provider not ready). After `maxSnoozes` snoozes it is discarded. Nil when the lease
    /// was lost.
    func snooze(_ lease: Lease, delay: Duration, notBefore: Date?, reason: String, maxSnoozes: Int) async throws -> JobState?
    /// Makes the job available at once without using up its attempt (graceful shutdown).
    func release(_ lease: Lease, reason: String) async throws -> Bool
    /// Returns running jobs whose lease expired to `available` (to run at once), or discards them
    /// when out of attempts or after their `poisonRescues`-th lost lease.
    func rescueExpiredLeases(poisonRescues: Int) async throws -> RescueReport
    /// Ends now the leases held by these owners (workers known to be dead, such as a process of
    /// this host that no longer exists), so that the next rescue returns their jobs at once
    /// instead of after the lease TTL. Returns how many leases ended.
    func expireLeases(ownedBy owners: [String]) async throws -> Int
    /// Deletes completed jobs finalized more than `completedAge` ago and discarded or cancelled
    /// ones older than `finalAge`, at most `limit` rows. Returns how many went.
    func prune(completedAge: Duration, finalAge: Duration, limit: Int) async throws -> Int
    func job(id: Int64) async throws -> Job?
    func jobs(_ query: JobQuery) async throws -> [Job]
    /// Discarded or cancelled jobs become available again with `attempt = 0`. Jobs whose unique
    /// key is live again in another job are left alone. Available jobs that wait (snoozed until
    /// a budget's reset, backing off) become due now, keeping their attempts. Returns the ids
    /// retried or woken.
    func retry(ids: [Int64]) async throws -> [Int64]
    /// Available or running jobs become cancelled (a running job's worker then fails its fenced
    /// completion). Returns the ids cancelled.
    func cancel(ids: [Int64]) async throws -> [Int64]
    /// Deletes jobs in `states` (final states only) finalized before `before`.
    func purge(states: Set<JobState>, finalizedBefore before: Date) async throws -> Int
    func queueStats() async throws -> QueueStats
    /// Returns when a job may have been enqueued or become due (a notification, or `timeout`
    /// elapsed); returns at once when the task is cancelled.
    func waitForWork(timeout: Duration) async

    // MARK: ledger

    /// Applies every op in one transaction. Returns one result per ``LedgerOp/enqueue(_:)``, in order.
    @discardableResult
    func commit(_ ops: [LedgerOp]) async throws -> [EnqueueResult]
    func recording(key: String) async throws -> Recording?
    func recordings(_ query: RecordingQuery) async throws -> [Recording]
    /// Recordings per state (every state present).
    func recordingCounts() async throws -> [RecordingState: Int]
    /// Parts of a recording, by index.
    func parts(key: String) async throws -> [Part]
    /// The part attached (or being attached) to this call log.
    func part(callLogID: String) async throws -> Part?
    func providerRefs(key: String) async throws -> [ProviderRef]
    func deletion(id: String) async throws -> Deletion?
    /// Deletions not finished, oldest first.
    func openDeletions() async throws -> [Deletion]
    func audit(key: String?, limit: Int) async throws -> [AuditEntry]
    func tombstone(key: String) async throws -> Tombstone?

    // MARK: PBX sources

    /// The files known in one directory (absolute path), for a scan that opens none it knows.
    func sourceFiles(directory: String) async throws -> [SourceFile]
    func sourceFile(path: String) async throws -> SourceFile?
    /// CDR rows of a PBX matching any key of the query.
    func cdrRows(_ query: CDRRowQuery) async throws -> [StoredCDRRow]
    func cdrCursor(pbx: String, path: String) async throws -> CDRCursor?

    // MARK: Telnyx

    /// The stored events of these call sessions, by `occurred_at` then id (the call's facts,
    /// and the recordings of a session a call event wakes).
    func telnyxEvents(sessions: [String]) async throws -> [TelnyxEventRow]
    func telnyxEvent(id: String) async throws -> TelnyxEventRow?
}

extension CallStore {
    /// A store with nothing to run in the background waits until it is cancelled or the group
    /// shuts down.
    public func run() async throws {
        try? await gracefulShutdown()
    }

    /// Snoozes for `delay`.
    public func snooze(_ lease: Lease, delay: Duration, reason: String, maxSnoozes: Int) async throws -> JobState? {
        try await snooze(lease, delay: delay, notBefore: nil, reason: reason, maxSnoozes: maxSnoozes)
    }

    /// Enqueues without a ledger change.
    public func enqueue(_ jobs: [NewJob]) async throws -> [EnqueueResult] {
        try await commit(jobs.map { .enqueue($0) })
    }

    /// Whether no job is due or running: what `worker --until-idle` waits for. Jobs still
    /// leased by a dead worker count as running until the rescuer frees them.
    public func isIdle(queues: Set<String>? = nil) async throws -> Bool {
        let stats = try await queueStats()
        guard let queues else { return stats.due == 0 && stats[.running] == 0 }
        return queues.allSatisfy { queue in
            (stats.dueByQueue[queue] ?? 0) == 0 && (stats.byQueue[queue]?[.running] ?? 0) == 0
        }
    }
}

/// Runs `store` (its ``CallStore/run()``) around `body` and then closes it: the one teardown
/// path of a one-shot command. The store is closed whether `body` returns or throws, and the
/// background work has ended when this returns. Not for use inside a `Service` of a group that
/// may shut down gracefully while `body` still needs the store: put the store in that group.
public func withRunningStore<T>(_ store: any CallStore, _ body: (any CallStore) async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await store.run() }
        let result: Result<T, any Error>
        do {
            result = .success(try await body(store))
        } catch {
            result = .failure(error)
        }
        try? await store.close()
        group.cancelAll()
        // The store's own failure (it could not run) only matters when the body succeeded.
        do {
            try await group.waitForAll()
        } catch {
            if case .success = result, !(error is CancellationError) { throw error }
        }
        return try result.get()
    }
}

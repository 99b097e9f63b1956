import CallStore
import Logging
import PostgresNIO

// The webhook's commit (issue 16, goal G2): a batch of verified Telnyx events, the recordings
// they announce and the call sessions they wake, as ONE statement outside a transaction block.
// Op by op it took seven round trips (BEGIN, the transaction's timeout, the events, which keys
// the ledger knows, the registrations, the wake-up, COMMIT); on a machine whose cores the
// senders, the worker and the server share, each round trip waits for both processes to be
// scheduled, and every webhook of the batch waits for all of them.
extension PostgresStore {
    /// A commit of the webhook's shape: `.insertTelnyxEvents`, then registrations
    /// (``LedgerOp/unlessKnown(key:ops:)`` that the set-based path takes, each with its
    /// recording), then at most one `.wakeTelnyxSessions`. Anything else is nil: the commit
    /// takes the transaction path.
    struct WebhookCommit {
        var events: [TelnyxEventRow] = []
        /// One per key, the first of the batch's (a later one of a key the first registered is
        /// known to it, as op by op).
        var registrations: [Registration] = []
        var sessions: [String] = []
        var uniqueKeyPrefix = ""

        init?(_ ops: [LedgerOp]) {
            var keys = Set<String>(), woken = false
            for op in ops {
                switch op {
                case .insertTelnyxEvents(let rows) where registrations.isEmpty && !woken:
                    events += rows
                case .unlessKnown where !woken:
                    // A delayed job takes the transaction path: this statement's wake-up does not
                    // see the jobs it inserts (their own batch's call events would not wake them).
                    guard let registration = Registration(op), registration.recording != nil,
                          registration.jobs.allSatisfy({ $0.delay <= .zero }) else { return nil }
                    if keys.insert(registration.key).inserted { registrations.append(registration) }
                case .wakeTelnyxSessions(let sessions, let prefix) where !woken:
                    self.sessions = PostgresStore.sessionsToWake(sessions)
                    uniqueKeyPrefix = prefix
                    woken = true
                default:
                    return nil
                }
            }
        }

        /// The statement (nil: nothing to do). Its CTEs run in one order whatever the batch (the
        /// events, the recordings after them, the jobs of those inserted, the wake-up, then the
        /// references, audit rows and numbers of those inserted, which the query does not read), so
        /// concurrent commits of overlapping batches take their locks in the same order. Each
        /// sees the ledger as it was before the statement: the wake-up adds the keys of the
        /// batch's own recording events of its sessions, which the events' insert does not show
        /// it (a new job is due at once; one of a known recording may wait for these events).
        func statement(offset: Int64) throws -> Statement? {
            var s = Statement(offset: offset)
            var ctes: [String] = []
            let insert = try PostgresStore.insertEvents(events, &s)
            if let insert { ctes.append("events AS (\(insert) RETURNING 1)") }
            let first = insert == nil ? nil : "events"
            let (registrations, jobs) = try PostgresStore.registrationInserts(self.registrations, insertedOnly: true, after: first, &s)
            ctes += registrations
            // The wake-up runs after the inserts it follows in the list (which the others read).
            let last = jobs ? "jobs" : registrations.isEmpty ? first : "recordings"
            var queues = jobs ? ["jobs"] : []
            if !sessions.isEmpty {
                let wanted = Set(sessions)
                let own = Set(events.compactMap { event in
                    event.recordingKey.flatMap { key in event.callSessionID.flatMap { wanted.contains($0) ? uniqueKeyPrefix + key : nil } }
                })
                let keys = try PostgresStore.sessionKeys(sessions, uniqueKeyPrefix: uniqueKeyPrefix, also: own.sorted(), &s)
                ctes.append("woken AS (\(PostgresStore.wakeUpdate(uniqueKeys: keys, after: last, &s)))")
                queues.append("woken")
            }
            guard !ctes.isEmpty else { return nil }
            s.sql = Statement.with(ctes, s.notify(queuesOf: queues))
            return s
        }
    }

    /// Applies a commit of the webhook's shape as one statement on a pooled connection (atomic:
    /// one statement is one transaction).
    func commitWebhook(_ commit: WebhookCommit) async throws {
        guard let statement = try commit.statement(offset: offset) else { return }
        _ = try await query("webhook commit", statement.query)
    }
}

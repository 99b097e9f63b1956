public import CallStore
import Foundation
import Logging
import PostgresNIO

extension PostgresStore {
    // MARK: commit

    @discardableResult
    public func commit(_ ops: [LedgerOp]) async throws -> [EnqueueResult] {
        guard !ops.isEmpty else { return [] }
        for case .enqueue(let job) in ops { try job.validate() }
        // The webhook's batch: one statement, no transaction block (PostgresStore+Webhooks).
        if let webhook = WebhookCommit(ops) {
            try await commitWebhook(webhook)
            return []
        }
        let logger = self.logger
        let offset = self.offset
        return try await transaction("commit") { connection -> [EnqueueResult] in
            var results: [EnqueueResult] = []
            // A run of consecutive registrations goes set-based (their enqueues return no result).
            var registrations: [Registration] = []
            for op in ops {
                if let registration = Registration(op) {
                    registrations.append(registration)
                    continue
                }
                try await Self.applyRegistrations(registrations, connection, offset: offset, logger: logger)
                registrations.removeAll()
                if let result = try await Self.apply(op, connection, offset: offset, logger: logger) { results.append(result) }
            }
            try await Self.applyRegistrations(registrations, connection, offset: offset, logger: logger)
            return results
        }
    }

    /// Applies one op inside the commit's transaction; the result of an enqueue. Times the op
    /// sets itself (`updated_at`, `finished_at`) are the store's now (the transaction's `now()`
    /// plus `offset` ms).
    private static func apply(_ op: LedgerOp, _ connection: PostgresConnection, offset: Int64,
                              logger: Logger) async throws -> EnqueueResult? {
        let db = LedgerConnection(connection: connection, logger: logger)
        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] { try await db.rows(query) }
        func update(_ query: PostgresQuery, _ what: String) async throws { try await db.update(query, what) }
        func requireRecording(_ key: String) async throws { try await db.requireRecording(key) }

        switch op {
        case .require(let key, let states):
            let expected = states.map(\.rawValue).sorted().joined(separator: ", ")
            // FOR UPDATE: the guard holds until the commit (a concurrent commit on the same
            // recording waits, then sees the new state).
            guard let row = try await rows("SELECT state FROM recording WHERE key = \(key) FOR UPDATE").first else {
                throw StoreError(.conflict, "\(key) does not exist (expected one of: \(expected))")
            }
            let state = try row.decode(String.self)
            guard let current = RecordingState(rawValue: state), states.contains(current) else {
                throw StoreError(.conflict, "\(key): state is \(state), expected one of: \(expected)")
            }

        case .insertRecording(let r), .registerRecording(let r):
            let exclusive = if case .registerRecording = op { true } else { false }
            var s = Statement(offset: offset)
            let values = [
                s.bind(r.key), s.bind(r.path), s.bind(r.metadata), s.bind(r.state.rawValue), s.bind(r.errorCode),
                s.bind(r.errorMessage), s.bind(r.partCount), s.bind(r.seconds),
                "(\(SQL.epochPlus)\(s.bind(SQL.ms(r.createdAt))))", "(\(SQL.epochPlus)\(s.bind(SQL.ms(r.updatedAt))))",
            ]
            s.sql = """
                INSERT INTO recording (key, path, metadata, state, error_code, error_message, part_count, seconds,
                                       created_at, updated_at)
                VALUES (\(values.joined(separator: ", ")))
                ON CONFLICT (key) DO NOTHING RETURNING 1
                """
            // A concurrent insert of the same key waits for the other transaction, then inserts
            // nothing: for a registration that is a conflict.
            if try await rows(s.query).isEmpty {
                if exclusive { throw StoreError(.conflict, "recording \(r.key) exists already") }
            } else {
                try await db.insertNumbers(key: r.key, RecordingNumbers.reversed(path: r.path, metadata: r.metadata))
            }

        case .setRecordingMetadata(let key, let metadata):
            let before = try await db.numbers(key: key)
            try await update("""
                UPDATE recording SET metadata = \(metadata), updated_at = \(now: offset) WHERE key = \(key) RETURNING 1
                """, "recording \(key)")
            try await db.renumber(key: key, before: before)

        case .setRecordingState(let key, let state, let errorCode, let errorMessage):
            try await update("""
                UPDATE recording SET state = \(state.rawValue), error_code = \(errorCode), error_message = \(errorMessage),
                    updated_at = \(now: offset)
                WHERE key = \(key) RETURNING 1
                """, "recording \(key)")

        case .setRecordingAudio(let key, let partCount, let seconds):
            try await update("""
                UPDATE recording SET part_count = \(partCount), seconds = \(seconds), updated_at = \(now: offset)
                WHERE key = \(key) RETURNING 1
                """, "recording \(key)")

        case .replaceParts(let key, let parts):
            try await requireRecording(key)
            if let stray = parts.first(where: { $0.recordingKey != key }) {
                throw StoreError(.invalid, "part \(stray.index) belongs to \(stray.recordingKey), not to \(key)")
            }
            _ = try await rows("DELETE FROM part WHERE recording_key = \(key)")
            for part in parts {
                var s = Statement(offset: offset)
                let values = partValues(part, &s)
                s.sql = """
                    INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker,
                                      create_started_at, attached_at, call_log_origin)
                    VALUES (\(s.bind(part.recordingKey)), \(s.bind(part.index)), \(values))
                    """
                _ = try await rows(s.query)
            }

        case .updatePart(let part):
            var s = Statement(offset: offset)
            let columns = "spool_path, bytes, seconds, sha256, state, call_log_id, marker, create_started_at, attached_at, call_log_origin"
            let values = partValues(part, &s)
            s.sql = """
                UPDATE part SET (\(columns)) = ROW(\(values))
                WHERE recording_key = \(s.bind(part.recordingKey)) AND idx = \(s.bind(part.index)) RETURNING 1
                """
            try await update(s.query, "part \(part.index) of \(part.recordingKey)")

        case .putProviderRef(let ref):
            try await requireRecording(ref.recordingKey)
            _ = try await rows("""
                INSERT INTO provider_ref (recording_key, provider, reference, state)
                VALUES (\(ref.recordingKey), \(ref.provider), \(ref.reference), \(ref.state))
                ON CONFLICT (recording_key, provider) DO UPDATE SET reference = excluded.reference, state = excluded.state
                """)

        case .replaceProviderRefs(let key, let refs):
            try await requireRecording(key)
            if let stray = refs.first(where: { $0.recordingKey != key }) {
                throw StoreError(.invalid, "the \(stray.provider) reference belongs to \(stray.recordingKey), not to \(key)")
            }
            _ = try await rows("DELETE FROM provider_ref WHERE recording_key = \(key)")
            for ref in refs {
                _ = try await apply(.putProviderRef(ref), connection, offset: offset, logger: logger)
            }

        case .insertDeletion(let deletion):
            var s = Statement(offset: offset)
            let values = [
                s.bind(deletion.id), s.bind(deletion.recordingKey), s.bind(deletion.reason),
                "(\(SQL.epochPlus)\(s.bind(SQL.ms(deletion.createdAt))))",
                "(\(SQL.epochPlus)\(s.bind(SQL.ms(deletion.finishedAt))))",
            ]
            s.sql = """
                INSERT INTO deletion (id, recording_key, reason, created_at, finished_at)
                VALUES (\(values.joined(separator: ", ")))
                ON CONFLICT (id) DO NOTHING RETURNING 1
                """
            if try await rows(s.query).isEmpty {
                throw StoreError(.conflict, "deletion \(deletion.id) exists already")
            }
            for step in deletion.steps {
                var s = Statement(offset: offset)
                let values = [
                    s.bind(deletion.id), s.bind(step.target), s.bind(step.position), s.bind(step.state.rawValue),
                    s.bind(step.httpStatus), s.bind(step.detail), "(\(SQL.epochPlus)\(s.bind(SQL.ms(step.updatedAt))))",
                ]
                s.sql = """
                    INSERT INTO deletion_step (deletion_id, target, position, state, http_status, detail, updated_at)
                    VALUES (\(values.joined(separator: ", ")))
                    """
                _ = try await rows(s.query)
            }

        case .updateDeletionStep(let id, let target, let state, let httpStatus, let detail):
            try await update("""
                UPDATE deletion_step SET state = \(state.rawValue), http_status = \(httpStatus), detail = \(detail),
                    updated_at = \(now: offset)
                WHERE deletion_id = \(id) AND target = \(target) RETURNING 1
                """, "step \(target) of deletion \(id)")

        case .finishDeletion(let id):
            // A second finish keeps the first time.
            try await update("UPDATE deletion SET finished_at = coalesce(finished_at, \(now: offset)) WHERE id = \(id) RETURNING 1",
                             "deletion \(id)")

        case .audit(let entry):
            var s = Statement(offset: offset)
            let values = [
                "(\(SQL.epochPlus)\(s.bind(SQL.ms(entry.at))))", s.bind(entry.recordingKey), s.bind(entry.action),
                s.bind(entry.target), s.bind(entry.httpStatus), s.bind(entry.detail), s.bind(entry.actor),
            ]
            s.sql = """
                INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
                VALUES (\(values.joined(separator: ", ")))
                """
            _ = try await rows(s.query)

        case .tombstone(let t):
            _ = try await rows("""
                INSERT INTO tombstone (key, path, reason, deleted_at)
                VALUES (\(t.key), \(t.path), \(t.reason), (\(unescaped: SQL.epochPlus)\(SQL.ms(t.deletedAt))))
                ON CONFLICT (key) DO NOTHING
                """)

        case .enqueue(let job):
            return try enqueueResult(try await rows(insertJob(job, offset: offset)))

        case .retryJob(let id):
            let retried: [PostgresRow]
            do {
                retried = try await rows(retryOne(id, offset: offset))
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                // A job with the same key became live concurrently.
                throw StoreError(.conflict, "job \(id) has its unique key live in another job")
            }
            guard let row = retried.first else {
                guard let found = try await rows("SELECT state, unique_key FROM queue_job WHERE id = \(id)").first else {
                    throw StoreError(.conflict, "job \(id) does not exist")
                }
                let (state, key) = try found.decode((String, String?).self)
                if state != JobState.discarded.rawValue, state != JobState.cancelled.rawValue {
                    throw StoreError(.conflict, "job \(id) is \(state), not discarded or cancelled")
                }
                throw StoreError(.conflict, "job \(id) has its unique key \(key ?? "") live in another job")
            }
            _ = try await rows("SELECT pg_notify(\(channel), \(try row.decode(String.self)))")

        case .requireNoLiveJob(let uniqueKey):
            if let row = try await rows("""
                SELECT id FROM queue_job WHERE unique_key = \(uniqueKey) AND state IN ('available','running') LIMIT 1
                """).first {
                throw StoreError(.conflict, "job \(try row.decode(Int64.self)) (\(uniqueKey)) is live")
            }

        case .putSourceFile, .setRecordingPath, .insertCDRRows, .putCDRCursor, .wakeJobs:
            try await applySource(op, connection, offset: offset, logger: logger)
        case .insertTelnyxEvents, .wakeTelnyxSessions:
            try await applyTelnyx(op, connection, offset: offset, logger: logger)
        case .putWaveform(let key, let waveform):
            try await applyWaveform(key: key, waveform, connection, logger: logger)
        case .putWarnings, .addPipedriveSpend:
            try await applyConsole(op, connection, offset: offset, logger: logger)
        case .unlessKnown(let key, let ops):
            let known = try await rows("""
                SELECT 1 FROM recording WHERE key = \(key) UNION ALL SELECT 1 FROM tombstone WHERE key = \(key) LIMIT 1
                """)
            if known.isEmpty {
                for op in ops { _ = try await apply(op, connection, offset: offset, logger: logger) }
            }
        }
        return nil
    }

    /// The connection of a commit, with the helpers of its ops.
    struct LedgerConnection {
        let connection: PostgresConnection
        let logger: Logger

        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
            try await connection.query(query, logger: logger).collect()
        }

        /// Runs an UPDATE … RETURNING 1; `notFound` unless it changed a row.
        func update(_ query: PostgresQuery, _ what: String) async throws {
            if try await rows(query).isEmpty { throw StoreError(.notFound, "\(what) does not exist") }
        }

        func requireRecording(_ key: String) async throws {
            if try await rows("SELECT 1 FROM recording WHERE key = \(key)").isEmpty {
                throw StoreError(.notFound, "recording \(key) does not exist")
            }
        }

        /// The numbers of recording `key` as its row stands (RecordingNumbers; none when it does
        /// not exist).
        func numbers(key: String) async throws -> Set<String> {
            guard let row = try await rows("SELECT path, metadata FROM recording WHERE key = \(key)").first else { return [] }
            let (path, metadata) = try row.decode((String, String?).self)
            return RecordingNumbers.reversed(path: path, metadata: metadata)
        }

        func insertNumbers(key: String, _ numbers: Set<String>) async throws {
            guard !numbers.isEmpty else { return }
            _ = try await rows("""
                INSERT INTO recording_number (reversed, recording_key) SELECT unnest(\(numbers.sorted())::text[]), \(key)
                ON CONFLICT DO NOTHING
                """)
        }

        /// After a change of the path or the sidecar: the numbers that went are removed, the new
        /// ones added.
        func renumber(key: String, before: Set<String>) async throws {
            let after = try await numbers(key: key)
            let gone = before.subtracting(after).sorted()
            if !gone.isEmpty {
                _ = try await rows("DELETE FROM recording_number WHERE recording_key = \(key) AND reversed = ANY(\(gone)::text[])")
            }
            try await insertNumbers(key: key, after.subtracting(before))
        }
    }

    /// The placeholders of a part's columns after its key and index, comma-separated.
    private static func partValues(_ part: Part, _ s: inout Statement) -> String {
        [
            s.bind(part.spoolPath), s.bind(part.bytes), s.bind(part.seconds), s.bind(part.sha256),
            s.bind(part.state.rawValue), s.bind(part.callLogID), s.bind(part.marker),
            "(\(SQL.epochPlus)\(s.bind(SQL.ms(part.createStartedAt))))",
            "(\(SQL.epochPlus)\(s.bind(SQL.ms(part.attachedAt))))", s.bind(part.callLogOrigin?.rawValue),
        ].joined(separator: ", ")
    }

    // MARK: reads

    static let recordingColumns = """
        key, path, metadata, state, error_code, error_message, part_count, seconds, \
        \(SQL.ms("created_at")), \(SQL.ms("updated_at"))
        """

    static let partColumns = """
        recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker, \
        \(SQL.ms("create_started_at")), \(SQL.ms("attached_at")), call_log_origin
        """

    public func recording(key: String) async throws -> Recording? {
        let rows = try await query("recording", "SELECT \(unescaped: Self.recordingColumns) FROM recording WHERE key = \(key)")
        return try decode("recording") { try rows.first.map(Self.recording(from:)) }
    }

    /// The condition on `states` (none: any state), bound into `s`; nil when no state can match.
    static func stateConditions(_ states: Set<RecordingState>?, _ s: inout Statement) throws -> [String]? {
        guard let states else { return [] }
        if states.isEmpty { return nil }
        return ["state = ANY(\(try s.bind(array: states.map(\.rawValue).sorted()))::text[])"]
    }

    public func recordings(_ query: RecordingQuery) async throws -> [Recording] {
        guard query.limit > 0 else { return [] }
        var s = statement()
        guard var conditions = try Self.stateConditions(query.states, &s) else { return [] }
        if let path = query.path { conditions.append("path = \(s.bind(path))") }
        if let after = query.afterKey { conditions.append("key > \(s.bind(after))") }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        //: key order is byte order, as in SQLite, whatever the database's collation.
        s.sql = """
            SELECT \(Self.recordingColumns) FROM recording \(whereClause)
            ORDER BY key LIMIT \(s.bind(query.limit))
            """
        let rows = try await self.query("recordings", s.query)
        return try decode("recordings") { try rows.map(Self.recording(from:)) }
    }

    public func recordingCounts() async throws -> [RecordingState: Int] {
        let rows = try await query("recording counts", "SELECT state, count(*)::int8 FROM recording GROUP BY state")
        return try decode("recording counts") {
            var counts = Dictionary(uniqueKeysWithValues: RecordingState.allCases.map { ($0, 0) })
            for row in rows {
                let (state, n) = try row.decode((String, Int).self)
                if let state = RecordingState(rawValue: state) { counts[state] = n }
            }
            return counts
        }
    }

    public func parts(key: String) async throws -> [Part] {
        let rows = try await query("parts", """
            SELECT \(unescaped: Self.partColumns) FROM part WHERE recording_key = \(key) ORDER BY idx
            """)
        return try decode("parts") { try rows.map(Self.part(from:)) }
    }

    public func part(callLogID: String) async throws -> Part? {
        let rows = try await query("part", """
            SELECT \(unescaped: Self.partColumns) FROM part WHERE call_log_id = \(callLogID)
            ORDER BY recording_key, idx LIMIT 1
            """)
        return try decode("part") { try rows.first.map(Self.part(from:)) }
    }

    public func providerRefs(key: String) async throws -> [ProviderRef] {
        let rows = try await query("provider refs", """
            SELECT provider, recording_key, reference, state FROM provider_ref WHERE recording_key = \(key)
            ORDER BY provider
            """)
        return try decode("provider refs") {
            try rows.map { row in
                let (provider, key, reference, state) = try row.decode((String, String, String, String).self)
                return ProviderRef(provider: provider, recordingKey: key, reference: reference, state: state)
            }
        }
    }

    public func deletion(id: String) async throws -> Deletion? {
        try await deletions("deletion", where: "id = $1", id).first
    }

    public func openDeletions() async throws -> [Deletion] {
        try await deletions("open deletions", where: "finished_at IS NULL", nil)
    }

    /// Deletions matching `condition` (oldest first) with their steps, read in one snapshot.
    private func deletions(_ what: String, where condition: String, _ id: String?) async throws -> [Deletion] {
        var s = statement()
        if let id { _ = s.bind(id) }
        s.sql = """
            SELECT id, recording_key, reason, \(SQL.ms("created_at")), \(SQL.ms("finished_at"))
            FROM deletion WHERE \(condition) ORDER BY created_at, id
            """
        let head = s.query
        let logger = self.logger
        let (deletionRows, stepRows) = try await transaction(what, readOnly: true) { connection in
            let deletions = try await connection.query(head, logger: logger).collect()
            guard !deletions.isEmpty else { return ([PostgresRow](), [PostgresRow]()) }
            let ids = try deletions.map { try $0.makeRandomAccess()[0].decode(String.self) }
            let steps = try await connection.query("""
                SELECT deletion_id, position, target, state, http_status, detail, \(unescaped: SQL.ms("updated_at"))
                FROM deletion_step WHERE deletion_id = ANY(\(ids)::text[]) ORDER BY position, target
                """, logger: logger).collect()
            return (deletions, steps)
        }
        return try decode(what) {
            var steps: [String: [DeletionStep]] = [:]
            for row in stepRows {
                let (deletionID, position, target, stateName, httpStatus, detail, updatedAt) =
                    try row.decode((String, Int, String, String, Int?, String?, Int64).self)
                guard let state = DeletionStepState(rawValue: stateName) else {
                    throw StoreError(.unavailable, "deletion \(deletionID) has a step in an unknown state \(stateName)")
                }
                steps[deletionID, default: []].append(DeletionStep(position: position, target: target, state: state,
                                                                   httpStatus: httpStatus, detail: detail,
                                                                   updatedAt: SQL.date(updatedAt)))
            }
            return try deletionRows.map { row in
                let (id, key, reason, createdAt, finishedAt) = try row.decode((String, String, String, Int64, Int64?).self)
                return Deletion(id: id, recordingKey: key, reason: reason, steps: steps[id] ?? [],
                                createdAt: SQL.date(createdAt), finishedAt: SQL.date(finishedAt))
            }
        }
    }

    public func audit(key: String?, limit: Int) async throws -> [AuditEntry] {
        guard limit > 0 else { return [] }
        // The last `limit` entries, oldest first.
        var s = statement()
        let condition = key.map { "WHERE recording_key = \(s.bind($0))" } ?? ""
        s.sql = """
            SELECT id, \(SQL.ms("at")), recording_key, action, target, http_status, detail, actor
            FROM audit \(condition) ORDER BY id DESC LIMIT \(s.bind(limit))
            """
        let rows = try await query("audit", s.query)
        return try decode("audit") {
            try rows.reversed().map { row in
                let (id, at, key, action, target, httpStatus, detail, actor) =
                    try row.decode((Int64, Int64, String?, String, String?, Int?, String?, String).self)
                return AuditEntry(id: id, at: SQL.date(at), recordingKey: key, action: action, target: target,
                                  httpStatus: httpStatus, detail: detail, actor: actor)
            }
        }
    }

    public func tombstone(key: String) async throws -> Tombstone? {
        let rows = try await query("tombstone", """
            SELECT key, path, reason, \(unescaped: SQL.ms("deleted_at")) FROM tombstone WHERE key = \(key)
            """)
        return try decode("tombstone") {
            try rows.first.map { row in
                let (key, path, reason, deletedAt) = try row.decode((String, String, String, Int64).self)
                return Tombstone(key: key, path: path, reason: reason, deletedAt: SQL.date(deletedAt))
            }
        }
    }

    // MARK: rows

    static func recording(from row: PostgresRow) throws -> Recording {
        let (key, path, metadata, stateName, errorCode, errorMessage, partCount, seconds, createdAt, updatedAt) =
            try row.decode((String, String, String?, String, String?, String?, Int, Double?, Int64, Int64).self)
        guard let state = RecordingState(rawValue: stateName) else {
            throw StoreError(.unavailable, "recording \(key) has an unknown state \(stateName)")
        }
        return Recording(key: key, path: path, metadata: metadata, state: state, errorCode: errorCode,
                         errorMessage: errorMessage, partCount: partCount, seconds: seconds,
                         createdAt: SQL.date(createdAt), updatedAt: SQL.date(updatedAt))
    }

    static func part(from row: PostgresRow) throws -> Part {
        let (key, index, spoolPath, bytes, seconds, sha256, stateName, callLogID, marker, createStartedAt, attachedAt, origin) =
            try row.decode((String, Int, String, Int64, Double, String, String, String?, String?, Int64?, Int64?, String?).self)
        guard let state = PartState(rawValue: stateName) else {
            throw StoreError(.unavailable, "part \(index) of \(key) has an unknown state \(stateName)")
        }
        return Part(recordingKey: key, index: index, spoolPath: spoolPath, bytes: bytes, seconds: seconds, sha256: sha256,
                    state: state, callLogID: callLogID, callLogOrigin: origin.flatMap(CallLogOrigin.init(rawValue:)), marker: marker, createStartedAt: SQL.date(createStartedAt),
                    attachedAt: SQL.date(attachedAt))
    }
}

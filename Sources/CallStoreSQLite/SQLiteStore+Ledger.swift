public import CallStore
import CallSupport
import Foundation
import GRDB

extension SQLiteStore {
    // MARK: commit

    @discardableResult
    public func commit(_ ops: [LedgerOp]) async throws -> [EnqueueResult] {
        guard !ops.isEmpty else { return [] }
        for case .enqueue(let job) in ops { try job.validate() }
        let results = try await write("commit") { db in
            let now = Millis.from(self.clock())
            var results: [EnqueueResult] = []
            for op in ops {
                if let result = try Self.apply(op, db, now: now) { results.append(result) }
            }
            return results
        }
        if results.contains(where: { if case .inserted = $0 { true } else { false } })
            || ops.contains(where: {
                switch $0 {
                case .retryJob, .unlessKnown, .wakeTelnyxSessions: true
                case .wakeJobs(let keys): !keys.isEmpty
                default: false
                }
            }) {
            signal.signal()
        }
        return results
    }

    /// Applies one op inside the commit's transaction; the result of an enqueue.
    private static func apply(_ op: LedgerOp, _ db: Database, now: Int64) throws -> EnqueueResult? {
        switch op {
        case .require(let key, let states):
            let expected = states.map(\.rawValue).sorted().joined(separator: ", ")
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM recording WHERE key = ?", arguments: [key]) else {
                throw StoreError(.conflict, "\(key) does not exist (expected one of: \(expected))")
            }
            guard let current = RecordingState(rawValue: state), states.contains(current) else {
                throw StoreError(.conflict, "\(key): state is \(state), expected one of: \(expected)")
            }

        case .insertRecording(let r):
            try db.execute(sql: """
                INSERT INTO recording (key, path, metadata, state, error_code, error_message, part_count, seconds,
                                       created_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (key) DO NOTHING
                """, arguments: [r.key, r.path, r.metadata, r.state.rawValue, r.errorCode, r.errorMessage, r.partCount,
                                 r.seconds, Millis.from(r.createdAt), Millis.from(r.updatedAt)])
            if db.changesCount > 0 { try insertNumbers(key: r.key, RecordingNumbers.reversed(path: r.path, metadata: r.metadata), db) }

        case .registerRecording(let r):
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM recording WHERE key = ?)", arguments: [r.key]) ?? false {
                throw StoreError(.conflict, "recording \(r.key) exists already")
            }
            _ = try apply(.insertRecording(r), db, now: now)

        case .setRecordingMetadata(let key, let metadata):
            let before = try numbers(key: key, db)
            try db.execute(sql: "UPDATE recording SET metadata = ?, updated_at = ? WHERE key = ?", arguments: [metadata, now, key])
            try expectChange(db, "recording \(key)")
            try renumber(key: key, before: before, db)

        case .setRecordingState(let key, let state, let errorCode, let errorMessage):
            try db.execute(sql: "UPDATE recording SET state = ?, error_code = ?, error_message = ?, updated_at = ? WHERE key = ?",
                           arguments: [state.rawValue, errorCode, errorMessage, now, key])
            try expectChange(db, "recording \(key)")

        case .setRecordingAudio(let key, let partCount, let seconds):
            try db.execute(sql: "UPDATE recording SET part_count = ?, seconds = ?, updated_at = ? WHERE key = ?",
                           arguments: [partCount, seconds, now, key])
            try expectChange(db, "recording \(key)")

        case .replaceParts(let key, let parts):
            try requireRecording(db, key)
            if let stray = parts.first(where: { $0.recordingKey != key }) {
                throw StoreError(.invalid, "part \(stray.index) belongs to \(stray.recordingKey), not to \(key)")
            }
            try db.execute(sql: "DELETE FROM part WHERE recording_key = ?", arguments: [key])
            for part in parts {
                try db.execute(sql: """
                    INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker,
                                      create_started_at, attached_at, call_log_origin)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: partArguments(part))
            }

        case .updatePart(let part):
            try db.execute(sql: """
                UPDATE part SET spool_path = ?, bytes = ?, seconds = ?, sha256 = ?, state = ?, call_log_id = ?, marker = ?,
                    create_started_at = ?, attached_at = ?, call_log_origin = ?
                WHERE recording_key = ? AND idx = ?
                """, arguments: [part.spoolPath, part.bytes, part.seconds, part.sha256, part.state.rawValue, part.callLogID,
                                 part.marker, part.createStartedAt.map(Millis.from), part.attachedAt.map(Millis.from),
                                 part.callLogOrigin?.rawValue, part.recordingKey, part.index])
            try expectChange(db, "part \(part.index) of \(part.recordingKey)")

        case .putProviderRef(let ref):
            try requireRecording(db, ref.recordingKey)
            try db.execute(sql: """
                INSERT INTO provider_ref (recording_key, provider, reference, state) VALUES (?, ?, ?, ?)
                ON CONFLICT (recording_key, provider) DO UPDATE SET reference = excluded.reference, state = excluded.state
                """, arguments: [ref.recordingKey, ref.provider, ref.reference, ref.state])

        case .replaceProviderRefs(let key, let refs):
            try requireRecording(db, key)
            if let stray = refs.first(where: { $0.recordingKey != key }) {
                throw StoreError(.invalid, "the \(stray.provider) reference belongs to \(stray.recordingKey), not to \(key)")
            }
            try db.execute(sql: "DELETE FROM provider_ref WHERE recording_key = ?", arguments: [key])
            for ref in refs {
                _ = try apply(.putProviderRef(ref), db, now: now)
            }

        case .insertDeletion(let deletion):
            if try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM deletion WHERE id = ?)", arguments: [deletion.id]) ?? false {
                throw StoreError(.conflict, "deletion \(deletion.id) exists already")
            }
            try db.execute(sql: "INSERT INTO deletion (id, recording_key, reason, created_at, finished_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [deletion.id, deletion.recordingKey, deletion.reason, Millis.from(deletion.createdAt),
                                       deletion.finishedAt.map(Millis.from)])
            for step in deletion.steps {
                try db.execute(sql: """
                    INSERT INTO deletion_step (deletion_id, target, position, state, http_status, detail, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [deletion.id, step.target, step.position, step.state.rawValue, step.httpStatus,
                                     step.detail, Millis.from(step.updatedAt)])
            }

        case .updateDeletionStep(let id, let target, let state, let httpStatus, let detail):
            try db.execute(sql: """
                UPDATE deletion_step SET state = ?, http_status = ?, detail = ?, updated_at = ?
                WHERE deletion_id = ? AND target = ?
                """, arguments: [state.rawValue, httpStatus, detail, now, id, target])
            try expectChange(db, "step \(target) of deletion \(id)")

        case .finishDeletion(let id):
            // A second finish keeps the first time.
            try db.execute(sql: "UPDATE deletion SET finished_at = coalesce(finished_at, ?) WHERE id = ?", arguments: [now, id])
            try expectChange(db, "deletion \(id)")

        case .audit(let entry):
            try db.execute(sql: """
                INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [Millis.from(entry.at), entry.recordingKey, entry.action, entry.target, entry.httpStatus,
                                 entry.detail, entry.actor])

        case .tombstone(let t):
            try db.execute(sql: """
                INSERT INTO tombstone (key, path, reason, deleted_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING
                """, arguments: [t.key, t.path, t.reason, Millis.from(t.deletedAt)])

        case .enqueue(let job):
            return try insertJob(db, job, now: now)

        case .retryJob(let id):
            if let refusal = try retryFinished(db, id: id, now: now) {
                throw StoreError(.conflict, "job \(id) \(refusal)")
            }

        case .requireNoLiveJob(let uniqueKey):
            if let id = try Int64.fetchOne(db, sql: """
                SELECT id FROM queue_job WHERE unique_key = ? AND state IN ('available','running') LIMIT 1
                """, arguments: [uniqueKey]) {
                throw StoreError(.conflict, "job \(id) (\(uniqueKey)) is live")
            }
        case .putSourceFile, .setRecordingPath, .insertCDRRows, .putCDRCursor, .wakeJobs:
            try applySource(op, db, now: now)
        case .insertTelnyxEvents, .wakeTelnyxSessions:
            try applyTelnyx(op, db, now: now)
        case .putWaveform(let key, let waveform):
            try applyWaveform(key: key, waveform, db)
        case .putWarnings, .addPipedriveSpend:
            try applyConsole(op, db, now: now)
        case .unlessKnown(let key, let ops):
            let known = try Bool.fetchOne(db, sql: """
                SELECT EXISTS (SELECT 1 FROM recording WHERE key = ?) OR EXISTS (SELECT 1 FROM tombstone WHERE key = ?)
                """, arguments: [key, key]) ?? false
            if !known {
                for op in ops { _ = try apply(op, db, now: now) }
            }
        }
        return nil
    }

    private static func expectChange(_ db: Database, _ what: String) throws {
        if db.changesCount == 0 { throw StoreError(.notFound, "\(what) does not exist") }
    }

    private static func requireRecording(_ db: Database, _ key: String) throws {
        guard try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM recording WHERE key = ?)", arguments: [key]) ?? false else {
            throw StoreError(.notFound, "recording \(key) does not exist")
        }
    }

    private static func partArguments(_ part: Part) -> StatementArguments {
        [part.recordingKey, part.index, part.spoolPath, part.bytes, part.seconds, part.sha256, part.state.rawValue,
         part.callLogID, part.marker, part.createStartedAt.map(Millis.from), part.attachedAt.map(Millis.from),
         part.callLogOrigin?.rawValue]
    }

    // MARK: reads

    public func recording(key: String) async throws -> Recording? {
        try await read("recording") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM recording WHERE key = ?", arguments: [key]).map(Self.recording(from:))
        }
    }

    public func recordings(_ query: RecordingQuery) async throws -> [Recording] {
        guard query.limit > 0 else { return [] }
        if let states = query.states, states.isEmpty { return [] }
        var filter = SQLFilter()
        filter.oneOf("state", query.states?.map(\.rawValue).sorted())
        filter.compare("path", query.path)
        filter.compare("key", query.afterKey, op: ">")
        let arguments = filter.arguments + [query.limit]
        let sql = "SELECT * FROM recording \(filter.clause) ORDER BY key LIMIT ?"
        return try await read("recordings") { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.recording(from:))
        }
    }

    public func recordingCounts() async throws -> [RecordingState: Int] {
        try await read("recording counts") { db in
            var counts = Dictionary(uniqueKeysWithValues: RecordingState.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM recording GROUP BY state") {
                if let state = RecordingState(rawValue: row["state"]) { counts[state] = row["n"] }
            }
            return counts
        }
    }

    public func parts(key: String) async throws -> [Part] {
        try await read("parts") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM part WHERE recording_key = ? ORDER BY idx", arguments: [key])
                .map(Self.part(from:))
        }
    }

    public func part(callLogID: String) async throws -> Part? {
        try await read("part") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM part WHERE call_log_id = ? ORDER BY recording_key, idx LIMIT 1",
                             arguments: [callLogID]).map(Self.part(from:))
        }
    }

    public func providerRefs(key: String) async throws -> [ProviderRef] {
        try await read("provider refs") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM provider_ref WHERE recording_key = ? ORDER BY provider", arguments: [key])
                .map { ProviderRef(provider: $0["provider"], recordingKey: $0["recording_key"], reference: $0["reference"],
                                   state: $0["state"]) }
        }
    }

    public func deletion(id: String) async throws -> Deletion? {
        try await read("deletion") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM deletion WHERE id = ?", arguments: [id]) else { return nil }
            return try Self.deletion(from: row, db)
        }
    }

    public func openDeletions() async throws -> [Deletion] {
        try await read("open deletions") { db in
            try Row.fetchAll(db, sql: "SELECT * FROM deletion WHERE finished_at IS NULL ORDER BY created_at, id")
                .map { try Self.deletion(from: $0, db) }
        }
    }

    public func audit(key: String?, limit: Int) async throws -> [AuditEntry] {
        guard limit > 0 else { return [] }
        return try await read("audit") { db in
            // The last `limit` entries, oldest first.
            let rows: [Row]
            if let key {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE recording_key = ? ORDER BY id DESC LIMIT ?",
                                        arguments: [key, limit])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY id DESC LIMIT ?", arguments: [limit])
            }
            return rows.reversed().map { row in
                AuditEntry(id: row["id"], at: Millis.date(row["at"] as Int64), recordingKey: row["recording_key"],
                           action: row["action"], target: row["target"], httpStatus: row["http_status"],
                           detail: row["detail"], actor: row["actor"])
            }
        }
    }

    public func tombstone(key: String) async throws -> Tombstone? {
        try await read("tombstone") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tombstone WHERE key = ?", arguments: [key]).map { row in
                Tombstone(key: row["key"], path: row["path"], reason: row["reason"],
                          deletedAt: Millis.date(row["deleted_at"] as Int64))
            }
        }
    }

    // MARK: rows

    static func recording(from row: Row) throws -> Recording {
        let key: String = row["key"]
        let stateName: String = row["state"]
        guard let state = RecordingState(rawValue: stateName) else {
            throw StoreError(.unavailable, "recording \(key) has an unknown state \(stateName)")
        }
        return Recording(key: key, path: row["path"], metadata: row["metadata"], state: state, errorCode: row["error_code"],
                         errorMessage: row["error_message"], partCount: row["part_count"], seconds: row["seconds"],
                         createdAt: Millis.date(row["created_at"] as Int64), updatedAt: Millis.date(row["updated_at"] as Int64))
    }

    static func part(from row: Row) throws -> Part {
        let stateName: String = row["state"]
        guard let state = PartState(rawValue: stateName) else {
            throw StoreError(.unavailable, "a part has an unknown state \(stateName)")
        }
        let origin: String? = row["call_log_origin"]
        return Part(recordingKey: row["recording_key"], index: row["idx"], spoolPath: row["spool_path"], bytes: row["bytes"],
                    seconds: row["seconds"], sha256: row["sha256"], state: state, callLogID: row["call_log_id"],
                    callLogOrigin: origin.flatMap(CallLogOrigin.init(rawValue:)), marker: row["marker"], createStartedAt: Millis.date(row["create_started_at"] as Int64?),
                    attachedAt: Millis.date(row["attached_at"] as Int64?))
    }

    static func deletion(from row: Row, _ db: Database) throws -> Deletion {
        let id: String = row["id"]
        let steps = try Row.fetchAll(db, sql: "SELECT * FROM deletion_step WHERE deletion_id = ? ORDER BY position, target",
                                     arguments: [id]).map { step -> DeletionStep in
            let stateName: String = step["state"]
            guard let state = DeletionStepState(rawValue: stateName) else {
                throw StoreError(.unavailable, "deletion \(id) has a step in an unknown state \(stateName)")
            }
            return DeletionStep(position: step["position"], target: step["target"], state: state,
                                httpStatus: step["http_status"], detail: step["detail"],
                                updatedAt: Millis.date(step["updated_at"] as Int64))
        }
        return Deletion(id: id, recordingKey: row["recording_key"], reason: row["reason"], steps: steps,
                        createdAt: Millis.date(row["created_at"] as Int64), finishedAt: Millis.date(row["finished_at"] as Int64?))
    }
}

// MARK: phone numbers (RecordingNumbers)

extension SQLiteStore {
    /// The numbers of recording `key` as its row stands (none when it does not exist).
    static func numbers(key: String, _ db: Database) throws -> Set<String> {
        guard let row = try Row.fetchOne(db, sql: "SELECT path, metadata FROM recording WHERE key = ?", arguments: [key]) else { return [] }
        return RecordingNumbers.reversed(path: row["path"], metadata: row["metadata"])
    }

    static func insertNumbers(key: String, _ numbers: Set<String>, _ db: Database) throws {
        let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO recording_number (reversed, recording_key) VALUES (?, ?)")
        for number in numbers { try insert.execute(arguments: [number, key]) }
    }

    /// After a change of the path or the sidecar: the numbers that went are removed, the new
    /// ones added.
    static func renumber(key: String, before: Set<String>, _ db: Database) throws {
        let after = try numbers(key: key, db)
        let delete = try db.cachedStatement(sql: "DELETE FROM recording_number WHERE reversed = ? AND recording_key = ?")
        for number in before.subtracting(after) { try delete.execute(arguments: [number, key]) }
        try insertNumbers(key: key, after.subtracting(before), db)
    }
}

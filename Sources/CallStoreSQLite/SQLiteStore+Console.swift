public import CallStore
public import Foundation
import GRDB

extension SQLiteStore: ConsoleStore {
    public func recordingPage(_ query: RecordingPageQuery) async throws -> [Recording] {
        guard query.limit > 0 else { return [] }
        if let states = query.states, states.isEmpty { return [] }
        var conditions: [String] = []
        var arguments = StatementArguments()
        if let states = query.states {
            conditions.append("state IN (\(placeholders(states.count)))")
            arguments += StatementArguments(states.map(\.rawValue).sorted())
        }
        if let code = query.errorCode {
            conditions.append("error_code = ?")
            arguments += [code]
        }
        if let prefix = query.pathPrefix {
            conditions.append("substr(path, 1, ?) = ?")
            arguments += [prefix.unicodeScalars.count, prefix]
        }
        if let from = query.createdFrom {
            conditions.append("created_at >= ?")
            arguments += [Millis.from(from)]
        }
        if let before = query.createdBefore {
            conditions.append("created_at < ?")
            arguments += [Millis.from(before)]
        }
        if let digits = query.digits, !digits.isEmpty {
            // The numbers ending with the digits (RecordingNumbers): a range of recording_number's
            // key, then each recording by its key.
            let lookup = RecordingNumbers.lookup(digits)
            conditions.append("""
                key IN (SELECT recording_key FROM recording_number
                        WHERE (reversed >= ? AND reversed < ?)\(lookup.exact.isEmpty ? "" : " OR reversed IN (\(placeholders(lookup.exact.count)))"))
                """)
            arguments += StatementArguments([lookup.prefix, lookup.upper] + lookup.exact)
        }
        if let callLogID = query.callLogID {
            conditions.append("key IN (SELECT recording_key FROM part WHERE call_log_id = ?)")
            arguments += [callLogID]
        }
        // By a warning code: that code's recordings newest first, from recording_warning's copy
        // of (created_at, key), each joined to its recording (CROSS JOIN: in that order).
        var from = "recording", order = "created_at DESC, key DESC", cursor = "(created_at, key)"
        if let code = query.warningCode {
            from = "recording_warning w CROSS JOIN recording ON recording.key = w.recording_key"
            order = "w.recording_created DESC, w.recording_key DESC"
            cursor = "(w.recording_created, w.recording_key)"
            conditions.append("w.code = ?")
            arguments += [code]
        }
        if let after = query.after {
            // A row value: SQLite walks the (created_at, key) index backwards from the cursor.
            conditions.append("\(cursor) < (?, ?)")
            arguments += [Millis.from(after.createdAt), after.key]
        }
        arguments += [query.limit]
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT recording.* FROM \(from) \(whereClause) ORDER BY \(order) LIMIT ?"
        return try await read("recording page") { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.recording(from:))
        }
    }

    public func failureCounts(limit: Int) async throws -> [FailureCount] {
        try await read("failure counts") { db in
            try Row.fetchAll(db, sql: """
                SELECT error_code, count(*) AS n FROM recording INDEXED BY recording_state_error
                WHERE state IN ('failed', 'skipped') AND error_code IS NOT NULL
                GROUP BY error_code ORDER BY n DESC, error_code LIMIT ?
                """, arguments: [limit]).map { FailureCount(code: $0["error_code"], count: $0["n"]) }
        }
    }

    public func sourceActivity() async throws -> [SourceActivity] {
        try await read("source activity") { db in
            var activity = try Row.fetchAll(db, sql: "SELECT pbx, max(seen_at) AS seen FROM source_file GROUP BY pbx").map {
                SourceActivity(source: $0["pbx"], lastSeen: Millis.date($0["seen"] as Int64))
            }
            if let seen = try Int64.fetchOne(db, sql: "SELECT max(received_at) FROM telnyx_event") {
                activity.append(SourceActivity(source: "telnyx", lastSeen: Millis.date(seen)))
            }
            return activity.sorted { $0.source < $1.source }
        }
    }

    public func waveform(key: String) async throws -> Waveform? {
        try await read("waveform") { db in
            try Row.fetchOne(db, sql: "SELECT seconds_per_point, levels FROM recording_waveform WHERE recording_key = ?", arguments: [key])
                .flatMap { Waveform(secondsPerPoint: $0["seconds_per_point"], encodedLevels: $0["levels"]) }
        }
    }

    public func warnings(key: String) async throws -> [String] {
        try await read("warnings") { db in
            try String.fetchAll(db, sql: "SELECT code FROM recording_warning WHERE recording_key = ? ORDER BY code", arguments: [key])
        }
    }

    public func pipedriveSpend() async throws -> PipedriveSpend? {
        try await read("pipedrive spend") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM pipedrive_spend ORDER BY budget_day DESC LIMIT 1").map { row in
                PipedriveSpend(budgetDay: row["budget_day"], tokens: max(0, row["tokens"] as Int), dailyTokens: row["daily_tokens"],
                               resetsAt: Millis.date(row["resets_at"] as Int64), updatedAt: Millis.date(row["updated_at"] as Int64))
            }
        }
    }

    /// ``LedgerOp/putWarnings(key:codes:)`` and ``LedgerOp/addPipedriveSpend(budgetDay:tokens:dailyTokens:resetsAt:)``
    /// inside a commit.
    static func applyConsole(_ op: LedgerOp, _ db: Database, now: Int64) throws {
        switch op {
        case .putWarnings(let key, let codes):
            try db.execute(sql: "DELETE FROM recording_warning WHERE recording_key = ?", arguments: [key])
            for code in Set(codes) {
                try db.execute(sql: """
                    INSERT INTO recording_warning (code, recording_key, recording_created) SELECT ?, key, created_at FROM recording WHERE key = ?
                    """, arguments: [code, key])
            }
        case .addPipedriveSpend(let day, let tokens, let dailyTokens, let resetsAt):
            try db.execute(sql: """
                INSERT INTO pipedrive_spend (budget_day, tokens, daily_tokens, resets_at, updated_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (budget_day) DO UPDATE SET tokens = max(0, tokens + excluded.tokens), daily_tokens = excluded.daily_tokens,
                  resets_at = excluded.resets_at, updated_at = excluded.updated_at
                """, arguments: [day, tokens, dailyTokens, Millis.from(resetsAt), now])
        default:
            preconditionFailure("not a console op: \(op)")
        }
    }

    /// ``LedgerOp/putWaveform(key:waveform:)`` inside a commit.
    static func applyWaveform(key: String, _ waveform: Waveform, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO recording_waveform (recording_key, seconds_per_point, levels) VALUES (?, ?, ?)
            ON CONFLICT (recording_key) DO UPDATE SET seconds_per_point = excluded.seconds_per_point, levels = excluded.levels
            """, arguments: [key, waveform.secondsPerPoint, waveform.encodedLevels])
    }

    public func recordingCount(state: RecordingState, changedSince since: Date) async throws -> Int {
        try await read("recording count") { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM recording WHERE state = ? AND updated_at >= ?",
                             arguments: [state.rawValue, Millis.from(since)]) ?? 0
        }
    }
}

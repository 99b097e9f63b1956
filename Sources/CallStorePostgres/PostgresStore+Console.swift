public import CallStore
public import Foundation
import Logging
import PostgresNIO

extension PostgresStore: ConsoleStore {
    public func recordingPage(_ query: RecordingPageQuery) async throws -> [Recording] {
        guard query.limit > 0 else { return [] }
        var s = statement()
        guard var conditions = try Self.stateConditions(query.states, &s) else { return [] }
        if let code = query.errorCode { conditions.append("error_code = \(s.bind(code))") }
        if let prefix = query.pathPrefix {
            conditions.append("starts_with(path, \(s.bind(prefix)))")
        }
        if let from = query.createdFrom { conditions.append("created_at >= (\(SQL.epochPlus)\(s.bind(SQL.ms(from))))") }
        if let before = query.createdBefore { conditions.append("created_at < (\(SQL.epochPlus)\(s.bind(SQL.ms(before))))") }
        if let digits = query.digits, !digits.isEmpty {
            // The numbers ending with the digits (RecordingNumbers): a range of recording_number's
            // key, then each recording by its key.
            let lookup = RecordingNumbers.lookup(digits)
            conditions.append("""
                key IN (SELECT recording_key FROM recording_number
                        WHERE (reversed >= \(s.bind(lookup.prefix)) AND reversed < \(s.bind(lookup.upper)))
                           OR reversed = ANY(\(s.bind(lookup.exact))::text[]))
                """)
        }
        if let callLogID = query.callLogID {
            conditions.append("key IN (SELECT recording_key FROM part WHERE call_log_id = \(s.bind(callLogID)))")
        }
        // By a warning code: that code's recordings newest first, from recording_warning's copy
        // of (created_at, key), each joined to its recording.
        var from = "recording", order = "created_at DESC, key DESC", cursor = "(created_at, key)"
        if let code = query.warningCode {
            from = "recording_warning w JOIN recording ON recording.key = w.recording_key"
            order = "w.recording_created DESC, w.recording_key DESC"
            cursor = "(w.recording_created, w.recording_key)"
            conditions.append("w.code = \(s.bind(code))")
        }
        if let after = query.after {
            //: a row comparison: the (created_at, key) index read backwards from the cursor.
            conditions.append("\(cursor) < ((\(SQL.epochPlus)\(s.bind(SQL.ms(after.createdAt)))), \(s.bind(after.key)))")
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        s.sql = """
            SELECT \(Self.recordingColumns) FROM \(from) \(whereClause)
            ORDER BY \(order) LIMIT \(s.bind(query.limit))
            """
        let rows = try await self.query("recording page", s.query)
        return try decode("recording page") { try rows.map(Self.recording(from:)) }
    }

    public func failureCounts(limit: Int) async throws -> [FailureCount] {
        let rows = try await query("failure counts", """
            SELECT error_code, count(*)::int8 AS n FROM recording
            WHERE state IN ('failed', 'skipped') AND error_code IS NOT NULL
            GROUP BY error_code ORDER BY n DESC, error_code LIMIT \(limit)
            """)
        return try decode("failure counts") {
            try rows.map { row in
                let (code, n) = try row.decode((String, Int).self)
                return FailureCount(code: code, count: n)
            }
        }
    }

    public func sourceActivity() async throws -> [SourceActivity] {
        let rows = try await query("source activity", """
            SELECT pbx, \(unescaped: SQL.ms("max(seen_at)")) FROM source_file GROUP BY pbx
            UNION ALL
            SELECT 'telnyx', \(unescaped: SQL.ms("max(received_at)")) FROM telnyx_event HAVING count(*) > 0
            """)
        return try decode("source activity") {
            try rows.map { row in
                let (source, ms) = try row.decode((String, Int64).self)
                return SourceActivity(source: source, lastSeen: SQL.date(ms))
            }.sorted { $0.source < $1.source }
        }
    }

    public func waveform(key: String) async throws -> Waveform? {
        let rows = try await query("waveform", "SELECT seconds_per_point, levels FROM recording_waveform WHERE recording_key = \(key)")
        return try decode("waveform") {
            try rows.first.flatMap { row in
                let (seconds, levels) = try row.decode((Double, String).self)
                return Waveform(secondsPerPoint: seconds, encodedLevels: levels)
            }
        }
    }

    public func warnings(key: String) async throws -> [String] {
        let rows = try await query("warnings", "SELECT code FROM recording_warning WHERE recording_key = \(key) ORDER BY code")
        return try decode("warnings") { try rows.map { try $0.decode(String.self) } }
    }

    public func pipedriveSpend() async throws -> PipedriveSpend? {
        let rows = try await query("pipedrive spend", """
            SELECT budget_day, greatest(0, tokens), daily_tokens, \(unescaped: SQL.ms("resets_at")), \(unescaped: SQL.ms("updated_at"))
            FROM pipedrive_spend ORDER BY budget_day DESC LIMIT 1
            """)
        return try decode("pipedrive spend") {
            try rows.first.map { row in
                let (day, tokens, daily, resets, updated) = try row.decode((Int64, Int, Int, Int64, Int64).self)
                return PipedriveSpend(budgetDay: day, tokens: tokens, dailyTokens: daily, resetsAt: SQL.date(resets), updatedAt: SQL.date(updated))
            }
        }
    }

    /// ``LedgerOp/putWarnings(key:codes:)`` and ``LedgerOp/addPipedriveSpend(budgetDay:tokens:dailyTokens:resetsAt:)``
    /// inside a commit.
    static func applyConsole(_ op: LedgerOp, _ connection: PostgresConnection, offset: Int64, logger: Logger) async throws {
        switch op {
        case .putWarnings(let key, let codes):
            _ = try await connection.query("DELETE FROM recording_warning WHERE recording_key = \(key)", logger: logger).collect()
            let codes = Set(codes).sorted()
            if !codes.isEmpty {
                _ = try await connection.query("""
                    INSERT INTO recording_warning (code, recording_key, recording_created)
                    SELECT unnest(\(codes)::text[]), key, created_at FROM recording WHERE key = \(key)
                    """, logger: logger).collect()
            }
        case .addPipedriveSpend(let day, let tokens, let dailyTokens, let resetsAt):
            var s = Statement(offset: offset)
            s.sql = """
                INSERT INTO pipedrive_spend (budget_day, tokens, daily_tokens, resets_at, updated_at)
                VALUES (\(s.bind(day)), \(s.bind(Int64(tokens))), \(s.bind(Int64(dailyTokens))),
                        (\(SQL.epochPlus)\(s.bind(SQL.ms(resetsAt)))), \(s.now()))
                ON CONFLICT (budget_day) DO UPDATE SET tokens = greatest(0, pipedrive_spend.tokens + excluded.tokens),
                  daily_tokens = excluded.daily_tokens, resets_at = excluded.resets_at, updated_at = excluded.updated_at
                """
            _ = try await connection.query(s.query, logger: logger).collect()
        default:
            preconditionFailure("not a console op: \(op)")
        }
    }

    /// ``LedgerOp/putWaveform(key:waveform:)`` inside a commit.
    static func applyWaveform(key: String, _ waveform: Waveform, _ connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("""
            INSERT INTO recording_waveform (recording_key, seconds_per_point, levels)
            VALUES (\(key), \(waveform.secondsPerPoint), \(waveform.encodedLevels))
            ON CONFLICT (recording_key) DO UPDATE SET seconds_per_point = excluded.seconds_per_point, levels = excluded.levels
            """, logger: logger).collect()
    }

    public func recordingCount(state: RecordingState, changedSince since: Date) async throws -> Int {
        var s = statement()
        s.sql = """
            SELECT count(*)::int8 FROM recording
            WHERE state = \(s.bind(state.rawValue)) AND updated_at >= (\(SQL.epochPlus)\(s.bind(SQL.ms(since))))
            """
        let rows = try await query("recording count", s.query)
        return try decode("recording count") { try rows.first?.decode(Int.self) ?? 0 }
    }
}

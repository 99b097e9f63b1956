public import CallStore
import Foundation
import GRDB

// Telnyx webhook events (issue 16); the table of migration v4.
extension SQLiteStore {
    /// Sessions per SELECT of ``telnyxEvents(sessions:)`` (an IN list stays well under SQLite's
    /// limit of bound variables).
    static let telnyxSessionChunk = 500

    /// Applies one Telnyx op inside the commit's transaction: the webhook's hot path, one cached
    /// statement run per event (a second delivery of an id, in an earlier commit or earlier in
    /// the same batch, leaves the first as it was stored).
    static func applyTelnyx(_ op: LedgerOp, _ db: Database, now: Int64) throws {
        switch op {
        case .insertTelnyxEvents(let rows):
            guard !rows.isEmpty else { return }
            let insert = try db.cachedStatement(sql: """
                INSERT INTO telnyx_event (event_id, event_type, call_session_id, call_leg_id, occurred_at, received_at, document, recording_key)
                VALUES (?, ?, NULLIF(?, ''), NULLIF(?, ''), ?, ?, ?, NULLIF(?, ''))
                ON CONFLICT (event_id) DO NOTHING
                """)
            for row in rows {
                try insert.execute(arguments: [row.id, row.type, row.callSessionID, row.callLegID, row.occurredAt.map(Millis.from),
                                               Millis.from(row.receivedAt), row.document, row.recordingKey])
            }
        case .wakeTelnyxSessions(let sessions, let prefix):
            let sessions = Array(Set(sessions.filter { !$0.isEmpty })).sorted()
            var keys: [String] = []
            for start in stride(from: 0, to: sessions.count, by: telnyxSessionChunk) {
                let chunk = Array(sessions[start..<min(start + telnyxSessionChunk, sessions.count)])
                keys += try String.fetchAll(db, sql: """
                    SELECT DISTINCT recording_key FROM telnyx_event
                    WHERE call_session_id IN (\(placeholders(chunk.count))) AND recording_key IS NOT NULL
                    """, arguments: StatementArguments(chunk))
            }
            try applySource(.wakeJobs(uniqueKeys: keys.map { prefix + $0 }), db, now: now)
        default:
            throw StoreError(.invalid, "\(op) is not an op of the Telnyx ledger")
        }
    }

    /// The events of `count` sessions (the `telnyx_event_session` index), by time (none last),
    /// then id.
    static func telnyxEventsSQL(_ count: Int) -> String {
        """
        SELECT * FROM telnyx_event WHERE call_session_id IN (\(placeholders(count)))
        ORDER BY occurred_at IS NULL, occurred_at, event_id
        """
    }

    public func telnyxEvents(sessions: [String]) async throws -> [TelnyxEventRow] {
        let sessions = Array(Set(sessions.filter { !$0.isEmpty })).sorted()
        guard !sessions.isEmpty else { return [] }
        // Every chunk in one read transaction: one snapshot of the ledger.
        let events = try await read("telnyx events") { db in
            try stride(from: 0, to: sessions.count, by: Self.telnyxSessionChunk).flatMap { start in
                let chunk = Array(sessions[start..<min(start + Self.telnyxSessionChunk, sessions.count)])
                return try Row.fetchAll(db, sql: Self.telnyxEventsSQL(chunk.count), arguments: StatementArguments(chunk))
                    .map(Self.telnyxEvent(from:))
            }
        }
        return sessions.count > Self.telnyxSessionChunk ? events.sorted(by: TelnyxEventRow.precedes) : events
    }

    public func telnyxEvent(id: String) async throws -> TelnyxEventRow? {
        try await read("telnyx event") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM telnyx_event WHERE event_id = ?", arguments: [id]).map(Self.telnyxEvent(from:))
        }
    }

    static func telnyxEvent(from row: Row) -> TelnyxEventRow {
        TelnyxEventRow(id: row["event_id"], type: row["event_type"], callSessionID: row["call_session_id"],
                       callLegID: row["call_leg_id"], occurredAt: Millis.date(row["occurred_at"] as Int64?),
                       receivedAt: Millis.date(row["received_at"] as Int64), document: row["document"], recordingKey: row["recording_key"])
    }
}

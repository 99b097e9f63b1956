public import CallStore
import Foundation
import Logging
import PostgresNIO

// Telnyx webhook events (issue 16); the table of migration v4.
extension PostgresStore {
    /// Applies one Telnyx op inside a commit's transaction, each one statement however many
    /// rows (a commit of the webhook's shape puts them all in one: PostgresStore+Webhooks).
    /// The events are first reduced to the first row of each id (a second delivery in the same
    /// batch leaves the first, as one in an earlier commit does) and sorted by id: concurrent
    /// commits of overlapping batches then take the ids' locks in the same order and never
    /// deadlock.
    static func applyTelnyx(_ op: LedgerOp, _ connection: PostgresConnection, offset: Int64, logger: Logger) async throws {
        if case .wakeTelnyxSessions(let sessions, let prefix) = op {
            let sessions = sessionsToWake(sessions)
            guard !sessions.isEmpty else { return }
            _ = try await connection.query(try wakeSessions(sessions, uniqueKeyPrefix: prefix, offset: offset).query,
                                           logger: logger).collect()
            return
        }
        guard case .insertTelnyxEvents(let all) = op else {
            throw StoreError(.invalid, "\(op) is not an op of the Telnyx ledger")
        }
        var s = Statement(offset: 0)
        guard let insert = try insertEvents(all, &s) else { return }
        s.sql = insert
        _ = try await connection.query(s.query, logger: logger).collect()
    }

    /// The INSERT of `.insertTelnyxEvents` (nil: no rows): ONE statement (INSERT … SELECT FROM
    /// unnest(arrays)) however many rows.
    static func insertEvents(_ all: [TelnyxEventRow], _ s: inout Statement) throws -> String? {
        var seen = Set<String>()
        let rows = all.filter { seen.insert($0.id).inserted }.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
        guard !rows.isEmpty else { return nil }
        // The arrays carry no NULLs: an absent session or leg travels as '' (stored as NULL), an
        // absent time as 0 with `timed` false.
        let ids = try s.bind(array: rows.map(\.id)), types = try s.bind(array: rows.map(\.type))
        let sessions = try s.bind(array: rows.map { $0.callSessionID ?? "" })
        let legs = try s.bind(array: rows.map { $0.callLegID ?? "" })
        let timed = try s.bind(array: rows.map { $0.occurredAt != nil })
        let occurred = try s.bind(array: rows.map { SQL.ms($0.occurredAt) ?? 0 })
        let received = try s.bind(array: rows.map { SQL.ms($0.receivedAt) })
        let documents = try s.bind(array: rows.map(\.document))
        let recordings = try s.bind(array: rows.map { $0.recordingKey ?? "" })
        return """
            INSERT INTO telnyx_event (event_id, event_type, call_session_id, call_leg_id, occurred_at, received_at, document, recording_key)
            SELECT i, t, NULLIF(se, ''), NULLIF(l, ''), CASE WHEN timed THEN \(SQL.epochPlus)o END, \(SQL.epochPlus)r, d, NULLIF(k, '')
            FROM unnest(\(ids)::text[], \(types)::text[], \(sessions)::text[], \(legs)::text[], \(timed)::bool[],
                        \(occurred)::int8[], \(received)::int8[], \(documents)::text[], \(recordings)::text[])
                 WITH ORDINALITY AS e(i, t, se, l, timed, o, r, d, k, n)
            ORDER BY n
            ON CONFLICT (event_id) DO NOTHING
            """
    }

    /// The sessions of `.wakeTelnyxSessions`, once each (none empty), in order.
    static func sessionsToWake(_ sessions: [String]) -> [String] { Array(Set(sessions.filter { !$0.isEmpty })).sorted() }

    /// `.wakeTelnyxSessions` as one statement (the keys are read inside it), as `.wakeJobs` of
    /// those keys would.
    static func wakeSessions(_ sessions: [String], uniqueKeyPrefix: String, offset: Int64) throws -> Statement {
        var s = Statement(offset: offset)
        s.sql = wakeJobs(uniqueKeys: try sessionKeys(sessions, uniqueKeyPrefix: uniqueKeyPrefix, &s), &s)
        return s
    }

    /// The unique keys of the jobs of the recordings that the stored events of `sessions`
    /// announced (a `text[]` expression of `s`), plus `also` (keys the caller knows, such as
    /// those its own statement stores). The keys take the default collation, the unique key
    /// index's (recording_key's "C" would win the comparison and leave the index out).
    static func sessionKeys(_ sessions: [String], uniqueKeyPrefix: String, also: [String] = [], _ s: inout Statement) throws -> String {
        let sessions = try s.bind(array: sessions), prefix = s.bind(uniqueKeyPrefix)
        let keys = """
            ARRAY(SELECT (\(prefix)::text || recording_key) COLLATE "default" FROM telnyx_event
                  WHERE call_session_id = ANY(\(sessions)::text[]) AND recording_key IS NOT NULL)
            """
        return also.isEmpty ? keys : "(\(keys) || \(try s.bind(array: also))::text[])"
    }

    static let telnyxEventColumns = """
        event_id, event_type, call_session_id, call_leg_id, \(SQL.ms("occurred_at")), \(SQL.ms("received_at")), document, recording_key
        """

    /// The events of these sessions in one statement (one array bind, whatever its length), by
    /// time (none last), then id.
    public func telnyxEvents(sessions: [String]) async throws -> [TelnyxEventRow] {
        let sessions = Array(Set(sessions.filter { !$0.isEmpty })).sorted()
        guard !sessions.isEmpty else { return [] }
        var s = statement()
        s.sql = """
            SELECT \(Self.telnyxEventColumns) FROM telnyx_event
            WHERE call_session_id = ANY(\(try s.bind(array: sessions))::text[])
            ORDER BY occurred_at NULLS LAST, event_id
            """
        let rows = try await query("telnyx events", s.query)
        return try decode("telnyx events") { try rows.map(Self.telnyxEvent(from:)) }
    }

    public func telnyxEvent(id: String) async throws -> TelnyxEventRow? {
        let rows = try await query("telnyx event", """
            SELECT \(unescaped: Self.telnyxEventColumns) FROM telnyx_event WHERE event_id = \(id)
            """)
        return try decode("telnyx event") { try rows.first.map(Self.telnyxEvent(from:)) }
    }

    static func telnyxEvent(from row: PostgresRow) throws -> TelnyxEventRow {
        let (id, type, session, leg, occurredAt, receivedAt, document, recordingKey) =
            try row.decode((String, String, String?, String?, Int64?, Int64, String, String?).self)
        return TelnyxEventRow(id: id, type: type, callSessionID: session, callLegID: leg, occurredAt: SQL.date(occurredAt),
                              receivedAt: SQL.date(receivedAt), document: document, recordingKey: recordingKey)
    }
}

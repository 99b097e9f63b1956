public import CallStore
import Foundation
internal import Logging
internal import PostgresNIO

// PBX sources (issue 15): source files, CDR rows and cursors; tables of migration v3.
extension PostgresStore {
    /// CDR rows per INSERT (each column one array bind).
    static let cdrRowBatch = 1000

    /// Applies one source op inside the commit's transaction. Times the op sets itself
    /// (`updated_at`, a woken job's `run_at`) are the store's now.
    static func applySource(_ op: LedgerOp, _ connection: PostgresConnection, offset: Int64, logger: Logger) async throws {
        func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
            try await connection.query(query, logger: logger).collect()
        }

        switch op {
        case .putSourceFile(let file):
            var s = Statement(offset: offset)
            let values = [
                s.bind(file.path), s.bind(file.directory), s.bind(file.pbx), s.bind(Int64(bitPattern: file.device)),
                s.bind(Int64(bitPattern: file.inode)), s.bind(file.size), s.bind(file.modifiedNanos), s.bind(file.changedNanos),
                s.bind(file.recordingKey), s.bind(file.audioSHA256), s.bind(file.verdict), s.bind(file.reason),
                s.bind(file.policyDigest), "(\(SQL.epochPlus)\(s.bind(SQL.ms(file.seenAt))))",
            ]
            s.sql = """
                INSERT INTO source_file (path, directory, pbx, device, inode, size, modified_ns, changed_ns, recording_key,
                                         audio_sha256, verdict, reason, policy_digest, seen_at)
                VALUES (\(values.joined(separator: ", ")))
                ON CONFLICT (path) DO UPDATE SET
                  directory = excluded.directory, pbx = excluded.pbx, device = excluded.device, inode = excluded.inode,
                  size = excluded.size, modified_ns = excluded.modified_ns, changed_ns = excluded.changed_ns,
                  recording_key = excluded.recording_key, audio_sha256 = excluded.audio_sha256, verdict = excluded.verdict,
                  reason = excluded.reason, policy_digest = excluded.policy_digest, seen_at = excluded.seen_at
                """
            _ = try await rows(s.query)

        case .setRecordingPath(let key, let path):
            let db = LedgerConnection(connection: connection, logger: logger)
            let before = try await db.numbers(key: key)
            if try await rows("""
                UPDATE recording SET path = \(path), updated_at = \(now: offset) WHERE key = \(key) RETURNING 1
                """).isEmpty {
                throw StoreError(.notFound, "recording \(key) does not exist")
            }
            try await db.renumber(key: key, before: before)

        case .insertCDRRows(let all):
            // One INSERT … SELECT FROM unnest(arrays) per batch; a NULL key travels as '' (the
            // arrays carry no NULLs), and an empty key is stored as NULL in either case.
            var start = 0
            while start < all.count {
                let batch = all[start..<min(start + cdrRowBatch, all.count)]
                var s = Statement(offset: offset)
                let pbx = try s.bind(array: batch.map(\.pbx)), keys = try s.bind(array: batch.map(\.rowKey))
                let uniqueids = try s.bind(array: batch.map { $0.uniqueid ?? "" })
                let linkedids = try s.bind(array: batch.map { $0.linkedid ?? "" })
                let stems = try s.bind(array: batch.map { $0.stem ?? "" }), days = try s.bind(array: batch.map { $0.day ?? "" })
                let documents = try s.bind(array: batch.map(\.document))
                let ingested = try s.bind(array: batch.map { SQL.ms($0.ingestedAt) })
                s.sql = """
                    INSERT INTO cdr_row (pbx, row_key, uniqueid, linkedid, stem, day, document, ingested_at)
                    SELECT p, k, NULLIF(u, ''), NULLIF(l, ''), NULLIF(st, ''), NULLIF(d, ''), doc, \(SQL.epochPlus)at
                    FROM unnest(\(pbx)::text[], \(keys)::text[], \(uniqueids)::text[], \(linkedids)::text[], \(stems)::text[],
                                \(days)::text[], \(documents)::text[], \(ingested)::int8[])
                         WITH ORDINALITY AS t(p, k, u, l, st, d, doc, at, n)
                    ORDER BY n
                    ON CONFLICT (pbx, row_key) DO NOTHING
                    """
                _ = try await rows(s.query)
                start += batch.count
            }

        case .putCDRCursor(let cursor, let expectedOffset):
            let device = Int64(bitPattern: cursor.device), inode = Int64(bitPattern: cursor.inode)
            let written: [PostgresRow]
            if let expectedOffset {
                // A concurrent writer of the same cursor holds its row: this one waits, then sees
                // the other's offset and matches nothing.
                written = try await rows("""
                    UPDATE cdr_cursor SET device = \(device), inode = \(inode), byte_offset = \(cursor.offset),
                      kind = \(cursor.kind), header = \(cursor.header)
                    WHERE pbx = \(cursor.pbx) AND path = \(cursor.path) AND byte_offset = \(expectedOffset)
                    RETURNING 1
                    """)
            } else {
                written = try await rows("""
                    INSERT INTO cdr_cursor (pbx, path, device, inode, byte_offset, kind, header)
                    VALUES (\(cursor.pbx), \(cursor.path), \(device), \(inode), \(cursor.offset), \(cursor.kind), \(cursor.header))
                    ON CONFLICT (pbx, path) DO NOTHING RETURNING 1
                    """)
            }
            if written.isEmpty {
                let stored = try await rows("""
                    SELECT byte_offset FROM cdr_cursor WHERE pbx = \(cursor.pbx) AND path = \(cursor.path)
                    """).first.map { try $0.decode(Int64.self) }
                throw cursor.conflict(expected: expectedOffset, stored: stored)
            }

        case .wakeJobs(let uniqueKeys):
            let keys = Array(Set(uniqueKeys)).sorted()
            guard !keys.isEmpty else { return }
            var s = Statement(offset: offset)
            s.sql = wakeJobs(uniqueKeys: "\(try s.bind(array: keys))::text[]", &s)
            _ = try await rows(s.query)

        default:
            throw StoreError(.invalid, "\(op) is not an op of the source ledger")
        }
    }

    /// A statement that makes due now the waiting jobs whose unique key is in `uniqueKeys` (a
    /// `text[]` expression of `s`), keeping their attempts; their queues' listeners wake when the
    /// commit lands.
    static func wakeJobs(uniqueKeys: String, _ s: inout Statement) -> String {
        Statement.with(["woken AS (\(wakeUpdate(uniqueKeys: uniqueKeys, &s)))"], s.notify(queuesOf: ["woken"]))
    }

    /// The UPDATE of ``wakeJobs(uniqueKeys:_:)`` (`RETURNING queue`), for a statement that
    /// notifies itself; `first` names a CTE of that statement that this update runs after.
    static func wakeUpdate(uniqueKeys: String, after first: String? = nil, _ s: inout Statement) -> String {
        let now = s.now()
        let after = first.map { " AND " + Statement.after($0) } ?? ""
        return """
            UPDATE queue_job SET run_at = \(now), updated_at = \(now)
            WHERE unique_key = ANY(\(uniqueKeys)) AND state = 'available' AND run_at > \(now)\(after)
            RETURNING queue
            """
    }

    static let sourceFileColumns = """
        path, directory, pbx, device, inode, size, modified_ns, changed_ns, recording_key, audio_sha256, verdict, reason, \
        policy_digest, \(SQL.ms("seen_at"))
        """

    public func sourceFiles(directory: String) async throws -> [SourceFile] {
        let rows = try await query("source files", """
            SELECT \(unescaped: Self.sourceFileColumns) FROM source_file WHERE directory = \(directory) ORDER BY path
            """)
        return try decode("source files") { try rows.map(Self.sourceFile(from:)) }
    }

    public func sourceFile(path: String) async throws -> SourceFile? {
        let rows = try await query("source file", """
            SELECT \(unescaped: Self.sourceFileColumns) FROM source_file WHERE path = \(path)
            """)
        return try decode("source file") { try rows.first.map(Self.sourceFile(from:)) }
    }

    /// One SELECT per kind of key the query names, united (each uses its index), in the order
    /// the rows were ingested.
    static func cdrRowsQuery(_ query: CDRRowQuery, offset: Int64) throws -> PostgresQuery? {
        var s = Statement(offset: offset)
        var arms: [String] = []
        for (column, values) in [("uniqueid", query.uniqueids), ("linkedid", query.linkedids), ("stem", query.stems),
                                 ("day", query.days)] {
            let values = Array(Set(values.filter { !$0.isEmpty })).sorted()
            guard !values.isEmpty else { continue }
            arms.append("""
                SELECT id, pbx, row_key, uniqueid, linkedid, stem, day, document, \(SQL.ms("ingested_at")) AS ingested
                FROM cdr_row WHERE pbx = \(s.bind(query.pbx)) AND \(column) = ANY(\(try s.bind(array: values))::text[])
                """)
        }
        guard !arms.isEmpty else { return nil }
        s.sql = "SELECT pbx, row_key, uniqueid, linkedid, stem, day, document, ingested FROM ("
            + arms.joined(separator: " UNION ") + ") AS found ORDER BY id"
        return s.query
    }

    public func cdrRows(_ query: CDRRowQuery) async throws -> [StoredCDRRow] {
        guard let statement = try Self.cdrRowsQuery(query, offset: offset) else { return [] }
        let rows = try await self.query("CDR rows", statement)
        return try decode("CDR rows") {
            try rows.map { row in
                let (pbx, rowKey, uniqueid, linkedid, stem, day, document, ingested) =
                    try row.decode((String, String, String?, String?, String?, String?, String, Int64).self)
                return StoredCDRRow(pbx: pbx, rowKey: rowKey, uniqueid: uniqueid, linkedid: linkedid, stem: stem, day: day,
                                    document: document, ingestedAt: SQL.date(ingested))
            }
        }
    }

    public func cdrCursor(pbx: String, path: String) async throws -> CDRCursor? {
        let rows = try await query("CDR cursor", """
            SELECT pbx, path, device, inode, byte_offset, kind, header FROM cdr_cursor WHERE pbx = \(pbx) AND path = \(path)
            """)
        return try decode("CDR cursor") {
            try rows.first.map { row in
                let (pbx, path, device, inode, offset, kind, header) =
                    try row.decode((String, String, Int64, Int64, Int64, String, String?).self)
                return CDRCursor(pbx: pbx, path: path, device: UInt64(bitPattern: device), inode: UInt64(bitPattern: inode),
                                 offset: offset, kind: kind, header: header)
            }
        }
    }

    static func sourceFile(from row: PostgresRow) throws -> SourceFile {
        let (path, directory, pbx, device, inode, size, modified, changed, key, sha256, verdict, reason, digest, seenAt) =
            try row.decode((String, String, String, Int64, Int64, Int64, Int64, Int64, String?, String?, String, String?,
                            String?, Int64).self)
        return SourceFile(path: path, directory: directory, pbx: pbx, device: UInt64(bitPattern: device),
                          inode: UInt64(bitPattern: inode), size: size, modifiedNanos: modified, changedNanos: changed,
                          recordingKey: key, audioSHA256: sha256, verdict: verdict, reason: reason, policyDigest: digest,
                          seenAt: SQL.date(seenAt))
    }
}

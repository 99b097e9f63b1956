public import CallStore
import Foundation
import GRDB

// PBX sources (issue 15): source files, CDR rows and cursors; tables of migration v3.
extension SQLiteStore {
    /// Applies one source op inside the commit's transaction (`now`: the commit's time, unix ms).
    static func applySource(_ op: LedgerOp, _ db: Database, now: Int64) throws {
        switch op {
        case .putSourceFile(let file):
            try db.execute(sql: """
                INSERT INTO source_file (path, directory, pbx, device, inode, size, modified_ns, changed_ns, recording_key,
                                         audio_sha256, verdict, reason, policy_digest, seen_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (path) DO UPDATE SET
                  directory = excluded.directory, pbx = excluded.pbx, device = excluded.device, inode = excluded.inode,
                  size = excluded.size, modified_ns = excluded.modified_ns, changed_ns = excluded.changed_ns,
                  recording_key = excluded.recording_key, audio_sha256 = excluded.audio_sha256, verdict = excluded.verdict,
                  reason = excluded.reason, policy_digest = excluded.policy_digest, seen_at = excluded.seen_at
                """, arguments: [file.path, file.directory, file.pbx, Int64(bitPattern: file.device),
                                 Int64(bitPattern: file.inode), file.size, file.modifiedNanos, file.changedNanos,
                                 file.recordingKey, file.audioSHA256, file.verdict, file.reason, file.policyDigest,
                                 Millis.from(file.seenAt)])

        case .setRecordingPath(let key, let path):
            let before = try numbers(key: key, db)
            try db.execute(sql: "UPDATE recording SET path = ?, updated_at = ? WHERE key = ?", arguments: [path, now, key])
            if db.changesCount == 0 { throw StoreError(.notFound, "recording \(key) does not exist") }
            try renumber(key: key, before: before, db)

        case .insertCDRRows(let rows):
            let insert = try db.cachedStatement(sql: """
                INSERT INTO cdr_row (pbx, row_key, uniqueid, linkedid, stem, day, document, ingested_at)
                VALUES (?, ?, NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), NULLIF(?, ''), ?, ?)
                ON CONFLICT (pbx, row_key) DO NOTHING
                """)
            for row in rows {
                try insert.execute(arguments: [row.pbx, row.rowKey, row.uniqueid, row.linkedid, row.stem, row.day,
                                               row.document, Millis.from(row.ingestedAt)])
            }

        case .putCDRCursor(let cursor, let expectedOffset):
            let stored = try Int64.fetchOne(db, sql: "SELECT byte_offset FROM cdr_cursor WHERE pbx = ? AND path = ?",
                                            arguments: [cursor.pbx, cursor.path])
            guard stored == expectedOffset else {
                throw cursor.conflict(expected: expectedOffset, stored: stored)
            }
            try db.execute(sql: """
                INSERT INTO cdr_cursor (pbx, path, device, inode, byte_offset, kind, header) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (pbx, path) DO UPDATE SET device = excluded.device, inode = excluded.inode,
                  byte_offset = excluded.byte_offset, kind = excluded.kind, header = excluded.header
                """, arguments: [cursor.pbx, cursor.path, Int64(bitPattern: cursor.device), Int64(bitPattern: cursor.inode),
                                 cursor.offset, cursor.kind, cursor.header])

        case .wakeJobs(let uniqueKeys):
            let keys = Array(Set(uniqueKeys)).sorted()
            guard !keys.isEmpty else { return }
            let wake = try db.cachedStatement(sql: Self.wakeJobSQL)
            for key in keys {
                try wake.execute(arguments: [now, now, key, now])
            }

        default:
            throw StoreError(.invalid, "\(op) is not an op of the source ledger")
        }
    }

    /// Brings an available job's run time forward to now. The `state IN (…)` term is the
    /// `queue_job_live_key` index's own condition, written out: SQLite uses a partial index only
    /// when the query repeats its WHERE terms, and without it each wake scanned every available
    /// job (a webhook batch woke hundreds, in a queue of thousands).
    static let wakeJobSQL = """
        UPDATE queue_job SET run_at = ?, updated_at = ?
        WHERE unique_key = ? AND state IN ('available','running') AND state = 'available' AND run_at > ?
        """

    /// Every row of one directory, in path order (the `source_file_directory` index).
    static let sourceFilesSQL = "SELECT * FROM source_file WHERE directory = ? ORDER BY path"

    public func sourceFiles(directory: String) async throws -> [SourceFile] {
        try await read("source files") { db in
            try Row.fetchAll(db, sql: Self.sourceFilesSQL, arguments: [directory]).map(Self.sourceFile(from:))
        }
    }

    public func sourceFile(path: String) async throws -> SourceFile? {
        try await read("source file") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM source_file WHERE path = ?", arguments: [path]).map(Self.sourceFile(from:))
        }
    }

    /// One SELECT per kind of key the query names, united (each uses its index), in the order
    /// the rows were ingested.
    static func cdrRowsSQL(_ query: CDRRowQuery) -> (sql: String, arguments: StatementArguments)? {
        var arms: [String] = []
        var arguments = StatementArguments()
        for (column, values) in [("uniqueid", query.uniqueids), ("linkedid", query.linkedids), ("stem", query.stems),
                                 ("day", query.days)] {
            let values = Array(Set(values.filter { !$0.isEmpty })).sorted()
            guard !values.isEmpty else { continue }
            arms.append("SELECT * FROM cdr_row WHERE pbx = ? AND \(column) IN (\(placeholders(values.count)))")
            arguments += [query.pbx]
            arguments += StatementArguments(values)
        }
        guard !arms.isEmpty else { return nil }
        return (arms.joined(separator: " UNION ") + " ORDER BY id", arguments)
    }

    public func cdrRows(_ query: CDRRowQuery) async throws -> [StoredCDRRow] {
        guard let (sql, arguments) = Self.cdrRowsSQL(query) else { return [] }
        return try await read("CDR rows") { [arguments] db in
            try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                StoredCDRRow(pbx: row["pbx"], rowKey: row["row_key"], uniqueid: row["uniqueid"], linkedid: row["linkedid"],
                             stem: row["stem"], day: row["day"], document: row["document"],
                             ingestedAt: Millis.date(row["ingested_at"] as Int64))
            }
        }
    }

    public func cdrCursor(pbx: String, path: String) async throws -> CDRCursor? {
        try await read("CDR cursor") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM cdr_cursor WHERE pbx = ? AND path = ?", arguments: [pbx, path]).map { row in
                CDRCursor(pbx: row["pbx"], path: row["path"], device: UInt64(bitPattern: row["device"] as Int64),
                          inode: UInt64(bitPattern: row["inode"] as Int64), offset: row["byte_offset"], kind: row["kind"],
                          header: row["header"])
            }
        }
    }

    static func sourceFile(from row: Row) -> SourceFile {
        SourceFile(path: row["path"], directory: row["directory"], pbx: row["pbx"],
                   device: UInt64(bitPattern: row["device"] as Int64), inode: UInt64(bitPattern: row["inode"] as Int64),
                   size: row["size"], modifiedNanos: row["modified_ns"], changedNanos: row["changed_ns"],
                   recordingKey: row["recording_key"], audioSHA256: row["audio_sha256"], verdict: row["verdict"],
                   reason: row["reason"], policyDigest: row["policy_digest"], seenAt: Millis.date(row["seen_at"] as Int64))
    }
}

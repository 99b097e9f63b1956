import CallStore
import Foundation
import GRDB

/// What is at a database path before the store opens it for writing. Opening writes (the WAL
/// switch, the migrations), and callrec never writes over a file it did not create: a file that
/// is not callrec's database — empty, not SQLite, cut short, damaged, or another program's — is
/// refused with ``StoreError/Code/corrupt`` or ``StoreError/Code/foreign``, left as it was, and
/// the message names it and says what to do.
enum SQLiteFileCheck {
    /// The first 16 bytes of every SQLite database file.
    static let magic = Array("SQLite format 3\0".utf8)

    /// What to do about a file that is not a usable callrec database.
    static let advice = "callrec left it as it is. Restore the database from a backup, or name another --state (a new, empty ledger would upload every recording again)"

    /// Checks the file at `path`, if there is one (none: a new database, nothing to check).
    /// `known` are the schema's migration identifiers: a database with tables but none of them
    /// is another program's.
    static func check(path: String, known: [String]) throws {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return }
        let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
        if size == 0 {
            throw StoreError(.corrupt, "\(path) is an empty file (0 bytes), not a callrec database; \(advice). If this state directory is new, remove the file and run again")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StoreError(.unavailable, "cannot read the SQLite database \(path): \(String(cString: strerror(errno)))")
        }
        let header = [UInt8]((try? handle.read(upToCount: 100)) ?? Data())
        try? handle.close()
        guard header.count == 100, Array(header.prefix(16)) == magic else {
            throw StoreError(.corrupt, "\(path) is not a SQLite database (it does not begin with SQLite's header: damaged, or another program's file); \(advice)")
        }
        try checkLength(path: path, header: header, size: size)
        try checkTables(path: path, known: known)
    }

    /// A file shorter than its header's page count was cut short (a copy that stopped, a disk
    /// that lost its tail). Only without a WAL: pages a checkpoint had not yet written may still
    /// be in a non-empty one.
    private static func checkLength(path: String, header: [UInt8], size: Int64) throws {
        func u32(_ offset: Int) -> UInt32 { header[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let rawPageSize = Int64(header[16]) << 8 | Int64(header[17])
        let pageSize = rawPageSize == 1 ? 65536 : rawPageSize
        let pages = Int64(u32(28))
        // The page count is valid only when the change counter matches "version valid for".
        guard pages > 0, u32(24) == u32(92), pageSize >= 512 else { return }
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? NSNumber
        guard (wal?.int64Value ?? 0) == 0, size < pages * pageSize else { return }
        throw StoreError(.corrupt, "\(path) is cut short: \(size) bytes, where its header says \(pages * pageSize); \(advice)")
    }

    /// Reads the table names without writing (a read-only connection: opening the store writes
    /// even to a database it then refuses — GRDB's pool starts its WAL with a transaction): tables
    /// but none of callrec's migrations is another program's database; callrec's and others is a
    /// newer callrec's.
    private static func checkTables(path: String, known: [String]) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "callrec.store.check"
        let tables: [String]
        let applied: [String]
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            (tables, applied) = try queue.read { db in
                let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
                let applied = tables.contains("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
                return (tables, applied)
            }
            try queue.close()
        } catch let error as DatabaseError where isDamage(error) {
            throw damaged(path, error)
        } catch {
            // Not this check's to judge (a lock, a permission): opening the store says.
            return
        }
        let unknown = applied.filter { !known.contains($0) }
        if applied.contains(where: known.contains), !unknown.isEmpty { throw tooNew(path: path, unknown: unknown, known: known) }
        guard !tables.isEmpty, !applied.contains(where: known.contains) else { return }
        let shown = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
        throw StoreError(.foreign, "\(path) is another program's SQLite database (its tables: \(shown)), not callrec's; callrec left it as it is. Name another --state (callrec keeps its database at <state>/callrec.sqlite)")
    }

    /// ``StoreError/Code/schemaTooNew``: `unknown` migrations (a newer callrec's) are applied.
    static func tooNew(path: String, unknown: [String], known: [String]) -> StoreError {
        StoreError(.schemaTooNew, "sqlite:\(path): the database was migrated by a newer callrec (migrations this one does not know: \(unknown.sorted().joined(separator: ", ")); it knows up to \(known.last ?? "")): run the newer callrec, or restore a backup from before it; callrec left the database as it is")
    }

    /// SQLite's codes for a file that is not a database or is damaged.
    static func isDamage(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB
    }

    /// ``StoreError/Code/corrupt`` for `error`, naming the file.
    static func damaged(_ path: String, _ error: DatabaseError) -> StoreError {
        StoreError(.corrupt, "\(path) is damaged (SQLite error \(error.extendedResultCode.rawValue): \(error.message ?? "\(error)")); \(advice)")
    }
}

public import CallStore
import CallSupport
public import Foundation
import GRDB
public import Logging

/// The embedded backend: one SQLite file in WAL mode through a GRDB `DatabasePool`. Writes are
/// `BEGIN IMMEDIATE` transactions (GRDB 7 opens every write transaction IMMEDIATE), so several
/// processes on one host can share the file: a writer waits up to the busy timeout for another.
/// Times are the process clock, stored as unix milliseconds.
public final class SQLiteStore: CallStore {
    public let location: String
    /// The database file.
    let path: String
    let pool: DatabasePool
    let logger: Logger
    let signal = WakeUp()
    /// Checkpoints the WAL off the writer (``WALCheckpointer``).
    let checkpointer: WALCheckpointer
    /// The time of leases, `run_at` and every stamp (tests pass a clock they move by hand).
    let clock: @Sendable () -> Date

    /// How long a write waits for another connection's (or process's) transaction.
    public static let busyTimeout: TimeInterval = 10

    /// Opens (creating it and its directory when missing) the database at `path`. `now` is the
    /// store's clock (the process's unless a test moves one by hand). A file there that is not
    /// callrec's database (empty, not SQLite, cut short, damaged, another program's) is refused
    /// untouched (``SQLiteFileCheck``); a new file that could not be set up (a full disk) is
    /// removed again, so that no empty file stays behind to be refused next time.
    public init(path: String, logger: Logger = Logger(label: "callrec.store.sqlite"),
                now: @escaping @Sendable () -> Date = { Date() }) throws {
        self.location = "sqlite:" + path
        self.clock = now
        self.path = path
        self.logger = logger
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw StoreError(.configuration, "cannot create the directory \(directory) of \(path): \(error.localizedDescription)")
        }
        var config = Configuration()
        config.label = "callrec.store"
        config.busyMode = .timeout(Self.busyTimeout)
        config.foreignKeysEnabled = true
        config.journalMode = .wal
        checkpointer = WALCheckpointer(path: path, logger: logger)
        let existed = FileManager.default.fileExists(atPath: path)
        try SQLiteFileCheck.check(path: path, known: SQLiteSchema.identifiers)
        do {
            pool = try DatabasePool(path: path, configuration: config)
            // WAL makes NORMAL safe against corruption; FULL keeps every commit across a power cut,
            // which the ledger wants (a recorded call-log creation must not vanish). Set on the
            // writer after the pool is open: GRDB sets NORMAL when it turns WAL on, which comes
            // after `prepareDatabase` (a FULL set there was silently undone).
            try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA synchronous = FULL") }
            // The writer checkpoints only as a backstop; WALCheckpointer does it off the writer.
            try pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.backstopPages)") }
        } catch {
            if !existed { Self.removeIfEmpty(path) }
            if let error = error as? DatabaseError, SQLiteFileCheck.isDamage(error) { throw SQLiteFileCheck.damaged(path, error) }
            throw Self.diskFull(error, path: path, "cannot open the SQLite database \(path)")
                ?? StoreError(.unavailable, "cannot open the SQLite database \(path): \(Self.describe(error))")
        }
    }

    /// Removes the database file this process just created, and its WAL and shared-memory
    /// files, when it holds nothing (SQLite had not written its first page).
    private static func removeIfEmpty(_ path: String) {
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber
        guard size?.int64Value == 0 else { return }
        for suffix in ["-wal", "-shm", ""] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    // MARK: lifecycle

    public func migrate() async throws {
        let migrator = SQLiteSchema.migrator
        let pool = self.pool, path = self.path
        // GRDB runs each migration in its own IMMEDIATE transaction but reads the applied ones
        // before: two processes migrating at once can both try the same migration, and the loser
        // fails ("table already exists"). It then finds the migration applied when it tries again.
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await pool.read { db in
                    if try migrator.hasBeenSuperseded(db) {
                        let unknown = try migrator.appliedIdentifiers(db).subtracting(SQLiteSchema.identifiers)
                        throw SQLiteFileCheck.tooNew(path: path, unknown: Array(unknown), known: SQLiteSchema.identifiers)
                    }
                }
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    migrator.asyncMigrate(pool) { result in
                        continuation.resume(with: result.map { _ in () })
                    }
                }
                logger.debug("migrated", metadata: ["store": "\(location)"])
                return
            } catch let error as StoreError {
                throw error
            } catch {
                if let full = Self.diskFull(error, path: path, "\(location): migration failed") { throw full }
                if let error = error as? DatabaseError, SQLiteFileCheck.isDamage(error) { throw wrap(error, "migration") }
                if attempt >= 5 {
                    // Each migration is one transaction: the one that failed left nothing behind.
                    let applied = (try? await pool.read { try migrator.appliedMigrations($0) }) ?? []
                    throw StoreError(.unavailable, "\(location): migration failed: \(Self.describe(error)); that migration was rolled back whole (the schema stands at \(applied.last ?? "none")), nothing half-migrated")
                }
                logger.debug("migration raced another process; trying again", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .milliseconds(50 * attempt))
            }
        }
    }

    deinit { checkpointer.stop() }

    public func close() async throws {
        checkpointer.stop()
        // Best effort: copy the WAL into the database and truncate it, so a process that ends
        // leaves no WAL room behind (a full disk would hide in it: writes of the next run go into
        // its space and fail later). Not when another process is in the database right now: no
        // wait for it (busy timeout 0).
        _ = try? await pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA busy_timeout = 0")
            return try db.checkpoint(.truncate)
        }
        do {
            try pool.close()
        } catch {
            throw StoreError(.unavailable, "\(location): close failed: \(Self.describe(error))")
        }
    }

    public func now() async throws -> Date { Millis.date(Millis.from(clock())) }

    // MARK: access

    /// Runs `body` in one IMMEDIATE write transaction; errors that are not StoreError (or task
    /// cancellation) become ``StoreError/Code/unavailable``.
    func write<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            let value = try await pool.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
            checkpointer.wrote()
            return value
        } catch {
            throw wrap(error, what)
        }
    }

    /// Runs `body` in a read transaction (a WAL snapshot).
    func read<T: Sendable>(_ what: String, _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw wrap(error, what)
        }
    }

    private func wrap(_ error: any Error, _ what: String) -> any Error {
        if error is StoreError || error is CancellationError { return error }
        if let error = error as? DatabaseError, SQLiteFileCheck.isDamage(error) {
            var damaged = SQLiteFileCheck.damaged(path, error)
            damaged.message = "\(location): \(what) failed: " + damaged.message
            return damaged
        }
        return Self.diskFull(error, path: path, "\(location): \(what) failed")
            ?? StoreError(.unavailable, "\(location): \(what) failed: \(Self.describe(error))")
    }

    /// ``StoreError/Code/diskFull`` when SQLite could not write for want of space: `SQLITE_FULL`
    /// (a write met ENOSPC), or the shared-memory index that could not grow
    /// (`SQLITE_IOERR_SHMSIZE`, which SQLite reports when it cannot allocate the file's pages).
    static func diskFull(_ error: any Error, path: String, _ what: String) -> StoreError? {
        guard let error = error as? DatabaseError,
              error.resultCode == .SQLITE_FULL || error.extendedResultCode == .SQLITE_IOERR_SHMSIZE else { return nil }
        return StoreError(.diskFull, "\(what): \(DiskSpace.fullMessage(path))")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError {
            return "SQLite error \(error.extendedResultCode.rawValue): \(error.message ?? "\(error)")"
        }
        return "\(error)"
    }
}

/// Unix milliseconds, the stored form of every time.
enum Millis {
    static func from(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
    static func date(_ ms: Int64?) -> Date? { ms.map { date($0) } }
}

/// `?, ?, ?` for an IN list of `count` values.
func placeholders(_ count: Int) -> String {
    Array(repeating: "?", count: count).joined(separator: ", ")
}

/// A WHERE clause and its arguments, one optional filter at a time.
struct SQLFilter {
    private var conditions: [String] = []
    private(set) var arguments = StatementArguments()

    /// `column IN (…)`, when `values` is given.
    mutating func oneOf<Value: DatabaseValueConvertible>(_ column: String, _ values: [Value]?) {
        guard let values else { return }
        conditions.append("\(column) IN (\(placeholders(values.count)))")
        arguments += StatementArguments(values)
    }

    /// `column <op> ?`, when `value` is given.
    mutating func compare<Value: DatabaseValueConvertible>(_ column: String, _ value: Value?, op: String = "=") {
        guard let value else { return }
        conditions.append("\(column) \(op) ?")
        arguments += [value]
    }

    var clause: String { conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ") }
}

public import CallStore
import CallStorePostgres
import CallStoreSQLite
public import Foundation
public import Logging

/// Where the ledger, the queue and the spool live: `--state DIR` and `--database URL` (else
/// CALLREC_DATABASE, with PGPASSWORD), as the CLI read them.
public struct StoreSettings: Sendable {
    public var state: String
    /// A URL from the command line (never with a password).
    public var database: String?
    public var environment: [String: String]

    public init(state: String = ".callrec", database: String? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.state = state
        self.database = database
        self.environment = environment
    }

    /// The store of a command that reads `--config FILE`: `--state`/`--database` when given, then
    /// CALLREC_DATABASE, then the JSON config's `state`/`database` keys, then `.callrec`.
    public static func resolve(state: String?, database: String?, config: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> StoreSettings {
        var settings = StoreSettings(state: state ?? ".callrec", database: database, environment: environment)
        guard let config, ConfigFile.isJSON(config) else { return settings }
        let file = try ConfigFile.load(config)
        if state == nil, let configured = file.state { settings.state = configured }
        if database == nil, (environment["CALLREC_DATABASE"] ?? "").isEmpty, let configured = file.database { settings.database = configured }
        return settings
    }

    public var spoolDirectory: String { (state as NSString).appendingPathComponent("spool") }
    public var trashDirectory: String { (state as NSString).appendingPathComponent("trash") }
    /// `upload --sandbox`'s sandbox state.
    public var sandboxDirectory: String { (state as NSString).appendingPathComponent("sandbox") }

    /// Opens and migrates the store. Only commands that put work in (`upload`, `enqueue`,
    /// `worker`) pass `creating`: the others, which read or repair, refuse a state directory that
    /// holds no database rather than make an empty one (a mistyped `--state` would otherwise show
    /// an empty queue, or nothing to delete).
    /// Opens and migrates the store; it must then run (``withStore(creating:logger:_:)`` does both).
    public func open(creating: Bool = false, logger: Logger) async throws -> any CallStore {
        let store: any CallStore
        if let url = database ?? environment["CALLREC_DATABASE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw AppError(.usage, "the database URL must start with postgres:// (SQLite needs no URL: it lives under --state)")
            }
            var full = url
            if !Self.hasPassword(url), let password = environment["PGPASSWORD"], !password.isEmpty {
                full = Self.insertingPassword(password, into: url)
            }
            store = try PostgresStore(url: full, logger: logger)
        } else {
            let database = (state as NSString).appendingPathComponent("callrec.sqlite")
            if !creating, !FileManager.default.fileExists(atPath: database) {
                throw StoreError(.configuration, "--state \(state): no callrec state there (\(database) does not exist); name the state directory an upload, enqueue or worker used (or --database)")
            }
            do {
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            } catch {
                throw StoreError(.configuration, "cannot create the state directory \(state): \(error.localizedDescription)")
            }
            store = try SQLiteStore(path: database, logger: logger)
        }
        do {
            try await store.migrate()
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    /// Runs `body` with an open store and closes it afterwards, whatever happens.
    public func withStore<T>(creating: Bool = false, logger: Logger, _ body: (any CallStore) async throws -> T) async throws -> T {
        // The store runs (PostgreSQL: its connection pool and LISTEN connection) around the body,
        // and is closed after it, whatever happens.
        try await withRunningStore(try await open(creating: creating, logger: logger), body)
    }

    public static func hasPassword(_ url: String) -> Bool {
        guard let scheme = url.range(of: "://") else { return false }
        let rest = url[scheme.upperBound...]
        guard let at = rest.firstIndex(of: "@") else { return false }
        return rest[..<at].contains(":")
    }

    static func insertingPassword(_ password: String, into url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return String(url[..<at]) + ":" + encoded + String(url[at...])
    }
}

/// `30d`, `12h`, `15m`, `45s` or plain seconds.
public func parseAge(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        return Double(text.dropLast()).map { .seconds($0 * scale) }
    }
    return Double(text).map { .seconds($0) }
}

/// Who asks, for the audit: `label (host:pid)`.
public func processActor(_ label: String) -> String { "\(label) (\(ProcessInfo.processInfo.hostName):\(getpid()))" }

import ArgumentParser
import CallStore
import CallStorePostgres
import CallStoreSQLite
import Foundation
import Logging

/// `--state DIR` and `--database URL`: where the ledger, the queue and the spool live.
struct StoreOptions: ParsableArguments {
    @Option(help: "State directory: the SQLite database (unless --database), the spool and the trash.")
    var state: String = ".callrec"

    @Option(help: ArgumentHelp(
        "PostgreSQL, to share the queue between machines: postgres://USER@HOST:PORT/DB. Default: CALLREC_DATABASE, else SQLite under --state.",
        discussion: "A password never goes on the command line: put the whole URL in CALLREC_DATABASE, or the password in PGPASSWORD."))
    var database: String?

    func validate() throws {
        if let database, Self.hasPassword(database) {
            throw ValidationError("--database must not carry a password (every user of this machine can read the command line); put the URL in CALLREC_DATABASE, or the password in PGPASSWORD")
        }
    }

    var spoolDirectory: String { (state as NSString).appendingPathComponent("spool") }

    /// Opens and migrates the store; the caller runs it (`withRunningStore`, or its service
    /// group) and closes it. Only commands that put work in (`upload`, `enqueue`,
    /// `worker`) pass `creating`: the others, which read or repair, refuse a state directory that
    /// holds no database rather than make an empty one (a mistyped `--state` would otherwise show
    /// an empty queue, or nothing to delete).
    func open(logger: Logger, creating: Bool = false,
              environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> any CallStore {
        let store: any CallStore
        if let url = database ?? environment["CALLREC_DATABASE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ValidationError("the database URL must start with postgres:// (SQLite needs no URL: it lives under --state)")
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

    static func hasPassword(_ url: String) -> Bool {
        guard let scheme = url.range(of: "://") else { return false }
        let rest = url[scheme.upperBound...]
        guard let at = rest.firstIndex(of: "@") else { return false }
        let userinfo = rest[..<at]
        return userinfo.contains(":")
    }

    static func insertingPassword(_ password: String, into url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@") else { return url }
        let encoded = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password
        return String(url[..<at]) + ":" + encoded + String(url[at...])
    }
}

/// Runs `body` with an open, running store and closes it afterwards, whatever happens.
func withStore<T>(_ options: StoreOptions, logger: Logger, creating: Bool = false,
                  _ body: (any CallStore) async throws -> T) async throws -> T {
    let store = try await options.open(logger: logger, creating: creating)
    return try await withRunningStore(store, body)
}

/// `text` as an age of zero or more, or a usage error naming `option` (and what else it takes).
func requireAge(_ text: String, option: String, orElse alternatives: String = "") throws -> Duration {
    guard let age = parseAge(text), age >= .zero else {
        throw ValidationError("\(option) \(text) is not an age (30d, 36h, 90m, 30s or plain seconds)\(alternatives)")
    }
    return age
}

/// `30d`, `12h`, `15m`, `45s` or plain seconds.
func parseAge(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        return Double(text.dropLast()).map { .seconds($0 * scale) }
    }
    return Double(text).map { .seconds($0) }
}

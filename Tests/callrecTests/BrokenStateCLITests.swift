import CallTesting
import Crypto
import Foundation
import GRDB
import Testing

/// A state that callrec cannot use — a database file that is damaged, empty, cut short or
/// another program's, a schema of a newer callrec, a PostgreSQL that refuses the login — stops
/// every command that opens the store with exit 2 and one message that names the database
/// (never a password), and leaves the database as it was. The built binary on real files and a
/// real PostgreSQL.
@Suite struct BrokenStateCLITests {
    let callrec = callrecExecutable()

    /// Every command that opens the store, run on the state directory `state` (and the
    /// recordings under `input`).
    static func commands(state: String, input: String) -> [[String]] {
        let at = ["--state", state]
        return [
            ["upload", "--settle", "0", input] + at,
            ["enqueue", "--settle", "0", input] + at,
            ["worker", "--until-idle"] + at,
            ["status"] + at,
            ["queue", "ls"] + at,
            ["queue", "retry", "1"] + at,
            ["queue", "cancel", "1"] + at,
            ["queue", "purge"] + at,
            ["match", "+4930123456", "--region", "DE"] + at,
            ["reconcile"] + at,
            ["delete", "--recording", "\(input)/call-0.wav"] + at,
            ["trash", "purge"] + at,
            ["spool", "prune"] + at,
            ["telnyx", "backfill", "--since", "2026-11-01"] + at,
        ]
    }

    /// No database in the environment; a Pipedrive token and an address where nothing listens
    /// (a command that got past the store would fail on the API instead, visibly).
    static func environment(database: String? = nil, password: String? = nil) throws -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = database
        environment["PGPASSWORD"] = password
        environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
        environment["PIPEDRIVE_API_URL"] = "http://127.0.0.1:\(try refusedLoopbackPort())/v1"
        environment["TELNYX_API_KEY"] = "KEY0123456789ABCDEF"
        environment["TELNYX_API_URL"] = "http://127.0.0.1:\(try refusedLoopbackPort())/v2"
        return environment
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    /// Runs every command; each must exit 2 with a message holding every one of `expected`
    /// (the database's name, the code, the reason) and none of `secrets`, and nothing on stdout.
    func expectEveryCommandRefuses(_ what: String, state: String, input: String, environment: [String: String],
                                   expected: [String], secrets: [String] = []) async throws {
        for command in Self.commands(state: state, input: input) {
            let result = try await runProcess(callrec, command, environment: environment)
            let name = "\(what): callrec \(command.prefix(2).joined(separator: " "))"
            #expect(result.status == 2, "\(name): exit \(result.status): \(result.stderr.suffix(1500))")
            for text in expected {
                #expect(result.stderr.contains(text), "\(name): no \"\(text)\" in: \(result.stderr.suffix(1500))")
            }
            for secret in secrets {
                #expect(!result.stderr.contains(secret) && !String(decoding: result.stdout, as: UTF8.self).contains(secret), "\(name): the password is shown")
            }
            #expect(result.stderr.split(separator: "\n").count <= 2, "\(name): one message, not a trace: \(result.stderr.suffix(1500))")
            #expect(result.stdout.isEmpty, "\(name): \(String(decoding: result.stdout, as: UTF8.self).prefix(500))")
        }
    }

    // MARK: SQLite

    /// A callrec database made by `callrec enqueue` (closed: its WAL checkpointed away) under
    /// `dir/good`, and a recording under `dir/in`.
    func makeGoodState(_ dir: String) async throws -> String {
        try DiskFullProcessTests.makeCalls("\(dir)/in", count: 1, seconds: 2)
        let made = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/good"], environment: try Self.environment())
        #expect(made.status == 0, "\(made.stderr)")
        return "\(dir)/good/callrec.sqlite"
    }

    /// Each broken database file, under each command: exit 2, a message that names the file and
    /// says what is wrong, and the file's bytes exactly as they were (nothing migrated into it,
    /// not even the switch to WAL mode). A new state directory beside them still works.
    @Test(.timeLimit(.minutes(5)))
    func everyCommandRefusesABrokenSQLiteDatabaseWithExitTwoAndLeavesItAsItWas() async throws {
        try await withTemporaryDirectory { dir in
            let good = try await makeGoodState(dir)
            let goodBytes = try Data(contentsOf: URL(fileURLWithPath: good))
            let pageSize = 4096
            #expect(goodBytes.count >= 8 * pageSize)
            // Bytes from a fixed generator: the same "random" file every run.
            var seed: UInt64 = 0x5EED_CA11
            let noise = Data((0..<(64 << 10)).map { _ in
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: seed >> 56)
            })
            var damaged = goodBytes
            damaged.replaceSubrange(pageSize..<goodBytes.count, with: Data(repeating: 0x5A, count: goodBytes.count - pageSize))

            var cases: [(name: String, bytes: Data?, expected: [String])] = [
                ("random bytes", noise, ["store_corrupt", "is not a SQLite database"]),
                ("an empty file", Data(), ["store_corrupt", "is an empty file (0 bytes)"]),
                ("cut short", goodBytes.prefix(goodBytes.count / 2), ["store_corrupt", "is cut short"]),
                ("damaged pages", damaged, ["store_corrupt", "is damaged (SQLite error"]),
            ]
            // Another program's database (GRDB's default: a rollback journal, not WAL).
            let foreign = "\(dir)/foreign.sqlite"
            let queue = try DatabaseQueue(path: foreign)
            try await queue.write { db in
                try db.execute(sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me')")
            }
            try queue.close()
            cases.append(("another program's database", try Data(contentsOf: URL(fileURLWithPath: foreign)), ["store_foreign", "is another program's SQLite database (its tables: notes)"]))
            // A newer callrec's: a migration this one does not know.
            let newer = try DatabaseQueue(path: good)
            try await newer.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')") }
            try newer.close()
            cases.append(("a newer callrec's schema", nil, ["store_schema_too_new", "migrated by a newer callrec", "v99-from-the-future"]))

            for (index, item) in cases.enumerated() {
                let state = "\(dir)/state-\(index)"
                try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
                let database = "\(state)/callrec.sqlite"
                if let bytes = item.bytes {
                    try bytes.write(to: URL(fileURLWithPath: database))
                } else {
                    try FileManager.default.copyItem(atPath: good, toPath: database)
                }
                let before = try Self.sha256(database)
                try await expectEveryCommandRefuses(item.name, state: state, input: "\(dir)/in", environment: try Self.environment(),
                                                    expected: [database] + item.expected)
                #expect(try Self.sha256(database) == before, "\(item.name): the file was changed")
                let wal = (try? FileManager.default.attributesOfItem(atPath: database + "-wal"))?[.size] as? NSNumber
                #expect((wal?.intValue ?? 0) == 0, "\(item.name): a WAL was written")
            }
            // A new state directory is not refused: the checks are about files that exist.
            let fresh = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/fresh"], environment: try Self.environment())
            #expect(fresh.status == 0, "\(fresh.stderr)")
        }
    }

    /// A migration that fails (here: a table of the same name already there, as a user's own
    /// table would be) is rolled back whole: the command exits 2 naming the database and the
    /// table, the schema stays at the version before, none of the failed migration's tables is
    /// left; once the table is gone, the next command migrates.
    @Test(.timeLimit(.minutes(3)))
    func aMigrationThatFailsOnSQLiteLeavesTheSchemaAsItWas() async throws {
        try await withTemporaryDirectory { dir in
            let database = try await makeGoodState(dir)
            // The database as the callrec before the CRM index (v5) left it (so without v6's console
            // indexes and v7's tables either), and a table in v5's way.
            let queue = try DatabaseQueue(path: database)
            try await queue.write { db in
                try db.execute(sql: """
                    DROP TABLE crm_phone; DROP TABLE crm_sync; DROP TABLE crm_user; DROP TABLE crm_lead; DROP TABLE crm_deal;
                    DROP TABLE crm_organization; DROP TABLE crm_person;
                    DROP TABLE recording_waveform; DROP INDEX recording_created; DROP INDEX recording_state_created;
                    DROP INDEX recording_error_created; DROP INDEX recording_state_updated; DROP INDEX recording_state_error;
                    DROP INDEX source_file_seen; DROP INDEX telnyx_event_received;
                    DROP TABLE pipedrive_spend; DROP TABLE recording_warning; DROP TABLE recording_number; DROP INDEX queue_job_unique_key;
                    DELETE FROM grdb_migrations WHERE identifier IN ('v5-crm-index', 'v6-console', 'v7-console-spend-warnings', 'v8-recording-numbers');
                    CREATE TABLE crm_sync (mine TEXT);
                    """)
            }
            func tables() async throws -> Set<String> {
                try await queue.read { try Set(String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")) }
            }
            func migrations() async throws -> [String] {
                try await queue.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
            }
            let tablesBefore = try await tables()
            let migrationsBefore = try await migrations()

            let status = try await runProcess(callrec, ["status", "--state", "\(dir)/good"], environment: try Self.environment())
            #expect(status.status == 2, "\(status.stderr)")
            for text in ["sqlite:\(database)", "migration failed", "crm_sync already exists", "rolled back whole", "v4-telnyx-events", "nothing half-migrated"] {
                #expect(status.stderr.contains(text), "no \"\(text)\" in: \(status.stderr)")
            }
            let tablesAfter = try await tables()
            #expect(tablesAfter == tablesBefore, "tables of the failed migration were left: \(tablesAfter.subtracting(tablesBefore))")
            #expect(try await migrations() == migrationsBefore)

            try await queue.write { try $0.execute(sql: "DROP TABLE crm_sync") }
            let again = try await runProcess(callrec, ["status", "--state", "\(dir)/good"], environment: try Self.environment())
            #expect(again.status == 0, "\(again.stderr)")
            #expect(try await migrations().contains("v5-crm-index"))
            #expect(try await tables().isSuperset(of: ["crm_person", "crm_sync", "crm_phone"]))
            try queue.close()
        }
    }

    // MARK: PostgreSQL

    /// A PostgreSQL that refuses the login (no such database, no such role, a wrong password,
    /// none given, nothing listening) or holds a newer callrec's schema: every command exits 2
    /// with one message naming the server and database and the reason, never the password.
    @Test(.timeLimit(.minutes(5)), .enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func everyCommandRefusesAPostgreSQLThatRefusesTheLoginWithExitTwo() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "broken_state"))
        let server = try #require(URLComponents(string: url))
        let host = "\(server.host ?? ""):\(server.port ?? 0)"
        let role = try TestPostgres.passwordRole(on: url)
        defer { role.remove() }
        try await withTemporaryDirectory { dir in
            try DiskFullProcessTests.makeCalls("\(dir)/in", count: 1, seconds: 2)
            func pointing(user: String? = nil, database: String? = nil, port: Int? = nil) -> String {
                var components = server
                if let user { components.user = user }
                if let database { components.path = "/" + database }
                if let port { components.port = port }
                return components.string!
            }
            let refused = try refusedLoopbackPort()
            let cases: [(name: String, url: String, password: String?, expected: [String])] = [
                ("no such database", pointing(database: "callrec_no_such_db"), nil,
                 ["\(host)/callrec_no_such_db", "cannot connect", #"database "callrec_no_such_db" does not exist"#]),
                ("no such role", pointing(user: "callrec_no_such_role"), nil,
                 ["\(host)\(server.path)", "cannot connect", #"role "callrec_no_such_role" does not exist"#]),
                ("a wrong password", role.url(password: nil), "wrong-" + role.password,
                 ["\(host)\(server.path)", "password authentication failed", "check PGPASSWORD"]),
                ("no password", role.url(password: nil), nil,
                 ["\(host)\(server.path)", "asks for a password and none was given"]),
                ("nothing listening", pointing(port: refused), "wrong-" + role.password,
                 ["127.0.0.1:\(refused)\(server.path)", "connection refused: nothing listens there"]),
            ]
            for item in cases {
                try await expectEveryCommandRefuses(item.name, state: "\(dir)/state", input: "\(dir)/in",
                                                    environment: try Self.environment(database: item.url, password: item.password),
                                                    expected: ["store_unavailable"] + item.expected, secrets: [role.password])
            }
            // A wrong password inside CALLREC_DATABASE itself is not shown either.
            try await expectEveryCommandRefuses("a wrong password in the URL", state: "\(dir)/state", input: "\(dir)/in",
                                                environment: try Self.environment(database: role.url(password: "wrong-" + role.password)),
                                                expected: ["password authentication failed"], secrets: ["wrong-" + role.password])

            // A newer callrec's schema.
            let made = try await runProcess(callrec, ["status"], environment: try Self.environment(database: url))
            #expect(made.status == 0, "\(made.stderr)")
            try TestPostgres.psql(url, "INSERT INTO callrec_schema (version) VALUES (99)")
            try await expectEveryCommandRefuses("a newer callrec's schema", state: "\(dir)/state", input: "\(dir)/in",
                                                environment: try Self.environment(database: url),
                                                expected: ["store_schema_too_new", "\(host)\(server.path)", "version 99"])
            #expect(try TestPostgres.psql(url, "SELECT max(version) FROM callrec_schema") == "99")
        }
    }

    /// On PostgreSQL every migration runs in one transaction: one that fails (a table of the
    /// same name already in the database) leaves none of callrec's tables, not even the version
    /// table; the command exits 2 naming the database and the table. Without it, the next
    /// command migrates.
    @Test(.timeLimit(.minutes(3)), .enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func aMigrationThatFailsOnPostgreSQLLeavesNothingBehind() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "broken_migration"))
        try TestPostgres.psql(url, "CREATE TABLE crm_sync (mine TEXT)")
        let environment = try Self.environment(database: url)
        let status = try await runProcess(callrec, ["status"], environment: environment)
        #expect(status.status == 2, "\(status.stderr)")
        for text in [URLComponents(string: url)!.path, "migrate failed", #"relation "crm_sync" already exists"#, "rolled back whole", "nothing half-migrated"] {
            #expect(status.stderr.contains(text), "no \"\(text)\" in: \(status.stderr)")
        }
        let tables = try TestPostgres.psql(url, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'")
        #expect(tables == "crm_sync", "tables left by the failed migration: \(tables)")

        try TestPostgres.psql(url, "DROP TABLE crm_sync")
        let again = try await runProcess(callrec, ["status"], environment: environment)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try TestPostgres.psql(url, "SELECT max(version) FROM callrec_schema") != "")
    }
}

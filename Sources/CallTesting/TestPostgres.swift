import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A PostgreSQL server for tests: the one `scripts/test.sh` started (`CALLREC_TEST_POSTGRES_URL`),
/// or else a throwaway cluster this test process starts on first use with `scripts/pg-cluster.sh`
/// and stops when it exits. Each test takes its own database (`freshDatabase`), so tests can run
/// in parallel.
public enum TestPostgres {
    /// Whether PostgreSQL tests can run here: a server is given (`CALLREC_TEST_POSTGRES_URL`)
    /// or its binaries are installed (a throwaway cluster can start). Tests of PostgreSQL take
    /// `.enabled(if: TestPostgres.available, "PostgreSQL is not available …")`, so that the run
    /// shows them skipped (`➜ Test … skipped: "PostgreSQL is not available …"`); under CI,
    /// `scripts/test.sh` fails when it sees such a line.
    public static let available: Bool = {
        if let url = ProcessInfo.processInfo.environment["CALLREC_TEST_POSTGRES_URL"], !url.isEmpty { return true }
        return (try? runProcessBlocking("/usr/bin/env", ["bash", script, "available"]))?.status == 0
    }()

    /// The URL of the test server (`postgres://callrec@127.0.0.1:PORT/callrec_test`). Nil when
    /// PostgreSQL is not installed and `CI` is unset (the test is then skipped); under CI a
    /// missing PostgreSQL is an error, not a silent pass.
    public static func url() throws -> String? {
        if let url = ProcessInfo.processInfo.environment["CALLREC_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        return try cluster.url()
    }

    /// A new, empty database on the test server, named `prefix` plus a random suffix, and the
    /// URL that points at it. Nil when `url()` is nil.
    public static func freshDatabase(prefix: String) throws -> String? {
        guard let base = try url() else { return nil }
        let name = databaseName(prefix: prefix)
        guard let psql = psqlPath else { throw TestPostgresError("psql not found (install postgresql-client)") }
        let result = try runProcessBlocking(psql, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", base, "-c", "CREATE DATABASE \(name)"])
        guard result.status == 0 else {
            throw TestPostgresError("CREATE DATABASE \(name) on \(base) failed: \(result.stderr)")
        }
        guard var components = URLComponents(string: base) else { throw TestPostgresError("not a URL: \(base)") }
        components.path = "/" + name
        guard let url = components.string else { throw TestPostgresError("cannot point \(base) at \(name)") }
        return url
    }

    /// `prefix` reduced to lowercase letters, digits and underscores, plus a random suffix;
    /// at most 63 bytes (PostgreSQL's limit for names).
    static func databaseName(prefix: String) -> String {
        var head = String(prefix.lowercased().unicodeScalars.map { scalar -> Character in
            switch scalar {
            case "a"..."z", "0"..."9", "_": Character(scalar)
            default: "_"
            }
        }.prefix(40))
        if head.first.map({ !($0 >= "a" && $0 <= "z") && $0 != "_" }) ?? true { head = "t_" + head }
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        return head + "_" + suffix
    }

    static var script: String { repositoryRoot() + "/scripts/pg-cluster.sh" }

    /// psql from the server's bin directory, else from PATH.
    static let psqlPath: String? = {
        var directories: [String] = []
        if let pgConfig = which("pg_config"), let result = try? runProcessBlocking(pgConfig, ["--bindir"]), result.status == 0 {
            directories.append(String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        directories += versions.sorted { $0.compare($1, options: .numeric) == .orderedDescending }.map { "/usr/lib/postgresql/\($0)/bin" }
        for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/psql") {
            return directory + "/psql"
        }
        return which("psql")
    }()

    private static let cluster = Cluster()

    /// The cluster this process started: started once, on first use, under a lock; stopped at exit.
    private final class Cluster: @unchecked Sendable {
        private let lock = NSLock()
        private var started: Result<String?, any Error>?
        private var directory: String? // the temporary directory holding the cluster (DIR/pg)

        func url() throws -> String? {
            lock.lock()
            defer { lock.unlock() }
            if let started { return try started.get() }
            let result = Result { try start() }
            started = result
            return try result.get()
        }

        private func start() throws -> String? {
            let available = try runProcessBlocking("/usr/bin/env", ["bash", TestPostgres.script, "available"])
            guard available.status == 0 else {
                if ProcessInfo.processInfo.environment["CI"] != nil {
                    throw TestPostgresError("PostgreSQL is required under CI, but its server binaries (initdb, pg_ctl) are not installed: run scripts/setup.sh --test")
                }
                return nil
            }
            // Short (unix socket paths are limited) and searchable by all: as root the cluster
            // runs as an unprivileged user, who must reach it.
            let parent = NSTemporaryDirectory() + "callrec-pg-" + UUID().uuidString.prefix(8).lowercased()
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            directory = parent
            atexit { TestPostgres.cluster.stop() }
            let result = try runProcessBlocking("/usr/bin/env", ["bash", TestPostgres.script, "start", parent + "/pg"])
            let url = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard result.status == 0, url.hasPrefix("postgres://") else {
                throw TestPostgresError("scripts/pg-cluster.sh start failed (status \(result.status)): \(result.stderr)")
            }
            return url
        }

        /// Stops the cluster and removes its directory. Runs from `atexit`, so it spawns the
        /// script directly rather than through Foundation's Process.
        func stop() {
            lock.lock()
            let parent = directory
            directory = nil
            lock.unlock()
            guard let parent else { return }
            let arguments = ["/usr/bin/env", "bash", TestPostgres.script, "stop", parent + "/pg"]
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            defer { for pointer in argv { free(pointer) } }
            var pid: pid_t = 0
            if posix_spawn(&pid, "/usr/bin/env", nil, nil, &argv, environ) == 0 {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            }
            try? FileManager.default.removeItem(atPath: parent)
        }
    }
}

public struct TestPostgresError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

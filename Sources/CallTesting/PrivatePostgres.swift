public import Foundation

/// A PostgreSQL cluster of one test's own (`scripts/pg-cluster.sh`), which the test may stop and
/// start again (a restart, a crash of the server) without disturbing the other tests' server.
/// Its `synchronous_commit` is on, so a crash (`down(.immediate)`) keeps what it acknowledged.
public final class PrivatePostgres: @unchecked Sendable {
    public enum Stop: String, Sendable { case fast, immediate }

    /// The temporary directory holding the cluster (`directory/pg`).
    public let directory: String
    /// `postgres://callrec@127.0.0.1:PORT/callrec_test`
    public let url: String
    /// The server's port.
    public let port: Int
    private let lock = NSLock()
    private var closed = false

    /// Starts a new cluster; `listen` adds addresses it listens on (a ``TestHost``'s database
    /// address), each trusted.
    public init(listen: [String] = []) throws {
        let parent = NSTemporaryDirectory() + "callrec-pgp-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        directory = parent
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_PG_LISTEN"] = listen.joined(separator: " ")
        let result = try runProcessBlocking("/usr/bin/env", ["bash", TestPostgres.script, "start", parent + "/pg"], environment: environment)
        let url = String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard result.status == 0, url.hasPrefix("postgres://"), let port = URLComponents(string: url)?.port else {
            try? FileManager.default.removeItem(atPath: parent)
            throw TestPostgresError("scripts/pg-cluster.sh start failed (status \(result.status)): \(result.stderr)")
        }
        self.url = url
        self.port = port
    }

    deinit { close() }

    /// The URL with another host (the address a ``TestHost`` reaches the server at).
    public func url(host: String) -> String {
        var components = URLComponents(string: url)!
        components.host = host
        return components.string!
    }

    /// Stops the server (`pg_ctl stop -m MODE`), keeping the cluster.
    public func down(_ mode: Stop) throws { try script("down", mode.rawValue) }

    /// Starts it again on the same port; returns once it accepts connections.
    public func up() throws { try script("up") }

    /// `down(mode)` then `up()`.
    public func restart(_ mode: Stop) throws { try script("restart", mode.rawValue) }

    /// The server's log (for a failed test's message).
    public var log: String {
        String(decoding: FileManager.default.contents(atPath: directory + "/pg/log") ?? Data(), as: UTF8.self)
    }

    /// Stops the server and removes the cluster.
    public func close() {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        _ = try? runProcessBlocking("/usr/bin/env", ["bash", TestPostgres.script, "stop", directory + "/pg"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func script(_ command: String, _ arguments: String...) throws {
        let result = try runProcessBlocking("/usr/bin/env", ["bash", TestPostgres.script, command, directory + "/pg"] + arguments)
        guard result.status == 0 else {
            throw TestPostgresError("scripts/pg-cluster.sh \(command) failed (status \(result.status)): \(result.stderr)")
        }
    }
}

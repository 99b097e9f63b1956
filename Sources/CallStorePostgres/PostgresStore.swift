public import CallStore
import CallSupport
public import Foundation
public import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The shared backend: PostgreSQL through postgres-nio's `PostgresClient` (a connection pool).
/// Several processes on several machines may share one database: every method is one statement
/// or one short transaction, and lease times are the database's `now()`.
///
/// Lifecycle: the store is a ServiceLifecycle `Service`. ``run()`` runs the pool (the client's
/// own `run()`) and, once the first ``waitForWork(timeout:)`` asks for it, the listening
/// connection, until the task is cancelled, the group shuts down gracefully, or ``close()``.
/// Put the store in the caller's `ServiceGroup` before the services that use it, or wrap a
/// one-shot command in `withRunningStore`. A statement issued before ``run()`` has started
/// waits for it (at most ``startTimeout``, then fails naming the cause); ``migrate()`` connects
/// on its own and needs no running store.
///
/// Wake-ups: the listening connection (one pooled connection listening on `callrec_queue`,
/// listening again after 1 s, then up to 16 s, when the connection is lost) wakes this store's
/// waiters; every enqueue (and every change that makes a job due at once) notifies that channel
/// in its own transaction. LISTEN needs a session: behind PgBouncer, point the store at a
/// session-mode pool.
///
/// Time: the database's `now()`, so that machines need not agree about clocks, plus an offset
/// the store binds into every statement (`timeOffset`: zero in production; tests move it to
/// make time pass without sleeping).
///
/// Times are stored as `TIMESTAMPTZ` and exchanged in whole milliseconds, as the SQLite store
/// keeps them, so that both backends give back the same `Date` for the same input.
public final class PostgresStore: CallStore {
    public let location: String
    let client: PostgresClient
    let logger: Logger
    let wakeUps = WakeUps()
    /// For ``migrate()``, which connects on its own (a failure to connect surfaces at once,
    /// rather than after the pool's 60 s of retries).
    private let directConfiguration: PostgresConnection.Configuration
    private let timeOffset: @Sendable () -> Duration
    private let state = Mutex(StoreState())
    /// Signalled when ``run()`` starts (or the store closes): statements waiting for the pool go on.
    private let started = WakeUp()
    /// Closed by ``close()``: ``run()`` returns.
    private let closing = WakeUp()

    private struct StoreState {
        var closed = false
        var running = false
        var ran = false
    }

    /// How long a statement waits for ``run()`` to start before it fails (a caller that never
    /// runs the store gets an error, not a hang).
    public static let startTimeout = Duration.seconds(30)

    /// The channel of `pg_notify` and `LISTEN`: the payload is the queue name.
    static let channel = "callrec_queue"

    /// Parses `url` (`postgres://user[:password]@host[:port]/database[?sslmode=disable|require]`)
    /// and makes the connection pool (no connection is made before the first use; nothing runs
    /// before ``run()``). `timeOffset` is added to the database's `now()` in every statement
    /// (tests move it; production leaves it at zero).
    public init(url: String, logger: Logger = Logger(label: "callrec.store.postgres"),
                timeOffset: @escaping @Sendable () -> Duration = { .zero }) throws {
        let parsed = try PostgresURL(parsing: url)
        self.location = parsed.location
        self.logger = logger
        self.timeOffset = timeOffset

        var tls = TLSConfiguration.makeClientConfiguration()
        switch parsed.tls {
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }

        let clientTLS: PostgresClient.Configuration.TLS
        let connectionTLS: PostgresConnection.Configuration.TLS
        do {
            switch parsed.tls {
            case .disable:
                clientTLS = .disable
                connectionTLS = .disable
            case .prefer:
                clientTLS = .prefer(tls)
                connectionTLS = .prefer(try NIOSSLContext(configuration: tls))
            case .require, .verifyCA, .verifyFull:
                clientTLS = .require(tls)
                connectionTLS = .require(try NIOSSLContext(configuration: tls))
            }
        } catch {
            throw StoreError(.configuration, "\(parsed.location): cannot set up TLS: \(error)")
        }

        // Only application_name: PgBouncer refuses other startup parameters. Timeouts
        // (idle_in_transaction_session_timeout, statement_timeout) belong on the role.
        let startup = [("application_name", "callrec")]
        var configuration = PostgresClient.Configuration(host: parsed.host, port: parsed.port, username: parsed.user,
                                                         password: parsed.password, database: parsed.database, tls: clientTLS)
        configuration.options.connectTimeout = .seconds(10)
        configuration.options.additionalStartupParameters = startup
        // A worker needs a few connections (claims, heartbeats, completions, the listener); a
        // smaller pool keeps many workers on one server well under max_connections.
        configuration.options.maximumConnections = 8
        var direct = PostgresConnection.Configuration(host: parsed.host, port: parsed.port, username: parsed.user,
                                                      password: parsed.password, database: parsed.database, tls: connectionTLS)
        direct.options.connectTimeout = .seconds(10)
        direct.options.additionalStartupParameters = startup
        self.directConfiguration = direct

        // The pool's own messages (a connection attempt that failed, a lease before run() got
        // going) come back as this store's errors anyway: only at debug level are they shown.
        var background = logger
        if background.logLevel > .debug { background.logLevel = max(background.logLevel, .error) }
        self.client = PostgresClient(configuration: configuration, backgroundLogger: background)
    }

    /// The store's offset from the database's `now()`, in whole ms.
    var offset: Int64 { timeOffset().milliseconds }

    /// A statement stamped with the store's now.
    func statement() -> Statement { Statement(offset: offset) }

    // MARK: lifecycle

    public func migrate() async throws {
        try checkOpen()
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: directConfiguration, id: 0, logger: logger)
        } catch {
            throw StoreError(.unavailable, "\(location): cannot connect: \(Self.describeConnect(error))")
        }
        do {
            let logger = self.logger
            let location = self.location
            let applied = try await Self.inTransaction(connection, logger: logger) { connection -> [Int] in
                try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.migrationLock))", logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: PostgresSchema.versionTable), logger: logger)
                let rows = try await connection.query("SELECT coalesce(max(version), 0)::int8 FROM callrec_schema",
                                                      logger: logger).collect()
                let current = try rows.first?.decode(Int.self) ?? 0
                guard current <= PostgresSchema.latestVersion else {
                    throw StoreError(.schemaTooNew, "\(location): the schema is at version \(current), newer than this callrec understands (\(PostgresSchema.latestVersion))")
                }
                var applied: [Int] = []
                for migration in PostgresSchema.migrations where migration.version > current {
                    for statement in migration.statements {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await connection.query("INSERT INTO callrec_schema (version) VALUES (\(migration.version))", logger: logger)
                    applied.append(migration.version)
                }
                return applied
            }
            if !applied.isEmpty {
                logger.debug("migrated", metadata: ["store": "\(location)", "versions": "\(applied)"])
            }
        } catch let error as StoreError {
            try? await connection.close()
            throw error
        } catch {
            try? await connection.close()
            // Every migration runs in the one transaction: a failure rolls them all back.
            var failure = (wrap(error, "migrate") as? StoreError) ?? StoreError(.unavailable, "\(location): migrate failed: \(error)")
            if failure.code == .unavailable { failure.message += "; rolled back whole: the schema stands as it was, nothing half-migrated" }
            throw failure
        }
        await warnIfCommitsMayBeLost(connection)
        try? await connection.close()
    }

    /// A server (or role) with `synchronous_commit = off` acknowledges commits it may lose in a
    /// crash: callrec's record that it made a call log could vanish after the call log was made,
    /// and the next attempt would make a second one. Said once, at start.
    private func warnIfCommitsMayBeLost(_ connection: PostgresConnection) async {
        guard let rows = try? await connection.query("SHOW synchronous_commit", logger: logger).collect(),
              let value = try? rows.first?.decode(String.self), value == "off" else { return }
        logger.warning("\(location): synchronous_commit is off: a crash of the server can lose commits it has acknowledged, and with them callrec's record of a call log it made (a second call log on the next attempt). Set it on for callrec's role: ALTER ROLE <role> SET synchronous_commit = on")
    }

    /// Runs the pool and (once a wait asks for it) the listening connection until the task is
    /// cancelled, the group shuts down gracefully, or ``close()``. Once only.
    /// A store closed before its run began (a one-shot command whose body ended before the
    /// run's task started) has nothing to run: it returns.
    public func run() async throws {
        enum Start { case first, closedFirst, again }
        let start = state.withLock { state -> Start in
            defer { state.ran = true }
            if state.ran { return .again }
            if state.closed { return .closedFirst }
            state.running = true
            return .first
        }
        switch start {
        case .first: break
        case .closedFirst:
            started.close()
            return
        case .again: throw StoreError(.invalid, "\(location): the store runs once (it ran, or it is closed)")
        }
        started.close()
        let client = self.client
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                group.addTask { await self.listen() }
                group.addTask { await self.closing.wait() }
                // Whichever ends first (close(), or the pool stopped): everything stops.
                await group.next()
                group.cancelAll()
            }
        }
        state.withLock { state in
            state.running = false
            state.closed = true
        }
        wakeUps.close()
    }

    /// Closes the store: later calls fail, waiters return, and ``run()`` ends (the pool closes
    /// its connections). Idempotent.
    public func close() async throws {
        state.withLock { $0.closed = true }
        wakeUps.close()
        started.close()
        closing.close()
    }

    public func now() async throws -> Date {
        let rows = try await query("now", "SELECT \(unescaped: SQL.ms("now()")) + \(offset)::int8")
        guard let row = rows.first else { throw StoreError(.unavailable, "\(location): now: no row") }
        return try decode("now") { SQL.date(try row.decode(Int64.self)) }
    }

    // MARK: wake-ups

    public func waitForWork(timeout: Duration) async {
        guard timeout > .zero, !Task.isCancelled else { return }
        let deadline = ContinuousClock.now + timeout
        wakeUps.requestListener()
        // The first wait of this store: a notification sent before LISTEN took effect would be
        // lost, so wait until it has (within the same timeout).
        await wakeUps.waitUntilListening(timeout: deadline - ContinuousClock.now)
        let remaining = deadline - ContinuousClock.now
        guard remaining > .zero, !Task.isCancelled else { return }
        await wakeUps.waitForNotification(timeout: remaining)
    }

    /// The listening connection, once a waiter asked for it, until the task is cancelled.
    private func listen() async {
        await wakeUps.waitUntilRequested()
        var reconnected = false
        var pause = Duration.seconds(1)
        // Since when the database has not answered (one line when it goes, one when it is back).
        var lostAt: ContinuousClock.Instant?
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        self.wakeUps.listenerStarted(reconnected: reconnected)
                        if let since = lostAt {
                            self.logger.notice("\(self.location): the database answers again, after \(since.duration(to: .now).shown)")
                            lostAt = nil
                        }
                        pause = .seconds(1)
                        for try await _ in notifications {
                            self.wakeUps.notified()
                        }
                    }
                }
            } catch {
                // A store closing ends its listener: that is no outage.
                if Task.isCancelled || state.withLock({ $0.closed }) { break }
                if lostAt == nil {
                    lostAt = .now
                    logger.error("\(location): the database does not answer (\(Self.describe(error))); jobs wait, and callrec keeps reconnecting (the worker does not exit)")
                }
                logger.warning("the listening connection failed; listening again in \(pause)",
                               metadata: ["error": "\(Self.describe(error))"])
            }
            wakeUps.listenerStopped()
            reconnected = true
            // Waiters still wake at their timeouts meanwhile (the workers' polls).
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(16))
        }
        wakeUps.listenerStopped()
    }

    // MARK: access

    func checkOpen() throws {
        if state.withLock({ $0.closed }) { throw StoreError(.unavailable, "\(location): the store is closed") }
    }

    /// Fails when the store is closed; waits (at most ``startTimeout``) for ``run()`` to start.
    func checkRunning() async throws {
        let (closed, running) = state.withLock { ($0.closed, $0.running) }
        if closed { throw StoreError(.unavailable, "\(location): the store is closed") }
        if running { return }
        await started.wait(timeout: Self.startTimeout)
        try checkOpen()
        guard state.withLock({ $0.running }) else {
            throw StoreError(.unavailable, "\(location): the store is not running (run it in a service group, or inside withRunningStore)")
        }
    }

    /// The longest one statement or transaction may go unanswered before it fails as
    /// `unavailable` (and whoever asked retries): a pooled connection can die in a way nobody
    /// notices (a server restarting under it was seen to leave a query waiting for good), and a
    /// job must not wait on it forever.
    static let callTimeout: Duration = .seconds(30)

    /// How long the server lets one of callrec's transactions idle before it ends it.
    static let idleInTransactionTimeout: Duration = .seconds(10)

    /// Runs one statement (its own transaction) and returns every row; one unanswered for
    /// `timeout` fails as `unavailable`.
    func query(_ what: String, _ query: PostgresQuery, timeout: Duration = callTimeout) async throws -> [PostgresRow] {
        try await checkRunning()
        let client = self.client, logger = self.logger
        do {
            return try await withDeadline(timeout, timedOut: { self.unanswered(what, timeout) }) {
                try await client.query(query, logger: logger).collect()
            }
        } catch {
            throw wrap(error, what)
        }
    }

    /// Runs `body` in one transaction on one pooled connection: committed when it returns,
    /// rolled back when it throws.
    func transaction<T: Sendable>(_ what: String, readOnly: Bool = false,
                                  _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await checkRunning()
        let client = self.client, logger = self.logger
        do {
            return try await withDeadline(Self.callTimeout, timedOut: { self.unanswered(what, Self.callTimeout) }) {
                try await client.withConnection { connection in
                    try await Self.inTransaction(connection, readOnly: readOnly, logger: logger, body)
                }
            }
        } catch {
            throw wrap(error, what)
        }
    }

    private func unanswered(_ what: String, _ timeout: Duration) -> StoreError {
        StoreError(.unavailable, "\(location): \(what): no answer within \(timeout.shown)")
    }

    nonisolated(nonsending) static func inTransaction<T>(_ connection: PostgresConnection, readOnly: Bool = false, logger: Logger,
                                 _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query(readOnly ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" : "BEGIN", logger: logger)
        // A client cut off mid-transaction (a partition) would leave the server holding this
        // transaction's row locks until TCP gives up on it (hours), and every other worker waiting
        // on those rows: the server ends it once it idles this long. Per transaction (SET LOCAL),
        // as PgBouncer's transaction mode allows; callrec's statements follow each other at once.
        try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL idle_in_transaction_session_timeout = '\(Self.idleInTransactionTimeout.milliseconds)ms'"), logger: logger)
        let value: T
        do {
            value = try await body(connection)
        } catch {
            do {
                try await connection.query("ROLLBACK", logger: logger)
            } catch {
                // The connection is broken or confused: do not hand it back to the pool as is.
                try? await connection.close()
            }
            throw error
        }
        try await connection.query("COMMIT", logger: logger)
        return value
    }

    /// Decodes with `body`, reporting a decoding failure as `unavailable`.
    func decode<T>(_ what: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            throw wrap(error, what)
        }
    }

    func wrap(_ error: any Error, _ what: String) -> any Error {
        if error is StoreError || error is CancellationError { return error }
        if let error = error as? PSQLError, error.serverInfo?[.sqlState] == "53100" {
            // disk_full: the server's disk, whose free space only the server knows.
            return StoreError(.diskFull, "\(location): \(what) failed: the PostgreSQL server's disk is full (\(Self.describe(error)))")
        }
        return StoreError(.unavailable, "\(location): \(what) failed: \(Self.describe(error))")
    }

    /// Why a connection could not be made, with what to do where callrec knows it: a refused
    /// password or none given, nothing listening. Never the password itself.
    static func describeConnect(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if error.code == .authMechanismRequiresPassword {
                return "the server asks for a password and none was given: set PGPASSWORD (or the password in CALLREC_DATABASE)"
            }
            if error.serverInfo?[.sqlState] == "28P01" {
                return describe(error) + ": check PGPASSWORD (or the password in CALLREC_DATABASE)"
            }
            if error.code == .connectionError, String(reflecting: error).contains("Connection refused") {
                return "connection refused: nothing listens there (is the server running, on that host and port?)"
            }
        }
        return describe(error)
    }

    /// The server's message when there is one (PSQLError's description hides it), else the
    /// error code and its cause. Never the password: it is in no error postgres-nio makes.
    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if let info = error.serverInfo, let message = info[.message] {
                var text = message
                if let detail = info[.detail] { text += " (\(detail))" }
                if let sqlState = info[.sqlState] { text += " [SQLSTATE \(sqlState)]" }
                return text
            }
            var text = error.code.description
            if let underlying = error.underlying { text += ": \(describe(underlying))" }
            return text
        }
        if let error = error as? PostgresDecodingError {
            return "column \(error.columnName) (\(error.postgresType)) does not decode as \(error.targetType): \(error.code)"
        }
        let reflected = String(reflecting: error)
        if reflected.contains("connectionCreationCircuitBreakerTripped") {
            return "cannot connect to the server (every attempt failed for a minute)"
        }
        if reflected.contains("poolShutdown") { return "the store is closed" }
        return "\(error)"
    }
}

/// SQL fragments for the stored forms.
enum SQL {
    /// Unix milliseconds (rounded) of a TIMESTAMPTZ expression.
    static func ms(_ expression: String) -> String { "(extract(epoch FROM \(expression)) * 1000)::int8" }

    /// `Date` → unix ms, rounded (as the SQLite store).
    static func ms(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
    static func ms(_ date: Date?) -> Int64? { date.map { ms($0) } }
    static func date(_ ms: Int64) -> Date { Date(timeIntervalSince1970: Double(ms) / 1000) }
    static func date(_ ms: Int64?) -> Date? { ms.map { date($0) } }

    /// A duration in whole ms, never negative.
    static func ms(_ duration: Duration) -> Int64 { max(duration, .zero).milliseconds }

    /// An int binding clamped to INTEGER (a column or comparison that must not overflow).
    static func int32(_ value: Int) -> Int64 { Int64(max(min(value, Int(Int32.max)), Int(Int32.min))) }

    /// Followed by an int8 of unix ms (in parentheses): that instant as TIMESTAMPTZ, exactly.
    static let epochPlus = "TIMESTAMPTZ 'epoch' + INTERVAL '1 millisecond' * "
}

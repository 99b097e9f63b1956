import CallStore
import CallTesting
import Foundation
import PostgresNIO
import Testing

@testable import CallStorePostgres

/// What only the PostgreSQL backend has: its URL, its schema settings, wake-ups across
/// processes (stores) through LISTEN/NOTIFY, the rescuer's advisory lock, its errors.
@Suite(.timeLimit(.minutes(2)))
struct PostgresSmokeTests {
    // MARK: URL

    @Test func parsesURLsAndNeverShowsTheirCredentials() throws {
        let url = try PostgresURL(parsing: "postgres://call%20rec:p%40ss%3Aw%2Frd@db.example:6543/call%5Frec?sslmode=require")
        #expect(url == PostgresURL(user: "call rec", password: "p@ss:w/rd", host: "db.example", port: 6543,
                                   database: "call_rec", tls: .require))
        #expect(url.location == "postgres://db.example:6543/call_rec")

        let plain = try PostgresURL(parsing: "postgresql://callrec@127.0.0.1/callrec_test")
        #expect(plain == PostgresURL(user: "callrec", password: nil, host: "127.0.0.1", port: 5432,
                                     database: "callrec_test", tls: .disable))
        let v6 = try PostgresURL(parsing: "postgres://u@[::1]:5433/db?sslmode=disable")
        #expect(v6.host == "::1" && v6.location == "postgres://[::1]:5433/db")

        let store = try PostgresStore(url: "postgres://admin:hunter2@db.example:6543/ledger")
        #expect(store.location == "postgres://db.example:6543/ledger")

        for bad in ["mysql://u:hunter2@h/db", "postgres://u:hunter2@h", "postgres://u:hunter2@h/db?sslmode=sometimes",
                    "postgres://:hunter2@h/db", "postgres://u:hunter2@h:99999/db", "not a url hunter2@"] {
            let error = #expect(throws: StoreError.self, "\(bad)") { _ = try PostgresStore(url: bad) }
            #expect(error?.code == .configuration, "\(bad)")
            #expect(error?.message.contains("hunter2") == false, "\(error?.message ?? "")")
        }
    }

    // MARK: schema

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func storesSharingADatabaseMigrateAtOnceAndSeeEachOther() async throws {
        try await withDatabase("share") { url in
            // Separate stores stand for separate processes (separate pools and connections).
            let stores = try (0..<4).map { _ in try PostgresStore(url: url) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            try await withRunning(stores) {
                let id = try await stores[0].insert(newJob())
                let job = try await stores[1].claimOne()
                #expect(job.id == id)
                #expect(try await stores[2].complete(try #require(job.lease)))
                #expect(try await stores[3].existingJob(id).state == .completed)

                let options = try await stores[0].client.query(
                    "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'queue_job'").collect()
                let text = try options.first?.decode(String.self) ?? ""
                #expect(text.contains("fillfactor=80") && text.contains("autovacuum_vacuum_scale_factor=0.01"), "\(text)")
            }
        }
    }

    /// A one-shot command whose body ends before its store's run task starts (`callrec match` on
    /// a loaded machine) closes the store first: the run then has nothing to do and returns; it
    /// used to throw "the store runs once", and the command failed after its work was done.
    /// A transaction of callrec's that stops talking (its worker cut off by a partition) is ended
    /// by the server after 10 s, so its row locks do not hold the other workers for hours.
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func theServerEndsATransactionLeftIdle() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "idle"))
        try await withRunningStore(try PostgresStore(url: url)) { store in
            let store = try #require(store as? PostgresStore)
            let setting = try await store.transaction("show") { connection in
                try await connection.query("SHOW idle_in_transaction_session_timeout", logger: Logger(label: "test")).collect().first?.decode(String.self)
            }
            #expect(setting == "10s")
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func aStoreClosedBeforeItsRunBeganRunsNothing() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "pg_closed_first"))
        let store = try PostgresStore(url: url)
        try await store.close()
        try await store.run()
        await #expect(throws: StoreError.self) { try await store.run() }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func aSchemaFromANewerBuildIsRefused() async throws {
        try await withStore("newer") { store in
            try await store.client.query("INSERT INTO callrec_schema (version) VALUES (999)")
            let error = await #expect(throws: StoreError.self) { try await store.migrate() }
            #expect(error?.code == .schemaTooNew)
        }
    }

    /// A ledger written before callrec kept who made each call log (schema version 1): the
    /// upgrade says `created` where the part carries its marker, `given` where it does not,
    /// nothing without a call log; deletion steps keep their state and may then be skipped.
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func anOlderLedgerLearnsWhoMadeItsCallLogs() async throws {
        try await withDatabase("origin") { url in
            let store = try PostgresStore(url: url)
            try await withRunningStore(store) { _ in
                try await store.client.query(PostgresQuery(unsafeSQL: PostgresSchema.versionTable))
                for statement in try #require(PostgresSchema.migrations.first { $0.version == 1 }).statements {
                    try await store.client.query(PostgresQuery(unsafeSQL: statement))
                }
                try await store.client.query("INSERT INTO callrec_schema (version) VALUES (1)")
                let key = String(repeating: "a", count: 64)
                try await store.client.query("INSERT INTO recording (key, path, state, created_at, updated_at) VALUES (\(key), '/a.wav', 'deleting', now(), now())")
                for (idx, callLog, marker) in [(1, "cl-1", "callrec:x:p1"), (2, "cl-2", nil), (3, nil, nil)] as [(Int, String?, String?)] {
                    try await store.client.query("""
                        INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker)
                        VALUES (\(key), \(idx), '/s', 1, 1, 'x', 'attached', \(callLog), \(marker))
                        """)
                }
                try await store.client.query("INSERT INTO deletion (id, recording_key, reason, created_at) VALUES ('d', \(key), 'cli', now())")
                try await store.client.query("""
                    INSERT INTO deletion_step (deletion_id, target, position, state, detail, updated_at)
                    VALUES ('d', 'voipnow:{}', 1, 'failed', 'not sent', now())
                    """)
                try await store.migrate()
                #expect(try await store.parts(key: key).map(\.callLogOrigin) == [.created, .given, nil])
                #expect(try await store.deletion(id: "d")?.steps.map(\.state) == [.failed])
                try await store.commit([.updateDeletionStep(deletionID: "d", target: "voipnow:{}", state: .skipped, httpStatus: nil, detail: "given up")])
                #expect(try await store.openDeletions().first?.steps.map(\.state) == [.skipped])
            }
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func databaseErrorsBecomeUnavailableWithTheServersMessage() async throws {
        try await withDatabase("errors") { url in
            // Not migrated: no tables.
            try await withRunningStore(try PostgresStore(url: url)) { store in
                let error = await #expect(throws: StoreError.self) { try await store.job(id: 1) }
                #expect(error?.code == .unavailable)
                #expect(error?.message.contains("queue_job") == true && error?.message.contains("does not exist") == true,
                        "\(error?.message ?? "")")
            }

            // A database that does not exist; a password the server never asked for stays unsaid.
            var components = try #require(URLComponents(string: url))
            components.password = "hunter2"
            components.path = "/no_such_database_here"
            let missing = try PostgresStore(url: try #require(components.string))
            let refused = await #expect(throws: StoreError.self) { try await missing.migrate() }
            #expect(refused?.code == .unavailable)
            #expect(refused?.message.contains("no_such_database_here") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("hunter2") == false)
            print("◇ \(refused?.message ?? "")")
            try await missing.close()
        }
    }

    @Test func anUnreachableServerFailsMigrateQuickly() async throws {
        // A port nothing listens on (bound, then closed).
        let store = try PostgresStore(url: "postgres://callrec:hunter2@127.0.0.1:1/callrec")
        let start = ContinuousClock.now
        let error = await #expect(throws: StoreError.self) { try await store.migrate() }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("hunter2") == false)
        // Fails, does not hang (generous: the test machine may be busy with the whole suite).
        #expect(ContinuousClock.now - start < .seconds(60))
        print("◇ \(error?.message ?? "")")
        try await store.close()
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func aClosedStoreRefusesWorkAndClosesTwice() async throws {
        try await withDatabase("closed") { url in
            let store = try PostgresStore(url: url)
            try await store.migrate()
            try await withRunningStore(store) { _ in
                await store.waitForWork(timeout: .milliseconds(50)) // starts the listener
                try await store.close()
                try await store.close()
            }
            let error = await #expect(throws: StoreError.self) { try await store.enqueue(newJob()) }
            #expect(error?.code == .unavailable)
            let start = ContinuousClock.now
            await store.waitForWork(timeout: .seconds(10))
            #expect(ContinuousClock.now - start < .seconds(8))
            // Closed, it does not run again.
            await #expect(throws: StoreError.self) { try await store.run() }
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func bigCountersAreAccepted() async throws {
        try await withStore("counters") { store in
            let id = try await store.insert(newJob(maxAttempts: Int.max))
            let job = try await store.claimOne()
            #expect(job.id == id && job.maxAttempts == Int(Int32.max))
            #expect(try await store.fail(try #require(job.lease), error: "x", permanent: false, retryIn: .zero) == .available)
            #expect(try await store.snooze(try #require(try await store.claimOne().lease), delay: .zero, reason: "429",
                                           maxSnoozes: Int.max) == .available)
        }
    }

    // MARK: wake-ups

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func aNotificationFromAnotherStoreWakesAWaiter() async throws {
        try await withDatabase("wake") { url in
            // Two processes on one machine: one time (both stores move with the same test clock).
            let time = ManualClock()
            let waiter = try PostgresStore(url: url, timeOffset: { time.now.offset })
            let producer = try PostgresStore(url: url, timeOffset: { time.now.offset })
            try await waiter.migrate()
            try await producer.migrate()
            try await withRunning([waiter, producer]) {
                // Nothing happens: the full timeout.
                var clock = ContinuousClock.now
                await waiter.waitForWork(timeout: .milliseconds(100))
                #expect(ContinuousClock.now - clock >= .milliseconds(80))

                clock = ContinuousClock.now
                let woken = Task { await waiter.waitForWork(timeout: .seconds(20)) }
                try await untilWaiting(waiter, count: 1)
                _ = try await producer.insert(newJob())
                await woken.value
                #expect(ContinuousClock.now - clock < .seconds(15))

                // A job becoming due through the rescuer of another store wakes it too.
                let lease = try #require(try await waiter.claimOne(leaseTTL: .seconds(30)).lease)
                time.advance(by: .seconds(31))
                clock = ContinuousClock.now
                let rescued = Task { await waiter.waitForWork(timeout: .seconds(20)) }
                try await untilWaiting(waiter, count: 1)
                #expect(try await producer.rescueExpiredLeases(poisonRescues: 3).requeued == [lease.jobID])
                await rescued.value
                #expect(ContinuousClock.now - clock < .seconds(15))

                #expect(waiter.wakeUps.count == 0)
            }
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func theListenerReconnectsAfterItsConnectionIsKilled() async throws {
        try await withDatabase("relisten") { url in
            let waiter = try PostgresStore(url: url)
            let producer = try PostgresStore(url: url)
            try await waiter.migrate()
            try await withRunning([waiter, producer]) {
                // The first wait starts the listener (and waits for it, within its timeout).
                for _ in 0..<100 where !waiter.wakeUps.listening { await waiter.waitForWork(timeout: .milliseconds(100)) }
                #expect(waiter.wakeUps.listening)

                /// The backends holding a LISTEN in this database.
                func listeners() async throws -> [Int] {
                    try await producer.client.query("""
                        SELECT pid FROM pg_stat_activity
                        WHERE datname = current_database() AND query ILIKE 'LISTEN%'
                        """).collect().map { try $0.decode(Int.self) }
                }
                let killed = try #require(try await listeners().first)
                _ = try await producer.client.query("SELECT pg_terminate_backend(\(killed)::int4)").collect()

                // Within a few seconds another connection listens, and notifications wake waiters again.
                let deadline = ContinuousClock.now + .seconds(15)
                var back = false
                while ContinuousClock.now < deadline, !back {
                    await waiter.waitForWork(timeout: .milliseconds(100))
                    let now = try await listeners()
                    back = now.count == 1 && !now.contains(killed) && waiter.wakeUps.listening
                }
                #expect(back, "the listener did not come back")
                // The reconnection woke every waiter (or left a wake-up for the next wait): forget
                // it, so that only the insert below can end this wait.
                forgetPendingWakeUp(waiter)
                let clock = ContinuousClock.now
                let woken = Task { await waiter.waitForWork(timeout: .seconds(20)) }
                try await untilWaiting(waiter, count: 1)
                _ = try await producer.insert(newJob())
                await woken.value
                #expect(ContinuousClock.now - clock < .seconds(15))
            }
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func waitsLeaveNoWaiterBehind() async throws {
        try await withStore("waiters") { store in
            await store.waitForWork(timeout: .milliseconds(50))
            let waits = (0..<20).map { _ in Task { await store.waitForWork(timeout: .seconds(100)) } }
            try await untilWaiting(store, count: 20)
            for wait in waits.prefix(10) { wait.cancel() }
            _ = try await store.insert(newJob())
            for wait in waits { await wait.value }
            #expect(store.wakeUps.count == 0)
        }
    }

    // MARK: rescuer

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func oneRescuerAtATimeRescuesEachJobOnce() async throws {
        try await withDatabase("rescue") { url in
            let time = ManualClock()
            let stores = try (0..<4).map { _ in try PostgresStore(url: url, timeOffset: { time.now.offset }) }
            try await stores[0].migrate()
            try await withRunning(stores) {
                _ = try await stores[0].enqueue((0..<50).map { _ in newJob() })
                let claimed = try await stores[0].claim(queue: queueA, limit: 50, owner: "w", leaseTTL: .seconds(30))
                #expect(claimed.count == 50)
                time.advance(by: .seconds(31))
                var rescued: [Int64] = []
                for _ in 0..<5 where rescued.count < 50 {
                    let reports = try await withThrowingTaskGroup(of: RescueReport.self) { group in
                        for store in stores { group.addTask { try await store.rescueExpiredLeases(poisonRescues: 3) } }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    rescued += reports.flatMap { $0.requeued + $0.discarded }
                }
                #expect(rescued.sorted() == claimed.map(\.id).sorted())
            }
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available")) func storesOnOneDatabaseShareTheQueueUnderLoad() async throws {
        try await withDatabase("load") { url in
            let stores = try (0..<4).map { _ in try PostgresStore(url: url) }
            for store in stores { try await store.migrate() }
            try await withRunning(stores) {
                let total = 600
                // Producers: two stores enqueue the same keys; one of each pair is a duplicate
                // (while the first is live) or a re-run (after it completed).
                let produced = try await withThrowingTaskGroup(of: Int.self) { group in
                    for (p, store) in stores.prefix(2).enumerated() {
                        group.addTask {
                            var inserted = 0
                            for chunk in stride(from: 0, to: total, by: 20) {
                                let jobs = (chunk..<chunk + 20).map { newJob(uniqueKey: "k\($0)", priority: 1 + ($0 + p) % 4) }
                                let results = try await store.commit(jobs.map { .enqueue($0) })
                                inserted += results.filter { $0 != .duplicate }.count
                            }
                            return inserted
                        }
                    }
                    return try await group.reduce(0, +)
                }
                #expect(produced >= total)

                // Consumers: every store, three workers each, heartbeating and rescuing as they go.
                let completed = try await withThrowingTaskGroup(of: [Int64].self) { group in
                    for (s, store) in stores.enumerated() {
                        for w in 0..<3 {
                            group.addTask {
                                var done: [Int64] = []
                                var idle = 0
                                while idle < 3 {
                                    let jobs = try await store.claim(queue: queueA, limit: 4, owner: "s\(s)w\(w)", leaseTTL: .seconds(30))
                                    if jobs.isEmpty {
                                        idle += 1
                                        _ = try await store.rescueExpiredLeases(poisonRescues: 3)
                                        await store.waitForWork(timeout: .milliseconds(100))
                                        continue
                                    }
                                    idle = 0
                                    let leases = jobs.compactMap(\.lease)
                                    #expect(try await store.heartbeat(leases, leaseTTL: .seconds(30)) == Set(leases))
                                    for lease in leases where try await store.complete(lease) { done.append(lease.jobID) }
                                }
                                return done
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                #expect(completed.count == Set(completed).count, "a job was completed twice")
                #expect(completed.count == produced)
                let stats = try await stores[0].queueStats()
                #expect(stats[.completed] == produced && stats.due == 0 && stats[.running] == 0)
                for store in stores { #expect(store.wakeUps.count == 0) }
            }
        }
    }

    // MARK: helpers

    /// A fresh database on the test server (the tests that call it are enabled only where
    /// PostgreSQL is available).
    private func withDatabase(_ prefix: String, _ body: (String) async throws -> Void) async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "pg_" + prefix), "PostgreSQL is not installed")
        try await body(url)
    }

    /// A migrated, running store on a fresh database, closed afterwards.
    private func withStore(_ prefix: String, _ body: (PostgresStore) async throws -> Void) async throws {
        try await withDatabase(prefix) { url in
            let store = try PostgresStore(url: url)
            try await store.migrate()
            try await withRunningStore(store) { _ in try await body(store) }
        }
    }
}

import CallStore
import CallSupport
import CallTesting
import Foundation
import GRDB
import Testing

@testable import CallStoreSQLite

/// What only the SQLite backend has: its file, its migrations, its in-process wake-ups.
@Suite(.timeLimit(.minutes(2)))
struct SQLiteStoreTests {
    @Test func opensWithWALAndFullSyncAndCreatesItsDirectory() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/a/b/state.db"
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            #expect(store.location == "sqlite:" + path)
            #expect(FileManager.default.fileExists(atPath: path))
            let mode = try await store.pool.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
            // FULL (2) on the connection that commits: GRDB's WAL set-up would leave NORMAL (1).
            let synchronous = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
            #expect(synchronous == 2)
            let version = try await store.pool.read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }
            print("◇ SQLite \(version ?? "?")")
            try await store.close()
        }
    }

    /// The commits do not checkpoint (the writer's threshold is the far backstop) and the WAL is
    /// still copied into the database soon after writes, by the checkpointer's own connection:
    /// 3,000 pages of WAL, more than SQLite's default threshold of 1,000, are backfilled while
    /// the writer's threshold stays out of reach.
    @Test func theWALIsCheckpointedOffTheWriter() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/state.db"
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            let threshold = try await store.pool.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") }
            #expect(threshold == WALCheckpointer.backstopPages)
            let before = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            // ≈ 12 MB of job rows in 200 commits: 3,000 pages of WAL.
            let args = #"{"n": ""# + String(repeating: "n", count: 60_000) + #""}"#
            for _ in 0..<200 { _ = try await store.insert(NewJob(queue: queueA, kind: "test", args: args)) }
            // The database file grows as the WAL is copied into it: by the checkpointer, since no
            // commit crossed the writer's threshold.
            let deadline = ContinuousClock.now + .seconds(60)
            var size = before
            while size < before + 8_000_000, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
                size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            }
            #expect(size >= before + 8_000_000, "the database file grew from \(before) to \(size) bytes only")
            try await store.close()
        }
    }

    /// A closed store leaves an empty WAL behind (checkpointed and truncated, the checkpointer's
    /// connection closed first): a full disk then has no WAL room that hides it from the next run.
    @Test func aClosedStoreLeavesAnEmptyWAL() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/state.db"
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            for _ in 0..<40 { _ = try await store.insert(newJob()) }
            try await store.close()
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
            #expect(size == 0)
        }
    }

    @Test func storesSharingAFileMigrateAtOnceAndSeeEachOther() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory + "/state.db"
            // Separate pools stand for separate processes (separate connections and locks).
            let stores = try (0..<4).map { _ in try SQLiteStore(path: path) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for store in stores { group.addTask { try await store.migrate() } }
                try await group.waitForAll()
            }
            let id = try await stores[0].insert(newJob())
            let job = try await stores[1].claimOne()
            #expect(job.id == id)
            #expect(try await stores[2].complete(try #require(job.lease)))
            #expect(try await stores[3].existingJob(id).state == .completed)
            for store in stores { try await store.close() }
        }
    }

    @Test func aSchemaFromANewerBuildIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try await store.migrate()
            try await store.pool.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v999-future')") }
            let error = await #expect(throws: StoreError.self) { try await store.migrate() }
            #expect(error?.code == .schemaTooNew)
            try await store.close()
        }
    }

    /// A ledger written before callrec kept who made each call log: the upgrade says `created`
    /// for a part whose call log carries its marker (written before every create), `given` for
    /// one without (the sidecar's call_log_id), nothing where there is no call log; deletion
    /// steps keep their state and may then be skipped.
    @Test func anOlderLedgerLearnsWhoMadeItsCallLogs() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try SQLiteSchema.migrator.migrate(store.pool, upTo: "v1")
            let key = String(repeating: "a", count: 64)
            try await store.pool.write { db in
                try db.execute(sql: "INSERT INTO recording (key, path, state, created_at, updated_at) VALUES (?, '/a.wav', 'deleting', 1, 1)", arguments: [key])
                for (idx, callLog, marker) in [(1, "cl-1", "callrec:x:p1"), (2, "cl-2", nil), (3, nil, nil)] as [(Int, String?, String?)] {
                    try db.execute(sql: """
                        INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker)
                        VALUES (?, ?, '/s', 1, 1, 'x', 'attached', ?, ?)
                        """, arguments: [key, idx, callLog, marker])
                }
                try db.execute(sql: "INSERT INTO deletion (id, recording_key, reason, created_at) VALUES ('d', ?, 'cli', 1)", arguments: [key])
                try db.execute(sql: "INSERT INTO deletion_step (deletion_id, target, position, state, detail, updated_at) VALUES ('d', 'voipnow:{}', 1, 'failed', 'not sent', 1)")
            }
            try await store.migrate()
            #expect(try await store.parts(key: key).map(\.callLogOrigin) == [.created, .given, nil])
            #expect(try await store.deletion(id: "d")?.steps.map(\.state) == [.failed])
            try await store.commit([.updateDeletionStep(deletionID: "d", target: "voipnow:{}", state: .skipped, httpStatus: nil, detail: "given up")])
            #expect(try await store.openDeletions().first?.steps.map(\.state) == [.skipped])
            try await store.close()
        }
    }

    @Test func databaseErrorsBecomeUnavailable() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            // Not migrated: no tables.
            let error = await #expect(throws: StoreError.self) { try await store.job(id: 1) }
            #expect(error?.code == .unavailable)
            #expect(error?.message.contains("no such table") == true)
            try await store.close()
        }
    }

    @Test func anUnusablePathIsAConfigurationError() async throws {
        try await withTemporaryDirectory { (directory: String) async throws in
            let file = directory + "/file"
            #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
            let error = #expect(throws: StoreError.self) { _ = try SQLiteStore(path: file + "/state.db") }
            #expect(error?.code == .configuration)
        }
    }

    @Test func waitsLeaveNoWaiterBehind() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try await store.migrate()
            // Timed out, signalled, cancelled, and many at once.
            await store.waitForWork(timeout: .milliseconds(50))
            let waiters = (0..<20).map { _ in Task { await store.waitForWork(timeout: .seconds(100)) } }
            let deadline = ContinuousClock.now + .seconds(90)
            while store.signal.waiting < 20 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(store.signal.waiting == 20)
            _ = try await store.insert(newJob())
            for waiter in waiters { await waiter.value }
            let cancelled = Task { await store.waitForWork(timeout: .seconds(100)) }
            try await untilWaiting(store, count: 1)
            cancelled.cancel()
            await cancelled.value
            // A signal with nobody waiting is kept for the next wait (one flag, not a count).
            store.signal.signal()
            store.signal.signal()
            let start = ContinuousClock.now
            await store.waitForWork(timeout: .seconds(100))
            #expect(ContinuousClock.now - start < .seconds(60))
            #expect(store.signal.waiting == 0)
            try await store.close()
        }
    }

    @Test func timesAreMillisecondsAndErrorsAreJSON() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try await store.migrate()
            let id = try await store.insert(newJob())
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(lease, error: "boom \"quoted\"", permanent: false, retryIn: .zero) == .available)
            let row = try await store.pool.read { db -> (runAt: Int64, errors: String, valid: Bool)? in
                try Row.fetchOne(db, sql: "SELECT run_at, errors, json_valid(errors) AS valid FROM queue_job WHERE id = ?",
                                 arguments: [id]).map { ($0["run_at"], $0["errors"], $0["valid"]) }
            }
            let (runAt, errors, valid) = try #require(row)
            #expect(runAt > 1_700_000_000_000 && runAt < 4_000_000_000_000)
            #expect(valid)
            #expect(errors.contains("\"kind\":\"failed\""))
            try await store.close()
        }
    }
}

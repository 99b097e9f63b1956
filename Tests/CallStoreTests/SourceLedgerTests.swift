import CallStore
import CallTesting
import Foundation
import GRDB
import PostgresNIO
import Testing

@testable import CallStorePostgres
@testable import CallStoreSQLite

/// The source ledger of PBX sources (migration v3): source files, CDR rows and cursors, woken
/// jobs, moved and skipped recordings, on every backend; and the upgrade of a v2 ledger.
@Suite(.timeLimit(.minutes(2)))
struct SourceLedgerTests {
    static func file(_ path: String, verdict: String = "registered", size: Int64 = 1_000, key: String? = nil,
                     seenAt: Date = .fixture()) -> SourceFile {
        let url = URL(fileURLWithPath: path)
        return SourceFile(path: path, directory: url.deletingLastPathComponent().path, pbx: "hq", device: 2049,
                          inode: UInt64.max - 5, size: size, modifiedNanos: 1_750_000_000_123_456_789,
                          changedNanos: 1_750_000_001_987_654_321, recordingKey: key, audioSHA256: key.map { _ in String(repeating: "c", count: 64) },
                          verdict: verdict, reason: verdict == "skipped" ? "internal_call" : nil, policyDigest: "p1", seenAt: seenAt)
    }

    static func row(_ n: Int, pbx: String = "hq", uniqueid: String? = nil, linkedid: String? = nil, stem: String? = nil,
                    day: String? = "2026-03-08") -> StoredCDRRow {
        StoredCDRRow(pbx: pbx, rowKey: "row-\(n)", uniqueid: uniqueid ?? "17000000\(n).1", linkedid: linkedid, stem: stem, day: day,
                     document: #"{"n":\#(n),"clid":"\"Doe, John\" <5551234>"}"#, ingestedAt: .fixture(Double(n)))
    }

    static func cursor(_ offset: Int64, path: String = "/var/log/asterisk/cdr-csv/Master.csv") -> CDRCursor {
        CDRCursor(pbx: "hq", path: path, device: 2049, inode: 0x8000_0000_0000_0001, offset: offset, kind: "asterisk_master",
                  header: nil)
    }

    // MARK: source files

    @Test(arguments: backends)
    func sourceFilesRoundTripAndAreReplacedByPath(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let day = "/spool/monitor/2026/03/1"
            // A directory whose name begins with another's is not part of it.
            let a = Self.file(day + "/in-2125550123-101-20260301-101500-1700000000.1.wav")
            let b = Self.file(day + "/out-2125550199-102-20260301-091500-1700000000.2.wav", verdict: "skipped")
            let other = Self.file("/spool/monitor/2026/03/10/in-x-101-20260310-101500-1700000001.1.wav")
            try await store.commit([.putSourceFile(a), .putSourceFile(other), .putSourceFile(b)])

            #expect(try await store.sourceFiles(directory: day).normalized == [a, b].sorted { $0.path < $1.path })
            #expect(try await store.sourceFiles(directory: "/spool/monitor/2026/03/10").normalized == [other])
            #expect(try await store.sourceFiles(directory: "/spool/monitor/2026/03").isEmpty)
            #expect(try await store.sourceFile(path: a.path).normalized == a)
            #expect(try await store.sourceFile(path: day + "/missing.wav") == nil)

            // Upsert: every field is replaced, and the path stays one row.
            var changed = a
            changed.size = 2_000
            changed.modifiedNanos += 1
            changed.changedNanos += 7
            changed.inode = 12
            changed.recordingKey = String(repeating: "d", count: 64)
            changed.audioSHA256 = String(repeating: "e", count: 64)
            changed.verdict = "converted"
            changed.reason = "wav_to_mp3"
            changed.policyDigest = nil
            changed.seenAt = .fixture(60)
            try await store.commit([.putSourceFile(changed)])
            #expect(try await store.sourceFile(path: a.path).normalized == changed)
            #expect(try await store.sourceFiles(directory: day).map(\.path) == [a.path, b.path].sorted())
        }
    }

    /// A scan loads each directory with one query: it must be found through the directory's
    /// index, not by reading the whole table (1,000 directories of 100 files each).
    @Test func aDirectoryIsReadThroughItsIndexInSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try await store.migrate()
            let plans = try await store.pool.read { db -> [String] in
                let files = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.sourceFilesSQL, arguments: ["/d"])
                let query = CDRRowQuery(pbx: "hq", uniqueids: ["1.1"], linkedids: ["1.1"], stems: ["x"], days: ["2026-03-08"])
                let (sql, arguments) = try #require(SQLiteStore.cdrRowsSQL(query))
                let rows = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments)
                return [files.map { $0["detail"] as String }.joined(separator: "; "),
                        rows.map { $0["detail"] as String }.joined(separator: "; ")]
            }
            #expect(plans[0].contains("USING INDEX source_file_directory"), "\(plans[0])")
            #expect(!plans[0].contains("SCAN source_file"), "\(plans[0])")
            for index in ["cdr_row_uniqueid", "cdr_row_linkedid", "cdr_row_stem", "cdr_row_day"] {
                #expect(plans[1].contains("INDEX \(index)"), "\(plans[1])")
            }
            #expect(!plans[1].contains("SCAN cdr_row"), "\(plans[1])")
            try await store.close()
        }
    }

    /// A wake-up finds its job through the live-key index, not by reading every available job
    /// (a webhook batch wakes hundreds of fetch jobs in a queue of thousands).
    @Test func aWakeUpFindsItsJobThroughTheLiveKeyIndexInSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try await store.migrate()
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.wakeJobSQL, arguments: [1, 1, "fetch:k", 1])
                    .map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(plan.contains("SEARCH queue_job USING INDEX queue_job_live_key (unique_key=?)"), "\(plan)")
            try await store.close()
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aDirectoryIsReadThroughItsIndexInPostgres() async throws {
        try await withStore(.postgres) { store in
            let postgres = try #require(store as? PostgresStore)
            let query = try #require(try PostgresStore.cdrRowsQuery(CDRRowQuery(pbx: "hq", uniqueids: ["1.1"], linkedids: ["1"],
                                                                                 stems: ["x"], days: ["2026-03-08"]), offset: 0))
            let (files, rows) = try await postgres.transaction("explain") { connection in
                // The tables are empty: only a planner told to avoid sequential scans shows which
                // index it can use.
                try await connection.query("SET LOCAL enable_seqscan = off", logger: postgres.logger)
                let files = try await connection.query("""
                    EXPLAIN SELECT \(unescaped: PostgresStore.sourceFileColumns) FROM source_file WHERE directory = \("/d") ORDER BY path
                    """, logger: postgres.logger).collect().map { try $0.decode(String.self) }
                var explain = query
                explain.sql = "EXPLAIN " + explain.sql
                let rows = try await connection.query(explain, logger: postgres.logger).collect().map { try $0.decode(String.self) }
                return (files.joined(separator: "\n"), rows.joined(separator: "\n"))
            }
            #expect(files.contains("source_file_directory"), "\(files)")
            for index in ["cdr_row_uniqueid", "cdr_row_linkedid", "cdr_row_stem", "cdr_row_day"] {
                #expect(rows.contains(index), "\(rows)")
            }
        }
    }

    // MARK: CDR rows

    @Test(arguments: backends)
    func cdrRowsAreKeptOnceAndFoundByEachKindOfKey(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let ring = [
                Self.row(1, uniqueid: "1700000000.10", linkedid: "1700000000.10", stem: nil),
                Self.row(2, uniqueid: "1700000000.11", linkedid: "1700000000.10", stem: nil),
                Self.row(3, uniqueid: "1700000000.12", linkedid: "1700000000.10",
                         stem: "in-2125550123-101-20260308-101500-1700000000.12"),
            ]
            let lone = Self.row(4, uniqueid: "1700000001.1", linkedid: "", stem: "", day: "2026-03-09")
            let elsewhere = Self.row(5, pbx: "branch", uniqueid: "1700000000.10", linkedid: "1700000000.10")
            try await store.commit([.insertCDRRows(ring + [lone, elsewhere])])
            // Read again (a rotated file, a restart): nothing doubles, and the first copy stays.
            var changed = ring[0]
            changed.document = #"{"n":"changed"}"#
            try await store.commit([.insertCDRRows([changed, ring[1], changed])])
            try await store.commit([.insertCDRRows([])])

            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", linkedids: ["1700000000.10"])).normalized == ring)
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", uniqueids: ["1700000000.11", "nope"])).normalized == [ring[1]])
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", stems: [ring[2].stem!])).normalized == [ring[2]])
            // An empty key is no key: stored as none, and matches nothing.
            var stored = lone
            stored.linkedid = nil
            stored.stem = nil
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", days: ["2026-03-09"])).normalized == [stored])
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", linkedids: [""], stems: [""])).isEmpty)
            // Any of the keys; a row matching several comes once, in the order of ingestion.
            let any = CDRRowQuery(pbx: "hq", uniqueids: ["1700000001.1", "1700000000.12"], linkedids: ["1700000000.10"],
                                  stems: [ring[2].stem!], days: ["2026-03-08"])
            #expect(try await store.cdrRows(any).normalized == ring + [stored])
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "branch", uniqueids: ["1700000000.10"])).normalized == [elsewhere])
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq")).isEmpty)
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "nobody", uniqueids: ["1700000000.10"])).isEmpty)
        }
    }

    /// A CDR file's batch is thousands of rows in one commit: one statement per thousand on
    /// PostgreSQL, so this stays well inside the time limit on a loaded machine.
    @Test(arguments: backends)
    func thousandsOfRowsGoInOneCommit(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let rows = (0..<5_000).map { Self.row($0, linkedid: "L\($0 / 4)", day: "2026-03-\(10 + $0 % 3)") }
            let start = ContinuousClock.now
            try await store.commit([.insertCDRRows(rows), .putCDRCursor(Self.cursor(1_234_567), expectedOffset: nil)])
            try await store.commit([.insertCDRRows(Array(rows[2_500...]) + [Self.row(5_000, day: "2026-03-10")]),
                                    .putCDRCursor(Self.cursor(1_300_000), expectedOffset: 1_234_567)])
            let elapsed = ContinuousClock.now - start
            print("◇ \(backend): 10,001 CDR rows in two commits: \(elapsed)")
            #expect(elapsed < .seconds(30))
            let found = try await store.cdrRows(CDRRowQuery(pbx: "hq", days: ["2026-03-10", "2026-03-11", "2026-03-12"]))
            #expect(found.count == 5_001)
            #expect(found.map(\.rowKey) == (rows + [Self.row(5_000)]).map(\.rowKey))
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", linkedids: ["L7"])).map(\.rowKey) == (28..<32).map { "row-\($0)" })
        }
    }

    // MARK: cursors

    @Test(arguments: backends)
    func aCursorMovesOnlyFromTheOffsetItsWriterRead(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let path = Self.cursor(0).path
            #expect(try await store.cdrCursor(pbx: "hq", path: path) == nil)
            try await store.commit([.insertCDRRows([Self.row(1)]), .putCDRCursor(Self.cursor(100), expectedOffset: nil)])
            #expect(try await store.cdrCursor(pbx: "hq", path: path) == Self.cursor(100))

            // A second reader that also began without a cursor: refused, and nothing of its
            // commit lands (its rows, its source file, its audit).
            let stale = await #expect(throws: StoreError.self) {
                try await store.commit([
                    .insertCDRRows([Self.row(2), Self.row(3)]),
                    .putSourceFile(Self.file("/spool/a/x.wav")),
                    .audit(AuditEntry(recordingKey: nil, action: "cdr_ingest", actor: "test")),
                    .putCDRCursor(Self.cursor(180), expectedOffset: nil),
                ])
            }
            #expect(stale?.code == .conflict)
            #expect(stale?.message.contains(path) == true)
            // One that read from a stale offset: refused too.
            let behind = await #expect(throws: StoreError.self) {
                try await store.commit([.insertCDRRows([Self.row(4)]), .putCDRCursor(Self.cursor(200), expectedOffset: 50)])
            }
            #expect(behind?.code == .conflict)
            #expect(behind?.message.contains("100") == true)
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", days: ["2026-03-08"])).map(\.rowKey) == ["row-1"])
            #expect(try await store.sourceFile(path: "/spool/a/x.wav") == nil)
            #expect(try await store.audit(key: nil, limit: 10).isEmpty)
            #expect(try await store.cdrCursor(pbx: "hq", path: path)?.offset == 100)

            // From the stored offset it moves; a rotated file (another inode, read from 0) too.
            try await store.commit([.insertCDRRows([Self.row(2)]), .putCDRCursor(Self.cursor(180), expectedOffset: 100)])
            var rotated = Self.cursor(40)
            rotated.inode = 77
            rotated.header = "accountcode,src,dst"
            try await store.commit([.putCDRCursor(rotated, expectedOffset: 180)])
            #expect(try await store.cdrCursor(pbx: "hq", path: path) == rotated)
            // Cursors are per PBX and per file.
            #expect(try await store.cdrCursor(pbx: "branch", path: path) == nil)
            #expect(try await store.cdrCursor(pbx: "hq", path: path + ".1") == nil)
        }
    }

    /// Readers racing from the same offset (the first read of a file: no cursor yet; a later
    /// one): exactly one commits each time, and the others' rows are not there.
    @Test(arguments: backends)
    func racingReadersOfOneFileCommitOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            var offset: Int64?
            for round in 0..<2 {
                let from = offset
                let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                    for reader in 0..<6 {
                        group.addTask {
                            do {
                                try await store.commit([
                                    .insertCDRRows((0..<50).map { Self.row(10_000 * round + 1_000 * reader + $0, day: "\(round):\(reader)") }),
                                    .putCDRCursor(Self.cursor(Int64(100 * (round + 1) + reader)), expectedOffset: from),
                                ])
                                return (reader, true)
                            } catch let error as StoreError where error.code == .conflict {
                                return (reader, false)
                            }
                        }
                    }
                    return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
                }
                let winners = outcomes.filter(\.value).map(\.key)
                try #require(winners.count == 1, "round \(round): \(outcomes)")
                let winner = winners[0]
                offset = Int64(100 * (round + 1) + winner)
                #expect(try await store.cdrCursor(pbx: "hq", path: Self.cursor(0).path)?.offset == offset)
                let all = try await store.cdrRows(CDRRowQuery(pbx: "hq", days: (0..<6).map { "\(round):\($0)" }))
                #expect(all.count == 50)
                #expect(Set(all.compactMap(\.day)) == ["\(round):\(winner)"])
            }
        }
    }

    // MARK: jobs

    @Test(arguments: backends)
    func wakeJobsMakesWaitingJobsDueNowAndLeavesTheOthers(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            // Waiting for its CDR row: snoozed an hour, after one attempt.
            let snoozed = try await store.insert(newJob(uniqueKey: "upload:a"))
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .seconds(3_600), reason: "awaiting_cdr", maxSnoozes: 50) == .available)
            let failed = try await store.insert(newJob(uniqueKey: "upload:f", maxAttempts: 5))
            let failedLease = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(failedLease, error: "HTTP 500", permanent: false, retryIn: .seconds(600)) == .available)
            let delayed = try await store.insert(newJob(uniqueKey: "upload:other", delay: .seconds(3_600)))
            let running = try await store.insert(newJob(uniqueKey: "upload:r"))
            let runningJob = try await store.claimOne()
            #expect(runningJob.id == running)
            let completed = try await store.insert(newJob(uniqueKey: "upload:c"))
            #expect(try await store.complete(try #require(try await store.claimOne().lease)))
            // Final jobs whose run_at is still ahead: snoozed once too often, and cancelled.
            _ = try await store.insert(newJob(uniqueKey: "upload:s"))
            let overSnoozed = try await store.claimOne()
            #expect(try await store.snooze(try #require(overSnoozed.lease), delay: .seconds(3_600), reason: "awaiting_cdr",
                                           maxSnoozes: 0) == .discarded)
            let cancelled = try await store.insert(newJob(uniqueKey: "upload:x", delay: .seconds(3_600)))
            #expect(try await store.cancel(ids: [cancelled]) == [cancelled])
            let due = try await store.insert(newJob(uniqueKey: "upload:d"))
            let before = try await store.jobs(JobQuery(limit: 100)).normalized
            clock.advance(by: .seconds(5))

            forgetPendingWakeUp(store)
            let waiter = Task { await store.waitForWork(timeout: .seconds(60)) }
            try await untilWaiting(store, count: 1)
            let started = ContinuousClock.now
            try await store.commit([.wakeJobs(uniqueKeys: ["upload:a", "upload:f", "upload:r", "upload:c", "upload:d", "upload:s",
                                                           "upload:x", "upload:none", "upload:a"])])
            await waiter.value
            #expect(ContinuousClock.now - started < .seconds(30))

            let now = try await store.now()
            for id in [snoozed, failed] {
                let job = try await store.existingJob(id)
                let old = try #require(before.first { $0.id == id })
                #expect(job.state == .available)
                #expect(job.runAt <= now && near(job.runAt, now, tolerance: 30), "job \(id) runs at \(job.runAt), now is \(now)")
                // Attempts, snoozes and the history are kept.
                #expect(job.attempt == old.attempt)
                #expect(job.snoozeCount == old.snoozeCount)
                #expect(job.errors.normalized == old.errors)
            }
            // Not named, running, completed, discarded, cancelled, or due already: as they were.
            for id in [delayed, running, completed, overSnoozed.id, cancelled, due] {
                #expect(try await store.existingJob(id).normalized == before.first { $0.id == id }, "job \(id)")
            }
            let claimed = try await store.claim(queue: queueA, limit: 10, owner: "w", leaseTTL: .seconds(30)).map(\.id)
            #expect(Set(claimed) == [snoozed, failed, due])
            try await store.commit([.wakeJobs(uniqueKeys: [])])
        }
    }

    // MARK: recordings

    @Test(arguments: backends)
    func aRecordingMovesToItsConvertedFile(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let r = LedgerTests.recording(1, path: "/spool/monitor/2026/03/08/in-x.wav")
            try await store.commit([.insertRecording(r)])
            clock.advance(by: .seconds(90))
            try await store.commit([.setRecordingPath(key: r.key, path: "/spool/monitor/2026/03/08/in-x.mp3")])
            let moved = try #require(try await store.recording(key: r.key))
            #expect(moved.path == "/spool/monitor/2026/03/08/in-x.mp3")
            let now = try await store.now()
            #expect(moved.updatedAt != r.updatedAt && near(moved.updatedAt, now, tolerance: 30))
            #expect(moved.createdAt.ms == r.createdAt.ms)
            #expect(try await store.recordings(RecordingQuery(path: "/spool/monitor/2026/03/08/in-x.mp3")).map(\.key) == [r.key])

            // An unknown recording: not found, and the commit is undone.
            let missing = await #expect(throws: StoreError.self) {
                try await store.commit([.putSourceFile(Self.file("/spool/b/y.wav")),
                                        .setRecordingPath(key: LedgerTests.key(2), path: "/spool/b/y.mp3")])
            }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.contains(LedgerTests.key(2)) == true)
            #expect(try await store.sourceFile(path: "/spool/b/y.wav") == nil)
        }
    }

    @Test(arguments: backends)
    func aRecordingCanBeSkippedAndIsCounted(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let internalCall = LedgerTests.recording(1, state: .skipped)
            let missed = LedgerTests.recording(2)
            try await store.commit([.insertRecording(internalCall), .insertRecording(missed), .insertRecording(LedgerTests.recording(3))])
            try await store.commit([.setRecordingState(key: missed.key, state: .skipped, errorCode: "missed_call",
                                                       errorMessage: "a missed call; --log leaves missed calls out")])
            let counts = try await store.recordingCounts()
            #expect(counts[.skipped] == 2)
            #expect(counts[.pending] == 1)
            #expect(counts.count == RecordingState.allCases.count)
            let skipped = try await store.recordings(RecordingQuery(states: [.skipped]))
            #expect(skipped.map(\.key) == [internalCall.key, missed.key])
            #expect(skipped.last?.errorCode == "missed_call")
            #expect(try await store.recording(key: internalCall.key)?.state == .skipped)
        }
    }

    // MARK: upgrade

    /// A v2 ledger (the SQL of its migrations) upgrades to v3 with every row kept: recordings
    /// (rebuilt for the new state), their parts and references still attached to them.
    @Test func aVersion2LedgerUpgradesInSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try SQLiteSchema.migrator.migrate(store.pool, upTo: "v2-call-log-origin")
            let key = String(repeating: "a", count: 64)
            try await store.pool.write { db in
                try db.execute(sql: """
                    INSERT INTO recording (key, path, metadata, state, error_code, part_count, seconds, created_at, updated_at)
                    VALUES (?, '/calls/a.wav', '{"call_log":{}}', 'uploaded', NULL, 1, 12.5, 1750000000125, 1750000001125)
                    """, arguments: [key])
                try db.execute(sql: """
                    INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, marker, call_log_origin)
                    VALUES (?, 1, '/s/1.mp3', 10, 12.5, 'x', 'attached', 'cl-1', 'callrec:a:p1', 'created')
                    """, arguments: [key])
                try db.execute(sql: "INSERT INTO provider_ref (recording_key, provider, reference, state) VALUES (?, 'telnyx', 'r-1', 'live')",
                               arguments: [key])
                // Before v3, `skipped` is not a state.
                #expect(throws: DatabaseError.self) {
                    try db.execute(sql: "INSERT INTO recording (key, path, state, created_at, updated_at) VALUES ('b', '/b', 'skipped', 1, 1)")
                }
            }
            let job = try await store.insert(newJob(uniqueKey: "upload:" + key))
            try await store.migrate()

            let recording = try #require(try await store.recording(key: key))
            #expect(recording.normalized == Recording(key: key, path: "/calls/a.wav", metadata: #"{"call_log":{}}"#, state: .uploaded,
                                                      partCount: 1, seconds: 12.5, createdAt: .fixture(),
                                                      updatedAt: .fixture(1)))
            #expect(try await store.parts(key: key).map(\.callLogID) == ["cl-1"])
            #expect(try await store.providerRefs(key: key).map(\.reference) == ["r-1"])
            #expect(try await store.existingJob(job).uniqueKey == "upload:" + key)
            let (violations, indexes) = try await store.pool.read { db in
                (try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").count,
                 try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'recording' AND sql IS NOT NULL ORDER BY name"))
            }
            #expect(violations == 0)
            // v3's rebuilt table has its indexes again; v6 (the console's) adds its own.
            #expect(indexes == ["recording_created", "recording_error_created", "recording_path", "recording_state", "recording_state_created",
                                "recording_state_error", "recording_state_updated"])
            // The parts still belong to their recording: one with no recording is refused.
            await #expect(throws: StoreError.self) {
                try await store.commit([.replaceParts(key: LedgerTests.key(9), parts: [LedgerTests.part(LedgerTests.key(9), 1)])])
            }
            await #expect(throws: (any Error).self) {
                try await store.pool.write { db in
                    try db.execute(sql: "INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state) VALUES ('nope', 1, '/s', 1, 1, 'x', 'pending')")
                }
            }
            // And v3 works on it.
            try await store.commit([.setRecordingState(key: key, state: .skipped, errorCode: "internal_call", errorMessage: nil),
                                    .putSourceFile(Self.file("/calls/a.wav", key: key))])
            #expect(try await store.recordingCounts()[.skipped] == 1)
            #expect(try await store.sourceFiles(directory: "/calls").map(\.recordingKey) == [key])
            try await store.migrate()
            try await store.close()
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aVersion2LedgerUpgradesInPostgres() async throws {
        try await withPostgresAtVersion(2, prefix: "pg_v2") { store in
            let key = String(repeating: "a", count: 64)
            try await store.client.query("""
                INSERT INTO recording (key, path, state, part_count, created_at, updated_at)
                VALUES (\(key), '/calls/a.wav', 'uploaded', 1, now(), now())
                """)
            try await store.client.query("""
                INSERT INTO part (recording_key, idx, spool_path, bytes, seconds, sha256, state, call_log_id, call_log_origin)
                VALUES (\(key), 1, '/s/1.mp3', 10, 12.5, 'x', 'attached', 'cl-1', 'given')
                """)
            await #expect(throws: (any Error).self) {
                try await store.client.query("INSERT INTO recording (key, path, state, created_at, updated_at) VALUES ('b', '/b', 'skipped', now(), now())")
            }
            try await store.migrate()
            #expect(try await store.recording(key: key)?.state == .uploaded)
            #expect(try await store.parts(key: key).map(\.callLogOrigin) == [.given])
            try await store.commit([.setRecordingState(key: key, state: .skipped, errorCode: "internal_call", errorMessage: nil),
                                    .putSourceFile(Self.file("/calls/a.wav", key: key))])
            #expect(try await store.recordingCounts()[.skipped] == 1)
            let versions = try await store.client.query("SELECT version FROM callrec_schema ORDER BY version").collect()
                .map { try $0.decode(Int.self) }
            #expect(versions == Array(1...PostgresSchema.latestVersion))
        }
    }
}

import CallStore
import CallTesting
import Foundation
import GRDB
import PostgresNIO
import Testing

@testable import CallStorePostgres
@testable import CallStoreSQLite

/// The Telnyx event ledger (migration v4): verified webhook events kept once per id and read
/// back by call session, on every backend; and the upgrade of a v3 ledger.
@Suite(.timeLimit(.minutes(2)))
struct TelnyxLedgerTests {
    static func event(_ id: String, _ type: String = "call.initiated", session: String? = "s1", leg: String? = "leg-1",
                      at offset: Double? = 0, document: String? = nil) -> TelnyxEventRow {
        TelnyxEventRow(id: id, type: type, callSessionID: session, callLegID: leg, occurredAt: offset.map { .fixture($0) },
                       receivedAt: .fixture(3_600), document: document ?? #"{"id":"\#(id)","payload":{"from":"+1 «Zoë»\n"}}"#)
    }

    // MARK: once per id

    @Test(arguments: backends)
    func anEventIsKeptOnceWithItsFirstDocument(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let initiated = Self.event("ev-1")
            let answered = Self.event("ev-2", "call.answered", at: 5)
            // No session, leg or time (a recording listed by a backfill, an event Telnyx sends
            // without them): kept as such.
            let bare = Self.event("ev-3", "call.recording.saved", session: nil, leg: nil, at: nil)
            try await store.commit([.insertTelnyxEvents([initiated, answered, bare])])
            #expect(try await store.telnyxEvent(id: "ev-1").normalized == initiated)
            #expect(try await store.telnyxEvent(id: "ev-3").normalized == bare)
            #expect(try await store.telnyxEvent(id: "ev-9") == nil)

            // Delivered again (Telnyx retries), with another document and time: the first stays.
            var again = initiated
            again.document = #"{"id":"ev-1","again":true}"#
            again.occurredAt = .fixture(99)
            again.receivedAt = .fixture(7_200)
            // Twice within one batch, too: the first of the batch is kept.
            let twice = [Self.event("ev-4", "call.hangup", at: 9, document: #"{"n":1}"#),
                         Self.event("ev-4", "call.hangup", at: 9, document: #"{"n":2}"#)]
            try await store.commit([.insertTelnyxEvents([again] + twice + [answered])])
            try await store.commit([.insertTelnyxEvents([])])
            #expect(try await store.telnyxEvent(id: "ev-1").normalized == initiated)
            #expect(try await store.telnyxEvent(id: "ev-4")?.document == #"{"n":1}"#)
            #expect(try await store.telnyxEvents(sessions: ["s1"]).map(\.id) == ["ev-1", "ev-2", "ev-4"])

            // An empty session or leg is none.
            try await store.commit([.insertTelnyxEvents([Self.event("ev-5", session: "", leg: "")])])
            let empty = try #require(try await store.telnyxEvent(id: "ev-5"))
            #expect(empty.callSessionID == nil && empty.callLegID == nil)
            #expect(try await store.telnyxEvents(sessions: [""]).isEmpty)
        }
    }

    /// Webhook writers commit batches at once (several workers, several requests): batches that
    /// share ids, in any order, all land, and each id is stored once.
    @Test(arguments: backends)
    func overlappingBatchesCommittedAtOnceAllLand(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // Big enough that the writers' statements overlap.
            let ids = (0..<2_000).map { String(format: "ev-%04d", $0) }
            for round in 0..<3 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        var generator = SplitMix64(seed: UInt64(100 * round + writer))
                        let order = switch writer {
                        case 0: ids
                        case 1: Array(ids.reversed())
                        default: ids.shuffled(using: &generator)
                        }
                        let batch = order.map {
                            Self.event("r\(round)-" + $0, session: "s\(round)", document: #"{"writer":\#(writer)}"#)
                        }
                        group.addTask { try await store.commit([.insertTelnyxEvents(batch)]) }
                    }
                    try await group.waitForAll()
                }
                #expect(try await store.telnyxEvents(sessions: ["s\(round)"]).count == ids.count)
            }
        }
    }

    // MARK: reads

    @Test(arguments: backends)
    func aSessionsEventsComeByTimeThenIdWithUntimedOnesLast(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let hangup = Self.event("ev-z", "call.hangup", at: 60)
            let answered = Self.event("ev-m", "call.answered", at: 2)
            // The same millisecond: by id, in byte order ("B" before "a").
            let tieLower = Self.event("ev-a", "call.recording.saved", at: 60)
            let tieUpper = Self.event("ev-B", "call.bridged", at: 60)
            let untimed = [Self.event("ev-1", "call.dtmf.received", at: nil), Self.event("ev-0", "call.speak.ended", at: nil)]
            let initiated = Self.event("ev-y", "call.initiated", at: 0)
            let other = Self.event("ev-o", "call.initiated", session: "s2", at: 30)
            let sessionless = Self.event("ev-n", "call.recording.saved", session: nil, at: 1)
            try await store.commit([.insertTelnyxEvents([untimed[0], hangup, other, tieLower])])
            try await store.commit([.insertTelnyxEvents([sessionless, answered, untimed[1], tieUpper, initiated])])

            let s1 = [initiated, answered, tieUpper, tieLower, hangup, untimed[1], untimed[0]]
            #expect(try await store.telnyxEvents(sessions: ["s1"]).normalized == s1)
            #expect(try await store.telnyxEvents(sessions: ["s2"]).normalized == [other])
            // Several sessions: one list in the same order; a session named twice, once.
            #expect(try await store.telnyxEvents(sessions: ["s2", "s1", "nobody", "s1"]).map(\.id)
                == ["ev-y", "ev-m", "ev-o", "ev-B", "ev-a", "ev-z", "ev-0", "ev-1"])
            #expect(try await store.telnyxEvents(sessions: ["nobody"]).isEmpty)
            #expect(try await store.telnyxEvents(sessions: []).isEmpty)
        }
    }

    /// A backfill or a batch of call events asks for many sessions at once: more than one
    /// statement's worth of names still comes back as one list in one order.
    @Test(arguments: backends)
    func manySessionsComeBackInOneOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let count = 3 * SQLiteStore.telnyxSessionChunk + 7
            // Later sessions (by name) occurred earlier.
            let events = (0..<count).map { n in
                Self.event(String(format: "ev-%05d", n), session: String(format: "s%05d", n), at: Double(count - n))
            }
            try await store.commit([.insertTelnyxEvents(events)])
            let found = try await store.telnyxEvents(sessions: events.compactMap(\.callSessionID) + ["nobody"]).map(\.id)
            let expected = events.reversed().map(\.id)
            #expect(found.count == expected.count)
            let misplaced = zip(found, expected).enumerated().first { $0.element.0 != $0.element.1 }
            #expect(misplaced == nil)
        }
    }

    // MARK: transactions

    @Test(arguments: backends)
    func eventsOfACommitThatALaterGuardAbortsAreNotKept(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = LedgerTests.recording(1)
            try await store.commit([.insertRecording(r)])
            let events = [Self.event("ev-1"), Self.event("ev-2", "call.recording.saved", at: 70)]
            let error = await #expect(throws: StoreError.self) {
                try await store.commit([.insertTelnyxEvents(events), .insertRecording(LedgerTests.recording(2)),
                                        .require(key: r.key, states: [.uploaded])])
            }
            #expect(error?.code == .conflict)
            #expect(try await store.telnyxEvent(id: "ev-1") == nil)
            #expect(try await store.telnyxEvents(sessions: ["s1"]).isEmpty)
            #expect(try await store.recording(key: LedgerTests.key(2)) == nil)

            // The same commit when the guard holds: all of it.
            try await store.commit([.insertTelnyxEvents(events), .insertRecording(LedgerTests.recording(2)),
                                    .require(key: r.key, states: [.pending])])
            #expect(try await store.telnyxEvents(sessions: ["s1"]).normalized == events)
            #expect(try await store.recording(key: LedgerTests.key(2)) != nil)
        }
    }

    /// The webhook's hot path: group commits of 50 events. Prints the rate and the slowest
    /// commits (the goal is 2,000 events/s with p99 ≤ 50 ms per request); the bound here only
    /// catches a path gone pathologically slow on a loaded machine.
    @Test(arguments: backends)
    func tenThousandEventsInCommitsOfFifty(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let batch = 50, total = 10_000
            var latencies: [Duration] = []
            let start = ContinuousClock.now
            for first in stride(from: 0, to: total, by: batch) {
                let events = (first..<first + batch).map { n in
                    Self.event(String(format: "ev-%06d", n), n % 3 == 0 ? "call.hangup" : "call.initiated",
                               session: "s\(n / 3)", at: Double(n))
                }
                let began = ContinuousClock.now
                try await store.commit([.insertTelnyxEvents(events)])
                latencies.append(ContinuousClock.now - began)
            }
            let elapsed = ContinuousClock.now - start
            let sorted = latencies.sorted()
            let p50 = sorted[sorted.count / 2], p99 = sorted[sorted.count * 99 / 100]
            let rate = Double(total) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            print("◇ \(backend): \(total) telnyx events in commits of \(batch): \(elapsed), \(Int(rate)) events/s; "
                + "commit p50 \(p50), p99 \(p99), max \(sorted.last ?? .zero)")
            #expect(elapsed < .seconds(60))
            #expect(try await store.telnyxEvents(sessions: ["s0", "s3332"]).map(\.id)
                == ["ev-000000", "ev-000001", "ev-000002", "ev-009996", "ev-009997", "ev-009998"])
        }
    }

    // MARK: upgrade

    /// A v3 ledger (the SQL of its migrations) upgrades to v4 with its rows kept; the events are
    /// then found by session through their index.
    @Test func aVersion3LedgerUpgradesInSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try SQLiteSchema.migrator.migrate(store.pool, upTo: "v3-source-ledger")
            let r = LedgerTests.recording(1, state: .skipped)
            // The recording as v3 wrote it (today's commit also writes tables of later versions).
            try await store.pool.write { db in
                try db.execute(sql: """
                    INSERT INTO recording (key, path, metadata, state, part_count, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 0, 0, 0)
                    """, arguments: [r.key, r.path, r.metadata, r.state.rawValue])
            }
            try await store.commit([.insertCDRRows([SourceLedgerTests.row(1)])])
            await #expect(throws: StoreError.self) { try await store.telnyxEvent(id: "ev-1") }
            try await store.migrate()

            #expect(try await store.recording(key: r.key)?.state == .skipped)
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", days: ["2026-03-08"])).count == 1)
            try await store.commit([.insertTelnyxEvents([Self.event("ev-1")])])
            #expect(try await store.telnyxEvents(sessions: ["s1"]).map(\.id) == ["ev-1"])
            let plan = try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteStore.telnyxEventsSQL(2), arguments: ["s1", "s2"])
                    .map { $0["detail"] as String }.joined(separator: "; ")
            }
            #expect(plan.contains("INDEX telnyx_event_session"), "\(plan)")
            try await store.migrate()
            try await store.close()
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aVersion3LedgerUpgradesInPostgres() async throws {
        try await withPostgresAtVersion(3, prefix: "pg_v3") { store in
            let r = LedgerTests.recording(1, state: .skipped)
            // The recording as v3 wrote it (today's commit also writes tables of later versions).
            try await store.client.query("""
                INSERT INTO recording (key, path, metadata, state, part_count, created_at, updated_at)
                VALUES (\(r.key), \(r.path), \(r.metadata), \(r.state.rawValue), 0, now(), now())
                """)
            try await store.commit([.insertCDRRows([SourceLedgerTests.row(1)])])
            await #expect(throws: StoreError.self) { try await store.telnyxEvent(id: "ev-1") }
            try await store.migrate()

            #expect(try await store.recording(key: r.key)?.state == .skipped)
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "hq", days: ["2026-03-08"])).count == 1)
            try await store.commit([.insertTelnyxEvents([Self.event("ev-1")])])
            #expect(try await store.telnyxEvents(sessions: ["s1"]).map(\.id) == ["ev-1"])
            let versions = try await store.client.query("SELECT version FROM callrec_schema ORDER BY version").collect()
                .map { try $0.decode(Int.self) }
            #expect(versions == Array(1...PostgresSchema.latestVersion))
            let plan = try await store.transaction("explain") { connection in
                // The table is nearly empty: only a planner told to avoid sequential scans shows
                // which index it can use.
                try await connection.query("SET LOCAL enable_seqscan = off", logger: store.logger)
                return try await connection.query("""
                    EXPLAIN SELECT event_id FROM telnyx_event WHERE call_session_id = ANY(\(["s1", "s2"])::text[])
                    ORDER BY occurred_at NULLS LAST, event_id
                    """, logger: store.logger).collect().map { try $0.decode(String.self) }.joined(separator: "\n")
            }
            #expect(plan.contains("telnyx_event_session"), "\(plan)")
        }
    }

    /// A v8 ledger's recordings that webhooks registered without their numbers (the set-based
    /// registrations wrote none before v9) are found by their numbers after the upgrade; a
    /// number already there stays once.
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aVersion8LedgerGainsTheNumbersOfItsWebhookRecordings() async throws {
        try await withPostgresAtVersion(8, prefix: "pg_v8") { store in
            // As v8's webhook commit left them: a recording without its numbers, and one with.
            try await store.client.query("""
                INSERT INTO recording (key, path, metadata, state, part_count, created_at, updated_at)
                VALUES ('w1', '/spool/telnyx/w1.mp3', '{"from":"+14155550101"}', 'pending', 0, now(), now()),
                       ('p1', '/pbx/4155550102.wav', NULL, 'pending', 0, now(), now())
                """)
            try await store.client.query("INSERT INTO recording_number (reversed, recording_key) VALUES ('2010555514', 'p1')")
            try await store.migrate()
            let found = { (digits: String) async throws -> [String] in
                try await store.recordingPage(RecordingPageQuery(digits: digits)).map(\.key)
            }
            #expect(try await found("4155550101") == ["w1"])
            #expect(try await found("4155550102") == ["p1"])
            let rows = try await store.client.query("SELECT count(*)::int8 FROM recording_number WHERE recording_key = 'p1'").collect()
            #expect(try rows.first?.decode(Int64.self) == 1)
        }
    }

    // MARK: the webhook's commit: registrations and wake-ups decided inside it

    /// `unlessKnown` applies its ops only for a key the ledger has neither as a recording nor as
    /// a tombstone; a second registration of one key (a duplicate delivery in a later batch, or
    /// one in the same commit) changes nothing.
    @Test(arguments: backends)
    func unlessKnownRegistersOnlyAnUnknownKey(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            func register(_ key: String) -> LedgerOp {
                .unlessKnown(key: key, ops: [
                    .insertRecording(Recording(key: key, path: "/spool/telnyx/\(key).mp3", metadata: "{\"n\":1}")),
                    .enqueue(newJob(uniqueKey: "fetch:\(key)")),
                    .audit(AuditEntry(recordingKey: key, action: "telnyx_registered", actor: "test")),
                ])
            }
            try await store.commit([register("k1"), register("k1")])
            try await store.commit([register("k1")])
            #expect(try await store.recording(key: "k1")?.metadata == "{\"n\":1}")
            #expect(try await store.jobs(JobQuery(uniqueKey: "fetch:k1", limit: 10)).count == 1)
            #expect(try await store.audit(key: "k1", limit: 10).filter { $0.action == "telnyx_registered" }.count == 1)
            // A tombstoned key (deleted before) is never registered again.
            try await store.commit([.tombstone(Tombstone(key: "k2", path: "/gone.mp3", reason: "deleted"))])
            try await store.commit([register("k2")])
            #expect(try await store.recording(key: "k2") == nil)
            #expect(try await store.jobs(JobQuery(uniqueKey: "fetch:k2", limit: 10)).isEmpty)
        }
    }

    /// A webhook batch's registrations in one commit (PostgreSQL applies a run of them
    /// set-based): of 200 keys, the ones the ledger knows (as a recording or a tombstone) are left
    /// as they are, and each other key is registered once (the first of two registrations in the
    /// batch) with its provider reference, its fetch job (claimable unless delayed) and its audit
    /// row. The expected contents are the same on every backend, column by column.
    @Test(arguments: backends)
    func aBatchOfRegistrationsRegistersEachUnknownKeyOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let at = Date.fixture(60)
            let keys = (0..<200).map { "k" + String(1_000 + $0) }
            func recording(_ i: Int, metadata: String?) -> Recording {
                Recording(key: keys[i], path: "/spool/telnyx/\(keys[i]).mp3", metadata: metadata, state: i % 11 == 0 ? .failed : .pending,
                          errorCode: i % 8 == 1 ? "E\(i)" : nil, errorMessage: i % 8 == 3 ? "why \(i)" : nil, partCount: i % 3,
                          seconds: i % 2 == 0 ? Double(i) + 0.25 : nil, createdAt: at, updatedAt: at.addingTimeInterval(Double(i)))
            }
            func audit(_ i: Int) -> AuditEntry {
                AuditEntry(at: at, recordingKey: i % 6 == 0 ? nil : keys[i], action: "telnyx_registered",
                           target: i % 2 == 0 ? nil : "t\(i)", httpStatus: i % 5 == 0 ? 201 : nil,
                           detail: i % 3 == 0 ? nil : "leg \(i)", actor: "test")
            }
            func job(_ i: Int) -> NewJob {
                NewJob(queue: "telnyx", kind: "telnyx_fetch", args: #"{"key":"\#(keys[i])"}"#, uniqueKey: "fetch:\(keys[i])",
                       priority: 1 + i % 4, maxAttempts: 3 + i % 2, delay: i % 7 == 0 ? .seconds(3_600) : .zero)
            }
            func register(_ i: Int, metadata: String?) -> LedgerOp {
                var ops: [LedgerOp] = [.insertRecording(recording(i, metadata: metadata))]
                if i % 4 != 0 { ops.append(.putProviderRef(ProviderRef(provider: "telnyx", recordingKey: keys[i], reference: "rec-\(i)"))) }
                return .unlessKnown(key: keys[i], ops: ops + [.enqueue(job(i)), .audit(audit(i))])
            }
            let known = Set(stride(from: 0, to: 200, by: 10)), tombstoned = Set(stride(from: 5, to: 200, by: 10))
            try await store.commit(known.sorted().map { .insertRecording(recording($0, metadata: "old")) }
                + tombstoned.sorted().map { .tombstone(Tombstone(key: keys[$0], path: "/gone/\($0).mp3", reason: "deleted")) })
            // Key 7 twice: the first registration wins; key 10 is known and registered twice.
            let batch = (0..<200).map { register($0, metadata: $0 % 9 == 0 ? nil : "{\"n\":\($0)}") }
            try await store.commit([.insertTelnyxEvents([Self.event("ev-1")])] + batch + [register(7, metadata: "second"), register(10, metadata: "again")])

            let unknown = (0..<200).filter { !known.contains($0) && !tombstoned.contains($0) }
            let expected = LedgerContents(
                recordings: (0..<200).filter { !tombstoned.contains($0) }.map {
                    known.contains($0) ? recording($0, metadata: "old") : recording($0, metadata: $0 % 9 == 0 ? nil : "{\"n\":\($0)}")
                },
                refs: unknown.filter { $0 % 4 != 0 }.map { ProviderRef(provider: "telnyx", recordingKey: keys[$0], reference: "rec-\($0)") },
                jobs: unknown.map { job($0) },
                audits: unknown.map { audit($0) })
            #expect(try await LedgerContents(store, keys: keys) == expected)
            let claimed = try await store.claim(queue: "telnyx", limit: 1_000, owner: "test", leaseTTL: .seconds(60))
            #expect(Set(claimed.compactMap(\.uniqueKey)) == Set(unknown.filter { $0 % 7 != 0 }.map { "fetch:\(keys[$0])" }))
        }
    }

    /// A webhook batch that announces a recording the ledger knows already (registered by a
    /// backfill, with no event of its own, and waiting for its call's events) together with its
    /// call's hangup: the known recording is left as it is (no second job or audit row), and the
    /// hangup wakes its waiting job through the batch's own recording event.
    @Test(arguments: backends)
    func aBatchThatAnnouncesAKnownRecordingWithItsHangupWakesItsWaitingJob(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            func register(_ key: String, metadata: String) -> [LedgerOp] {
                [.insertRecording(Recording(key: key, path: "/spool/telnyx/\(key).mp3", metadata: metadata)),
                 .enqueue(NewJob(queue: "telnyx", kind: "telnyx_fetch", args: #"{"key":"\#(key)"}"#, uniqueKey: "fetch:\(key)",
                                 delay: .seconds(3_600))),
                 .audit(AuditEntry(recordingKey: key, action: "telnyx_registered", actor: "test"))]
            }
            try await store.commit(register("k1", metadata: "backfill"))
            #expect(try await store.claim(queue: "telnyx", limit: 10, owner: "test", leaseTTL: .seconds(60)).isEmpty)

            var saved = Self.event("ev-saved", "call.recording.saved", at: 60)
            saved.recordingKey = "k1"
            let hangup = Self.event("ev-hangup", "call.hangup", at: 61)
            try await store.commit([.insertTelnyxEvents([saved, hangup]), .unlessKnown(key: "k1", ops: register("k1", metadata: "webhook")),
                                    .wakeTelnyxSessions(["s1"], uniqueKeyPrefix: "fetch:")])
            #expect(try await store.recording(key: "k1")?.metadata == "backfill")
            #expect(try await store.audit(key: "k1", limit: 10).count == 1)
            let claimed = try await store.claim(queue: "telnyx", limit: 10, owner: "test", leaseTTL: .seconds(60))
            #expect(claimed.map(\.uniqueKey) == ["fetch:k1"])
            #expect(try await store.telnyxEvent(id: "ev-saved")?.recordingKey == "k1")
        }
    }

    /// A batch that registers a recording whose fetch job waits (delayed) together with its
    /// call's hangup: the hangup wakes the job it registers (PostgreSQL commits such a batch in a
    /// transaction: one statement's wake-up would not see the jobs it inserts).
    @Test(arguments: backends)
    func aHangupWakesTheDelayedJobItsOwnBatchRegisters(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            var saved = Self.event("ev-saved", "call.recording.saved", at: 60)
            saved.recordingKey = "k2"
            let hangup = Self.event("ev-hangup", "call.hangup", at: 61)
            try await store.commit([
                .insertTelnyxEvents([saved, hangup]),
                .unlessKnown(key: "k2", ops: [
                    .insertRecording(Recording(key: "k2", path: "/spool/telnyx/k2.mp3", metadata: "webhook")),
                    .enqueue(NewJob(queue: "telnyx", kind: "telnyx_fetch", args: #"{"key":"k2"}"#, uniqueKey: "fetch:k2", delay: .seconds(3_600))),
                ]),
                .wakeTelnyxSessions(["s1"], uniqueKeyPrefix: "fetch:"),
            ])
            let claimed = try await store.claim(queue: "telnyx", limit: 10, owner: "test", leaseTTL: .seconds(60))
            #expect(claimed.map(\.uniqueKey) == ["fetch:k2"])
        }
    }

    /// The phone numbers of a recording that a batch registers find it in the console (a run of
    /// 7 to 15 digits in its path or metadata), in a commit of the webhook's shape and in one
    /// with other ops; a key the ledger knew (or had deleted) gains none of the batch's numbers.
    @Test(arguments: backends)
    func theNumbersOfARegisteredRecordingFindIt(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let console = try #require(store as? any ConsoleStore)
            func register(_ key: String, number: String) -> LedgerOp {
                .unlessKnown(key: key, ops: [
                    .insertRecording(Recording(key: key, path: "/spool/telnyx/\(key).mp3", metadata: #"{"from":"\#(number)"}"#)),
                    .enqueue(NewJob(queue: "telnyx", kind: "telnyx_fetch", args: "{}", uniqueKey: "fetch:\(key)")),
                ])
            }
            try await store.commit([.insertRecording(Recording(key: "known", path: "/old.mp3", metadata: nil)),
                                    .tombstone(Tombstone(key: "gone", path: "/gone.mp3", reason: "deleted"))])
            // The webhook's shape.
            try await store.commit([.insertTelnyxEvents([Self.event("ev-1")]), register("w1", number: "+14155550101"),
                                    register("known", number: "+14155550102"), register("gone", number: "+14155550103")])
            // Another shape: the registrations beside another op.
            try await store.commit([register("t1", number: "+14155550104"), .audit(AuditEntry(recordingKey: nil, action: "test", actor: "test"))])
            func found(_ digits: String) async throws -> [String] {
                try await console.recordingPage(RecordingPageQuery(digits: digits)).map(\.key)
            }
            #expect(try await found("4155550101") == ["w1"])
            #expect(try await found("4155550102").isEmpty)
            #expect(try await found("4155550103").isEmpty)
            #expect(try await found("4155550104") == ["t1"])
        }
    }

    /// A registration the set-based path does not take (other ops inside it) applies op by op in
    /// its place in the run: a key registered before it is known to it, and the registrations
    /// after it see what it did. A provider reference before its recording fails the commit as
    /// it does op by op, and nothing of the commit stays.
    @Test(arguments: backends)
    func aRegistrationOfAnotherShapeAppliesInItsPlace(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            func register(_ key: String, metadata: String = "webhook", _ more: [LedgerOp] = []) -> LedgerOp {
                .unlessKnown(key: key, ops: [.insertRecording(Recording(key: key, path: "/spool/\(key).mp3", metadata: metadata))] + more + [
                    .enqueue(newJob(uniqueKey: "fetch:\(key)")),
                    .audit(AuditEntry(recordingKey: key, action: "telnyx_registered", actor: "test")),
                ])
            }
            let failed: [LedgerOp] = [.setRecordingState(key: "k2", state: .failed, errorCode: "E1", errorMessage: "why")]
            try await store.commit([
                register("k1"), register("k1", metadata: "other", [.setRecordingState(key: "k1", state: .failed)]),
                register("k2", metadata: "per-op", failed), register("k2"), register("k3"),
            ])
            #expect(try await store.recording(key: "k1")?.state == .pending)
            let k2 = try #require(try await store.recording(key: "k2"))
            #expect(k2.metadata == "per-op" && k2.state == .failed && k2.errorCode == "E1")
            #expect(try await store.recording(key: "k3") != nil)
            for key in ["k1", "k2", "k3"] {
                #expect(try await store.jobs(JobQuery(uniqueKey: "fetch:\(key)", limit: 10)).count == 1, "\(key)")
                #expect(try await store.audit(key: key, limit: 10).count == 1, "\(key)")
            }

            let ref = ProviderRef(provider: "telnyx", recordingKey: "k5", reference: "rec-5")
            let error = await #expect(throws: StoreError.self) {
                try await store.commit([register("k4"), .unlessKnown(key: "k5", ops: [.putProviderRef(ref)]), register("k6")])
            }
            #expect(error?.code == .notFound)
            #expect(try await store.recording(key: "k4") == nil)
            #expect(try await store.jobs(JobQuery(uniqueKey: "fetch:k4", limit: 10)).isEmpty)
        }
    }

    /// PostgreSQL wakes a session's recordings in one statement that finds their jobs through
    /// an index of unique keys (the keys it builds from the events must take the index's
    /// collation).
    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func wakingSessionsInPostgresUsesTheLiveKeyIndex() async throws {
        try await withStore(.postgres) { store in
            let store = try #require(store as? PostgresStore)
            // Waiting jobs (due in an hour: their time does not narrow them down) of 2,000 recordings.
            try await store.enqueue((0..<2_000).map { newJob(uniqueKey: "fetch:k\($0)", delay: .seconds(3_600)) })
            let wake = try PostgresStore.wakeSessions(["s1", "s2"], uniqueKeyPrefix: "fetch:", offset: 0)
            let plan = try await store.transaction("explain") { connection in
                try await connection.query("ANALYZE queue_job", logger: store.logger)
                try await connection.query("SET LOCAL enable_seqscan = off", logger: store.logger)
                return try await connection.query(PostgresQuery(unsafeSQL: "EXPLAIN " + wake.sql, binds: wake.binds), logger: store.logger)
                    .collect().map { try $0.decode(String.self) }.joined(separator: "\n")
            }
            // Either index of unique keys (the live ones, or all of them: v8): what matters is that
            // the keys reach one.
            #expect((plan.contains("queue_job_live_key") || plan.contains("queue_job_unique_key")) && plan.contains("telnyx_event_session"), "\(plan)")
        }
    }

    /// What the ledger holds of registrations, comparable across backends (times to the ms, no ids).
    struct LedgerContents: Equatable {
        var recordings: [Recording]
        var refs: [ProviderRef]
        var jobs: [NewJob]
        var audits: [AuditEntry]

        init(recordings: [Recording], refs: [ProviderRef], jobs: [NewJob], audits: [AuditEntry]) {
            self.recordings = recordings.map(\.normalized)
            self.refs = refs
            self.jobs = jobs
            self.audits = audits.map(\.normalized)
        }

        init(_ store: any CallStore, keys: [String]) async throws {
            recordings = try await store.recordings(RecordingQuery(limit: 1_000)).map(\.normalized)
            var refs: [ProviderRef] = []
            for key in keys { refs += try await store.providerRefs(key: key) }
            self.refs = refs
            let now = try await store.now()
            jobs = try await store.jobs(JobQuery(limit: 1_000)).sorted { $0.id < $1.id }.map { job in
                #expect(job.state == .available && job.attempt == 0)
                let delay: Duration = job.runAt > now.addingTimeInterval(60) ? .seconds(3_600) : .zero
                return NewJob(queue: job.queue, kind: job.kind, args: job.args, uniqueKey: job.uniqueKey, priority: job.priority,
                              maxAttempts: job.maxAttempts, delay: delay)
            }
            audits = try await store.audit(key: nil, limit: 1_000).map { entry in
                var entry = entry.normalized
                entry.id = 0
                return entry
            }
        }
    }

    /// `wakeTelnyxSessions` makes due now the waiting jobs of the recordings the stored recording
    /// events of those sessions announced, and no other.
    @Test(arguments: backends)
    func wakeTelnyxSessionsWakesTheRecordingsOfThoseSessionsOnly(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            var saved = Self.event("rec-1", "call.recording.saved", session: "s1")
            saved.recordingKey = "k1"
            var elsewhere = Self.event("rec-2", "call.recording.saved", session: "s2")
            elsewhere.recordingKey = "k2"
            try await store.commit([.insertTelnyxEvents([saved, elsewhere, Self.event("ev-1", session: "s1")])])
            let waiting = try await store.insert(newJob(uniqueKey: "fetch:k1", delay: .seconds(3_600)))
            let other = try await store.insert(newJob(uniqueKey: "fetch:k2", delay: .seconds(3_600)))
            #expect(try await store.telnyxEvent(id: "rec-1")?.recordingKey == "k1")
            try await store.commit([.wakeTelnyxSessions(["s1", "s9", ""], uniqueKeyPrefix: "fetch:")])
            let now = try await store.now()
            #expect(try await store.existingJob(waiting).runAt <= now)
            #expect(try await store.existingJob(other).runAt > now)
            try await store.commit([.wakeTelnyxSessions([], uniqueKeyPrefix: "fetch:")])
        }
    }
}

extension TelnyxEventRow: MillisecondNormalizable {
    var normalized: TelnyxEventRow {
        var copy = self
        copy.occurredAt = occurredAt.map { Date(timeIntervalSince1970: Double($0.ms) / 1000) }
        copy.receivedAt = Date(timeIntervalSince1970: Double(receivedAt.ms) / 1000)
        return copy
    }
}

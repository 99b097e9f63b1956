import CallJobs
import CallPipeline
import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallTelnyx
import CallTesting
import Foundation
import Logging
import Testing

/// Verified Telnyx events into the ledger (``TelnyxIntake``) over a real store, SQLite and
/// PostgreSQL: each event stored once, each recording registered once with one fetch job however
/// its events come (twice, out of order, across batches), a call event waking the fetch job that
/// waits for it, a deleted recording never registered again.
@Suite struct TelnyxIntakeTests {
    struct Fixture {
        let dir: String
        let store: any CallStore
        let intake: TelnyxIntake
        let lines: Locked<[String]>
    }

    func withIntake(_ body: (Fixture) async throws -> Void) async throws {
        var backends = ["sqlite"]
        if TestPostgres.available { backends.append(try #require(try TestPostgres.freshDatabase(prefix: "telnyx_intake"))) }
        for backend in backends {
            try await withTemporaryDirectory { dir in
                try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
                let store: any CallStore = backend == "sqlite" ? try SQLiteStore(path: "\(dir)/state/callrec.sqlite") : try PostgresStore(url: backend)
                try await store.migrate()
                let lines = Locked<[String]>([])
                let logger = Logger(label: "test") { _ in CaptureHandler(lines: lines) }
                try await withRunningStore(store) { store in
                    let intake = TelnyxIntake(store: store, settings: TelnyxSettings(), spool: Spool(root: "\(dir)/state/spool"), logger: logger)
                    try await body(Fixture(dir: dir, store: store, intake: intake, lines: lines))
                }
            }
        }
    }

    static func events(_ bodies: String...) throws -> [TelnyxEvent] {
        try bodies.map { try TelnyxEvent.parse(Array($0.utf8)) }
    }

    static func fetchJobs(_ store: any CallStore) async throws -> [Job] {
        try await store.jobs(JobQuery(queue: QueueName.fetch.rawValue, limit: 100))
    }

    @Test func aRecordingEventRegistersItsRecordingWithItsFetchJobAndProviderRef() async throws {
        try await withIntake { fixture in
            let call = TelnyxWebhooks()
            let saved = try Self.events(call.recordingSaved(recordingID: "rec-1"))
            let recording = try TelnyxRecordingInfo(event: saved[0])
            try await fixture.intake.accept(saved, receivedAt: Date())

            let stored = try #require(try await fixture.store.recording(key: recording.key))
            #expect(stored.state == .pending)
            #expect(stored.path == "\(fixture.dir)/state/spool/telnyx/\(recording.key).mp3")
            let metadata = try #require(SourceMetadata.parse(stored.metadata))
            #expect(metadata.source.kind == "telnyx" && metadata.source.callID == call.session)
            #expect(metadata.telnyx?.recording.callLegID == call.leg && metadata.telnyx?.origin == "webhook")
            #expect(try await fixture.store.providerRefs(key: recording.key).map(\.reference) == ["rec-1"])
            let jobs = try await Self.fetchJobs(fixture.store)
            #expect(jobs.map(\.uniqueKey) == [TelnyxFetchJobHandler.uniqueKey(recording.key)])
            #expect(try await fixture.store.audit(key: recording.key, limit: 10).map(\.action) == [TelnyxIntake.registeredAction])
            #expect(try await fixture.store.telnyxEvent(id: saved[0].id)?.type == TelnyxEvent.recordingSaved)
        }
    }

    @Test func duplicatesAndReorderingWithinAndAcrossBatchesGiveOneRecording() async throws {
        try await withIntake { fixture in
            let call = TelnyxWebhooks()
            let saved = call.recordingSaved(id: "saved-1", recordingID: nil)
            // One batch: the recording before its call's events, its event twice.
            try await fixture.intake.accept(try Self.events(call.hangup(id: "hangup-1"), saved, saved, call.initiated(id: "initiated-1")),
                                            receivedAt: Date())
            // Later batches: the same events again, and the recording announced by another
            // event (a redelivery that was given a new id, with the recording id this time).
            try await fixture.intake.accept(try Self.events(saved, call.answered(id: "answered-1"), call.hangup(id: "hangup-1")), receivedAt: Date())
            try await fixture.intake.accept(try Self.events(call.recordingSaved(id: "saved-2", recordingID: "rec-2")), receivedAt: Date())

            let recordings = try await fixture.store.recordings(RecordingQuery(limit: 10))
            #expect(recordings.count == 1)
            #expect(try await Self.fetchJobs(fixture.store).count == 1)
            let stored = try await fixture.store.telnyxEvents(sessions: [call.session])
            #expect(Set(stored.map(\.id)) == ["hangup-1", "saved-1", "initiated-1", "answered-1", "saved-2"])
            #expect(stored.count == 5)
        }
    }

    @Test func aCallEventWakesTheFetchJobsOfItsSessionOnly() async throws {
        try await withIntake { fixture in
            let call = TelnyxWebhooks(), other = TelnyxWebhooks()
            try await fixture.intake.accept(try Self.events(call.recordingSaved(), other.recordingSaved()), receivedAt: Date())
            // Both fetch jobs wait for their calls' events (as the fetch job snoozes).
            let claimed = try await fixture.store.claim(queue: QueueName.fetch.rawValue, limit: 10, owner: "test", leaseTTL: .seconds(60))
            #expect(claimed.count == 2)
            for job in claimed {
                _ = try await fixture.store.snooze(try #require(job.lease), delay: .seconds(3600), reason: "waits for the call's events", maxSnoozes: 10)
            }
            let later = try await fixture.store.now().addingTimeInterval(1800)
            #expect(try await Self.fetchJobs(fixture.store).allSatisfy { $0.runAt > later })

            try await fixture.intake.accept(try Self.events(call.hangup()), receivedAt: Date())
            let soon = try await fixture.store.now().addingTimeInterval(5)
            let jobs = Dictionary(uniqueKeysWithValues: try await Self.fetchJobs(fixture.store).map { ($0.uniqueKey ?? "", $0) })
            let key = try TelnyxRecordingInfo(event: try Self.events(call.recordingSaved())[0]).key
            let otherKey = try TelnyxRecordingInfo(event: try Self.events(other.recordingSaved())[0]).key
            #expect(try #require(jobs[TelnyxFetchJobHandler.uniqueKey(key)]).runAt <= soon, "woken by its call's hangup")
            #expect(try #require(jobs[TelnyxFetchJobHandler.uniqueKey(otherKey)]).runAt > later, "another call's event wakes nothing")
        }
    }

    @Test func aTombstonedRecordingIsNotRegisteredAgain() async throws {
        try await withIntake { fixture in
            let call = TelnyxWebhooks()
            let saved = try Self.events(call.recordingSaved())
            let key = try TelnyxRecordingInfo(event: saved[0]).key
            try await fixture.store.commit([.tombstone(Tombstone(key: key, path: "telnyx", reason: "cli"))])
            try await fixture.intake.accept(saved, receivedAt: Date())
            #expect(try await fixture.store.recording(key: key) == nil)
            #expect(try await Self.fetchJobs(fixture.store).isEmpty)
            #expect(try await fixture.store.telnyxEvent(id: saved[0].id) != nil, "the event is stored all the same")
        }
    }

    @Test func aRecordingEventWithoutItsLegIsStoredLoggedAndRegistersNothing() async throws {
        try await withIntake { fixture in
            let call = TelnyxWebhooks()
            let events = try Self.events(call.recordingSaved(leg: ""), call.initiated())
            try await fixture.intake.accept(events, receivedAt: Date())
            #expect(try await fixture.store.recordings(RecordingQuery(limit: 10)).isEmpty)
            #expect(try await Self.fetchJobs(fixture.store).isEmpty)
            #expect(try await fixture.store.telnyxEvents(sessions: [call.session]).count == 2)
            let errors = fixture.lines.withLock { $0 }.filter { $0.hasPrefix("error") }
            #expect(errors.count == 1 && errors.allSatisfy { $0.contains("call_leg_id") }, "\(errors)")
        }
    }
}

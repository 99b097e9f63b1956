import CallStore
import Foundation
import Testing

/// The ledger and `commit`, on every backend.
@Suite(.timeLimit(.minutes(2)))
struct LedgerTests {
    static func key(_ n: Int) -> String { String(format: "%064x", n) }

    static func recording(_ n: Int, state: RecordingState = .pending, path: String? = nil) -> Recording {
        Recording(key: key(n), path: path ?? "/calls/\(n).wav", metadata: #"{"call_log":{"outcome":"connected"}}"#,
                  state: state, partCount: 0, createdAt: .fixture(Double(n)), updatedAt: .fixture(Double(n)))
    }

    static func part(_ key: String, _ index: Int) -> Part {
        Part(recordingKey: key, index: index, spoolPath: "/spool/\(key.prefix(8))/\(index).mp3", bytes: 1_000_000 + Int64(index),
             seconds: 600.5 + Double(index), sha256: String(repeating: "ab", count: 32))
    }

    // MARK: transactions

    @Test(arguments: backends)
    func aFailingRequireRollsBackTheWholeCommitIncludingItsEnqueue(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = Self.recording(1)
            let results = try await store.commit([.insertRecording(r), .enqueue(newJob(kind: "transcode", uniqueKey: "t:1"))])
            guard results.count == 1, case .inserted(let first) = results[0] else {
                Issue.record("commit results: \(results)")
                return
            }
            #expect(try await store.recording(key: r.key)?.state == .pending)
            #expect(try await store.existingJob(first).kind == "transcode")

            // The state changes first, then the guard fails: neither the change nor the job stay.
            let error = await #expect(throws: StoreError.self) {
                try await store.commit([
                    .enqueue(newJob(kind: "upload")),
                    .setRecordingState(key: r.key, state: .transcoded),
                    .audit(AuditEntry(recordingKey: r.key, action: "transcode", actor: "test")),
                    .require(key: r.key, states: [.pending]),
                ])
            }
            #expect(error?.code == .conflict)
            #expect(error?.message.contains(r.key) == true)
            #expect(error?.message.contains("transcoded") == true)
            #expect(try await store.recording(key: r.key)?.state == .pending)
            #expect(try await store.jobs(JobQuery(kind: "upload")).isEmpty)
            #expect(try await store.audit(key: r.key, limit: 10).isEmpty)

            // A guard on a missing recording fails too.
            let missing = await #expect(throws: StoreError.self) {
                try await store.commit([.enqueue(newJob(kind: "upload")), .require(key: Self.key(99), states: [.pending])])
            }
            #expect(missing?.code == .conflict)
            #expect(missing?.message.contains(Self.key(99)) == true)
            #expect(try await store.jobs(JobQuery(kind: "upload")).isEmpty)

            // The guard passes: all of it lands, and results come back per enqueue, in order.
            let landed = try await store.commit([
                .require(key: r.key, states: [.pending, .transcoded]),
                .setRecordingState(key: r.key, state: .transcoded),
                .enqueue(newJob(kind: "upload", uniqueKey: "u:1")),
                .enqueue(newJob(kind: "upload", uniqueKey: "u:1")),
                .enqueue(newJob(kind: "upload", uniqueKey: "u:2")),
            ])
            #expect(landed.count == 3)
            #expect(landed[1] == .duplicate)
            let uploads = try await store.jobs(JobQuery(kind: "upload"))
            #expect(uploads.count == 2)
            if case .inserted(let a) = landed[0], case .inserted(let b) = landed[2] {
                #expect(uploads.map(\.id) == [a, b])
            } else {
                Issue.record("commit results: \(landed)")
            }
            #expect(try await store.recording(key: r.key)?.state == .transcoded)
            #expect(try await store.commit([]).isEmpty)
        }
    }

    @Test(arguments: backends)
    func changesToMissingRowsAreRefused(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            try await store.commit([.insertRecording(Self.recording(1))])
            let missing = Self.key(2)
            let ops: [LedgerOp] = [
                .setRecordingState(key: missing, state: .failed),
                .setRecordingAudio(key: missing, partCount: 1, seconds: 1),
                .updatePart(Self.part(Self.key(1), 1)),
                .updateDeletionStep(deletionID: "nope", target: "spool", state: .done, httpStatus: nil, detail: nil),
                .finishDeletion(id: "nope"),
            ]
            for op in ops {
                let error = await #expect(throws: StoreError.self, "\(op)") {
                    try await store.commit([.setRecordingState(key: Self.key(1), state: .failed), op])
                }
                #expect(error?.code == .notFound, "\(op)")
            }
            #expect(try await store.recording(key: Self.key(1))?.state == .pending)
        }
    }

    // MARK: recordings

    @Test(arguments: backends)
    func recordingsRoundTripAndInsertKeepsTheFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            var r = Self.recording(7)
            r.seconds = 12.5
            r.errorCode = "none"
            r.errorMessage = "nothing"
            r.partCount = 2
            try await store.commit([.insertRecording(r)])
            #expect(try await store.recording(key: r.key).normalized == r)
            #expect(try await store.recording(key: Self.key(8)) == nil)

            var other = Self.recording(7, state: .failed, path: "/elsewhere.wav")
            other.metadata = nil
            try await store.commit([.insertRecording(other)])
            #expect(try await store.recording(key: r.key).normalized == r)

            let before = try await store.now()
            try await store.commit([.setRecordingState(key: r.key, state: .failed, errorCode: "bad_audio", errorMessage: "no frames")])
            var stored = try #require(try await store.recording(key: r.key))
            #expect(stored.state == .failed)
            #expect(stored.errorCode == "bad_audio" && stored.errorMessage == "no frames")
            #expect(stored.updatedAt >= before.addingTimeInterval(-0.001))
            #expect(stored.createdAt.ms == r.createdAt.ms)

            try await store.commit([.setRecordingState(key: r.key, state: .transcoded),
                                    .setRecordingAudio(key: r.key, partCount: 3, seconds: 1234.25)])
            stored = try #require(try await store.recording(key: r.key))
            #expect(stored.state == .transcoded)
            #expect(stored.errorCode == nil && stored.errorMessage == nil)
            #expect(stored.partCount == 3)
            #expect(stored.seconds == 1234.25)
            #expect(stored.path == r.path && stored.metadata == r.metadata)
        }
    }

    /// Registration inserts only a key nobody has: the same bytes registered meanwhile (another
    /// file, another run) make the whole commit a conflict, so nothing of it lands.
    @Test(arguments: backends)
    func registeringAKnownKeyIsAConflictAndNothingOfTheCommitLands(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = Self.recording(1)
            try await store.commit([.registerRecording(r), .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: r.key, reference: "rec-a"))])
            #expect(try await store.recording(key: r.key).normalized == r)
            let error = await #expect(throws: StoreError.self) {
                try await store.commit([
                    .registerRecording(Self.recording(1, path: "/calls/copy.wav")),
                    .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: r.key, reference: "rec-b")),
                    .enqueue(newJob(kind: "transcode", uniqueKey: "t:1")),
                ])
            }
            #expect(error?.code == .conflict)
            #expect(error?.message.contains(r.key) == true)
            #expect(try await store.recording(key: r.key)?.path == r.path)
            #expect(try await store.providerRefs(key: r.key).map(\.reference) == ["rec-a"])
            #expect(try await store.jobs(JobQuery(kind: "transcode")).isEmpty)
        }
    }

    /// A sidecar mended after registration: its document and references replace the stored ones.
    @Test(arguments: backends)
    func metadataAndProviderReferencesAreReplaced(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1)), .insertRecording(Self.recording(2))])
            let telnyx = ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: "rec-1")
            let voipnow = ProviderRef(provider: ProviderRef.voipnow, recordingKey: key, reference: #"{"event_id":"e1"}"#)
            try await store.commit([.putProviderRef(telnyx), .putProviderRef(voipnow),
                                    .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: Self.key(2), reference: "rec-2"))])

            let before = try await store.now()
            let mended = #"{"call_log_id": "42"}"#
            let telnyx2 = ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: "rec-9")
            try await store.commit([.setRecordingMetadata(key: key, metadata: mended), .replaceProviderRefs(key: key, refs: [telnyx2])])
            let stored = try #require(try await store.recording(key: key))
            #expect(stored.metadata == mended)
            #expect(stored.updatedAt >= before.addingTimeInterval(-0.001))
            #expect(try await store.providerRefs(key: key) == [telnyx2])
            #expect(try await store.providerRefs(key: Self.key(2)).map(\.reference) == ["rec-2"])
            try await store.commit([.replaceProviderRefs(key: key, refs: [])])
            #expect(try await store.providerRefs(key: key).isEmpty)

            // Missing recordings and references of another recording are refused.
            let missing = await #expect(throws: StoreError.self) {
                try await store.commit([.setRecordingMetadata(key: Self.key(3), metadata: nil)])
            }
            #expect(missing?.code == .notFound)
            let noRecording = await #expect(throws: StoreError.self) {
                try await store.commit([.replaceProviderRefs(key: Self.key(3), refs: [])])
            }
            #expect(noRecording?.code == .notFound)
            let stray = await #expect(throws: StoreError.self) {
                try await store.commit([.replaceProviderRefs(key: key, refs: [ProviderRef(provider: ProviderRef.telnyx, recordingKey: Self.key(2), reference: "x")])])
            }
            #expect(stray?.code == .invalid)
            #expect(try await store.providerRefs(key: Self.key(2)).map(\.reference) == ["rec-2"])
        }
    }

    @Test(arguments: backends)
    func recordingsPageInKeyOrderAndCountEveryState(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let states: [RecordingState] = [.pending, .uploaded, .pending, .failed, .uploaded]
            // Inserted out of key order.
            try await store.commit([4, 2, 5, 1, 3].map { n -> LedgerOp in
                .insertRecording(Self.recording(n, state: states[n - 1], path: n == 3 ? "/calls/shared.wav" : nil))
            })
            let keys = (1...5).map(Self.key)

            #expect(try await store.recordings(RecordingQuery()).map(\.key) == keys)
            var page = try await store.recordings(RecordingQuery(limit: 2))
            #expect(page.map(\.key) == Array(keys[0..<2]))
            page = try await store.recordings(RecordingQuery(afterKey: page.last?.key, limit: 2))
            #expect(page.map(\.key) == Array(keys[2..<4]))
            page = try await store.recordings(RecordingQuery(afterKey: page.last?.key, limit: 2))
            #expect(page.map(\.key) == [keys[4]])
            #expect(try await store.recordings(RecordingQuery(afterKey: keys[4], limit: 2)).isEmpty)

            #expect(try await store.recordings(RecordingQuery(states: [.uploaded])).map(\.key) == [keys[1], keys[4]])
            #expect(try await store.recordings(RecordingQuery(states: [.pending, .failed], afterKey: keys[0])).map(\.key)
                == [keys[2], keys[3]])
            #expect(try await store.recordings(RecordingQuery(path: "/calls/shared.wav")).map(\.key) == [keys[2]])
            #expect(try await store.recordings(RecordingQuery(states: [.deleted])).isEmpty)

            let counts = try await store.recordingCounts()
            #expect(counts == [.pending: 2, .transcoded: 0, .uploaded: 2, .failed: 1, .skipped: 0, .deleting: 0, .deleted: 0])
        }
    }

    // MARK: parts and provider references

    @Test(arguments: backends)
    func partsAreReplacedUpdatedAndFoundByCallLog(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1))])
            #expect(try await store.parts(key: key).isEmpty)

            let three = (1...3).map { Self.part(key, $0) }
            try await store.commit([.replaceParts(key: key, parts: three.reversed())])
            #expect(try await store.parts(key: key) == three)

            var second = three[1]
            second.state = .creating
            second.marker = "callrec:\(key.prefix(12)):2"
            second.createStartedAt = .fixture(10)
            try await store.commit([.updatePart(second)])
            second.state = .attached
            second.callLogID = "cl-555"
            second.attachedAt = .fixture(20)
            try await store.commit([.updatePart(second)])
            #expect(try await store.parts(key: key).normalized == [three[0], second, three[2]])
            #expect(try await store.part(callLogID: "cl-555").normalized == second)
            #expect(try await store.part(callLogID: "cl-404") == nil)

            // A new transcode replaces them all.
            let two = (1...2).map { Self.part(key, $0) }
            try await store.commit([.replaceParts(key: key, parts: two)])
            #expect(try await store.parts(key: key) == two)
            #expect(try await store.part(callLogID: "cl-555") == nil)
            try await store.commit([.replaceParts(key: key, parts: [])])
            #expect(try await store.parts(key: key).isEmpty)
        }
    }

    /// Who made a part's call log decides whether a delete may remove it: the ledger keeps it
    /// through replace and update, and a part without a call log has none.
    @Test(arguments: backends)
    func partsKeepWhoMadeTheirCallLog(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1))])
            var created = Self.part(key, 1)
            created.state = .attached
            created.callLogID = "cl-1"
            created.callLogOrigin = .created
            created.marker = "callrec:\(key.prefix(32)):p1"
            var given = Self.part(key, 2)
            given.state = .created
            given.callLogID = "cl-2"
            given.callLogOrigin = .given
            let none = Self.part(key, 3)
            try await store.commit([.replaceParts(key: key, parts: [created, given, none])])
            #expect(try await store.parts(key: key).normalized == [created, given, none])
            #expect(try await store.part(callLogID: "cl-2")?.callLogOrigin == .given)

            var attached = given
            attached.state = .attached
            attached.attachedAt = .fixture(3)
            try await store.commit([.updatePart(attached)])
            #expect(try await store.part(callLogID: "cl-2").normalized == attached)
            attached.callLogOrigin = nil
            try await store.commit([.updatePart(attached)])
            #expect(try await store.part(callLogID: "cl-2")?.callLogOrigin == nil)
        }
    }

    @Test(arguments: backends)
    func providerReferencesArePutPerProvider(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1)), .insertRecording(Self.recording(2))])
            let voipnow = ProviderRef(provider: ProviderRef.voipnow, recordingKey: key,
                                      reference: #"{"event_id":"e1","event_type":"hangup","extension":"0003*201","user_id":"7"}"#)
            let telnyx = ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: "rec-1")
            try await store.commit([.putProviderRef(voipnow), .putProviderRef(telnyx)])
            #expect(try await store.providerRefs(key: key) == [telnyx, voipnow])

            let deleted = ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: "rec-1b", state: "deleted")
            try await store.commit([.putProviderRef(deleted)])
            #expect(try await store.providerRefs(key: key) == [deleted, voipnow])
            #expect(try await store.providerRefs(key: Self.key(2)).isEmpty)
        }
    }

    // MARK: deletions, audit, tombstones

    @Test(arguments: backends)
    func deletionsKeepTheirStepsAndFinish(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1)), .insertRecording(Self.recording(9))])
            let steps = [
                DeletionStep(position: 1, target: "pipedrive:cl-1", updatedAt: .fixture()),
                DeletionStep(position: 2, target: "telnyx:rec-1", updatedAt: .fixture()),
                DeletionStep(position: 3, target: "spool", updatedAt: .fixture()),
            ]
            let older = Deletion(id: "d-older", recordingKey: Self.key(9), reason: "reconcile: call log 9 answered 404",
                                 steps: [], createdAt: .fixture(-60))
            let deletion = Deletion(id: "6F9619FF-8B86-D011-B42D-00C04FC964FF", recordingKey: key, reason: "cli",
                                    steps: steps.reversed(), createdAt: .fixture())
            try await store.commit([.insertDeletion(deletion), .insertDeletion(older),
                                    .setRecordingState(key: key, state: .deleting)])
            var expected = deletion
            expected.steps = steps
            #expect(try await store.deletion(id: deletion.id).normalized == expected)
            #expect(try await store.deletion(id: "unknown") == nil)
            #expect(try await store.openDeletions().map(\.id) == [older.id, deletion.id])

            // The same id twice is refused, and nothing of that commit stays.
            let duplicate = await #expect(throws: StoreError.self) {
                try await store.commit([.audit(AuditEntry(recordingKey: key, action: "x", actor: "t")), .insertDeletion(deletion)])
            }
            #expect(duplicate != nil)
            #expect(try await store.audit(key: key, limit: 10).isEmpty)

            let before = try await store.now()
            try await store.commit([.updateDeletionStep(deletionID: deletion.id, target: "pipedrive:cl-1", state: .done,
                                                        httpStatus: 404, detail: "gone already")])
            try await store.commit([.updateDeletionStep(deletionID: deletion.id, target: "telnyx:rec-1", state: .failed,
                                                        httpStatus: 503, detail: "try later")])
            let progressed = try #require(try await store.deletion(id: deletion.id))
            #expect(progressed.steps.map(\.state) == [.done, .failed, .pending])
            #expect(progressed.steps.map(\.httpStatus) == [404, 503, nil])
            #expect(progressed.steps.map(\.detail) == ["gone already", "try later", nil])
            #expect(progressed.steps[0].updatedAt >= before.addingTimeInterval(-0.001))
            #expect(progressed.finishedAt == nil)

            try await store.commit([.finishDeletion(id: deletion.id), .setRecordingState(key: key, state: .deleted)])
            let finished = try #require(try await store.deletion(id: deletion.id))
            #expect(near(finished.finishedAt, try await store.now(), tolerance: 5))
            #expect(try await store.openDeletions().map(\.id) == [older.id])
            #expect(try await store.recording(key: key)?.state == .deleted)
        }
    }

    /// A step can be skipped (a call log callrec did not create, a step a user gave up), from
    /// the start or later, and reads back as such.
    @Test(arguments: backends)
    func deletionStepsCanBeSkipped(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let key = Self.key(1)
            try await store.commit([.insertRecording(Self.recording(1, state: .deleting))])
            let deletion = Deletion(id: "d-1", recordingKey: key, reason: "cli", steps: [
                DeletionStep(position: 1, target: "pipedrive:cl-1", state: .skipped, detail: "left: not created by callrec", updatedAt: .fixture()),
                DeletionStep(position: 2, target: "voipnow:{}", state: .failed, detail: "not sent", updatedAt: .fixture()),
                DeletionStep(position: 3, target: "spool", updatedAt: .fixture()),
            ], createdAt: .fixture())
            try await store.commit([.insertDeletion(deletion)])
            #expect(try await store.deletion(id: deletion.id).normalized == deletion)
            try await store.commit([.updateDeletionStep(deletionID: deletion.id, target: "voipnow:{}", state: .skipped, httpStatus: nil,
                                                        detail: "skipped at the request of someone")])
            let stored = try #require(try await store.deletion(id: deletion.id))
            #expect(stored.steps.map(\.state) == [.skipped, .skipped, .pending])
            #expect(stored.steps.map(\.state.isSettled) == [true, true, false])
            #expect(stored.steps[1].detail == "skipped at the request of someone")
        }
    }

    @Test(arguments: backends)
    func auditAppendsAndListsTheLastEntriesOldestFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let a = Self.key(1), b = Self.key(2)
            let entries = [
                AuditEntry(at: .fixture(1), recordingKey: a, action: "create_call_log", target: "pipedrive:cl-1",
                           httpStatus: 201, detail: "marker m1", actor: "host:1"),
                AuditEntry(at: .fixture(2), recordingKey: b, action: "upload", target: "pipedrive:cl-2", actor: "host:2"),
                AuditEntry(at: .fixture(3), recordingKey: a, action: "upload", target: "pipedrive:cl-1", httpStatus: 200,
                           actor: "host:1"),
                AuditEntry(at: .fixture(4), recordingKey: nil, action: "reconcile_plan", detail: "0 deletions", actor: "host:3"),
            ]
            // Separate commits, and two in one.
            try await store.commit([.audit(entries[0])])
            try await store.commit([.audit(entries[1]), .audit(entries[2])])
            try await store.commit([.audit(entries[3])])

            let all = try await store.audit(key: nil, limit: 100)
            #expect(all.count == 4)
            #expect(all.map(\.id) == all.map(\.id).sorted())
            #expect(Set(all.map(\.id)).count == 4 && all.allSatisfy { $0.id > 0 })
            #expect(all.map { entry -> AuditEntry in
                var entry = entry.normalized
                entry.id = 0
                return entry
            } == entries)

            #expect(try await store.audit(key: a, limit: 100).map(\.action) == ["create_call_log", "upload"])
            #expect(try await store.audit(key: a, limit: 1).map(\.id) == [all[2].id])
            #expect(try await store.audit(key: nil, limit: 2).map(\.id) == [all[2].id, all[3].id])
            #expect(try await store.audit(key: Self.key(3), limit: 100).isEmpty)
        }
    }

    @Test(arguments: backends)
    func aTombstoneKeepsTheFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let first = Tombstone(key: Self.key(1), path: "/calls/1.wav", reason: "cli", deletedAt: .fixture(5))
            try await store.commit([.tombstone(first)])
            try await store.commit([.tombstone(Tombstone(key: Self.key(1), path: "/other.wav", reason: "again", deletedAt: .fixture(9)))])
            #expect(try await store.tombstone(key: Self.key(1)).normalized == first)
            #expect(try await store.tombstone(key: Self.key(2)) == nil)
        }
    }
}

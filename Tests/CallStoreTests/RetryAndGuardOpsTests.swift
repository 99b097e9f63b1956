import CallStore
import Foundation
import Testing

/// The ledger ops that tie the queue to the ledger in one commit: `retryJob` (a failed
/// recording made ready again together with its job) and `requireNoLiveJob` (a spool pruned only
/// while no job may read it), on every backend.
@Suite(.timeLimit(.minutes(2)))
struct RetryAndGuardOpsTests {
    /// A job of `queueA` claimed and discarded.
    static func discarded(_ store: any CallStore, uniqueKey: String? = nil) async throws -> Int64 {
        let id = try await store.insert(newJob(uniqueKey: uniqueKey))
        let lease = try #require(try await store.claimOne().lease)
        #expect(try await store.fail(lease, error: "output_failed: No space left on device", permanent: true, retryIn: .zero) == .discarded)
        return id
    }

    @Test(arguments: backends)
    func retryJobMakesTheJobAvailableInTheSameCommitAsTheLedgerChange(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = LedgerTests.recording(1, state: .failed)
            try await store.commit([.insertRecording(r)])
            let id = try await Self.discarded(store, uniqueKey: "transcode:1")

            try await store.commit([
                .require(key: r.key, states: [.failed]),
                .setRecordingState(key: r.key, state: .pending),
                .retryJob(id: id),
            ])
            #expect(try await store.recording(key: r.key)?.state == .pending)
            let job = try await store.existingJob(id)
            #expect(job.state == .available && job.attempt == 0 && job.finalizedAt == nil)
            #expect(job.runAt <= (try await store.now()).addingTimeInterval(0.001))
            #expect(try await store.claimOne().id == id, "due at once")
        }
    }

    @Test(arguments: backends)
    func retryJobThatCannotBeRetriedRollsBackTheWholeCommit(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = LedgerTests.recording(1, state: .failed)
            try await store.commit([.insertRecording(r)])
            let old = try await Self.discarded(store, uniqueKey: "k")
            let live = try await store.insert(newJob(uniqueKey: "k"))
            let rearm: [LedgerOp] = [.setRecordingState(key: r.key, state: .pending), .audit(AuditEntry(recordingKey: r.key, action: "rearmed", actor: "t"))]

            // Its key is live in another job.
            let clash = await #expect(throws: StoreError.self) { try await store.commit(rearm + [.retryJob(id: old)]) }
            #expect(clash?.code == .conflict)
            #expect(clash?.message.contains("job \(old)") == true && clash?.message.contains("live") == true, "\(clash?.message ?? "")")
            // It is not discarded or cancelled.
            let available = await #expect(throws: StoreError.self) { try await store.commit(rearm + [.retryJob(id: live)]) }
            #expect(available?.code == .conflict)
            #expect(available?.message.contains("available") == true, "\(available?.message ?? "")")
            // It does not exist.
            let missing = await #expect(throws: StoreError.self) { try await store.commit(rearm + [.retryJob(id: 987_654)]) }
            #expect(missing?.code == .conflict)
            #expect(missing?.message.contains("987654") == true && missing?.message.contains("does not exist") == true, "\(missing?.message ?? "")")
            // Nothing of those commits stayed.
            #expect(try await store.recording(key: r.key)?.state == .failed)
            #expect(try await store.audit(key: r.key, limit: 10).isEmpty)
            #expect(try await store.existingJob(old).state == .discarded)

            // With the other job gone, it goes through.
            #expect(try await store.cancel(ids: [live]) == [live])
            try await store.commit(rearm + [.retryJob(id: old)])
            #expect(try await store.existingJob(old).state == .available)
            #expect(try await store.recording(key: r.key)?.state == .pending)
        }
    }

    @Test(arguments: backends)
    func retryJobWakesAWaitingWorker(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await Self.discarded(store)
            forgetPendingWakeUp(store)
            let woke = Task { await store.waitForWork(timeout: .seconds(120)) }
            try await untilWaiting(store, count: 1)
            let started = ContinuousClock.now
            try await store.commit([.retryJob(id: id)])
            await woke.value
            #expect(ContinuousClock.now - started < .seconds(60), "woken by the retry, not by the 120 s timeout")
        }
    }

    @Test(arguments: backends)
    func requireNoLiveJobFailsWhileAJobWithTheKeyIsAvailableOrRunning(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let r = LedgerTests.recording(1, state: .uploaded)
            try await store.commit([.insertRecording(r)])
            let pruned: [LedgerOp] = [.audit(AuditEntry(recordingKey: r.key, action: "spool_pruned", actor: "t"))]

            // No job with the key, or only finished ones: the commit lands.
            try await store.commit([.requireNoLiveJob(uniqueKey: "upload:1")] + pruned)
            let finished = try await Self.discarded(store, uniqueKey: "upload:1")
            try await store.commit([.requireNoLiveJob(uniqueKey: "upload:1")] + pruned)
            #expect(try await store.audit(key: r.key, limit: 10).count == 2)

            // Available, then running: refused, and nothing of the commit stays.
            let live = try await store.insert(newJob(uniqueKey: "upload:1"))
            for round in 0..<2 {
                if round == 1 { #expect(try await store.claimOne().id == live) }
                let error = await #expect(throws: StoreError.self) {
                    try await store.commit(pruned + [.requireNoLiveJob(uniqueKey: "upload:1")])
                }
                #expect(error?.code == .conflict)
                #expect(error?.message.contains("job \(live)") == true, "\(error?.message ?? "")")
                #expect(try await store.audit(key: r.key, limit: 10).count == 2)
            }
            #expect(try await store.existingJob(finished).state == .discarded)
        }
    }
}

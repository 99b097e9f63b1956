import CallJobs
import CallStore
import CallStoreSQLite
import CallSupport
import CallTesting
import Foundation
import Logging
import Synchronization
import Testing

/// A real SQLite store whose claims can be made to fail (as on a full disk) and whose heartbeats
/// can be made to hang (as on a database behind a partition), and that counts claims and the
/// worker's looks for work.
final class FailingClaims: CallStore {
    let base: SQLiteStore
    let failure = Mutex<StoreError?>(nil)
    /// Heartbeats wait until cancelled, never answering.
    let heartbeatsHang = Atomic<Bool>(false)
    let claims = Atomic<Int>(0)
    let looks = Atomic<Int>(0)

    init(_ base: SQLiteStore) { self.base = base }

    /// A migrated store under `dir` whose claims fail as on a full disk.
    static func full(_ dir: String, clock: ManualClock) async throws -> FailingClaims {
        let base = try SQLiteStore(path: "\(dir)/state/callrec.sqlite", now: { clock.date })
        try await base.migrate()
        let store = FailingClaims(base)
        store.failure.withLock { $0 = WorkerDiskFullTests.diskFull }
        return store
    }

    var location: String { base.location }
    func migrate() async throws { try await base.migrate() }
    func close() async throws { try await base.close() }
    func now() async throws -> Date { try await base.now() }
    func enqueue(_ job: NewJob) async throws -> EnqueueResult { try await base.enqueue(job) }
    func enqueue(_ jobs: [NewJob]) async throws -> [EnqueueResult] { try await base.enqueue(jobs) }
    func claim(queue: String, limit: Int, owner: String, leaseTTL: Duration) async throws -> [Job] {
        claims.add(1, ordering: .sequentiallyConsistent)
        if let error = failure.withLock({ $0 }) { throw error }
        return try await base.claim(queue: queue, limit: limit, owner: owner, leaseTTL: leaseTTL)
    }
    func heartbeat(_ leases: [Lease], leaseTTL: Duration) async throws -> Set<Lease> {
        if heartbeatsHang.load(ordering: .sequentiallyConsistent) {
            // Not a wait for time to pass: a call that never answers, until it is cancelled.
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        return try await base.heartbeat(leases, leaseTTL: leaseTTL)
    }
    func complete(_ lease: Lease) async throws -> Bool { try await base.complete(lease) }
    func fail(_ lease: Lease, error: String, permanent: Bool, retryIn: Duration) async throws -> JobState? {
        try await base.fail(lease, error: error, permanent: permanent, retryIn: retryIn)
    }
    func snooze(_ lease: Lease, delay: Duration, notBefore: Date?, reason: String, maxSnoozes: Int) async throws -> JobState? {
        try await base.snooze(lease, delay: delay, notBefore: notBefore, reason: reason, maxSnoozes: maxSnoozes)
    }
    func release(_ lease: Lease, reason: String) async throws -> Bool { try await base.release(lease, reason: reason) }
    func rescueExpiredLeases(poisonRescues: Int) async throws -> RescueReport { try await base.rescueExpiredLeases(poisonRescues: poisonRescues) }
    func expireLeases(ownedBy owners: [String]) async throws -> Int { try await base.expireLeases(ownedBy: owners) }
    func prune(completedAge: Duration, finalAge: Duration, limit: Int) async throws -> Int {
        try await base.prune(completedAge: completedAge, finalAge: finalAge, limit: limit)
    }
    func job(id: Int64) async throws -> Job? { try await base.job(id: id) }
    func jobs(_ query: JobQuery) async throws -> [Job] { try await base.jobs(query) }
    func retry(ids: [Int64]) async throws -> [Int64] { try await base.retry(ids: ids) }
    func cancel(ids: [Int64]) async throws -> [Int64] { try await base.cancel(ids: ids) }
    func purge(states: Set<JobState>, finalizedBefore before: Date) async throws -> Int { try await base.purge(states: states, finalizedBefore: before) }
    func queueStats() async throws -> QueueStats { try await base.queueStats() }
    func applyCRMPage(_ page: CRMPage) async throws { try await base.applyCRMPage(page) }
    func finishCRMFullPass(_ state: CRMSyncState) async throws -> Int { try await base.finishCRMFullPass(state) }
    func crmSyncStates() async throws -> [CRMEntityKind: CRMSyncState] { try await base.crmSyncStates() }
    func phoneCandidates(_ e164: String) async throws -> PhoneCandidates { try await base.phoneCandidates(e164) }
    func crmUser(email: String) async throws -> CRMUser? { try await base.crmUser(email: email) }
    func crmUser(id: Int) async throws -> CRMUser? { try await base.crmUser(id: id) }
    func crmCounts() async throws -> [CRMEntityKind: Int] { try await base.crmCounts() }
    func waitForWork(timeout: Duration) async {
        await base.waitForWork(timeout: timeout)
        looks.add(1, ordering: .sequentiallyConsistent)
    }
    func commit(_ ops: [LedgerOp]) async throws -> [EnqueueResult] { try await base.commit(ops) }
    func recording(key: String) async throws -> Recording? { try await base.recording(key: key) }
    func recordings(_ query: RecordingQuery) async throws -> [Recording] { try await base.recordings(query) }
    func recordingCounts() async throws -> [RecordingState: Int] { try await base.recordingCounts() }
    func parts(key: String) async throws -> [Part] { try await base.parts(key: key) }
    func part(callLogID: String) async throws -> Part? { try await base.part(callLogID: callLogID) }
    func providerRefs(key: String) async throws -> [ProviderRef] { try await base.providerRefs(key: key) }
    func deletion(id: String) async throws -> Deletion? { try await base.deletion(id: id) }
    func openDeletions() async throws -> [Deletion] { try await base.openDeletions() }
    func audit(key: String?, limit: Int) async throws -> [AuditEntry] { try await base.audit(key: key, limit: limit) }
    func tombstone(key: String) async throws -> Tombstone? { try await base.tombstone(key: key) }
    func sourceFiles(directory: String) async throws -> [SourceFile] { try await base.sourceFiles(directory: directory) }
    func sourceFile(path: String) async throws -> SourceFile? { try await base.sourceFile(path: path) }
    func cdrRows(_ query: CDRRowQuery) async throws -> [StoredCDRRow] { try await base.cdrRows(query) }
    func cdrCursor(pbx: String, path: String) async throws -> CDRCursor? { try await base.cdrCursor(pbx: pbx, path: path) }
    func telnyxEvents(sessions: [String]) async throws -> [TelnyxEventRow] { try await base.telnyxEvents(sessions: sessions) }
    func telnyxEvent(id: String) async throws -> TelnyxEventRow? { try await base.telnyxEvent(id: id) }
}

/// How the worker meets a store it cannot write: pauses that grow, never a claim loop; a run
/// that ends when idle stops at a full disk and says why.
@Suite struct WorkerDiskFullTests {
    static let diskFull = StoreError(.diskFull, "sqlite:/x/callrec.sqlite: claim failed: the disk holding /x/callrec.sqlite is full (0 B free of 2.0 MiB)")

    static func until(_ what: String, _ condition: () -> Bool) async throws {
        try await Runner.until(what, condition)
    }

    @Test func claimsThatFailArePausedLongerEachTimeNotRetriedInALoop() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await FailingClaims.full(dir, clock: clock)
            _ = try await store.enqueue([try Runner.job()])
            var configuration = Runner.configuration(untilIdle: false, slots: [.jobs: 1])
            // The worker looks for work (the store's wait, in real time) every 5 ms.
            configuration.pollInterval = .milliseconds(5)
            // No jitter: pauses of 250 ms, 500 ms, 1 s, …
            configuration.pauseBackoff = Backoff(base: .milliseconds(250), cap: .seconds(60), random: { 0.5 })
            let worker = Worker(store: store, handlers: [TestJob(clock: clock)], configuration: configuration, clock: clock, logger: Logger(label: "test"))
            try await withThrowingTaskGroup { group in
                group.addTask { try await worker.run() }
                try await Self.until("the first claim") { store.claims.load(ordering: .sequentiallyConsistent) == 1 }
                // The worker wakes many times while its clock stands still: no claim.
                let looks = store.looks.load(ordering: .sequentiallyConsistent)
                try await Self.until("the worker looked for work 20 times") { store.looks.load(ordering: .sequentiallyConsistent) >= looks + 20 }
                #expect(store.claims.load(ordering: .sequentiallyConsistent) == 1, "claimed again without a pause")
                clock.advance(by: .milliseconds(250))
                try await Self.until("the second claim") { store.claims.load(ordering: .sequentiallyConsistent) == 2 }
                // The next pause is twice as long.
                clock.advance(by: .milliseconds(250))
                let looks2 = store.looks.load(ordering: .sequentiallyConsistent)
                try await Self.until("the worker looked for work 20 times more") { store.looks.load(ordering: .sequentiallyConsistent) >= looks2 + 20 }
                #expect(store.claims.load(ordering: .sequentiallyConsistent) == 2, "the second pause was not longer")
                clock.advance(by: .milliseconds(250))
                try await Self.until("the third claim") { store.claims.load(ordering: .sequentiallyConsistent) == 3 }
                // The disk has room again: the next claim runs the job, and the pauses start over.
                store.failure.withLock { $0 = nil }
                clock.advance(by: .seconds(1))
                try await Self.until("the job completed") { worker.summary[.completed] == 1 }
                #expect(worker.summary.claimFailures == 3)
                #expect(worker.summary.stop == nil)
                worker.beginShutdown()
                try await group.waitForAll()
            }
            try await store.close()
        }
    }

    @Test func aRunThatEndsWhenIdleStopsAtAFullDiskAndSaysWhy() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await FailingClaims.full(dir, clock: clock)
            let result = try await store.enqueue([try Runner.job()])
            guard case .inserted(let id) = result[0] else { Issue.record("not inserted"); return }
            let worker = Runner.worker(store, TestJob(clock: clock), Runner.configuration())
            // It returns at once, the clock standing still: no loop, no pause.
            try await worker.run()
            guard case .diskFull(let failure)? = worker.summary.stop else { Issue.record("not stopped at a full disk: \(worker.summary)"); return }
            #expect(failure.code == "disk_full")
            #expect(failure.message.contains("is full (0 B free of 2.0 MiB)"))
            #expect(store.claims.load(ordering: .sequentiallyConsistent) == 1)
            let job = try #require(try await store.job(id: id))
            #expect(job.state == .available && job.attempt == 0, "the job waits, intact")
            try await store.close()
        }
    }

    /// A job that meets a full disk waits without using an attempt, however often (a full disk
    /// is never the job's fault), and a run that ends when idle stops with it.
    @Test func aJobThatMeetsAFullDiskWaitsWithoutAnAttemptAndStopsTheRun() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            let result = try await store.enqueue([try Runner.job(.init(fail: "disk_full")), try Runner.job(.init(fail: "disk_full"))])
            let ids = result.compactMap { if case .inserted(let id) = $0 { id } else { nil } }
            var configuration = Runner.configuration(slots: [.jobs: 1])
            configuration.maxSnoozes = 0
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            try await worker.run()
            guard case .diskFull(let failure)? = worker.summary.stop else { Issue.record("not stopped at a full disk: \(worker.summary)"); return }
            #expect(failure.code == "disk_full")
            #expect(worker.summary[.snoozed] == 1, "the run stopped after the first: \(worker.summary)")
            let first = try #require(try await store.job(id: ids[0]))
            #expect(first.state == .available && first.attempt == 0 && first.snoozeCount == 1, "\(first.state) \(first.attempt)")
            #expect(first.lastError?.hasPrefix("disk_full: ") == true)
            #expect(try await store.job(id: ids[1])?.attempt == 0, "the second was not claimed")
            try await store.close()
        }
    }
}

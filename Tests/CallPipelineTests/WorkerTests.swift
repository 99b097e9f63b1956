import CallAudio
import CallPipeline
import CallStore
import CallStoreSQLite
import CallSupport
import CallTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The worker service in process, over a real SQLite store: slots, outcomes, lost leases,
/// graceful shutdown, and the transcode job end to end.
@Suite struct WorkerTests {
    static func store(_ dir: String) async throws -> SQLiteStore {
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
        try await store.migrate()
        return store
    }

    static func configuration(untilIdle: Bool = true, slots: [String: Int] = [JobQueue.bench: 4]) -> Worker.Configuration {
        var c = Worker.Configuration(slots: slots)
        c.untilIdle = untilIdle
        // Long enough that a machine busy with the whole suite never misses a heartbeat.
        c.leaseTTL = .seconds(15)
        c.idleHorizon = .seconds(5)
        c.rescueInterval = .milliseconds(200)
        c.pollInterval = .milliseconds(100)
        c.shutdownGrace = .milliseconds(300)
        c.backoff = Backoff(base: .milliseconds(50), cap: .milliseconds(100))
        return c
    }

    static func noop(_ arguments: NoopJobHandler.Arguments = .init(), unique: String? = nil, maxAttempts: Int = 12) throws -> NewJob {
        try NewJob(queue: JobQueue.bench, kind: NoopJobHandler.kind, arguments: arguments, uniqueKey: unique, maxAttempts: maxAttempts)
    }

    @Test func runsEveryJobOnceAndStopsWhenIdle() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            let trace = "\(dir)/trace"
            _ = try await store.enqueue((0..<40).map { _ in try Self.noop(.init(sleepMs: 5, trace: trace)) })
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: Self.configuration(), logger: Logger(label: "test"))
            try await worker.run()
            let stats = try await store.queueStats()
            #expect(stats[.completed] == 40)
            #expect(stats[.available] == 0 && stats[.running] == 0)
            #expect(worker.summary["completed"] == 40)
            let lines = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
            #expect(lines.filter { $0.hasPrefix("start") }.count == 40)
            #expect(Set(lines.filter { $0.hasPrefix("end") }.map { $0.split(separator: " ")[1] }).count == 40)
            try await store.close()
        }
    }

    @Test func slotsBoundTheJobsRunningAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            let trace = "\(dir)/trace"
            _ = try await store.enqueue((0..<12).map { _ in try Self.noop(.init(sleepMs: 400, trace: trace)) })
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: Self.configuration(slots: [JobQueue.bench: 3]), logger: Logger(label: "test"))
            try await worker.run()
            // Replay the trace: never more than 3 running at once, and at some point 3.
            var running = 0, peak = 0
            let events = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
            for event in events.sorted(by: { Int64($0[4])! < Int64($1[4])! }) {
                running += event[0] == "start" ? 1 : -1
                peak = max(peak, running)
            }
            #expect(peak == 3)
            try await store.close()
        }
    }

    @Test func failuresAreRetriedWithBackoffThenDiscardedAndPermanentOnesAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            let results = try await store.enqueue([
                try Self.noop(.init(fail: "transient"), maxAttempts: 3),
                try Self.noop(.init(fail: "permanent"), maxAttempts: 3),
                try Self.noop(),
            ])
            let ids = results.compactMap { if case .inserted(let id) = $0 { id } else { nil } }
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: Self.configuration(), logger: Logger(label: "test"))
            try await worker.run()
            let transient = try #require(try await store.job(id: ids[0]))
            #expect(transient.state == .discarded)
            #expect(transient.attempt == 3)
            #expect(transient.errors.filter { $0.kind == "failed" }.count == 3)
            let permanent = try #require(try await store.job(id: ids[1]))
            #expect(permanent.state == .discarded)
            #expect(permanent.attempt == 1)
            #expect(permanent.lastError?.contains("told to fail permanently") == true)
            #expect(try await store.job(id: ids[2])?.state == .completed)
            #expect(worker.summary["retried"] == 2)
            #expect(worker.summary["discarded"] == 2)
            try await store.close()
        }
    }

    @Test func aJobWhoseLeaseIsLostIsCancelledAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            let result = try await store.enqueue([try Self.noop(.init(sleepMs: 30_000))])
            guard case .inserted(let id) = result[0] else { Issue.record("not inserted"); return }
            var configuration = Self.configuration(untilIdle: false)
            configuration.heartbeatInterval = .milliseconds(100)
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            let clock = ContinuousClock(), started = clock.now
            try await withThrowingTaskGroup { group in
                group.addTask { try await worker.run() }
                while worker.runningLeases.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
                // Someone else takes the job away (an operator's cancel; a rescue works the same way).
                #expect(try await store.cancel(ids: [id]) == [id])
                while worker.summary["lease_lost"] == 0 { try await Task.sleep(for: .milliseconds(20)) }
                worker.beginShutdown()
                try await group.waitForAll()
            }
            #expect(clock.now - started < .seconds(25), "the 30 s job was not stopped")
            #expect(try await store.job(id: id)?.state == .cancelled)
            try await store.close()
        }
    }

    @Test func gracefulShutdownLetsShortJobsFinishAndReleasesLongOnesWithoutUsingAnAttempt() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            let results = try await store.enqueue([try Self.noop(.init(sleepMs: 100)), try Self.noop(.init(sleepMs: 30_000))])
            let ids = results.compactMap { if case .inserted(let id) = $0 { id } else { nil } }
            var configuration = Self.configuration(untilIdle: false)
            // Time for the 100 ms job to finish even when its task starts late on a loaded machine.
            configuration.shutdownGrace = .seconds(5)
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: Logger(label: "test")))
            try await withThrowingTaskGroup { tasks in
                tasks.addTask { try await group.run() }
                while worker.runningLeases.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await store.job(id: ids[0])?.state == .completed)
            let long = try #require(try await store.job(id: ids[1]))
            #expect(long.state == .available)
            #expect(long.attempt == 0, "a release must not use up an attempt")
            #expect(long.errors.last?.kind == "released")
            #expect(long.runAt <= (try await store.now()))
            #expect(worker.summary["released"] == 1)
            try await store.close()
        }
    }

    @Test func stopNowReleasesAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            _ = try await store.enqueue([try Self.noop(.init(sleepMs: 30_000))])
            var configuration = Self.configuration(untilIdle: false)
            configuration.shutdownGrace = .seconds(60)
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            let clock = ContinuousClock(), started = clock.now
            try await withThrowingTaskGroup { tasks in
                tasks.addTask { try await worker.run() }
                while worker.runningLeases.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
                worker.beginShutdown()
                try await Task.sleep(for: .milliseconds(100))
                worker.stopNow()
                try await tasks.waitForAll()
            }
            #expect(clock.now - started < .seconds(25))
            #expect(worker.summary["released"] == 1)
            #expect(try await store.queueStats()[.available] == 1)
            try await store.close()
        }
    }

    /// Work that appears while the worker decides it is idle — `upload`'s registration enqueues
    /// its last transcode and says it is done between the worker's look at the queue and its
    /// `beforeIdle` hook — is run, not left for "the next run" (the run exited 3 with a
    /// recording never transcoded).
    @Test func workEnqueuedWhileTheWorkerDecidesItIsIdleIsRun() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            var configuration = Self.configuration()
            configuration.idleHorizon = .zero
            let registered = Mutex(false)
            configuration.beforeIdle = {
                // The registration finishing just now: its job is in, and it says so.
                if registered.withLock({ done in defer { done = true }; return !done }) {
                    _ = try await store.enqueue(try Self.noop())
                }
                return .nothing
            }
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            try await worker.run()
            let stats = try await store.queueStats()
            #expect(stats[.completed] == 1 && stats[.available] == 0, "\(stats)")
            try await store.close()
        }
    }

    /// A job that cannot run in this process (``JobFailure/Disposition/halt``: a refused
    /// credential) stops the worker: it is available again with no attempt used, no further job
    /// is claimed, and ``Worker/halted`` says why. ``JobFailure/Disposition/unavailable`` (an
    /// unreachable API) does the same in a run that ends when idle, and is retried by a
    /// long-running worker.
    @Test func aHaltingFailureStopsTheWorkerAndLeavesItsJobAvailable() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            var configuration = Self.configuration(slots: [JobQueue.bench: 1])
            configuration.idleHorizon = .zero
            _ = try await store.enqueue([try Self.noop(.init(fail: "halt"))] + (0..<5).map { _ in try Self.noop() })
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            try await worker.run()
            #expect(worker.halted?.code == "noop_halted")
            #expect(worker.summary["halted"] == 1 && worker.summary["completed"] == 0, "\(worker.summary)")
            let jobs = try await store.jobs(JobQuery(queue: JobQueue.bench))
            #expect(jobs.allSatisfy { $0.state == .available && $0.attempt == 0 && $0.runAt <= Date() }, "\(jobs.map { "\($0.state) \($0.attempt)" })")

            _ = try await store.cancel(ids: jobs.map(\.id))
            _ = try await store.enqueue(try Self.noop(.init(fail: "unavailable"), maxAttempts: 2))
            let finite = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            try await finite.run()
            #expect(finite.halted?.code == "noop_unavailable" && finite.summary["halted"] == 1, "\(finite.summary)")
            var forever = configuration
            forever.untilIdle = false
            let daemon = Worker(store: store, handlers: [NoopJobHandler()], configuration: forever, logger: Logger(label: "test"))
            let running = Task { try await daemon.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while daemon.summary["discarded"] == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            daemon.stopNow()
            try await running.value
            #expect(daemon.halted == nil && daemon.summary["retried"] == 1 && daemon.summary["discarded"] == 1, "\(daemon.summary)")
            try await store.close()
        }
    }

    @Test func untilIdleWaitsForJobsLeasedByADeadWorkerAndRunsThem() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            _ = try await store.enqueue([try Self.noop()])
            // A "dead" worker claimed it and vanished.
            let dead = try await store.claim(queue: JobQueue.bench, limit: 1, owner: "dead:1:x", leaseTTL: .milliseconds(500))
            #expect(dead.count == 1)
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: Self.configuration(), logger: Logger(label: "test"))
            try await worker.run()
            let job = try #require(try await store.job(id: dead[0].id))
            #expect(job.state == .completed)
            #expect(job.rescueCount == 1)
            #expect(job.attempt == 2)
            try await store.close()
        }
    }

    /// A lease whose owner is a process of this pid namespace that no longer exists goes back at
    /// the next rescue; one from another namespace (another machine, another container, with
    /// the same hostname and a pid that happens to be free here) waits for its lease to run out.
    @Test func onlyOwnersInThisPidSpaceAreJudgedByTheirPid() async throws {
        try await withTemporaryDirectory { dir in
            let store = try await Self.store(dir)
            _ = try await store.enqueue([try Self.noop(), try Self.noop()])
            let space = try #require(Worker.defaultOwner().split(separator: ":").last)
            #expect(Worker.defaultOwner().split(separator: ":").count == 4)
            let host = ProcessInfo.processInfo.hostName
            let here = try await store.claim(queue: JobQueue.bench, limit: 1, owner: "\(host):999999:dead:\(space)", leaseTTL: .seconds(60))
            let elsewhere = try await store.claim(queue: JobQueue.bench, limit: 1, owner: "\(host):999999:dead:0badf00d", leaseTTL: .seconds(3600))
            var configuration = Self.configuration(untilIdle: false)
            configuration.rescueInterval = .milliseconds(100)
            let worker = Worker(store: store, handlers: [NoopJobHandler()], configuration: configuration, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await worker.run() }
                let deadline = ContinuousClock.now + .seconds(20)
                while try await store.job(id: here[0].id)?.state != .completed, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(50))
                }
                try await Task.sleep(for: .milliseconds(500))  // several more rescues
                worker.stopNow()
                try await tasks.waitForAll()
            }
            #expect(try await store.job(id: here[0].id)?.state == .completed)
            let foreign = try #require(try await store.job(id: elsewhere[0].id))
            #expect(foreign.state == .running && foreign.leaseOwner == "\(host):999999:dead:0badf00d", "a foreign owner's lease was cut short")
            try await store.close()
        }
    }

    @Test func transcodeJobsFillTheSpoolAndTheLedger() async throws {
        try await withTemporaryDirectory { dir in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            let frames = try SyntheticAudio.write(.speech(), seconds: 20, format: .wavULaw, to: "\(dir)/in/a.wav")
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150, format: .wavPCM16, to: "\(dir)/in/long.wav")
            try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/in/silent.wav")
            try SyntheticAudio.write(.speech(), seconds: 5, to: "\(dir)/in/nosidecar.wav")
            for name in ["a", "long", "silent"] {
                _ = fm.createFile(atPath: "\(dir)/in/\(name).json", contents: Data(TranscodeBatchTests.sidecar.utf8))
            }
            let store = try await Self.store(dir)
            let enqueue = EnqueueBatch(root: "\(dir)/in", store: store, jobs: 2, settle: .immediate, logger: Logger(label: "test"))
            let first = try await enqueue.run()
            #expect(first.summary.ok == 3)
            #expect(first.files.first { $0.path == "nosidecar.wav" }?.error?.code == "missing_sidecar")
            #expect(try await enqueue.run().summary.skipped == 3, "the same bytes are registered once")

            let pool = CPUPool(threads: 2)
            defer { pool.shutdown() }
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let spool = Spool(root: "\(dir)/state/spool")
            let handler = TranscodeJobHandler(spool: spool, settings: settings, pool: pool)
            let worker = Worker(store: store, handlers: [handler], configuration: Self.configuration(slots: [JobQueue.transcode: 2]), logger: Logger(label: "test"))
            try await worker.run()

            let counts = try await store.recordingCounts()
            #expect(counts[.transcoded] == 2)
            #expect(counts[.failed] == 1)
            let recordings = try await store.recordings(RecordingQuery())
            let silent = try #require(recordings.first { $0.path.hasSuffix("silent.wav") })
            #expect(silent.errorCode == "silent_recording")
            let a = try #require(recordings.first { $0.path.hasSuffix("/a.wav") })
            let aParts = try await store.parts(key: a.key)
            #expect(aParts.count == 1)
            #expect(aParts[0].spoolPath == spool.partPaths(key: a.key, count: 1)[0])
            if let decoded = try ffmpegDecodedFrames(aParts[0].spoolPath, channels: 1) { #expect(decoded == frames) }
            let long = try #require(recordings.first { $0.path.hasSuffix("long.wav") })
            let longParts = try await store.parts(key: long.key)
            #expect(longParts.count == 3)
            #expect(long.partCount == 3)
            #expect(longParts.map(\.index) == [1, 2, 3])
            #expect(longParts.allSatisfy { $0.state == .pending && fm.fileExists(atPath: $0.spoolPath) })
            let jobs = try await store.jobs(JobQuery(queue: JobQueue.transcode))
            #expect(jobs.filter { $0.state == .completed }.count == 2)
            #expect(jobs.filter { $0.state == .discarded }.count == 1, "a rejected recording's job is dead-lettered with its code")
            try await store.close()
        }
    }
}

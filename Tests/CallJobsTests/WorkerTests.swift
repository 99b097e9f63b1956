import CallJobs
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

/// The worker service in process, over a real SQLite store, on a clock the test moves: slots,
/// outcomes, lost leases, graceful shutdown, rescues, stops, and what callers observe (events,
/// holds, backpressure).
@Suite struct WorkerTests {
    @Test func runsEveryJobOnceAndStopsWhenIdle() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue((0..<40).map { _ in try Runner.job() })
            let handler = TestJob(clock: clock)
            let worker = Runner.worker(store, handler, Runner.configuration())
            // Nothing waits for time: the run ends on its own, the clock standing still.
            try await worker.run()
            let stats = try await store.queueStats()
            #expect(stats[.completed] == 40)
            #expect(stats[.available] == 0 && stats[.running] == 0)
            #expect(worker.summary[.completed] == 40 && worker.summary.outcomes.count == 1, "\(worker.summary)")
            #expect(handler.tracker.now.started == 40)
            try await store.close()
        }
    }

    @Test func slotsBoundTheJobsRunningAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue((0..<12).map { _ in try Runner.job(.init(sleepMs: 400)) })
            let handler = TestJob(clock: clock)
            let worker = Runner.worker(store, handler, Runner.configuration(slots: [.jobs: 3]))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                for round in 1...4 {
                    // Three start, and no fourth while they sleep; then their time is up.
                    try await Runner.until("round \(round) runs 3 jobs") { handler.tracker.now.running == 3 }
                    #expect(handler.tracker.now.started == 3 * round)
                    clock.advance(by: .milliseconds(400))
                    try await Runner.until("round \(round) ended") { handler.tracker.now.ended == 3 * round }
                }
                try await group.waitForAll()
            }
            #expect(handler.tracker.now.peak == 3)
            #expect(worker.summary[.completed] == 12)
            try await store.close()
        }
    }

    @Test func failuresAreRetriedWithBackoffThenDiscardedAndPermanentOnesAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            let results = try await store.enqueue([
                try Runner.job(.init(fail: "transient"), maxAttempts: 3),
                try Runner.job(.init(fail: "permanent"), maxAttempts: 3),
                try Runner.job(),
            ])
            let ids = results.compactMap { if case .inserted(let id) = $0 { id } else { nil } }
            let worker = Runner.worker(store, TestJob(clock: clock), Runner.configuration())
            // The retries wait out their backoff (50–100 ms) on the clock.
            try await Runner.run(worker, advancing: .milliseconds(50))
            let transient = try #require(try await store.job(id: ids[0]))
            #expect(transient.state == .discarded)
            #expect(transient.attempt == 3)
            #expect(transient.errors.filter { $0.kind == "failed" }.count == 3)
            let permanent = try #require(try await store.job(id: ids[1]))
            #expect(permanent.state == .discarded)
            #expect(permanent.attempt == 1)
            #expect(permanent.lastError?.contains("told to fail permanently") == true)
            #expect(try await store.job(id: ids[2])?.state == .completed)
            #expect(worker.summary[.retried] == 2)
            #expect(worker.summary[.discarded] == 2)
            #expect(worker.summary.outcomeNames == ["retried": 2, "discarded": 2, "completed": 1])
            try await store.close()
        }
    }

    @Test func aJobWhoseLeaseIsLostIsCancelledAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            let result = try await store.enqueue([try Runner.job(.init(sleepMs: 30_000))])
            guard case .inserted(let id) = result[0] else { Issue.record("not inserted"); return }
            var configuration = Runner.configuration(untilIdle: false)
            configuration.heartbeatInterval = .milliseconds(100)
            let handler = TestJob(clock: clock)
            let worker = Runner.worker(store, handler, configuration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                try await Runner.until("the job runs") { !worker.runningLeases.isEmpty }
                // Someone else takes the job away (an operator's cancel; a rescue works the same way).
                #expect(try await store.cancel(ids: [id]) == [id])
                // The next heartbeat finds the lease gone, long before the job's 30 s are up.
                try await Runner.advance(clock, by: .milliseconds(100), until: "the lease is lost") { worker.summary[.leaseLost] == 1 }
                #expect(clock.now.offset < .seconds(30), "the 30 s job was not stopped")
                worker.beginShutdown()
                try await group.waitForAll()
            }
            #expect(handler.tracker.now.ended == 1)
            #expect(try await store.job(id: id)?.state == .cancelled)
            try await store.close()
        }
    }

    @Test func gracefulShutdownLetsShortJobsFinishAndReleasesLongOnesWithoutUsingAnAttempt() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            let results = try await store.enqueue([try Runner.job(.init(sleepMs: 100)), try Runner.job(.init(sleepMs: 30_000))])
            let ids = results.compactMap { if case .inserted(let id) = $0 { id } else { nil } }
            var configuration = Runner.configuration(untilIdle: false)
            configuration.shutdownGrace = .seconds(5)
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: Logger(label: "test")))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                try await Runner.until("both jobs run") { worker.runningLeases.count == 2 }
                await group.triggerGracefulShutdown()
                // Within the grace the short job finishes; at its end the long one is released.
                try await Runner.advance(clock, by: .milliseconds(100), until: "the short job completed") { worker.summary[.completed] == 1 }
                #expect(worker.summary[.released] == 0)
                try await Runner.advance(clock, by: .milliseconds(500), until: "the long job was released") { worker.summary[.released] == 1 }
                #expect(clock.now.offset >= .seconds(5), "released before the grace was over")
                try await tasks.waitForAll()
            }
            #expect(try await store.job(id: ids[0])?.state == .completed)
            let long = try #require(try await store.job(id: ids[1]))
            #expect(long.state == .available)
            #expect(long.attempt == 0, "a release must not use up an attempt")
            #expect(long.errors.last?.kind == "released")
            #expect(long.runAt <= (try await store.now()))
            try await store.close()
        }
    }

    @Test func stopNowReleasesAtOnce() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue([try Runner.job(.init(sleepMs: 30_000))])
            var configuration = Runner.configuration(untilIdle: false)
            configuration.shutdownGrace = .seconds(60)
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await worker.run() }
                try await Runner.until("the job runs") { !worker.runningLeases.isEmpty }
                worker.beginShutdown()
                worker.stopNow()
                try await tasks.waitForAll()
            }
            // The clock never moved: neither the job's 30 s nor the 60 s grace were waited for.
            #expect(clock.now.offset == .zero)
            #expect(worker.summary[.released] == 1)
            #expect(try await store.queueStats()[.available] == 1)
            try await store.close()
        }
    }

    /// Work that appears while the worker decides it is idle — a handler's put-off work made
    /// due, or enqueued, just as the worker looked at the queue — is run, not left for "the next
    /// run" (`upload` once exited 3 with a recording never transcoded).
    @Test func workEnqueuedWhileTheWorkerDecidesItIsIdleIsRun() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            var configuration = Runner.configuration()
            configuration.idleHorizon = .zero
            let asked = Mutex(0)
            var handler = TestJob(clock: clock)
            handler.idle = { _ in
                // The first time: its last job goes in just now, and it says nothing is put off.
                if asked.withLock({ asked in defer { asked += 1 }; return asked == 0 }) {
                    _ = try await store.enqueue(try Runner.job())
                }
                return .nothing
            }
            let worker = Runner.worker(store, handler, configuration)
            try await worker.run()
            let stats = try await store.queueStats()
            #expect(stats[.completed] == 1 && stats[.available] == 0, "\(stats)")
            #expect(asked.withLock { $0 } == 2)
            try await store.close()
        }
    }

    /// A handler that put work off until the run is idle makes it due there (``IdleAnswer/woke``),
    /// and the run goes on with it; `.waiting` keeps the run looking.
    @Test func aHandlersPutOffWorkIsMadeDueWhenTheRunIsIdle() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            // Put off for an hour: beyond the idle horizon, so without the handler the run would end.
            let result = try await store.enqueue(try NewJob(queue: .jobs, kind: TestJob.kind, arguments: TestJob.Arguments(), delay: .seconds(3600)))
            guard case .inserted(let id) = result else { Issue.record("not inserted"); return }
            let answers = Mutex<[IdleAnswer]>([.waiting])
            var handler = TestJob(clock: clock)
            handler.idle = { context in
                if let next = answers.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { return next }
                guard try await context.store.job(id: id)?.state == .available else { return .nothing }
                _ = try await context.store.retry(ids: [id])
                return .woke
            }
            let worker = Runner.worker(store, handler, Runner.configuration())
            try await Runner.run(worker, advancing: .milliseconds(100))
            #expect(try await store.job(id: id)?.state == .completed)
            #expect(clock.now.offset < .seconds(3600), "the run waited for the job's own time")
            try await store.close()
        }
    }

    /// A caller adding work beside a run that ends when idle holds it open: the run does not end
    /// while the hold is held, and ends once it is released and the work is done.
    @Test func aHoldKeepsARunThatEndsWhenIdleGoingUntilReleased() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            let handler = TestJob(clock: clock)
            let worker = Runner.worker(store, handler, Runner.configuration())
            let hold = worker.holdOpen()
            let done = Locked(false)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await worker.run()
                    done.withLock { $0 = true }
                }
                // Idle, but held: several polls go by and it is still running.
                try await Runner.advance(clock, by: .milliseconds(100), until: "ten polls") { clock.now.offset >= .seconds(1) }
                #expect(!done.withLock { $0 }, "the run ended while held open")
                _ = try await store.enqueue([try Runner.job(), try Runner.job()])
                hold.release()
                hold.release()  // harmless
                try await Runner.advance(clock, by: .milliseconds(100), until: "the run ended") { done.withLock { $0 } }
                try await group.waitForAll()
            }
            #expect(handler.tracker.now.ended == 2)
            #expect(worker.summary[.completed] == 2)
            try await store.close()
        }
    }

    /// Every job's outcome is reported to each events() stream, as it is recorded, and the
    /// streams end with the run.
    @Test func eventsReportEveryOutcomeAndEndWithTheRun() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue([try Runner.job(), try Runner.job(.init(fail: "permanent")), try Runner.job()])
            let worker = Runner.worker(store, TestJob(clock: clock), Runner.configuration())
            let first = worker.events(), second = worker.events()
            let reader = Task { () -> [String] in
                var seen: [String] = []
                for await event in first { seen.append("\(event.job.id) \(event.outcome.rawValue)") }
                return seen.sorted()
            }
            try await worker.run()
            let seen = await reader.value
            #expect(seen == ["1 completed", "2 discarded", "3 completed"])
            var count = 0
            for await _ in second { count += 1 }
            #expect(count == 3)
            // A stream asked for after the run ends at once.
            for await _ in worker.events() { Issue.record("an event after the run") }
            try await store.close()
        }
    }

    /// A queue with backpressure claims only while its downstream queue has room; due jobs it
    /// holds back do not keep a run that ends when idle going.
    @Test func backpressureHoldsAQueueWhileItsDownstreamQueueIsFull() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            // Two jobs wait downstream (put off for an hour: beyond the idle horizon).
            for _ in 0..<2 {
                _ = try await store.enqueue(try NewJob(queue: .later, kind: TestJob.kind, arguments: TestJob.Arguments(), delay: .seconds(3600)))
            }
            // Each job of the first stage feeds the second, as a transcode its upload.
            _ = try await store.enqueue((0..<3).map { _ in try Runner.job(.init(feedsLater: true)) })
            var configuration = Runner.configuration(slots: [.jobs: 1, .later: 1])
            configuration.backpressure[.jobs] = Backpressure(downstream: .later, limit: 2)
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            try await worker.run()
            #expect(worker.summary[.completed] == 0, "claimed while the downstream queue was full: \(worker.summary)")
            #expect(try await store.jobs(JobQuery(states: [.available], queue: .jobs)).count == 3)

            // Room for one more downstream: the queue claims one job, whose follow-up fills it.
            let waiting = try await store.jobs(JobQuery(queue: .later))
            _ = try await store.cancel(ids: [waiting[0].id])
            let second = Runner.worker(store, TestJob(clock: clock), configuration)
            try await second.run()
            #expect(second.summary[.completed] == 1, "\(second.summary)")
            #expect(try await store.jobs(JobQuery(states: [.available], queue: .jobs)).count == 2)
            #expect(try await store.jobs(JobQuery(states: [.available], queue: .later)).count == 2)
            try await store.close()
        }
    }

    /// A job that cannot run in this process (``JobFailure/Disposition/halt``: a refused
    /// credential) stops the worker: it is available again with no attempt used, no further job
    /// is claimed, and the summary's stop says why. ``JobFailure/Disposition/unavailable`` (an
    /// unreachable API) does the same in a run that ends when idle, and is retried by a
    /// long-running worker.
    @Test func aHaltingFailureStopsTheWorkerAndLeavesItsJobAvailable() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            var configuration = Runner.configuration(slots: [.jobs: 1])
            configuration.idleHorizon = .zero
            _ = try await store.enqueue([try Runner.job(.init(fail: "halt"))] + (0..<5).map { _ in try Runner.job() })
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            try await Runner.run(worker, advancing: .milliseconds(100))
            guard case .halted(let failure)? = worker.summary.stop else { Issue.record("not halted: \(worker.summary)"); return }
            #expect(failure.code == "test_halted")
            #expect(worker.summary[.halted] == 1 && worker.summary[.completed] == 0, "\(worker.summary)")
            let jobs = try await store.jobs(JobQuery(queue: .jobs))
            let now = try await store.now()
            #expect(jobs.allSatisfy { $0.state == .available && $0.attempt == 0 && $0.runAt <= now }, "\(jobs.map { "\($0.state) \($0.attempt)" })")

            _ = try await store.cancel(ids: jobs.map(\.id))
            _ = try await store.enqueue(try Runner.job(.init(fail: "unavailable"), maxAttempts: 2))
            let finite = Runner.worker(store, TestJob(clock: clock), configuration)
            try await Runner.run(finite, advancing: .milliseconds(100))
            guard case .unavailable(let unreachable)? = finite.summary.stop else { Issue.record("not stopped as unavailable: \(finite.summary)"); return }
            #expect(unreachable.code == "test_unavailable" && finite.summary[.halted] == 1, "\(finite.summary)")
            var forever = configuration
            forever.untilIdle = false
            let daemon = Runner.worker(store, TestJob(clock: clock), forever)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await daemon.run() }
                // Retried after its backoff on the clock, then out of attempts.
                try await Runner.advance(clock, by: .milliseconds(50), until: "the job is discarded") { daemon.summary[.discarded] == 1 }
                daemon.stopNow()
                try await group.waitForAll()
            }
            #expect(daemon.summary.stop == nil && daemon.summary[.retried] == 1 && daemon.summary[.discarded] == 1, "\(daemon.summary)")
            try await store.close()
        }
    }

    @Test func untilIdleWaitsForJobsLeasedByADeadWorkerAndRunsThem() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue([try Runner.job()])
            // A "dead" worker claimed it and vanished.
            let dead = try await store.claim(queue: QueueName.jobs.rawValue, limit: 1, owner: "dead:1:x", leaseTTL: .milliseconds(500))
            #expect(dead.count == 1)
            let worker = Runner.worker(store, TestJob(clock: clock), Runner.configuration())
            // The lease runs out on the clock, and the next rescue returns the job.
            try await Runner.run(worker, advancing: .milliseconds(100))
            let job = try #require(try await store.job(id: dead[0].id))
            #expect(job.state == .completed)
            #expect(job.rescueCount == 1)
            #expect(job.attempt == 2)
            #expect(worker.summary.rescued == 1)
            try await store.close()
        }
    }

    /// A lease whose owner is a process of this pid namespace that no longer exists goes back at
    /// the next rescue; one from another namespace (another machine, another container, with
    /// the same hostname and a pid that happens to be free here) waits for its lease to run out.
    @Test func onlyOwnersInThisPidSpaceAreJudgedByTheirPid() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let store = try await Runner.store(dir, clock: clock)
            _ = try await store.enqueue([try Runner.job(), try Runner.job()])
            let space = try #require(WorkerConfiguration.defaultOwner().split(separator: ":").last)
            #expect(WorkerConfiguration.defaultOwner().split(separator: ":").count == 4)
            let host = ProcessInfo.processInfo.hostName
            let here = try await store.claim(queue: QueueName.jobs.rawValue, limit: 1, owner: "\(host):999999:dead:\(space)", leaseTTL: .seconds(60))
            let elsewhere = try await store.claim(queue: QueueName.jobs.rawValue, limit: 1, owner: "\(host):999999:dead:0badf00d", leaseTTL: .seconds(3600))
            var configuration = Runner.configuration(untilIdle: false)
            configuration.rescueInterval = .milliseconds(100)
            let worker = Runner.worker(store, TestJob(clock: clock), configuration)
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await worker.run() }
                try await Runner.until("the dead owner's job is done") { try await store.job(id: here[0].id)?.state == .completed }
                // Several more rescues.
                try await Runner.advance(clock, by: .milliseconds(100), until: "ten rescue intervals") { clock.now.offset >= .seconds(1) }
                worker.stopNow()
                try await tasks.waitForAll()
            }
            let foreign = try #require(try await store.job(id: elsewhere[0].id))
            #expect(foreign.state == .running && foreign.leaseOwner == "\(host):999999:dead:0badf00d", "a foreign owner's lease was cut short")
            try await store.close()
        }
    }
}

import CallJobs
import CallStore
import CallStoreSQLite
import CallSupport
import CallTesting
import Foundation
import Logging
import Synchronization
import Testing

/// A store that stops answering (a database restarting, or behind a partition): the worker stops
/// its jobs before their leases run out, and walks away from the hung calls when it stops.
@Suite struct WorkerStoreOutageTests {
    @Test func aJobWhoseLeaseCannotBeRenewedIsStoppedBeforeTheLeaseRunsOut() async throws {
        try await withTemporaryDirectory { dir in
            let clock = ManualClock()
            let base = try SQLiteStore(path: "\(dir)/state/callrec.sqlite", now: { clock.date })
            try await base.migrate()
            let store = FailingClaims(base)
            let result = try await store.enqueue([try Runner.job(.init(sleepMs: 60_000))])
            guard case .inserted(let id) = result[0] else { Issue.record("not inserted"); return }
            var configuration = Runner.configuration(untilIdle: false)
            configuration.leaseTTL = .seconds(8)
            let handler = TestJob(clock: clock)
            let worker = Runner.worker(store, handler, configuration)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                try await Runner.until("the job runs") { !worker.runningLeases.isEmpty }
                let claimedAt = clock.now
                store.heartbeatsHang.store(true, ordering: .sequentiallyConsistent)
                try await Runner.advance(clock, by: .milliseconds(100), until: "the job is stopped") { worker.summary[.leaseLost] == 1 }
                let stoppedAfter = claimedAt.duration(to: clock.now)
                // 3/4 of the TTL, checked every TTL/12: after 6 s and before the lease's 8 s.
                #expect(stoppedAfter > .seconds(6) && stoppedAfter < .seconds(8), "stopped after \(stoppedAfter)")
                #expect(handler.tracker.now.ended == 1, "the job's task was not ended")
                // Its outcome was not recorded: the job still holds its (expiring) lease in the store.
                #expect(try await store.job(id: id)?.state == .running)
                // The heartbeat still hangs: stopping does not wait for it.
                worker.beginShutdown()
                try await group.waitForAll()
            }
            // Once the lease runs out the job goes back to the queue, its attempt kept.
            clock.advance(by: .seconds(8))
            #expect(try await store.rescueExpiredLeases(poisonRescues: 5).requeued == [id])
            #expect(try await store.job(id: id)?.state == .available)
            try await store.close()
        }
    }
}

import CallStore
import CallTesting
import Foundation
import Testing

/// The job queue's semantics (research/queue-and-reconcile.md §(2)), on every backend.
@Suite(.timeLimit(.minutes(2)))
struct QueueTests {
    // MARK: claim

    @Test(arguments: backends)
    func claimOrdersByPriorityThenRunAtThenIDAndRespectsTheLimit(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            // x: due after y, a and b although enqueued before them; one batch (a, b) shares run_at.
            let x = try await store.insert(newJob(delay: .seconds(4)))
            let y = try await store.insert(newJob())
            let batch = try await store.enqueue([newJob(), newJob()])
            guard case .inserted(let a) = batch[0], case .inserted(let b) = batch[1] else {
                Issue.record("batch enqueue: \(batch)")
                return
            }
            let urgent = try await store.insert(newJob(priority: 1))
            let last = try await store.insert(newJob(priority: 4))
            let other = try await store.insert(newJob(queueB, priority: 1))
            let xJob = try await store.existingJob(x), aJob = try await store.existingJob(a)
            try #require(xJob.runAt > aJob.runAt, "the machine stalled for over four seconds between two enqueues")
            #expect(aJob.runAt == (try await store.existingJob(b)).runAt)
            clock.advance(by: .seconds(5))

            let first = try await store.claim(queue: queueA, limit: 2, owner: "w1", leaseTTL: .seconds(30))
            #expect(first.map(\.id) == [urgent, y])
            let rest = try await store.claim(queue: queueA, limit: 10, owner: "w2", leaseTTL: .seconds(30))
            #expect(rest.map(\.id) == [a, b, x, last])
            #expect(try await store.claim(queue: queueA, limit: 10, owner: "w3", leaseTTL: .seconds(30)).isEmpty)
            #expect(try await store.existingJob(other).state == .available)

            let now = try await store.now()
            for job in first + rest {
                #expect(job.state == .running)
                #expect(job.attempt == 1)
                #expect(job.leaseToken != nil && job.leaseToken != 0)
                #expect(job.leaseOwner == (first.contains(job) ? "w1" : "w2"))
                #expect(near(job.leaseExpiresAt, now.addingTimeInterval(30), tolerance: 5))
                #expect(job.args == #"{"n":1}"#)
            }
            // A fresh token for each job of a batch.
            #expect(Set(rest.compactMap(\.leaseToken)).count == rest.count)
            #expect(try await store.existingJob(a).normalized == rest[0].normalized)
        }
    }

    @Test(arguments: backends)
    func aJobNotYetDueIsNotClaimed(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob(delay: .seconds(60)))
            #expect(try await store.claim(queue: queueA, limit: 5, owner: "w", leaseTTL: .seconds(30)).isEmpty)
            let job = try await store.existingJob(id)
            #expect(job.state == .available)
            #expect(job.attempt == 0)
            #expect(near(job.runAt, try await store.now().addingTimeInterval(60), tolerance: 5))
        }
    }

    @Test(arguments: backends)
    func concurrentClaimersNeverShareAJobAndGetThemAll(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let count = 200
            var ids: Set<Int64> = []
            for chunk in stride(from: 0, to: count, by: 50) {
                let results = try await store.enqueue((chunk..<min(chunk + 50, count)).map { _ in newJob() })
                for case .inserted(let id) in results { ids.insert(id) }
            }
            #expect(ids.count == count)

            let claimed = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [Int64] = []
                        while true {
                            let jobs = try await store.claim(queue: queueA, limit: 3, owner: "w\(worker)", leaseTTL: .seconds(60))
                            if jobs.isEmpty { break }
                            for job in jobs {
                                mine.append(job.id)
                                let lease = try #require(job.lease)
                                #expect(try await store.complete(lease))
                            }
                        }
                        return mine
                    }
                }
                var all: [Int64] = []
                for try await mine in group { all += mine }
                return all
            }
            #expect(claimed.count == count, "a job was claimed twice or not at all")
            #expect(Set(claimed) == ids)
            let stats = try await store.queueStats()
            #expect(stats[.completed] == count)
            #expect(stats[.available] == 0 && stats[.running] == 0)
        }
    }

    // MARK: leases

    @Test(arguments: backends)
    func expiringTheLeasesOfADeadOwnerLetsTheRescuerReturnItsJobsAtOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            _ = try await store.enqueue([newJob(), newJob(), newJob()])
            let dead = try await store.claim(queue: queueA, limit: 2, owner: "host:1:dead", leaseTTL: .seconds(3600))
            let alive = try await store.claim(queue: queueA, limit: 1, owner: "host:2:alive", leaseTTL: .seconds(3600))
            #expect(dead.count == 2 && alive.count == 1)
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).isEmpty, "hour-long leases have not run out")
            #expect(try await store.expireLeases(ownedBy: ["host:1:dead", "host:9:unknown"]) == 2)
            let report = try await store.rescueExpiredLeases(poisonRescues: 3)
            #expect(Set(report.requeued) == Set(dead.map(\.id)))
            #expect(try await store.existingJob(alive[0].id).state == .running)
            #expect(try await store.expireLeases(ownedBy: []) == 0)
        }
    }

    @Test(arguments: backends)
    func anExpiredLeaseIsRescuedAndTheJobClaimedAgainWithANewToken(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let id = try await store.insert(newJob())
            let first = try await store.claimOne(leaseTTL: .seconds(30))
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).isEmpty)
            clock.advance(by: .seconds(50))

            let report = try await store.rescueExpiredLeases(poisonRescues: 3)
            #expect(report.requeued == [id])
            #expect(report.discarded.isEmpty)
            let rescued = try await store.existingJob(id)
            #expect(rescued.state == .available)
            #expect(rescued.rescueCount == 1)
            #expect(rescued.attempt == 1)
            #expect(rescued.leaseToken == nil && rescued.leaseOwner == nil && rescued.leaseExpiresAt == nil)
            #expect(rescued.lastError == "lease expired (worker lost)")
            #expect(rescued.errors.last?.kind == "rescued")
            #expect(rescued.errors.last?.attempt == 1)
            #expect(rescued.finalizedAt == nil)
            #expect(rescued.runAt <= (try await store.now()).addingTimeInterval(0.001))

            let second = try await store.claimOne()
            #expect(second.id == id)
            #expect(second.attempt == 2)
            #expect(second.leaseToken != first.leaseToken)
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).isEmpty)
        }
    }

    @Test(arguments: backends)
    func aLostLeaseCanNoLongerChangeTheJob(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let id = try await store.insert(newJob())
            let old = try #require(try await store.claimOne(owner: "zombie", leaseTTL: .seconds(30)).lease)
            clock.advance(by: .seconds(50))
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).requeued == [id])
            let current = try await store.claimOne(owner: "new-owner")
            let lease = try #require(current.lease)
            #expect(lease != old)

            let before = try await store.existingJob(id)
            #expect(try await store.complete(old) == false)
            #expect(try await store.fail(old, error: "late", permanent: false, retryIn: .zero) == nil)
            #expect(try await store.fail(old, error: "late", permanent: true, retryIn: .zero) == nil)
            #expect(try await store.snooze(old, delay: .seconds(1), reason: "late", maxSnoozes: 5) == nil)
            #expect(try await store.release(old, reason: "late") == false)
            #expect(try await store.heartbeat([old], leaseTTL: .seconds(60)).isEmpty)
            let after = try await store.existingJob(id)
            #expect(after.normalized == before.normalized)
            #expect(after.leaseOwner == "new-owner")

            #expect(try await store.complete(lease))
            let done = try await store.existingJob(id)
            #expect(done.state == .completed)
            #expect(done.finalizedAt != nil)
            #expect(done.leaseToken == nil && done.leaseOwner == nil && done.leaseExpiresAt == nil)
            // Not twice, and not with the old lease either.
            #expect(try await store.complete(lease) == false)
            #expect(try await store.complete(old) == false)
            #expect(try await store.heartbeat([lease], leaseTTL: .seconds(60)).isEmpty)
        }
    }

    @Test(arguments: backends)
    func heartbeatExtendsHeldLeasesAndReportsLostOnes(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let kept = try await store.insert(newJob())
            let lost = try await store.insert(newJob())
            let jobs = try await store.claim(queue: queueA, limit: 2, owner: "w", leaseTTL: .seconds(30))
            #expect(jobs.map(\.id) == [kept, lost])
            let keptLease = try #require(jobs[0].lease)
            let lostLease = try #require(jobs[1].lease)

            let held = try await store.heartbeat([keptLease], leaseTTL: .seconds(300))
            #expect(held == [keptLease])
            let extended = try await store.existingJob(kept)
            #expect(near(extended.leaseExpiresAt, try await store.now().addingTimeInterval(300), tolerance: 5))

            clock.advance(by: .seconds(50))
            let report = try await store.rescueExpiredLeases(poisonRescues: 3)
            #expect(report.requeued == [lost])
            #expect(try await store.existingJob(kept).state == .running)

            let answer = try await store.heartbeat([keptLease, lostLease, bogus(jobs[0])], leaseTTL: .seconds(30))
            #expect(answer == [keptLease])
            #expect(try await store.heartbeat([], leaseTTL: .seconds(30)).isEmpty)
            #expect(try await store.complete(keptLease))
        }
    }

    @Test(arguments: backends)
    func aJobWhoseLeaseExpiresThreeTimesIsDiscardedAsPoison(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let id = try await store.insert(newJob(maxAttempts: 10))
            for round in 1...3 {
                _ = try await store.claimOne(leaseTTL: .seconds(20))
                clock.advance(by: .seconds(35))
                let report = try await store.rescueExpiredLeases(poisonRescues: 3)
                if round < 3 {
                    #expect(report.requeued == [id], "round \(round)")
                } else {
                    #expect(report.discarded == [id])
                    #expect(report.requeued.isEmpty)
                }
            }
            let job = try await store.existingJob(id)
            #expect(job.state == .discarded)
            #expect(job.rescueCount == 3)
            #expect(job.attempt == 3)
            #expect(job.finalizedAt != nil)
            #expect(job.leaseToken == nil)
            #expect(job.errors.filter { $0.kind == "rescued" }.count == 3)
            #expect(try await store.claim(queue: queueA, limit: 1, owner: "w", leaseTTL: .seconds(1)).isEmpty)
        }
    }

    @Test(arguments: backends)
    func aRescuedJobOutOfAttemptsIsDiscarded(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let id = try await store.insert(newJob(maxAttempts: 1))
            _ = try await store.claimOne(leaseTTL: .seconds(20))
            clock.advance(by: .seconds(35))
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).discarded == [id])
            let job = try await store.existingJob(id)
            #expect(job.state == .discarded)
            #expect(job.rescueCount == 1)
            #expect(job.finalizedAt != nil)
        }
    }

    // MARK: unique key

    @Test(arguments: backends)
    func aUniqueKeyHasOneLiveJob(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let first = try await store.insert(newJob(uniqueKey: "upload:r1"))
            #expect(try await store.enqueue(newJob(uniqueKey: "upload:r1")) == .duplicate)
            #expect(try await store.enqueue(newJob(queueB, kind: "other", uniqueKey: "upload:r1")) == .duplicate)
            // Jobs without a key never conflict.
            _ = try await store.insert(newJob(queueB))
            _ = try await store.insert(newJob(queueB))

            let running = try await store.claimOne()
            #expect(running.id == first)
            #expect(try await store.enqueue(newJob(uniqueKey: "upload:r1")) == .duplicate)
            #expect(try await store.complete(try #require(running.lease)))

            let second = try await store.insert(newJob(uniqueKey: "upload:r1"))
            #expect(second != first)
            let keyed = try await store.jobs(JobQuery(uniqueKey: "upload:r1"))
            #expect(keyed.map(\.id) == [first, second])
            #expect(keyed.map(\.state) == [.completed, .available])
        }
    }

    @Test(arguments: backends)
    func retryOfADiscardedJobIsSkippedWhileItsKeyIsLiveElsewhere(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let old = try await store.insert(newJob(uniqueKey: "k"))
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(lease, error: "bad", permanent: true, retryIn: .zero) == .discarded)
            let live = try await store.insert(newJob(uniqueKey: "k"))

            #expect(try await store.retry(ids: [old]).isEmpty)
            #expect(try await store.existingJob(old).state == .discarded)

            #expect(try await store.cancel(ids: [live]) == [live])
            #expect(try await store.retry(ids: [old, live]) == [old])
            #expect(try await store.existingJob(old).state == .available)
            #expect(try await store.existingJob(live).state == .cancelled)
        }
    }

    // MARK: fail, snooze, release

    @Test(arguments: backends)
    func aFailureBacksOffAndCountsTheAttempt(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob(maxAttempts: 3))
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(lease, error: "HTTP 503", permanent: false, retryIn: .seconds(60)) == .available)
            let waiting = try await store.existingJob(id)
            #expect(waiting.state == .available)
            #expect(waiting.attempt == 1)
            #expect(near(waiting.runAt, try await store.now().addingTimeInterval(60), tolerance: 5))
            #expect(waiting.lastError == "HTTP 503")
            #expect(waiting.errors.count == 1)
            #expect(waiting.errors.first?.kind == "failed")
            #expect(waiting.errors.first?.attempt == 1)
            #expect(waiting.errors.first?.error == "HTTP 503")
            #expect(waiting.leaseToken == nil && waiting.leaseOwner == nil && waiting.leaseExpiresAt == nil)
            #expect(waiting.finalizedAt == nil)
            #expect(try await store.claim(queue: queueA, limit: 1, owner: "w", leaseTTL: .seconds(30)).isEmpty)
        }
    }

    @Test(arguments: backends)
    func theLastAttemptsFailureDiscards(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob(maxAttempts: 2))
            let first = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(first, error: "one", permanent: false, retryIn: .zero) == .available)
            let second = try await store.claimOne()
            #expect(second.attempt == 2)
            #expect(try await store.fail(try #require(second.lease), error: "two", permanent: false, retryIn: .zero) == .discarded)
            let job = try await store.existingJob(id)
            #expect(job.state == .discarded)
            #expect(job.finalizedAt != nil)
            #expect(job.lastError == "two")
            #expect(job.errors.map(\.error) == ["one", "two"])
            #expect(job.errors.map(\.attempt) == [1, 2])
        }
    }

    @Test(arguments: backends)
    func aPermanentFailureDiscardsAtOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob(maxAttempts: 10))
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.fail(lease, error: "HTTP 422", permanent: true, retryIn: .seconds(30)) == .discarded)
            let job = try await store.existingJob(id)
            #expect(job.state == .discarded)
            #expect(job.attempt == 1)
            #expect(job.finalizedAt != nil)
            #expect(job.leaseToken == nil)
            #expect(try await store.queueStats()[.discarded] == 1)
        }
    }

    /// A snooze until an instant (a budget's reset) lands on that instant exactly, however late
    /// it is recorded; the later of the delay and the instant wins.
    @Test(arguments: backends)
    func aSnoozeUntilAnInstantWakesAtThatInstant(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob())
            var lease = try #require(try await store.claimOne().lease)
            let reset = Date(timeIntervalSince1970: ((try await store.now().timeIntervalSince1970 / 60).rounded(.down) + 5) * 60)
            #expect(try await store.snooze(lease, delay: .zero, notBefore: reset, reason: "budget", maxSnoozes: 5) == .available)
            #expect(abs(try await store.existingJob(id).runAt.timeIntervalSince(reset)) < 0.002)
            // A delay that ends later than the instant wins; an instant in the past changes nothing.
            _ = try await store.retry(ids: [id])
            lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .seconds(3600), notBefore: reset, reason: "429", maxSnoozes: 5) == .available)
            #expect(near(try await store.existingJob(id).runAt, try await store.now().addingTimeInterval(3600), tolerance: 5))
            _ = try await store.retry(ids: [id])
            lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .seconds(60), notBefore: Date(timeIntervalSince1970: 0), reason: "429",
                                           maxSnoozes: 5) == .available)
            #expect(near(try await store.existingJob(id).runAt, try await store.now().addingTimeInterval(60), tolerance: 5))
        }
    }

    @Test(arguments: backends)
    func aSnoozeUsesNoAttemptAndDiscardsAfterMaxSnoozes(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // One attempt only: a snooze that used it up would make the next failure final.
            let id = try await store.insert(newJob(maxAttempts: 1))
            var lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .seconds(60), reason: "HTTP 429", maxSnoozes: 2) == .available)
            var job = try await store.existingJob(id)
            #expect(job.attempt == 0)
            #expect(job.snoozeCount == 1)
            #expect(job.lastError == "HTTP 429")
            #expect(job.errors.last?.kind == "snoozed")
            #expect(job.leaseToken == nil)
            #expect(near(job.runAt, try await store.now().addingTimeInterval(60), tolerance: 5))
            #expect(try await store.claim(queue: queueA, limit: 1, owner: "w", leaseTTL: .seconds(30)).isEmpty)

            // Make it due again (the delay is not what is tested here).
            let snoozed = try await store.insert(newJob(maxAttempts: 1))
            lease = try #require(try await store.claimOne().lease)
            #expect(lease.jobID == snoozed)
            #expect(try await store.snooze(lease, delay: .zero, reason: "429", maxSnoozes: 2) == .available)
            lease = try #require(try await store.claimOne().lease)
            #expect(try await store.existingJob(snoozed).attempt == 1)
            #expect(try await store.snooze(lease, delay: .zero, reason: "429", maxSnoozes: 2) == .available)
            lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .zero, reason: "429 again", maxSnoozes: 2) == .discarded)
            job = try await store.existingJob(snoozed)
            #expect(job.state == .discarded)
            #expect(job.snoozeCount == 3)
            #expect(job.finalizedAt != nil)
            #expect(job.lastError == "429 again")
        }
    }

    @Test(arguments: backends)
    func aReleaseUsesNoAttemptAndIsDueAtOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob(maxAttempts: 1))
            let lease = try #require(try await store.claimOne().lease)
            #expect(try await store.release(lease, reason: "shutdown"))
            let job = try await store.existingJob(id)
            #expect(job.state == .available)
            #expect(job.attempt == 0)
            #expect(job.lastError == "shutdown")
            #expect(job.errors.last?.kind == "released")
            #expect(job.leaseToken == nil && job.leaseOwner == nil)
            #expect(try await store.release(lease, reason: "again") == false)
            #expect(try await store.queueStats().due == 1)

            let again = try await store.claimOne()
            #expect(again.id == id)
            #expect(again.attempt == 1)
            // Still its first attempt: a failure now is final (max 1).
            #expect(try await store.fail(try #require(again.lease), error: "x", permanent: false, retryIn: .zero) == .discarded)
        }
    }

    @Test(arguments: backends)
    func theErrorHistoryKeepsTheLastTen(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob())
            for n in 1...12 {
                let lease = try #require(try await store.claimOne().lease)
                #expect(try await store.snooze(lease, delay: .zero, reason: "snooze \(n)", maxSnoozes: 100) == .available)
            }
            let job = try await store.existingJob(id)
            #expect(job.errors.count == JobErrorRecord.historyLimit)
            #expect(job.errors.map(\.error) == (3...12).map { "snooze \($0)" })
            #expect(job.errors.map(\.at) == job.errors.map(\.at).sorted())
        }
    }

    // MARK: operating

    @Test(arguments: backends)
    func cancelAndRetry(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let running = try await store.insert(newJob())
            let available = try await store.insert(newJob())
            let completed = try await store.insert(newJob(queueB))
            let runningJob = try await store.claimOne()
            #expect(runningJob.id == running)
            #expect(try await store.complete(try #require(try await store.claimOne(queueB).lease)))

            #expect(try await store.cancel(ids: [completed, running, available, 999_999]) == [running, available])
            for id in [running, available] {
                let job = try await store.existingJob(id)
                #expect(job.state == .cancelled)
                #expect(job.finalizedAt != nil)
                #expect(job.leaseToken == nil)
            }
            // The cancelled job's worker finds out when it reports.
            #expect(try await store.complete(try #require(runningJob.lease)) == false)
            #expect(try await store.heartbeat([try #require(runningJob.lease)], leaseTTL: .seconds(30)).isEmpty)

            #expect(try await store.retry(ids: [completed, running, 999_999]) == [running])
            let retried = try await store.existingJob(running)
            #expect(retried.state == .available)
            #expect(retried.attempt == 0)
            #expect(retried.rescueCount == 0 && retried.snoozeCount == 0)
            #expect(retried.finalizedAt == nil)
            #expect(retried.runAt <= (try await store.now()).addingTimeInterval(0.001))
            #expect(try await store.existingJob(completed).state == .completed)
            #expect(try await store.retry(ids: [running]).isEmpty, "an available job that is due is left alone")
        }
    }

    /// A batch (one statement per thousand on PostgreSQL): one result per job in order, keyed
    /// duplicates inside the batch and against live jobs left out, every field stored.
    @Test(arguments: backends)
    func batchEnqueueReportsEachJobInOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let live = try await store.insert(newJob(uniqueKey: "live"))
            var batch = [
                newJob(kind: "first"), newJob(uniqueKey: "a", priority: 1), newJob(uniqueKey: "a"),
                newJob(queueB, kind: "later", maxAttempts: 3, delay: .seconds(3600)), newJob(uniqueKey: "live"),
            ]
            batch += (0..<1200).map { _ in newJob(kind: "bulk") }
            let results = try await store.enqueue(batch)
            #expect(results.count == batch.count)
            #expect(results[2] == .duplicate && results[4] == .duplicate)
            var ids: [Int64] = []
            for (i, result) in results.enumerated() where i != 2 && i != 4 {
                guard case .inserted(let id) = result else { Issue.record("job \(i): \(result)"); continue }
                ids.append(id)
            }
            #expect(ids == ids.sorted() && Set(ids).count == ids.count && !ids.contains(live), "ids follow the batch's order")
            let first = try await store.existingJob(ids[0]), keyed = try await store.existingJob(ids[1]), later = try await store.existingJob(ids[2])
            #expect(first.kind == "first" && first.uniqueKey == nil && first.args == #"{"n":1}"#)
            #expect(keyed.uniqueKey == "a" && keyed.priority == 1)
            let now = try await store.now()
            #expect(later.queue == queueB && later.maxAttempts == 3 && later.runAt > now.addingTimeInterval(3500))
            #expect(try await store.jobs(JobQuery(kind: "bulk", limit: 10_000)).count == 1200)
            await #expect(throws: StoreError.self) { try await store.enqueue([newJob(uniqueKey: "")]) }
        }
    }

    @Test(arguments: backends)
    func retryWakesAWaitingJobAndKeepsItsAttempts(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob())
            let other = try await store.insert(newJob(queueB))
            let lease = try #require(try await store.claimOne().lease)
            // Snoozed until a budget's reset, hours away.
            #expect(try await store.snooze(lease, delay: .seconds(6 * 3600), reason: "budget_spent", maxSnoozes: 5) == .available)
            #expect(try await store.claim(queue: queueA, limit: 1, owner: "w", leaseTTL: .seconds(30)).isEmpty)
            #expect(try await store.retry(ids: [id, other]) == [id], "a due job is left alone")
            let woken = try await store.existingJob(id)
            #expect(woken.state == .available && woken.snoozeCount == 1 && woken.lastError != nil)
            #expect(woken.runAt <= (try await store.now()).addingTimeInterval(0.001))
            let again = try await store.claimOne()
            #expect(again.id == id)
        }
    }

    @Test(arguments: backends)
    func retryResetsADiscardedJob(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let id = try await store.insert(newJob(maxAttempts: 1))
            var lease = try #require(try await store.claimOne().lease)
            #expect(try await store.snooze(lease, delay: .zero, reason: "429", maxSnoozes: 5) == .available)
            lease = try #require(try await store.claimOne(leaseTTL: .seconds(20)).lease)
            clock.advance(by: .seconds(35))
            #expect(try await store.rescueExpiredLeases(poisonRescues: 3).discarded == [id])
            let discarded = try await store.existingJob(id)
            #expect(discarded.snoozeCount == 1 && discarded.rescueCount == 1)

            #expect(try await store.retry(ids: [id, id]) == [id])
            let job = try await store.existingJob(id)
            #expect(job.state == .available)
            #expect(job.attempt == 0 && job.rescueCount == 0 && job.snoozeCount == 0)
            #expect(job.finalizedAt == nil)
            let again = try await store.claimOne()
            #expect(again.id == id && again.attempt == 1)
        }
    }

    @Test(arguments: backends)
    func pruneDeletesOnlyOldFinalRows(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let done = try await store.enqueue([newJob(), newJob(), newJob()]).compactMap { result -> Int64? in
                if case .inserted(let id) = result { id } else { nil }
            }
            for _ in done { #expect(try await store.complete(try #require(try await store.claimOne().lease))) }
            let discarded = try await store.insert(newJob(queueB))
            #expect(try await store.fail(try #require(try await store.claimOne(queueB).lease), error: "x", permanent: true,
                                         retryIn: .zero) == .discarded)
            let cancelled = try await store.insert(newJob(queueB, delay: .seconds(60)))
            #expect(try await store.cancel(ids: [cancelled]) == [cancelled])
            let available = try await store.insert(newJob(delay: .seconds(60)))
            let running = try await store.insert(newJob(queueB))
            _ = try await store.claimOne(queueB)
            clock.advance(by: .milliseconds(50))

            // Nothing is old enough.
            #expect(try await store.prune(completedAge: .seconds(3600), finalAge: .seconds(3600), limit: 100) == 0)
            // Completed ones are; at most `limit` at a time.
            #expect(try await store.prune(completedAge: .milliseconds(10), finalAge: .seconds(3600), limit: 2) == 2)
            #expect(try await store.prune(completedAge: .milliseconds(10), finalAge: .seconds(3600), limit: 100) == 1)
            for id in done { #expect(try await store.job(id: id) == nil) }
            #expect(try await store.job(id: discarded) != nil)
            // Then discarded and cancelled ones.
            #expect(try await store.prune(completedAge: .milliseconds(10), finalAge: .milliseconds(10), limit: 100) == 2)
            #expect(try await store.job(id: discarded) == nil)
            #expect(try await store.job(id: cancelled) == nil)
            #expect(try await store.existingJob(available).state == .available)
            #expect(try await store.existingJob(running).state == .running)
        }
    }

    @Test(arguments: backends)
    func purgeDeletesFinalJobsFinalizedBeforeADate(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let discarded = try await store.insert(newJob())
            #expect(try await store.fail(try #require(try await store.claimOne().lease), error: "x", permanent: true,
                                         retryIn: .zero) == .discarded)
            let cancelled = try await store.insert(newJob())
            #expect(try await store.cancel(ids: [cancelled]) == [cancelled])
            let available = try await store.insert(newJob())
            let now = try await store.now()

            #expect(try await store.purge(states: [.discarded], finalizedBefore: now.addingTimeInterval(-3600)) == 0)
            #expect(try await store.purge(states: [.discarded], finalizedBefore: now.addingTimeInterval(60)) == 1)
            #expect(try await store.job(id: discarded) == nil)
            #expect(try await store.job(id: cancelled) != nil)
            // Live states are never purged (refused, or nothing deleted).
            let live = await #expect(throws: StoreError.self) {
                try await store.purge(states: [.available, .cancelled], finalizedBefore: now.addingTimeInterval(60))
            }
            #expect(live?.code == .invalid)
            #expect(try await store.job(id: cancelled) != nil)
            #expect(try await store.existingJob(available).state == .available)
        }
    }

    @Test(arguments: backends)
    func jobsFiltersAndOrdersByID(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let a1 = try await store.insert(newJob(kind: "transcode"))
            let a2 = try await store.insert(newJob(kind: "upload", uniqueKey: "u1"))
            let b1 = try await store.insert(newJob(queueB, kind: "upload"))
            let b2 = try await store.insert(newJob(queueB, kind: "upload"))
            _ = try await store.claimOne(queueB)

            #expect(try await store.jobs(JobQuery()).map(\.id) == [a1, a2, b1, b2])
            #expect(try await store.jobs(JobQuery(limit: 2)).map(\.id) == [a1, a2])
            #expect(try await store.jobs(JobQuery(queue: queueB)).map(\.id) == [b1, b2])
            #expect(try await store.jobs(JobQuery(kind: "upload")).map(\.id) == [a2, b1, b2])
            #expect(try await store.jobs(JobQuery(states: [.running])).map(\.id) == [b1])
            #expect(try await store.jobs(JobQuery(states: [.available], queue: queueB)).map(\.id) == [b2])
            #expect(try await store.jobs(JobQuery(ids: [b2, a1, 424_242])).map(\.id) == [a1, b2])
            #expect(try await store.jobs(JobQuery(uniqueKey: "u1")).map(\.id) == [a2])
            #expect(try await store.jobs(JobQuery(ids: [])).isEmpty)
            #expect(try await store.job(id: 424_242) == nil)
        }
    }

    @Test(arguments: backends)
    func invalidJobsAreRefusedAlike(_ backend: Backend) async throws {
        try await withStore(backend) { (store: any CallStore) async throws in
            let bad: [NewJob] = [
                newJob(priority: 5),
                newJob(priority: 0),
                newJob(maxAttempts: 0),
                NewJob(queue: "", kind: "k"),
                NewJob(queue: queueA, kind: "k", args: String(repeating: "x", count: NewJob.maxArgsBytes + 1)),
            ]
            for job in bad {
                let error = await #expect(throws: StoreError.self) { try await store.enqueue(job) }
                #expect(error?.code == .invalid)
                let inCommit = await #expect(throws: StoreError.self) {
                    try await store.commit([.audit(AuditEntry(recordingKey: nil, action: "a", actor: "t")), .enqueue(job)])
                }
                #expect(inCommit?.code == .invalid)
            }
            #expect(try await store.jobs(JobQuery()).isEmpty)
            #expect(try await store.audit(key: nil, limit: 10).isEmpty)
        }
    }

    // MARK: stats and waiting

    @Test(arguments: backends)
    func queueStatsCountsAndAges(_ backend: Backend) async throws {
        let clock = ManualClock()
        try await withStore(backend, clock: clock) { store in
            let empty = try await store.queueStats()
            #expect(empty.counts == Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) }))
            #expect(empty.due == 0 && empty.oldestDueSeconds == nil && empty.nextRunAt == nil)
            #expect(try await store.isIdle())

            _ = try await store.enqueue([newJob(), newJob(), newJob(), newJob(queueB)])
            let later = try await store.insert(newJob(delay: .seconds(60)))
            clock.advance(by: .milliseconds(300))
            _ = try await store.claimOne()
            let done = try await store.insert(newJob(queueB, priority: 1))
            #expect(try await store.complete(try #require(try await store.claimOne(queueB).lease)))
            let now = try await store.now()

            let stats = try await store.queueStats()
            #expect(stats[.available] == 4)
            #expect(stats[.running] == 1)
            #expect(stats[.completed] == 1)
            #expect(stats[.discarded] == 0 && stats[.cancelled] == 0)
            #expect(stats.byQueue[queueA]?[.available] == 3)
            #expect(stats.byQueue[queueA]?[.running] == 1)
            #expect(stats.byQueue[queueB]?[.available] == 1)
            #expect(stats.byQueue[queueB]?[.completed] == 1)
            #expect((stats.byQueue[queueA]?[.completed] ?? 0) == 0)
            #expect(stats.due == 3)
            #expect(stats.dueByQueue == [queueA: 2, queueB: 1])
            let oldest = try #require(stats.oldestDueSeconds)
            #expect(oldest >= 0.3 && oldest < 30)
            let laterJob = try await store.existingJob(later)
            #expect(near(stats.nextRunAt, laterJob.runAt, tolerance: 0.002))
            #expect(near(stats.nextRunAt, now.addingTimeInterval(60), tolerance: 5))
            #expect(try await store.job(id: done)?.state == .completed)

            #expect(try await store.isIdle() == false)
            #expect(try await store.isIdle(queues: ["nothing-here"]))
        }
    }

    @Test(arguments: backends)
    func waitForWorkWakesOnAnEnqueueAndTimesOutOtherwise(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // Times out when nothing happens.
            var clock = ContinuousClock.now
            await store.waitForWork(timeout: .milliseconds(100))
            let idle = ContinuousClock.now - clock
            #expect(idle >= .milliseconds(80) && idle < .seconds(30), "waited \(idle)")

            // Returns early after an enqueue in this process.
            clock = ContinuousClock.now
            let waiter = Task { await store.waitForWork(timeout: .seconds(60)) }
            try await untilWaiting(store, count: 1)
            _ = try await store.insert(newJob())
            await waiter.value
            let woken = ContinuousClock.now - clock
            #expect(woken < .seconds(30), "waited \(woken)")

            // And after a transactional enqueue, and a release.
            clock = ContinuousClock.now
            let second = Task { await store.waitForWork(timeout: .seconds(60)) }
            try await untilWaiting(store, count: 1)
            try await store.commit([.enqueue(newJob())])
            await second.value
            #expect(ContinuousClock.now - clock < .seconds(30))

            let lease = try #require(try await store.claimOne().lease)
            clock = ContinuousClock.now
            let third = Task { await store.waitForWork(timeout: .seconds(60)) }
            try await untilWaiting(store, count: 1)
            #expect(try await store.release(lease, reason: "shutdown"))
            await third.value
            #expect(ContinuousClock.now - clock < .seconds(30))
        }
    }

    @Test(arguments: backends)
    func waitForWorkReturnsWhenCancelled(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            // A timeout no loaded machine reaches: returning well before it is the cancellation.
            let waiter = Task { await store.waitForWork(timeout: .seconds(600)) }
            try await untilWaiting(store, count: 1)
            let clock = ContinuousClock.now
            waiter.cancel()
            await waiter.value
            #expect(ContinuousClock.now - clock < .seconds(60))

            // Already cancelled: at once.
            let cancelled = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                await store.waitForWork(timeout: .seconds(600))
            }
            let start = ContinuousClock.now
            await cancelled.value
            #expect(ContinuousClock.now - start < .seconds(60))
        }
    }

    @Test(arguments: backends)
    func migrateTwiceIsHarmless(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let id = try await store.insert(newJob())
            try await store.migrate()
            #expect(try await store.job(id: id) != nil)
            #expect(!store.location.isEmpty)
        }
    }
}

import CallJobs
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Synchronization
import Testing

extension QueueName {
    /// The queue of these tests' jobs.
    static let jobs: QueueName = "jobs"
    /// A second stage, fed by ``jobs`` (backpressure).
    static let later: QueueName = "later"
}

/// Counts the test jobs running now, at most at once, and finished.
final class Tracker: Sendable {
    struct Counts: Sendable {
        var running = 0
        var peak = 0
        var started = 0
        var ended = 0
    }

    private let counts = Mutex(Counts())
    var now: Counts { counts.withLock { $0 } }

    func start() {
        counts.withLock {
            $0.running += 1
            $0.started += 1
            $0.peak = max($0.peak, $0.running)
        }
    }

    func end() {
        counts.withLock {
            $0.running -= 1
            $0.ended += 1
        }
    }
}

/// The runner's test job: it sleeps on the test's clock for `sleep_ms`, then fails as told.
/// Its ``whenIdle(horizon:context:)`` answers with `idle`.
struct TestJob: JobHandler {
    static let kind: JobKind = "test"
    var kind: JobKind { Self.kind }

    struct Arguments: Codable, Sendable {
        var sleepMs: Int?
        var fail: String?
        /// Enqueues a job on ``QueueName/later``, due in an hour, when done.
        var feedsLater: Bool?
        init(sleepMs: Int? = nil, fail: String? = nil, feedsLater: Bool? = nil) {
            self.sleepMs = sleepMs
            self.fail = fail
            self.feedsLater = feedsLater
        }
        enum CodingKeys: String, CodingKey { case sleepMs = "sleep_ms", fail, feedsLater = "feeds_later" }
    }

    let clock: ManualClock
    var tracker = Tracker()
    var idle: (@Sendable (JobContext) async throws -> IdleAnswer)?

    func run(_ job: Job, context: JobContext) async throws {
        let arguments = try job.arguments(as: Arguments.self)
        tracker.start()
        defer { tracker.end() }
        if let sleepMs = arguments.sleepMs { try await clock.sleep(for: .milliseconds(sleepMs)) }
        switch arguments.fail {
        case "permanent": throw JobFailure(.permanent, code: "test_failed", "told to fail permanently")
        case "transient": throw JobFailure(.transient, code: "test_failed", "told to fail")
        case "halt": throw JobFailure(.halt, code: "test_halted", "told to halt")
        case "unavailable": throw JobFailure(.unavailable, code: "test_unavailable", "told its service cannot be reached")
        case "disk_full": throw JobFailure.diskFull("cannot write /x/spool/k/part-001.mp3: No space left on device")
        default: break
        }
        if arguments.feedsLater == true {
            _ = try await context.store.enqueue(try NewJob(queue: .later, kind: Self.kind, arguments: Arguments(), delay: .seconds(3600)))
        }
    }

    func whenIdle(horizon: Duration, context: JobContext) async throws -> IdleAnswer {
        try await idle?(context) ?? .nothing
    }
}

enum Runner {
    /// A migrated SQLite store under `dir` whose time (leases, `run_at`) is `clock`'s.
    static func store(_ dir: String, clock: ManualClock) async throws -> SQLiteStore {
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite", now: { clock.date })
        try await store.migrate()
        return store
    }

    static func configuration(untilIdle: Bool = true, slots: [QueueName: Int] = [.jobs: 4]) -> WorkerConfiguration {
        var c = WorkerConfiguration(slots: slots)
        c.untilIdle = untilIdle
        // Heartbeats every 20 s of the test clock: tests that move the clock in steps never
        // outrun them.
        c.leaseTTL = .seconds(60)
        c.idleHorizon = .seconds(5)
        c.rescueInterval = .milliseconds(200)
        c.pollInterval = .milliseconds(100)
        c.shutdownGrace = .milliseconds(300)
        c.backoff = Backoff(base: .milliseconds(50), cap: .milliseconds(100))
        return c
    }

    static func job(_ arguments: TestJob.Arguments = .init(), queue: QueueName = .jobs, unique: String? = nil, maxAttempts: Int = 12) throws -> NewJob {
        try NewJob(queue: queue, kind: TestJob.kind, arguments: arguments, uniqueKey: unique, maxAttempts: maxAttempts)
    }

    static func worker(_ store: any CallStore, _ handler: TestJob, _ configuration: WorkerConfiguration) -> Worker<ManualClock> {
        Worker(store: store, handlers: [handler], configuration: configuration, clock: handler.clock, logger: Logger(label: "test"))
    }

    /// Waits, in real time and at most 30 s, until `condition` holds; records an issue if it never does.
    static func until(_ what: String, sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
                return
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Moves `clock` on by `step` at a time until `condition` holds (at most 30 s of real time).
    static func advance(_ clock: ManualClock, by step: Duration, until what: String, sourceLocation: SourceLocation = #_sourceLocation,
                        _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while try await !condition() {
            if ContinuousClock.now > deadline {
                Issue.record("timed out moving the clock until \(what)", sourceLocation: sourceLocation)
                return
            }
            clock.advance(by: step)
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    /// Runs `worker` to its end, moving its clock on by `step` at a time meanwhile (its waits
    /// for retries, rescues and polls are on that clock).
    static func run(_ worker: Worker<ManualClock>, advancing step: Duration, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let done = Locked(false)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                defer { done.withLock { $0 = true } }
                try await worker.run()
            }
            try await advance(worker.clock, by: step, until: "the worker ended", sourceLocation: sourceLocation) {
                done.withLock { $0 }
            }
            if !done.withLock({ $0 }) { worker.stopNow() }
            try await group.waitForAll()
        }
    }
}

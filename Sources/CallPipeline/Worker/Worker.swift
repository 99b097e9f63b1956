public import CallStore
public import CallSupport
import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Runs jobs from the store until stopped (DESIGN §5; research/queue-and-reconcile.md §(2)).
///
/// - Each queue has its own slots (transcode = CPU cores; upload and delete separate), and claims
///   in batches of its free slots.
/// - Every running job holds a lease that one heartbeat statement per interval extends; a job
///   whose lease was lost is cancelled at once (another worker owns it now), and every state
///   change is fenced by the lease's token.
/// - A rescuer returns jobs of dead workers; a pruner deletes old finished rows.
/// - Graceful shutdown (SIGTERM/SIGINT through swift-service-lifecycle) stops claiming, waits up
///   to ``Configuration/shutdownGrace`` for running jobs, then cancels and *releases* them (no
///   attempt used). ``stopNow()`` (the second signal) releases at once.
/// - A claim that fails, or a job that meets a full disk, pauses claiming from that queue with
///   ``Configuration/pauseBackoff`` (longer each time in a row), never a loop on a broken store.
///   A run that ends when idle stops at a full disk instead, with the failure in
///   ``Summary/stopped``: nothing is lost, the job waits for the next run.
/// - A job that fails with ``JobFailure/Disposition/halt`` (this process cannot run it: its
///   credentials were refused) is released and the worker shuts down the same way;
///   ``halted`` says why.
public final class Worker: Service, Sendable {
    public struct Configuration: Sendable {
        /// Concurrency per queue; only these queues are served.
        public var slots: [String: Int]
        public var leaseTTL: Duration = .seconds(60)
        /// Defaults to a third of the lease TTL.
        public var heartbeatInterval: Duration?
        public var rescueInterval: Duration = .seconds(15)
        public var pruneInterval: Duration = .seconds(300)
        public var completedRetention: Duration = .seconds(24 * 3600)
        public var finalRetention: Duration = .seconds(30 * 24 * 3600)
        public var shutdownGrace: Duration = .seconds(25)
        /// How often to look for work when no notification came (other processes' inserts on
        /// SQLite, jobs whose `run_at` came).
        public var pollInterval: Duration = .seconds(1)
        public var statsInterval: Duration = .seconds(15)
        /// Return once no job is due or running in the served queues.
        public var untilIdle = false
        /// With ``untilIdle``: a job that becomes due within this much time still counts (the CLI
        /// waits out short retry backoffs rather than leave work behind).
        public var idleHorizon: Duration = .zero
        public var backoff = Backoff()
        public var maxSnoozes = 50
        /// Lost leases after which a job is discarded as poison.
        public var poisonRescues = 3
        /// How long a queue stops claiming after a failed claim, or after one of its jobs met a
        /// full disk, by how many times in a row that happened.
        public var pauseBackoff = Backoff(base: .milliseconds(250), cap: .seconds(60))
        /// The clock of those pauses (tests move it by hand).
        public var now: @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }
        /// `host:pid:random:space` (``Worker/defaultOwner()``), written as `lease_owner`.
        public var owner = Worker.defaultOwner()
        /// How many more jobs of a queue may be claimed now (nil: as many as there are free
        /// slots). Backpressure: the CLI keeps transcodes from running too far ahead of uploads,
        /// which bounds the spool.
        public var claimLimit: (@Sendable (_ queue: String) async -> Int?)?
        /// Called after each job with its outcome (progress reporting).
        public var onOutcome: (@Sendable (_ job: Job, _ outcome: String) -> Void)?
        /// With ``untilIdle``: asked once nothing is due or running, before the run waits for
        /// later jobs or ends. Work a handler put off until the run has nothing else to do (the
        /// CLI's lookups of unsettled creates) is made due here.
        public var beforeIdle: (@Sendable () async throws -> IdleAnswer)?

        public init(slots: [String: Int]) {
            self.slots = slots
        }
    }

    /// What ``Configuration/beforeIdle`` did.
    public enum IdleAnswer: Sendable {
        /// Nothing put off: the run waits for later jobs within the horizon, or ends.
        case nothing
        /// Work was put off and becomes due soon: keep looking.
        case waiting
        /// Put-off jobs were made due: claim them now.
        case woke
    }

    /// What the worker did, by outcome (`completed`, `retried`, `snoozed`, `discarded`,
    /// `released`, `halted`, `lease_lost`).
    public struct Summary: Sendable {
        public var outcomes: [String: Int] = [:]
        public var rescued = 0
        /// Why a run that ends when idle stopped before its work was done (a full disk): the
        /// caller reports it and exits non-zero; the jobs wait, intact, for the next run.
        public var stopped: JobFailure?
        /// Claims that failed (the store could not be read or written).
        public var claimFailures = 0
        public subscript(outcome: String) -> Int { outcomes[outcome] ?? 0 }
    }

    /// A queue that does not claim for a while, and how many failures in a row put it there.
    private struct Pause {
        /// Claims that failed in a row (a claim that works ends the streak).
        var claimFailures = 0
        /// Jobs that met a full disk in a row (a job that completes ends the streak).
        var fullDisks = 0
        var until: ContinuousClock.Instant?
    }

    private enum PauseReason { case claimFailed, diskFull }

    private struct Running {
        var task: Task<Void, any Error>
        var queue: String
        var kind: String
        var lost = false
        var interrupted = false
    }

    private struct State {
        var running: [Lease: Running] = [:]
        var stopping = false
        var idle = false
        var halted: JobFailure?
        var summary = Summary()
        var lastHeartbeat = ContinuousClock.now
        var pauses: [String: Pause] = [:]
    }

    public let store: any CallStore
    public let configuration: Configuration
    private let handlers: [String: any JobHandler]
    private let logger: Logger
    private let state = Mutex(State())
    private let wakeup = WakeUp()
    private let metrics: WorkerMetrics

    public init(store: any CallStore, handlers: [any JobHandler], configuration: Configuration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.handlers = Dictionary(handlers.map { ($0.kind, $0) }, uniquingKeysWith: { _, last in last })
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.owner)"
        self.logger = logger
        self.metrics = WorkerMetrics()
    }

    /// `host:pid:random:space`. `space` names the pid namespace of this boot (a hash of the boot
    /// id and the namespace's inode): only a worker in the same space may tell from the pid that
    /// the owner is gone — two containers or machines may share a hostname, never a space.
    public static func defaultOwner() -> String {
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: ":", with: "_")
        let random = UUID().uuidString.prefix(8).lowercased()
        return "\(host):\(getpid()):\(random):\(pidSpace)"
    }

    /// This process's pid namespace on this boot, as 8 hex digits ("-" when /proc cannot say).
    static let pidSpace: String = {
        guard let boot = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8),
              let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid") else { return "-" }
        // FNV-1a: stable across processes and runs (Hasher is seeded per process).
        var hash: UInt32 = 2_166_136_261
        for byte in (boot.trimmingCharacters(in: .whitespacesAndNewlines) + namespace).utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return String(format: "%08x", hash)
    }()

    public var summary: Summary { state.withLock { $0.summary } }

    /// The first failure that stopped this worker (``JobFailure/Disposition/halt``), if one did.
    public var halted: JobFailure? { state.withLock { $0.halted } }

    /// Leases of the jobs running now (for tests and diagnostics).
    public var runningLeases: [Lease] { state.withLock { Array($0.running.keys) } }

    // MARK: - Service

    public func run() async throws {
        logger.info("worker started", metadata: [
            "store": "\(store.location)",
            "slots": "\(configuration.slots.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
        ])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { maintenance in
                maintenance.addTask { await self.every(self.configuration.heartbeatInterval ?? self.configuration.leaseTTL / 3) { await self.heartbeat() } }
                maintenance.addTask { await self.every(self.configuration.rescueInterval, immediately: true) { await self.rescue() } }
                maintenance.addTask { await self.every(self.configuration.pruneInterval) { await self.prune() } }
                maintenance.addTask { await self.every(self.configuration.statsInterval, immediately: true) { await self.sampleStats() } }
                maintenance.addTask { await self.every(self.configuration.pollInterval) { self.wakeup.signal() } }
                maintenance.addTask {
                    while !Task.isCancelled {
                        await self.store.waitForWork(timeout: self.configuration.pollInterval)
                        self.wakeup.signal()
                    }
                }
                await withDiscardingTaskGroup { loops in
                    for (queue, slots) in self.configuration.slots where slots > 0 {
                        loops.addTask { await self.claimLoop(queue: queue, slots: slots) }
                    }
                }
                maintenance.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
        let summary = self.summary
        logger.info("worker stopped", metadata: [
            "outcomes": "\(summary.outcomes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
        ])
    }

    /// Stops claiming; running jobs get ``Configuration/shutdownGrace`` to finish, then they are
    /// cancelled and released.
    public func beginShutdown() {
        stopClaiming { logger.info("shutting down: no new jobs; running ones get \($0) to finish") }
    }

    /// Stops claiming (once); `announce` says why, with the grace running jobs get.
    private func stopClaiming(_ announce: (Duration) -> Void) {
        let first = state.withLock { state -> Bool in
            defer { state.stopping = true }
            return !state.stopping
        }
        wakeup.signal()
        guard first else { return }
        announce(configuration.shutdownGrace)
        let grace = configuration.shutdownGrace
        Task { [self] in
            try? await Task.sleep(for: grace)
            self.interruptAll(reason: "shutdown grace period over")
        }
    }

    /// Whether `failure` stops this worker: a job it cannot run (``JobFailure/Disposition/halt``),
    /// or, in a run that ends when idle, a service it cannot reach.
    private func halts(_ failure: JobFailure) -> Bool {
        failure.disposition == .halt || (failure.disposition == .unavailable && configuration.untilIdle)
    }

    /// Stops claiming, as on the first signal (running jobs get the grace period), and keeps
    /// the first such failure for ``halted``.
    private func halt(_ failure: JobFailure) {
        let first = state.withLock { state -> Bool in
            defer { state.halted = state.halted ?? failure }
            return state.halted == nil
        }
        if first { logger.info("stopping: \(failure.message)") }
        beginShutdown()
    }

    /// The second signal: stop claiming and release every running job now.
    public func stopNow() {
        state.withLock { $0.stopping = true }
        wakeup.signal()
        interruptAll(reason: "stopped at once")
    }

    private func interruptAll(reason: String) {
        let tasks = state.withLock { state -> [Task<Void, any Error>] in
            var tasks: [Task<Void, any Error>] = []
            for (lease, var running) in state.running {
                running.interrupted = true
                state.running[lease] = running
                tasks.append(running.task)
            }
            return tasks
        }
        if !tasks.isEmpty { logger.info("interrupting \(tasks.count) running job(s): \(reason)") }
        for task in tasks { task.cancel() }
    }

    // MARK: - Claiming

    private var isStopping: Bool { state.withLock { $0.stopping || $0.idle } }

    private func runningCount(queue: String) -> Int {
        state.withLock { $0.running.values.filter { $0.queue == queue }.count }
    }

    private func claimLoop(queue: String, slots: Int) async {
        await withDiscardingTaskGroup { jobs in
            while !isStopping {
                if isPaused(queue) {
                    await wakeup.wait()
                    continue
                }
                var free = slots - runningCount(queue: queue)
                if free > 0, let limit = await configuration.claimLimit?(queue) {
                    free = min(free, limit)
                    if free <= 0, configuration.untilIdle, await checkIdle() { break }
                }
                if free <= 0 {
                    await wakeup.wait()
                    continue
                }
                let claimed: [Job]
                do {
                    claimed = try await store.claim(queue: queue, limit: free, owner: configuration.owner, leaseTTL: configuration.leaseTTL)
                    state.withLock { $0.pauses[queue]?.claimFailures = 0 }
                } catch is CancellationError {
                    break
                } catch {
                    state.withLock { $0.summary.claimFailures += 1 }
                    let failure = JobFailure(error)
                    if case .diskFull = failure.disposition, configuration.untilIdle {
                        stop(because: failure)
                        break
                    }
                    let pause = pause(queue, .claimFailed)
                    logger.error("claim failed; trying again in \(Self.format(pause))", metadata: ["queue": "\(queue)", "error": "\(error)"])
                    continue
                }
                for job in claimed {
                    guard let lease = job.lease else { continue }
                    // Registered before the child starts, so the slot count and the heartbeat see it.
                    let task = makeTask(for: job)
                    state.withLock { $0.running[lease] = Running(task: task, queue: queue, kind: job.kind) }
                    jobs.addTask { await self.finish(job, lease: lease, task: task) }
                }
                if claimed.isEmpty {
                    if configuration.untilIdle, await checkIdle() { break }
                    await wakeup.wait()
                }
            }
        }
    }

    /// Until-idle: nothing running here, and nothing due or running in the store (jobs leased
    /// by a dead worker count as running until the rescuer frees them).
    private func checkIdle() async -> Bool {
        if state.withLock({ !$0.running.isEmpty }) { return false }
        /// Whether a served queue has a job running, or one due that may be claimed.
        func busy(_ stats: QueueStats) async -> Bool {
            for queue in configuration.slots.filter({ $0.value > 0 }).keys {
                if (stats.byQueue[queue]?[.running] ?? 0) > 0 { return true }
                // Due jobs that back-pressure holds (the spool is full of transcoded recordings
                // whose uploads wait for a budget reset) cannot run until those uploads do: when
                // nothing else is due or running, they wait for the next run.
                if (stats.dueByQueue[queue] ?? 0) > 0 {
                    if let limit = await configuration.claimLimit?(queue), limit <= 0 { continue }
                    return true
                }
            }
            return false
        }
        do {
            // One snapshot: a job that becomes due between two reads must not look like none.
            var now = try await store.now()
            var stats = try await store.queueStats()
            if await busy(stats) { return false }
            if let beforeIdle = configuration.beforeIdle {
                switch try await beforeIdle() {
                case .nothing:
                    // What the hook waited for (`upload`'s registration) may have enqueued its
                    // last jobs after the snapshot and finished since: look again.
                    now = try await store.now()
                    stats = try await store.queueStats()
                    if await busy(stats) { return false }
                case .waiting: return false
                case .woke:
                    wakeup.signal()
                    return false
                }
            }
            if configuration.idleHorizon > .zero, let next = stats.nextRunAt,
               next.timeIntervalSince(now) <= configuration.idleHorizon.seconds {
                return false
            }
        } catch {
            logger.warning("cannot read the queue's state", metadata: ["error": "\(error)"])
            return false
        }
        if state.withLock({ !$0.running.isEmpty }) { return false }
        state.withLock { $0.idle = true }
        logger.info("queue idle: nothing due or running")
        wakeup.signal()
        return true
    }

    // MARK: - Pauses and stops

    private func isPaused(_ queue: String) -> Bool {
        let now = configuration.now()
        return state.withLock { state in
            guard let until = state.pauses[queue]?.until else { return false }
            if now >= until { state.pauses[queue]?.until = nil }
            return now < until
        }
    }

    /// Pauses claiming from `queue`, longer for each failure of that kind in a row; returns for
    /// how long.
    private func pause(_ queue: String, _ reason: PauseReason) -> Duration {
        let now = configuration.now()
        return state.withLock { state in
            var pause = state.pauses[queue] ?? Pause()
            let streak: Int
            switch reason {
            case .claimFailed:
                pause.claimFailures += 1
                streak = pause.claimFailures
            case .diskFull:
                pause.fullDisks += 1
                streak = pause.fullDisks
            }
            let length = configuration.pauseBackoff.delay(afterAttempt: streak)
            pause.until = now + length
            state.pauses[queue] = pause
            return length
        }
    }

    /// A full disk met by a job of `queue` (or by the store when recording its outcome): a run
    /// that ends when idle stops; a long-running worker pauses the queue.
    private func diskFull(_ failure: JobFailure, queue: String) {
        if configuration.untilIdle {
            stop(because: failure)
            return
        }
        let pause = pause(queue, .diskFull)
        logger.error("the disk is full; the \(queue) queue pauses for \(Self.format(pause))", metadata: ["error": "\(failure.message)"])
    }

    /// Stops claiming for good because of `failure` (the first one is kept); running jobs
    /// finish or are released as at a shutdown.
    private func stop(because failure: JobFailure) {
        let first = state.withLock { state -> Bool in
            guard state.summary.stopped == nil else { return false }
            state.summary.stopped = failure
            return true
        }
        guard first else { return }
        stopClaiming { logger.error("stopping: \(failure.code): \(failure.message); running jobs get \($0) to finish", metadata: [:]) }
    }

    /// `250 ms`, `2.5 s`.
    static func format(_ duration: Duration) -> String {
        duration < .seconds(1) ? "\(duration.milliseconds) ms" : String(format: "%.1f s", duration.seconds)
    }

    // MARK: - Running one job

    private func makeTask(for job: Job) -> Task<Void, any Error> {
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        logger[metadataKey: "lease"] = "\(job.leaseToken ?? 0)"
        let context = JobContext(logger: logger, store: store, owner: configuration.owner)
        let handler = handlers[job.kind]
        return Task {
            guard let handler else {
                throw JobFailure(.permanent, code: "unknown_kind", "no handler for job kind \"\(job.kind)\"")
            }
            try await handler.run(job, context: context)
        }
    }

    private func finish(_ job: Job, lease: Lease, task: Task<Void, any Error>) async {
        let started = ContinuousClock.now
        metrics.waited(queue: job.queue, kind: job.kind, seconds: max(0, Date().timeIntervalSince(job.runAt)))
        let result = await task.result
        metrics.ran(queue: job.queue, kind: job.kind, duration: ContinuousClock.now - started)
        // Before its slot frees, so that nothing else of the queue is claimed meanwhile: a full
        // disk pauses (or stops) claiming, and a job this process cannot run stops it.
        if case .failure(let error) = result {
            let failure = JobFailure(error)
            if case .diskFull = failure.disposition { diskFull(failure, queue: job.queue) }
            if halts(failure) { halt(failure) }
        }
        let running = state.withLock { $0.running.removeValue(forKey: lease) }
        defer { wakeup.signal() }
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        if running?.lost == true {
            record(job, "lease_lost")
            logger.warning("job stopped: its lease was lost, another worker owns it now")
            return
        }
        // Store calls run in their own task: a cancelled job's release must still reach the database.
        let store = self.store, configuration = self.configuration
        let outcome: String
        do {
            outcome = try await Task { () async throws -> String in
                switch result {
                case .success:
                    return try await store.complete(lease) ? "completed" : "lease_lost"
                case .failure(let error):
                    if running?.interrupted == true || error is CancellationError {
                        return try await store.release(lease, reason: "interrupted: \(running?.interrupted == true ? "shutdown" : "cancelled")") ? "released" : "lease_lost"
                    }
                    let failure = JobFailure(error)
                    var disposition = failure.disposition
                    if disposition == .unavailable { disposition = configuration.untilIdle ? .halt : .transient }
                    switch disposition {
                    case .halt, .unavailable:
                        // Available again at once, no attempt used: a run that can take it does.
                        return try await store.release(lease, reason: failure.description) ? "halted" : "lease_lost"
                    case .permanent:
                        let state = try await store.fail(lease, error: failure.description, permanent: true, retryIn: .zero)
                        return state == nil ? "lease_lost" : "discarded"
                    case .transient:
                        let delay = configuration.backoff.delay(afterAttempt: job.attempt)
                        let state = try await store.fail(lease, error: failure.description, permanent: false, retryIn: delay)
                        return state.map { $0 == .discarded ? "discarded" : "retried" } ?? "lease_lost"
                    case .snooze(let delay):
                        let state = try await store.snooze(lease, delay: delay, reason: failure.description, maxSnoozes: configuration.maxSnoozes)
                        return state.map { $0 == .discarded ? "discarded" : "snoozed" } ?? "lease_lost"
                    case .snoozeUntil(let instant):
                        let state = try await store.snooze(lease, delay: .zero, notBefore: instant, reason: failure.description,
                                                           maxSnoozes: configuration.maxSnoozes)
                        return state.map { $0 == .discarded ? "discarded" : "snoozed" } ?? "lease_lost"
                    case .diskFull:
                        // Never the job's fault: no attempt used, and no number of them discards it.
                        let delay = configuration.backoff.delay(afterAttempt: job.snoozeCount + 1)
                        let state = try await store.snooze(lease, delay: delay, reason: failure.description, maxSnoozes: Int(Int32.max))
                        return state == nil ? "lease_lost" : "snoozed"
                    }
                }
            }.value
        } catch {
            // The lease expires and the rescuer returns the job; nothing is lost.
            logger.error("cannot record the job's outcome; the rescuer will return it", metadata: ["error": "\(error)"])
            record(job, "unrecorded")
            let failure = JobFailure(error)
            if case .diskFull = failure.disposition { diskFull(failure, queue: job.queue) }
            return
        }
        record(job, outcome)
        if outcome == "completed" { state.withLock { $0.pauses[job.queue]?.fullDisks = 0 } }
        switch outcome {
        case "completed": logger.debug("job completed")
        case "lease_lost": logger.warning("job finished but its lease was lost; its outcome was not recorded (another worker owns it)")
        case "released": logger.info("job released for another run (no attempt used)")
        default:
            if case .failure(let error) = result {
                logger.warning("job \(outcome)", metadata: ["error": "\(error)"])
            }
        }
    }

    private func record(_ job: Job, _ outcome: String) {
        state.withLock { $0.summary.outcomes[outcome, default: 0] += 1 }
        metrics.outcome(queue: job.queue, kind: job.kind, outcome: outcome)
        configuration.onOutcome?(job, outcome)
    }

    // MARK: - Maintenance

    private func every(_ interval: Duration, immediately: Bool = false, _ body: @Sendable () async -> Void) async {
        if immediately, !Task.isCancelled { await body() }
        while !Task.isCancelled {
            do { try await Task.sleep(for: interval) } catch { return }
            await body()
        }
    }

    private func heartbeat() async {
        let leases = state.withLock { Array($0.running.keys) }
        guard !leases.isEmpty else {
            state.withLock { $0.lastHeartbeat = .now }
            return
        }
        let store = self.store, ttl = configuration.leaseTTL
        do {
            let held = try await Task { try await store.heartbeat(leases, leaseTTL: ttl) }.value
            state.withLock { $0.lastHeartbeat = .now }
            let lost = Set(leases).subtracting(held)
            guard !lost.isEmpty else { return }
            let tasks = state.withLock { state -> [Task<Void, any Error>] in
                lost.compactMap { lease in
                    guard var running = state.running[lease] else { return nil }
                    running.lost = true
                    state.running[lease] = running
                    return running.task
                }
            }
            for task in tasks { task.cancel() }
            if !tasks.isEmpty { logger.warning("lost the lease of \(tasks.count) job(s); cancelled them") }
        } catch {
            let since = state.withLock { ContinuousClock.now - $0.lastHeartbeat }
            logger.error("heartbeat failed", metadata: ["error": "\(error)", "since_last": "\(since)"])
            if since > ttl {
                // Our leases have expired by now and may be someone else's: stop causing side effects.
                let tasks = state.withLock { state -> [Task<Void, any Error>] in
                    for lease in state.running.keys { state.running[lease]?.lost = true }
                    return state.running.values.map(\.task)
                }
                for task in tasks { task.cancel() }
            }
        }
    }

    /// Owners of running leases that are processes of this host which no longer exist (a
    /// `kill -9`ed run): their leases need not run out before the jobs go back.
    private func deadLocalOwners() async throws -> [String] {
        let running = try await store.jobs(JobQuery(states: [.running], limit: 100_000))
        let space = Self.pidSpace
        guard space != "-" else { return [] }
        var dead: Set<String> = []
        for owner in Set(running.compactMap(\.leaseOwner)) where owner != configuration.owner {
            let fields = owner.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 4, fields[3] == space, let pid = pid_t(fields[1]), pid > 0 else { continue }
            if kill(pid, 0) != 0, errno == ESRCH { dead.insert(owner) }
        }
        return dead.sorted()
    }

    private func rescue() async {
        do {
            let dead = try await deadLocalOwners()
            if !dead.isEmpty {
                let expired = try await store.expireLeases(ownedBy: dead)
                if expired > 0 { logger.info("\(expired) job(s) were held by a process of this host that is gone; returning them now", metadata: ["owners": "\(dead)"]) }
            }
            let report = try await store.rescueExpiredLeases(poisonRescues: configuration.poisonRescues)
            guard !report.isEmpty else { return }
            state.withLock { $0.summary.rescued += report.requeued.count + report.discarded.count }
            if !report.discarded.isEmpty {
                let jobs = try await store.jobs(JobQuery(ids: report.discarded, limit: report.discarded.count))
                for job in jobs {
                    record(job, "discarded")
                    guard let handler = handlers[job.kind] else { continue }
                    let context = JobContext(logger: logger, store: store, owner: configuration.owner)
                    do { try await handler.quarantined(job, context: context) } catch {
                        logger.error("cannot record the quarantine", metadata: ["job_id": "\(job.id)", "error": "\(error)"])
                    }
                }
            }
            metrics.rescued(requeued: report.requeued.count, discarded: report.discarded.count)
            logger.warning("returned jobs whose worker was lost", metadata: [
                "requeued": "\(report.requeued)", "discarded_as_poison": "\(report.discarded)",
            ])
            wakeup.signal()
        } catch is CancellationError {
            return  // the worker is stopping
        } catch {
            logger.error("rescue failed", metadata: ["error": "\(error)"])
        }
    }

    private func prune() async {
        do {
            let pruned = try await store.prune(completedAge: configuration.completedRetention, finalAge: configuration.finalRetention, limit: 1_000)
            if pruned > 0 { logger.info("pruned \(pruned) finished job(s)") }
        } catch {
            logger.error("prune failed", metadata: ["error": "\(error)"])
        }
    }

    private func sampleStats() async {
        do {
            let stats = try await store.queueStats()
            metrics.sample(stats)
        } catch {
            logger.debug("cannot sample queue stats", metadata: ["error": "\(error)"])
        }
    }
}

/// The worker's swift-metrics instruments (served in Prometheus text by `--metrics-port`).
struct WorkerMetrics: Sendable {
    func outcome(queue: String, kind: String, outcome: String) {
        Counter(label: "callrec_jobs_total", dimensions: [("queue", queue), ("kind", kind), ("outcome", outcome)]).increment()
    }

    func ran(queue: String, kind: String, duration: Duration) {
        Metrics.Timer(label: "callrec_job_duration_seconds", dimensions: [("queue", queue), ("kind", kind)])
            .recordNanoseconds(Int64(duration.seconds * 1e9))
    }

    func waited(queue: String, kind: String, seconds: Double) {
        Metrics.Timer(label: "callrec_job_wait_seconds", dimensions: [("queue", queue), ("kind", kind)])
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    func rescued(requeued: Int, discarded: Int) {
        Counter(label: "callrec_jobs_rescued_total", dimensions: [("result", "requeued")]).increment(by: requeued)
        Counter(label: "callrec_jobs_rescued_total", dimensions: [("result", "discarded")]).increment(by: discarded)
    }

    func sample(_ stats: QueueStats) {
        for state in JobState.allCases {
            Gauge(label: "callrec_jobs", dimensions: [("state", state.rawValue)]).record(stats[state])
        }
        for queue in Set(stats.byQueue.keys).union(stats.dueByQueue.keys) {
            Gauge(label: "callrec_queue_depth", dimensions: [("queue", queue)]).record(stats.dueByQueue[queue] ?? 0)
        }
        Gauge(label: "callrec_oldest_available_age_seconds").record(stats.oldestDueSeconds ?? 0)
    }
}

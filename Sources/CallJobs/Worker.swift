public import CallStore
import CallSupport
import Foundation
public import Logging
import Metrics
public import ServiceLifecycle
import Synchronization

/// Runs jobs from the store until stopped (DESIGN §5; research/queue-and-reconcile.md §(2)).
///
/// - Each queue has its own slots (transcode = CPU cores; upload and delete separate), and claims
///   in batches of its free slots; a queue with ``WorkerConfiguration/backpressure`` claims only
///   while its downstream queue has room.
/// - Every running job holds a lease that one heartbeat statement per interval extends; a job
///   whose lease was lost is cancelled at once (another worker owns it now), and every state
///   change is fenced by the lease's token.
/// - A job whose lease the store has not renewed for 3/4 of its TTL (a database that does not
///   answer: a restart, a partition) is cancelled before the lease runs out, so that this worker
///   causes no side effect once another may own the job; its outcome is then not recorded.
/// - A rescuer returns jobs of dead workers; a pruner deletes old finished rows.
/// - Graceful shutdown (SIGTERM/SIGINT through swift-service-lifecycle) stops claiming, waits up
///   to ``WorkerConfiguration/shutdownGrace`` for running jobs, then cancels and *releases* them
///   (no attempt used). ``stopNow()`` (the second signal) releases at once.
/// - A claim that fails, or a job that meets a full disk, pauses claiming from that queue with
///   ``WorkerConfiguration/pauseBackoff`` (longer each time in a row), never a loop on a broken
///   store. A run that ends when idle stops at a full disk instead.
/// - A job that fails with ``JobFailure/Disposition/halt`` (this process cannot run it: its
///   credentials were refused) is released and the worker shuts down the same way.
///   ``WorkerSummary/stop`` says why a worker stopped on its own (``WorkerStop``).
/// - Finished jobs are reported to ``events()`` streams (progress) and counted in ``summary``.
///
/// Every interval, pause and grace period is measured on `clock` (``ContinuousClock`` in
/// production; tests move a manual clock).
public final class Worker<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// A queue that does not claim for a while, and how many failures in a row put it there.
    private struct Pause {
        /// Claims that failed in a row (a claim that works ends the streak).
        var claimFailures = 0
        /// Jobs that met a full disk in a row (a job that completes ends the streak).
        var fullDisks = 0
        var until: C.Instant?
    }

    private enum PauseReason { case claimFailed, diskFull }

    private struct Running {
        var task: Task<Void, any Error>
        var queue: QueueName
        var kind: JobKind
        var lost = false
        var interrupted = false
        /// When the store was last asked to extend the lease and did (the instant the request
        /// left: the lease runs out no sooner than a TTL after it).
        var renewedAt: C.Instant
    }

    private struct State {
        var running: [Lease: Running] = [:]
        var stopping = false
        var idle = false
        var summary = WorkerSummary()
        var lastHeartbeat: C.Instant
        var pauses: [QueueName: Pause] = [:]
        /// ``holdOpen()`` holds not yet released.
        var holds = 0
        var subscribers: [UInt64: AsyncStream<WorkerEvent<C.Instant>>.Continuation] = [:]
        var nextSubscriber: UInt64 = 0
        var finished = false
    }

    public let store: any CallStore
    public let configuration: WorkerConfiguration
    public let clock: C
    private let handlers: [JobKind: any JobHandler]
    private let logger: Logger
    private let state: Mutex<State>
    private let wakeup = WakeUp()
    private let metrics: WorkerMetrics

    public init(store: any CallStore, handlers: [any JobHandler], configuration: WorkerConfiguration, clock: C, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.handlers = Dictionary(handlers.map { ($0.kind, $0) }, uniquingKeysWith: { _, last in last })
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.owner)"
        self.logger = logger
        self.metrics = WorkerMetrics()
        self.state = Mutex(State(lastHeartbeat: clock.now))
    }

    /// What the worker did so far (outcomes, rescues, why it stopped).
    public var summary: WorkerSummary { state.withLock { $0.summary } }

    /// Leases of the jobs running now (for tests and diagnostics).
    public var runningLeases: [Lease] { state.withLock { Array($0.running.keys) } }

    /// Every job this worker finishes from now on, with its outcome (progress reporting). The
    /// stream ends when ``run()`` returns; subscribe before it starts to miss none. Events are
    /// buffered until read.
    public func events() -> AsyncStream<WorkerEvent<C.Instant>> {
        let (stream, continuation) = AsyncStream.makeStream(of: WorkerEvent<C.Instant>.self)
        let id = state.withLock { state -> UInt64? in
            guard !state.finished else { return nil }
            state.nextSubscriber += 1
            state.subscribers[state.nextSubscriber] = continuation
            return state.nextSubscriber
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.state.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Keeps a run that ends when idle (``WorkerConfiguration/untilIdle``) from ending while
    /// work is still being added beside it (`callrec upload` registers files while the worker
    /// runs the first ones): take the hold before the worker starts, release it when the last
    /// job is enqueued. Releasing twice is harmless; a hold dropped unreleased is released.
    public func holdOpen() -> Hold {
        state.withLock { $0.holds += 1 }
        return Hold { [weak self] in
            guard let self else { return }
            self.state.withLock { $0.holds -= 1 }
            self.wakeup.signal()
        }
    }

    /// A hold on a worker's run (``holdOpen()``).
    public final class Hold: Sendable {
        private let onRelease: Mutex<(@Sendable () -> Void)?>

        init(_ onRelease: @escaping @Sendable () -> Void) {
            self.onRelease = Mutex(onRelease)
        }

        /// The work the hold stood for is all enqueued.
        public func release() {
            let action = onRelease.withLock { action in
                defer { action = nil }
                return action
            }
            action?()
        }

        deinit { release() }
    }

    // MARK: - Service

    public func run() async throws {
        defer { finishEvents() }
        logger.info("worker started", metadata: [
            "store": "\(store.location)",
            "slots": "\(configuration.slots.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
        ])
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { maintenance in
                maintenance.addTask { await self.every(self.configuration.heartbeatInterval ?? self.configuration.leaseTTL / 3) { await self.heartbeat() } }
                // Apart from the heartbeat, which may hang on a store that does not answer.
                maintenance.addTask { await self.every(max(self.configuration.leaseTTL / 12, .milliseconds(10))) { self.stopUnrenewed() } }
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
        logger.info("worker stopped", metadata: [
            "outcomes": "\(summary.outcomeNames.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))",
        ])
    }

    private func finishEvents() {
        let subscribers = state.withLock { state in
            state.finished = true
            defer { state.subscribers.removeAll() }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.finish() }
    }

    /// Stops claiming; running jobs get ``WorkerConfiguration/shutdownGrace`` to finish, then
    /// they are cancelled and released.
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
            try? await clock.sleep(for: grace)
            self.interruptAll(reason: "shutdown grace period over")
        }
    }

    /// How `failure` stops this worker, if it does: a job it cannot run
    /// (``JobFailure/Disposition/halt``), or, in a run that ends when idle, a service it cannot
    /// reach.
    private func halts(_ failure: JobFailure) -> WorkerStop? {
        switch failure.disposition {
        case .halt: .halted(failure)
        case .unavailable where configuration.untilIdle: .unavailable(failure)
        default: nil
        }
    }

    /// Stops claiming for good because of `stop` (the first one is kept); running jobs finish or
    /// are released as at a shutdown.
    private func stop(_ stop: WorkerStop) {
        let first = state.withLock { state -> Bool in
            guard state.summary.stop == nil else { return false }
            state.summary.stop = stop
            return true
        }
        if case .diskFull(let failure) = stop {
            guard first else { return }
            stopClaiming { logger.error("stopping: \(failure.code): \(failure.message); running jobs get \($0) to finish", metadata: [:]) }
        } else {
            if first { logger.info("stopping: \(stop.failure.message)") }
            beginShutdown()
        }
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

    private func runningCount(queue: QueueName) -> Int {
        state.withLock { $0.running.values.filter { $0.queue == queue }.count }
    }

    /// How many jobs of `queue` its ``WorkerConfiguration/backpressure`` admits now (nil: no
    /// limit, or the store cannot say).
    private func admitted(_ queue: QueueName) async -> Int? {
        guard let backpressure = configuration.backpressure[queue], let stats = try? await store.queueStats() else { return nil }
        return backpressure.admits(stats)
    }

    private func claimLoop(queue: QueueName, slots: Int) async {
        await withDiscardingTaskGroup { jobs in
            while !isStopping {
                if isPaused(queue) {
                    await wakeup.wait()
                    continue
                }
                var free = slots - runningCount(queue: queue)
                if free > 0, let limit = await admitted(queue) {
                    free = min(free, limit)
                    if free <= 0, configuration.untilIdle, await checkIdle() { break }
                }
                if free <= 0 {
                    await wakeup.wait()
                    continue
                }
                let claimed: [Job]
                let asked = clock.now
                do {
                    claimed = try await store.claim(queue: queue.rawValue, limit: free, owner: configuration.owner, leaseTTL: configuration.leaseTTL)
                    state.withLock { $0.pauses[queue]?.claimFailures = 0 }
                } catch is CancellationError {
                    break
                } catch {
                    state.withLock { $0.summary.claimFailures += 1 }
                    let failure = JobFailure(error)
                    if case .diskFull = failure.disposition, configuration.untilIdle {
                        stop(.diskFull(failure))
                        break
                    }
                    let pause = pause(queue, .claimFailed)
                    logger.error("claim failed; trying again in \(pause.shown)", metadata: ["queue": "\(queue)", "error": "\(error)"])
                    continue
                }
                for job in claimed {
                    guard let lease = job.lease else { continue }
                    // Registered before the child starts, so the slot count and the heartbeat see it.
                    let task = makeTask(for: job)
                    state.withLock { $0.running[lease] = Running(task: task, queue: queue, kind: job.jobKind, renewedAt: asked) }
                    jobs.addTask { await self.finish(job, lease: lease, task: task) }
                }
                if claimed.isEmpty {
                    if configuration.untilIdle, await checkIdle() { break }
                    await wakeup.wait()
                }
            }
        }
    }

    /// Until-idle: nothing running here, no hold held, nothing due or running in the store (jobs
    /// leased by a dead worker count as running until the rescuer frees them), and nothing a
    /// handler put off until now.
    private func checkIdle() async -> Bool {
        if state.withLock({ !$0.running.isEmpty || $0.holds > 0 }) { return false }
        /// Whether a served queue has a job running, or one due that may be claimed.
        func busy(_ stats: QueueStats) -> Bool {
            for queue in configuration.slots.filter({ $0.value > 0 }).keys {
                if (stats.byQueue[queue.rawValue]?[.running] ?? 0) > 0 { return true }
                // Due jobs that back-pressure holds (the spool is full of transcoded recordings
                // whose uploads wait for a budget reset) cannot run until those uploads do: when
                // nothing else is due or running, they wait for the next run.
                if (stats.dueByQueue[queue.rawValue] ?? 0) > 0 {
                    if let backpressure = configuration.backpressure[queue], backpressure.admits(stats) <= 0 { continue }
                    return true
                }
            }
            return false
        }
        do {
            // One snapshot: a job that becomes due between two reads must not look like none.
            var now = try await store.now()
            var stats = try await store.queueStats()
            if busy(stats) { return false }
            // Work put off by the handlers until the run has nothing else to do.
            var woke = false, waiting = false
            let context = JobContext(logger: logger, store: store, owner: configuration.owner)
            for kind in handlers.keys.sorted() {
                switch try await handlers[kind]!.whenIdle(horizon: configuration.idleHorizon, context: context) {
                case .nothing: break
                case .waiting: waiting = true
                case .woke: woke = true
                }
            }
            if woke { wakeup.signal() }
            if woke || waiting { return false }
            // Work added meanwhile (a hold released after its last enqueue, a handler that
            // enqueued): look again.
            if state.withLock({ $0.holds > 0 }) { return false }
            now = try await store.now()
            stats = try await store.queueStats()
            if busy(stats) { return false }
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

    private func isPaused(_ queue: QueueName) -> Bool {
        let now = clock.now
        return state.withLock { state in
            guard let until = state.pauses[queue]?.until else { return false }
            if now >= until { state.pauses[queue]?.until = nil }
            return now < until
        }
    }

    /// Pauses claiming from `queue`, longer for each failure of that kind in a row; returns for
    /// how long.
    private func pause(_ queue: QueueName, _ reason: PauseReason) -> Duration {
        let now = clock.now
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
            pause.until = now.advanced(by: length)
            state.pauses[queue] = pause
            return length
        }
    }

    /// A full disk met by a job of `queue` (or by the store when recording its outcome): a run
    /// that ends when idle stops; a long-running worker pauses the queue.
    private func diskFull(_ failure: JobFailure, queue: QueueName) {
        if configuration.untilIdle {
            stop(.diskFull(failure))
            return
        }
        let pause = pause(queue, .diskFull)
        logger.error("the disk is full; the \(queue) queue pauses for \(pause.shown)", metadata: ["error": "\(failure.message)"])
    }

    // MARK: - Running one job

    private func makeTask(for job: Job) -> Task<Void, any Error> {
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        logger[metadataKey: "lease"] = "\(job.leaseToken ?? 0)"
        let context = JobContext(logger: logger, store: store, owner: configuration.owner)
        let handler = handlers[job.jobKind]
        return Task {
            guard let handler else {
                throw JobFailure(.permanent, code: "unknown_kind", "no handler for job kind \"\(job.kind)\"")
            }
            try await handler.run(job, context: context)
        }
    }

    private func finish(_ job: Job, lease: Lease, task: Task<Void, any Error>) async {
        let started = clock.now
        metrics.waited(queue: job.queue, kind: job.kind, seconds: max(0, Date().timeIntervalSince(job.runAt)))
        let result = await task.result
        metrics.ran(queue: job.queue, kind: job.kind, duration: started.duration(to: clock.now))
        // Before its slot frees, so that nothing else of the queue is claimed meanwhile: a full
        // disk pauses (or stops) claiming, and a job this process cannot run stops it.
        if case .failure(let error) = result {
            let failure = JobFailure(error)
            if case .diskFull = failure.disposition { diskFull(failure, queue: job.queueName) }
            if let stop = halts(failure) { self.stop(stop) }
        }
        let running = state.withLock { $0.running.removeValue(forKey: lease) }
        defer { wakeup.signal() }
        var logger = self.logger
        logger[metadataKey: "job_id"] = "\(job.id)"
        logger[metadataKey: "kind"] = "\(job.kind)"
        logger[metadataKey: "attempt"] = "\(job.attempt)"
        if running?.lost == true {
            record(job, .leaseLost)
            logger.warning("job stopped: its lease was lost, another worker owns it now")
            return
        }
        // Store calls run in their own task: a cancelled job's release must still reach the database.
        let store = self.store, configuration = self.configuration
        let outcome: JobOutcome
        do {
            outcome = try await Task { () async throws -> JobOutcome in
                switch result {
                case .success:
                    return try await store.complete(lease) ? .completed : .leaseLost
                case .failure(let error):
                    if running?.interrupted == true || error is CancellationError {
                        return try await store.release(lease, reason: "interrupted: \(running?.interrupted == true ? "shutdown" : "cancelled")") ? .released : .leaseLost
                    }
                    let failure = JobFailure(error)
                    var disposition = failure.disposition
                    if disposition == .unavailable { disposition = configuration.untilIdle ? .halt : .transient }
                    switch disposition {
                    case .halt, .unavailable:
                        // Available again at once, no attempt used: a run that can take it does.
                        return try await store.release(lease, reason: failure.description) ? .halted : .leaseLost
                    case .permanent:
                        let state = try await store.fail(lease, error: failure.description, permanent: true, retryIn: .zero)
                        return state == nil ? .leaseLost : .discarded
                    case .transient:
                        let delay = configuration.backoff.delay(afterAttempt: job.attempt)
                        let state = try await store.fail(lease, error: failure.description, permanent: false, retryIn: delay)
                        return state.map { $0 == .discarded ? .discarded : .retried } ?? .leaseLost
                    case .snooze(let delay):
                        let state = try await store.snooze(lease, delay: delay, reason: failure.description, maxSnoozes: configuration.maxSnoozes)
                        return state.map { $0 == .discarded ? .discarded : .snoozed } ?? .leaseLost
                    case .snoozeUntil(let instant):
                        let state = try await store.snooze(lease, delay: .zero, notBefore: instant, reason: failure.description,
                                                           maxSnoozes: configuration.maxSnoozes)
                        return state.map { $0 == .discarded ? .discarded : .snoozed } ?? .leaseLost
                    case .diskFull:
                        // Never the job's fault: no attempt used, and no number of them discards it.
                        let delay = configuration.backoff.delay(afterAttempt: job.snoozeCount + 1)
                        let state = try await store.snooze(lease, delay: delay, reason: failure.description, maxSnoozes: Int(Int32.max))
                        return state == nil ? .leaseLost : .snoozed
                    }
                }
            }.value
        } catch {
            // The lease expires and the rescuer returns the job; nothing is lost.
            logger.error("cannot record the job's outcome; the rescuer will return it", metadata: ["error": "\(error)"])
            record(job, .unrecorded)
            let failure = JobFailure(error)
            if case .diskFull = failure.disposition { diskFull(failure, queue: job.queueName) }
            return
        }
        record(job, outcome)
        if outcome == .completed { state.withLock { $0.pauses[job.queueName]?.fullDisks = 0 } }
        switch outcome {
        case .completed: logger.debug("job completed")
        case .leaseLost: logger.warning("job finished but its lease was lost; its outcome was not recorded (another worker owns it)")
        case .released: logger.info("job released for another run (no attempt used)")
        default:
            if case .failure(let error) = result {
                logger.warning("job \(outcome.rawValue)", metadata: ["error": "\(error)"])
            }
        }
    }

    private func record(_ job: Job, _ outcome: JobOutcome) {
        let subscribers = state.withLock { state in
            state.summary.outcomes[outcome, default: 0] += 1
            return Array(state.subscribers.values)
        }
        metrics.outcome(queue: job.queue, kind: job.kind, outcome: outcome.rawValue)
        let event = WorkerEvent(job: job, outcome: outcome, at: clock.now)
        for subscriber in subscribers { subscriber.yield(event) }
    }

    // MARK: - Maintenance

    private func every(_ interval: Duration, immediately: Bool = false, _ body: @Sendable () async -> Void) async {
        if immediately, !Task.isCancelled { await body() }
        while !Task.isCancelled {
            do { try await clock.sleep(for: interval) } catch { return }
            await body()
        }
    }

    private func heartbeat() async {
        let leases = state.withLock { Array($0.running.keys) }
        let now = clock.now
        guard !leases.isEmpty else {
            state.withLock { $0.lastHeartbeat = now }
            return
        }
        let store = self.store, ttl = configuration.leaseTTL
        do {
            // Walked away from when the worker stops: a store that does not answer must not hold it.
            let held = try await Task { try await store.heartbeat(leases, leaseTTL: ttl) }.valueUnlessCancelled()
            let answered = clock.now
            state.withLock { state in
                state.lastHeartbeat = answered
                for lease in held where state.running[lease] != nil { state.running[lease]?.renewedAt = now }
            }
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
        } catch is CancellationError {
            return
        } catch {
            let now = clock.now
            let since = state.withLock { $0.lastHeartbeat.duration(to: now) }
            logger.error("heartbeat failed", metadata: ["error": "\(error)", "since_last": "\(since)"])
        }
    }

    /// Cancels the jobs whose leases the store has not renewed for 3/4 of the TTL: they run out
    /// soon (or did), and another worker may then run the job; nothing this worker does for them
    /// may reach an API or the store after that. Their outcome is not recorded (the rescuer
    /// returns them), as for a lease found lost.
    private func stopUnrenewed() {
        let now = clock.now, limit = configuration.leaseTTL * 3 / 4
        let stopped = state.withLock { state -> [(Task<Void, any Error>, Duration)] in
            var stopped: [(Task<Void, any Error>, Duration)] = []
            for (lease, running) in state.running where !running.lost {
                let age = running.renewedAt.duration(to: now)
                guard age > limit else { continue }
                state.running[lease]?.lost = true
                stopped.append((running.task, age))
            }
            return stopped
        }
        guard let oldest = stopped.map(\.1).max() else { return }
        for (task, _) in stopped { task.cancel() }
        logger.error("the store has not renewed the lease of \(stopped.count) job(s) for \(oldest.shown) (a lease lasts \(configuration.leaseTTL.shown)); stopped them before it runs out: another worker may run them")
    }

    /// Owners of running leases that are processes of this host which no longer exist (a
    /// `kill -9`ed run): their leases need not run out before the jobs go back.
    private func deadLocalOwners() async throws -> [String] {
        let running = try await store.jobs(JobQuery(states: [.running], limit: 100_000))
        let space = WorkerConfiguration.pidSpace
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
                    record(job, .discarded)
                    guard let handler = handlers[job.jobKind] else { continue }
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

extension Worker where C == ContinuousClock {
    /// A worker on the continuous clock (production).
    public convenience init(store: any CallStore, handlers: [any JobHandler], configuration: WorkerConfiguration, logger: Logger) {
        self.init(store: store, handlers: handlers, configuration: configuration, clock: ContinuousClock(), logger: logger)
    }
}

public import CallAPI
public import CallJobs
public import CallPipeline
import CallStore
import CallSupport
import Foundation
public import Logging

/// `callrec upload DIR`: registration beside the worker that transcodes and uploads what is
/// registered, the report from the ledger, then the spool prune.
public struct UploadSession: Sendable {
    public var directory: String
    public var store: StoreSettings
    public var options: UploadRun.Options
    /// Remove uploaded recordings' MP3s this long after their upload (nil: keep).
    public var spoolRetention: Duration?

    public init(directory: String, store: StoreSettings, options: UploadRun.Options, spoolRetention: Duration?) {
        self.directory = directory
        self.store = store
        self.options = options
        self.spoolRetention = spoolRetention
    }

    /// What the run did, what it cost at the API, and what stopped it early.
    public struct Outcome: Sendable {
        public var report: BatchReport
        public var counters: PipedriveLimiter.Counters
        /// A refused token or an unreachable API stopped the run.
        public var halted: JobFailure?
        /// What the spool prune after the run removed (nil: no prune, or it failed and logged why).
        public var pruned: SpoolPrune.Report?
    }

    /// The whole run. `progress` hears of registration and of each recording's end; `runWorker`
    /// runs the worker (the CLI's signal handling).
    public func run(environment: APIEnvironment, logger: Logger, progress: @escaping @Sendable (TranscodeBatch.Event) -> Void,
                    runWorker: RunWorker) async throws -> Outcome {
        guard environment.pipedriveToken != nil else {
            throw AppError(.usage, "PIPEDRIVE_API_TOKEN is not set (or use --sandbox to try callrec without an account)")
        }
        let clock = ContinuousClock(), started = clock.now
        return try await APIClients.with(environment: environment, logger: logger) { clients in
            guard let client = clients.pipedrive else { throw AppError(.usage, "PIPEDRIVE_API_TOKEN is not set") }
            return try await self.store.withStore(creating: true, logger: logger) { store in
                try await clients.recordingPipedriveSpend(to: store, logger: logger) {
                    try await run(store: store, client: client, started: started, logger: logger, progress: progress, runWorker: runWorker)
                }
            }
        }
    }

    private func run(store: any CallStore, client: PipedriveClient, started: ContinuousClock.Instant, logger: Logger,
                     progress: @escaping @Sendable (TranscodeBatch.Event) -> Void, runWorker: RunWorker) async throws -> Outcome {
        if let matching = options.matching {
            // The index as the run starts: built, or refreshed when due (no request otherwise).
            do {
                try await CRMIndexSync(store: store, client: client, settings: matching.indexSettings, logger: logger).refreshIfDue()
            } catch {
                logger.error("the CRM index could not be refreshed; uploads wait for a built index", metadata: ["error": "\(error)"])
            }
        }
        let run = UploadRun(root: directory, store: store, spool: Spool(root: self.store.spoolDirectory), client: client,
                            options: options, logger: logger)
        let pool = CPUPool(threads: options.jobs)
        defer { pool.shutdown() }
        // Registration (fingerprinting every file) runs beside the worker, which starts on the
        // first recordings registered instead of after the last.
        // Its hold keeps the worker from ending before the last recording is registered.
        let worker = run.worker(pool: pool)
        let registering = worker.holdOpen()
        let registrationTask = Task { [excluded = self.store.state] in
            defer { registering.release() }
            let registration = try await run.register(excluding: [excluded])
            progress(.started(files: registration.files.count))
            for file in registration.files where file.status != .ok {
                progress(.finished(file, audioSeconds: 0))
            }
            return registration
        }
        // A recording is done when its upload completes, or when a job of it is discarded.
        let events = worker.events()
        let progressTask = Task {
            for await event in events {
                let final = (event.job.jobKind == UploadJobHandler.kind && event.outcome == .completed) || event.outcome == .discarded
                guard final else { continue }
                let status: FileReport.Status = event.outcome == .completed ? .ok : .failed
                progress(.finished(FileReport(path: "", key: nil, status: status, error: nil, warnings: [], input: nil, stats: nil, parts: []), audioSeconds: 0))
            }
        }
        // Also with nothing new: jobs of an earlier run may be waiting (a retry, a snooze).
        do {
            try await runWorker(worker)
        } catch {
            registrationTask.cancel()
            _ = try? await registrationTask.value
            await progressTask.value
            throw error
        }
        let registration = try await registrationTask.value
        await progressTask.value
        let report = try await run.report(registration: registration, wallSeconds: (ContinuousClock.now - started).seconds,
                                          stop: worker.summary.stop)
        let counters = await client.counters
        let pruned = await pruneSpool(store: store, logger: logger)
        return Outcome(report: report, counters: counters, halted: worker.summary.halted, pruned: pruned)
    }

    /// Removes the MP3s of recordings uploaded longer ago than the retention; a failure only
    /// warns (the run's work is done).
    private func pruneSpool(store: any CallStore, logger: Logger) async -> SpoolPrune.Report? {
        guard let spoolRetention else { return nil }
        do {
            return try await SpoolPrune(spool: Spool(root: self.store.spoolDirectory), store: store, actor: "upload").run(olderThan: spoolRetention)
        } catch {
            logger.warning("spool prune failed", metadata: ["error": "\(error)"])
            return nil
        }
    }
}

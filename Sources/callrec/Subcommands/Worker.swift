import ArgumentParser
import CallApp
import CallPipeline
import Foundation

extension CallRecCommand {
    struct Worker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run jobs from the queue until stopped (SIGTERM/SIGINT drain; a second signal releases at once).",
            discussion: """
                Several workers, on one machine or several sharing a PostgreSQL --database, run one \
                queue safely: each job is leased, heartbeated and fenced, and a job whose worker died \
                runs again after its lease expires (60 s) and the rescuer sees it (every 15 s). A \
                credential an API refuses stops the worker (exit 2, naming the variable; the job is \
                available again). Without PIPEDRIVE_API_TOKEN the upload and delete queues are not \
                served: --until-idle then exits 2 when jobs are left on them, unless --upload-slots 0 \
                / --delete-slots 0 leave them to other workers on purpose. --until-idle exit codes: \
                0 done, 1 a job was discarded, 2 as above, 3 an API could not be reached (its jobs \
                wait for the next run).
                """
        )

        @Option(help: "Transcode slots (CPU-bound). Default: the number of cores.")
        var concurrency: Int = ProcessInfo.processInfo.activeProcessorCount
        @Option(help: "Upload slots (network-bound).")
        var uploadSlots: Int = 4
        @Option(help: "Delete slots.")
        var deleteSlots: Int = 2
        @Flag(help: "Exit once no job is due or running (jobs leased by a dead worker count as running until rescued).")
        var untilIdle = false
        @Option(help: "With --until-idle: a job that becomes due within this many seconds (a retry, a snooze) is waited for.")
        var idleHorizon: Double = 300
        @Option(help: "Serve Prometheus metrics on this port (/metrics); 0 picks a free one and logs it.")
        var metricsPort: Int?
        @Option(help: "Address for --metrics-port.")
        var metricsAddress: String = "127.0.0.1"
        @Option(help: "Seconds a job's lease lasts without a heartbeat (heartbeats every third of it).")
        var leaseTtl: Double = 60
        @Option(help: "Seconds between rescues of jobs whose lease expired.")
        var rescueInterval: Double = 15
        @Option(help: "Seconds running jobs get to finish after SIGTERM before they are released.")
        var shutdownGrace: Double = 25
        @Option(help: "Seconds between looks for new work when no notification came.")
        var pollInterval: Double = 1
        @Option(help: ArgumentHelp(
            "Run a reconcile pass (apply, default caps, never --force) at start and then every this long: 1h, 30m, 1d. Needs PIPEDRIVE_API_TOKEN.",
            discussion: "With several workers sharing a queue, give this to one of them."))
        var reconcileEvery: String?

        @OptionGroup var store: StoreOptions
        @OptionGroup var retention: SpoolRetentionOptions
        @OptionGroup var global: GlobalOptions
        @OptionGroup(title: "Transcode and chunk") var transcode: TranscodeOptions
        @OptionGroup(title: "Validation") var validation: ValidationOptions

        func validate() throws {
            guard concurrency >= 0, uploadSlots >= 0, deleteSlots >= 0 else { throw ValidationError("slots must not be negative") }
            guard concurrency + uploadSlots + deleteSlots > 0 else { throw ValidationError("no slots: the worker would run nothing") }
            guard leaseTtl >= 0.3, rescueInterval > 0, shutdownGrace >= 0, pollInterval > 0 else {
                throw ValidationError("--lease-ttl, --rescue-interval and --poll-interval must be positive")
            }
            if let reconcileEvery {
                guard let every = parseAge(reconcileEvery), every >= .seconds(1) else {
                    throw ValidationError("--reconcile-every \(reconcileEvery) is not an interval of a second or more (1h, 30m, 1d)")
                }
            }
        }

        func run() async throws {
            let logger = global.makeLogger()
            var service = WorkerService(concurrency: concurrency, uploadSlots: uploadSlots, deleteSlots: deleteSlots)
            service.leaseTTL = .seconds(leaseTtl)
            service.rescueInterval = .seconds(rescueInterval)
            service.shutdownGrace = .seconds(shutdownGrace)
            service.pollInterval = .seconds(pollInterval)
            service.untilIdle = untilIdle
            service.idleHorizon = .seconds(idleHorizon)
            service.metrics = metricsPort.map { (address: metricsAddress, port: $0) }
            service.spoolRetention = try retention.retention()
            service.reconcileEvery = reconcileEvery.flatMap(parseAge)
            service.settings = try transcode.settings()
            service.validation = validation.configuration()
            let outcome = try await service.run(store: store.settings, environment: try APIClients.environment(config: nil), logger: logger,
                first: { logger.notice("\($0): finishing running jobs (send it again to release them at once)") },
                again: { logger.notice("\($0) again: releasing running jobs now") })
            let summary = outcome.summary
            try global.emit(outcome.document, [outcome.summaryLine])
            // A refused credential stops the worker: exit 2 (the jobs are available again).
            if let halted = outcome.halted { try stopped(by: halted, left: "Nothing was lost: its jobs are available again for the next worker.") }
            if let stopped = summary.stopped {
                standardError("stopped: \(stopped.message)")
                try fail(ExitStatus.diskFull, if: stopped.code == JobFailure.diskFullCode)
            }
            for line in outcome.unserved { standardError("worker: \(line)") }
            try fail(ExitStatus.usage, if: !outcome.unserved.isEmpty)
            try fail(ExitStatus.someFailed, if: untilIdle && summary["discarded"] > 0)
            // An unreachable API stopped an --until-idle run: its jobs wait for the next one.
            try fail(ExitStatus.waiting, if: untilIdle && outcome.halted != nil)
        }
    }
}

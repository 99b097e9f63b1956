import ArgumentParser
import CallAPI
import CallAudio
import CallPipeline
import CallStore
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

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
        @Option(help: "Slots for the benchmarks' no-op jobs (queue `bench`; 0: not served).")
        var benchSlots: Int = 0
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
            guard concurrency >= 0, uploadSlots >= 0, deleteSlots >= 0, benchSlots >= 0 else { throw ValidationError("slots must not be negative") }
            guard concurrency + uploadSlots + deleteSlots + benchSlots > 0 else { throw ValidationError("no slots: the worker would run nothing") }
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
            let registry = PrometheusCollectorRegistry()
            if metricsPort != nil {
                MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            }
            let settings = try transcode.settings()
            // Deletions need the API clients: built only when credentials are present.
            let environment = try loadEnvironment(config: nil)
            if reconcileEvery != nil, environment.pipedriveToken == nil {
                throw ValidationError("--reconcile-every needs PIPEDRIVE_API_TOKEN")
            }
            // Queues asked for (slots > 0) that this worker cannot serve without credentials: work
            // left on them ends an --until-idle run with exit 2 (`--X-slots 0` leaves it to other
            // workers on purpose).
            var unserved: [(queue: String, option: String)] = []
            var deleteSlots = self.deleteSlots
            if environment.pipedriveToken == nil, deleteSlots > 0 {
                logger.notice("PIPEDRIVE_API_TOKEN is not set: the delete queue is not served by this worker")
                deleteSlots = 0
                unserved.append((JobQueue.delete, "--delete-slots"))
            }
            let store = try await self.store.open(logger: logger, creating: true)
            let wiring = environment.pipedriveToken == nil ? nil : DeleteWiring(environment: environment, logger: logger)
            let pool = CPUPool(threads: max(1, concurrency))
            defer { pool.shutdown() }

            // Uploads need Pipedrive credentials; without them this worker leaves the upload queue
            // to workers that have them (transcodes still enqueue their uploads).
            var uploadSlots = self.uploadSlots
            if wiring?.apis.pipedrive == nil, uploadSlots > 0 {
                logger.notice("PIPEDRIVE_API_TOKEN is not set: the upload queue is not served by this worker")
                uploadSlots = 0
                unserved.append((JobQueue.upload, "--upload-slots"))
            }
            var configuration = CallPipeline.Worker.Configuration(slots: [
                JobQueue.transcode: concurrency, JobQueue.upload: uploadSlots, JobQueue.delete: deleteSlots, JobQueue.bench: benchSlots,
            ])
            configuration.leaseTTL = .seconds(leaseTtl)
            configuration.rescueInterval = .seconds(rescueInterval)
            configuration.shutdownGrace = .seconds(shutdownGrace)
            configuration.pollInterval = .seconds(pollInterval)
            configuration.untilIdle = untilIdle
            configuration.idleHorizon = .seconds(max(0, idleHorizon))
            var handlers: [any JobHandler] = [
                NoopJobHandler(),
                TranscodeJobHandler(spool: Spool(root: self.store.spoolDirectory), settings: settings,
                                    validation: validation.configuration(), pool: pool,
                                    followUp: { key in (try? UploadJobHandler.job(key: key)).map { [$0] } ?? [] }),
            ]
            if let wiring { handlers.append(wiring.handler(store: self.store)) }
            if let pipedrive = wiring?.apis.pipedrive { handlers.append(UploadJobHandler(client: pipedrive)) }
            let worker = CallPipeline.Worker(store: store, handlers: handlers, configuration: configuration, logger: logger)

            var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup),
            ]
            if let metricsPort {
                services.append(.init(service: MetricsServer.application(registry: registry, address: metricsAddress, port: metricsPort, logger: logger)))
            }
            if let age = try retention.retention() {
                let prune = SpoolPrune(spool: Spool(root: self.store.spoolDirectory), store: store, actor: configuration.owner)
                services.append(.init(service: SpoolPruneService(prune: prune, retention: age, logger: logger)))
            }
            if let reconcileEvery, let every = parseAge(reconcileEvery), let wiring {
                let storeForPass = store
                services.append(.init(service: ReconcileService(interval: every, logger: logger) {
                    // Apply with the default caps; never --force unattended.
                    var options = Reconciler.Options()
                    options.apply = true
                    return try await Reconcile.pass(store: storeForPass, wiring: wiring, options: options, logger: logger)
                }))
            }
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))

            do {
                try await runHandlingSignals(group, worker: worker,
                    first: { logger.notice("\($0): finishing running jobs (send it again to release them at once)") },
                    again: { logger.notice("\($0) again: releasing running jobs now") })
            } catch {
                try? await store.close()
                await wiring?.shutdown()
                throw error
            }
            var missing: [String] = []
            if untilIdle, worker.halted == nil, !unserved.isEmpty {
                let stats = try? await store.queueStats()
                for (queue, option) in unserved {
                    let left = stats?.byQueue[queue]?[.available] ?? 0
                    if left > 0 {
                        missing.append("\(left) \(queue) job(s) wait, and this worker cannot run them: PIPEDRIVE_API_TOKEN is not set (set it, or give \(option) 0 to leave them to other workers)")
                    }
                }
            }
            try? await store.close()
            await wiring?.shutdown()
            let summary = worker.summary
            let line = summary.outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            if global.json {
                try writeJSON(["outcomes": summary.outcomes, "rescued": ["count": summary.rescued]])
            } else {
                standardError("worker: \(line.isEmpty ? "no jobs run" : line)")
            }
            // A refused credential stops the worker: exit 2 (the jobs are available again).
            if let halted = worker.halted { try stopped(by: halted, left: "Nothing was lost: its jobs are available again for the next worker.") }
            if let stopped = summary.stopped {
                standardError("stopped: \(stopped.message)")
                if stopped.code == JobFailure.diskFullCode { throw ExitCode(ExitStatus.diskFull) }
            }
            for line in missing { standardError("worker: \(line)") }
            if !missing.isEmpty { throw ExitCode(ExitStatus.usage) }
            if untilIdle, summary["discarded"] > 0 { throw ExitCode(ExitStatus.someFailed) }
            // An unreachable API stopped an --until-idle run: its jobs wait for the next one.
            if untilIdle, worker.halted != nil { throw ExitCode(ExitStatus.waiting) }
        }
    }
}

/// `/metrics` in the Prometheus text format.
enum MetricsServer {
    static func application(registry: PrometheusCollectorRegistry, address: String, port: Int, logger: Logger) -> some Service {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        var quiet = logger
        quiet.logLevel = .warning
        // With --metrics-port 0 the kernel picks the port; the log line says which.
        return Application(router: router, configuration: .init(address: .hostname(address, port: port)),
                           onServerRunning: { channel in
                               let bound = channel.localAddress?.port ?? port
                               logger.notice("metrics served at http://\(address):\(bound)/metrics", metadata: ["port": "\(bound)"])
                           },
                           logger: quiet)
    }
}

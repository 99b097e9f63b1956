import AsyncHTTPClient
public import CallAPI
public import CallAudio
public import CallConsole
public import CallJobs
public import CallMatch
public import CallPipeline
public import CallSources
import CallStore
import CallSupport
public import CallTelnyx
import Foundation
import Hummingbird
public import Logging
import Metrics
import Prometheus
import ServiceLifecycle
public import UnixSignals

/// `callrec worker`: the worker with its slots and timings, beside the services that run with it
/// (metrics, the spool prune, the reconcile pass), in one service group.
public struct WorkerService: Sendable {
    public var concurrency: Int
    public var uploadSlots: Int
    public var deleteSlots: Int
    /// Slots of further queues, run by ``extraHandlers`` (the benchmarks' no-op jobs).
    public var extraSlots: [QueueName: Int] = [:]
    public var extraHandlers: [any JobHandler] = []
    public var leaseTTL: Duration = .seconds(60)
    public var rescueInterval: Duration = .seconds(15)
    public var shutdownGrace: Duration = .seconds(25)
    public var pollInterval: Duration = .seconds(1)
    public var untilIdle = false
    public var idleHorizon: Duration = .seconds(300)
    /// Serve Prometheus metrics at this address and port (0: a free one, logged).
    public var metrics: (address: String, port: Int)?
    /// Remove uploaded recordings' MP3s this long after their upload (nil: keep).
    public var spoolRetention: Duration?
    /// Run a reconcile pass (apply, default caps, never force) at start and then this often.
    public var reconcileEvery: Duration?
    public var settings = TranscodeSettings()
    public var validation = ValidationConfiguration()
    /// PBX sources watched while the worker runs (`--watch DIR`, the config file's sources); with
    /// ``untilIdle`` each is looked at once (CDR files read, tree scanned) before the jobs run.
    public var sources: [SourceSettings] = []
    /// When a watched file counts as written to its end.
    public var settle = Settle()
    /// Serve the Telnyx webhook endpoint, /healthz and /metrics here (`--listen HOST:PORT`; port
    /// 0: a free one, logged). Needs ``telnyx``'s public key.
    public var listen: (address: String, port: Int)?
    /// With ``listen``: serve the operator's console there too (`CALLREC_CONSOLE_PASSWORD` or
    /// `console.password_file`; nil: no console).
    public var consolePassword: ConsolePassword?
    /// The Telnyx source (webhooks verified with its public key; recordings fetched and logged).
    public var telnyx: TelnyxSettings?
    /// Slots of the fetch queue (Telnyx downloads: network-bound).
    public var fetchSlots = 4
    /// Links each call log from the CRM index, kept fresh by a ``CRMIndexService`` in the group
    /// (issue 17); nil: no matching.
    public var matching: MatchSettings?

    public init(concurrency: Int, uploadSlots: Int, deleteSlots: Int) {
        self.concurrency = concurrency
        self.uploadSlots = uploadSlots
        self.deleteSlots = deleteSlots
    }

    /// How the worker ended.
    public struct Outcome: Sendable {
        public var summary: WorkerSummary
        /// Jobs left on queues this worker was asked to serve and could not (no credentials),
        /// one line each (with `untilIdle` only).
        public var unserved: [String]
        /// With ``untilIdle`` and sources: what their one look left (failed and waiting files).
        public var watched: WatchService.Look
        /// With ``untilIdle``: jobs left waiting for a later time, as one line (empty: none).
        public var later: [String] = []
        /// A refused credential or an unreachable API stopped it.
        public var halted: JobFailure? { summary.halted }
    }

    /// Runs the worker until it returns (`untilIdle`) or a signal stops it: `first` and `again`
    /// hear of the first and a further SIGTERM/SIGINT.
    public func run(store settings: StoreSettings, environment: APIEnvironment, logger: Logger,
                    first: @escaping @Sendable (UnixSignal) -> Void, again: @escaping @Sendable (UnixSignal) -> Void) async throws -> Outcome {
        if reconcileEvery != nil, environment.pipedriveToken == nil {
            throw AppError(.usage, "--reconcile-every needs PIPEDRIVE_API_TOKEN")
        }
        // The webhook endpoint's key first: a bad one exits 2 before anything runs. Without one,
        // --listen serves /healthz and /metrics, and the webhook endpoint answers 503.
        let verifier = try listen.flatMap { _ in telnyx?.publicKey?.isEmpty == false ? try Self.verifier(telnyx) : nil }
        if listen != nil, verifier == nil {
            logger.notice("TELNYX_PUBLIC_KEY is not set: --listen serves /healthz and /metrics; POST \(WebhookServer.webhookPath) answers 503 until it is set")
        }
        let registry = Self.registry
        if metrics != nil || listen != nil { Self.bootstrapMetrics() }
        // Queues asked for (slots > 0) that this worker cannot serve without credentials: work
        // left on them ends an --until-idle run with exit 2 (`--X-slots 0` leaves it to other
        // workers on purpose). Uploads and deletions need Pipedrive credentials; without them this
        // worker leaves those queues to workers that have them (transcodes still enqueue uploads).
        var unserved: [(queue: QueueName, option: String)] = []
        var deleteSlots = self.deleteSlots, uploadSlots = self.uploadSlots
        if environment.pipedriveToken == nil {
            if deleteSlots > 0 {
                logger.notice("PIPEDRIVE_API_TOKEN is not set: the delete queue is not served by this worker")
                deleteSlots = 0
                unserved.append((QueueName.delete, "--delete-slots"))
            }
        }
        return try await settings.withStore(creating: true, logger: logger) { store in
            // Telnyx downloads need the HTTP client even without any API credentials (the links
            // are pre-signed).
            try await APIClients.with(environment: environment, alwaysHTTP: true, logger: logger) { clients in
                if clients.pipedrive == nil, uploadSlots > 0 {
                    logger.notice("PIPEDRIVE_API_TOKEN is not set: the upload queue is not served by this worker")
                    uploadSlots = 0
                    unserved.append((QueueName.upload, "--upload-slots"))
                }
                let pool = CPUPool(threads: max(1, concurrency))
                defer { pool.shutdown() }
                var configuration = WorkerConfiguration(slots: extraSlots.merging([
                    QueueName.transcode: concurrency, QueueName.upload: uploadSlots, QueueName.delete: deleteSlots, QueueName.fetch: fetchSlots,
                ]) { $1 })
                configuration.leaseTTL = leaseTTL
                configuration.rescueInterval = rescueInterval
                configuration.shutdownGrace = shutdownGrace
                configuration.pollInterval = pollInterval
                configuration.untilIdle = untilIdle
                configuration.idleHorizon = max(.zero, idleHorizon)
                // Registration hashes a watched file once; its transcode in this process does not again.
                let fingerprints = Fingerprints()
                var handlers = extraHandlers + [
                    TranscodeJobHandler(spool: Spool(root: settings.spoolDirectory), settings: self.settings, validation: validation, pool: pool,
                                        fingerprints: fingerprints, followUp: UploadJobHandler.followUp) as any JobHandler,
                ]
                // Always: a worker without --listen runs the fetch jobs other workers received.
                handlers.append(TelnyxFetchJobHandler(settings: telnyx ?? TelnyxSettings(), client: clients.apis.telnyx, http: clients.http!,
                                                      spool: Spool(root: settings.spoolDirectory)) { key in
                    (try? TranscodeJobHandler.job(key: key)).map { [$0] } ?? []
                })
                var index: CRMIndexService?
                if let pipedrive = clients.pipedrive {
                    handlers.append(clients.deleteHandler(store: settings))
                    var uploads = UploadJobHandler(client: pipedrive)
                    if let matching, uploadSlots > 0 {
                        let sync = CRMIndexSync(store: store, client: pipedrive, settings: matching.indexSettings, logger: logger)
                        if untilIdle {
                            // One pass over the queue: the index as due first. A failure is the
                            // index's, not the run's: the uploads wait for a built index.
                            do { try await sync.refreshIfDue() } catch {
                                logger.error("the CRM index could not be refreshed; uploads wait for a built index", metadata: ["error": "\(error)"])
                            }
                        } else {
                            // Built and kept fresh beside the jobs; until its first build ends,
                            // uploads wait (no call log is made from an empty index).
                            index = CRMIndexService(sync: sync, logger: logger)
                        }
                        uploads.linker = CallLinker(settings: matching, index: index)
                    }
                    handlers.append(uploads)
                }
                let worker = Worker(store: store, handlers: handlers, configuration: configuration, logger: logger)
                let inotify = untilIdle || sources.allSatisfy({ $0.watchMode == .poll }) ? nil : Self.inotify(logger: logger)
                defer { inotify?.stop() }
                let watches = sources.map { source in
                    // The config's `settle` for this source, else --settle.
                    var settle = self.settle
                    if let own = source.settle { settle.seconds = own.seconds }
                    return WatchService(configuration: .init(settings: source, settle: .seconds(settle.seconds)),
                                        actions: SourceIntake(settings: source, store: store, settle: settle, fingerprints: fingerprints, logger: logger),
                                        inotify: inotify, logger: logger)
                }
                var look = WatchService.Look()
                if untilIdle {
                    // One look at each source, then the queue runs until idle (cron, tests).
                    for watch in watches {
                        let one = await watch.once(horizon: max(.zero, idleHorizon))
                        look.failed += one.failed
                        look.waiting += one.waiting
                    }
                }
                // The webhook server last: a group shuts down in reverse order, so it stops taking
                // webhooks (503) and commits those it holds before the rest stops.
                var webhooks: [ServiceGroupConfiguration.ServiceConfiguration] = []
                if let listen {
                    let intake = TelnyxIntake(store: store, settings: telnyx ?? TelnyxSettings(), spool: Spool(root: settings.spoolDirectory), logger: logger)
                    let console = try consolePassword.map {
                        try Console(store: store, configuration: ConsoleServer.configuration(ConsoleConfiguration(password: $0), clients: clients, store: store, logger: logger),
                                    logger: logger)
                    }
                    webhooks.append(.init(service: WebhookServer(intake: intake, verifier: verifier, address: ListenAddress(host: listen.address, port: listen.port),
                                                                 registry: registry, logger: logger, console: console)))
                }
                let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                    services: services(worker: worker, store: store, settings: settings, clients: clients, registry: registry, logger: logger)
                        + (untilIdle ? [] : watches.map { .init(service: $0) }) + (index.map { [.init(service: $0)] } ?? []) + webhooks,
                    logger: logger))
                // The Pipedrive spend goes to the ledger as it happens (the console's overview).
                try await clients.recordingPipedriveSpend(to: store, logger: logger) {
                    try await runHandlingSignals(group, worker: worker, first: first, again: again)
                }
                var lines: [String] = []
                if untilIdle, worker.summary.halted == nil, !unserved.isEmpty {
                    let stats = try? await store.queueStats()
                    for (queue, option) in unserved {
                        let left = stats?.byQueue[queue.rawValue]?[.available] ?? 0
                        if left > 0 {
                            lines.append("\(left) \(queue) job(s) wait, and this worker cannot run them: PIPEDRIVE_API_TOKEN is not set (set it, or give \(option) 0 to leave them to other workers)")
                        }
                    }
                }
                // Jobs on the queues this worker serves that wait for a later time (a CDR row, a
                // budget's reset, a retry past the horizon): the run ends with them still to do.
                var later: [String] = []
                if untilIdle, worker.summary.halted == nil {
                    let served = Set(configuration.slots.filter { $0.value > 0 }.map(\.key.rawValue))
                    let waiting = ((try? await store.jobs(JobQuery(states: [.available], limit: 1000))) ?? [])
                        .filter { served.contains($0.queue) }
                    if let first = waiting.min(by: { $0.runAt < $1.runAt }) {
                        let why = first.lastError.map { " (\($0))" } ?? ""
                        later.append("\(waiting.count) job(s) wait for a later time; the first is due \(ISO8601DateFormatter().string(from: first.runAt))\(why): run again then")
                    }
                }
                return Outcome(summary: worker.summary, unserved: lines, watched: look, later: later)
            }
        }
    }

    /// The webhook endpoint's verifier: a usage error without a public key, or with one that is
    /// not 32 bytes of base64.
    static func verifier(_ telnyx: TelnyxSettings?) throws -> WebhookVerifier {
        guard let key = telnyx?.publicKey, !key.isEmpty else {
            throw AppError(.usage, "--listen needs TELNYX_PUBLIC_KEY (or telnyx.public_key in --config)")
        }
        do {
            return try WebhookVerifier(publicKey: key, tolerance: telnyx?.tolerance ?? .seconds(300))
        } catch {
            throw AppError(.usage, "TELNYX_PUBLIC_KEY (or telnyx.public_key in --config) is not the account's Ed25519 public key (base64 of 32 bytes): \(error.message)")
        }
    }

    /// The process's one metrics registry (`--metrics-port` and `--listen` serve it):
    /// MetricsSystem can be bootstrapped once per process.
    static let registry = PrometheusCollectorRegistry()

    private static let bootstrapped: Void = MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

    static func bootstrapMetrics() { _ = bootstrapped }

    /// The worker's one inotify instance (nil, logged, when the system refuses one: the
    /// sources are polled).
    private static func inotify(logger: Logger) -> Inotify? {
        do {
            return try Inotify()
        } catch {
            logger.warning("\(error): watched directories are polled")
            return nil
        }
    }

    private func services(worker: Worker<ContinuousClock>, store: any CallStore, settings: StoreSettings, clients: APIClients,
                          registry: PrometheusCollectorRegistry, logger: Logger) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            // A worker with no slot returns at once; with --listen it is a webhook receiver that
            // leaves the jobs to other workers, and the group runs until a signal.
            .init(service: worker,
                  successTerminationBehavior: listen != nil && !untilIdle && worker.configuration.slots.values.allSatisfy({ $0 == 0 }) ? .ignore : .gracefullyShutdownGroup,
                  failureTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let metrics {
            services.append(.init(service: MetricsServer.application(registry: registry, address: metrics.address, port: metrics.port, logger: logger)))
        }
        if let spoolRetention {
            let prune = SpoolPrune(spool: Spool(root: settings.spoolDirectory), store: store, actor: worker.configuration.owner)
            services.append(.init(service: SpoolPruneService(prune: prune, retention: spoolRetention, logger: logger)))
        }
        if let reconcileEvery, clients.pipedrive != nil {
            services.append(.init(service: ReconcileService(interval: reconcileEvery, logger: logger) {
                // Apply with the default caps; never --force unattended.
                var options = Reconciler.Options()
                options.apply = true
                return try await ReconcileRun.pass(store: store, clients: clients, options: options, logger: logger)
            }))
        }
        return services
    }
}

/// `/metrics` in the Prometheus text format.
enum MetricsServer {
    /// The registry's metrics as `/metrics` answers them (`--metrics-port`, `--listen`).
    static func response(_ registry: PrometheusCollectorRegistry) -> Response {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func application(registry: PrometheusCollectorRegistry, address: String, port: Int, logger: Logger) -> some Service {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in response(registry) }
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

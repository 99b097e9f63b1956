import ArgumentParser
import CallAPI
import CallApp
import CallJobs
import CallPipeline
import CallSandbox
import CallSources
import Foundation
import Logging
import UnixSignals

// The pipeline: run to its end here (upload), or from the queue (worker); and the API sandbox
// an upload can run against (sandbox).

extension CallRecCommand {
    struct Upload: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "The whole pipeline: validate, transcode, chunk, and attach every recording to its Pipedrive call log, exactly once.",
            discussion: """
                Credentials come from the environment (PIPEDRIVE_API_TOKEN, PIPEDRIVE_API_URL, …) or --config FILE, never from the command \
                line. --sandbox runs against a local Pipedrive emulator instead (no account needed; its state lives under --state). A \
                re-run, or a run after Ctrl-C or kill -9, goes on where the last one stopped and sends nothing for recordings already \
                done.
                """
        )

        @Argument(help: "The recording directory (walked recursively; every recording needs its <stem>.json sidecar).") var directory: String
        @Flag(help: "Start the API sandbox in this process on a free loopback port and upload there.") var sandbox = false
        @Option(help: "Read the API variables (and for upload the sources, state and database) from this file: JSON with comments, or KEY=VALUE lines. The environment wins over it.") var config: String?
        @Option(help: "Link each call log from the local CRM index: deal (open deal, else lead, else person), person (person and organization) or none. On by default when the config has a matching section or company_numbers.")
        var link: String?
        var configFile: String? { config }
        @Option(help: "Uploads at once.") var uploadSlots: Int = 4

        @OptionGroup var settle: SettleOption
        @OptionGroup(title: "PBX source") var source: SourceOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var retention: SpoolRetentionOptions
        @OptionGroup var global: GlobalOptions
        @OptionGroup(title: "Transcode and chunk") var transcode: TranscodeOptions
        @OptionGroup(title: "Validation") var validation: ValidationOptions

        func validate() throws {
            guard (1...256).contains(uploadSlots) else { throw ValidationError("--upload-slots \(uploadSlots) must be between 1 and 256 (uploads at once)") }
        }

        func run() async throws {
            let logger = global.makeLogger()
            // The source's flags and config first: a bad value exits 2 before any file is read.
            let source = try SourceConfiguration.resolve(directory: directory, request: self.source.request, config: config)
            try requireDirectory(directory)
            guard sandbox else {
                let outcome = try await upload(environment: try APIClients.environment(config: config), source: source, logger: logger)
                return try exitStatus(outcome.report.summary, halted: outcome.halted, origins: APIClients.origins(config: config))
            }
            let sandboxDirectory = try store.settings(config: config).sandboxDirectory
            let outcome = try await SandboxSharing.run(directory: sandboxDirectory, logger: logger, notice: standardError, interrupted: {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    standardError("\n\(signal): stopping the sandbox; the runs still using it fail their requests (a re-run goes on)")
                    return
                }
            }) { sandbox in
                try await SandboxSharing.seedNamedCallLogs(in: directory, sandbox: sandbox, notice: standardError)
                return try await upload(environment: try SandboxSharing.environment(sandbox), source: source, logger: logger) { report in
                    // What the sandbox holds, above the run's one-line summary.
                    guard !global.json else { return }
                    do {
                        print(SandboxView(snapshot: try await sandbox.snapshot(), report: report, directory: sandboxDirectory).text)
                    } catch {
                        logger.warning("cannot read the sandbox's state", metadata: ["error": "\(error)"])
                    }
                }
            }
            try exitStatus(outcome.report.summary, halted: outcome.halted, origins: APIClients.origins(config: config))
        }

        /// The whole run; `beforeSummary` prints what goes above the run's one-line summary,
        /// which comes last.
        func upload(environment: APIEnvironment, source: SourceSettings?, logger: Logger,
                    beforeSummary: (BatchReport) async -> Void = { _ in }) async throws -> UploadSession.Outcome {
            var options = UploadRun.Options()
            options.source = source
            options.settings = try transcode.settings()
            options.validation = validation.configuration()
            options.jobs = global.jobs
            options.uploadSlots = uploadSlots
            options.settle = settle.value
            options.matching = try MatchConfiguration.enabled(config: config, link: link)
            let session = UploadSession(directory: directory, store: try store.settings(config: config), options: options, spoolRetention: try retention.retention())
            let progress = ProgressReporter(logger: logger, quiet: false, countsAudio: false)
            // SIGINT/SIGTERM release what runs (the next run resumes it), a second signal at once.
            let outcome = try await session.run(environment: environment, logger: logger, progress: { progress.handle($0) }, runWorker: stoppingOnSignals(
                logger: logger, "running uploads get a moment to finish (again: stop at once). A re-run goes on from here."))
            progress.finish()
            write(outcome.prunedLines)
            await beforeSummary(outcome.report)
            try global.emit(outcome.document, outcome.lines)
            return outcome
        }
    }

    struct Sandbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the local API sandbox: Pipedrive CallLogs, Telnyx recordings and VoipNow phone-call events on one port.",
            discussion: """
                Pipedrive is served under /v1, Telnyx under /v2 and VoipNow under /uapi, with the real APIs' validation, status codes, \
                error bodies, pagination and Pipedrive's token-cost rate limits. Credentials come from PIPEDRIVE_API_TOKEN, TELNYX_API_KEY \
                and VOIPNOW_ACCESS_TOKEN; the ones that are unset are made up and printed (they belong to this sandbox only).

                Faults: --faults takes probabilities per class, e.g. \
                429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02,abuse=0,budget=0 (plus delay=SECONDS for slow; budget is a 429 \
                without Retry-After, as a spent daily budget answers); a request header x-sandbox-fault: \
                429|500|503|slow|cut|lost|abuse|budget|none aims one at a single request. State and seeding: GET /_sandbox/state, POST \
                /_sandbox/telnyx/recordings, POST /_sandbox/voipnow/events (loopback only). Runs until SIGINT or SIGTERM.

                Telnyx that calls back: POST /_sandbox/telnyx/calls {"count":1,"seconds":[60,180],...} or --telnyx-calls RATE simulates \
                calls whose recordings are served behind expiring links and whose webhooks (call.initiated, call.answered, call.hangup, \
                call.recording.saved) are signed with the sandbox's Ed25519 key (kept in --state; printed as 'telnyx public key: ...') and \
                sent to --telnyx-webhook (or the URL POST /_sandbox/telnyx/webhook sets). Webhook faults in --faults or \
                CALLREC_SANDBOX_FAULTS: telnyx_duplicate=P, telnyx_reorder=1, telnyx_delay=SECONDS, telnyx_seed=N. GET \
                /_sandbox/telnyx/calls shows each call's deliveries and when its audio reached a call log.

                CRM: persons, organizations and deals under /api/v2 (cursor pages, updated_since), leads and users under /v1. --seed FILE \
                upserts {"persons":[...],"organizations":[...],"deals":[...],"leads":[...],"users":[...]} at start; POST /_sandbox/crm \
                takes the same JSON, POST /_sandbox/crm/generate {"persons":50000,"deals":20000,...} makes a large account, and \
                /_sandbox/crm/persons/{id} (DELETE, PATCH, POST .../merge) changes it.
                """
        )

        @Option(help: "Port to listen on (0: any free port).") var port: Int = 7654
        @Option(help: "Address to listen on. The introspection routes answer loopback clients only.") var host: String = "127.0.0.1"
        @Option(help: "Keep the state (call logs, recordings, events, tokens spent) in this directory across restarts (one sandbox at a time serves it). Default: memory.") var state: String?
        @Option(help: "Random faults, e.g. 429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02 (delay=SECONDS sets the slow delay).") var faults: String = ""
        @Option(help: "Pipedrive burst limit: requests per rolling 2-second window (Lite: 20). Default: PIPEDRIVE_BURST or 20.") var burst: Int?
        @Option(help: "Pipedrive daily token budget. Default: PIPEDRIVE_DAILY_TOKENS or 30000.") var dailyTokens: Int?
        @Option(help: "Send the simulated Telnyx calls' signed webhooks to this URL (e.g. http://127.0.0.1:8080/webhooks/telnyx).")
        var telnyxWebhook: String?
        @Option(help: "Simulate this many Telnyx calls per second from the start (each ends as it is made: its recording is saved at the rate).")
        var telnyxCalls: Double?
        @Option(help: "Recording length of the simulated calls in seconds: LOW-HIGH (drawn per call) or one number.")
        var telnyxCallSeconds: String = "60-180"
        @Option(help: "Stop simulating calls after this many seconds (the sandbox keeps serving). Default: until stopped.")
        var telnyxDuration: Double?
        @Option(help: "Format of the simulated recordings: wav or mp3.") var telnyxFormat: String = "wav"
        @Option(help: "Upsert the CRM rows of this JSON file at start (the body of POST /_sandbox/crm).")
        var seed: String?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
            guard TelnyxLoad.parseSeconds(telnyxCallSeconds) != nil else {
                throw ValidationError("--telnyx-call-seconds must be LOW-HIGH or SECONDS, within 1…14400")
            }
            if let telnyxCalls, !(telnyxCalls > 0 && telnyxCalls <= 1000) { throw ValidationError("--telnyx-calls must be more than 0 and at most 1000") }
            if let telnyxDuration, !(telnyxDuration > 0) { throw ValidationError("--telnyx-duration must be positive") }
            guard ["wav", "mp3"].contains(telnyxFormat) else { throw ValidationError("--telnyx-format must be wav or mp3") }
            if let burst, burst < 1 { throw ValidationError("--burst must be at least 1") }
            if let dailyTokens, dailyTokens < 0 { throw ValidationError("--daily-tokens must not be negative") }
            do { _ = try FaultPlan(specification: faults) } catch let error as SandboxError {
                throw ValidationError("--faults: \(error.message)")
            }
        }

        func run() async throws {
            let logger = global.makeLogger()
            var (served, generated) = try SandboxConfiguration.serving(host: host, port: port, state: state, faults: faults, burst: burst,
                                                                      dailyTokens: dailyTokens)
            served.telnyxWebhook = telnyxWebhook
            served.mp3Encoder = SandboxSharing.mp3Encoder
            if let seed { served.crmSeed = try SandboxSharing.readSeed(seed) }
            if let telnyxCalls, let seconds = TelnyxLoad.parseSeconds(telnyxCallSeconds) {
                served.telnyxLoad = TelnyxLoad(rate: telnyxCalls, seconds: seconds, duration: telnyxDuration.map { .seconds($0) }, format: telnyxFormat)
            }
            let configuration = served
            try await SandboxSharing.serve(configuration, logger: logger) { port, sandbox in
                // The URLs to export, and the credentials made up here (never ones from the environment).
                let announcement = SandboxAnnouncement(configuration, port: port, generated: generated)
                // What a webhook receiver needs (TELNYX_PUBLIC_KEY), and where the calls go.
                var telnyx = ["telnyx public key: \(sandbox.telnyxPublicKey)"]
                if let url = configuration.telnyxWebhook { telnyx.append("telnyx webhooks to \(url)") }
                if let load = configuration.telnyxLoad {
                    let duration = telnyxDuration.map { " for \($0) s" } ?? ""
                    telnyx.append("telnyx calls: \(load.rate)/s, \(load.seconds.lowerBound)-\(load.seconds.upperBound) s, \(load.format)\(duration) (seed \(sandbox.telnyxSeed))")
                } else if configuration.faults.hasTelnyxFaults {
                    telnyx.append("telnyx webhook faults: seed \(sandbox.telnyxSeed)")
                }
                if global.json {
                    var document = announcement.document
                    document["telnyx_public_key"] = sandbox.telnyxPublicKey
                    document["telnyx_seed"] = String(sandbox.telnyxSeed)
                    if let url = configuration.telnyxWebhook { document["telnyx_webhook"] = url }
                    try? writeJSON(document)
                } else {
                    FileHandle.standardOutput.write(Data((announcement.lines + telnyx).joined(separator: "\n").appending("\n").utf8))
                }
            }
        }
    }

    struct Worker: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run jobs from the queue until stopped (SIGTERM/SIGINT drain; a second signal releases at once).",
            discussion: """
                Several workers, on one machine or several sharing a PostgreSQL --database, run one queue safely: each job is leased, \
                heartbeated and fenced, and a job whose worker died runs again after its lease expires (60 s) and the rescuer sees it \
                (every 15 s). A credential an API refuses stops the worker (exit 2, naming the variable; the job is available again). \
                Without PIPEDRIVE_API_TOKEN the upload and delete queues are not served: --until-idle then exits 2 when jobs are left on \
                them, unless --upload-slots 0 / --delete-slots 0 leave them to other workers on purpose. --until-idle exit codes: 0 done, \
                1 a job was discarded (or a watched file failed), 2 as above, 3 an API could not be reached (its jobs wait for the next run), \
                jobs wait for a later time (a CDR row, a budget's reset) or a watched file was still being written.

                --watch DIR (with --source, or the sources of --config) also watches PBX recording folders: a scan at start finds what \
                came while the worker was down, then inotify (polling on NFS/SMB/FUSE, or with --watch-mode poll) takes each file once it \
                is closed and --settle has passed; with --until-idle, one scan and then the queue until idle.

                --listen HOST:PORT also takes Telnyx's call webhooks (POST /webhooks/telnyx; GET /healthz and GET /metrics beside it): \
                each is checked against TELNYX_PUBLIC_KEY (401 bad or missing signature, 403 a timestamp over 300 s off, 413 a body over \
                the limit, 400 not an event), stored once in the queue's database before its 200, and each recording it announces is \
                downloaded on the fetch queue (--fetch-slots) and then transcoded and attached like any other. Serve it behind a reverse \
                proxy that terminates TLS.
                """
        )

        @Option(help: "Transcode slots (CPU-bound). Default: the number of cores.") var concurrency: Int = ProcessInfo.processInfo.activeProcessorCount
        @Option(help: "Upload slots (network-bound).") var uploadSlots: Int = 4
        @Option(help: "Delete slots.") var deleteSlots: Int = 2
        @Option(help: "Fetch slots: Telnyx recordings downloaded at once (network-bound).") var fetchSlots: Int = 4
        @Option(help: ArgumentHelp(
            "Serve the Telnyx webhook endpoint (POST /webhooks/telnyx), GET /healthz and GET /metrics at HOST:PORT. Needs TELNYX_PUBLIC_KEY.",
            discussion: "8080 and :8080 mean 127.0.0.1:8080; 0.0.0.0:8080 listens on every interface; [::1]:8080 for IPv6; port 0 picks a free one (logged).",
            valueName: "host:port"))
        var listen: String?
        @Flag(help: "Exit once no job is due or running (jobs leased by a dead worker count as running until rescued).") var untilIdle = false
        @Option(help: "With --until-idle: a job that becomes due within this many seconds (a retry, a snooze) is waited for.") var idleHorizon: Double = 300
        @Option(help: "Serve Prometheus metrics on this port (/metrics); 0 picks a free one and logs it.") var metricsPort: Int?
        @Option(help: "Address for --metrics-port.") var metricsAddress: String = "127.0.0.1"
        @Option(help: "Seconds a job's lease lasts without a heartbeat (heartbeats every third of it).") var leaseTtl: Double = 60
        @Option(help: "Seconds between rescues of jobs whose lease expired.") var rescueInterval: Double = 15
        @Option(help: "Seconds running jobs get to finish after SIGTERM before they are released.") var shutdownGrace: Double = 25
        @Option(help: "Seconds between looks for new work when no notification came.") var pollInterval: Double = 1
        @Option(help: ArgumentHelp(
            "Run a reconcile pass (apply, default caps, never --force) at start and then every this long: 1h, 30m, 1d. Needs PIPEDRIVE_API_TOKEN.",
            discussion: "With several workers sharing a queue, give this to one of them."))
        var reconcileEvery: String?
        @Option(help: "Read the API variables and the sources from this file (JSON with comments, or KEY=VALUE lines).") var config: String?
        @Option(help: "Link each call log from the local CRM index: deal (open deal, else lead, else person), person (person and organization) or none. On by default when the config has a matching section or company_numbers.")
        var link: String?

        @OptionGroup(title: "Watching") var watching: WatchOptions
        @OptionGroup var settle: SettleOption
        @OptionGroup(title: "PBX source") var source: SourceOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var retention: SpoolRetentionOptions
        @OptionGroup var global: GlobalOptions
        @OptionGroup(title: "Transcode and chunk") var transcode: TranscodeOptions
        @OptionGroup(title: "Validation") var validation: ValidationOptions

        func validate() throws {
            guard concurrency >= 0, uploadSlots >= 0, deleteSlots >= 0, fetchSlots >= 0 else { throw ValidationError("slots must not be negative") }
            // With --listen and no slots it only takes webhooks (other workers run the jobs).
            guard concurrency + uploadSlots + deleteSlots + fetchSlots > 0 || listen != nil else {
                throw ValidationError("no slots: the worker would run nothing")
            }
            _ = try listenAddress()
            guard leaseTtl >= 0.3, rescueInterval > 0, shutdownGrace >= 0, pollInterval > 0 else {
                throw ValidationError("--lease-ttl, --rescue-interval and --poll-interval must be positive")
            }
            if let reconcileEvery {
                guard let every = parseAge(reconcileEvery), every >= .seconds(1) else {
                    throw ValidationError("--reconcile-every \(reconcileEvery) is not an interval of a second or more (1h, 30m, 1d)")
                }
            }
        }

        /// `--listen`, parsed (nil without it).
        func listenAddress() throws -> ListenAddress? {
            guard let listen else { return nil }
            switch ListenAddress.parse(listen) {
            case .success(let address): return address
            case .failure(let error): throw ValidationError("--listen \(listen): \(error.reason)")
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
            // The console rides on --listen when a password is configured.
            service.consolePassword = try ConsoleServer.configuredPassword(config: config)
            service.settings = try transcode.settings()
            service.validation = validation.configuration()
            var request = source.request
            request.watchMode = watching.watchMode
            request.watchPollInterval = watching.watchPollInterval
            service.sources = try SourceConfiguration.watched(directories: watching.watch, request: request, config: config)
            if !watching.watch.isEmpty, service.sources.isEmpty {
                throw AppError(.usage, "--watch needs a PBX source: --source freepbx, 3cx or fusionpbx (sidecar folders are not watched)")
            }
            service.settle = settle.value
            service.fetchSlots = fetchSlots
            service.telnyx = try TelnyxConfiguration.resolve(config: config)
            service.matching = try MatchConfiguration.enabled(config: config, link: link)
            service.listen = try listenAddress().map { (address: $0.host, port: $0.port) }
            let outcome = try await service.run(store: try store.settings(config: config), environment: try APIClients.environment(config: config), logger: logger,
                first: { logger.notice("\($0): finishing running jobs (send it again to release them at once)") },
                again: { logger.notice("\($0) again: releasing running jobs now") })
            let summary = outcome.summary
            try global.emit(outcome.document, [outcome.summaryLine])
            switch summary.stop {
            case .halted(let failure)?, .unavailable(let failure)?:
                // A refused credential: exit 2 (the jobs are available again); an unreachable API: below.
                try stopped(by: failure, left: "Nothing was lost: its jobs are available again for the next worker.", origins: APIClients.origins(config: config))
            case .diskFull(let failure)?:
                standardError("stopped: \(failure.message)")
                throw ExitCode(ExitStatus.diskFull)
            case nil:
                break
            }
            for line in outcome.unserved { standardError("worker: \(line)") }
            try fail(ExitStatus.usage, if: !outcome.unserved.isEmpty)
            try fail(ExitStatus.someFailed, if: untilIdle && (summary[.discarded] > 0 || outcome.watched.failed > 0))
            // Watched files still being written: the next run takes them.
            for line in outcome.later { standardError("worker: \(line)") }
            try fail(ExitStatus.waiting, if: untilIdle && (!outcome.watched.waiting.isEmpty || !outcome.later.isEmpty))
            // An unreachable API stopped an --until-idle run: its jobs wait for the next one.
            try fail(ExitStatus.waiting, if: untilIdle && outcome.halted != nil)
        }
    }
}

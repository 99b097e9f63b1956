import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallPipeline
import CallSandbox
import CallStore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension CallRecCommand {
    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The whole pipeline: validate, transcode, chunk, and attach every recording to its Pipedrive call log, exactly once.",
            discussion: """
                Credentials come from the environment (PIPEDRIVE_API_TOKEN, PIPEDRIVE_API_URL, …) or \
                --config FILE, never from the command line. --sandbox runs against a local Pipedrive \
                emulator instead (no account needed; its state lives under --state). A re-run, or a run \
                after Ctrl-C or kill -9, goes on where the last one stopped and sends nothing for \
                recordings already done.
                """
        )

        @Argument(help: "The recording directory (walked recursively; every recording needs its <stem>.json sidecar).")
        var directory: String

        @Flag(help: "Start the API sandbox in this process on a free loopback port and upload there.")
        var sandbox = false

        @Option(help: "Read the API variables from this file (KEY=VALUE lines) instead of the environment.")
        var config: String?

        @Option(help: "Uploads at once.")
        var uploadSlots: Int = 4

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions
        @OptionGroup(title: "Transcode and chunk") var transcode: TranscodeOptions
        @OptionGroup(title: "Validation") var validation: ValidationOptions

        func run() async throws {
            let logger = global.makeLogger()
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("\(directory) is not a directory")
            }
            if sandbox {
                let sandboxConfiguration = try SandboxCredentials.configuration(stateDirectory: (store.state as NSString).appendingPathComponent("sandbox"))
                try await withSandbox(sandboxConfiguration) { url, sandbox in
                    // Call logs that sidecars name by call_log_id exist in a real account before the
                    // run; in the sandbox they are made first.
                    for id in Self.namedCallLogs(in: directory) where await sandbox.seedCallLog(id: id) {
                        standardError("sandbox: made call log \(id), which a sidecar names by call_log_id")
                    }
                    var environment = ProcessInfo.processInfo.environment
                    environment["PIPEDRIVE_API_URL"] = url.absoluteString + "/v1"
                    environment["PIPEDRIVE_API_TOKEN"] = sandboxConfiguration.pipedriveToken
                    environment["TELNYX_API_URL"] = url.absoluteString + "/v2"
                    environment["TELNYX_API_KEY"] = sandboxConfiguration.telnyxKey
                    environment["VOIPNOW_API_URL"] = url.absoluteString
                    environment["VOIPNOW_ACCESS_TOKEN"] = sandboxConfiguration.voipnowToken
                    standardError("sandbox: \(url.absoluteString) (state: \(sandboxConfiguration.stateDirectory ?? "memory"))")
                    let (report, halted) = try await upload(environment: try loadEnvironment(config: nil, environment: environment), logger: logger)
                    if !global.json { await showSandbox(sandbox, report: report) }
                    try Self.exit(report.summary, halted: halted)
                }
            } else {
                let (report, halted) = try await upload(environment: try loadEnvironment(config: config), logger: logger)
                try Self.exit(report.summary, halted: halted)
            }
        }

        /// 2 when the run stopped on a refused credential; else 1 when a recording failed; 3 when
        /// none did but some wait for a later run (a budget, a rate-limit pause, an unreachable
        /// API).
        static func exit(_ summary: BatchReport.Summary, halted: JobFailure?) throws {
            if let halted {
                try stopped(by: halted, left: "Nothing was lost: \(summary.waiting) recording(s) wait for the next run, which goes on from here.")
            }
            if summary.failed > 0 { throw ExitCode(ExitStatus.someFailed) }
            if summary.waiting > 0 { throw ExitCode(ExitStatus.waiting) }
        }

        /// What the sandbox holds now: every call log with a recording, and whether the bytes
        /// that arrived are the bytes in the spool (the report's SHA-256 of each part).
        func showSandbox(_ sandbox: CallSandbox.Sandbox, report: BatchReport?) async {
            let logs = await sandbox.callLogs().filter { !$0.deleted }
            let spool = Dictionary((report?.files ?? []).flatMap(\.parts).compactMap { part in part.callLogId.map { ($0, part.sha256) } },
                                   uniquingKeysWith: { first, _ in first })
            Swift.print("\nThe sandbox's call logs (\(logs.count)):")
            for log in logs.sorted(by: { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }) {
                var line = "  \(log.id)  \((log.subject ?? "-").padding(toLength: 28, withPad: " ", startingAt: 0))"
                if let recording = log.recording {
                    line += "  \(recording.bytes) bytes  sha256 \(recording.sha256.prefix(16))…"
                    if let expected = spool[log.id] { line += expected == recording.sha256 ? "  = spool" : "  ≠ spool!" }
                } else {
                    line += "  (no recording)"
                }
                Swift.print(line)
            }
        }

        static func namedCallLogs(in directory: String) -> Set<String> {
            guard let scan = try? Scanner.scan(root: directory) else { return [] }
            var ids: Set<String> = []
            for file in scan.files {
                guard let path = file.sidecarPath, let data = FileManager.default.contents(atPath: path),
                      let id = Sidecar.parse(data).sidecar?.callLogId else { continue }
                ids.insert(id)
            }
            return ids
        }

        /// The report, and what stopped the run early (a refused token, an unreachable API).
        func upload(environment: APIEnvironment, logger: Logger) async throws -> (BatchReport, JobFailure?) {
            guard let token = environment.pipedriveToken else {
                throw ValidationError("PIPEDRIVE_API_TOKEN is not set (or use --sandbox to try callrec without an account)")
            }
            let clock = ContinuousClock(), started = clock.now
            let limiter = PipedriveLimiter(environment: environment)
            let http = HTTPClient.makeForAPIs()
            do {
                let report = try await upload(environment: environment, token: token, http: http, limiter: limiter, started: started, logger: logger)
                try? await http.shutdown()
                return report
            } catch {
                try? await http.shutdown()
                throw error
            }
        }

        func upload(environment: APIEnvironment, token: Secret, http: HTTPClient, limiter: PipedriveLimiter, started: ContinuousClock.Instant,
                    logger: Logger) async throws -> (BatchReport, JobFailure?) {
            let clock = ContinuousClock()
            let client = PipedriveClient(baseURL: environment.pipedriveURL, token: token, limiter: limiter, httpClient: http, logger: logger)
            let store = try await self.store.open(logger: logger)
            do {
                var options = UploadRun.Options()
                options.settings = try transcode.settings()
                options.validation = validation.configuration()
                options.jobs = global.jobs
                options.uploadSlots = uploadSlots
                let run = UploadRun(root: directory, store: store, spool: Spool(root: self.store.spoolDirectory), client: client,
                                    options: options, logger: logger)
                let progress = ProgressReporter(logger: logger, quiet: false, countsAudio: false)
                let pool = CPUPool(threads: global.jobs)
                defer { pool.shutdown() }
                // Registration (fingerprinting every file) runs beside the worker, which starts on
                // the first recordings registered instead of after the last.
                let registering = Switch()
                let registrationTask = Task { [excluded = self.store.state] in
                    defer { registering.set() }
                    let registration = try await run.register(excluding: [excluded])
                    progress.handle(.started(files: registration.files.count))
                    for file in registration.files where file.status != .ok {
                        progress.handle(.finished(file, audioSeconds: 0))
                    }
                    return registration
                }
                let worker = run.worker(pool: pool, registering: { !registering.isSet }) { job, outcome in
                    let final = (job.kind == UploadJobHandler.kind && outcome == "completed") || outcome == "discarded"
                    guard final else { return }
                    let status: FileReport.Status = outcome == "completed" ? .ok : .failed
                    progress.handle(.finished(FileReport(path: "", key: nil, status: status, error: nil, warnings: [], input: nil, stats: nil, parts: []), audioSeconds: 0))
                }
                // Also with nothing new: jobs of an earlier run may be waiting (a retry, a snooze).
                do {
                    try await runUntilIdle(worker, logger: logger)
                } catch {
                    registrationTask.cancel()
                    _ = try? await registrationTask.value
                    throw error
                }
                let registration = try await registrationTask.value
                progress.finish()
                let report = try await run.report(registration: registration, wallSeconds: (clock.now - started).seconds)
                let counters = await client.counters
                try? await store.close()
                try print(report, counters: counters, stopped: worker.halted != nil)
                return (report, worker.halted)
            } catch {
                try? await store.close()
                throw error
            }
        }

        /// The worker in a service group; SIGINT/SIGTERM release what runs (the next run resumes
        /// it), a second signal at once.
        func runUntilIdle(_ worker: CallPipeline.Worker, logger: Logger) async throws {
            try await runWorkerHandlingSignals(worker, logger: logger) { signal in
                standardError("\n\(signal): stopping; running uploads get a moment to finish (again: stop at once). A re-run goes on from here.")
            }
        }

        struct Document: Encodable {
            var files: [FileReport]
            var summary: Summary
            /// The batch summary plus what the run cost at the API.
            struct Summary: Encodable {
                var batch: BatchReport.Summary
                var apiRequests, pipedriveTokens, rateLimited: Int
                enum CodingKeys: String, CodingKey {
                    case apiRequests = "api_requests", pipedriveTokens = "pipedrive_tokens", rateLimited = "rate_limited"
                }
                func encode(to encoder: any Encoder) throws {
                    try batch.encode(to: encoder)
                    var c = encoder.container(keyedBy: CodingKeys.self)
                    try c.encode(apiRequests, forKey: .apiRequests)
                    try c.encode(pipedriveTokens, forKey: .pipedriveTokens)
                    try c.encode(rateLimited, forKey: .rateLimited)
                }
            }
        }

        /// With `stopped` (the run stopped early: a refused token, an unreachable API) the waiting
        /// recordings are not listed one by one: one line says why they all wait.
        func print(_ report: BatchReport, counters: PipedriveLimiter.Counters, stopped: Bool = false) throws {
            let s = report.summary
            if global.json {
                try writeJSON(Document(files: report.files, summary: .init(
                    batch: s, apiRequests: counters.requests, pipedriveTokens: counters.tokensSpent, rateLimited: counters.rateLimited)))
                return
            }
            for file in report.files where file.status == .failed || (file.status == .waiting && !stopped) {
                standardError("\(file.status == .failed ? "failed " : "waiting") \(file.error?.code ?? "?"): \(file.error?.message ?? "")")
            }
            if s.waiting > 0, !stopped {
                let when = s.resumeAfter.map { " after " + ISO8601DateFormatter().string(from: $0) } ?? ""
                standardError("stopped: \(s.waiting) recording(s) wait; run again\(when) to go on")
            }
            Swift.print("\(s.ok) uploaded, \(s.skipped) done before, \(s.failed) failed\(s.waiting > 0 ? ", \(s.waiting) waiting" : ""); \(formatDuration(s.audioSeconds)) of audio in \(String(format: "%.1f", s.wallSeconds)) s; \(counters.requests) API requests, \(counters.tokensSpent) Pipedrive tokens\(counters.rateLimited > 0 ? ", \(counters.rateLimited) rate-limited" : "")")
        }
    }
}

/// The sandbox of `upload --sandbox`: its state and made-up credentials persist under the state
/// directory, so a re-run meets the same call logs.
enum SandboxCredentials {
    static func configuration(stateDirectory: String) throws -> SandboxConfiguration {
        let fm = FileManager.default
        try fm.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = (stateDirectory as NSString).appendingPathComponent("credentials.json")
        var configuration: SandboxConfiguration
        if let data = fm.contents(atPath: path), let saved = try? JSONDecoder().decode([String: String].self, from: data),
           let p = saved["pipedrive"], let t = saved["telnyx"], let v = saved["voipnow"] {
            configuration = SandboxConfiguration(pipedriveToken: p, telnyxKey: t, voipnowToken: v)
        } else {
            configuration = SandboxConfiguration.random()
            let saved = ["pipedrive": configuration.pipedriveToken, "telnyx": configuration.telnyxKey, "voipnow": configuration.voipnowToken]
            guard fm.createFile(atPath: path, contents: try JSONEncoder().encode(saved), attributes: [.posixPermissions: 0o600]) else {
                // Without them a re-run would meet a sandbox whose state no longer matches its keys.
                throw ValidationError("cannot write the sandbox's credentials to \(path)")
            }
        }
        let environment = ProcessInfo.processInfo.environment
        if let burst = environment["PIPEDRIVE_BURST"].flatMap({ Int($0) }), burst > 0 { configuration.burstPerTwoSeconds = burst }
        if let daily = environment["PIPEDRIVE_DAILY_TOKENS"].flatMap({ Int($0) }), daily > 0 { configuration.dailyTokens = daily }
        if let faults = environment["CALLREC_SANDBOX_FAULTS"], !faults.isEmpty {
            configuration.faults = try FaultPlan(specification: faults)
        }
        configuration.stateDirectory = stateDirectory
        return configuration
    }
}

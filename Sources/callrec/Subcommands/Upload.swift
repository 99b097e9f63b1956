import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallPipeline
import CallSandbox
import CallStore
import CallSupport
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

        @OptionGroup var settle: SettleOption
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
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("\(directory) is not a directory")
            }
            if sandbox {
                try await runWithSandbox(logger: logger)
            } else {
                let (report, halted) = try await upload(environment: try loadEnvironment(config: config), logger: logger)
                try Self.exit(report.summary, halted: halted)
            }
        }

        /// 2 when the run stopped on a refused credential; 4 at a full disk; else 1 when a
        /// recording failed; 3 when none did but some wait for a later run (a budget, a
        /// rate-limit pause, an unreachable API, a file still being written).
        static func exit(_ summary: BatchReport.Summary, halted: JobFailure?) throws {
            if let halted {
                try stopped(by: halted, left: "Nothing was lost: \(summary.waiting) recording(s) wait for the next run, which goes on from here.")
            }
            try exitStatus(summary)
        }

        /// The whole run; `beforeSummary` prints what goes above the run's one-line summary,
        /// which comes last. Returns the report, and what stopped the run early (a refused
        /// token, an unreachable API).
        @discardableResult
        func upload(environment: APIEnvironment, logger: Logger,
                    beforeSummary: (BatchReport) async -> Void = { _ in }) async throws -> (BatchReport, JobFailure?) {
            guard let token = environment.pipedriveToken else {
                throw ValidationError("PIPEDRIVE_API_TOKEN is not set (or use --sandbox to try callrec without an account)")
            }
            let clock = ContinuousClock(), started = clock.now
            let limiter = PipedriveLimiter(environment: environment)
            let http = HTTPClient.makeForAPIs()
            do {
                let report = try await upload(environment: environment, token: token, http: http, limiter: limiter, started: started, logger: logger,
                                              beforeSummary: beforeSummary)
                try? await http.shutdown()
                return report
            } catch {
                try? await http.shutdown()
                throw error
            }
        }

        func upload(environment: APIEnvironment, token: Secret, http: HTTPClient, limiter: PipedriveLimiter, started: ContinuousClock.Instant,
                    logger: Logger, beforeSummary: (BatchReport) async -> Void) async throws -> (BatchReport, JobFailure?) {
            let clock = ContinuousClock()
            let client = PipedriveClient(baseURL: environment.pipedriveURL, token: token, limiter: limiter, httpClient: http, logger: logger)
            let store = try await self.store.open(logger: logger, creating: true)
            do {
                var options = UploadRun.Options()
                options.settings = try transcode.settings()
                options.validation = validation.configuration()
                options.jobs = global.jobs
                options.uploadSlots = uploadSlots
                options.settle = settle.value
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
                let report = try await run.report(registration: registration, wallSeconds: (clock.now - started).seconds,
                                                  stopped: worker.summary.stopped)
                let counters = await client.counters
                await pruneSpool(store: store, logger: logger)
                try? await store.close()
                await beforeSummary(report)
                try print(report, counters: counters, stopped: worker.halted != nil)
                return (report, worker.halted)
            } catch {
                try? await store.close()
                throw error
            }
        }

        /// Removes the MP3s of recordings uploaded longer ago than the retention; a failure only
        /// warns (the run's work is done).
        func pruneSpool(store: any CallStore, logger: Logger) async {
            do {
                guard let age = try retention.retention() else { return }
                let report = try await SpoolPrune(spool: Spool(root: self.store.spoolDirectory), store: store, actor: "upload")
                    .run(olderThan: age)
                if !report.pruned.isEmpty { standardError(report.line) }
            } catch {
                logger.warning("spool prune failed", metadata: ["error": "\(error)"])
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
            // When the run stopped, one line says why: the waiting recordings are not listed one by one.
            printProblems(report, waiting: !stopped)
            if let stopped = s.stopped {
                standardError("stopped: \(stopped.message)")
                standardError("nothing was lost: \(s.waiting) recording(s) wait; free space, then run again to go on")
            } else if s.waiting > 0, !stopped {
                let when = s.resumeAfter.map { " after " + ISO8601DateFormatter().string(from: $0) } ?? ""
                standardError("stopped: \(s.waiting) recording(s) wait; run again\(when) to go on")
            }
            Swift.print("\(s.ok) uploaded, \(s.skipped) done before, \(s.failed) failed\(s.waiting > 0 ? ", \(s.waiting) waiting" : ""); \(formatDuration(s.audioSeconds)) of audio in \(String(format: "%.1f", s.wallSeconds)) s; \(counters.requests) API requests, \(counters.tokensSpent) Pipedrive tokens\(counters.rateLimited > 0 ? ", \(counters.rateLimited) rate-limited" : "")")
        }
    }
}

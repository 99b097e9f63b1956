import ArgumentParser
import CallApp
import CallAPI
import CallPipeline
import Foundation
import Logging
import UnixSignals

extension CallRecCommand {
    struct Upload: AsyncParsableCommand, StoreCommand {
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
            try requireDirectory(directory)
            guard sandbox else {
                return try Self.exit(try await upload(environment: try APIClients.environment(config: config), logger: logger))
            }
            let sandboxDirectory = store.settings.sandboxDirectory
            let outcome = try await SandboxSharing.run(directory: sandboxDirectory, logger: logger, notice: standardError, interrupted: {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    standardError("\n\(signal): stopping the sandbox; the runs still using it fail their requests (a re-run goes on)")
                    return
                }
            }) { sandbox in
                try await SandboxSharing.seedNamedCallLogs(in: directory, sandbox: sandbox, notice: standardError)
                return try await upload(environment: try SandboxSharing.environment(sandbox), logger: logger) { report in
                    // What the sandbox holds, above the run's one-line summary.
                    guard !global.json else { return }
                    do {
                        print(SandboxView(snapshot: try await sandbox.snapshot(), report: report, directory: sandboxDirectory).text)
                    } catch {
                        logger.warning("cannot read the sandbox's state", metadata: ["error": "\(error)"])
                    }
                }
            }
            try Self.exit(outcome)
        }

        /// 2 when the run stopped on a refused credential; 4 at a full disk; else 1 when a
        /// recording failed; 3 when none did but some wait for a later run (a budget, a
        /// rate-limit pause, an unreachable API, a file still being written).
        static func exit(_ outcome: UploadSession.Outcome) throws {
            let summary = outcome.report.summary
            if let halted = outcome.halted {
                try stopped(by: halted, left: "Nothing was lost: \(summary.waiting) recording(s) wait for the next run, which goes on from here.")
            }
            try exitStatus(summary)
        }

        /// The whole run; `beforeSummary` prints what goes above the run's one-line summary,
        /// which comes last.
        func upload(environment: APIEnvironment, logger: Logger,
                    beforeSummary: (BatchReport) async -> Void = { _ in }) async throws -> UploadSession.Outcome {
            var options = UploadRun.Options()
            options.settings = try transcode.settings()
            options.validation = validation.configuration()
            options.jobs = global.jobs
            options.uploadSlots = uploadSlots
            options.settle = settle.value
            let session = UploadSession(directory: directory, store: store.settings, options: options, spoolRetention: try retention.retention())
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
}

import ArgumentParser
import CallApp
import CallAudio
import CallJobs
import CallPipeline
import CallStore
import Foundation
import Logging

// The commands on a recording directory (and probe on files): transcode offline, enqueue for the worker.

extension CallRecCommand {
    struct Transcode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate, transcode and chunk every recording under a directory (no network).",
            discussion: """
                The output mirrors the input's relative paths: one part is <stem>.mp3, several are <stem>-part01.mp3, -part02, … A re-run \
                skips recordings whose outputs are complete.
                """
        )

        @Argument(help: "The recording directory (walked recursively; symlinks are refused).") var directory: String
        @Option(help: "Where the MP3 parts go.") var out: String
        @Flag(help: "Redo recordings whose outputs are already complete.") var force = false
        @Flag(help: "Fail recordings without a sidecar (as upload does) instead of warning.") var requireSidecar = false

        @OptionGroup var settle: SettleOption
        @OptionGroup var global: GlobalOptions
        @OptionGroup(title: "Transcode and chunk") var transcode: TranscodeOptions
        @OptionGroup(title: "Validation") var validation: ValidationOptions

        func run() async throws {
            let logger = global.makeLogger()
            var options = TranscodeBatch.Options()
            options.settings = try transcode.settings()
            options.validation = validation.configuration()
            options.jobs = global.jobs
            options.force = force
            options.requireSidecar = requireSidecar
            options.settle = settle.value
            try requireDirectory(directory)
            let progress = ProgressReporter(logger: logger, quiet: false)
            let report = try await TranscodeBatch(root: directory, output: out, options: options, logger: logger).run { progress.handle($0) }
            progress.finish()
            try global.emit(report, report.transcodeLines(output: out))
            try exitStatus(report.summary)
        }
    }

    struct Probe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode and validate recordings; print their facts and verdicts."
        )

        @Argument(help: "Recordings to probe.") var files: [String]

        @OptionGroup var global: GlobalOptions
        @OptionGroup var validation: ValidationOptions

        func run() async throws {
            let document = ProbeDocument(await ProbeEntry.analyze(files, jobs: global.jobs, configuration: validation.configuration()))
            try global.emit(document, document.lines)
            try fail(ExitStatus.someFailed, if: !document.succeeded)
        }
    }

    struct Enqueue: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register every recording under a directory and put its transcode on the queue.",
            discussion: """
                Each recording needs its sidecar (<stem>.json). A recording is registered once, by the SHA-256 of its bytes: enqueueing \
                the same directory again adds nothing, and a deleted recording is never enqueued again. `callrec worker` runs the jobs.
                """
        )

        @Argument(help: "The recording directory (walked recursively; symlinks are refused).") var directory: String

        @Option(help: "Read the sources, state and database from this file (JSON with comments).") var config: String?
        var configFile: String? { config }
        @OptionGroup var settle: SettleOption
        @OptionGroup(title: "PBX source") var source: SourceOptions
        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            // The source's flags and config first: a bad value exits 2 before any file is read.
            let source = try SourceConfiguration.resolve(directory: directory, request: self.source.request, config: config)
            try requireDirectory(directory)
            let state = try self.store.settings(config: config).state
            let report = try await withStore(creating: true) { store, logger in
                if let source {
                    return try await UploadRun.intake(SourceIntake(settings: source, store: store, settle: settle.value, logger: logger,
                                                                   excluding: [state]))
                }
                return try await EnqueueBatch(root: directory, store: store, jobs: global.jobs, excluding: [state], settle: settle.value,
                                              logger: logger).run()
            }
            try global.emit(report, report.enqueueLines)
            // A full disk stops registration as it stops an upload: 4, nothing lost.
            try fail(ExitStatus.diskFull, if: report.files.contains { $0.error?.code == JobFailure.diskFullCode })
            try exitStatus(report.summary)
        }
    }
}

/// 2 when an upload run stopped on a refused credential (`halted`); 4 at a full disk; else 1 when
/// a recording failed; 3 when none did but some wait for a later run (a budget, a rate-limit
/// pause, an unreachable API, a file still being written); else 0.
func exitStatus(_ summary: BatchReport.Summary, halted: JobFailure? = nil, origins: [String: String] = [:]) throws {
    if let halted {
        try stopped(by: halted, left: "Nothing was lost: \(summary.waiting) recording(s) wait for the next run, which goes on from here.", origins: origins)
    }
    // A full disk first: waiting alone does not mend it (a cron job must not take it for a 3).
    try fail(ExitStatus.diskFull, if: summary.stopped?.code == JobFailure.diskFullCode)
    try fail(ExitStatus.someFailed, if: summary.failed > 0)
    try fail(ExitStatus.waiting, if: summary.waiting > 0)
}

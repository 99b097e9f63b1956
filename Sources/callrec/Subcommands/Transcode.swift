import ArgumentParser
import CallApp
import CallPipeline
import Foundation
import Logging

extension CallRecCommand {
    struct Transcode: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate, transcode and chunk every recording under a directory (no network).",
            discussion: """
                The output mirrors the input's relative paths: one part is <stem>.mp3, several are \
                <stem>-part01.mp3, -part02, … A re-run skips recordings whose outputs are complete.
                """
        )

        @Argument(help: "The recording directory (walked recursively; symlinks are refused).")
        var directory: String

        @Option(help: "Where the MP3 parts go.")
        var out: String

        @Flag(help: "Redo recordings whose outputs are already complete.")
        var force = false

        @Flag(help: "Fail recordings without a sidecar (as upload does) instead of warning.")
        var requireSidecar = false

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
}

/// 1 when a recording failed; 3 when none did but some wait for a later run (still being
/// written, a spent budget); else 0.
func exitStatus(_ summary: BatchReport.Summary) throws {
    // A full disk first: waiting alone does not mend it (a cron job must not take it for a 3).
    try fail(ExitStatus.diskFull, if: summary.stopped?.code == JobFailure.diskFullCode)
    try fail(ExitStatus.someFailed, if: summary.failed > 0)
    try fail(ExitStatus.waiting, if: summary.waiting > 0)
}

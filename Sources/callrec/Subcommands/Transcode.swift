import ArgumentParser
import CallAudio
import CallJobs
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
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("\(directory) is not a directory")
            }
            let batch = TranscodeBatch(root: directory, output: out, options: options, logger: logger)
            let progress = ProgressReporter(logger: logger, quiet: false)
            let report = try await batch.run { progress.handle($0) }
            progress.finish()
            if global.json {
                try writeJSON(report)
            } else {
                printProblems(report)
                let s = report.summary
                let speed = s.wallSeconds > 0 ? s.audioSeconds / s.wallSeconds : 0
                print("\(s.ok) ok, \(s.failed) failed, \(s.skipped) skipped\(s.waiting > 0 ? ", \(s.waiting) waiting" : ""); \(formatDuration(s.audioSeconds)) of audio in \(String(format: "%.1f", s.wallSeconds)) s (\(Int(speed))× realtime) → \(out)")
            }
            try exitStatus(report.summary)
        }
    }
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

/// The failed and waiting files, one line each on stderr.
func printProblems(_ report: BatchReport, waiting: Bool = true) {
    for file in report.files where file.status == .failed || (waiting && file.status == .waiting) {
        standardError("\(file.status == .failed ? "failed " : "waiting") \(file.error?.code ?? "?"): \(file.error?.message ?? "")")
    }
}

/// 1 when a recording failed; 3 when none did but some wait for a later run (still being
/// written, a spent budget); else 0.
func exitStatus(_ summary: BatchReport.Summary) throws {
    // A full disk first: waiting alone does not mend it (a cron job must not take it for a 3).
    if summary.stopped?.code == JobFailure.diskFullCode { throw ExitCode(ExitStatus.diskFull) }
    if summary.failed > 0 { throw ExitCode(ExitStatus.someFailed) }
    if summary.waiting > 0 { throw ExitCode(ExitStatus.waiting) }
}

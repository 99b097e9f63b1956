import ArgumentParser
import CallJobs
import CallPipeline
import CallStore
import Foundation

extension CallRecCommand {
    struct Enqueue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register every recording under a directory and put its transcode on the queue.",
            discussion: """
                Each recording needs its sidecar (<stem>.json). A recording is registered once, by the \
                SHA-256 of its bytes: enqueueing the same directory again adds nothing, and a deleted \
                recording is never enqueued again. `callrec worker` runs the jobs.
                """
        )

        @Argument(help: "The recording directory (walked recursively; symlinks are refused).")
        var directory: String

        @OptionGroup var settle: SettleOption
        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.makeLogger()
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("\(directory) is not a directory")
            }
            let report = try await withStore(store, logger: logger, creating: true) { store in
                try await EnqueueBatch(root: directory, store: store, jobs: global.jobs, excluding: [self.store.state], settle: settle.value,
                                       logger: logger).run()
            }
            if global.json {
                try writeJSON(report)
            } else {
                printProblems(report)
                let s = report.summary
                print("\(s.ok) enqueued, \(s.skipped) known already, \(s.failed) failed\(s.waiting > 0 ? ", \(s.waiting) waiting" : "")")
            }
            // A full disk stops registration as it stops an upload: 4, nothing lost.
            if report.files.contains(where: { $0.error?.code == JobFailure.diskFullCode }) { throw ExitCode(ExitStatus.diskFull) }
            try exitStatus(report.summary)
        }
    }
}

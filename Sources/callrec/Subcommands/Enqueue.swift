import ArgumentParser
import CallApp
import CallPipeline
import CallStore
import Foundation

extension CallRecCommand {
    struct Enqueue: AsyncParsableCommand, StoreCommand {
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
            try requireDirectory(directory)
            let report = try await withStore(creating: true) { store, logger in
                try await EnqueueBatch(root: directory, store: store, jobs: global.jobs, excluding: [self.store.state], settle: settle.value,
                                       logger: logger).run()
            }
            try global.emit(report, report.enqueueLines)
            // A full disk stops registration as it stops an upload: 4, nothing lost.
            try fail(ExitStatus.diskFull, if: report.files.contains { $0.error?.code == JobFailure.diskFullCode })
            try exitStatus(report.summary)
        }
    }
}

import ArgumentParser
import CallApp
import CallPipeline
import CallStore
import Foundation

extension CallRecCommand {
    struct Trash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The trash: spools of deleted recordings, under <state>/trash/.",
            subcommands: [Purge.self]
        )

        struct Purge: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove trash folders older than --older-than (default 14d).",
                discussion: """
                    A folder is removed only when its recording's deletion has finished (every remote \
                    step done); the spool of a deletion that is still open is kept.
                    """
            )

            @Option(help: "Age: 14d, 36h, 90m, 30s or plain seconds.")
            var olderThan: String = "14d"

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func validate() throws { _ = try requireAge(olderThan, option: "--older-than") }

            func run() async throws {
                let logger = global.makeLogger()
                let age = try requireAge(olderThan, option: "--older-than")
                let report = try await store.settings.withStore(logger: logger) { await TrashPurge.run($0, settings: store.settings, olderThan: age) }
                if global.json {
                    try writeJSON(report)
                    return
                }
                for kept in report.kept { standardError("kept \(kept.name): \(kept.reason)") }
                print("removed \(report.removed.count) folder(s), \(report.bytes) bytes; kept \(report.kept.count); \(report.young) younger than \(olderThan)")
            }
        }
    }
}

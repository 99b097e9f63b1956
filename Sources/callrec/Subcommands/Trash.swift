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

        struct Purge: AsyncParsableCommand, StoreCommand {
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
                let age = try requireAge(olderThan, option: "--older-than")
                let report = try await withStore { store, _ in await TrashPurge.run(store, settings: self.store.settings, olderThan: age) }
                try global.emit(report, report.lines(olderThan: olderThan))
            }
        }
    }
}

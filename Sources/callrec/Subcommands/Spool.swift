import ArgumentParser
import CallApp
import CallPipeline
import CallStore
import Foundation

extension CallRecCommand {
    /// `callrec spool` (not named `Spool`: inside the command types that would hide
    /// CallPipeline's `Spool`).
    struct SpoolCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "spool",
            abstract: "The spool: the MP3 parts of each recording, under <state>/spool/.",
            subcommands: [Prune.self]
        )

        struct Prune: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove the MP3s of recordings uploaded longer ago than --older-than (default 30d).",
                discussion: """
                    Only recordings that are uploaded, with every part attached to its call log and no \
                    transcode, upload or delete job live: the call logs keep the audio, the source files \
                    are never touched. A recording not uploaded yet, failed, or being deleted keeps its \
                    spool. Each prune is audited (action spool_pruned). `upload` and `worker` prune on \
                    their own after --spool-retention (default 30d).
                    """
            )

            @Option(help: "Age: 30d, 36h, 90m, 30s or plain seconds (counted from the last part's upload).")
            var olderThan: String = "30d"
            @Flag(help: "Say what would be removed; remove nothing.")
            var dryRun = false

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func validate() throws { _ = try requireAge(olderThan, option: "--older-than") }

            func run() async throws {
                let age = try requireAge(olderThan, option: "--older-than")
                // (A --state holding no database is refused by the store options: nothing to prune.)
                let report = try await withStore { store, _ in
                    try await SpoolPrune(spool: Spool(root: self.store.settings.spoolDirectory), store: store, actor: processActor("spool prune"))
                        .run(olderThan: age, dryRun: dryRun)
                }
                try global.emit(report, report.lines(dryRun: dryRun))
            }
        }
    }
}

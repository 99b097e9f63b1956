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

        struct Prune: AsyncParsableCommand {
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
                let logger = global.makeLogger()
                let age = try requireAge(olderThan, option: "--older-than")
                // (A --state holding no database is refused by the store options: nothing to prune.)
                let report = try await store.settings.withStore(logger: logger) { store in
                    try await SpoolPrune(spool: Spool(root: self.store.settings.spoolDirectory), store: store, actor: processActor("spool prune"))
                        .run(olderThan: age, dryRun: dryRun)
                }
                if global.json {
                    try writeJSON(report)
                    return
                }
                for entry in report.pruned {
                    print("\(dryRun ? "would remove" : "removed") \(entry.path) (\(entry.parts) part(s), \(DiskSpace.format(entry.bytes)), uploaded \(ISO8601DateFormatter().string(from: entry.uploadedAt)))")
                }
                for kept in report.kept { standardError("kept \(kept.path): \(kept.reason)") }
                if !report.unknown.isEmpty {
                    standardError("left alone: \(report.unknown.count) spool folder(s) of recordings the ledger does not know")
                }
                print(report.line)
            }
        }
    }
}

/// `--spool-retention`: how long `upload` and `worker` keep an uploaded recording's MP3s.
struct SpoolRetentionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Remove uploaded recordings' MP3s from the spool this long after their upload: 30d, 12h, … or keep. Default: CALLREC_SPOOL_RETENTION, else 30d.",
        valueName: "age"))
    var spoolRetention: String?

    func validate() throws { _ = try retention() }

    /// The retention (nil: keep forever).
    func retention(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Duration? {
        if let spoolRetention { return try parseRetention(spoolRetention, name: "--spool-retention") }
        if let text = environment["CALLREC_SPOOL_RETENTION"], !text.isEmpty {
            return try parseRetention(text, name: "CALLREC_SPOOL_RETENTION")
        }
        return SpoolPrune.defaultRetention
    }

    private func parseRetention(_ text: String, name: String) throws -> Duration? {
        if ["keep", "forever"].contains(text.lowercased()) { return nil }
        return try requireAge(text, option: name, orElse: " or keep")
    }
}


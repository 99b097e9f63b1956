import ArgumentParser
import CallApp
import CallPipeline
import CallStore
import CallSupport
import Foundation

// The commands on the state: its counts, the queue, the spool and the trash.

extension CallRecCommand {
    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect and repair the job queue.",
            subcommands: [List.self, Retry.self, Cancel.self, Purge.self]
        )

        struct List: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List jobs (newest last).")

            @Option(help: "Only jobs in these states (comma-separated): available, running, completed, discarded, cancelled.") var jobState: String?
            @Option(help: "Only jobs of this queue (transcode, upload, delete, bench).") var queue: String?
            @Option(help: "Only jobs of this kind.") var kind: String?
            @Option(help: "At most this many jobs.") var limit: Int = 100

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let states = try JobState.parseList(jobState)
                let rows = try await withStore { store, _ in
                    try await JobRow.list(store, JobQuery(states: states, queue: queue, kind: kind, limit: limit))
                }
                try global.emit(rows, JobRow.table(rows))
            }
        }

        struct Retry: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make discarded or cancelled jobs available again (attempts start over), or waiting jobs due now.",
                discussion: """
                    A job that waits (snoozed until the daily Pipedrive budget renews, backing off, or waiting for disk space) becomes due \
                    now and keeps its attempts: after buying more tokens, for example, `callrec queue retry --all-waiting` and a new run \
                    go on at once. A retried transcode or upload whose recording failed makes the recording ready for it again (audited). \
                    It prints what changed, and which ids were not found or left alone and why; it exits 1 when an id does not exist, a \
                    job was left alone, or nothing changed.
                    """)

            @Argument(help: "Job ids.") var ids: [Int64] = []
            @Flag(help: "Every discarded job (of --kind, if given).") var allDiscarded = false
            @Flag(help: "Every available job that is not due yet (of --kind, if given).") var allWaiting = false
            @Option(help: "With --all-discarded or --all-waiting: only jobs of this kind.") var kind: String?

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func validate() throws {
                let all = allDiscarded || allWaiting
                if ids.isEmpty == !all { throw ValidationError("name job ids, or --all-discarded / --all-waiting (not both)") }
            }

            func run() async throws {
                let report = try await withStore { store, _ in
                    let ids = try await JobRow.retryIDs(store, ids: ids, allDiscarded: allDiscarded, allWaiting: allWaiting, kind: kind)
                    return try await QueueRetry.run(ids: ids, store: store, actor: processActor("queue retry"))
                }
                try global.emit(report, report.lines)
                try fail(ExitStatus.someFailed, if: !report.succeeded(bulk: allDiscarded || allWaiting))
            }
        }

        struct Cancel: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(
                abstract: "Cancel available or running jobs (a running job's worker cannot record its result).")

            @Argument(help: "Job ids.") var ids: [Int64]

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let change = QueueChange(action: "cancelled", asked: ids, done: try await withStore { store, _ in try await store.cancel(ids: ids) })
                try global.emit(change, change.lines)
            }
        }

        struct Purge: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(abstract: "Delete finished jobs older than an age.")

            @Option(help: "States to purge (comma-separated; finished states only).") var jobState: String = "discarded,cancelled"
            @Option(help: "Only jobs finished longer ago than this (30d, 12h, 15m, 45s).") var olderThan: String = "30d"

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let states = try JobState.parseList(jobState) ?? []
                guard states.isSubset(of: JobState.final) else {
                    throw ValidationError("--job-state: only finished states (completed, discarded, cancelled) can be purged")
                }
                let age = try requireAge(olderThan, option: "--older-than")
                let purged = try await withStore { store, _ in try await JobRow.purge(store, states: states, olderThan: age) }
                try global.emit(["purged": purged], [.out("purged \(purged) job(s)")])
            }
        }
    }

    struct Status: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ledger and queue counts, and how long the oldest waiting job has waited."
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let document = try await withStore { store, _ in
                try await StoreStatus.load(store, hints: DeleteHints(store: self.store.settings))
            }
            try global.emit(document, document.lines)
        }
    }

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
                    Only recordings that are uploaded, with every part attached to its call log and no transcode, upload or delete job \
                    live: the call logs keep the audio, the source files are never touched. A recording not uploaded yet, failed, or being \
                    deleted keeps its spool. Each prune is audited (action spool_pruned). `upload` and `worker` prune on their own after \
                    --spool-retention (default 30d).
                    """
            )

            @Option(help: "Age: 30d, 36h, 90m, 30s or plain seconds (counted from the last part's upload).") var olderThan: String = "30d"
            @Flag(help: "Say what would be removed; remove nothing.") var dryRun = false

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

    struct Trash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The trash: spools of deleted recordings, under <state>/trash/.",
            subcommands: [Purge.self]
        )

        struct Purge: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove trash folders older than --older-than (default 14d).",
                discussion: """
                    A folder is removed only when its recording's deletion has finished (every remote step done); the spool of a deletion \
                    that is still open is kept.
                    """
            )

            @Option(help: "Age: 14d, 36h, 90m, 30s or plain seconds.") var olderThan: String = "14d"

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

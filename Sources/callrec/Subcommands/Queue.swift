import ArgumentParser
import CallPipeline
import CallStore
import CallSupport
import Foundation

extension CallRecCommand {
    struct Queue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Inspect and repair the job queue.",
            subcommands: [List.self, Retry.self, Cancel.self, Purge.self]
        )

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List jobs (newest last).")

            @Option(help: "Only jobs in these states (comma-separated): available, running, completed, discarded, cancelled.")
            var jobState: String?
            @Option(help: "Only jobs of this queue (transcode, upload, delete, bench).")
            var queue: String?
            @Option(help: "Only jobs of this kind.")
            var kind: String?
            @Option(help: "At most this many jobs.")
            var limit: Int = 100

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            struct Row: Encodable {
                var id: Int64
                var queue: String
                var kind: String
                var state: String
                var attempt: Int
                var maxAttempts: Int
                var rescues: Int
                var runAt: String
                var uniqueKey: String?
                var args: String
                var lastError: String?
                enum CodingKeys: String, CodingKey {
                    case id, queue, kind, state, attempt, rescues, args
                    case maxAttempts = "max_attempts", runAt = "run_at", uniqueKey = "unique_key", lastError = "last_error"
                }
            }

            func run() async throws {
                let logger = global.makeLogger()
                let states = try parseStates(jobState)
                let jobs = try await withStore(store, logger: logger) { store in
                    try await store.jobs(JobQuery(states: states, queue: queue, kind: kind, limit: limit))
                }
                let format = ISO8601DateFormatter()
                let rows = jobs.map {
                    Row(id: $0.id, queue: $0.queue, kind: $0.kind, state: $0.state.rawValue, attempt: $0.attempt, maxAttempts: $0.maxAttempts,
                        rescues: $0.rescueCount, runAt: format.string(from: $0.runAt), uniqueKey: $0.uniqueKey, args: $0.args, lastError: $0.lastError)
                }
                if global.json {
                    try writeJSON(rows)
                    return
                }
                print("ID\tQUEUE\tKIND\tSTATE\tATTEMPT\tRUN AT\tLAST ERROR")
                for row in rows {
                    print("\(row.id)\t\(row.queue)\t\(row.kind)\t\(row.state)\t\(row.attempt)/\(row.maxAttempts)\t\(row.runAt)\t\(row.lastError ?? "")")
                }
            }
        }

        struct Retry: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Make discarded or cancelled jobs available again (attempts start over), or waiting jobs due now.",
                discussion: """
                    A job that waits (snoozed until the daily Pipedrive budget renews, backing off, or \
                    waiting for disk space) becomes due now and keeps its attempts: after buying more \
                    tokens, for example, `callrec queue retry --all-waiting` and a new run go on at once. \
                    A retried transcode or upload whose recording failed makes the recording ready for it \
                    again (audited). It prints what changed, and which ids were not found or left alone \
                    and why; it exits 1 when an id does not exist, a job was left alone, or nothing changed.
                    """)

            @Argument(help: "Job ids.")
            var ids: [Int64] = []
            @Flag(help: "Every discarded job (of --kind, if given).")
            var allDiscarded = false
            @Flag(help: "Every available job that is not due yet (of --kind, if given).")
            var allWaiting = false
            @Option(help: "With --all-discarded or --all-waiting: only jobs of this kind.")
            var kind: String?

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func validate() throws {
                let all = allDiscarded || allWaiting
                if ids.isEmpty == !all { throw ValidationError("name job ids, or --all-discarded / --all-waiting (not both)") }
            }

            func run() async throws {
                let logger = global.makeLogger()
                let report = try await withStore(store, logger: logger) { store in
                    var ids = self.ids
                    if allDiscarded {
                        ids += try await store.jobs(JobQuery(states: [.discarded], kind: kind, limit: 1_000_000)).map(\.id)
                    }
                    if allWaiting {
                        let now = try await store.now()
                        ids += try await store.jobs(JobQuery(states: [.available], kind: kind, limit: 1_000_000)).filter { $0.runAt > now }.map(\.id)
                    }
                    return try await QueueRetry.run(ids: ids, store: store, actor: "queue retry (\(ProcessInfo.processInfo.hostName):\(getpid()))")
                }
                if global.json {
                    try writeJSON(report)
                } else {
                    Self.print(report)
                }
                // Named ids must all be done; a bulk selection (--all-…) may meet jobs whose work
                // another job already did (they are listed, and fail nothing) but must change something.
                if report.changed == 0 || !report.notFound.isEmpty || (!(allDiscarded || allWaiting) && !report.notRetryable.isEmpty) {
                    throw ExitCode(ExitStatus.someFailed)
                }
            }

            static func print(_ report: QueueRetry.Report) {
                func list(_ ids: [Int64]) -> String { ids.map(String.init).joined(separator: " ") }
                if report.changed == 0 {
                    Swift.print("nothing changed")
                }
                if !report.retried.isEmpty {
                    Swift.print("retried \(report.retried.count) job(s), attempts start over: \(list(report.retried))")
                }
                if !report.woken.isEmpty {
                    Swift.print("made \(report.woken.count) waiting job(s) due now: \(list(report.woken))")
                }
                for rearmed in report.rearmed {
                    Swift.print("  job \(rearmed.job): \(rearmed.path) is \(rearmed.state) again (it had failed with \(rearmed.error))")
                }
                if !report.notFound.isEmpty {
                    standardError("no such job: \(list(report.notFound))")
                }
                for refusal in report.notRetryable {
                    standardError("left alone: job \(refusal.id): \(refusal.reason)")
                }
            }
        }

        struct Cancel: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Cancel available or running jobs (a running job's worker cannot record its result).")

            @Argument(help: "Job ids.")
            var ids: [Int64]

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let logger = global.makeLogger()
                let cancelled = try await withStore(store, logger: logger) { try await $0.cancel(ids: ids) }
                report(action: "cancelled", asked: ids, done: cancelled, json: global.json)
            }
        }

        struct Purge: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete finished jobs older than an age.")

            @Option(help: "States to purge (comma-separated; finished states only).")
            var jobState: String = "discarded,cancelled"
            @Option(help: "Only jobs finished longer ago than this (30d, 12h, 15m, 45s).")
            var olderThan: String = "30d"

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func run() async throws {
                let logger = global.makeLogger()
                let states = try parseStates(jobState) ?? []
                guard states.isSubset(of: JobState.final) else {
                    throw ValidationError("--job-state: only finished states (completed, discarded, cancelled) can be purged")
                }
                let age = try requireAge(olderThan, option: "--older-than")
                let purged = try await withStore(store, logger: logger) { store in
                    let now = try await store.now()
                    return try await store.purge(states: states, finalizedBefore: now.addingTimeInterval(-age.seconds))
                }
                if global.json { try writeJSON(["purged": purged]) } else { print("purged \(purged) job(s)") }
            }
        }
    }
}

func parseStates(_ text: String?) throws -> Set<JobState>? {
    guard let text else { return nil }
    var states: Set<JobState> = []
    for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
        guard let state = JobState(rawValue: name) else {
            throw ValidationError("\(name) is not a job state (\(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        states.insert(state)
    }
    return states
}

private func report(action: String, asked: [Int64], done: [Int64], json: Bool) {
    let skipped = Set(asked).subtracting(done).sorted()
    if json {
        try? writeJSON([action: done, "skipped": skipped])
        return
    }
    print("\(action) \(done.count) job(s)" + (done.isEmpty ? "" : ": \(done.map(String.init).joined(separator: " "))"))
    if !skipped.isEmpty {
        standardError("left alone (not in a state that allows it, or its recording has another live job): \(skipped.map(String.init).joined(separator: " "))")
    }
}

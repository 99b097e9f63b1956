import ArgumentParser
import CallStore
import Foundation

extension CallRecCommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ledger and queue counts, and how long the oldest waiting job has waited."
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        struct Document: Encodable {
            var store: String
            var recordings: [String: Int]
            var jobs: [String: Int]
            var queues: [String: [String: Int]]
            var due: Int
            var oldestAvailableSeconds: Double
            var nextRunAt: String?
            /// Open deletions that need a person: a step failed, or no job will run them.
            var stuckDeletions: [StuckDeletion]

            enum CodingKeys: String, CodingKey {
                case store, recordings, jobs, queues, due
                case oldestAvailableSeconds = "oldest_available_seconds"
                case nextRunAt = "next_run_at"
                case stuckDeletions = "stuck_deletions"
            }
        }

        struct StuckDeletion: Encodable {
            var key: String
            var path: String
            var deletionID: String
            var reason: String
            /// The steps still to do: `target state: detail`.
            var steps: [String]
            /// What to type.
            var next: [String]

            enum CodingKeys: String, CodingKey {
                case key, path, reason, steps, next
                case deletionID = "deletion_id"
            }
        }

        /// Open deletions with a failed step, or with steps to do and no live job.
        static func stuckDeletions(_ store: any CallStore, hints: DeleteHints) async throws -> [StuckDeletion] {
            var stuck: [StuckDeletion] = []
            for deletion in try await store.openDeletions() {
                let open = deletion.steps.filter { !$0.state.isSettled }
                let failed = open.contains { $0.state == .failed }
                let queued = !(try await store.jobs(JobQuery(states: JobState.live, uniqueKey: "delete:\(deletion.recordingKey)", limit: 1)).isEmpty)
                guard failed || !queued else { continue }
                let path = try await store.recording(key: deletion.recordingKey)?.path ?? ""
                let next = failed ? hints.stuck(key: deletion.recordingKey, steps: deletion.steps)
                    : ["nothing is queued to finish it; type: \(hints.again(key: deletion.recordingKey))"]
                stuck.append(StuckDeletion(key: deletion.recordingKey, path: path, deletionID: deletion.id, reason: deletion.reason,
                                           steps: open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { ": \($0)" } ?? "")" }, next: next))
            }
            return stuck
        }

        func run() async throws {
            let logger = global.makeLogger()
            let document = try await withStore(store, logger: logger) { store in
                let counts = try await store.recordingCounts()
                let stats = try await store.queueStats()
                return Document(
                    store: store.location,
                    recordings: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                    jobs: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, stats[$0]) }),
                    queues: stats.byQueue.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) },
                    due: stats.due,
                    oldestAvailableSeconds: ((stats.oldestDueSeconds ?? 0) * 1000).rounded() / 1000,
                    nextRunAt: stats.nextRunAt.map { ISO8601DateFormatter().string(from: $0) },
                    stuckDeletions: try await Self.stuckDeletions(store, hints: DeleteHints(store: self.store)))
            }
            if global.json {
                try writeJSON(document)
                return
            }
            print("store: \(document.store)")
            print("recordings: " + RecordingState.allCases.map { "\($0.rawValue) \(document.recordings[$0.rawValue] ?? 0)" }.joined(separator: ", "))
            print("jobs: " + JobState.allCases.map { "\($0.rawValue) \(document.jobs[$0.rawValue] ?? 0)" }.joined(separator: ", "))
            for (queue, counts) in document.queues.sorted(by: { $0.key < $1.key }) {
                print("  \(queue): " + JobState.allCases.compactMap { s in counts[s.rawValue].flatMap { $0 > 0 ? "\(s.rawValue) \($0)" : nil } }.joined(separator: ", "))
            }
            if document.due > 0 {
                print("oldest due job has waited \(String(format: "%.1f", document.oldestAvailableSeconds)) s")
            }
            if let next = document.nextRunAt { print("next scheduled job: \(next)") }
            if !document.stuckDeletions.isEmpty {
                print("deletions stuck: \(document.stuckDeletions.count)")
                for stuck in document.stuckDeletions {
                    print("  \(stuck.path) (\(stuck.key)), deletion \(stuck.deletionID):")
                    for next in stuck.next { print("    \(next)") }
                }
            }
        }
    }
}

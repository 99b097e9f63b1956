import ArgumentParser
import CallApp
import CallStore
import Foundation

extension CallRecCommand {
    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ledger and queue counts, and how long the oldest waiting job has waited."
        )

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.makeLogger()
            let document = try await store.settings.withStore(logger: logger) { store in
                try await StoreStatus.load(store, hints: DeleteHints(store: self.store.settings))
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

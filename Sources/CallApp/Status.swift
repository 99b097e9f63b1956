public import CallStore
import Foundation

/// `callrec status`: ledger and queue counts, how long the oldest due job has waited, and the
/// deletions that need a person.
public struct StoreStatus: Encodable, Sendable {
    public var store: String
    public var recordings: [String: Int]
    public var jobs: [String: Int]
    public var queues: [String: [String: Int]]
    public var due: Int
    public var oldestAvailableSeconds: Double
    public var nextRunAt: String?
    /// Open deletions that need a person: a step failed, or no job will run them.
    public var stuckDeletions: [StuckDeletion]

    enum CodingKeys: String, CodingKey {
        case store, recordings, jobs, queues, due
        case oldestAvailableSeconds = "oldest_available_seconds"
        case nextRunAt = "next_run_at"
        case stuckDeletions = "stuck_deletions"
    }

    public static func load(_ store: any CallStore, hints: DeleteHints) async throws -> StoreStatus {
        let counts = try await store.recordingCounts()
        let stats = try await store.queueStats()
        return StoreStatus(
            store: store.location,
            recordings: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            jobs: Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0.rawValue, stats[$0]) }),
            queues: stats.byQueue.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) },
            due: stats.due,
            oldestAvailableSeconds: ((stats.oldestDueSeconds ?? 0) * 1000).rounded() / 1000,
            nextRunAt: stats.nextRunAt.map { ISO8601DateFormatter().string(from: $0) },
            stuckDeletions: try await StuckDeletion.all(store, hints: hints))
    }
}

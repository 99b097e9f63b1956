public import CallStore
import CallSupport
import Foundation

/// `callrec queue ls`'s row: one job.
public struct JobRow: Encodable, Sendable {
    public var id: Int64
    public var queue: String
    public var kind: String
    public var state: String
    public var attempt: Int
    public var maxAttempts: Int
    public var rescues: Int
    public var runAt: String
    public var uniqueKey: String?
    public var args: String
    public var lastError: String?
    enum CodingKeys: String, CodingKey {
        case id, queue, kind, state, attempt, rescues, args
        case maxAttempts = "max_attempts", runAt = "run_at", uniqueKey = "unique_key", lastError = "last_error"
    }

    /// The jobs `query` selects, newest last.
    public static func list(_ store: any CallStore, _ query: JobQuery) async throws -> [JobRow] {
        let format = ISO8601DateFormatter()
        return try await store.jobs(query).map {
            JobRow(id: $0.id, queue: $0.queue, kind: $0.kind, state: $0.state.rawValue, attempt: $0.attempt, maxAttempts: $0.maxAttempts,
                   rescues: $0.rescueCount, runAt: format.string(from: $0.runAt), uniqueKey: $0.uniqueKey, args: $0.args, lastError: $0.lastError)
        }
    }

    /// `queue retry`'s jobs: `ids`, and every discarded job, every available job not due yet
    /// (of `kind`, if given).
    public static func retryIDs(_ store: any CallStore, ids: [Int64], allDiscarded: Bool, allWaiting: Bool, kind: String?) async throws -> [Int64] {
        var ids = ids
        if allDiscarded {
            ids += try await store.jobs(JobQuery(states: [.discarded], kind: kind, limit: 1_000_000)).map(\.id)
        }
        if allWaiting {
            let now = try await store.now()
            ids += try await store.jobs(JobQuery(states: [.available], kind: kind, limit: 1_000_000)).filter { $0.runAt > now }.map(\.id)
        }
        return ids
    }

    /// `queue purge`: deletes jobs in `states` finished longer ago than `age` (the store's clock);
    /// returns how many.
    public static func purge(_ store: any CallStore, states: Set<JobState>, olderThan age: Duration) async throws -> Int {
        let now = try await store.now()
        return try await store.purge(states: states, finalizedBefore: now.addingTimeInterval(-age.seconds))
    }
}

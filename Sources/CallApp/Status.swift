import CallPipeline
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
    /// The local index of the CRM (nil: never built).
    public var crmIndex: CRMIndexStatus?
    /// The latest recordings' matches, newest first (from the last 5,000 audit entries).
    public var matches: [RecentMatch]

    /// What the phone index holds and when each listing last ran.
    public struct CRMIndexStatus: Encodable, Sendable {
        public var rows: [String: Int]
        public var lastRefreshAt: String?
        public var lastFullPassAt: String?
        /// A listing killed part-way that the next refresh resumes.
        public var underWay: [String]

        enum CodingKeys: String, CodingKey {
            case rows, underWay = "under_way"
            case lastRefreshAt = "last_refresh_at", lastFullPassAt = "last_full_pass_at"
        }
    }

    /// One recording's match: what its call log links and why.
    public struct RecentMatch: Encodable, Sendable {
        public var key: String
        public var at: String
        public var reason: String
        public var linked: String
        public var explanation: String
    }

    enum CodingKeys: String, CodingKey {
        case store, recordings, jobs, queues, due
        case oldestAvailableSeconds = "oldest_available_seconds"
        case nextRunAt = "next_run_at"
        case stuckDeletions = "stuck_deletions"
        case crmIndex = "crm_index", matches
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
            stuckDeletions: try await StuckDeletion.all(store, hints: hints),
            crmIndex: try await crmIndex(store),
            matches: try await recentMatches(store))
    }

    static func crmIndex(_ store: any CallStore) async throws -> CRMIndexStatus? {
        let states = try await store.crmSyncStates()
        guard !states.isEmpty else { return nil }
        let time = ISO8601DateFormatter()
        let counts = try await store.crmCounts()
        return CRMIndexStatus(rows: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                              lastRefreshAt: states.values.compactMap(\.lastRefreshAt).min().map(time.string),
                              lastFullPassAt: states.values.compactMap(\.lastFullPassAt).min().map(time.string),
                              underWay: states.values.filter { $0.cursor != nil }.map(\.entity.rawValue).sorted())
    }

    static func recentMatches(_ store: any CallStore, limit: Int = 10) async throws -> [RecentMatch] {
        let time = ISO8601DateFormatter()
        let matches = try await store.audit(key: nil, limit: 5_000).reversed().compactMap { entry -> RecentMatch? in
            guard let key = entry.recordingKey, let match = FileReport.MatchReport(entry) else { return nil }
            return RecentMatch(key: key, at: time.string(from: entry.at), reason: match.reason, linked: match.linked, explanation: match.explanation)
        }
        return Array(matches.prefix(limit))
    }
}

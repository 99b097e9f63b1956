import CallSupport
public import Foundation

/// The five states of a job (research/queue-and-reconcile.md §(2)). A retry wait or a snooze is
/// `available` with a future `runAt`.
public enum JobState: String, Sendable, Hashable, CaseIterable, Codable {
    case available, running, completed, discarded, cancelled

    /// States in which a job holds its unique key.
    public static let live: Set<JobState> = [.available, .running]
    /// States a job never leaves on its own.
    public static let final: Set<JobState> = [.completed, .discarded, .cancelled]
}

/// A job to be inserted.
public struct NewJob: Sendable, Hashable {
    public var queue: String
    public var kind: String
    /// Arguments as JSON text: ids and paths only, never audio (at most ``NewJob/maxArgsBytes``).
    public var args: String
    /// At most one job with this key is `available` or `running` at a time.
    public var uniqueKey: String?
    /// 1 (first) … 4 (last); orders work within a queue only.
    public var priority: Int
    public var maxAttempts: Int
    /// Run no earlier than this long after enqueueing.
    public var delay: Duration

    public static let maxArgsBytes = 64 * 1024

    public init(queue: String, kind: String, args: String = "{}", uniqueKey: String? = nil,
                priority: Int = 2, maxAttempts: Int = 12, delay: Duration = .zero) {
        self.queue = queue
        self.kind = kind
        self.args = args
        self.uniqueKey = uniqueKey
        self.priority = priority
        self.maxAttempts = maxAttempts
        self.delay = delay
    }

    /// A job whose arguments are `args` encoded as JSON.
    public init<Args: Encodable>(queue: String, kind: String, arguments: Args, uniqueKey: String? = nil,
                                 priority: Int = 2, maxAttempts: Int = 12, delay: Duration = .zero) throws {
        let data = try JSONEncoder.sorted.encode(arguments)
        self.init(queue: queue, kind: kind, args: String(decoding: data, as: UTF8.self), uniqueKey: uniqueKey,
                  priority: priority, maxAttempts: maxAttempts, delay: delay)
    }

    /// Checks what both backends refuse alike, so they refuse it with the same error.
    public func validate() throws {
        guard !queue.isEmpty, !kind.isEmpty else { throw StoreError(.invalid, "job queue and kind must not be empty") }
        guard (1...4).contains(priority) else { throw StoreError(.invalid, "job priority \(priority) is outside 1…4") }
        guard maxAttempts >= 1 else { throw StoreError(.invalid, "job max_attempts \(maxAttempts) is below 1") }
        guard args.utf8.count <= Self.maxArgsBytes else {
            throw StoreError(.invalid, "job args are \(args.utf8.count) bytes; at most \(Self.maxArgsBytes) are allowed")
        }
        guard delay >= .zero else { throw StoreError(.invalid, "job delay must not be negative") }
        guard uniqueKey.map({ !$0.isEmpty }) ?? true else { throw StoreError(.invalid, "a job's unique key must not be empty (leave it out instead)") }
    }
}

/// What an enqueue did.
public enum EnqueueResult: Sendable, Hashable {
    /// A new job with this id.
    case inserted(Int64)
    /// A live job with the same unique key exists already; nothing was inserted.
    case duplicate
}

/// One entry of a job's error history (the last ten are kept).
public struct JobErrorRecord: Sendable, Hashable, Codable {
    public var at: Date
    public var attempt: Int
    public var error: String
    /// `failed`, `snoozed`, `released`, `rescued`.
    public var kind: String

    public init(at: Date, attempt: Int, error: String, kind: String) {
        self.at = at
        self.attempt = attempt
        self.error = error
        self.kind = kind
    }

    public static let historyLimit = 10
}

/// A job row.
public struct Job: Sendable, Hashable {
    public var id: Int64
    public var queue: String
    public var kind: String
    public var args: String
    public var uniqueKey: String?
    public var state: JobState
    public var priority: Int
    /// Attempts started (claims that were not snoozed or released).
    public var attempt: Int
    public var maxAttempts: Int
    /// How many times the job's lease expired (its worker died or hung).
    public var rescueCount: Int
    public var snoozeCount: Int
    public var runAt: Date
    public var leaseOwner: String?
    public var leaseToken: Int64?
    public var leaseExpiresAt: Date?
    public var lastError: String?
    public var errors: [JobErrorRecord]
    public var createdAt: Date
    public var updatedAt: Date
    public var finalizedAt: Date?

    public init(id: Int64, queue: String, kind: String, args: String, uniqueKey: String?, state: JobState,
                priority: Int, attempt: Int, maxAttempts: Int, rescueCount: Int, snoozeCount: Int, runAt: Date,
                leaseOwner: String?, leaseToken: Int64?, leaseExpiresAt: Date?, lastError: String?,
                errors: [JobErrorRecord], createdAt: Date, updatedAt: Date, finalizedAt: Date?) {
        self.id = id
        self.queue = queue
        self.kind = kind
        self.args = args
        self.uniqueKey = uniqueKey
        self.state = state
        self.priority = priority
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.rescueCount = rescueCount
        self.snoozeCount = snoozeCount
        self.runAt = runAt
        self.leaseOwner = leaseOwner
        self.leaseToken = leaseToken
        self.leaseExpiresAt = leaseExpiresAt
        self.lastError = lastError
        self.errors = errors
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.finalizedAt = finalizedAt
    }

    /// The lease of a running job (its id and fencing token).
    public var lease: Lease? { leaseToken.map { Lease(jobID: id, token: $0) } }

    /// Decodes ``args`` as JSON.
    public func arguments<Args: Decodable>(as type: Args.Type = Args.self) throws -> Args {
        do {
            return try JSONDecoder().decode(Args.self, from: Data(args.utf8))
        } catch {
            throw StoreError(.invalid, "job \(id) (\(kind)): arguments do not decode: \(error)")
        }
    }
}

/// A claim on a running job: every state change after the claim names it, and a change whose
/// token is no longer the job's is refused (the fencing token).
public struct Lease: Sendable, Hashable, CustomStringConvertible {
    public var jobID: Int64
    public var token: Int64

    public init(jobID: Int64, token: Int64) {
        self.jobID = jobID
        self.token = token
    }

    public var description: String { "job \(jobID) (lease \(token))" }
}

/// Which jobs ``CallStore/jobs(_:)`` lists.
public struct JobQuery: Sendable, Hashable {
    public var states: Set<JobState>?
    public var queue: String?
    public var kind: String?
    public var ids: [Int64]?
    public var uniqueKey: String?
    public var limit: Int

    public init(states: Set<JobState>? = nil, queue: String? = nil, kind: String? = nil, ids: [Int64]? = nil,
                uniqueKey: String? = nil, limit: Int = 1000) {
        self.states = states
        self.queue = queue
        self.kind = kind
        self.ids = ids
        self.uniqueKey = uniqueKey
        self.limit = limit
    }
}

/// What a rescue pass did with the jobs whose leases had expired.
public struct RescueReport: Sendable, Hashable {
    /// Jobs made available again, to run at once.
    public var requeued: [Int64]
    /// Jobs discarded: out of attempts, or their lease was lost ``CallStore/poisonRescues`` times.
    public var discarded: [Int64]

    public init(requeued: [Int64] = [], discarded: [Int64] = []) {
        self.requeued = requeued
        self.discarded = discarded
    }

    public var isEmpty: Bool { requeued.isEmpty && discarded.isEmpty }
}

/// Counts over the queue.
public struct QueueStats: Sendable, Hashable {
    /// Jobs per state (every state present, zero when none).
    public var counts: [JobState: Int]
    /// Per queue and state.
    public var byQueue: [String: [JobState: Int]]
    /// Available jobs whose `runAt` has come (runnable now).
    public var due: Int
    /// The same, per queue (queues with none are absent).
    public var dueByQueue: [String: Int]
    /// Seconds since the oldest due job became runnable; nil when none is due.
    public var oldestDueSeconds: Double?
    /// When the next job that is not yet due becomes due.
    public var nextRunAt: Date?

    public init(counts: [JobState: Int], byQueue: [String: [JobState: Int]], due: Int, dueByQueue: [String: Int],
                oldestDueSeconds: Double?, nextRunAt: Date?) {
        var all = counts
        for state in JobState.allCases where all[state] == nil { all[state] = 0 }
        self.counts = all
        self.byQueue = byQueue
        self.due = due
        self.dueByQueue = dueByQueue
        self.oldestDueSeconds = oldestDueSeconds
        self.nextRunAt = nextRunAt
    }

    public subscript(state: JobState) -> Int { counts[state] ?? 0 }
}

extension JSONEncoder {
    /// Sorted keys, so equal values encode to equal text.
    public static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

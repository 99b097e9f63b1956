public import CallStore

/// A name the runner keys by: a typed string, so that a queue and a job kind are never mixed up.
public protocol JobName: RawRepresentable<String>, Hashable, Sendable, Comparable, ExpressibleByStringLiteral, CustomStringConvertible {
    init(rawValue: String)
}

extension JobName {
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }
    public init(stringLiteral value: String) { self.init(rawValue: value) }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The name of a queue: each queue has its own slots in a worker, so that one kind of work
/// (CPU-bound transcodes) never starves another (uploads). The application names its queues
/// (`extension QueueName { static let … }`); the store keeps them as text in the job rows.
public struct QueueName: JobName {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// The kind of a job: which ``JobHandler`` runs it (``JobHandler/kind``).
public struct JobKind: JobName {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

// The store's rows carry the names as text; these convert at the boundary.

extension Job {
    /// ``Job/queue`` as a typed name.
    public var queueName: QueueName { QueueName(queue) }
    /// ``Job/kind`` as a typed name.
    public var jobKind: JobKind { JobKind(kind) }
}

extension NewJob {
    /// A job of `kind` on `queue` whose arguments are `arguments` encoded as JSON.
    public init<Args: Encodable>(queue: QueueName, kind: JobKind, arguments: Args, uniqueKey: String? = nil,
                                 priority: Int = 2, maxAttempts: Int = 12, delay: Duration = .zero) throws {
        try self.init(queue: queue.rawValue, kind: kind.rawValue, arguments: arguments, uniqueKey: uniqueKey,
                      priority: priority, maxAttempts: maxAttempts, delay: delay)
    }

    /// A job of `kind` on `queue` with its arguments as JSON text.
    public init(queue: QueueName, kind: JobKind, args: String = "{}", uniqueKey: String? = nil,
                priority: Int = 2, maxAttempts: Int = 12, delay: Duration = .zero) {
        self.init(queue: queue.rawValue, kind: kind.rawValue, args: args, uniqueKey: uniqueKey,
                  priority: priority, maxAttempts: maxAttempts, delay: delay)
    }
}

extension JobQuery {
    /// Jobs of one queue (and kind).
    public init(states: Set<JobState>? = nil, queue: QueueName, kind: JobKind? = nil, limit: Int = 1000) {
        self.init(states: states, queue: queue.rawValue, kind: kind?.rawValue, limit: limit)
    }

    /// Jobs of one kind.
    public init(states: Set<JobState>? = nil, kind: JobKind, limit: Int = 1000) {
        self.init(states: states, kind: kind.rawValue, limit: limit)
    }
}

extension CallStore {
    /// Whether no job is due or running in these queues.
    public func isIdle(queues: Set<QueueName>) async throws -> Bool {
        try await isIdle(queues: Set(queues.map(\.rawValue)))
    }
}

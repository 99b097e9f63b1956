public import CallStore
public import Foundation
public import Logging

/// Runs one kind of job. Handlers are at-least-once: a job may run again after a crash, a lost
/// lease or a retry, so each checks the ledger before it acts (where exactly-once lives).
public protocol JobHandler: Sendable {
    /// The ``Job/kind`` of the jobs it runs.
    var kind: JobKind { get }
    /// Runs the job. Return to complete it; throw ``JobFailure`` to say how it failed (any other
    /// error counts as transient). Cancellation means shutdown or a lost lease: stop, and leave
    /// the ledger consistent.
    func run(_ job: Job, context: JobContext) async throws
    /// Called when the rescuer discarded the job as poison: its lease was lost too often (the
    /// process died while running it). Record why, so nothing is left silently half-done.
    func quarantined(_ job: Job, context: JobContext) async throws
    /// Work this handler put off until its run has nothing else to do. Asked by a worker that
    /// ends when idle (``WorkerConfiguration/untilIdle``) once nothing is due or running in its
    /// queues, before it waits for jobs due within `horizon` or ends: a handler that put jobs
    /// off (to do them together at the end) makes them due here and answers
    /// ``IdleAnswer/woke``. The `context` carries no job. Default: ``IdleAnswer/nothing``.
    func whenIdle(horizon: Duration, context: JobContext) async throws -> IdleAnswer
}

extension JobHandler {
    public func quarantined(_ job: Job, context: JobContext) async throws {}
    public func whenIdle(horizon: Duration, context: JobContext) async throws -> IdleAnswer { .nothing }
}

/// What ``JobHandler/whenIdle(horizon:context:)`` did.
public enum IdleAnswer: Sendable, Hashable {
    /// Nothing put off: the run waits for later jobs within the horizon, or ends.
    case nothing
    /// Work was put off and becomes due soon: keep looking.
    case waiting
    /// Put-off jobs were made due: claim them now.
    case woke
}

/// What a handler gets besides its job.
public struct JobContext: Sendable {
    /// Carries `job_id`, `kind`, `attempt`, `lease` (and `recording` once the handler adds it).
    public var logger: Logger
    public var store: any CallStore
    /// Who runs the job (`host:pid:boot`), for the audit table.
    public var owner: String

    public init(logger: Logger, store: any CallStore, owner: String) {
        self.logger = logger
        self.store = store
        self.owner = owner
    }
}

/// How a job failed, which decides what the queue does next.
public struct JobFailure: Error, Sendable, CustomStringConvertible {
    public enum Disposition: Sendable, Hashable {
        /// Cannot succeed as it is: discard at once (bad audio, HTTP 400/422).
        case permanent
        /// Try again after the backoff (network errors, 5xx, timeouts).
        case transient
        /// Wait this long without using up an attempt (429, a daily budget spent).
        case snooze(Duration)
        /// Wait until this instant (a budget's reset, a create's settling time) without using
        /// up an attempt. The wait is counted when the queue records it, so time the failure
        /// took to get there is not added on top.
        case snoozeUntil(Date)
        /// The disk is full (the spool, or the store's database): nothing is wrong with the
        /// job. It waits the worker's backoff without using up an attempt, and the worker stops
        /// claiming — for a while (a long-running worker), or for good (a run that ends when
        /// idle stops with the failure: ``WorkerStop/diskFull(_:)``).
        case diskFull
        /// Nothing is wrong with the job, but this process cannot run it as configured (its
        /// credentials were refused): it goes back to `available` at once, no attempt used, and
        /// the worker stops (``WorkerStop/halted(_:)`` says why). A run with the setting mended takes
        /// it up.
        case halt
        /// The service the job needs cannot be reached (no connection after a few quick tries):
        /// a run that ends when idle stops as for ``halt`` (``WorkerStop/unavailable(_:)``) rather than retry for minutes; a
        /// long-running worker retries it after the backoff (``transient``).
        case unavailable
    }

    public var disposition: Disposition
    /// A machine code (`silent_recording`, `rate_limited`, …).
    public var code: String
    public var message: String

    public init(_ disposition: Disposition, code: String, _ message: String) {
        self.disposition = disposition
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// The code of ``Disposition/diskFull`` failures.
    public static let diskFullCode = "disk_full"

    /// A full disk (``Disposition/diskFull``); the message names the path and the space left.
    public static func diskFull(_ message: String) -> JobFailure {
        JobFailure(.diskFull, code: diskFullCode, message)
    }

    /// How a handler's or the store's error counts: a ``JobFailure`` as it is, a store that met a
    /// full disk as ``Disposition/diskFull``, anything else as transient.
    public init(_ error: any Error) {
        if let failure = error as? JobFailure {
            self = failure
        } else if let error = error as? StoreError, error.code == .diskFull {
            self = .diskFull(error.message)
        } else {
            self.init(.transient, code: "error", "\(error)")
        }
    }
}


public import CallStore
public import Foundation
public import Logging

/// Runs one kind of job. Handlers are at-least-once: a job may run again after a crash, a lost
/// lease or a retry, so each checks the ledger before it acts (where exactly-once lives).
public protocol JobHandler: Sendable {
    /// The `kind` of the jobs it runs.
    var kind: String { get }
    /// Runs the job. Return to complete it; throw ``JobFailure`` to say how it failed (any other
    /// error counts as transient). Cancellation means shutdown or a lost lease: stop, and leave
    /// the ledger consistent.
    func run(_ job: Job, context: JobContext) async throws
    /// Called when the rescuer discarded the job as poison: its lease was lost too often (the
    /// process died while running it). Record why, so nothing is left silently half-done.
    func quarantined(_ job: Job, context: JobContext) async throws
}

extension JobHandler {
    public func quarantined(_ job: Job, context: JobContext) async throws {}
}

/// The recording a recording job names, when it is in `state`; nil (nothing to do) when it has
/// moved on. The logger gets the recording's key.
func recording(for job: Job, in state: RecordingState, context: JobContext, logger: inout Logger) async throws -> Recording? {
    try await recording(for: job, in: [state], context: context, logger: &logger)
}

/// The recording a recording job names, when it is in one of `states`.
func recording(for job: Job, in states: Set<RecordingState>, context: JobContext, logger: inout Logger) async throws -> Recording? {
    let key = try job.arguments(as: RecordingJobArguments.self).key
    logger[metadataKey: "recording"] = "\(key)"
    guard let recording = try await context.store.recording(key: key) else {
        throw JobFailure(.permanent, code: "unknown_recording", "recording \(key) is not in the ledger")
    }
    guard states.contains(recording.state) else {
        logger.debug("recording is \(recording.state.rawValue), not \(states.map(\.rawValue).sorted().joined(separator: "/")); nothing to do")
        return nil
    }
    return recording
}

/// Marks the recording a poisoned job was working on as failed (`quarantined`), unless it has
/// moved on.
func quarantine(recordingOf job: Job, from states: Set<RecordingState>, context: JobContext) async throws {
    let key = try job.arguments(as: RecordingJobArguments.self).key
    let message = "the process died \(job.rescueCount + 1) times while it ran this recording's \(job.kind) (a crash or kill); quarantined — `callrec upload`/`enqueue` of its directory tries it again"
    do {
        try await context.store.commit([
            .require(key: key, states: states),
            .setRecordingState(key: key, state: .failed, errorCode: "quarantined", errorMessage: message),
            .audit(AuditEntry(recordingKey: key, action: "quarantined", detail: "job \(job.id) (\(job.kind))", actor: context.owner)),
        ])
    } catch let error as StoreError where error.code == .conflict {
        return
    }
}

/// What a handler gets besides its job.
public struct JobContext: Sendable {
    /// Carries `job_id`, `kind`, `attempt`, `lease` (and `recording` once the handler adds it).
    public var logger: Logger
    public var store: any CallStore
    /// Who runs the job (`host:pid:boot`), for the audit table.
    public var owner: String
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
        /// idle stops with the failure: ``Worker/Summary/stopped``).
        case diskFull
        /// Nothing is wrong with the job, but this process cannot run it as configured (its
        /// credentials were refused): it goes back to `available` at once, no attempt used, and
        /// the worker stops (``Worker/halted`` says why). A run with the setting mended takes
        /// it up.
        case halt
        /// The service the job needs cannot be reached (no connection after a few quick tries):
        /// a run that ends when idle stops as for ``halt`` rather than retry for minutes; a
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

/// The job the benchmarks and the queue tests use: it does nothing, or sleeps for the
/// `sleep_ms` of its arguments (checking for cancellation), or fails when told to. With `trace`,
/// it appends `start`/`end` lines (job id, attempt, pid, wall-clock nanoseconds) to that file, so
/// a chaos test can prove no job ever ran concurrently with itself.
public struct NoopJobHandler: JobHandler {
    public static let kind = "noop"
    public var kind: String { Self.kind }

    public struct Arguments: Codable, Sendable {
        public var sleepMs: Int?
        public var fail: String?
        public var trace: String?
        public init(sleepMs: Int? = nil, fail: String? = nil, trace: String? = nil) {
            self.sleepMs = sleepMs
            self.fail = fail
            self.trace = trace
        }
        enum CodingKeys: String, CodingKey { case sleepMs = "sleep_ms", fail, trace }
    }

    public init() {}

    public func run(_ job: Job, context: JobContext) async throws {
        guard job.args != "{}" else { return }
        let arguments = try job.arguments(as: Arguments.self)
        if let trace = arguments.trace { Self.append(trace, "start", job) }
        if let sleepMs = arguments.sleepMs, sleepMs > 0 {
            try await Task.sleep(for: .milliseconds(sleepMs))
        }
        if let trace = arguments.trace { Self.append(trace, "end", job) }
        switch arguments.fail {
        case "permanent": throw JobFailure(.permanent, code: "noop_failed", "told to fail permanently")
        case "transient": throw JobFailure(.transient, code: "noop_failed", "told to fail")
        case "snooze": throw JobFailure(.snooze(.seconds(60)), code: "noop_snoozed", "told to snooze")
        case "halt": throw JobFailure(.halt, code: "noop_halted", "told to halt")
        case "unavailable": throw JobFailure(.unavailable, code: "noop_unavailable", "told its service cannot be reached")
        default: return
        }
    }
}

extension NoopJobHandler {
    /// One `write(2)` of one line with O_APPEND: lines from several processes never interleave.
    static func append(_ path: String, _ event: String, _ job: Job) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nanos = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let line = "\(event) \(job.id) \(job.attempt) \(getpid()) \(nanos) \(job.leaseToken ?? 0)\n"
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}

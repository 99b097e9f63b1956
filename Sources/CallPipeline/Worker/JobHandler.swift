import CallJobs
import CallStore
import Foundation
import Logging

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

/// The job the benchmarks and the queue tests use: it does nothing, or sleeps for the
/// `sleep_ms` of its arguments (checking for cancellation), or fails when told to. With `trace`,
/// it appends `start`/`end` lines (job id, attempt, pid, wall-clock nanoseconds) to that file, so
/// a chaos test can prove no job ever ran concurrently with itself.
public struct NoopJobHandler: JobHandler {
    public static let kind: JobKind = "noop"
    public var kind: JobKind { Self.kind }

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

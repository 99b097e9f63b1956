import CallJobs
import CallPipeline
import CallStore
import Foundation

/// The benchmarks' job (queue `bench`): does nothing, or sleeps, fails, or appends start/end lines
/// to a trace file, as its arguments say.
struct NoopJobHandler: JobHandler {
    static let kind: JobKind = "noop"
    var kind: JobKind { Self.kind }

    struct Arguments: Codable, Sendable {
        var sleepMs: Int?
        var fail: String?
        var trace: String?
        enum CodingKeys: String, CodingKey { case sleepMs = "sleep_ms", fail, trace }
    }

    func run(_ job: Job, context: JobContext) async throws {
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

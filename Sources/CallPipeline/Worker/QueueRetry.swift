import CallJobs
public import CallStore
import Foundation

/// `callrec queue retry`: each job named is made to run again, and the report says what
/// changed, job by job — never "retried" for a job that will then find nothing to do.
///
/// - A job that waits (backing off, snoozed until a budget's reset) becomes due now and keeps
///   its attempts.
/// - A discarded or cancelled job becomes available with its attempts reset. When it is a
///   recording's transcode or upload and the recording `failed`, the recording is made ready
///   for that job again (`pending` for a transcode, `transcoded` for an upload) in the same
///   commit, and audited: otherwise the job would find the recording failed and do nothing.
/// - Anything else is left alone, with the reason: an id that does not exist, a job that is
///   due, running or completed, a recording that has moved on (uploaded, deleted), another live
///   job for the same recording.
public enum QueueRetry {
    public struct Report: Sendable, Encodable {
        /// Discarded or cancelled jobs made available again (attempts start over).
        public var retried: [Int64] = []
        /// Waiting jobs made due now (attempts kept).
        public var woken: [Int64] = []
        /// Failed recordings made ready again for their retried job.
        public var rearmed: [Rearmed] = []
        /// Ids no job has.
        public var notFound: [Int64] = []
        /// Jobs left alone, and why.
        public var notRetryable: [Refusal] = []

        public struct Rearmed: Sendable, Encodable, Equatable {
            public var job: Int64
            public var key: String
            public var path: String
            /// The failure it had (`code: message`).
            public var error: String
            /// The state it is in now.
            public var state: String
        }

        public struct Refusal: Sendable, Encodable, Equatable {
            public var id: Int64
            public var reason: String
        }

        /// How many jobs will run sooner because of the retry.
        public var changed: Int { retried.count + woken.count }

        enum CodingKeys: String, CodingKey {
            case retried, woken, rearmed, notFound = "not_found", notRetryable = "not_retryable"
        }
    }

    /// Retries `ids` one by one (each its own commit); `actor` goes into the audit.
    public static func run(ids: [Int64], store: any CallStore, actor: String) async throws -> Report {
        var report = Report()
        for id in Array(Set(ids)).sorted() {
            guard let job = try await store.job(id: id) else {
                report.notFound.append(id)
                continue
            }
            switch job.state {
            case .available:
                if try await store.retry(ids: [id]) == [id] {
                    report.woken.append(id)
                } else {
                    report.notRetryable.append(.init(id: id, reason: "it is due already: the next run or worker takes it"))
                }
            case .running:
                report.notRetryable.append(.init(id: id, reason: "it is running (\(job.leaseOwner ?? "a worker"))"))
            case .completed:
                report.notRetryable.append(.init(id: id, reason: "it completed: there is nothing to retry"))
            case .discarded, .cancelled:
                do {
                    if let rearmed = try await retryFinished(job, store: store, actor: actor) { report.rearmed.append(rearmed) }
                    report.retried.append(id)
                } catch let refusal as Refused {
                    report.notRetryable.append(.init(id: id, reason: refusal.reason))
                } catch let error as StoreError where error.code == .conflict {
                    // The ledger or the queue changed under us (another retry, a run).
                    report.notRetryable.append(.init(id: id, reason: error.message))
                }
            }
        }
        return report
    }

    private struct Refused: Error {
        var reason: String
    }

    /// The state a recording must be in for a job of `kind` to work on it.
    private static func workState(kind: JobKind) -> RecordingState? {
        switch kind {
        case TranscodeJobHandler.kind: .pending
        case UploadJobHandler.kind: .transcoded
        default: nil
        }
    }

    /// Retries a discarded or cancelled job, making its failed recording ready for it again.
    private static func retryFinished(_ job: Job, store: any CallStore, actor: String) async throws -> Report.Rearmed? {
        guard let needed = workState(kind: job.jobKind), let key = try? job.arguments(as: RecordingJobArguments.self).key else {
            // Not a recording's transcode or upload (a deletion, a reconcile): its handler
            // checks the ledger itself.
            try await store.commit([.retryJob(id: job.id)])
            return nil
        }
        guard let recording = try await store.recording(key: key) else {
            throw Refused(reason: "its recording \(key) is not in the ledger")
        }
        switch recording.state {
        case needed:
            try await store.commit([.require(key: key, states: [needed]), .retryJob(id: job.id)])
            return nil
        case .failed:
            if needed == .transcoded, try await store.parts(key: key).isEmpty {
                throw Refused(reason: "its recording \(recording.path) failed before it was transcoded (\(recording.errorCode ?? "failed")): retry its transcode job, or run upload/enqueue on its directory")
            }
            let error = "\(recording.errorCode ?? "failed"): \(recording.errorMessage ?? "")"
            try await store.commit([
                .require(key: key, states: [.failed]),
                .setRecordingState(key: key, state: needed),
                .audit(AuditEntry(recordingKey: key, action: "rearmed", detail: "queue retry of job \(job.id) (\(job.kind)); it had failed with \(error)", actor: actor)),
                .retryJob(id: job.id),
            ])
            return Report.Rearmed(job: job.id, key: key, path: recording.path, error: error, state: needed.rawValue)
        default:
            throw Refused(reason: "its recording \(recording.path) is \(recording.state.rawValue): this \(job.kind) job has nothing to do")
        }
    }
}

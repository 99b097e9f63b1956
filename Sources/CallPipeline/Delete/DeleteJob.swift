import CallAPI
public import CallJobs
public import CallStore
import Foundation
public import Logging

/// Runs a registered ``Deletion``, one step at a time, in order (DESIGN §4; research/
/// queue-and-reconcile.md §(3) 6–7):
///
/// 1. every part's call log (`DELETE /v1/callLogs/{id}`; its audio goes with it), then the Telnyx
///    recording and the VoipNow event — remote and irreversible first;
/// 2. the spool last, moved to `<state>/trash/<time>-<key>/` (not deleted).
///
/// Each step is idempotent (404/410, or VoipNow's 204, count as done) and its result is committed
/// with an audit line carrying the HTTP status before the next step starts, so a crash resumes at
/// the step it stopped: the job is rescued and run again, and done steps are skipped. When every
/// step is done, one commit finishes the deletion, marks the recording `deleted`, writes its
/// tombstone and marks its provider references deleted.
///
/// Failures: 429 snoozes (no attempt used); a refused credential stops the run with the job
/// available again (the step pending); 5xx, timeouts and lost answers retry with backoff;
/// a refusal (or a reference that cannot name exactly one thing, or missing credentials) marks
/// the step `failed` and the cascade goes on — except that while a Pipedrive step has failed the
/// provider and spool steps wait, since deletion flows from the call log. A deletion with a
/// failed step stays open (the recording stays `deleting`, so nothing uploads it again), and the
/// job is discarded; registering the delete again retries the failed steps, or gives up those
/// the user names (`skipped`, like a call log callrec did not create): a deletion whose steps are
/// all done or skipped finishes, and the references of skipped steps stay marked `skipped`.
public struct DeleteJobHandler: JobHandler {
    public static let kind: JobKind = "delete"
    public var kind: JobKind { Self.kind }

    public struct Arguments: Codable, Sendable, Hashable {
        public var key: String
        public var deletionID: String
        public init(key: String, deletionID: String) {
            self.key = key
            self.deletionID = deletionID
        }
        enum CodingKeys: String, CodingKey { case key, deletionID = "deletion_id" }
    }

    /// Where a test stops the handler to stand for a crash: after a step's request answered but
    /// before its result is committed, or after the commit.
    package enum Checkpoint: Sendable, Hashable {
        case afterRequest(String)
        case afterCommit(String)
    }

    public let apis: any DeleteAPIs
    public let spool: Spool
    public let trash: Trash
    /// How long to wait for a running transcode or upload of the same recording to notice the
    /// deletion and stop.
    public var busyWait: Duration = .seconds(5)
    package var checkpoint: (@Sendable (Checkpoint) async throws -> Void)?

    public init(apis: any DeleteAPIs, spool: Spool, trash: Trash) {
        self.apis = apis
        self.spool = spool
        self.trash = trash
    }

    /// One live job per recording; 20 attempts span a day of outages with the worker's backoff.
    public static func job(key: String, deletionID: String) throws -> NewJob {
        try NewJob(queue: .delete, kind: kind, arguments: Arguments(key: key, deletionID: deletionID),
                   uniqueKey: "delete:\(key)", maxAttempts: 20)
    }

    public func run(_ job: Job, context: JobContext) async throws {
        let arguments = try job.arguments(as: Arguments.self)
        let key = arguments.key, store = context.store
        var logger = context.logger
        logger[metadataKey: "recording"] = "\(key)"
        logger[metadataKey: "deletion"] = "\(arguments.deletionID)"
        guard let deletion = try await store.deletion(id: arguments.deletionID) else {
            throw JobFailure(.permanent, code: "unknown_deletion", "deletion \(arguments.deletionID) is not in the ledger")
        }
        guard deletion.finishedAt == nil else { return }
        guard let recording = try await store.recording(key: key), recording.state == .deleting else {
            logger.info("the recording is not being deleted (any more); nothing to do")
            return
        }
        // A transcode or upload still running for this recording stops at its next commit (they
        // require `pending`/`transcoded`); wait for that, so that no part changes under us.
        for prefix in ["upload:", "transcode:"] {
            let busy = try await store.jobs(JobQuery(states: [.running], uniqueKey: prefix + key, limit: 1))
            if !busy.isEmpty {
                throw JobFailure(.snooze(busyWait), code: "recording_busy", "its \(prefix.dropLast()) job is still running; waiting for it to stop")
            }
        }
        try await deleteStrays(deletion, store: store, actor: context.owner, logger: logger)

        var pipedriveFailed = false
        for step in deletion.steps.sorted(by: { $0.position < $1.position }) {
            let target = DeletionTarget(step.target)
            if step.state.isSettled { continue }
            if pipedriveFailed, !target.isPipedrive {
                logger.info("not deleting \(step.target) while a call log could not be deleted")
                continue
            }
            try Task.checkCancellation()
            let (state, status, detail) = try await execute(target, key: key, store: store, actor: context.owner)
            try await checkpoint?(.afterRequest(step.target))
            try await store.commit([
                .require(key: key, states: [.deleting]),
                .updateDeletionStep(deletionID: deletion.id, target: step.target, state: state, httpStatus: status, detail: detail),
                .audit(AuditEntry(recordingKey: key, action: "delete_step", target: step.target, httpStatus: status,
                                  detail: "\(state.rawValue): \(detail)", actor: context.owner)),
            ])
            try await checkpoint?(.afterCommit(step.target))
            if state == .failed {
                logger.warning("delete step failed", metadata: ["target": "\(step.target)", "detail": "\(detail)"])
                if target.isPipedrive { pipedriveFailed = true }
            }
        }

        guard let current = try await store.deletion(id: deletion.id) else { return }
        let open = current.steps.filter { !$0.state.isSettled }
        guard open.isEmpty else {
            let text = open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { ": \($0)" } ?? "")" }.joined(separator: "; ")
            throw JobFailure(.permanent, code: "delete_step_failed", "\(recording.path): not every target could be deleted: \(text)")
        }
        var ops: [LedgerOp] = [
            .require(key: key, states: [.deleting]),
            .finishDeletion(id: deletion.id),
            .setRecordingState(key: key, state: .deleted),
            .tombstone(Tombstone(key: key, path: recording.path, reason: deletion.reason)),
        ]
        // A reference whose step was skipped is not deleted at the provider: the ledger says so.
        let skipped = current.steps.filter { $0.state == .skipped }
        for var ref in try await store.providerRefs(key: key) where ref.state == "live" {
            ref.state = skipped.contains { $0.target == "\(ref.provider):\(ref.reference)" } ? "skipped" : "deleted"
            ops.append(.putProviderRef(ref))
        }
        let summary = "\(current.steps.count - skipped.count) step(s) done"
            + (skipped.isEmpty ? "" : ", \(skipped.count) skipped (left in place: \(skipped.map(\.target).joined(separator: ", ")))")
        ops.append(.audit(AuditEntry(recordingKey: key, action: "deleted", detail: "deletion \(deletion.id): \(deletion.reason); \(summary)",
                                     actor: context.owner)))
        try await store.commit(ops)
        logger.info(skipped.isEmpty ? "recording deleted everywhere" : "recording deleted; some targets were left in place",
                    metadata: ["steps": "\(current.steps.count)", "skipped": "\(skipped.count)"])
    }

    /// Runs one step; returns its final state, status and detail, or throws the ``JobFailure``
    /// that makes the queue retry or snooze (the step stays `pending`; the error is audited).
    private func execute(_ target: DeletionTarget, key: String, store: any CallStore, actor: String)
        async throws -> (DeletionStepState, Int?, String) {
        do {
            let result: DeleteResult
            switch target {
            case .pipedrive(let id):
                result = try await apis.deleteCallLog(id: id)
            case .pipedriveMarker(let marker):
                let ids = try await apis.callLogIDs(carrying: [marker])[marker] ?? []
                for id in ids { _ = try await apis.deleteCallLog(id: id) }
                result = DeleteResult(httpStatus: 200, detail: ids.isEmpty ? "no call log carries the marker (its create never landed)"
                                                                         : "deleted the call log(s) carrying the marker: \(ids.joined(separator: ", "))")
            case .telnyx(let id):
                result = try await apis.deleteTelnyxRecording(id: id)
            case .voipnow(let reference):
                guard let address = try? VoipNowReference.address(reference) else {
                    return (.failed, nil, VoipNowReference.unsendable(reference) ?? "not sent")
                }
                result = try await apis.deleteVoipNowEvent(address)
            case .spool:
                return moveSpool(key: key)
            case .unknown(let text):
                return (.failed, nil, "unknown target \(text)")
            }
            return (.done, result.httpStatus, result.detail)
        } catch let error as APIError {
            // A wait (429, a spent budget, the abuse block) or a stop (a refused credential, an
            // unreachable API): the step stays pending, the job keeps its attempts.
            if let failure = error.runFailure {
                try await auditError(error, target: target, key: key, store: store, actor: actor)
                throw failure
            }
            switch error.code {
            case .transient, .unknownOutcome:
                try await auditError(error, target: target, key: key, store: store, actor: actor)
                throw JobFailure(.transient, code: error.code.rawValue, error.description)
            case .doneAlready:
                return (.done, error.status, "already gone: \(error.message)")
            default:
                // permanent, configuration, and a not_found a delete should not answer with.
                return (.failed, error.status, error.description)
            }
        }
    }

    /// A failed attempt goes to the audit table too (the step stays pending).
    private func auditError(_ error: APIError, target: DeletionTarget, key: String, store: any CallStore, actor: String) async throws {
        try await store.commit([
            .audit(AuditEntry(recordingKey: key, action: "delete_attempt", target: target.target, httpStatus: error.status,
                              detail: "will try again: \(error.description)", actor: actor)),
        ])
    }

    private func moveSpool(key: String) -> (DeletionStepState, Int?, String) {
        let directory = spool.directory(key: key)
        do {
            // A Telnyx recording's download (callrec's file) goes with its parts.
            for download in spool.telnyxDownloads(key: key) {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let destination = Paths.join(directory, "source." + (download as NSString).pathExtension)
                guard rename(download, destination) == 0 else {
                    return (.failed, nil, "cannot move \(download) to \(destination): \(String(cString: strerror(errno)))")
                }
            }
            if let moved = try trash.move(directory, key: key) {
                return (.done, nil, "moved to \(moved)")
            }
        } catch {
            return (.failed, nil, "\(error.localizedDescription)")
        }
        if let earlier = trash.entries(key: key).last {
            return (.done, nil, "in the trash already: \(earlier.path)")
        }
        return (.done, nil, "nothing in the spool")
    }

    /// Call logs the plan could not know: a part whose call log was recorded (or whose create
    /// began) between the planner's read and its commit. Deleted and audited before the steps.
    private func deleteStrays(_ deletion: Deletion, store: any CallStore, actor: String, logger: Logger) async throws {
        let planned = Set(deletion.steps.map(\.target))
        let parts = try await store.parts(key: deletion.recordingKey)
        // Only call logs callrec created: one it did not create is left, as the planner would.
        var strays = DeletionPlanner.steps(parts: parts, refs: []).filter { $0.state == .pending }.map { DeletionTarget($0.target) }.filter {
            $0.isPipedrive && !planned.contains($0.target)
        }
        guard !strays.isEmpty else { return }
        // Done by an earlier attempt of this job (they are not steps, so the audit says so).
        let done = Set(try await store.audit(key: deletion.recordingKey, limit: 500).filter {
            $0.action == "delete_step" && ($0.detail ?? "").hasPrefix("done")
        }.compactMap(\.target))
        strays.removeAll { done.contains($0.target) }
        for target in strays {
            let (state, status, detail) = try await execute(target, key: deletion.recordingKey, store: store, actor: actor)
            logger.notice("deleted a call log the plan did not name", metadata: ["target": "\(target.target)", "detail": "\(detail)"])
            try await store.commit([
                .audit(AuditEntry(recordingKey: deletion.recordingKey, action: "delete_step", target: target.target, httpStatus: status,
                                  detail: "\(state.rawValue) (not in the plan: recorded while the deletion was registered): \(detail)", actor: actor)),
            ])
        }
    }
}

/// The `delete` queue run in this process until it is empty: what `callrec delete` and
/// `callrec reconcile --apply` use (like ``UploadRun/worker(pool:)``). Progress:
/// ``Worker/events()``.
public enum DeleteRun {
    public static func worker(store: any CallStore, handler: DeleteJobHandler, slots: Int = 1, logger: Logger) -> Worker<ContinuousClock> {
        // A person waits: retries come sooner than in the worker, and one due within five
        // minutes is waited for rather than left behind.
        var configuration = WorkerConfiguration.attended(slots: [.delete: max(1, slots)], retryCap: .seconds(30))
        // A job left by a killed run is rescued soon: its lease is short.
        configuration.leaseTTL = .seconds(10)
        configuration.rescueInterval = .seconds(1)
        configuration.shutdownGrace = .seconds(10)
        return Worker(store: store, handlers: [handler], configuration: configuration, logger: logger)
    }
}

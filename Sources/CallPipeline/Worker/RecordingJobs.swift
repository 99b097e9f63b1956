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

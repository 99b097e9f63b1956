public import CallAudio
public import CallJobs
import CallSources
public import CallStore
import CallTelnyx
import Foundation
import Logging

/// Arguments of the jobs that work on one recording.
public struct RecordingJobArguments: Codable, Sendable, Hashable {
    public var key: String
    public init(key: String) { self.key = key }
}

/// The queue's CPU stage: a `pending` recording is validated, transcoded and chunked into the
/// spool, and its parts go into the ledger with the state `transcoded` in one commit.
///
/// At-least-once safe: a recording that is no longer `pending` is left alone, a crash leaves at
/// most finished part files that the next run overwrites (parts are renamed into place whole),
/// and the ledger changes only in the final commit.
///
/// A full disk (`disk_full`: the spool, or the store) is no fault of the recording: its spool
/// folder is removed, it stays `pending`, and the job waits (``JobFailure/Disposition/diskFull``).
public struct TranscodeJobHandler: JobHandler {
    public static let kind: JobKind = "transcode"
    public var kind: JobKind { Self.kind }

    public let spool: Spool
    public let settings: TranscodeSettings
    public let validation: ValidationConfiguration
    public let pool: CPUPool
    /// Jobs to enqueue in the same commit once the parts are in the ledger (the upload issue's
    /// network stage); none by default.
    public let followUp: @Sendable (String) -> [NewJob]
    /// Fingerprints this process took at registration: a recording whose file is unchanged
    /// since is not hashed again. Without them (a worker), the job hashes the file to check
    /// that it is still the recording that was enqueued.
    public let fingerprints: Fingerprints?

    public init(spool: Spool, settings: TranscodeSettings = TranscodeSettings(), validation: ValidationConfiguration = ValidationConfiguration(),
                pool: CPUPool, fingerprints: Fingerprints? = nil, followUp: @escaping @Sendable (String) -> [NewJob] = { _ in [] }) {
        self.fingerprints = fingerprints
        self.spool = spool
        self.settings = settings
        self.validation = validation
        self.pool = pool
        self.followUp = followUp
    }

    /// The job for a recording: at most one live per recording. Bigger files go first (size
    /// stands in for duration), as in `callrec transcode`: a long call started last would run
    /// alone on one core at the end while the others idle.
    public static func job(key: String, bytes: Int64? = nil) throws -> NewJob {
        try NewJob(queue: .transcode, kind: kind, arguments: RecordingJobArguments(key: key),
                   uniqueKey: "transcode:\(key)", priority: priority(bytes: bytes), maxAttempts: 3)
    }

    /// 1 from 64 MiB (an hour and more of telephone audio), 2 from 8 MiB, else 3; unknown: 2.
    static func priority(bytes: Int64?) -> Int {
        guard let bytes else { return 2 }
        return bytes >= 64 << 20 ? 1 : bytes >= 8 << 20 ? 2 : 3
    }

    public func quarantined(_ job: Job, context: JobContext) async throws {
        try await quarantine(recordingOf: job, from: [.pending], context: context)
    }

    public func run(_ job: Job, context: JobContext) async throws {
        var logger = context.logger
        guard let recording = try await recording(for: job, in: .pending, context: context, logger: &logger) else { return }
        let key = recording.key, store = context.store
        // A PBX recording: its call log is decided before any audio work (it may wait for its
        // CDR row, or not be logged at all), and its bytes are checked against its file's hash.
        var source = SourceMetadata.parse(recording.metadata)
        // A Telnyx recording: its fetch job decided the call log and downloaded the file.
        let telnyxSHA256 = try await telnyxExpectedHash(source, recording: recording, context: context)
        if telnyxSHA256 == nil, let unresolved = source, unresolved.callLog == nil {
            guard let resolved = try await resolve(unresolved, recording: recording, context: context, logger: logger) else { return }
            source = resolved
        }
        let expected: String
        if let telnyxSHA256 {
            expected = telnyxSHA256
        } else if source != nil {
            expected = try await store.sourceFile(path: recording.path)?.audioSHA256 ?? key
        } else {
            expected = key
        }
        let sidecar = source == nil ? recording.metadata.flatMap { Sidecar.parse(Data($0.utf8)).sidecar } : nil
        let declaredCallSeconds = source.map(\.declaredCallSeconds) ?? sidecar?.declaredCallSeconds
        let directory = spool.directory(key: key)
        try? FileManager.default.removeItem(atPath: directory)
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            if isDiskFull(error) {
                throw JobFailure.diskFull("\(recording.path): cannot create \(directory): \(DiskSpace.fullMessage(directory))")
            }
            throw JobFailure(.transient, code: "spool_failed", "cannot create \(directory): \(error.localizedDescription)")
        }
        let spool = self.spool
        let report = await RecordingTranscode.run(
            path: recording.path, shown: recording.path, key: fingerprints?.key(expected, ifUnchanged: recording.path), sidecarFailure: nil,
            declaredCallSeconds: declaredCallSeconds, warnings: [],
            settings: settings, validation: validation, pool: pool,
            targets: PartTargets(paths: { spool.partPaths(key: key, count: $0) }))
        try Task.checkCancellation()

        if let error = report.error {
            try? FileManager.default.removeItem(atPath: directory)
            // A file that cannot be read now (a share that went away) may be readable later.
            if error.code == "unreadable" {
                throw JobFailure(.transient, code: error.code, error.message)
            }
            // No part of it counts: it waits, pending, for space.
            if error.code == AudioError.Code.diskFull.rawValue {
                throw JobFailure.diskFull(error.message)
            }
            try await store.commit([
                .require(key: key, states: [.pending]),
                .setRecordingState(key: key, state: .failed, errorCode: error.code, errorMessage: error.message),
                .audit(AuditEntry(recordingKey: key, action: "transcode_failed", detail: "\(error.code): \(error.message)", actor: context.owner)),
            ])
            throw JobFailure(.permanent, code: error.code, error.message)
        }
        guard report.key == expected else {
            try? FileManager.default.removeItem(atPath: directory)
            let message = "\(recording.path): its bytes changed since it was enqueued (SHA-256 \(report.key ?? "?"), expected \(expected)); enqueue it again"
            try await store.commit([
                .require(key: key, states: [.pending]),
                .setRecordingState(key: key, state: .failed, errorCode: AudioError.Code.sourceChanged.rawValue, errorMessage: message),
            ])
            throw JobFailure(.permanent, code: AudioError.Code.sourceChanged.rawValue, message)
        }
        let parts = report.parts.enumerated().map { index, part in
            Part(recordingKey: key, index: index + 1, spoolPath: part.path, bytes: part.bytes, seconds: part.seconds, sha256: part.sha256)
        }
        let seconds = report.parts.reduce(0) { $0 + $1.seconds }
        if let data = try? JSONEncoder.sorted.encode(report) {
            do { try data.write(to: URL(fileURLWithPath: spool.reportPath(key: key))) } catch let error where isDiskFull(error) {
                try? FileManager.default.removeItem(atPath: directory)
                throw JobFailure.diskFull("\(recording.path): cannot write \(spool.reportPath(key: key)): \(DiskSpace.fullMessage(directory))")
            } catch {
                // Only the upload report's facts (input, stats) are missing; the parts are whole.
            }
        }
        var ops: [LedgerOp] = [
            .require(key: key, states: [.pending]),
            .replaceParts(key: key, parts: parts),
            .setRecordingAudio(key: key, partCount: parts.count, seconds: seconds),
            .setRecordingState(key: key, state: .transcoded),
        ]
        if let waveform = report.waveform { ops.append(.putWaveform(key: key, waveform: waveform)) }
        // What the checks found, kept past the spool (the console's list filters on it).
        ops.append(.putWarnings(key: key, codes: report.warnings.map(\.code.rawValue)))
        // A PBX call log whose length is the audio's: decided again now that it is known.
        if let source, let refined = CallResolution.withAudio(source, seconds: seconds) {
            ops.append(.setRecordingMetadata(key: key, metadata: refined.text))
        }
        ops += followUp(key).map { .enqueue($0) }
        try await store.commit(ops)
        logger.info("transcoded", metadata: ["parts": "\(parts.count)", "seconds": "\(seconds)",
                                             "warnings": "\(report.warnings.map(\.code.rawValue))"])
    }

    /// The hash a Telnyx recording's downloaded file must have (nil for any other recording).
    /// One without its call log or its download was not through its fetch job: it fails.
    private func telnyxExpectedHash(_ source: SourceMetadata?, recording: Recording, context: JobContext) async throws -> String? {
        guard let source, let telnyx = source.telnyx else { return nil }
        if source.callLog != nil, let sha256 = telnyx.audioSHA256 { return sha256 }
        let message = "\(recording.path): Telnyx recording of call session \(telnyx.recording.callSessionID) has \(source.callLog == nil ? "no call log" : "no download") yet: its fetch job (telnyx-fetch) decides and downloads it first"
        try await context.store.commit([
            .require(key: recording.key, states: [.pending]),
            .setRecordingState(key: recording.key, state: .failed, errorCode: "no_call_log", errorMessage: message),
            .audit(AuditEntry(recordingKey: recording.key, action: "transcode_failed", detail: "no_call_log: \(message)", actor: context.owner)),
        ])
        throw JobFailure(.permanent, code: "no_call_log", message)
    }

    /// Decides a PBX recording's call log (``CallResolution``): nil when the job is done with it
    /// (skipped by the policy, or failed); throws a snooze while its CDR row has not come.
    private func resolve(_ metadata: SourceMetadata, recording: Recording, context: JobContext, logger: Logger) async throws -> SourceMetadata? {
        let key = recording.key, store = context.store
        switch try await CallResolution.resolve(metadata, path: recording.path, store: store, now: Date()) {
        case .wait(let until):
            throw JobFailure(.snoozeUntil(until), code: CallResolution.awaitingCDR,
                             "\(recording.path): its CDR row has not come; it waits until \(ISO8601DateFormatter().string(from: until)) (--cdr-wait), then goes on with its file name's facts")
        case .skip(let reason, let message, let resolved):
            var ops = CallResolution.skipOps(key: key, metadata: resolved, reason: reason, message: message, actor: context.owner)
            // The file's row says why, so that a scan after the policy changes looks at it again.
            if var row = try await store.sourceFile(path: recording.path) {
                row.verdict = "skipped"
                row.reason = reason.rawValue
                row.policyDigest = resolved.source.settings.settings.policyDigest
                ops.append(.putSourceFile(row))
            }
            try await store.commit(ops)
            logger.info("not logged", metadata: ["reason": "\(reason.rawValue)"])
            return nil
        case .unresolvable(let message):
            try await store.commit([
                .require(key: key, states: [.pending]),
                .setRecordingState(key: key, state: .failed, errorCode: "no_call_facts", errorMessage: message),
                .audit(AuditEntry(recordingKey: key, action: "transcode_failed", detail: "no_call_facts: \(message)", actor: context.owner)),
            ])
            throw JobFailure(.permanent, code: "no_call_facts", message)
        case .log(let resolved):
            // Committed before any create: a crash re-uses the same draft.
            try await store.commit([.require(key: key, states: [.pending]), .setRecordingMetadata(key: key, metadata: resolved.text)])
            return resolved
        }
    }
}

public import CallAPI
public import CallAudio
public import CallJobs
public import CallMatch
public import CallSources
public import CallStore
import CallSupport
import Foundation
public import Logging

/// `callrec upload DIR`: the whole pipeline in one process, on the same store, jobs and
/// per-recording code as `enqueue` + `worker` — so an interrupted run (Ctrl-C, `kill -9`)
/// resumes where it stopped, and a re-run makes no API request for recordings already done.
///
/// The CPU stage (transcode queue, one slot per core) and the network stage (upload queue) run
/// side by side; transcodes stop claiming while ``Options/spoolAhead`` recordings wait for their
/// upload, which bounds the spool and memory.
public struct UploadRun: Sendable {
    public struct Options: Sendable {
        public var settings = TranscodeSettings()
        public var validation = ValidationConfiguration()
        public var jobs = ProcessInfo.processInfo.activeProcessorCount
        public var uploadSlots = 4
        /// Links each call log from the CRM index (issue 17); nil: no matching.
        public var matching: MatchSettings?
        /// Transcoded recordings waiting for their upload before transcodes pause.
        public var spoolAhead: Int?
        public var leaseTTL: Duration = .seconds(60)
        public var shutdownGrace: Duration = .seconds(25)
        /// The grid unsettled creates are looked for on while the run still has other work
        /// (at its end they are looked for at once, together).
        public var scanGrid: Duration = .seconds(300)
        /// When a file counts as written to its end; one still being written waits for a later run.
        public var settle = Settle()
        /// A PBX source (`--source freepbx …`): its recordings are taken by their call, not by a
        /// sidecar. nil: sidecars.
        public var source: SourceSettings?
        public init() {}
    }

    public let root: String
    public let store: any CallStore
    public let spool: Spool
    public let client: PipedriveClient
    public let options: Options
    public let logger: Logger
    /// Registration's fingerprints, for this run's transcodes (a file is read and hashed once).
    let fingerprints = Fingerprints()

    public init(root: String, store: any CallStore, spool: Spool, client: PipedriveClient, options: Options, logger: Logger) {
        self.root = root
        self.store = store
        self.spool = spool
        self.client = client
        self.options = options
        self.logger = logger
    }

    /// Step 1: registers every recording and enqueues its transcode (new recordings only).
    public func register(excluding: [String]) async throws -> BatchReport {
        if let source = options.source {
            return try await Self.intake(SourceIntake(settings: source, store: store, settle: options.settle, fingerprints: fingerprints,
                                                      logger: logger, excluding: excluding))
        }
        return try await EnqueueBatch(root: root, store: store, jobs: options.jobs, excluding: excluding, settle: options.settle,
                               fingerprints: fingerprints, logger: logger).run()
    }

    /// A PBX source's registration: its CDR files read in, then every file under its root taken
    /// (or listed, when the ledger knows it unchanged).
    public static func intake(_ intake: SourceIntake) async throws -> BatchReport {
        let clock = ContinuousClock(), started = clock.now
        _ = try await intake.ingestCDRs()
        let files = try await intake.scan(reportKnown: true)
        return BatchReport(files: files, summary: BatchReport.Summary(files: files, wallSeconds: (clock.now - started).seconds))
    }

    /// Step 2: the worker that runs this directory's jobs until nothing is left to do (put it in
    /// a `ServiceGroup`; SIGINT then releases what runs, for the next run to resume).
    ///
    /// It may start while step 1 still runs, transcoding what is registered while the rest is
    /// fingerprinted: take a ``Worker/holdOpen()`` before it starts and release it once the
    /// registration is done, so that running out of jobs meanwhile does not end it. Progress:
    /// ``Worker/events()``.
    public func worker(pool: CPUPool) -> Worker<ContinuousClock> {
        // One transcode more than the pool has threads: its CPU work waits queued in the pool, so a
        // thread goes straight on to it while a finished job commits (fsync) and the next is claimed.
        // Retries come sooner than in the worker (a person waits for this run), and the run
        // waits for a retry due within five minutes rather than leave it for the next run.
        var configuration = WorkerConfiguration.attended(slots: [.transcode: pool.threads + 1, .upload: options.uploadSlots], retryCap: .seconds(60))
        configuration.leaseTTL = options.leaseTTL
        configuration.shutdownGrace = options.shutdownGrace
        // A PBX recording waiting for its CDR row (minutes, --cdr-wait) is reported waiting, not
        // waited for: only retries within the retry cap keep the run.
        if options.source != nil { configuration.idleHorizon = min(configuration.idleHorizon, .seconds(60)) }
        // Transcodes stop while this many recordings wait for their upload (it bounds the spool).
        configuration.backpressure[.transcode] = Backpressure(downstream: .upload, limit: options.spoolAhead ?? (options.jobs * 2 + options.uploadSlots))
        // Unsettled creates (lost answers, 5xx, timeouts) are looked for together once the run
        // has nothing else to do: one scan of the account for the whole run, not one a minute.
        // The wide grid only matters for runs of many minutes.
        var uploads = UploadJobHandler(client: client, scanGrid: options.scanGrid, gridOrigin: Date())
        uploads.scansWhenIdle = true
        uploads.linker = options.matching.map { CallLinker(settings: $0) }
        let handlers: [any JobHandler] = [
            TranscodeJobHandler(spool: spool, settings: options.settings, validation: options.validation, pool: pool,
                                fingerprints: fingerprints, followUp: UploadJobHandler.followUp),
            uploads,
        ]
        return Worker(store: store, handlers: handlers, configuration: configuration, logger: logger)
    }

    /// Step 3: the report of DESIGN §7 from the ledger (call-log ids filled in). `stop`: why the
    /// worker stopped before the work was done (``WorkerSummary/stop``; a full disk is the
    /// report's `stopped`); a full disk met while registering stops the run too.
    public func report(registration: BatchReport, wallSeconds: Double, stop: WorkerStop? = nil) async throws -> BatchReport {
        var stopped: JobFailure?
        if case .diskFull(let failure) = stop { stopped = failure }
        var files: [FileReport] = []
        var resumeAfter = registration.summary.resumeAfter
        for registered in registration.files {
            var file = registered
            // Failed, or waiting before it was registered: the registration's line stands.
            if registered.status != .failed, registered.status != .waiting, let key = registered.key {
                let (report, waitsUntil) = try await ledgerReport(registered, key: key)
                file = report
                // The earliest wait still ahead (jobs held back behind the uploads go on with them).
                if let waitsUntil, waitsUntil > Date() { resumeAfter = min(resumeAfter ?? waitsUntil, waitsUntil) }
            }
            files.append(file)
        }
        let stop = stopped.map { FileReport.ErrorReport(code: $0.code, message: $0.message) }
            ?? files.lazy.compactMap(\.error).first { $0.code == JobFailure.diskFullCode }
        if let stop {
            // What the stop kept from running waits for the same reason, not for a time.
            for index in files.indices where files[index].status == .waiting && files[index].error?.code != stop.code {
                files[index].error = .init(code: stop.code, message: "\(files[index].path): not done: the run stopped (\(stop.code)) before it; it waits, intact, for the next run")
            }
            resumeAfter = nil
        }
        var summary = BatchReport.Summary(files: files, wallSeconds: wallSeconds)
        summary.resumeAfter = resumeAfter
        summary.stopped = stop
        return BatchReport(files: files, summary: summary)
    }

    /// The file's line from the ledger, and for one that waits, when its job is due.
    private func ledgerReport(_ registered: FileReport, key: String) async throws -> (FileReport, Date?) {
        let shown = registered.path
        // Deleted, or the same bytes as another file's recording: that file's line says how it went.
        // A second file of a call (another root, new bytes after the upload): the call's own file says how it went.
        if registered.warnings.contains(where: { [.deleted, DuplicateAudio.duplicateOf, SourceIntake.sameCall, SourceIntake.changedAfterUpload].contains($0.code) }) {
            return (registered, nil)
        }
        guard let recording = try await store.recording(key: key) else {
            return (.failed(shown, code: "not_registered", "\(shown): not in the ledger", key: key), nil)
        }
        let transcoded = spool.report(key: key)
        var report = FileReport(path: shown, key: key, status: .ok, error: nil,
                                warnings: (transcoded?.warnings ?? []) + registered.warnings.filter { $0.code != .alreadyKnown && $0.code != .resumed },
                                input: transcoded?.input, stats: transcoded?.stats, parts: [])
        // A PBX recording's warnings about its facts (`cdr_missing`, `number_invalid`, `no_user`).
        if let source = SourceMetadata.parse(recording.metadata) {
            report.warnings += source.warnings.map { AudioWarning(AudioWarning.Code(rawValue: $0.code), $0.message) }
        }
        let parts = try await store.parts(key: key)
        if options.matching != nil {
            report.match = try await store.audit(key: key, limit: 200).filter { $0.action == "match" }.max { $0.at < $1.at }.flatMap(FileReport.MatchReport.init)
        }
        report.parts = parts.map { part in
            var p = transcoded?.parts.first { $0.path == part.spoolPath }
                ?? FileReport.Part(path: part.spoolPath, bytes: part.bytes, seconds: part.seconds, frames: 0, sampleRate: 0,
                                   channels: 0, sha256: part.sha256, cut: "", callLogId: nil)
            p.callLogId = part.state == .attached ? part.callLogID : nil
            return p
        }
        let before = registered.warnings.contains { $0.code == .alreadyKnown }
        switch recording.state {
        case .uploaded:
            report.status = before ? .skipped : .ok
            if transcoded == nil, let pruned = try await SpoolPrune.prunedAt(key: key, store: store) {
                report.warnings.append(AudioWarning(.spoolPruned, "\(shown): its MP3 parts were removed from the spool \(ISO8601DateFormatter().string(from: pruned)) (spool retention); its call logs keep the audio"))
            }
        case .failed:
            report.status = .failed
            report.error = .init(code: recording.errorCode ?? "failed", message: recording.errorMessage ?? "\(shown): failed")
            report.parts = []
        case .deleting, .deleted:
            report.status = .skipped
            report.warnings.append(AudioWarning(.deleted, "\(shown): deleted; not uploaded again"))
        case .skipped:
            // Not logged on purpose (the source's policy): the reason is the recording's error.
            report.status = .skipped
            report.parts = []
            report.error = .init(code: recording.errorCode ?? "skipped", message: recording.errorMessage ?? "\(shown): not logged")
        case .pending, .transcoded:
            let jobs = try await store.jobs(JobQuery(states: [.available, .running], uniqueKey: (recording.state == .pending ? "transcode:" : "upload:") + key, limit: 1))
            var reason = "\(shown): not finished (\(recording.state.rawValue))"
            guard let job = jobs.first else {
                report.status = .failed
                report.error = .init(code: "not_finished", message: reason + "; no job is left for it (callrec queue ls)")
                return (report, nil)
            }
            // Its job waits (a spent budget, a rate-limit pause, back-pressure behind those):
            // nothing is wrong with the recording, and the next run after that time goes on.
            // A job released by a stopped run (a refused token, an unreachable API) is due now.
            let due = job.runAt <= Date()
            let code = job.errors.last?.error.split(separator: ":").first.map(String.init) ?? "not_finished"
            if code == CallResolution.awaitingCDR, !due {
                // Nothing to retry: the call's CDR row has not come (`--cdr-wait`).
                report.status = .waiting
                report.error = .init(code: code, message: "\(shown): waits for its call's CDR row until \(ISO8601DateFormatter().string(from: job.runAt)) (--cdr-wait); a run after the row is in the CDR file, or after that time, goes on")
                return (report, job.runAt)
            }
            reason += due ? "; its \(job.kind) job is ready for the next run" : "; its \(job.kind) job waits until \(ISO8601DateFormatter().string(from: job.runAt))"
            if let last = job.lastError { reason += " (\(last))" }
            reason += due ? "" : "; run again then to go on"
            report.status = .waiting
            report.error = .init(code: code, message: reason)
            return (report, job.runAt)
        }
        return (report, nil)
    }
}

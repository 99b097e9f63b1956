public import CallAPI
public import CallJobs
import CallMatch
public import CallStore
import CallSupport
public import Foundation
import Logging

/// The queue's network stage: every part of a `transcoded` recording attached to its own call
/// log, exactly once towards the CRM whatever fails and wherever the process dies (DESIGN §3;
/// research/api-contract.md §4.2).
///
/// Per part, each step is recorded before the next:
/// 1. the intent to create the call log, with a marker that goes into its note
///    (``PartState/creating``) — before the POST;
/// 2. the call log's id (``PartState/created``) — a POST whose answer was lost is resolved by
///    finding the marker in `GET /callLogs` before anything is created again;
/// 3. the upload (``PartState/attached``) — a 409 means an earlier upload landed, confirmed by
///    `has_recording`.
/// A `call_log_id` in the sidecar attaches a single-part recording to that call log instead.
public struct UploadJobHandler: JobHandler {
    public static let kind: JobKind = "upload"
    public var kind: JobKind { Self.kind }

    public let client: PipedriveClient
    let finder: CallLogFinder
    /// Links each call log from the CRM index (issue 17); nil: call logs link what their
    /// sidecar or source names, nothing more.
    public var linker: CallLinker?
    /// Creates whose outcome is unknown are looked for by scans on this clock-aligned grid: the
    /// unsettled creates of one stretch of time share one scan of `GET /callLogs` (20 tokens a
    /// page) instead of one scan each.
    public let scanGrid: Duration
    /// Where the grid starts: the clock's epoch (workers' scans fall on the same ticks), or a
    /// run's start (a run shorter than its grid scans only at its end; see
    /// ``whenIdle(horizon:context:)``).
    let gridOrigin: Date
    /// Whether a run that ends when idle looks for unsettled creates together at its end
    /// (``whenIdle(horizon:context:)``; `callrec upload`) rather than on the grid alone.
    public var scansWhenIdle = false

    public init(client: PipedriveClient, scanGrid: Duration = .seconds(60), gridOrigin: Date = Date(timeIntervalSince1970: 0)) {
        self.client = client
        self.scanGrid = scanGrid
        self.gridOrigin = gridOrigin
        finder = CallLogFinder(client: client)
    }

    /// When a part whose create went out at `sent` may be looked for: once the request has
    /// settled (its deadline and a margin have passed), at the next tick of the scan grid.
    func scanTime(sent: Date?) -> (settled: Date, scanAt: Date) {
        let settled = (sent ?? .distantPast).addingTimeInterval(client.requestTimeout.seconds + 2)
        let grid = scanGrid.seconds
        guard grid > 0 else { return (settled, settled) }
        let origin = gridOrigin.timeIntervalSince1970
        return (settled, Date(timeIntervalSince1970: origin + ((settled.timeIntervalSince1970 - origin) / grid).rounded(.up) * grid))
    }

    func unsettled(_ part: Part, until scanAt: Date) -> JobFailure {
        JobFailure(.snoozeUntil(scanAt), code: "create_unsettled",
                   "part \(part.index): an earlier create may have landed; looking for it at \(scanAt)")
    }

    /// With ``scansWhenIdle``, for a run that ends when its work is done (`callrec upload`):
    /// once nothing is left within `horizon` but the upload
    /// jobs put off because a create may have landed, those are made due together, as soon as
    /// the last of their creates has settled. They then share one scan of `GET /callLogs` (each
    /// scan reads every page: 20 tokens per 50 call logs in the account) at the run's end, rather
    /// than one per grid tick.
    public func whenIdle(horizon: Duration, context: JobContext) async throws -> IdleAnswer {
        guard scansWhenIdle else { return .nothing }
        return try await lookForUnsettledCreates(store: context.store, horizon: horizon)
    }

    func lookForUnsettledCreates(store: any CallStore, horizon: Duration) async throws -> IdleAnswer {
        let now = Date()
        let later = try await store.jobs(JobQuery(states: [.available], limit: 1_000_000)).filter { $0.runAt > now }
        var ids: [Int64] = []
        var lastSent = Date.distantPast
        for job in later.sorted(by: { $0.runAt < $1.runAt }) {
            if job.jobKind == Self.kind, let key = try? job.arguments(as: RecordingJobArguments.self).key,
               let sent = try await store.parts(key: key).filter({ $0.state == .creating }).compactMap(\.createStartedAt).max() {
                ids.append(job.id)
                lastSent = max(lastSent, sent)
            } else if job.runAt.timeIntervalSince(now) <= horizon.seconds {
                // Other work comes first (a retry after its backoff): it may leave creates
                // unsettled too, and they should share the scan.
                return .nothing
            }
        }
        guard !ids.isEmpty else { return .nothing }
        if scanTime(sent: lastSent).settled > now { return .waiting }
        _ = try await store.retry(ids: ids)
        return .woke
    }

    /// The job for a recording: at most one live per recording; 20 attempts span a working day
    /// of outages with the default backoff.
    public static func job(key: String) throws -> NewJob {
        try NewJob(queue: .upload, kind: kind, arguments: RecordingJobArguments(key: key),
                   uniqueKey: "upload:\(key)", maxAttempts: 20)
    }

    /// The marker a part's call log carries in its note: unique per recording and part, so the
    /// call logs of one part can be counted and a lost create found.
    public static func marker(key: String, index: Int) -> String { "callrec:\(key.prefix(32)):p\(index)" }

    public func quarantined(_ job: Job, context: JobContext) async throws {
        try await quarantine(recordingOf: job, from: [.transcoded], context: context)
    }

    public func run(_ job: Job, context: JobContext) async throws {
        var logger = context.logger
        guard var recording = try await recording(for: job, in: [.transcoded, .failed], context: context, logger: &logger) else { return }
        let key = recording.key, store = context.store
        if recording.state == .failed {
            // A failed recording's upload job runs again only when someone asked (`queue retry`:
            // its first attempt since): try it again, from where its parts are.
            guard job.attempt <= 1, try await !store.parts(key: key).isEmpty else {
                logger.debug("recording is failed; nothing to do")
                return
            }
            try await store.commit([
                .require(key: key, states: [.failed]),
                .setRecordingState(key: key, state: .transcoded),
                .audit(AuditEntry(recordingKey: key, action: "rearmed", detail: "job \(job.id) retried after \(recording.errorCode ?? "failed")", actor: context.owner)),
            ])
            recording.state = .transcoded
        }
        var sidecar: Sidecar
        if let source = SourceMetadata.parse(recording.metadata) {
            // A PBX recording: the call log its transcode job decided and committed (no sidecar).
            guard let draft = source.callLog else {
                try await fail(store, key, code: "no_call_log", "\(recording.path): transcoded without a decided call log", owner: context.owner)
            }
            sidecar = Sidecar(callLog: draft)
        } else {
            sidecar = try await currentSidecar(of: recording, store: store, owner: context.owner, logger: logger)
        }
        let parts = try await store.parts(key: key).sorted { $0.index < $1.index }
        guard !parts.isEmpty else {
            throw JobFailure(.permanent, code: "no_parts", "\(recording.path): transcoded without parts")
        }
        // The draft before matching filled it, and whether matching filled it: a create refused
        // for those ids (a person or deal deleted in the CRM since the index last listed it) is
        // made again without them rather than fail the recording.
        let unmatched = sidecar.callLog
        var matchedLinks = false
        if let linker, let base = sidecar.callLog, sidecar.callLogId == nil, parts.contains(where: { $0.callLogID == nil }) {
            // Linked from the local index (no request), once per attempt that creates call logs;
            // the decision goes into the audit trail.
            let linked = try await linker.link(base, metadata: SourceMetadata.parse(recording.metadata), agentEmail: sidecar.agentEmail, key: key, actor: context.owner, store: store,
                                               client: client, logger: logger)
            sidecar.callLog = linked.draft
            matchedLinks = linked.decision.linked && linked.decision.reason != .sidecarIDs
            try await store.commit([
                .require(key: key, states: [.transcoded]),
                .audit(CallLinker.audit(linked.decision, owner: linked.owner, key: key, actor: context.owner)),
            ])
            logger.debug("matched", metadata: ["reason": "\(linked.decision.reason.rawValue)", "match": "\(linked.decision.explanation)"])
        }
        let stem = Scanner.stem(of: (recording.path as NSString).lastPathComponent)
        let uploaded: [LedgerOp] = [
            .setRecordingState(key: key, state: .uploaded),
            .audit(AuditEntry(recordingKey: key, action: "uploaded", detail: "\(parts.count) part(s)", actor: context.owner)),
        ]
        var finished = false
        var offset = 0.0
        // The call log the part being sent is attached to, when the sidecar named it.
        var given: String?
        do {
            for var part in parts {
                defer { offset += part.seconds }
                if part.state == .attached { continue }
                try Task.checkCancellation()
                if part.marker == nil, part.state == .created, let given = part.callLogID, given != sidecar.callLogId {
                    // Attached to the call log the sidecar named (callrec created nothing), and the
                    // sidecar now names another, or none: follow it. Call logs callrec created stay.
                    part.callLogID = sidecar.callLogId
                    part.callLogOrigin = sidecar.callLogId == nil ? nil : .given
                    part.state = sidecar.callLogId == nil ? .pending : .created
                    try await store.commit([
                        .require(key: key, states: [.transcoded]),
                        .updatePart(part),
                        .audit(AuditEntry(recordingKey: key, action: "call_log_id_changed", target: "pipedrive:\(given)",
                                          detail: "part \(part.index): the sidecar now names \(sidecar.callLogId ?? "no call log (one is created)")", actor: context.owner)),
                    ])
                }
                if part.callLogID == nil {
                    do {
                        part = try await ensureCallLog(part, of: recording, sidecar: sidecar, partCount: parts.count, offset: offset,
                                                       store: store, owner: context.owner, logger: logger)
                    } catch let error as APIError where error.code == .permanent && matchedLinks {
                        logger.warning("the call log was refused with the ids matching gave it; made without them", metadata: ["error": "\(error)"])
                        sidecar.callLog = unmatched
                        matchedLinks = false
                        try await store.commit([
                            .require(key: key, states: [.transcoded]),
                            .audit(AuditEntry(recordingKey: key, action: "match", detail: "match_refused: Pipedrive refused the matched ids (\(error)); the call log is made unlinked",
                                              actor: context.owner)),
                        ])
                        part = try await ensureCallLog(part, of: recording, sidecar: sidecar, partCount: parts.count, offset: offset,
                                                       store: store, owner: context.owner, logger: logger)
                    }
                }
                guard let callLogID = part.callLogID else { continue }
                given = part.marker == nil ? callLogID : nil
                let filename = parts.count == 1 ? "\(stem).mp3" : TranscodeBatch.partNames(stem: stem, count: parts.count)[part.index - 1]
                var outcome = try await client.uploadRecording(callLogId: callLogID, path: part.spoolPath, filename: filename)
                if outcome == .alreadyExists {
                    // 409: something is attached already. Ours, from an attempt whose answer was
                    // lost — has_recording confirms it is there.
                    let log = try await client.callLog(id: callLogID)
                    guard log.hasRecording else {
                        throw JobFailure(.transient, code: "upload_unconfirmed", "call log \(callLogID) answered 409 but has no recording")
                    }
                    outcome = .alreadyExists
                }
                part.state = .attached
                part.attachedAt = Date()
                var ops: [LedgerOp] = [
                    .require(key: key, states: [.transcoded]),
                    .updatePart(part),
                    .audit(AuditEntry(recordingKey: key, action: "upload", target: "pipedrive:\(callLogID)",
                                      httpStatus: outcome == .uploaded ? 200 : outcome == .alreadyExists ? 409 : nil,
                                      detail: "part \(part.index) of \(parts.count), \(part.bytes) bytes, sha256 \(part.sha256)"
                                          + (outcome == .landedEarlier ? "; its answer was lost, has_recording confirmed it" : ""),
                                      actor: context.owner)),
                ]
                if part.index == parts.last?.index {
                    // The last part: the recording is uploaded in the same commit (one sync less).
                    ops += uploaded
                    finished = true
                }
                try await store.commit(ops)
            }
        } catch let error as StoreError where error.code == .conflict {
            // Deleted or changed under us (a cascade delete started): stop here, nothing to undo.
            logger.info("recording left the transcoded state while uploading; stopping", metadata: ["reason": "\(error.message)"])
            return
        } catch let error as APIError {
            try await handle(error, store: store, key: key, path: recording.path, given: given, owner: context.owner)
        }
        if !finished {
            // Every part was attached by an earlier attempt that stopped before this commit.
            try await store.commit([.require(key: key, states: [.transcoded])] + uploaded)
        }
        logger.info("uploaded", metadata: ["parts": "\(parts.count)"])
    }

    /// The recording's sidecar as it is now: read again from beside the recording when it changed
    /// since it was stored (a mended sidecar, checked as at registration, goes into the ledger
    /// with its provider references and an audit entry; a broken one fails the recording), the
    /// stored one when the file cannot be read here (another machine, a directory moved away).
    private func currentSidecar(of recording: Recording, store: any CallStore, owner: String, logger: Logger) async throws -> Sidecar {
        let key = recording.key
        let stored = recording.metadata.flatMap { Sidecar.parse(Data($0.utf8)).sidecar }
        guard let path = Scanner.sidecarPath(ofRecording: recording.path) else {
            if let stored { return stored }
            try await fail(store, key, code: "invalid_sidecar", "\(recording.path): the sidecar stored with it no longer parses, and none is beside it", owner: owner)
        }
        let shown = Scanner.stem(of: recording.path) + ".json"
        switch SidecarRead.read(path: path, shown: shown) {
        case .valid(let sidecar, let text):
            guard sidecar != stored else { return sidecar }
            try await store.commit([
                .require(key: key, states: [.transcoded]),
                .setRecordingMetadata(key: key, metadata: text),
                .replaceProviderRefs(key: key, refs: EnqueueBatch.providerRefs(sidecar, key: key)),
                .audit(AuditEntry(recordingKey: key, action: "sidecar_reread", detail: "\(shown) changed since it was read (upload job)", actor: owner)),
            ])
            logger.info("read the sidecar again: it changed since it was stored", metadata: ["sidecar": "\(path)"])
            return sidecar
        case .broken(let message):
            if let stamp = FileStamp(path: path), Date().timeIntervalSince1970 - stamp.modifiedAt < FileStamp.settleSeconds {
                // Written to just now, perhaps caught half-written: look again shortly, before
                // calling it broken.
                throw JobFailure(.snooze(.seconds(5)), code: Settle.code, "\(message) (changed just now: read again shortly)")
            }
            try await fail(store, key, code: "invalid_sidecar", message, owner: owner)
        case .missing:
            if let stored { return stored }
            try await fail(store, key, code: "invalid_sidecar", "\(recording.path): the sidecar stored with it no longer parses, and none is beside it", owner: owner)
        }
    }

    /// Gives the part a call log: the sidecar's, one found by its marker, or a new one.
    private func ensureCallLog(_ part: Part, of recording: Recording, sidecar: Sidecar, partCount: Int, offset: Double,
                               store: any CallStore, owner: String, logger: Logger) async throws -> Part {
        var part = part
        let key = recording.key
        let marker = part.marker ?? Self.marker(key: key, index: part.index)
        if part.state == .creating {
            // An earlier attempt sent the create and died or lost the answer. The request may
            // still land until its deadline has passed: only a scan that starts after that can
            // say it did not, so wait for it (without using up an attempt).
            let (settled, scanAt) = scanTime(sent: part.createStartedAt)
            // Due on the grid, or made due early (the run has nothing else to do, a retry, a
            // rescue): once settled, look.
            if settled > Date() { throw unsettled(part, until: scanAt) }
            if let found = try await finder.find(marker: marker, after: settled, logger: logger) {
                logger.info("adopted the call log an earlier create made (its answer was lost)", metadata: ["call_log": "\(found)"])
                return try await adopt(found, for: part, store: store, owner: owner, status: nil)
            }
        }
        if let given = sidecar.callLogId {
            guard partCount == 1 else {
                try await fail(store, key, code: "call_log_id_for_parts",
                               "\(recording.path): call_log_id names one call log, but the recording is split into \(partCount) parts and a call log holds one recording; give call_log instead")
            }
            part.callLogID = given
            part.callLogOrigin = .given  // not callrec's: a delete leaves it unless told
            part.state = .created
            // No marker: the call log is the sidecar's, not one callrec created.
            part.marker = nil
            part.createStartedAt = nil
            try await store.commit([.require(key: key, states: [.transcoded]), .updatePart(part)])
            return part
        }
        guard let base = sidecar.callLog else {
            try await fail(store, key, code: "invalid_sidecar", "\(recording.path): the sidecar has neither call_log nor call_log_id", owner: owner)
        }
        let draft = Self.draft(base, part: part, partCount: partCount, offset: offset, recordingSeconds: recording.seconds, marker: marker)
        if let problem = draft.problems().first {
            try await fail(store, key, code: "invalid_call_log", "\(recording.path): \(problem)", owner: owner)
        }
        // Recorded before every POST, with the time it leaves: whoever resumes this part waits
        // until this request has settled before it may conclude that it did not land. (Only
        // once the budget is known to cover the create and its upload: a refusal there leaves
        // nothing to look for.)
        part.state = .creating
        part.marker = marker
        part.createStartedAt = Date()
        let sending = part
        var recorded = false
        do {
            let log = try await client.createCallLog(draft) {
                try await store.commit([.require(key: key, states: [.transcoded]), .updatePart(sending)])
                recorded = true
            }
            return try await adopt(log.id, for: part, store: store, owner: owner, status: 200)
        } catch let error as APIError where [.budgetSpent, .rateLimited, .stopEverything, .credentialsRefused, .permanent, .configuration].contains(error.code) || error.neverSent {
            // Refused (a 429, a refused token, or for good: 400, 404, 413), or never sent (the
            // limiter held it back, no connection): no call log was made. The part goes back to
            // having no create in flight, so nothing needs looking for when it is tried again (a
            // mended sidecar, a retry).
            if recorded {
                var idle = part
                idle.state = .pending
                idle.createStartedAt = nil
                try await store.commit([.require(key: key, states: [.transcoded]), .updatePart(idle)])
            }
            throw error
        } catch let error as APIError where error.code == .unknownOutcome {
            // A 5xx, a timeout, a dropped connection: the call log may exist. Look before
            // anything is created again, with the other unsettled creates (see above).
            logger.warning("create outcome unknown", metadata: ["part": "\(part.index)", "error": "\(error)"])
            throw unsettled(part, until: scanTime(sent: part.createStartedAt).scanAt)
        }
    }

    private func adopt(_ id: String, for part: Part, store: any CallStore, owner: String, status: Int?) async throws -> Part {
        var part = part
        part.callLogID = id
        part.callLogOrigin = .created
        part.state = .created
        try await store.commit([
            .require(key: part.recordingKey, states: [.transcoded]),
            .updatePart(part),
            .audit(AuditEntry(recordingKey: part.recordingKey, action: status == nil ? "adopt_call_log" : "create_call_log",
                              target: "pipedrive:\(id)", httpStatus: status, detail: "part \(part.index), marker \(part.marker ?? "-")", actor: owner)),
        ])
        return part
    }

    /// The call log for one part: the sidecar's fields; times and duration of this part (derived
    /// from the audio where the sidecar leaves them out); `(part k of n)` in the subject; the
    /// marker appended to the note.
    static func draft(_ base: CallLogDraft, part: Part, partCount: Int, offset: Double, recordingSeconds: Double?, marker: String) -> CallLogDraft {
        var draft = base
        let start = CallLogDraft.parseTime(base.startTime)
        if partCount > 1 {
            draft.subject = "\(base.subject ?? "Call") (part \(part.index) of \(partCount))"
            if let start {
                draft.startTime = CallLogDraft.formatTime(start.addingTimeInterval(offset.rounded(.down)))
                draft.endTime = CallLogDraft.formatTime(start.addingTimeInterval((offset + part.seconds).rounded(.down)))
            }
            draft.duration = String(Int(part.seconds.rounded()))
        } else {
            let seconds = recordingSeconds ?? part.seconds
            if draft.endTime == nil, let start {
                draft.endTime = CallLogDraft.formatTime(start.addingTimeInterval(seconds.rounded()))
            }
            if draft.duration == nil {
                draft.duration = String(Int(seconds.rounded()))
            }
        }
        let tag = "<p>[\(marker)]</p>"
        draft.note = (base.note ?? "") + tag
        return draft
    }

    /// - Parameter given: the call log id the sidecar gave, when the failing part was attached to it.
    private func handle(_ error: APIError, store: any CallStore, key: String, path: String, given: String?, owner: String) async throws -> Never {
        // A wait (429, a spent budget, the abuse block) or a stop (a refused token, an
        // unreachable API): never an attempt used, never the recording failed.
        if let failure = error.runFailure { throw failure }
        switch error.code {
        case .permanent, .configuration:
            try await fail(store, key, code: "api_refused", "\(path): \(error)", owner: owner)
        case .notFound:
            if let given {
                // An id the sidecar gave, which callrec never saw exist.
                try await fail(store, key, code: "call_log_not_found",
                               "\(path): call log \(given), which call_log_id in \(Scanner.stem(of: path)).json names, does not exist (or no longer exists) in the Pipedrive account (\(error)); mend call_log_id, or replace it with call_log to create the call log, and run again", owner: owner)
            }
            try await fail(store, key, code: "call_log_gone", "\(path): \(error) (the call log callrec created was deleted in Pipedrive before its recording was attached; reconcile handles it)", owner: owner)
        default:
            throw JobFailure(.transient, code: error.code.rawValue, error.description)
        }
    }

    /// Marks the recording failed with its reason and discards the job.
    private func fail(_ store: any CallStore, _ key: String, code: String, _ message: String, owner: String = "") async throws -> Never {
        try await store.commit([
            .require(key: key, states: [.transcoded]),
            .setRecordingState(key: key, state: .failed, errorCode: code, errorMessage: message),
            .audit(AuditEntry(recordingKey: key, action: "upload_failed", detail: "\(code): \(message)", actor: owner)),
        ])
        throw JobFailure(.permanent, code: code, message)
    }
}

/// Finds call logs by their marker, sharing scans between the parts that need one: a scan of
/// `GET /callLogs` (20 tokens a page) that started after a part's create was sent answers for
/// that part, so the lost creates of one stretch of time cost one scan, not one each. Requests
/// that come within ``gather`` of each other wait for one scan together.
actor CallLogFinder {
    let client: PipedriveClient
    let gather: Duration
    private var last: (started: Date, markers: [String: String])?
    private var pending: Task<(Date, [String: String]), any Error>?

    init(client: PipedriveClient, gather: Duration = .milliseconds(1500)) {
        self.client = client
        self.gather = gather
    }

    /// The id of the call log carrying `marker`, from a scan that started after `after`.
    func find(marker: String, after: Date, logger: Logger) async throws -> String? {
        if let last, last.started > after { return last.markers[marker] }
        let task: Task<(Date, [String: String]), any Error>
        if let pending {
            task = pending
        } else {
            let client = self.client, gather = self.gather
            task = Task {
                try await Task.sleep(for: gather)
                let started = Date()
                var markers: [String: String] = [:]
                logger.info("scanning GET /callLogs for call logs whose create may have landed")
                let logs = try await client.allCallLogs { page in
                    for log in page.items {
                        for text in [log.note, log.subject].compactMap({ $0 }) {
                            var rest = Substring(text)
                            while let range = rest.range(of: "callrec:") {
                                let tail = rest[range.lowerBound...]
                                let end = tail.firstIndex(where: { !($0.isLetter || $0.isNumber || $0 == ":") }) ?? tail.endIndex
                                markers[String(tail[..<end])] = markers[String(tail[..<end])] ?? log.id
                                rest = tail[end...]
                            }
                        }
                    }
                }
                logger.info("scan done", metadata: ["call_logs": "\(logs.count)", "markers": "\(markers.count)"])
                return (started, markers)
            }
            pending = task
        }
        let result: (Date, [String: String])
        do {
            result = try await task.value
        } catch {
            if pending == task { pending = nil }
            throw error
        }
        if pending == task { pending = nil }
        if last == nil || last!.started < result.0 { last = (result.0, result.1) }
        // A scan that started before this create was sent cannot answer for it: scan again.
        guard result.0 > after else { return try await find(marker: marker, after: after, logger: logger) }
        return result.1[marker]
    }
}

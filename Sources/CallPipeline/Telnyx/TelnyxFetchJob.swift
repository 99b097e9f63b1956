public import AsyncHTTPClient
public import CallAPI
public import CallJobs
import CallSources
public import CallStore
public import CallTelnyx
public import Foundation
import Logging

/// A Telnyx recording's network stage, before its transcode: its call's facts (waiting, bounded,
/// for the call's events), its call log decided, its audio downloaded to the spool (a link that
/// expired or failed replaced by a fresh one from `GET /v2/recordings`, which also gives the
/// recording id when the webhook did not), then its transcode enqueued in the commit that records
/// all of it.
///
/// At-least-once safe: the call log is committed before any download (a rerun keeps it); a
/// download is written to `.part` and renamed whole; the hash, the recording id and the transcode
/// go into the ledger in one commit, and a rerun after it finds the file with that hash and does
/// nothing.
public struct TelnyxFetchJobHandler: JobHandler {
    public static let kind: JobKind = "telnyx-fetch"
    public var kind: JobKind { Self.kind }

    public let settings: TelnyxSettings
    /// Lists recordings (fresh links, the recording id); nil without TELNYX_API_KEY.
    public let client: TelnyxClient?
    /// Downloads the (pre-signed) links.
    public let http: HTTPClient
    public let spool: Spool
    /// Jobs to enqueue with the download's commit (the transcode).
    public let followUp: @Sendable (String) -> [NewJob]
    /// What "now" is when the job asks whether the call's events may still come (tests move it).
    public var now: @Sendable () -> Date = { Date() }
    /// One download's deadline.
    public var downloadTimeout: Duration = .seconds(600)
    /// A recording over this many bytes fails (`recording_too_large`).
    public var maxBytes: Int64 = 2 << 30

    public init(settings: TelnyxSettings, client: TelnyxClient?, http: HTTPClient, spool: Spool,
                followUp: @escaping @Sendable (String) -> [NewJob]) {
        self.settings = settings
        self.client = client
        self.http = http
        self.spool = spool
        self.followUp = followUp
    }

    /// At most one live per recording.
    public static func job(key: String) throws -> NewJob {
        try NewJob(queue: .fetch, kind: kind, arguments: RecordingJobArguments(key: key), uniqueKey: uniqueKey(key), priority: 2,
                   maxAttempts: 5)
    }

    /// What a call event wakes (``LedgerOp/wakeJobs(uniqueKeys:)``).
    public static func uniqueKey(_ key: String) -> String { "fetch:\(key)" }

    /// The job's failure while a recording waits for its call's events.
    public static let awaitingEvents = "awaiting_telnyx_events"
    /// The warning of a recording whose id neither the event nor the listing gave.
    public static let recordingIDUnknown = "telnyx_recording_id_unknown"
    /// The audit action of a download.
    public static let downloadedAction = "telnyx_downloaded"

    public func quarantined(_ job: Job, context: JobContext) async throws {
        try await quarantine(recordingOf: job, from: [.pending], context: context)
    }

    public func run(_ job: Job, context: JobContext) async throws {
        var logger = context.logger
        guard let recording = try await recording(for: job, in: .pending, context: context, logger: &logger) else { return }
        let key = recording.key, store = context.store
        guard var metadata = SourceMetadata.parse(recording.metadata), metadata.telnyx != nil else {
            try await fail(key, code: "not_telnyx", "recording \(key) (\(recording.path)) is not a Telnyx recording: its metadata has no telnyx section",
                           context: context)
        }
        if metadata.callLog == nil {
            guard let decided = try await decide(metadata, key: key, context: context, logger: logger) else { return }
            metadata = decided
        }
        guard var state = metadata.telnyx else { return }
        let info = state.recording
        let call = "call session \(info.callSessionID) (leg \(info.callLegID))"

        // A rerun after the final commit (a lost lease): the file is there with its hash.
        if let expected = state.audioSHA256, TelnyxDownload.sha256(ofFileAt: recording.path) == expected {
            logger.debug("already downloaded")
            return
        }

        var listed: TelnyxRecording?
        var listingAsked = false
        func lookUp() async throws -> TelnyxRecording? {
            if !listingAsked, let client {
                listingAsked = true
                listed = try await listing(info, client: client)
            }
            return listed
        }

        let download = TelnyxDownload(http: http, timeout: downloadTimeout, maxBytes: maxBytes)
        var renewed = false
        var result: TelnyxDownload.Result
        do {
            guard let link = Self.link(info.urls, format: state.format) else {
                throw TelnyxDownload.Failure.link("the recording event carries no download link")
            }
            result = try await download.download(link, to: recording.path)
        } catch let failure as TelnyxDownload.Failure {
            guard case .link(let why) = failure else { throw try await jobFailure(failure, key: key, call: call, context: context) }
            guard client != nil else {
                let message = "the link of recording \(info.recordingID ?? key) of \(call) failed (\(why)) and TELNYX_API_KEY is not set to get a fresh one"
                if job.attempt >= job.maxAttempts { try await fail(key, code: "telnyx_link_expired", message, context: context) }
                throw JobFailure(.transient, code: "telnyx_link_expired", message)
            }
            guard let item = try await lookUp() else {
                try await fail(key, code: "telnyx_recording_gone",
                               "the link of recording \(info.recordingID ?? key) of \(call) failed (\(why)) and GET /v2/recordings lists no such recording any more",
                               context: context)
            }
            guard let fresh = Self.link(item.downloadURLs, format: state.format) else {
                throw JobFailure(.transient, code: "telnyx_link_expired",
                                 "the link of recording \(item.id) of \(call) failed (\(why)) and GET /v2/recordings gives no download link for it")
            }
            renewed = true
            logger.info("download link renewed from the listing", metadata: ["why": "\(why)"])
            do {
                result = try await download.download(fresh, to: recording.path)
            } catch {
                throw try await jobFailure(error, key: key, call: call, context: context)
            }
        }
        try Task.checkCancellation()

        // The recording id: the event's, else the listing's.
        if state.recording.recordingID == nil {
            if let item = try await lookUp() {
                state.recording.recordingID = item.id
            } else if !metadata.warnings.contains(where: { $0.code == Self.recordingIDUnknown }) {
                let why = client == nil ? "TELNYX_API_KEY is not set" : "GET /v2/recordings does not list it"
                metadata.warnings.append(SourceWarning(Self.recordingIDUnknown,
                                                       "\(call): the recording's id is unknown (\(why)): callrec cannot delete it from Telnyx"))
            }
        }
        state.audioSHA256 = result.sha256
        metadata.telnyx = state
        var ops: [LedgerOp] = [.require(key: key, states: [.pending]), .setRecordingMetadata(key: key, metadata: metadata.text)]
        if let id = state.recording.recordingID {
            ops.append(.putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: id)))
        }
        ops.append(.audit(AuditEntry(recordingKey: key, action: Self.downloadedAction,
                                     detail: "\(result.bytes) bytes\(renewed ? ", link renewed from the listing" : "")", actor: context.owner)))
        ops += followUp(key).map { .enqueue($0) }
        do {
            try await store.commit(ops)
        } catch let error as StoreError where error.code == .conflict {
            return  // no longer pending (deleted meanwhile): nothing more to do
        }
        logger.info("downloaded", metadata: ["bytes": "\(result.bytes)", "renewed": "\(renewed)"])
    }

    /// The link of `format`, else of the other format.
    static func link(_ urls: [String: String], format: String) -> String? {
        if let link = urls[format], !link.isEmpty { return link }
        return urls.sorted { $0.key < $1.key }.first { !$0.value.isEmpty }?.value
    }

    /// The listing's item for this recording: by the leg, then by the session; matched by the
    /// recording id when known, else by `recording_started_at` within a second.
    func listing(_ info: TelnyxRecordingInfo, client: TelnyxClient) async throws -> TelnyxRecording? {
        for filters in [["call_leg_id": info.callLegID], ["call_session_id": info.callSessionID]] {
            let items: [TelnyxRecording]
            do {
                items = try await client.allRecordings(filters: filters, maxPages: 10)
            } catch let error as APIError {
                if let failure = error.runFailure { throw failure }
                throw JobFailure(.transient, code: error.code.rawValue, "GET /v2/recordings: \(error.description)")
            }
            if let id = info.recordingID {
                if let item = items.first(where: { $0.id.lowercased() == id.lowercased() }) { return item }
                continue
            }
            guard let started = info.startedAt else { continue }
            let near = items.compactMap { item in
                item.recordingStartedAt.flatMap(TelnyxTime.parse).map { (item, abs($0.timeIntervalSince(started))) }
            }.filter { $0.1 <= 1 }
            if let best = near.min(by: { $0.1 < $1.1 }) { return best.0 }
        }
        return nil
    }

    /// Decides the call log before any download: waits (snoozes) while the call's events may
    /// still come; skipped by the policy (nil: the job is done) or the metadata with its call log,
    /// committed.
    private func decide(_ metadata: SourceMetadata, key: String, context: JobContext, logger: Logger) async throws -> SourceMetadata? {
        guard let state = metadata.telnyx else { return nil }
        let store = context.store
        let info = state.recording
        let rows = try await store.telnyxEvents(sessions: [info.callSessionID])
        let events = rows.compactMap { try? TelnyxEvent.parse(document: $0.document) }
        let until = Date(timeIntervalSince1970: state.eventsWaitUntil)
        if !TelnyxFacts.isComplete(events), now() < until {
            throw JobFailure(.snoozeUntil(until), code: Self.awaitingEvents,
                             "call session \(info.callSessionID): its call.initiated and call.hangup events have not all come; the recording waits until \(ISO8601DateFormatter().string(from: until)) (events_wait), then goes on with what the recording event says")
        }
        var settings = self.settings
        settings.source = metadata.source.settings.settings
        guard let facts = TelnyxFacts.facts(events: events, recording: info, settings: settings) else {
            let seen = Set(events.map(\.type)).intersection(TelnyxEvent.callEvents).sorted()
            try await fail(key, code: "no_call_facts",
                           "call session \(info.callSessionID): no call event gives the other party's number (events: \(seen.isEmpty ? "none" : seen.joined(separator: ", "))) and the recording event carries no from/to",
                           context: context)
        }
        var resolved = metadata
        resolved.facts = facts
        switch TelnyxFacts.decide(facts, settings: settings, audioSeconds: nil) {
        case .skip(let reason, message: let why):
            let message = "call session \(info.callSessionID): \(why)"
            try await store.commit(CallResolution.skipOps(key: key, metadata: resolved, reason: reason, message: message, actor: context.owner))
            logger.info("not logged", metadata: ["reason": "\(reason.rawValue)"])
            return nil
        case .log(let draft, let warnings):
            resolved.callLog = draft
            resolved.warnings = warnings
            // Committed before any download: a rerun uses the same draft.
            try await store.commit([.require(key: key, states: [.pending]), .setRecordingMetadata(key: key, metadata: resolved.text)])
            return resolved
        }
    }

    /// How a download's failure ends the job (after the link was renewed, or for a failure a
    /// fresh link does not mend).
    private func jobFailure(_ error: any Error, key: String, call: String, context: JobContext) async throws -> JobFailure {
        guard let failure = error as? TelnyxDownload.Failure else { return JobFailure(error) }
        switch failure {
        case .link(let m):
            return JobFailure(.transient, code: "telnyx_download_failed", "\(call): \(m)")
        case .transient(let m):
            return JobFailure(.transient, code: "telnyx_download_failed", "\(call): \(m)")
        case .diskFull(let m):
            return .diskFull("\(call): \(m)")
        case .spool(let m):
            return JobFailure(.transient, code: "spool_failed", "\(call): \(m)")
        case .tooLarge(let m):
            try await fail(key, code: "recording_too_large", "\(call): \(m)", context: context)
        }
    }

    /// Marks the recording failed with its reason and discards the job.
    private func fail(_ key: String, code: String, _ message: String, context: JobContext) async throws -> Never {
        do {
            try await context.store.commit([
                .require(key: key, states: [.pending]),
                .setRecordingState(key: key, state: .failed, errorCode: code, errorMessage: message),
                .audit(AuditEntry(recordingKey: key, action: "telnyx_fetch_failed", detail: "\(code): \(message)", actor: context.owner)),
            ])
        } catch let error as StoreError where error.code == .conflict {}
        throw JobFailure(.permanent, code: code, message)
    }
}

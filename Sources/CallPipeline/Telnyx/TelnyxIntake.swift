import CallSources
public import CallStore
import CallSupport
public import CallTelnyx
public import Foundation
public import Logging

/// Verified Telnyx events into the ledger, durably and idempotently, before the webhook is
/// answered: each event is stored once (by its id); a `call.recording.saved` registers its
/// recording (``TelnyxRecordingInfo/key``) and enqueues its fetch job; a call event wakes the
/// fetch jobs of its session's recordings that wait for it.
public struct TelnyxIntake: Sendable {
    public let store: any CallStore
    public let settings: TelnyxSettings
    public let spool: Spool
    public let logger: Logger

    public init(store: any CallStore, settings: TelnyxSettings, spool: Spool, logger: Logger) {
        self.store = store
        self.settings = settings
        self.spool = spool
        self.logger = logger
    }

    /// Stores these events (any number, any order, duplicates allowed) in one commit, with the
    /// registrations, jobs and wake-ups they make. Returns once committed.
    ///
    /// No read before the commit: a recording is registered unless the ledger knows its key (a
    /// recording, else a tombstone), decided in the commit; the call events wake the fetch jobs of
    /// their sessions' recordings there (the stored recording events carry their keys). A
    /// recording event that cannot be read (no leg) is stored, logged with the field, and
    /// registers nothing.
    public func accept(_ events: [TelnyxEvent], receivedAt: Date) async throws {
        var seen: Set<String> = []
        let unique = events.filter { seen.insert($0.id).inserted }
        guard !unique.isEmpty else { return }
        let announced = recordings(announcedBy: unique)
        // The stored recording events carry their recording's key: a later call event of the
        // session finds it in the same commit.
        var keyOfEvent: [String: String] = [:]
        for recording in announced { if let id = recording.eventID { keyOfEvent[id] = recording.key } }
        var ops: [LedgerOp] = [.insertTelnyxEvents(unique.map { Self.row($0, receivedAt: receivedAt, recordingKey: keyOfEvent[$0.id]) })]
        // No read before the commit (the webhook's hot path: one transaction per batch and
        // nothing else): each registration is decided in it (unless the ledger knows the key),
        // and the call events wake the recordings of their sessions there.
        for recording in announced {
            ops.append(.unlessKnown(key: recording.key, ops: try registrationOps(of: recording, origin: "webhook", now: receivedAt)))
        }
        let sessions = Set(unique.filter { TelnyxEvent.callEvents.contains($0.type) }.compactMap(\.callSessionID).filter { !$0.isEmpty })
        if !sessions.isEmpty {
            ops.append(.wakeTelnyxSessions(sessions.sorted(), uniqueKeyPrefix: TelnyxFetchJobHandler.uniqueKey("")))
        }
        try await store.commit(ops)
    }

    /// The recordings the batch's `call.recording.saved` events announce, once each (by key),
    /// in the order of their first event.
    private func recordings(announcedBy events: [TelnyxEvent]) -> [TelnyxRecordingInfo] {
        var keys: Set<String> = []
        var recordings: [TelnyxRecordingInfo] = []
        for event in events where event.type == TelnyxEvent.recordingSaved {
            do {
                let recording = try TelnyxRecordingInfo(event: event)
                if keys.insert(recording.key).inserted { recordings.append(recording) }
            } catch {
                logger.error("Telnyx recording event stored, but no recording registered: \(error)",
                             metadata: ["event": "\(event.id)", "field": "\(error.field)", "session": "\(event.callSessionID ?? "-")"])
            }
        }
        return recordings
    }

    /// An event as the ledger keeps it, with the key of the recording it announces (a
    /// `call.recording.saved` that registered one), which a later call event's wake-up reads.
    static func row(_ event: TelnyxEvent, receivedAt: Date, recordingKey: String? = nil) -> TelnyxEventRow {
        TelnyxEventRow(id: event.id, type: event.type, callSessionID: event.callSessionID, callLegID: event.callLegID, occurredAt: event.occurredAt,
                       receivedAt: receivedAt, document: event.document, recordingKey: recordingKey)
    }

    /// The metadata a Telnyx recording is registered with (plan16 §2): `source.kind` `telnyx`,
    /// the call's session as its call id, the Telnyx settings' snapshot, and ``TelnyxSourceState``
    /// (no call log yet: the fetch job decides it).
    public static func metadata(for recording: TelnyxRecordingInfo, settings: TelnyxSettings, origin: String, now: Date) -> SourceMetadata {
        var snapshot = SourceSettingsSnapshot(settings.source)
        snapshot.kind = "telnyx"
        let source = SourceMetadata.Source(
            kind: "telnyx", pbx: "telnyx", name: settings.source.name, root: "",
            relativePath: "telnyx/\(recording.callSessionID)/\(recording.callLegID)", callID: recording.callSessionID,
            nameFacts: NameFacts(callID: recording.callSessionID, stem: recording.key),
            cdrWaitUntil: now.timeIntervalSince1970 + settings.eventsWait.seconds, fileModified: nil, settings: snapshot)
        let state = TelnyxSourceState(recording: recording, format: settings.format,
                                      eventsWaitUntil: now.timeIntervalSince1970 + settings.eventsWait.seconds, origin: origin)
        return SourceMetadata(source: source, telnyx: state)
    }

    /// The ops that register one recording (the webhook's, or one the listing found for
    /// `telnyx backfill`) and enqueue its fetch job: nothing when the ledger knows its key
    /// already (done, waiting, deleted or tombstoned).
    public func registration(of recording: TelnyxRecordingInfo, origin: String, now: Date) async throws -> [LedgerOp] {
        let key = recording.key
        async let known = store.recording(key: key)
        async let tombstone = store.tombstone(key: key)
        if try await known != nil { return [] }
        if try await tombstone != nil {
            logger.notice("Telnyx recording deleted before: not registered again",
                          metadata: ["key": "\(key)", "session": "\(recording.callSessionID)", "origin": "\(origin)"])
            return []
        }
        return try registrationOps(of: recording, origin: origin, now: now)
    }

    /// The ops that register one recording (no read: ``registration(of:origin:now:)`` checks the
    /// ledger first, the webhook's commit wraps them in ``LedgerOp/unlessKnown(key:ops:)``).
    func registrationOps(of recording: TelnyxRecordingInfo, origin: String, now: Date) throws -> [LedgerOp] {
        let key = recording.key
        let metadata = Self.metadata(for: recording, settings: settings, origin: origin, now: now)
        var ops: [LedgerOp] = [
            .insertRecording(Recording(key: key, path: spool.telnyxPath(key: key, format: settings.format), metadata: metadata.text, state: .pending,
                                       createdAt: now, updatedAt: now)),
        ]
        if let id = recording.recordingID, !id.isEmpty {
            ops.append(.putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: id)))
        }
        ops.append(.enqueue(try TelnyxFetchJobHandler.job(key: key)))
        let detail = "session \(recording.callSessionID), leg \(recording.callLegID), recording \(recording.recordingID ?? "id unknown") (\(origin))"
        ops.append(.audit(AuditEntry(at: now, recordingKey: key, action: Self.registeredAction, detail: detail, actor: "telnyx")))
        return ops
    }

    /// The audit action of a registration.
    public static let registeredAction = "telnyx_registered"
}

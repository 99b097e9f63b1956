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
    /// Reads before the commit: the stored events of the batch's call sessions (one query, only
    /// when the batch has call events), and the existence of each recording announced (the
    /// recording, else its tombstone). A recording event that cannot be read (no leg) is stored,
    /// logged with the field, and registers nothing.
    public func accept(_ events: [TelnyxEvent], receivedAt: Date) async throws {
        var seen: Set<String> = []
        let unique = events.filter { seen.insert($0.id).inserted }
        guard !unique.isEmpty else { return }
        var ops: [LedgerOp] = [.insertTelnyxEvents(unique.map { Self.row($0, receivedAt: receivedAt) })]
        let announced = recordings(announcedBy: unique)
        for recording in announced {
            ops += try await registration(of: recording, origin: "webhook", now: receivedAt)
        }
        let keys = try await waiting(woken: unique, announced: announced)
        if !keys.isEmpty {
            ops.append(.wakeJobs(uniqueKeys: keys.map(TelnyxFetchJobHandler.uniqueKey)))
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

    /// The keys of the recordings whose fetch jobs the batch's call events wake: those of their
    /// sessions announced in the batch and those stored before (sorted).
    private func waiting(woken events: [TelnyxEvent], announced: [TelnyxRecordingInfo]) async throws -> [String] {
        let sessions = Set(events.filter { TelnyxEvent.callEvents.contains($0.type) }.compactMap(\.callSessionID).filter { !$0.isEmpty })
        guard !sessions.isEmpty else { return [] }
        var keys = Set(announced.filter { sessions.contains($0.callSessionID) }.map(\.key))
        for row in try await store.telnyxEvents(sessions: sessions.sorted()) where row.type == TelnyxEvent.recordingSaved {
            // Stored events were read once already: one that cannot be read was logged then.
            guard let event = try? TelnyxEvent.parse(document: row.document), let recording = try? TelnyxRecordingInfo(event: event) else { continue }
            keys.insert(recording.key)
        }
        return keys.sorted()
    }

    /// An event as the ledger keeps it.
    static func row(_ event: TelnyxEvent, receivedAt: Date) -> TelnyxEventRow {
        TelnyxEventRow(id: event.id, type: event.type, callSessionID: event.callSessionID, callLegID: event.callLegID, occurredAt: event.occurredAt,
                       receivedAt: receivedAt, document: event.document)
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
        if try await store.recording(key: key) != nil { return [] }
        if try await store.tombstone(key: key) != nil {
            logger.notice("Telnyx recording deleted before: not registered again",
                          metadata: ["key": "\(key)", "session": "\(recording.callSessionID)", "origin": "\(origin)"])
            return []
        }
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

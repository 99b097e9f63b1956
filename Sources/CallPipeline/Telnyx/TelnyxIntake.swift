import CallSources
public import CallStore
import CallSupport
public import CallTelnyx
public import Foundation
public import Logging

/// Verified Telnyx events into the ledger, durably and idempotently, before the webhook is
/// answered: each event is stored once (by its id); a `call.recording.saved` registers its
/// recording (``TelnyxRecordingInfo/key``) and enqueues its fetch job; a call event wakes the
/// fetch jobs of its session's recordings that wait for it. Step-0 stub (WP-C replaces it).
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
    public func accept(_ events: [TelnyxEvent], receivedAt: Date) async throws {
        throw StoreError(.unavailable, "not implemented (WP-C)")
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
        throw StoreError(.unavailable, "not implemented (WP-C)")
    }
}

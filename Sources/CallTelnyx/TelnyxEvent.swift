public import Foundation

/// One Telnyx call-control webhook, parsed (research/api-contract.md §2.7, sources-and-matching
/// §2): the envelope `{"data": {"id", "event_type", "occurred_at", "payload": {…}}, "meta": {…}}`.
/// Fields Telnyx documents as optional (and the ones only seen in live deliveries, such as a
/// recording's `recording_id`) are optional here.
public struct TelnyxEvent: Sendable, Hashable {
    /// `data.id`: the event's id, what deliveries of the same event share (the dedup key).
    public var id: String
    /// `data.event_type` (`call.initiated`, `call.answered`, `call.hangup`, `call.recording.saved`, …).
    public var type: String
    /// `data.occurred_at`.
    public var occurredAt: Date?
    public var callSessionID: String?
    public var callLegID: String?
    public var callControlID: String?
    /// The event's `data` object as received (JSON text): what the ledger stores and what the
    /// call's facts and the recording are read from again later.
    public var document: String

    public init(id: String, type: String, occurredAt: Date?, callSessionID: String?, callLegID: String?, callControlID: String?,
                document: String) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.callSessionID = callSessionID
        self.callLegID = callLegID
        self.callControlID = callControlID
        self.document = document
    }

    public static let initiated = "call.initiated"
    public static let answered = "call.answered"
    public static let hangup = "call.hangup"
    public static let recordingSaved = "call.recording.saved"
    /// The call events whose facts make a call log.
    public static let callEvents: Set<String> = [initiated, answered, hangup]

    /// Parses a verified webhook body. Throws a ``TelnyxEventError`` naming the field and the
    /// reason (`data.id: missing`).
    public static func parse(_ body: some Collection<UInt8>) throws(TelnyxEventError) -> TelnyxEvent {
        throw TelnyxEventError(field: "data", reason: "not implemented (WP-A)")
    }

    /// The event again from its stored ``document`` (the `data` object).
    public static func parse(document: String) throws(TelnyxEventError) -> TelnyxEvent {
        throw TelnyxEventError(field: "data", reason: "not implemented (WP-A)")
    }
}

/// A webhook body that is not a Telnyx event callrec can read: the field and why.
public struct TelnyxEventError: Error, Sendable, Hashable, CustomStringConvertible {
    public var field: String
    public var reason: String
    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }
    public var description: String { "\(field): \(reason)" }
}

/// What a `call.recording.saved` event (or an item of `GET /v2/recordings`) says about one
/// recording. Codable: it is kept in the recording's metadata.
public struct TelnyxRecordingInfo: Sendable, Hashable, Codable {
    public var callSessionID: String
    public var callLegID: String
    public var callControlID: String?
    /// Absent from the documented schema; present in live deliveries and always in the listing.
    public var recordingID: String?
    public var connectionID: String?
    /// `single` or `dual`.
    public var channels: String?
    /// Download links by format (`mp3`, `wav`): valid 10 minutes after the event.
    public var urls: [String: String]
    /// Links valid as long as the file (when the account has them switched on).
    public var publicURLs: [String: String]
    public var startedAt: Date?
    public var endedAt: Date?
    /// Caller and callee as the event carried them (undocumented; live deliveries have them).
    public var from: String?
    public var to: String?
    public var clientState: String?
    /// The event that announced it (nil for a recording found by the listing).
    public var eventID: String?

    enum CodingKeys: String, CodingKey {
        case callSessionID = "call_session_id", callLegID = "call_leg_id", callControlID = "call_control_id"
        case recordingID = "recording_id", connectionID = "connection_id", channels, urls, publicURLs = "public_urls"
        case startedAt = "started_at", endedAt = "ended_at", from, to, clientState = "client_state", eventID = "event_id"
    }

    public init(callSessionID: String, callLegID: String, urls: [String: String] = [:]) {
        self.callSessionID = callSessionID
        self.callLegID = callLegID
        self.urls = urls
        publicURLs = [:]
    }

    /// The recording a `call.recording.saved` event announces; throws naming the missing field.
    public init(event: TelnyxEvent) throws(TelnyxEventError) {
        throw TelnyxEventError(field: "data.payload", reason: "not implemented (WP-A)")
    }

    /// The recording's identity in the ledger (``TelnyxIdentity/key(session:leg:startedAt:recordingID:)``).
    public var key: String {
        TelnyxIdentity.key(session: callSessionID, leg: callLegID, startedAt: startedAt, recordingID: recordingID)
    }
}

/// The identity of a Telnyx recording in the ledger: the same whether it came by webhook (which
/// may lack the recording id) or by the listing (which has it), so a backfill never registers a
/// recording a webhook brought, and a duplicate delivery never registers it twice.
public enum TelnyxIdentity {
    /// SHA-256 over `"callrec-telnyx\0" + session + "\0" + leg + "\0" + <started at, whole
    /// seconds since 1970>`; without a start time, the recording id stands in for it.
    public static func key(session: String, leg: String, startedAt: Date?, recordingID: String?) -> String {
        fatalError("not implemented (WP-A)")
    }
}

import CallSupport
import Crypto
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
        guard let envelope = TelnyxJSON.object(body) else { throw TelnyxEventError(field: "body", reason: "not JSON") }
        guard let root = envelope as? [String: Any] else { throw TelnyxEventError(field: "body", reason: "not a JSON object") }
        guard let value = root["data"] else { throw TelnyxEventError(field: "data", reason: "missing") }
        guard let data = value as? [String: Any] else { throw TelnyxEventError(field: "data", reason: "not an object") }
        return try event(data, document: nil)
    }

    /// The event again from its stored ``document`` (the `data` object).
    public static func parse(document: String) throws(TelnyxEventError) -> TelnyxEvent {
        guard let value = TelnyxJSON.object(Array(document.utf8)) else { throw TelnyxEventError(field: "data", reason: "not JSON") }
        guard let data = value as? [String: Any] else { throw TelnyxEventError(field: "data", reason: "not an object") }
        return try event(data, document: document)
    }

    /// The event of a `data` object; `document` is its text when it is already the stored form.
    static func event(_ data: [String: Any], document: String?) throws(TelnyxEventError) -> TelnyxEvent {
        let id = try required(data, "id")
        let type = try required(data, "event_type")
        var occurredAt: Date?
        if let value = data["occurred_at"], !(value is NSNull) {
            guard let text = value as? String, let date = TelnyxTime.parse(text) else {
                throw TelnyxEventError(field: "data.occurred_at", reason: "not an ISO 8601 time")
            }
            occurredAt = date
        }
        let payload = data["payload"] as? [String: Any]
        guard let text = document ?? TelnyxJSON.text(data) else {
            throw TelnyxEventError(field: "data", reason: "cannot be written as JSON again")
        }
        return TelnyxEvent(id: id, type: type, occurredAt: occurredAt, callSessionID: TelnyxJSON.string(payload?["call_session_id"]),
                           callLegID: TelnyxJSON.string(payload?["call_leg_id"]),
                           callControlID: TelnyxJSON.string(payload?["call_control_id"]), document: text)
    }

    /// A required non-empty string of `data` (`data.<key>`).
    static func required(_ data: [String: Any], _ key: String) throws(TelnyxEventError) -> String {
        guard let value = data[key], !(value is NSNull) else { throw TelnyxEventError(field: "data.\(key)", reason: "missing") }
        guard let text = value as? String else { throw TelnyxEventError(field: "data.\(key)", reason: "not a string") }
        guard !text.isEmpty else { throw TelnyxEventError(field: "data.\(key)", reason: "empty") }
        return text
    }

    /// The event's `data.payload` object (read again from ``document``), or nil.
    var payload: [String: Any]? {
        (TelnyxJSON.object(Array(document.utf8)) as? [String: Any])?["payload"] as? [String: Any]
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
    /// Without `recording_started_at`/`recording_ended_at` (not in every delivery), the
    /// payload's `start_time`/`end_time` stand in.
    public init(event: TelnyxEvent) throws(TelnyxEventError) {
        guard let payload = event.payload else { throw TelnyxEventError(field: "data.payload", reason: "missing") }
        func required(_ key: String) throws(TelnyxEventError) -> String {
            guard let value = TelnyxJSON.string(payload[key]) else {
                throw TelnyxEventError(field: "data.payload.\(key)", reason: payload[key] == nil ? "missing" : "not a non-empty string")
            }
            return value
        }
        let session = try required("call_session_id")
        let leg = try required("call_leg_id")
        self.init(callSessionID: session, callLegID: leg, urls: TelnyxJSON.links(payload["recording_urls"]))
        publicURLs = TelnyxJSON.links(payload["public_recording_urls"])
        callControlID = TelnyxJSON.string(payload["call_control_id"])
        recordingID = TelnyxJSON.string(payload["recording_id"])
        connectionID = TelnyxJSON.string(payload["connection_id"])
        channels = TelnyxJSON.string(payload["channels"])
        clientState = TelnyxJSON.string(payload["client_state"])
        from = TelnyxJSON.string(payload["from"])
        to = TelnyxJSON.string(payload["to"])
        startedAt = TelnyxJSON.time(payload["recording_started_at"]) ?? TelnyxJSON.time(payload["start_time"])
        endedAt = TelnyxJSON.time(payload["recording_ended_at"]) ?? TelnyxJSON.time(payload["end_time"])
        eventID = event.id
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
        let when = startedAt.map { String(Int64(($0.timeIntervalSince1970).rounded(.down))) } ?? recordingID.map { "id:" + $0 } ?? "unknown"
        return lowercaseHex(SHA256.hash(data: Array(("callrec-telnyx\0" + session + "\0" + leg + "\0" + when).utf8)))
    }
}

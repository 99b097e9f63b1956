public import Foundation

/// A call the sandbox's Telnyx simulated (`POST /_sandbox/telnyx/calls`, `--telnyx-calls`), with
/// what happened to its webhooks and to its audio (`GET /_sandbox/telnyx/calls`).
public struct SandboxTelnyxCall: Sendable, Codable, Equatable {
    public var callSessionId: String
    public var callLegId: String
    public var callControlId: String
    public var connectionId: String
    /// The recording's id (`GET /v2/recordings/{id}`).
    public var recordingId: String
    /// `incoming` or `outgoing` (the `call.initiated` payload's `direction`).
    public var direction: String
    public var from: String
    public var to: String
    /// The recording's length (the talk time of an answered call, the ringing of another).
    public var seconds: Int
    public var answered: Bool
    public var hangupCause: String
    public var startTime: Date
    public var answerTime: Date?
    public var endTime: Date
    /// `wav` or `mp3`.
    public var format: String
    /// Seconds the event's `recording_urls` stay valid (0: already expired).
    public var linkTtl: Int
    public var recordingIdInEvent: Bool
    public var callEvents: Bool
    /// Epoch milliseconds when the first delivery of its `call.recording.saved` was sent.
    public var recordingSentAt: Int64?
    /// Every delivery of its events, in the order they were sent.
    public var deliveries: [SandboxTelnyxDelivery] = []
    /// Epoch milliseconds when the call log matched to this call (by the other party's number
    /// and the start time) got its recording; nil until then.
    public var audioAt: Int64?
    /// That call log's id.
    public var callLogId: String?

    /// The number that is not the company's (unique per simulated call by default).
    public var otherParty: String { direction == "outgoing" ? to : from }

    enum CodingKeys: String, CodingKey {
        case callSessionId = "call_session_id"
        case callLegId = "call_leg_id"
        case callControlId = "call_control_id"
        case connectionId = "connection_id"
        case recordingId = "recording_id"
        case direction, from, to, seconds, answered
        case hangupCause = "hangup_cause"
        case startTime = "start_time"
        case answerTime = "answer_time"
        case endTime = "end_time"
        case format
        case linkTtl = "link_ttl"
        case recordingIdInEvent = "recording_id_in_event"
        case callEvents = "call_events"
        case recordingSentAt = "recording_sent_at"
        case deliveries
        case audioAt = "audio_at"
        case callLogId = "call_log_id"
    }
}

/// One delivery of a webhook.
public struct SandboxTelnyxDelivery: Sendable, Codable, Equatable {
    public var eventId: String
    public var eventType: String
    /// 1 for the first try, counting retries (`meta.attempt`).
    public var attempt: Int
    /// A second delivery of the same event injected by the `telnyx_duplicate` fault.
    public var duplicate: Bool
    /// Epoch milliseconds when it was sent.
    public var sentAt: Int64
    /// The receiver's HTTP status; nil when none came (connection refused, timeout).
    public var status: Int?
    public var error: String?
    public var latencyMs: Double

    enum CodingKeys: String, CodingKey {
        case eventId = "event_id"
        case eventType = "event_type"
        case attempt, duplicate
        case sentAt = "sent_at"
        case status, error
        case latencyMs = "latency_ms"
    }
}

extension Date {
    /// Whole milliseconds since 1970.
    var epochMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded(.down)) }
}

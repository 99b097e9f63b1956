public import Foundation

/// Telnyx call-control webhook bodies for tests (the shapes of developers.telnyx.com's callback
/// examples; the recording event with the live deliveries' extra fields), one call per session:
/// +1 212-555-0123 calls the company's +1 617-555-0199. JSON text only: signing is the test's.
public struct TelnyxWebhooks: Sendable {
    public var session: String
    public var leg: String
    public var caller = "+12125550123"
    public var company = "+16175550199"
    /// When the call started (the recording starts 7 s later, ends `seconds` after that).
    public var start: Date
    public var seconds: Double = 60

    public init(session: String = UUID().uuidString.lowercased(), leg: String = UUID().uuidString.lowercased(),
                start: Date = Date(timeIntervalSince1970: 1_796_000_000)) {
        self.session = session
        self.leg = leg
        self.start = start
    }

    /// `{"data": …, "meta": …}` around one event's `data`.
    public static func envelope(id: String, type: String, occurredAt: Date, payload: [String: Any]) -> String {
        let data: [String: Any] = ["record_type": "event", "event_type": type, "id": id, "occurred_at": time(occurredAt), "payload": payload]
        let body: [String: Any] = ["data": data, "meta": ["attempt": 1, "delivered_to": "http://127.0.0.1/webhooks/telnyx"]]
        return String(decoding: try! JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
    }

    /// ISO 8601 with milliseconds, as Telnyx writes times.
    public static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    private var common: [String: Any] {
        ["call_control_id": "v3:\(leg)", "connection_id": "1494404757140276705", "call_leg_id": leg, "call_session_id": session,
         "from": caller, "to": company, "start_time": Self.time(start)]
    }

    public func initiated(id: String = UUID().uuidString.lowercased()) -> String {
        Self.envelope(id: id, type: "call.initiated", occurredAt: start, payload: common.merging(["direction": "incoming", "state": "parked"]) { $1 })
    }

    public func answered(id: String = UUID().uuidString.lowercased()) -> String {
        Self.envelope(id: id, type: "call.answered", occurredAt: start + 7, payload: common.merging(["state": "answered"]) { $1 })
    }

    public func hangup(id: String = UUID().uuidString.lowercased(), cause: String = "normal_clearing") -> String {
        let end = start + 7 + seconds
        return Self.envelope(id: id, type: "call.hangup", occurredAt: end,
                             payload: common.merging(["end_time": Self.time(end), "state": "hangup", "hangup_cause": cause, "hangup_source": "caller"]) { $1 })
    }

    /// `call.recording.saved`; without `recordingID` as the documented schema has it.
    public func recordingSaved(id: String = UUID().uuidString.lowercased(), recordingID: String? = UUID().uuidString.lowercased(),
                               urls: [String: String]? = nil, leg: String? = nil) -> String {
        let end = start + 7 + seconds
        var payload = common.merging([
            "channels": "single", "recording_started_at": Self.time(start + 7), "recording_ended_at": Self.time(end),
            "public_recording_urls": [String: String](),
            "recording_urls": urls ?? ["mp3": "http://127.0.0.1:9/recordings/\(session).mp3", "wav": "http://127.0.0.1:9/recordings/\(session).wav"],
        ]) { $1 }
        if let recordingID {
            payload["recording_id"] = recordingID
            payload["format"] = "mp3"
        }
        if let leg { payload["call_leg_id"] = leg.isEmpty ? nil : leg }
        return Self.envelope(id: id, type: "call.recording.saved", occurredAt: end + 1, payload: payload)
    }
}

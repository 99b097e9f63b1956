import CallTelnyx
import Foundation

/// The events of simulated calls, 4 a call in order (initiated, answered, hangup,
/// recording.saved), as Telnyx's envelope carries them (research/api-contract.md §2.7): every
/// event and call distinct (ids from a per-run prefix and the event's index), realistic sizes.
struct CallFactory: Sendable {
    let deliveredTo: String
    /// Distinguishes runs against one database.
    let run = UInt32.random(in: 0...UInt32.max)
    /// The calls end around now; their start times are spread from here.
    let epoch = Date().addingTimeInterval(-180)

    static let types = [TelnyxEvent.initiated, TelnyxEvent.answered, TelnyxEvent.hangup, TelnyxEvent.recordingSaved]

    func id(_ kind: String, _ n: Int) -> String {
        String(format: "%08x-%@-4000-8000-%012llx", run, kind, UInt64(n))
    }

    func time(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
            .replacingOccurrences(of: "+0000", with: "Z")
    }

    /// The body of event `i` (call i / 4).
    func event(_ i: Int) -> String {
        let call = i / 4, type = Self.types[i % 4]
        let session = id("5e55", call), leg = id("1e90", call), control = "v3:" + id("c0c0", call)
        let from = "+44" + String(2_070_000_000 + call % 9_000_000), to = "+442079460000"
        let start = epoch.addingTimeInterval(Double(call % 1000) / 10), answer = start.addingTimeInterval(5)
        let end = answer.addingTimeInterval(60 + Double(call % 120))
        var payload: [String: Any] = [
            "call_control_id": control, "call_leg_id": leg, "call_session_id": session, "client_state": NSNull(),
            "connection_id": "1494404757140276705", "from": from, "to": to,
        ]
        let occurred: Date
        switch type {
        case TelnyxEvent.initiated:
            occurred = start
            payload["direction"] = "incoming"
            payload["state"] = "parked"
            payload["start_time"] = time(start)
        case TelnyxEvent.answered:
            occurred = answer
            payload["state"] = "answered"
            payload["start_time"] = time(start)
        case TelnyxEvent.hangup:
            occurred = end
            payload["state"] = "hangup"
            payload["hangup_cause"] = "normal_clearing"
            payload["hangup_source"] = "caller"
            payload["sip_hangup_cause"] = "200"
            payload["start_time"] = time(start)
            payload["end_time"] = time(end)
        default:
            occurred = end.addingTimeInterval(1)
            let recording = id("4ec0", call)
            payload["channels"] = "single"
            payload["format"] = "mp3"
            payload["recording_id"] = recording
            // Nowhere: the benchmark's worker fetches nothing (--fetch-slots 0).
            payload["recording_urls"] = ["mp3": "http://127.0.0.1:9/recordings/\(recording).mp3?X-Amz-Expires=600"]
            payload["public_recording_urls"] = [String: String]()
            payload["recording_started_at"] = time(answer)
            payload["recording_ended_at"] = time(end)
            payload["start_time"] = time(start)
            payload["end_time"] = time(end)
        }
        let document: [String: Any] = [
            "data": ["record_type": "event", "event_type": type, "id": id("e7e7", i), "occurred_at": time(occurred), "payload": payload],
            "meta": ["attempt": 1, "delivered_to": deliveredTo],
        ]
        let data = (try? JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

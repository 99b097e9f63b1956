import CallTelnyx
import Crypto
import Foundation

/// One call as Telnyx's webhooks tell it (the shapes of developers.telnyx.com's callback
/// examples; the recording event with the live deliveries' extra fields): +1 212-555-0123 calls
/// the company's Telnyx number +1 617-555-0199 and talks for two minutes.
enum Call {
    static let session = "428c31b6-abf3-3bc1-b7f4-5013ef9657c1"
    static let leg = "428c31b6-7af4-4bcb-b7f5-5013ef9657c1"
    static let control = "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg"
    static let caller = "+12125550123"
    static let company = "+16175550199"

    static func envelope(_ data: String) -> String {
        #"{"data": \#(data), "meta": {"attempt": 1, "delivered_to": "https://callrec.example.com/webhooks/telnyx"}}"#
    }

    static func initiated(id: String = "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0", direction: String? = "incoming", leg: String = leg,
                          from: String = caller, to: String = company, at: String = "2026-12-06T10:00:00.521992Z") -> String {
        let direction = direction.map { #""direction": "\#($0)","# } ?? ""
        return envelope(#"""
        {
          "record_type": "event",
          "event_type": "call.initiated",
          "id": "\#(id)",
          "occurred_at": "\#(at)",
          "payload": {
            "call_control_id": "\#(control)",
            "connection_id": "1494404757140276705",
            "call_leg_id": "\#(leg)",
            "call_session_id": "\#(session)",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "caller_id_name": "\#(from)",
            \#(direction)
            "from": "\#(from)",
            "to": "\#(to)",
            "start_time": "\#(at)",
            "state": "parked"
          }
        }
        """#)
    }

    static func answered(id: String = "7a3b5c6d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", at: String = "2026-12-06T10:00:07.2Z") -> String {
        envelope(#"""
        {
          "record_type": "event",
          "event_type": "call.answered",
          "id": "\#(id)",
          "occurred_at": "\#(at)",
          "payload": {
            "call_control_id": "\#(control)",
            "connection_id": "1494404757140276705",
            "call_leg_id": "\#(leg)",
            "call_session_id": "\#(session)",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "from": "\#(caller)",
            "to": "\#(company)",
            "start_time": "2026-12-06T10:00:00.521992Z",
            "state": "answered"
          }
        }
        """#)
    }

    static func hangup(id: String = "b1e1a7d4-9c1f-4f0b-a4b2-6f9d3c2e8a10", cause: String = "normal_clearing",
                       end: String? = "2026-12-06T10:02:12.6Z", at: String = "2026-12-06T10:02:12.651Z") -> String {
        let end = end.map { #""end_time": "\#($0)","# } ?? ""
        return envelope(#"""
        {
          "record_type": "event",
          "event_type": "call.hangup",
          "id": "\#(id)",
          "occurred_at": "\#(at)",
          "payload": {
            "call_control_id": "\#(control)",
            "connection_id": "1494404757140276705",
            "call_leg_id": "\#(leg)",
            "call_session_id": "\#(session)",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "from": "\#(caller)",
            "to": "\#(company)",
            "start_time": "2026-12-06T10:00:00.521992Z",
            \#(end)
            "state": "hangup",
            "hangup_cause": "\#(cause)",
            "hangup_source": "caller",
            "sip_hangup_cause": "200",
            "call_quality_stats": {
              "inbound": {"jitter_max_variance": "2.74", "jitter_packet_count": "0", "mos": "4.50", "packet_count": "591", "skip_packet_count": "9"},
              "outbound": {"packet_count": "0", "skip_packet_count": "0"}
            }
          }
        }
        """#)
    }

    /// `call.recording.saved`; `live` adds what real deliveries carry beyond the documented
    /// schema (recording_id, format, from/to, start/end_time).
    static func recordingSaved(id: String = "25dfb2c4-7a1e-4e8b-9f1c-3d2a6b7c8e90", live: Bool = true) -> String {
        let extra = live ? #"""
            "recording_id": "e5e0f3a8-3d0c-4c1e-9a55-1f2b3c4d5e6f",
            "format": "mp3",
            "from": "\#(caller)",
            "to": "\#(company)",
            "start_time": "2026-12-06T10:00:00.521992Z",
            "end_time": "2026-12-06T10:02:12.6Z",
        """# : ""
        return envelope(#"""
        {
          "record_type": "event",
          "event_type": "call.recording.saved",
          "id": "\#(id)",
          "occurred_at": "2026-12-06T10:02:13.118Z",
          "payload": {
            "call_leg_id": "\#(leg)",
            "call_session_id": "\#(session)",
            "call_control_id": "\#(control)",
            "connection_id": "1494404757140276705",
            "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d",
            "channels": "single",
            \#(extra)
            "recording_started_at": "2026-12-06T10:00:07.734Z",
            "recording_ended_at": "2026-12-06T10:02:12.5Z",
            "public_recording_urls": {},
            "recording_urls": {
              "mp3": "https://s3.amazonaws.com/telephony-recorder-prod/413f8cdd/2026-12-06/2dc3d5d6.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=600",
              "wav": "https://s3.amazonaws.com/telephony-recorder-prod/413f8cdd/2026-12-06/2dc3d5d6.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=600"
            }
          }
        }
        """#)
    }

    static func event(_ json: String) throws -> TelnyxEvent {
        try TelnyxEvent.parse(Array(json.utf8))
    }

    static func date(_ text: String) -> Date {
        TelnyxTime.parse(text)!
    }
}

/// A Telnyx account's signing key, as a test's own signer holds it.
struct Signer {
    let key: Curve25519.Signing.PrivateKey

    init(seed: UInt8 = 7) {
        key = try! Curve25519.Signing.PrivateKey(rawRepresentation: [UInt8](repeating: seed, count: 32))
    }

    var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }

    /// The `telnyx-signature-ed25519` header for `body` sent at `timestamp`.
    func sign(_ body: String, timestamp: String) -> String {
        try! key.signature(for: Array("\(timestamp)|\(body)".utf8)).base64EncodedString()
    }
}

import CallTelnyx
import Foundation
import Testing

/// Webhook bodies → events (every refusal names its field), recording events → the recording,
/// and the recording's identity.
@Suite struct TelnyxEventTests {
    @Test func theDocumentedCallEventsParse() throws {
        let initiated = try Call.event(Call.initiated())
        #expect(initiated.id == "0ccc7b54-4df3-4bca-a65a-3da1ecc777f0" && initiated.type == TelnyxEvent.initiated)
        #expect(initiated.callSessionID == Call.session && initiated.callLegID == Call.leg && initiated.callControlID == Call.control)
        // Microseconds, as Telnyx writes them.
        #expect(initiated.occurredAt == Date(timeIntervalSince1970: 1_796_551_200.521992))
        let answered = try Call.event(Call.answered())
        #expect(answered.type == TelnyxEvent.answered && answered.occurredAt == Date(timeIntervalSince1970: 1_796_551_207.2))
        let hangup = try Call.event(Call.hangup(cause: "user_busy"))
        #expect(hangup.type == TelnyxEvent.hangup && hangup.id == "b1e1a7d4-9c1f-4f0b-a4b2-6f9d3c2e8a10")
        #expect(TelnyxEvent.callEvents == [initiated.type, answered.type, hangup.type])
    }

    @Test func theDocumentIsTheDataObjectAndParsesToTheSameEvent() throws {
        for body in [Call.initiated(), Call.answered(), Call.hangup(), Call.recordingSaved(), Call.recordingSaved(live: false)] {
            let event = try Call.event(body)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(event.document.utf8)) as? [String: Any])
            #expect(document["meta"] == nil && document["id"] as? String == event.id)
            #expect(!event.document.contains(#"\/"#), "slashes are not escaped: \(event.document)")
            #expect(try TelnyxEvent.parse(document: event.document) == event)
            // Written compactly, the same event.
            let compact = try TelnyxEvent.parse(JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(body.utf8))))
            #expect(compact.id == event.id && compact.type == event.type && compact.occurredAt == event.occurredAt)
            #expect(compact.callSessionID == event.callSessionID && compact.callLegID == event.callLegID)
        }
    }

    @Test func theDocumentIsTheDataMembersTextAsDelivered() throws {
        let data = #"{"id": "e1", "event_type": "call.hangup", "payload": {"s": "a\"}],b", "n": [1, {"x": [2]}], "t": true, "z": null}}"#
        for body in [#"{"meta": {"x": "}\"data\": 1"}, "data": \#(data)}"#, #"{"data":\#(data),"meta":{"attempt":1}}"#,
                     "\n{ \"data\" :\t\(data)\n}\n"] {
            let event = try TelnyxEvent.parse(Array(body.utf8))
            #expect(event.document == data, "\(body)")
            #expect(try TelnyxEvent.parse(document: event.document) == event)
        }
        // A key written with escapes, or a body that is not UTF-8: the data object written again.
        let escaped = try TelnyxEvent.parse(Array(#"{"d\u0061ta": {"id": "e2", "event_type": "call.answered"}}"#.utf8))
        #expect(escaped.id == "e2" && escaped.document == #"{"event_type":"call.answered","id":"e2"}"#)
        let utf16 = try TelnyxEvent.parse(Array(#"{"data": {"id": "e3", "event_type": "call.answered"}}"#.data(using: .utf16LittleEndian)!))
        #expect(utf16.id == "e3" && utf16.document == #"{"event_type":"call.answered","id":"e3"}"#)
    }

    /// Found by fuzz/ (FuzzTelnyx): `data` twice, the second written with escapes. JSONSerialization
    /// reads the last; the document was the first's text, so the ledger kept another event's
    /// document than the one handled.
    @Test func aDataKeyRepeatedWithEscapesGivesTheDocumentOfTheEventRead() throws {
        for body in [#"{"data":{"id":"A","event_type":"call.hangup"},"d\u0061ta":{"id":"B","event_type":"call.hangup"}}"#,
                     #"{"data":{"id":"A","event_type":"call.hangup"},"meta":{"d\u0061ta":1},"data":{"id":"B","event_type":"call.hangup"}}"#] {
            let event = try TelnyxEvent.parse(Array(body.utf8))
            #expect(event.id == "B")
            #expect(try TelnyxEvent.parse(document: event.document) == event, "\(event.document)")
        }
    }

    @Test func everyRefusalNamesItsField() {
        func refusal(_ body: String) -> String {
            do {
                _ = try TelnyxEvent.parse(Array(body.utf8))
                return "parsed"
            } catch {
                return error.description
            }
        }
        #expect(refusal("") == "body: not JSON")
        #expect(refusal("{\"data\": ") == "body: not JSON")
        #expect(refusal("[1, 2]") == "body: not a JSON object")
        #expect(refusal(#"{"meta": {}}"#) == "data: missing")
        #expect(refusal(#"{"data": "call.hangup"}"#) == "data: not an object")
        #expect(refusal(#"{"data": {"event_type": "call.hangup"}}"#) == "data.id: missing")
        #expect(refusal(#"{"data": {"id": null, "event_type": "call.hangup"}}"#) == "data.id: missing")
        #expect(refusal(#"{"data": {"id": 42, "event_type": "call.hangup"}}"#) == "data.id: not a string")
        #expect(refusal(#"{"data": {"id": "", "event_type": "call.hangup"}}"#) == "data.id: empty")
        #expect(refusal(#"{"data": {"id": "e1"}}"#) == "data.event_type: missing")
        #expect(refusal(#"{"data": {"id": "e1", "event_type": ["call.hangup"]}}"#) == "data.event_type: not a string")
        #expect(refusal(#"{"data": {"id": "e1", "event_type": "call.hangup", "occurred_at": "yesterday"}}"#)
            == "data.occurred_at: not an ISO 8601 time")
        // An event of a type callrec does not use, or without a payload, is still an event.
        #expect(refusal(#"{"data": {"id": "e1", "event_type": "call.bridged"}}"#) == "parsed")
        #expect(throws: TelnyxEventError(field: "data", reason: "not an object")) { try TelnyxEvent.parse(document: "[]") }
        #expect(throws: TelnyxEventError(field: "data.id", reason: "missing")) { try TelnyxEvent.parse(document: #"{"event_type": "x"}"#) }
    }

    @Test func theRecordingOfALiveDelivery() throws {
        let event = try Call.event(Call.recordingSaved())
        let info = try TelnyxRecordingInfo(event: event)
        #expect(info.callSessionID == Call.session && info.callLegID == Call.leg && info.callControlID == Call.control)
        #expect(info.recordingID == "e5e0f3a8-3d0c-4c1e-9a55-1f2b3c4d5e6f" && info.eventID == event.id)
        #expect(info.connectionID == "1494404757140276705" && info.channels == "single" && info.clientState == "aGF2ZSBhIG5pY2UgZGF5ID1d")
        #expect(info.urls.keys.sorted() == ["mp3", "wav"] && info.urls["mp3"]?.hasSuffix(".mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=600") == true)
        #expect(info.publicURLs.isEmpty)
        #expect(info.startedAt == Call.date("2026-12-06T10:00:07.734Z") && info.endedAt == Call.date("2026-12-06T10:02:12.5Z"))
        #expect(info.from == Call.caller && info.to == Call.company)
        // Codable: it is kept in the recording's metadata.
        let decoded = try JSONDecoder().decode(TelnyxRecordingInfo.self, from: JSONEncoder().encode(info))
        #expect(decoded == info)
    }

    @Test func theRecordingOfTheDocumentedSchemaHasNoIDAndFallsBackToTheCallTimes() throws {
        let documented = try TelnyxRecordingInfo(event: Call.event(Call.recordingSaved(live: false)))
        #expect(documented.recordingID == nil && documented.from == nil && documented.to == nil)
        #expect(documented.startedAt == Call.date("2026-12-06T10:00:07.734Z"))
        // Without recording_started_at/ended_at, the payload's start_time/end_time.
        let json = Call.recordingSaved().replacingOccurrences(of: #""recording_started_at""#, with: #""ignored_a""#)
            .replacingOccurrences(of: #""recording_ended_at""#, with: #""ignored_b""#)
        let fallback = try TelnyxRecordingInfo(event: Call.event(json))
        #expect(fallback.startedAt == Call.date("2026-12-06T10:00:00.521992Z") && fallback.endedAt == Call.date("2026-12-06T10:02:12.6Z"))
    }

    @Test func aRecordingWithoutItsSessionOrLegNamesTheField() throws {
        let noLeg = Call.recordingSaved().replacingOccurrences(of: #""call_leg_id""#, with: #""leg""#)
        #expect(throws: TelnyxEventError(field: "data.payload.call_leg_id", reason: "missing")) {
            try TelnyxRecordingInfo(event: Call.event(noLeg))
        }
        let noSession = Call.recordingSaved().replacingOccurrences(of: #""call_session_id": "\#(Call.session)""#, with: #""call_session_id": 7"#)
        #expect(throws: TelnyxEventError(field: "data.payload.call_session_id", reason: "not a non-empty string")) {
            try TelnyxRecordingInfo(event: Call.event(noSession))
        }
        #expect(throws: TelnyxEventError(field: "data.payload", reason: "missing")) {
            try TelnyxRecordingInfo(event: Call.event(#"{"data": {"id": "e1", "event_type": "call.recording.saved"}}"#))
        }
    }

    @Test func theIdentityIsTheSameAtAnyPrecisionOfTheStart() throws {
        let webhook = TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: Call.date("2026-12-06T10:00:00.734Z"), recordingID: nil)
        let listing = TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: Call.date("2026-12-06T10:00:00Z"), recordingID: "r1")
        #expect(webhook == listing)
        #expect(webhook.count == 64 && webhook.allSatisfy { "0123456789abcdef".contains($0) })
        #expect(webhook == TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: Call.date("2026-12-06T12:00:00.999+02:00"),
                                              recordingID: nil))
        let keys = [
            webhook,
            TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: Call.date("2026-12-06T10:00:01Z"), recordingID: nil),
            TelnyxIdentity.key(session: Call.session, leg: "other-leg", startedAt: Call.date("2026-12-06T10:00:00Z"), recordingID: nil),
            TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: nil, recordingID: "r1"),
            TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: nil, recordingID: "r2"),
            TelnyxIdentity.key(session: Call.session, leg: Call.leg, startedAt: nil, recordingID: nil),
        ]
        #expect(Set(keys).count == keys.count)
        // A webhook's recording and the same recording as the listing shows it.
        var info = try TelnyxRecordingInfo(event: Call.event(Call.recordingSaved(live: false)))
        let key = info.key
        info.recordingID = "e5e0f3a8-3d0c-4c1e-9a55-1f2b3c4d5e6f"
        info.startedAt = Call.date("2026-12-06T10:00:07Z")
        #expect(info.key == key)
    }

    @Test func telnyxTimes() {
        let base = 1_796_551_200.0
        for (text, seconds) in [("2026-12-06T10:00:00Z", base), ("2026-12-06T10:00:00.5Z", base + 0.5),
                                ("2026-12-06T10:00:00.521992Z", base + 0.521992), ("2026-12-06T11:30:00+01:30", base),
                                ("2026-12-06T05:00:00-0500", base), ("2026-12-06T12:00:00+02", base), ("2026-12-06 10:00:00.000000+00:00", base), ("1970-01-01T00:00:00Z", 0), ("2024-02-29T00:00:00Z", 1_709_164_800)] {
            let date = TelnyxTime.parse(text)
            #expect(date.map { abs($0.timeIntervalSince1970 - seconds) < 1e-6 } == true, "\(text): \(String(describing: date))")
        }
        for text in ["", "2026-12-06", "2026-13-06T10:00:00Z", "2026-12-06T10:00:00", "2026-12-06T10:00:00.Z", "2026-12-06T10:00:00Zjunk", "2026-12-06T10:00:00+2", "2026-12-06T10:00:00+02:", "2026-12-06T25:00:00Z"] {
            #expect(TelnyxTime.parse(text) == nil, "[\(text)]")
        }
    }
}

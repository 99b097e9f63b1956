import CallAPI
import CallPipeline
import Foundation
import Testing

@Suite struct SidecarTests {
    static let valid = """
        { "call_log": { "outcome": "connected", "to_phone_number": "+15551230000",
                        "from_phone_number": "+15559870000", "start_time": "2026-11-20 10:00:00",
                        "end_time": "2026-11-20 10:04:10", "subject": "Renewal", "note": "<p>hi</p>",
                        "person_id": 1, "org_id": 2, "deal_id": 3, "lead_id": null, "user_id": 7 },
          "call_log_id": null,
          "telnyx_recording_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
          "voipnow_event": { "user_id": "@me", "extension": "0003*210", "event_type": 2, "event_id": "Nqey" } }
        """

    func problems(_ json: String) -> [String] {
        Sidecar.parse(Data(json.utf8)).problems.map(\.description)
    }

    func mutate(_ edit: (inout [String: Any]) -> Void) -> String {
        var object = try! JSONSerialization.jsonObject(with: Data(Self.valid.utf8)) as! [String: Any]
        edit(&object)
        return String(decoding: try! JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    func mutateLog(_ edit: @escaping (inout [String: Any]) -> Void) -> String {
        mutate { object in
            var log = object["call_log"] as! [String: Any]
            edit(&log)
            object["call_log"] = log
        }
    }

    @Test func validSidecarParses() throws {
        let (sidecar, problems) = Sidecar.parse(Data(Self.valid.utf8))
        #expect(problems.isEmpty)
        let s = try #require(sidecar)
        #expect(s.callLog?.outcome == "connected")
        #expect(s.callLog?.dealId == 3)
        #expect(s.voipnowEvent?.eventType == 2)
        #expect(s.declaredCallSeconds == 250)
    }

    @Test func everyRuleNamesItsField() {
        #expect(problems("{ not json") == ["(document): not valid JSON: " + (problems("{ not json").first?.dropFirst(28) ?? "")] || problems("{ not json").first?.hasPrefix("(document): not valid JSON") == true)
        #expect(problems("[1,2]") == ["(document): must be a JSON object"])
        #expect(problems(mutateLog { $0["outcome"] = nil }) == ["call_log.outcome: is required"])
        #expect(problems(mutateLog { $0["outcome"] = "answered" }).first?.hasPrefix("call_log.outcome: \"answered\" is not one of") == true)
        #expect(problems(mutateLog { $0["to_phone_number"] = "" }) == ["call_log.to_phone_number: must not be empty"])
        #expect(problems(mutateLog { $0["start_time"] = "2026-11-20T10:00:00Z" }).first?.hasPrefix("call_log.start_time:") == true)
        #expect(problems(mutateLog { $0["start_time"] = "2026-02-30 10:00:00" }).first?.hasPrefix("call_log.start_time:") == true)
        #expect(problems(mutateLog { $0["end_time"] = "2026-11-20 09:59:59" }).first?.hasPrefix("call_log.end_time: 2026-11-20 09:59:59 is not after") == true)
        #expect(problems(mutateLog { $0["lead_id"] = "not-a-uuid"; $0["deal_id"] = nil }) == ["call_log.lead_id: \"not-a-uuid\" is not a UUID"])
        #expect(problems(mutateLog { $0["lead_id"] = "3fa85f64-5717-4562-b3fc-2c963f66afa6" }).first?.hasPrefix("call_log.lead_id: a call log links to a deal or a lead, not both") == true)
        #expect(problems(mutateLog { $0["person_id"] = "1" }) == ["call_log.person_id: must be an integer id"])
        #expect(problems(mutateLog { $0["duration"] = 250 }) == ["call_log.duration: must be a string"])
        #expect(problems(mutateLog { $0["durration"] = "250" }).first?.hasPrefix("call_log.durration: is not a call-log field") == true)
        #expect(problems(mutate { $0["call_log"] = nil }) == ["call_log: is required unless call_log_id names an existing call log"])
        #expect(problems(mutate { $0["telnyx_recording_id"] = "abc" }) == ["telnyx_recording_id: must be a Telnyx recording id (a UUID)"])
        #expect(problems(mutate { $0["voipnow_event"] = ["user_id": "@me", "extension": "1", "event_type": 2] }).first?.hasPrefix("voipnow_event.event_id: is required") == true)
    }

    /// Provider references follow the rule the delete addresses them with (one function): what
    /// the delete would refuse fails the sidecar, naming the field, and what it takes passes.
    @Test func providerReferencesFollowTheDeletesRule() throws {
        func event(_ edit: (inout [String: Any]) -> Void) -> String {
            mutate { object in
                var event = object["voipnow_event"] as! [String: Any]
                edit(&event)
                object["voipnow_event"] = event
            }
        }
        let refused: [(String, String, String)] = [
            ("event_id", ".", "voipnow_event.event_id"), ("event_id", "..", "voipnow_event.event_id"),
            ("event_id", " ", "voipnow_event.event_id"), ("event_id", "x/..", "voipnow_event.event_id"),
            ("event_id", "x\ny", "voipnow_event.event_id"), ("extension", "0003*210/..", "voipnow_event.extension"),
            ("extension", "..\\0003*210", "voipnow_event.extension"), ("extension", " @self ", "voipnow_event.extension"),
            ("user_id", "./@me", "voipnow_event.user_id"), ("user_id", "\t", "voipnow_event.user_id"),
        ]
        for (field, value, named) in refused {
            let found = problems(event { $0[field] = value })
            #expect(found.count == 1 && found.first?.hasPrefix(named + ":") == true, "\(field)=\(value.debugDescription): \(found)")
            let address = try? VoipNowEventAddress(userId: field == "user_id" ? value : "@me", extension: field == "extension" ? value : "0003*210",
                                                   eventType: 2, eventId: field == "event_id" ? value : "Nqey")
            #expect(address == nil, "the delete takes what the sidecar refuses: \(field)=\(value.debugDescription)")
        }
        for (field, value) in [("event_id", "Nq/ey"), ("event_id", "a.b"), ("event_id", "..."), ("extension", "0003*210")] {
            #expect(problems(event { $0[field] = value }).isEmpty, "\(field)=\(value)")
        }
        #expect(problems(mutate { $0["telnyx_recording_id"] = "../recordings" }) == ["telnyx_recording_id: must be a Telnyx recording id (a UUID)"])
        #expect(TelnyxClient.recordingIDProblem("../recordings") != nil && TelnyxClient.recordingIDProblem("3fa85f64-5717-4562-b3fc-2c963f66afa6") == nil)
    }

    @Test func callLogIdAttachesWithoutACallLog() throws {
        let (sidecar, problems) = Sidecar.parse(Data(#"{"call_log_id": "c0ffee"}"#.utf8))
        #expect(problems.isEmpty)
        #expect(sidecar?.callLogId == "c0ffee")
        // With both, call_log_id decides where the audio goes; call_log is still checked.
        #expect(Sidecar.parse(Data(#"{"call_log_id": "c0ffee", "call_log": {"outcome": "busy"}}"#.utf8)).problems.map(\.field)
                == ["call_log.to_phone_number", "call_log.start_time"])
    }

    @Test func timesRoundTrip() throws {
        let date = try #require(CallLogDraft.parseTime("2026-11-20 10:04:10"))
        #expect(CallLogDraft.formatTime(date) == "2026-11-20 10:04:10")
        #expect(CallLogDraft.parseTime("2026-11-20 24:00:00") == nil)
    }
}

import CallAPI
import CallPhone
import CallSources
import Foundation
import Testing

/// CallFacts → call log: the policy, each direction, outcomes, the users map, times and the
/// subject/note templates.
@Suite struct BuilderTests {
    let start = utcDate("2026-03-08 14:15:00")

    func facts(_ direction: CallDirection = .inbound, disposition: String = "ANSWERED", other: String = "212-555-0123",
               company: String? = "+1 617-555-0199", ext: String? = "101", billsec: Int? = 125) -> CallFacts {
        CallFacts(pbx: "hq", callID: "1772979300.12", direction: direction, other: PhoneNumbers.normalize(other, region: "US"),
                  company: company.map { PhoneNumbers.normalize($0, region: "US") }, extension: ext,
                  otherExtension: direction == .internal ? "102" : nil, start: start, billsec: billsec, disposition: disposition, fromCDR: true)
    }

    func settings(log: Set<LoggedKind> = [], outcomes: [String: String] = [:], users: [String: Int] = ["101": 7]) -> SourceSettings {
        SourceSettings(kind: .freepbx, root: "/calls", pbx: "hq", timeZone: TimeZone(identifier: "America/New_York")!, region: "US",
                       log: log, outcomes: outcomes, users: users)
    }

    func draft(_ decision: CallDecision) -> (CallLogDraft, [SourceWarning])? {
        if case .log(let draft, let warnings) = decision { return (draft, warnings) }
        return nil
    }

    @Test func thePolicyMatrix() {
        for direction in CallDirection.allCases {
            for disposition in ["ANSWERED", "NO ANSWER", "BUSY"] {
                for log in [[], [LoggedKind.internal], [.missed], [.internal, .missed]] as [Set<LoggedKind>] {
                    let decision = CallLogBuilder.decide(facts(direction, disposition: disposition), settings: settings(log: log), audioSeconds: 30)
                    let expected: SkipReason? = direction == .internal && !log.contains(.internal) ? .internalCall
                        : disposition != "ANSWERED" && !log.contains(.missed) ? .missedCall : nil
                    switch decision {
                    case .log: #expect(expected == nil, "\(direction) \(disposition) \(log)")
                    case .skip(let reason, let message):
                        #expect(reason == expected, "\(direction) \(disposition) \(log)")
                        #expect(message.contains("--log"))
                    }
                }
            }
        }
    }

    @Test func inboundIsFromTheOtherPartyToTheCompany() throws {
        let (d, warnings) = try #require(draft(CallLogBuilder.decide(facts(), settings: settings(), audioSeconds: 130)))
        #expect(d.fromPhoneNumber == "+12125550123" && d.toPhoneNumber == "+16175550199")
        #expect(d.outcome == "connected" && d.userId == 7)
        #expect(d.startTime == "2026-03-08 14:15:00" && d.endTime == "2026-03-08 14:17:05" && d.duration == "125")
        #expect(d.subject == "Inbound call from +1 212-555-0123 · ext 101")
        #expect(warnings.isEmpty, "\(warnings)")
        // Without a company number, the extension is the called side.
        let (noCompany, _) = try #require(draft(CallLogBuilder.decide(facts(company: nil), settings: settings(), audioSeconds: nil)))
        #expect(noCompany.toPhoneNumber == "101")
    }

    @Test func outboundIsTheReverseAndInternalIsExtensionToExtension() throws {
        let (out, _) = try #require(draft(CallLogBuilder.decide(facts(.outbound), settings: settings(), audioSeconds: nil)))
        #expect(out.fromPhoneNumber == "+16175550199" && out.toPhoneNumber == "+12125550123")
        #expect(out.subject == "Outbound call to +1 212-555-0123 · ext 101")
        let (inside, _) = try #require(draft(CallLogBuilder.decide(facts(.internal, other: "102", company: nil), settings: settings(log: [.internal]),
                                                                 audioSeconds: nil)))
        #expect(inside.fromPhoneNumber == "101" && inside.toPhoneNumber == "102")
        #expect(inside.subject == "Internal call with ext 102 · ext 101")
    }

    @Test func theDurationIsBillsecWhenAnsweredElseTheAudio() throws {
        let (missed, _) = try #require(draft(CallLogBuilder.decide(facts(disposition: "NO ANSWER", billsec: 0), settings: settings(log: [.missed]),
                                                                 audioSeconds: 12.4)))
        #expect(missed.duration == "12" && missed.endTime == "2026-03-08 14:15:12" && missed.outcome == "no_answer")
        let (noCDR, _) = try #require(draft(CallLogBuilder.decide(facts(billsec: nil), settings: settings(), audioSeconds: 61.6)))
        #expect(noCDR.duration == "62")
    }

    @Test func outcomeDefaultsAndOverrides() throws {
        let defaults = ["ANSWERED": "connected", "NO ANSWER": "no_answer", "CANCEL": "no_answer", "BUSY": "busy", "CONGESTION": "busy",
                        "FAILED": "no_answer", "VOICEMAIL": "no_answer"]
        for (disposition, outcome) in defaults {
            let (d, _) = try #require(draft(CallLogBuilder.decide(facts(disposition: disposition), settings: settings(log: [.missed]), audioSeconds: 5)))
            #expect(d.outcome == outcome, "\(disposition)")
        }
        let (voicemail, _) = try #require(draft(CallLogBuilder.decide(facts(disposition: "VOICEMAIL"), settings: settings(log: [.missed]), audioSeconds: 5)))
        #expect(voicemail.note?.contains("caller left a voicemail") == true)
        let overridden = settings(log: [.missed], outcomes: ["FAILED": "busy", "VOICEMAIL": "left_message"])
        #expect(draft(CallLogBuilder.decide(facts(disposition: "FAILED"), settings: overridden, audioSeconds: 5))?.0.outcome == "busy")
        #expect(draft(CallLogBuilder.decide(facts(disposition: "VOICEMAIL"), settings: overridden, audioSeconds: 5))?.0.outcome == "left_message")
        #expect(draft(CallLogBuilder.decide(facts(disposition: "BUSY"), settings: overridden, audioSeconds: 5))?.0.outcome == "busy")
    }

    @Test func outcomeFlagsAreChecked() throws {
        #expect(try OutcomeMap.parse("NO_ANSWER=busy", source: "--outcome") == ("NO ANSWER", "busy"))
        #expect(try OutcomeMap.parse("voicemail=left_message", source: "--outcome") == ("VOICEMAIL", "left_message"))
        #expect { try OutcomeMap.parse("FAILED=maybe", source: "--outcome") } throws: { "\($0)".contains("--outcome FAILED=maybe") && "\($0)".contains("connected") }
        #expect { try OutcomeMap.parse("HUNG UP=busy", source: "--outcome") } throws: { "\($0)".contains("not a disposition") }
        #expect { try OutcomeMap.parse("FAILED", source: "--outcome") } throws: { "\($0)".contains("DISPOSITION=OUTCOME") }
    }

    @Test func theUsersMapGivesTheOwner() throws {
        let (owned, _) = try #require(draft(CallLogBuilder.decide(facts(ext: "101"), settings: settings(), audioSeconds: nil)))
        #expect(owned.userId == 7)
        let (unowned, warnings) = try #require(draft(CallLogBuilder.decide(facts(ext: "102"), settings: settings(), audioSeconds: nil)))
        #expect(unowned.userId == nil)
        #expect(warnings.contains { $0.code == SourceWarning.noUser && $0.message.contains("102") })
    }

    @Test func anInvalidNumberIsKeptWithAWarning() throws {
        let (d, warnings) = try #require(draft(CallLogBuilder.decide(facts(other: "555-123-4567"), settings: settings(), audioSeconds: nil)))
        #expect(d.fromPhoneNumber == "555-123-4567")
        #expect(warnings.map(\.code) == [SourceWarning.numberInvalid])
    }

    @Test func templatesEscapeValuesInTheNoteOnly() throws {
        var s = settings()
        s.subjectTemplate = "{direction} {other_name} {{x}}"
        s.noteTemplate = "<b>{other_name}</b> {outcome_text} {duration} {start_local} / {start_utc} {disposition} {call_id} {company_number}"
        var f = facts()
        f.otherName = #"Tom & "Jerry" <x>"#
        let (d, _) = try #require(draft(CallLogBuilder.decide(f, settings: s, audioSeconds: nil)))
        #expect(d.subject == #"inbound Tom & "Jerry" <x> {x}"#)
        #expect(d.note == "<b>Tom &amp; &quot;Jerry&quot; &lt;x&gt;</b> answered 2:05 2026-03-08 10:15:00 -04:00 / 2026-03-08 14:15:00 UTC ANSWERED 1772979300.12 +16175550199")
        // The default note names the call.
        let (plain, _) = try #require(draft(CallLogBuilder.decide(facts(), settings: settings(), audioSeconds: nil)))
        #expect(plain.note?.hasPrefix("<p>Inbound call from +1 212-555-0123 · ext 101: answered, 2:05.</p>") == true, "\(plain.note ?? "")")
    }

    @Test func anUnknownPlaceholderIsRefusedByName() {
        #expect { try CallLogTemplate("{direction} {callid}", field: "defaults.subject") } throws: {
            "\($0)".contains("defaults.subject") && "\($0)".contains("{callid}")
        }
        #expect(throws: TemplateError.self) { try CallLogTemplate("{direction", field: "x") }
        #expect(throws: TemplateError.self) { try CallLogTemplate("a } b", field: "x") }
        for name in CallLogTemplates.placeholders { #expect(throws: Never.self) { try CallLogTemplate("{\(name)}", field: "x") } }
    }
}

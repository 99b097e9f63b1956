import CallAPI
import CallPhone
import CallSources
import CallTelnyx
import Foundation
import Testing

/// A Telnyx call's events → its facts (any order, any duplicates) → its call log.
@Suite struct TelnyxFactsTests {
    func settings(users: [String: Int] = [Call.company: 7], log: Set<LoggedKind> = [], outcomes: [String: String] = [:]) -> TelnyxSettings {
        var source = TelnyxSettings.defaultSource
        source.region = "US"
        source.log = log
        source.outcomes = outcomes
        var settings = TelnyxSettings(publicKey: nil, source: source)
        settings.users = users
        return settings
    }

    func events(_ bodies: String...) throws -> [TelnyxEvent] {
        try bodies.map(Call.event)
    }

    var recording: TelnyxRecordingInfo {
        get throws { try TelnyxRecordingInfo(event: Call.event(Call.recordingSaved())) }
    }

    func logged(_ decision: CallDecision) -> (CallLogDraft, [SourceWarning])? {
        if case .log(let draft, let warnings) = decision { return (draft, warnings) }
        return nil
    }

    @Test func aCallIsCompleteWithItsInitiatedAndHangupEvents() throws {
        #expect(!TelnyxFacts.isComplete([]))
        #expect(!TelnyxFacts.isComplete(try events(Call.recordingSaved(), Call.answered(), Call.initiated())))
        #expect(!TelnyxFacts.isComplete(try events(Call.hangup(), Call.answered())))
        #expect(TelnyxFacts.isComplete(try events(Call.hangup(), Call.answered(), Call.recordingSaved(), Call.initiated())))
        // Cleared normally without its answer: the answer may still come (it did, after the
        // hangup, in a reordered delivery, and the call was logged no_answer).
        #expect(!TelnyxFacts.isComplete(try events(Call.hangup(), Call.recordingSaved(), Call.initiated())))
        // A hangup that says the call was never answered needs no answer event.
        for cause in ["user_busy", "timeout", "originator_cancel", "call_rejected"] {
            #expect(TelnyxFacts.isComplete(try events(Call.hangup(cause: cause), Call.initiated())), "\(cause)")
        }
    }

    @Test func everyOrderAndDuplicateGivesTheSameFacts() throws {
        let all = try events(Call.initiated(), Call.answered(), Call.hangup(), Call.recordingSaved())
        let expected = CallFacts(pbx: "telnyx", callID: Call.session, direction: .inbound,
                                 other: PhoneNumber(raw: Call.caller, e164: Call.caller), company: PhoneNumber(raw: Call.company, e164: Call.company),
                                 start: Call.date("2026-12-06T10:00:00.521992Z"), answer: Call.date("2026-12-06T10:00:07.2Z"),
                                 end: Call.date("2026-12-06T10:02:12.6Z"), billsec: 125, disposition: "ANSWERED", fromCDR: true)
        var orders = 0
        for order in permutations(all) {
            orders += 1
            #expect(TelnyxFacts.facts(events: order, recording: try recording, settings: settings()) == expected, "\(order.map(\.type))")
            // Every event delivered twice, the copies anywhere.
            let twice = order + order.reversed()
            #expect(TelnyxFacts.facts(events: twice, recording: try recording, settings: settings()) == expected, "\(twice.map(\.type))")
        }
        #expect(orders == 24)
    }

    @Test func anotherLegOfTheSessionDoesNotChangeTheFacts() throws {
        let other = try Call.event(Call.initiated(id: "9f0e1d2c-0000-4000-8000-000000000001", direction: "outgoing", leg: "5a6b7c8d-other-leg",
                                                  from: Call.company, to: "+13125550144", at: "2026-12-06T09:59:59Z"))
        let foreign = try Call.event(Call.hangup(id: "another-session-hangup", cause: "user_busy").replacingOccurrences(of: Call.session, with: "another-session"))
        let base = try events(Call.initiated(), Call.answered(), Call.hangup())
        let expected = TelnyxFacts.facts(events: base, recording: try recording, settings: settings())
        #expect(expected?.other.e164 == Call.caller && expected?.disposition == "ANSWERED")
        for order in permutations(base + [other, foreign]) {
            #expect(TelnyxFacts.facts(events: order, recording: try recording, settings: settings()) == expected, "\(order.map(\.id))")
        }
    }

    @Test func anOutgoingCallIsFromTheCompanyToTheOtherParty() throws {
        let outgoing = try events(Call.initiated(direction: "outgoing", from: Call.company, to: Call.caller), Call.answered(), Call.hangup())
        let facts = try #require(TelnyxFacts.facts(events: outgoing, recording: try recording, settings: settings()))
        #expect(facts.direction == .outbound && facts.other.e164 == Call.caller && facts.company?.e164 == Call.company)
        let (draft, _) = try #require(logged(TelnyxFacts.decide(facts, settings: settings(), audioSeconds: 125)))
        #expect(draft.fromPhoneNumber == Call.company && draft.toPhoneNumber == Call.caller)
    }

    @Test func withoutADirectionTheUsersMapTellsElseInboundWithAWarning() throws {
        // From a company number: outbound.
        let fromCompany = try events(Call.initiated(direction: nil, from: Call.company, to: Call.caller), Call.hangup())
        let outbound = try #require(TelnyxFacts.facts(events: fromCompany, recording: try recording, settings: settings()))
        #expect(outbound.direction == .outbound && outbound.other.e164 == Call.caller && outbound.warnings.isEmpty)
        // To a company number: inbound.
        let toCompany = try events(Call.initiated(direction: nil), Call.hangup())
        let inbound = try #require(TelnyxFacts.facts(events: toCompany, recording: try recording, settings: settings()))
        #expect(inbound.direction == .inbound && inbound.other.e164 == Call.caller && inbound.warnings.isEmpty)
        // Neither: inbound, said.
        for (label, list) in [("no direction", toCompany), ("odd direction", try events(Call.initiated(direction: "sideways"), Call.hangup())),
                              ("no initiated", try events(Call.hangup()))] {
            let facts = try #require(TelnyxFacts.facts(events: list, recording: try recording, settings: settings(users: [:])), "\(label)")
            #expect(facts.direction == .inbound && facts.other.e164 == Call.caller, "\(label)")
            #expect(facts.warnings.map(\.code) == [TelnyxFacts.directionUnknown], "\(label)")
            #expect(facts.warnings.first?.message.contains(Call.session) == true, "\(label)")
        }
    }

    @Test func theOutcomeTable() throws {
        let table: [(answered: Bool, cause: String?, disposition: String, outcome: String)] = [
            (true, "normal_clearing", "ANSWERED", "connected"), (true, "user_busy", "ANSWERED", "connected"),
            (false, "user_busy", "BUSY", "busy"), (false, "USER_BUSY", "BUSY", "busy"),
            (false, "timeout", "NO ANSWER", "no_answer"), (false, "no_answer", "NO ANSWER", "no_answer"),
            (false, "originator_cancel", "NO ANSWER", "no_answer"),
            (false, "call_rejected", "FAILED", "no_answer"), (false, "not_found", "FAILED", "no_answer"),
            (false, "normal_clearing", "FAILED", "no_answer"), (false, "unspecified", "FAILED", "no_answer"), (false, nil, "FAILED", "no_answer"),
        ]
        for row in table {
            #expect(TelnyxFacts.disposition(answered: row.answered, hangupCause: row.cause) == row.disposition, "\(row)")
            // From the events to the call log's outcome (missed calls logged).
            var list = try events(Call.initiated(), Call.hangup(cause: row.cause ?? "x"))
            if row.cause == nil { list[1].document = list[1].document.replacingOccurrences(of: #""hangup_cause":"x","#, with: "") }
            if row.answered { list += try events(Call.answered()) }
            let facts = try #require(TelnyxFacts.facts(events: list, recording: try recording, settings: settings()))
            #expect(facts.disposition == row.disposition, "\(row)")
            #expect(facts.billsec == (row.answered ? 125 : nil), "\(row)")
            let (draft, _) = try #require(logged(TelnyxFacts.decide(facts, settings: settings(log: [.missed]), audioSeconds: 3)), "\(row)")
            #expect(draft.outcome == row.outcome, "\(row)")
        }
        // FAILED's default is documented and replaceable.
        let failed = try #require(TelnyxFacts.facts(events: try events(Call.initiated(), Call.hangup(cause: "call_rejected")),
                                                    recording: try recording, settings: settings()))
        let (busy, _) = try #require(logged(TelnyxFacts.decide(failed, settings: settings(log: [.missed], outcomes: ["FAILED": "busy"]), audioSeconds: 3)))
        #expect(busy.outcome == "busy")
        // An unanswered call is skipped unless --log missed.
        guard case .skip(.missedCall, _) = TelnyxFacts.decide(failed, settings: settings(), audioSeconds: 3) else {
            Issue.record("an unanswered Telnyx call was logged without --log missed")
            return
        }
    }

    @Test func withoutCallEventsTheRecordingEventsFactsAreUsedWithAWarning() throws {
        var settings = settings()
        settings.eventsWait = .seconds(90)
        let facts = try #require(TelnyxFacts.facts(events: try events(Call.recordingSaved()), recording: try recording, settings: settings))
        #expect(!facts.fromCDR && facts.disposition == "ANSWERED" && facts.billsec == nil && facts.answer == nil)
        #expect(facts.direction == .inbound && facts.other.e164 == Call.caller && facts.company?.e164 == Call.company)
        #expect(facts.start == Call.date("2026-12-06T10:00:07.734Z") && facts.end == Call.date("2026-12-06T10:02:12.5Z"))
        #expect(facts.warnings.map(\.code) == [TelnyxFacts.eventsMissing])
        #expect(facts.warnings.first?.message
            == "call \(Call.session): its call events did not come within 90 s; the recording event's numbers and times were used")
        let (draft, warnings) = try #require(logged(TelnyxFacts.decide(facts, settings: settings, audioSeconds: 124.8)))
        #expect(draft.duration == "125" && draft.fromPhoneNumber == Call.caller && draft.userId == 7)
        #expect(warnings.map(\.code) == [TelnyxFacts.eventsMissing])
    }

    @Test func noNumberAtAllGivesNoFacts() throws {
        let documented = try TelnyxRecordingInfo(event: Call.event(Call.recordingSaved(live: false)))
        #expect(TelnyxFacts.facts(events: [], recording: documented, settings: settings()) == nil)
        #expect(TelnyxFacts.facts(events: try events(Call.recordingSaved(live: false)), recording: documented, settings: settings()) == nil)
        // The call events' numbers suffice.
        #expect(TelnyxFacts.facts(events: try events(Call.hangup()), recording: documented, settings: settings())?.other.e164 == Call.caller)
    }

    @Test func decideGivesTheTelnyxNumbersUser() throws {
        let list = try events(Call.initiated(), Call.answered(), Call.hangup())
        let facts = try #require(TelnyxFacts.facts(events: list, recording: try recording, settings: settings()))
        let (mapped, quiet) = try #require(logged(TelnyxFacts.decide(facts, settings: settings(), audioSeconds: 124.9)))
        #expect(mapped.userId == 7 && quiet.isEmpty, "\(quiet)")
        #expect(mapped.outcome == "connected" && mapped.duration == "125" && mapped.startTime == "2026-12-06 10:00:00")
        #expect(mapped.fromPhoneNumber == Call.caller && mapped.toPhoneNumber == Call.company)
        let (unmapped, warnings) = try #require(logged(TelnyxFacts.decide(facts, settings: settings(users: ["+16175550100": 8]), audioSeconds: 124.9)))
        #expect(unmapped.userId == nil)
        #expect(warnings.map(\.code) == [SourceWarning.noUser])
        #expect(warnings.first?.message == "Telnyx number +16175550199 has no Pipedrive user in the config's telnyx.users map: the call log gets the token's user")
    }
}

/// Every order of `items` (Heap's algorithm).
func permutations<T>(_ items: [T]) -> [[T]] {
    var items = items, result: [[T]] = []
    func generate(_ k: Int) {
        guard k > 1 else { return result.append(items) }
        generate(k - 1)
        for i in 0..<(k - 1) {
            items.swapAt(k % 2 == 0 ? i : 0, k - 1)
            generate(k - 1)
        }
    }
    generate(items.count)
    return result
}

import CallAPI
import CallPhone
public import CallSources
import CallSupport
import Foundation

/// What Telnyx says about a call, as the call-log builder reads it (`CallFacts`), from the call's
/// events kept per `call_session_id` and the recording itself.
public enum TelnyxFacts {
    /// Whether the events give the call's whole story (a recording job waits, bounded, for it):
    /// `call.initiated` and `call.hangup` have come, and `call.answered` too unless the hangup
    /// says the call was never answered. A call cleared normally (`normal_clearing`) without its
    /// `call.answered` is an answered call whose answer is still on its way far more often than an
    /// unanswered one: deciding then logged an answered call as `no_answer` (an answer delivered
    /// after the hangup).
    public static func isComplete(_ events: [TelnyxEvent]) -> Bool {
        guard events.contains(where: { $0.type == TelnyxEvent.initiated }) else { return false }
        let hangups = events.filter { $0.type == TelnyxEvent.hangup }
        guard !hangups.isEmpty else { return false }
        if events.contains(where: { $0.type == TelnyxEvent.answered }) { return true }
        return !hangups.contains { TelnyxJSON.string($0.payload?["hangup_cause"]) == normalClearing }
    }

    /// The hangup cause of a call that ended the ordinary way (either side hung up).
    static let normalClearing = "normal_clearing"

    /// The call's facts from its events (any order, duplicates allowed) and the recording. With
    /// no call events, from what the recording carries, with a `telnyx_events_missing` warning.
    /// Nil when neither says the other party's number.
    ///
    /// Of several events of one type (a session with several legs, or deliveries of one event),
    /// the one of the recording's leg is read, else the earliest (then the smallest id): the
    /// same facts whatever order they came in.
    public static func facts(events: [TelnyxEvent], recording: TelnyxRecordingInfo, settings: TelnyxSettings) -> CallFacts? {
        let session = recording.callSessionID
        let call = CallEvents(events.filter { $0.callSessionID == session }, leg: recording.callLegID)
        let initiated = call.first(TelnyxEvent.initiated), answered = call.first(TelnyxEvent.answered), hangup = call.first(TelnyxEvent.hangup)
        let used = initiated != nil || answered != nil || hangup != nil
        var warnings: [SourceWarning] = []
        if !used {
            warnings.append(SourceWarning(eventsMissing, "call \(session): its call events did not come within \(seconds(settings.eventsWait)); the recording event's numbers and times were used"))
        }

        let ordered = [initiated, answered, hangup].compactMap { $0 }
        func number(_ key: String) -> String? {
            ordered.lazy.compactMap { TelnyxJSON.string($0.payload[key]) }.first
        }
        let from = number("from") ?? recording.from, to = number("to") ?? recording.to
        let region = settings.source.region
        let fromNumber = from.map { PhoneNumbers.normalize($0, region: region) }
        let toNumber = to.map { PhoneNumbers.normalize($0, region: region) }

        let direction: CallDirection
        switch (initiated?.payload["direction"] as? String)?.lowercased() {
        case "incoming": direction = .inbound
        case "outgoing": direction = .outbound
        case let said:
            // The numbers of the users map are the company's: a call from one of them went out.
            let fromCompany = fromNumber.map { isCompany($0, settings) } ?? false
            let toCompany = toNumber.map { isCompany($0, settings) } ?? false
            if fromCompany, !toCompany {
                direction = .outbound
            } else if toCompany {
                direction = .inbound
            } else {
                direction = .inbound
                let what = said.map { "its direction \($0) is neither incoming nor outgoing" } ?? "no call.initiated event said its direction"
                warnings.append(SourceWarning(directionUnknown, "call \(session): \(what), and neither number is in telnyx.users: taken as inbound"))
            }
        }
        let (otherNumber, companyNumber) = direction == .outbound ? (toNumber, fromNumber) : (fromNumber, toNumber)
        guard let otherNumber, !otherNumber.raw.isEmpty else { return nil }

        let recordingEvent = events.first { $0.type == TelnyxEvent.recordingSaved && $0.id == recording.eventID }
        let startCandidates: [Date?] = [
            initiated.flatMap { TelnyxJSON.time($0.payload["start_time"]) }, initiated?.event.occurredAt,
            hangup.flatMap { TelnyxJSON.time($0.payload["start_time"]) }, recording.startedAt,
            answered?.event.occurredAt, hangup?.event.occurredAt, recording.endedAt, recordingEvent?.occurredAt,
        ]
        guard let start = startCandidates.lazy.compactMap({ $0 }).first else { return nil }
        let answer = answered?.event.occurredAt
        let end = hangup.flatMap { TelnyxJSON.time($0.payload["end_time"]) } ?? hangup?.event.occurredAt ?? recording.endedAt

        // Without call events the recording itself says someone was connected.
        let wasAnswered = answered != nil || !used
        let cause = hangup.flatMap { TelnyxJSON.string($0.payload["hangup_cause"]) }
        let billsec: Int? = if wasAnswered, let answer, let end { max(0, Int(end.timeIntervalSince(answer).rounded())) } else { nil }
        return CallFacts(pbx: "telnyx", callID: session, direction: direction, other: otherNumber, company: companyNumber, start: start,
                         answer: answer, end: end, billsec: billsec, disposition: disposition(answered: wasAnswered, hangupCause: cause),
                         fromCDR: used, warnings: warnings)
    }

    /// Asterisk's disposition vocabulary (what ``OutcomeMap`` maps) for a Telnyx call: answered →
    /// `ANSWERED`; hangup cause `user_busy` → `BUSY`; `timeout`, `no_answer`,
    /// `originator_cancel` → `NO ANSWER`; anything else → `FAILED` (the documented default,
    /// `no_answer` unless `--outcome FAILED=…` says otherwise).
    public static func disposition(answered: Bool, hangupCause: String?) -> String {
        if answered { return "ANSWERED" }
        switch hangupCause?.lowercased() {
        case "user_busy": return "BUSY"
        case "timeout", "no_answer", "originator_cancel": return "NO ANSWER"
        default: return "FAILED"
        }
    }

    /// The call log of a Telnyx call: ``CallLogBuilder/decide(_:settings:audioSeconds:)`` with
    /// the Telnyx number's Pipedrive user (``TelnyxSettings/users``).
    public static func decide(_ facts: CallFacts, settings: TelnyxSettings, audioSeconds: Double?) -> CallDecision {
        let decision = CallLogBuilder.decide(facts, settings: settings.source, audioSeconds: audioSeconds)
        guard case .log(var draft, var warnings) = decision else { return decision }
        warnings.removeAll { $0.code == SourceWarning.noUser }
        if let company = facts.company, let user = user(of: company, settings) {
            draft.userId = user
        } else {
            let message = facts.company.map { "Telnyx number \($0.best) has no Pipedrive user in the config's telnyx.users map: the call log gets the token's user" }
                ?? "call \(facts.callID): no Telnyx number known, so no Pipedrive user: the call log gets the token's user"
            warnings.append(SourceWarning(SourceWarning.noUser, message))
        }
        return .log(draft, warnings: warnings)
    }

    /// Warning: the call's events did not come within the wait; the recording event's facts were used.
    public static let eventsMissing = "telnyx_events_missing"
    /// Warning: no event said which way the call went, and the users map did not tell: inbound.
    public static let directionUnknown = "telnyx_direction_unknown"

    static func user(of number: PhoneNumber, _ settings: TelnyxSettings) -> Int? {
        number.e164.flatMap { settings.users[$0] } ?? settings.users[number.raw]
    }

    static func isCompany(_ number: PhoneNumber, _ settings: TelnyxSettings) -> Bool {
        user(of: number, settings) != nil
    }

    /// `60 s`, `2 min`, `1.5 s`.
    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        if value >= 60, value.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(value) / 60) min" }
        return value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}

/// A session's call events with their payloads read once, one per type chosen the same way
/// whatever the order they came in.
private struct CallEvents {
    struct Read {
        var event: TelnyxEvent
        var payload: [String: Any]
    }

    var byType: [String: Read] = [:]

    init(_ events: [TelnyxEvent], leg: String) {
        var chosen: [String: TelnyxEvent] = [:]
        for event in events where TelnyxEvent.callEvents.contains(event.type) {
            if let current = chosen[event.type], !Self.precedes(event, current, leg: leg) { continue }
            chosen[event.type] = event
        }
        for (type, event) in chosen {
            byType[type] = Read(event: event, payload: event.payload ?? [:])
        }
    }

    func first(_ type: String) -> Read? { byType[type] }

    /// The recording's leg first, then the earliest, then the smallest id.
    static func precedes(_ a: TelnyxEvent, _ b: TelnyxEvent, leg: String) -> Bool {
        let aLeg = a.callLegID == leg, bLeg = b.callLegID == leg
        if aLeg != bLeg { return aLeg }
        let aTime = a.occurredAt ?? .distantFuture, bTime = b.occurredAt ?? .distantFuture
        if aTime != bTime { return aTime < bTime }
        return a.id < b.id
    }
}

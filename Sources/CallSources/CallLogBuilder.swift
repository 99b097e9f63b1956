import CallAPI
import CallPhone
import Foundation

/// A call's facts to its call log, or to the documented reason it is not logged.
public enum CallLogBuilder {
    /// `audioSeconds`: the recording's length, for the duration when the call was not answered
    /// or no CDR gave `billsec`.
    ///
    /// - Policy (``CallPolicy``): internal and missed calls are skipped unless `log` lists them.
    /// - From/to: inbound from the other party to the company number (else the extension);
    ///   outbound the reverse; internal from the extension to the other extension.
    /// - Times in UTC; the duration is `billsec` for an answered call, else the audio's length.
    /// - `user_id` from `users[extension]`, else warning `no_user`.
    /// - Subject and note from the settings' templates (the note's values HTML-escaped).
    public static func decide(_ facts: CallFacts, settings: SourceSettings, audioSeconds: Double?) -> CallDecision {
        if let reason = CallPolicy.skipReason(direction: facts.direction, disposition: facts.disposition, log: settings.log) {
            return .skip(reason, message: skipMessage(reason, facts))
        }
        var warnings = facts.warnings
        let outcome = OutcomeMap.outcome(for: facts.disposition, overrides: settings.outcomes)
        let answered = facts.disposition.uppercased() == "ANSWERED"
        let seconds: Double = answered ? (facts.billsec.map(Double.init) ?? audioSeconds ?? elapsed(facts))
            : (audioSeconds ?? elapsed(facts))
        let whole = max(0, Int(seconds.rounded()))

        let ext = facts.extension.flatMap { $0.isEmpty ? nil : $0 }
        let company = facts.company.map(\.best).flatMap { $0.isEmpty ? nil : $0 }
        let other = facts.other.best
        let from: String?, to: String?
        switch facts.direction {
        case .inbound: (from, to) = (nonEmpty(other), company ?? ext)
        case .outbound: (from, to) = (company ?? ext, nonEmpty(other))
        case .internal: (from, to) = (ext, facts.otherExtension ?? nonEmpty(other))
        }
        if facts.direction != .internal, !facts.other.raw.isEmpty, !facts.other.isValid,
           !warnings.contains(where: { $0.code == SourceWarning.numberInvalid }) {
            warnings.append(SourceWarning(SourceWarning.numberInvalid,
                                          "call \(facts.callID): the other party's number \(facts.other.raw) is not a valid number: kept as the PBX wrote it"))
        }
        // Pipedrive requires to_phone_number.
        let toNumber = to ?? ext ?? facts.pbx
        if to == nil {
            warnings.append(SourceWarning(SourceWarning.numberMissing, "call \(facts.callID): no number for to_phone_number: \(toNumber) used"))
        }

        var draft = CallLogDraft(outcome: outcome, toPhoneNumber: toNumber, startTime: CallLogDraft.formatTime(facts.start))
        draft.fromPhoneNumber = from
        draft.endTime = CallLogDraft.formatTime(facts.start.addingTimeInterval(Double(whole)))
        draft.duration = String(whole)
        if let ext, let user = settings.users[ext] {
            draft.userId = user
        } else {
            warnings.append(SourceWarning(SourceWarning.noUser, ext.map { "extension \($0) has no Pipedrive user in the config's users map: the call log gets the token's user" }
                ?? "call \(facts.callID): no extension known, so no Pipedrive user: the call log gets the token's user"))
        }
        let values = CallLogTemplates.values(facts, settings: settings, outcome: outcome, seconds: whole)
        draft.subject = template(settings.subjectTemplate, fallback: SourceSettings.defaultSubject).render(values, html: false)
        draft.note = template(settings.noteTemplate, fallback: SourceSettings.defaultNote).render(values, html: true)
        return .log(draft, warnings: warnings)
    }

    static func elapsed(_ facts: CallFacts) -> Double {
        facts.end.map { max(0, $0.timeIntervalSince(facts.start)) } ?? 0
    }

    static func nonEmpty(_ text: String) -> String? { text.isEmpty ? nil : text }

    /// Templates were checked when the settings were read; one that was not falls back to the default.
    static func template(_ text: String, fallback: String) -> CallLogTemplate {
        (try? CallLogTemplate(text, field: "template")) ?? (try! CallLogTemplate(fallback, field: "default template"))
    }

    static func skipMessage(_ reason: SkipReason, _ facts: CallFacts) -> String {
        switch reason {
        case .internalCall:
            "internal call (ext \(facts.extension ?? "?") with ext \(facts.otherExtension ?? facts.other.raw)): not logged (--log internal logs it)"
        case .missedCall:
            "\(facts.disposition) call: not logged (--log missed logs it)"
        case .unrecognisedName:
            "the file name fits no layout of the source"
        }
    }
}

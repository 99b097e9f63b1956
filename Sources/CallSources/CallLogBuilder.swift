public import CallAPI
import CallPhone
public import Foundation

/// A call's facts to its call log, or to the documented reason it is not logged.
public enum CallLogBuilder {
    /// `audioSeconds`: the recording's length, for the duration when no CDR gave `billsec`.
    public static func decide(_ facts: CallFacts, settings: SourceSettings, audioSeconds: Double?) -> CallDecision {
        // Step-0 stub (WP1 replaces it).
        var draft = CallLogDraft(outcome: facts.disposition == "ANSWERED" ? "connected" : "no_answer", toPhoneNumber: facts.other.best,
                                 startTime: CallLogDraft.formatTime(facts.start))
        draft.endTime = CallLogDraft.formatTime(facts.start.addingTimeInterval(Double(facts.billsec ?? Int(audioSeconds ?? 0))))
        return .log(draft, warnings: facts.warnings)
    }
}

public import CallSources
import Foundation

/// What Telnyx says about a call, as the call-log builder reads it (`CallFacts`), from the call's
/// events kept per `call_session_id` and the recording itself.
public enum TelnyxFacts {
    /// Whether the events give the call's whole story: `call.hangup` and `call.initiated` have
    /// come (a recording job waits, bounded, for them).
    public static func isComplete(_ events: [TelnyxEvent]) -> Bool {
        fatalError("not implemented (WP-A)")
    }

    /// The call's facts from its events (any order, duplicates allowed) and the recording. With
    /// no call events, from what the recording carries, with a `telnyx_events_missing` warning.
    /// Nil when neither says the other party's number.
    public static func facts(events: [TelnyxEvent], recording: TelnyxRecordingInfo, settings: TelnyxSettings) -> CallFacts? {
        fatalError("not implemented (WP-A)")
    }

    /// Asterisk's disposition vocabulary (what ``OutcomeMap`` maps) for a Telnyx call: answered →
    /// `ANSWERED`; hangup cause `user_busy` → `BUSY`; `timeout`, `no_answer`,
    /// `originator_cancel` → `NO ANSWER`; anything else → `FAILED` (the documented default,
    /// `no_answer` unless `--outcome FAILED=…` says otherwise).
    public static func disposition(answered: Bool, hangupCause: String?) -> String {
        fatalError("not implemented (WP-A)")
    }

    /// The call log of a Telnyx call: ``CallLogBuilder/decide(_:settings:audioSeconds:)`` with
    /// the Telnyx number's Pipedrive user (``TelnyxSettings/users``).
    public static func decide(_ facts: CallFacts, settings: TelnyxSettings, audioSeconds: Double?) -> CallDecision {
        fatalError("not implemented (WP-A)")
    }

    /// Warning: the call's events did not come within the wait; the recording event's facts were used.
    public static let eventsMissing = "telnyx_events_missing"
}

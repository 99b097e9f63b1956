import CallAPI
import Foundation

/// A call's disposition (Asterisk's vocabulary plus `VOICEMAIL`) to its call log's outcome:
/// documented defaults, each replaceable by `--outcome KEY=VALUE` or the config's `outcome`.
public enum OutcomeMap {
    /// The defaults. `FAILED` and `CONGESTION` never reached anyone (no_answer, busy).
    /// `VOICEMAIL` is the caller leaving one: Pipedrive's `left_voicemail` means the agent left
    /// one, so it is `no_answer`, and the note says "caller left a voicemail".
    public static let defaults: [String: String] = [
        "ANSWERED": "connected", "NO ANSWER": "no_answer", "CANCEL": "no_answer", "BUSY": "busy", "CONGESTION": "busy",
        "FAILED": "no_answer", "VOICEMAIL": "no_answer",
    ]

    /// The dispositions a key may name, in the order the help shows them.
    public static let dispositions = ["ANSWERED", "NO ANSWER", "BUSY", "CANCEL", "CONGESTION", "FAILED", "VOICEMAIL"]

    /// The outcome of `disposition` with `overrides` (keys as ``dispositions``); an unknown
    /// disposition is `no_answer` unless it was answered.
    public static func outcome(for disposition: String, overrides: [String: String] = [:]) -> String {
        let key = disposition.uppercased()
        return overrides[key] ?? defaults[key] ?? "no_answer"
    }

    /// The disposition a key names (`no_answer`, `NO_ANSWER` and `no answer` all name
    /// `NO ANSWER`), or nil.
    public static func disposition(named key: String) -> String? {
        let name = key.trimmingSpaces.uppercased().replacingOccurrences(of: "_", with: " ")
        return dispositions.contains(name) ? name : nil
    }

    /// Checks one `KEY=VALUE` (what `--outcome` takes; `source` names where it came from, e.g.
    /// `--outcome` or `defaults.outcome`) and gives the pair in the map's vocabulary.
    public static func parse(_ item: String, source: String) throws -> (disposition: String, outcome: String) {
        guard let eq = item.firstIndex(of: "=") else {
            throw OutcomeMapError(message: "\(source) \(item): not DISPOSITION=OUTCOME (e.g. FAILED=no_answer)")
        }
        return try check(String(item[..<eq]), String(item[item.index(after: eq)...]), source: source)
    }

    /// Checks one disposition → outcome pair.
    public static func check(_ key: String, _ value: String, source: String) throws -> (disposition: String, outcome: String) {
        guard let disposition = disposition(named: key) else {
            throw OutcomeMapError(message: "\(source) \(key)=\(value): \(key) is not a disposition (one of \(dispositions.joined(separator: ", ")); NO_ANSWER for NO ANSWER)")
        }
        let outcome = value.trimmingSpaces
        guard CallLogDraft.outcomes.contains(outcome) else {
            throw OutcomeMapError(message: "\(source) \(key)=\(value): \(value) is not a call-log outcome (one of \(CallLogDraft.outcomes.joined(separator: ", ")))")
        }
        return (disposition, outcome)
    }
}

public struct OutcomeMapError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

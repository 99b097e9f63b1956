import CallPhone
import Foundation

/// A call log's subject or note template: text with `{placeholder}`s from a fixed set
/// (``CallLogTemplates/placeholders``); `{{` and `}}` are literal braces. An unknown name is
/// refused when the template is read (at load, before any file), naming it.
public struct CallLogTemplate: Sendable, Hashable {
    enum Piece: Sendable, Hashable {
        case text(String)
        case placeholder(String)
    }

    let pieces: [Piece]

    /// `field` names where the template came from (`--config …: defaults.subject`) for the error.
    public init(_ text: String, field: String) throws {
        var pieces: [Piece] = []
        var literal = ""
        var rest = Substring(text)
        while let c = rest.first {
            rest = rest.dropFirst()
            if c == "{" && rest.first == "{" || c == "}" && rest.first == "}" {
                literal.append(c)
                rest = rest.dropFirst()
            } else if c == "{" {
                guard let close = rest.firstIndex(of: "}") else {
                    throw TemplateError(message: "\(field): a { is not closed (write {{ for a brace)")
                }
                let name = String(rest[..<close])
                guard CallLogTemplates.placeholders.contains(name) else {
                    throw TemplateError(message: "\(field): {\(name)} is not a placeholder (known: \(CallLogTemplates.placeholders.joined(separator: ", ")))")
                }
                if !literal.isEmpty { pieces.append(.text(literal)) }
                literal = ""
                pieces.append(.placeholder(name))
                rest = rest[rest.index(after: close)...]
            } else if c == "}" {
                throw TemplateError(message: "\(field): a } closes nothing (write }} for a brace)")
            } else {
                literal.append(c)
            }
        }
        if !literal.isEmpty { pieces.append(.text(literal)) }
        self.pieces = pieces
    }

    /// The text with each placeholder's value; with `html` the values (never the template's own
    /// text, which may hold markup) are HTML-escaped.
    public func render(_ values: [String: String], html: Bool) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let text): return text
            case .placeholder(let name):
                let value = values[name] ?? ""
                return html ? CallLogTemplates.escapeHTML(value) : value
            }
        }.joined()
    }
}

public struct TemplateError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// The placeholders call-log templates may use, and their values for one call.
public enum CallLogTemplates {
    public static let placeholders = [
        "direction", "direction_title", "with_other", "other_number", "other_display", "other_name", "extension", "ext_suffix",
        "company_number", "duration", "outcome", "outcome_text", "disposition", "pbx", "call_id", "start_local", "start_utc",
    ]

    /// Each placeholder's value for a call of `seconds` whose outcome is `outcome`.
    public static func values(_ facts: CallFacts, settings: SourceSettings, outcome: String, seconds: Int) -> [String: String] {
        let display = facts.other.e164.flatMap { PhoneNumbers.international($0, region: nil) } ?? facts.other.raw
        let extensionText = facts.extension ?? ""
        let withOther: String
        switch facts.direction {
        case .inbound: withOther = "from " + party(display, name: facts.otherName)
        case .outbound: withOther = "to " + party(display, name: facts.otherName)
        case .internal: withOther = "with ext " + party(facts.otherExtension ?? facts.other.raw, name: facts.otherName)
        }
        let zone = settings.timeZone
        return [
            "direction": facts.direction.rawValue,
            "direction_title": facts.direction.rawValue.prefix(1).uppercased() + facts.direction.rawValue.dropFirst(),
            "with_other": withOther,
            "other_number": facts.other.best,
            "other_display": display,
            "other_name": facts.otherName ?? "",
            "extension": extensionText,
            "ext_suffix": extensionText.isEmpty ? "" : " · ext \(extensionText)",
            "company_number": facts.company?.best ?? "",
            "duration": duration(seconds),
            "outcome": outcome,
            "outcome_text": outcomeText(disposition: facts.disposition, outcome: outcome),
            "disposition": facts.disposition,
            "pbx": facts.pbx,
            "call_id": facts.callID,
            "start_local": LocalTime.local(facts.start, in: zone).description + " " + offset(zone.secondsFromGMT(for: facts.start)),
            "start_utc": CallLogTime.utc(facts.start),
        ]
    }

    /// `1:05`, `1:02:03`.
    static func duration(_ seconds: Int) -> String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let s = max(0, seconds)
        return s >= 3600 ? "\(s / 3600):\(two(s / 60 % 60)):\(two(s % 60))" : "\(s / 60):\(two(s % 60))"
    }

    /// `-04:00`, `+05:30` (zone abbreviations differ between platforms).
    static func offset(_ seconds: Int) -> String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return (seconds < 0 ? "-" : "+") + two(abs(seconds) / 3600) + ":" + two(abs(seconds) / 60 % 60)
    }

    static func party(_ number: String, name: String?) -> String {
        guard let name, !name.isEmpty, name != number else { return number }
        return "\(name) (\(number))"
    }

    /// The outcome in words; a voicemail is the caller's.
    static func outcomeText(disposition: String, outcome: String) -> String {
        if disposition.uppercased() == "VOICEMAIL" { return "caller left a voicemail" }
        switch outcome {
        case "connected": return "answered"
        case "no_answer": return "not answered"
        default: return outcome.replacingOccurrences(of: "_", with: " ")
        }
    }

    static func escapeHTML(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

public import Foundation

/// The body of Pipedrive's `POST /v1/callLogs` (research/api-contract.md §1.3), with the same
/// field names, types and rules, so a sidecar can be checked before anything is sent.
public struct CallLogDraft: Sendable, Equatable, Codable {
    public static let outcomes = ["connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy"]

    public var outcome: String
    public var toPhoneNumber: String
    public var fromPhoneNumber: String?
    /// UTC, `YYYY-MM-DD HH:MM:SS`.
    public var startTime: String
    /// UTC, `YYYY-MM-DD HH:MM:SS`; derived from the audio when absent.
    public var endTime: String?
    /// Seconds, as a string (that is what the API takes).
    public var duration: String?
    public var subject: String?
    /// HTML.
    public var note: String?
    public var userId: Int?
    public var activityId: Int?
    public var personId: Int?
    public var orgId: Int?
    public var dealId: Int?
    /// A lead's UUID. Deal or lead, never both.
    public var leadId: String?

    public init(outcome: String, toPhoneNumber: String, startTime: String) {
        self.outcome = outcome
        self.toPhoneNumber = toPhoneNumber
        self.startTime = startTime
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case outcome, toPhoneNumber = "to_phone_number", fromPhoneNumber = "from_phone_number"
        case startTime = "start_time", endTime = "end_time", duration, subject, note
        case userId = "user_id", activityId = "activity_id", personId = "person_id", orgId = "org_id"
        case dealId = "deal_id", leadId = "lead_id"
    }

    /// Every field name the API accepts.
    public static var fieldNames: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// One field that breaks a rule: the field's path (`call_log.start_time`) and why.
public struct FieldProblem: Sendable, Equatable, CustomStringConvertible {
    public let field: String
    public let reason: String

    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }

    public var description: String { "\(field): \(reason)" }
}

extension CallLogDraft {
    /// Parses and checks a JSON object field by field. Returns the draft, or every problem found
    /// (not just the first), each naming its field under `prefix`.
    public static func parse(_ object: [String: Any], prefix: String = "call_log") -> (draft: CallLogDraft?, problems: [FieldProblem]) {
        var problems: [FieldProblem] = []
        func name(_ key: CodingKeys) -> String { "\(prefix).\(key.rawValue)" }
        func string(_ key: CodingKeys, required: Bool = false) -> String? {
            switch object[key.rawValue] {
            case nil, is NSNull:
                if required { problems.append(FieldProblem(field: name(key), reason: "is required")) }
                return nil
            case let s as String:
                if required, s.trimmingCharacters(in: .whitespaces).isEmpty {
                    problems.append(FieldProblem(field: name(key), reason: "must not be empty"))
                }
                return s
            default:
                problems.append(FieldProblem(field: name(key), reason: "must be a string"))
                return nil
            }
        }
        func integer(_ key: CodingKeys) -> Int? {
            switch object[key.rawValue] {
            case nil, is NSNull: return nil
            case let n as NSNumber where !n.isBoolean && n.doubleValue == n.doubleValue.rounded():
                guard n.intValue > 0 else {
                    problems.append(FieldProblem(field: name(key), reason: "must be a positive id, not \(n)"))
                    return nil
                }
                return n.intValue
            default:
                problems.append(FieldProblem(field: name(key), reason: "must be an integer id"))
                return nil
            }
        }

        for key in object.keys.sorted() where !fieldNames.contains(key) {
            problems.append(FieldProblem(field: "\(prefix).\(key)", reason: "is not a call-log field (known: \(fieldNames.joined(separator: ", ")))"))
        }
        let outcome = string(.outcome, required: true)
        if let outcome, !outcome.isEmpty, !outcomes.contains(outcome) {
            problems.append(FieldProblem(field: name(.outcome), reason: "\"\(outcome)\" is not one of \(outcomes.joined(separator: ", "))"))
        }
        let to = string(.toPhoneNumber, required: true)
        let start = string(.startTime, required: true)
        let end = string(.endTime)
        var startDate: Date?, endDate: Date?
        if let start, !start.isEmpty {
            startDate = parseTime(start)
            if startDate == nil {
                problems.append(FieldProblem(field: name(.startTime), reason: "\"\(start)\" is not a UTC time as YYYY-MM-DD HH:MM:SS"))
            }
        }
        if let end {
            endDate = parseTime(end)
            if endDate == nil {
                problems.append(FieldProblem(field: name(.endTime), reason: "\"\(end)\" is not a UTC time as YYYY-MM-DD HH:MM:SS"))
            }
        }
        if let startDate, let endDate, endDate <= startDate {
            problems.append(FieldProblem(field: name(.endTime), reason: "\(end!) is not after start_time \(start!)"))
        }
        let duration = string(.duration)
        if let duration, Double(duration).map({ $0 >= 0 && $0.isFinite }) != true {
            problems.append(FieldProblem(field: name(.duration), reason: "\"\(duration)\" is not a number of seconds"))
        }
        var draft = CallLogDraft(outcome: outcome ?? "", toPhoneNumber: to ?? "", startTime: start ?? "")
        draft.fromPhoneNumber = string(.fromPhoneNumber)
        draft.endTime = end
        draft.duration = duration
        draft.subject = string(.subject)
        draft.note = string(.note)
        draft.userId = integer(.userId)
        draft.activityId = integer(.activityId)
        draft.personId = integer(.personId)
        draft.orgId = integer(.orgId)
        draft.dealId = integer(.dealId)
        draft.leadId = string(.leadId)
        if let lead = draft.leadId, UUID(uuidString: lead) == nil {
            problems.append(FieldProblem(field: name(.leadId), reason: "\"\(lead)\" is not a UUID"))
        }
        if draft.dealId != nil, draft.leadId != nil {
            problems.append(FieldProblem(field: name(.leadId), reason: "a call log links to a deal or a lead, not both (deal_id is \(draft.dealId!))"))
        }
        return (problems.isEmpty ? draft : nil, problems)
    }

    /// `YYYY-MM-DD HH:MM:SS` (or with `T`), UTC, a real calendar time.
    public static func parseTime(_ text: String) -> Date? {
        let chars = Array(text.utf8)
        guard chars.count == 19, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars[10] == UInt8(ascii: " ") || chars[10] == UInt8(ascii: "T"),
              chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                guard chars[i] >= 48, chars[i] <= 57 else { return nil }
                v = v * 10 + Int(chars[i] - 48)
            }
            return v
        }
        guard let y = number(0..<4), let mo = number(5..<7), let d = number(8..<10),
              let h = number(11..<13), let mi = number(14..<16), let s = number(17..<19),
              h < 24, mi < 60, s < 60 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let components = DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s)
        guard components.isValidDate(in: calendar) else { return nil }
        return calendar.date(from: components)
    }

    /// Formats a date the way the API takes it.
    public static func formatTime(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ v: Int?) -> String { let s = String(v ?? 0); return s.count == 1 ? "0" + s : s }
        return "\(c.year ?? 0)-\(two(c.month))-\(two(c.day)) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}

extension NSNumber {
    /// JSON `true`/`false` arrive as NSNumber too; an id must not be one.
    var isBoolean: Bool {
        let type = String(cString: objCType)
        return type == "c" || type == "B"
    }
}

import Foundation
import HTTPTypes

/// A `POST /v1/callLogs` body that passed validation (api-contract §1.3).
struct CallLogDraft: Sendable, Equatable {
    static let outcomes = ["connected", "no_answer", "left_message", "left_voicemail", "wrong_number", "busy"]

    var outcome: String
    var toPhoneNumber: String
    var fromPhoneNumber: String?
    /// Normalised to `YYYY-MM-DD HH:MM:SS`.
    var startTime: String
    var endTime: String
    var duration: String?
    var subject: String?
    var note: String?
    var userId: Int?
    var activityId: Int?
    var personId: Int?
    var orgId: Int?
    var dealId: Int?
    var leadId: String?

    /// Validates a request body the way the API does: required fields, the outcome enum, the time
    /// format, types, deal XOR lead. `null` counts as absent; unknown fields are ignored.
    /// - Throws: ``APIError`` 400 with a Joi-style message (`"outcome" is required.`).
    static func validate(_ body: JSONValue) throws(APIError) -> CallLogDraft {
        guard case .object = body else { throw bad("Request body must be a JSON object.") }

        func present(_ key: String) -> JSONValue? {
            guard let value = body[key], !value.isNull else { return nil }
            return value
        }
        func string(_ key: String, required: Bool = false) throws(APIError) -> String? {
            guard let value = present(key) else {
                if required { throw bad("\"\(key)\" is required.") }
                return nil
            }
            guard case .string(let text) = value else { throw bad("\"\(key)\" must be a string.") }
            if required, text.trimmingCharacters(in: .whitespaces).isEmpty { throw bad("\"\(key)\" is not allowed to be empty.") }
            return text
        }
        func integer(_ key: String) throws(APIError) -> Int? {
            guard let value = present(key) else { return nil }
            switch value {
            case .int(let number) where number >= 0 && number <= Int64(Int32.max) * 1000: return Int(number)
            case .int: throw bad("\"\(key)\" must be a positive integer.")
            default: throw bad("\"\(key)\" must be an integer.")
            }
        }
        func time(_ key: String) throws(APIError) -> String {
            guard let text = try string(key, required: true) else { throw bad("\"\(key)\" is required.") }
            guard let normalised = normaliseTime(text) else {
                throw bad("\"\(key)\" must be a UTC date and time in the format YYYY-MM-DD HH:MM:SS.")
            }
            return normalised
        }

        // Field order follows the API's own error order: outcome first.
        guard let outcome = try string("outcome", required: true) else { throw bad("\"outcome\" is required.") }
        guard outcomes.contains(outcome) else {
            throw bad("\"outcome\" must be one of [\(outcomes.joined(separator: ", "))].")
        }
        guard let to = try string("to_phone_number", required: true) else { throw bad("\"to_phone_number\" is required.") }
        let start = try time("start_time")
        let end = try time("end_time")
        // Both are zero-padded `YYYY-MM-DD HH:MM:SS`, so text order is time order.
        guard end >= start else { throw bad("\"end_time\" must not be earlier than \"start_time\".") }

        var draft = CallLogDraft(outcome: outcome, toPhoneNumber: to, startTime: start, endTime: end)
        draft.fromPhoneNumber = try string("from_phone_number")
        draft.subject = try string("subject")
        draft.note = try string("note")
        if let duration = try string("duration") {
            guard let seconds = Double(duration), seconds.isFinite, seconds >= 0 else {
                throw bad("\"duration\" must be a number of seconds, sent as a string.")
            }
            draft.duration = duration
        }
        draft.userId = try integer("user_id")
        draft.activityId = try integer("activity_id")
        draft.personId = try integer("person_id")
        draft.orgId = try integer("org_id")
        draft.dealId = try integer("deal_id")
        if let lead = try string("lead_id") {
            guard UUID(uuidString: lead) != nil else { throw bad("\"lead_id\" must be a valid GUID.") }
            draft.leadId = lead.lowercased()
        }
        if draft.dealId != nil, draft.leadId != nil {
            throw bad("\"deal_id\" and \"lead_id\" are mutually exclusive: a call log links to a deal or to a lead, not both.")
        }
        return draft
    }

    private static func bad(_ message: String) -> APIError { APIError(.badRequest, message) }

    /// `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DDTHH:MM:SS` (a real calendar date and time) →
    /// `YYYY-MM-DD HH:MM:SS`; nil for anything else.
    static func normaliseTime(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              bytes[10] == UInt8(ascii: " ") || bytes[10] == UInt8(ascii: "T"),
              bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":")
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(bytes[i] - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              year >= 1970, (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { return nil }
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        var normalised = bytes
        normalised[10] = UInt8(ascii: " ")
        return String(decoding: normalised, as: UTF8.self)
    }

    /// `YYYY-MM-DD HH:MM:SS` → `YYYY-MM-DDTHH:MM:SS.000Z`, the form the API answers with.
    static func responseTime(_ stored: String) -> String {
        stored.replacingOccurrences(of: " ", with: "T") + ".000Z"
    }
}

extension SandboxCallLog {
    /// The call-log object of API answers (api-contract §1.4): every field, null when unset.
    var apiObject: JSONValue {
        [
            "id": .string(id),
            "activity_id": .int(Int64(activityId)),
            "company_id": .int(Int64(companyId)),
            "user_id": .orNull(userId),
            "person_id": .orNull(personId),
            "org_id": .orNull(orgId),
            "deal_id": .orNull(dealId),
            "lead_id": .orNull(leadId),
            "subject": .orNull(subject),
            "duration": .orNull(duration),
            "outcome": .string(outcome),
            "from_phone_number": .orNull(fromPhoneNumber),
            "to_phone_number": .string(toPhoneNumber),
            "has_recording": .bool(hasRecording && !deleted),
            "start_time": .string(CallLogDraft.responseTime(startTime)),
            "end_time": .string(CallLogDraft.responseTime(endTime)),
            "note": .orNull(note),
        ]
    }
}

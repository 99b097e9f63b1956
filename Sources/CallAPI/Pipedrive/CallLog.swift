import Foundation

/// A call log as Pipedrive returns it (research/api-contract.md §1.4). Lenient: ids are opaque
/// strings, `duration` may come as a string or a number, every other field may be missing.
public struct CallLog: Sendable, Equatable {
    public var id: String
    public var hasRecording: Bool
    public var activityId: Int?
    public var outcome: String?
    public var subject: String?
    public var note: String?
    public var toPhoneNumber: String?
    public var startTime: String?
    public var endTime: String?
    public var duration: String?

    init?(json: Any?) {
        guard let o = json as? [String: Any] else { return nil }
        switch o["id"] {
        case let s as String: id = s
        case let n as NSNumber: id = n.stringValue
        default: return nil
        }
        hasRecording = (o["has_recording"] as? Bool) ?? false
        activityId = (o["activity_id"] as? NSNumber)?.intValue
        outcome = o["outcome"] as? String
        subject = o["subject"] as? String
        note = o["note"] as? String
        toPhoneNumber = o["to_phone_number"] as? String
        startTime = o["start_time"] as? String
        endTime = o["end_time"] as? String
        duration = (o["duration"] as? String) ?? (o["duration"] as? NSNumber)?.stringValue
    }
}

/// One page of `GET /v1/callLogs`.
public struct CallLogPage: Sendable {
    public var items: [CallLog]
    public var start: Int
    public var moreItems: Bool
    public var nextStart: Int?
}

extension CallLogDraft {
    /// The JSON body of `POST /v1/callLogs`: only the fields that are set.
    func jsonObject() -> [String: Any] {
        var o: [String: Any] = ["outcome": outcome, "to_phone_number": toPhoneNumber, "start_time": startTime]
        if let v = fromPhoneNumber { o["from_phone_number"] = v }
        if let v = endTime { o["end_time"] = v }
        if let v = duration { o["duration"] = v }
        if let v = subject { o["subject"] = v }
        if let v = note { o["note"] = v }
        if let v = userId { o["user_id"] = v }
        if let v = activityId { o["activity_id"] = v }
        if let v = personId { o["person_id"] = v }
        if let v = orgId { o["org_id"] = v }
        if let v = dealId { o["deal_id"] = v }
        if let v = leadId { o["lead_id"] = v }
        return o
    }

    /// Checks the draft as the API would before it is sent (required fields, enum, times, deal XOR
    /// lead, lead UUID); `end_time` is required by the API.
    public func problems() -> [FieldProblem] {
        let (_, problems) = CallLogDraft.parse(jsonObject(), prefix: "call_log")
        var all = problems
        if endTime == nil { all.append(FieldProblem(field: "call_log.end_time", reason: "is required")) }
        return all
    }
}

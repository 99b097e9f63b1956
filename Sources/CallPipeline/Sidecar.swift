public import CallAPI
public import Foundation

/// The metadata beside a recording (`call-17.wav` + `call-17.json`, DESIGN §2).
public struct Sidecar: Sendable, Equatable {
    /// The call log to create. With ``callLogId`` it only describes the call (its times are still
    /// checked against the audio); nothing is created.
    public var callLog: CallLogDraft?
    /// Attach to this existing call log instead of creating one.
    public var callLogId: String?
    /// Deleted together with the call log.
    public var telnyxRecordingId: String?
    public var voipnowEvent: VoipNowEventReference?
    /// The agent's e-mail: the call log's owner is the Pipedrive user with it (when the call log
    /// names no `user_id`), from the CRM index's users.
    public var agentEmail: String?

    public struct VoipNowEventReference: Sendable, Equatable {
        public var userId: String
        public var `extension`: String
        public var eventType: Int
        public var eventId: String
    }

    static let fields = ["call_log", "call_log_id", "telnyx_recording_id", "voipnow_event", "agent_email"]

    /// Parses and checks a sidecar document; every problem names its field.
    public static func parse(_ data: Data) -> (sidecar: Sidecar?, problems: [FieldProblem]) {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "malformed"
            return (nil, [FieldProblem(field: "(document)", reason: "not valid JSON: \(detail)")])
        }
        guard let object = json as? [String: Any] else {
            return (nil, [FieldProblem(field: "(document)", reason: "must be a JSON object")])
        }
        var problems: [FieldProblem] = []
        for key in object.keys.sorted() where !fields.contains(key) {
            problems.append(FieldProblem(field: key, reason: "is not a sidecar field (known: \(fields.joined(separator: ", ")))"))
        }
        var sidecar = Sidecar()
        switch object["call_log_id"] {
        case nil, is NSNull: break
        case let s as String where !s.isEmpty: sidecar.callLogId = s
        case let n as NSNumber where !n.isBoolean && n.intValue > 0: sidecar.callLogId = n.stringValue
        default: problems.append(FieldProblem(field: "call_log_id", reason: "must be a call log id (a non-empty string)"))
        }
        switch object["call_log"] {
        case nil, is NSNull:
            if sidecar.callLogId == nil {
                problems.append(FieldProblem(field: "call_log", reason: "is required unless call_log_id names an existing call log"))
            }
        case let fields as [String: Any]:
            let (draft, found) = CallLogDraft.parse(fields)
            sidecar.callLog = draft
            problems += found
        default:
            problems.append(FieldProblem(field: "call_log", reason: "must be an object with the fields of POST /v1/callLogs"))
        }
        // Provider references are checked by the rule the delete addresses them with: a
        // reference the delete would refuse never gets uploaded.
        switch object["telnyx_recording_id"] {
        case nil, is NSNull: break
        case let s as String where TelnyxClient.recordingIDProblem(s) == nil: sidecar.telnyxRecordingId = s
        case let s as String:
            problems.append(FieldProblem(field: "telnyx_recording_id", reason: TelnyxClient.recordingIDProblem(s) ?? ""))
        default: problems.append(FieldProblem(field: "telnyx_recording_id", reason: "must be a Telnyx recording id (a UUID)"))
        }
        switch object["agent_email"] {
        case nil, is NSNull: break
        case let s as String where s.contains("@") && !s.contains(where: \.isWhitespace): sidecar.agentEmail = s.lowercased()
        default: problems.append(FieldProblem(field: "agent_email", reason: "must be an e-mail address (the call log's owner, matched against the Pipedrive users)"))
        }
        switch object["voipnow_event"] {
        case nil, is NSNull: break
        case let event as [String: Any]:
            let (reference, found) = parseVoipNow(event)
            sidecar.voipnowEvent = reference
            problems += found
        default:
            problems.append(FieldProblem(field: "voipnow_event", reason: "must be an object with user_id, extension, event_type and event_id"))
        }
        return (problems.isEmpty ? sidecar : nil, problems)
    }

    private static func parseVoipNow(_ event: [String: Any]) -> (VoipNowEventReference?, [FieldProblem]) {
        var problems: [FieldProblem] = []
        let known = ["user_id", "extension", "event_type", "event_id"]
        for key in event.keys.sorted() where !known.contains(key) {
            problems.append(FieldProblem(field: "voipnow_event.\(key)", reason: "is not a field (known: \(known.joined(separator: ", ")))"))
        }
        func text(_ key: String) -> String? {
            switch event[key] {
            case let s as String where !s.isEmpty: return s
            case let n as NSNumber where !n.isBoolean: return n.stringValue
            case nil, is NSNull:
                problems.append(FieldProblem(field: "voipnow_event.\(key)", reason: "is required (deleting without it would address every event on the extension)"))
            default:
                problems.append(FieldProblem(field: "voipnow_event.\(key)", reason: "must be a non-empty string"))
            }
            return nil
        }
        let user = text("user_id"), ext = text("extension"), id = text("event_id")
        var type: Int?
        switch event["event_type"] {
        case let n as NSNumber where !n.isBoolean && n.doubleValue == n.doubleValue.rounded() && n.intValue >= 0:
            type = n.intValue
        case nil, is NSNull:
            problems.append(FieldProblem(field: "voipnow_event.event_type", reason: "is required (deleting without it would address every event on the extension)"))
        default:
            problems.append(FieldProblem(field: "voipnow_event.event_type", reason: "must be a non-negative integer"))
        }
        guard let user, let ext, let type, let id, problems.isEmpty else { return (nil, problems) }
        if let problem = VoipNowEventAddress.problem(userId: user, extension: ext, eventType: type, eventId: id) {
            return (nil, [FieldProblem(field: "voipnow_event.\(problem.field)", reason: problem.reason)])
        }
        return (VoipNowEventReference(userId: user, extension: ext, eventType: type, eventId: id), problems)
    }

    /// The call's length from the sidecar (end − start, or `duration`), when it says.
    public var declaredCallSeconds: Double? {
        guard let log = callLog else { return nil }
        if let end = log.endTime.flatMap(CallLogDraft.parseTime), let start = CallLogDraft.parseTime(log.startTime) {
            return end.timeIntervalSince(start)
        }
        return log.duration.flatMap(Double.init)
    }
}

extension NSNumber {
    var isBoolean: Bool {
        let type = String(cString: objCType)
        return type == "c" || type == "B"
    }
}

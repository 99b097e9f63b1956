import Foundation
import HTTPTypes

/// What `POST /_sandbox/telnyx/calls` (or the continuous load) asks for: `count` calls alike but
/// for their ids, numbers and lengths.
struct TelnyxCallOrder: Sendable, Equatable {
    var count = 1
    /// Each call's recording length is drawn from this range (seeded).
    var seconds: ClosedRange<Int> = 120...120
    var answered = true
    /// Default: `normal_clearing` for an answered call, `timeout` for another.
    var hangupCause: String?
    /// `incoming` or `outgoing`.
    var direction = "incoming"
    /// The numbers (default: the company's line and a new other party per call).
    var from: String?
    var to: String?
    var format = "wav"
    /// Whether `call.recording.saved` carries `recording_id`, `format`, `from`, `to`,
    /// `start_time` and `end_time` (as live deliveries do), or only the documented fields.
    var recordingIDInEvent = true
    /// Whether `call.initiated`, `call.answered` and `call.hangup` are sent at all.
    var callEvents = true
    /// Seconds the event's links stay valid (0: already expired).
    var linkTTL = TelnyxLinks.defaultTTL
    /// Draws the lengths (and the fault choices of these calls' deliveries).
    var seed: UInt64?

    static let maximumCount = 10_000
    static let maximumSeconds = 14_400

    /// Reads a request body; throws a 400 naming the field and the reason.
    static func parse(_ body: JSONValue) throws(APIError) -> TelnyxCallOrder {
        var order = TelnyxCallOrder()
        guard case .object(let members) = body else { throw APIError(.badRequest, "the body must be a JSON object") }
        let known: Set<String> = ["count", "seconds", "answered", "hangup_cause", "direction", "from", "to", "format",
                                  "recording_id_in_event", "call_events", "link_ttl", "seed"]
        if let unknown = members.keys.sorted().first(where: { !known.contains($0) }) {
            throw APIError(.badRequest, "\(unknown): unknown field (known: \(known.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws(APIError) -> Int? {
            switch members[key] {
            case nil, .null?: return nil
            case .int(let value)? where range.contains(Int(value)): return Int(value)
            default: throw APIError(.badRequest, "\(key): must be an integer \(range.lowerBound)…\(range.upperBound)")
            }
        }
        func bool(_ key: String) throws(APIError) -> Bool? {
            switch members[key] {
            case nil, .null?: return nil
            case .bool(let value)?: return value
            default: throw APIError(.badRequest, "\(key): must be true or false")
            }
        }
        func text(_ key: String, _ allowed: Set<String>? = nil) throws(APIError) -> String? {
            switch members[key] {
            case nil, .null?: return nil
            case .string(let value)? where allowed?.contains(value) ?? !value.isEmpty: return value
            default:
                throw APIError(.badRequest, "\(key): must be \(allowed.map { $0.sorted().joined(separator: " or ") } ?? "a non-empty string")")
            }
        }
        func number(_ key: String) throws(APIError) -> String? {
            guard let value = try text(key) else { return nil }
            guard value.hasPrefix("+"), value.count >= 8, value.count <= 16, value.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw APIError(.badRequest, "\(key): must be an E.164 number such as +442071838750")
            }
            return value
        }
        order.count = try int("count", 1...maximumCount) ?? order.count
        switch members["seconds"] {
        case nil, .null?: break
        case .int(let value)? where (1...maximumSeconds).contains(Int(value)):
            order.seconds = Int(value)...Int(value)
        case .array(let bounds)?:
            guard bounds.count == 2, case .int(let low) = bounds[0], case .int(let high) = bounds[1],
                  low >= 1, low <= high, high <= maximumSeconds
            else { throw APIError(.badRequest, "seconds: must be [LOW, HIGH] with 1 ≤ LOW ≤ HIGH ≤ \(maximumSeconds)") }
            order.seconds = Int(low)...Int(high)
        default:
            throw APIError(.badRequest, "seconds: must be an integer 1…\(maximumSeconds) or [LOW, HIGH]")
        }
        order.answered = try bool("answered") ?? order.answered
        order.hangupCause = try text("hangup_cause")
        order.direction = try text("direction", ["incoming", "outgoing"]) ?? order.direction
        order.from = try number("from")
        order.to = try number("to")
        order.format = try text("format", ["wav", "mp3"]) ?? order.format
        order.recordingIDInEvent = try bool("recording_id_in_event") ?? order.recordingIDInEvent
        order.callEvents = try bool("call_events") ?? order.callEvents
        order.linkTTL = try int("link_ttl", 0...604_800) ?? order.linkTTL
        switch members["seed"] {
        case nil, .null?: break
        case .int(let value)? where value >= 0: order.seed = UInt64(value)
        default: throw APIError(.badRequest, "seed: must be a non-negative integer")
        }
        return order
    }
}

/// A small seeded generator (SplitMix64): the same seed draws the same lengths and faults.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One event of a simulated call, made when the call is (so every delivery of it, duplicates
/// and retries included, carries the same id and payload).
struct TelnyxOutgoingEvent: Sendable {
    let id: String
    let type: String
    let occurredAt: Date
    let session: String
    let payload: JSONValue

    /// The webhook body of delivery `attempt` to `url`.
    func body(attempt: Int, deliveredTo url: String) -> Data {
        let document: JSONValue = [
            "data": [
                "record_type": "event", "event_type": .string(type), "id": .string(id),
                "occurred_at": .string(TelnyxCallBook.iso(occurredAt)), "payload": payload,
            ],
            "meta": ["attempt": .int(Int64(attempt)), "delivered_to": .string(url)],
        ]
        return document.encoded()
    }
}

/// A call just simulated: the call, its recording, and its events in the order they happened.
struct PlacedTelnyxCall: Sendable {
    var call: SandboxTelnyxCall
    var recording: SandboxTelnyxRecording
    var events: [TelnyxOutgoingEvent]
}

/// The simulated calls (in memory: they are a run's traffic, not state to keep), and the numbers
/// handed out to them.
actor TelnyxCallBook {
    /// The company's line: the `to` of incoming calls, the `from` of outgoing ones.
    static let companyNumber = "+442071838750"
    /// The connection (Call Control application) every simulated call belongs to.
    static let connectionID = "1494404757140276705"

    private var calls: [SandboxTelnyxCall] = []
    private var index: [String: Int] = [:]
    /// Other parties are `+44 20 3xxx xxxx` (London numbers libphonenumber calls valid), one per
    /// call, counting from a random start.
    private var nextNumber = Int.random(in: 0..<9_000_000)

    /// Simulates the calls of `order`, ending at `now` (their times are backdated: the recording
    /// is saved now). `random` draws the lengths.
    func place(_ order: TelnyxCallOrder, random: inout SeededRandom, links: TelnyxLinks, now: Date = Date()) -> [PlacedTelnyxCall] {
        (0..<order.count).map { _ in
            let seconds = Int.random(in: order.seconds, using: &random)
            let ring = order.answered ? Int.random(in: 2...8, using: &random) : 0
            let other = otherParty()
            let incoming = order.direction == "incoming"
            let from = order.from ?? (incoming ? other : Self.companyNumber)
            let to = order.to ?? (incoming ? Self.companyNumber : other)
            let end = now.addingTimeInterval(-1)
            let talkStart = end.addingTimeInterval(-Double(seconds))
            let start = talkStart.addingTimeInterval(-Double(ring))
            let call = SandboxTelnyxCall(
                callSessionId: UUID().uuidString.lowercased(), callLegId: UUID().uuidString.lowercased(),
                callControlId: "v3:" + randomAlphanumeric(40), connectionId: Self.connectionID,
                recordingId: UUID().uuidString.lowercased(), direction: order.direction, from: from, to: to, seconds: seconds,
                answered: order.answered, hangupCause: order.hangupCause ?? (order.answered ? "normal_clearing" : "timeout"),
                startTime: start, answerTime: order.answered ? talkStart : nil, endTime: end, format: order.format,
                linkTtl: order.linkTTL, recordingIdInEvent: order.recordingIDInEvent, callEvents: order.callEvents)
            let saved = end.addingTimeInterval(1)
            let recording = SandboxTelnyxRecording(
                id: call.recordingId, callControlId: call.callControlId, callLegId: call.callLegId, callSessionId: call.callSessionId,
                connectionId: call.connectionId, from: from, to: to, channels: "single", source: "call", durationMillis: seconds * 1000,
                initiatedBy: "StartCallRecordingAPI", recordingStartedAt: Self.iso(talkStart), recordingEndedAt: Self.iso(end),
                createdAt: Self.iso(saved), updatedAt: Self.iso(saved), deleted: false, format: order.format)
            index[call.callSessionId] = calls.count
            calls.append(call)
            return PlacedTelnyxCall(call: call, recording: recording,
                                    events: Self.events(call, recording: recording, saved: saved, links: links, now: now))
        }
    }

    /// The webhooks of a call, in the order they happened: `call.initiated`, `call.answered` (if
    /// answered), `call.hangup` (unless `call_events` is false), `call.recording.saved`.
    static func events(_ call: SandboxTelnyxCall, recording: SandboxTelnyxRecording, saved: Date, links: TelnyxLinks,
                       now: Date) -> [TelnyxOutgoingEvent] {
        var common: [String: JSONValue] = [
            "call_control_id": .string(call.callControlId), "call_leg_id": .string(call.callLegId),
            "call_session_id": .string(call.callSessionId), "connection_id": .string(call.connectionId), "client_state": nil,
        ]
        func event(_ type: String, _ at: Date, _ extra: [String: JSONValue]) -> TelnyxOutgoingEvent {
            TelnyxOutgoingEvent(id: UUID().uuidString.lowercased(), type: type, occurredAt: at, session: call.callSessionId,
                                payload: .object(common.merging(extra) { $1 }))
        }
        var events: [TelnyxOutgoingEvent] = []
        let start = JSONValue.string(iso(call.startTime))
        if call.callEvents {
            let numbers: [String: JSONValue] = ["from": .string(call.from), "to": .string(call.to), "direction": .string(call.direction)]
            events.append(event("call.initiated", call.startTime, numbers.merging([
                "start_time": start, "state": call.direction == "incoming" ? "parked" : "bridging",
            ]) { $1 }))
            if let answered = call.answerTime {
                events.append(event("call.answered", answered, numbers.merging(["start_time": start, "state": "answered"]) { $1 }))
            }
            events.append(event("call.hangup", call.endTime, numbers.merging([
                "start_time": start, "end_time": .string(iso(call.endTime)), "hangup_cause": .string(call.hangupCause),
                "hangup_source": call.direction == "incoming" ? "caller" : "callee", "sip_hangup_cause": "16", "state": "hangup",
            ]) { $1 }))
        }
        common["channels"] = "single"
        common["recording_started_at"] = .string(recording.recordingStartedAt)
        common["recording_ended_at"] = .string(recording.recordingEndedAt)
        common["recording_urls"] = .object(links.links(for: recording, ttl: call.linkTtl, now: now).mapValues { .string($0) })
        common["public_recording_urls"] = [:]
        if call.recordingIdInEvent {
            common["recording_id"] = .string(recording.id)
            common["format"] = .string(call.format)
            common["from"] = .string(call.from)
            common["to"] = .string(call.to)
            common["start_time"] = start
            common["end_time"] = .string(iso(call.endTime))
        }
        events.append(event("call.recording.saved", saved, [:]))
        return events
    }

    private func otherParty() -> String {
        defer { nextNumber = (nextNumber + 1) % 9_000_000 }
        return "+44203" + String(1_000_000 + nextNumber)
    }

    /// Records a delivery of one of `session`'s events.
    func record(_ delivery: SandboxTelnyxDelivery, session: String) {
        guard let position = index[session] else { return }
        calls[position].deliveries.append(delivery)
        if delivery.eventType == "call.recording.saved", calls[position].recordingSentAt == nil {
            calls[position].recordingSentAt = delivery.sentAt
        }
    }

    /// Every call, oldest first.
    func all() -> [SandboxTelnyxCall] { calls }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}

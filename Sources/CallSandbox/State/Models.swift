public import Foundation

/// A Pipedrive call log as the sandbox holds it, deleted ones included (introspection).
public struct SandboxCallLog: Sendable, Codable, Equatable {
    /// Opaque string id (`CA` + 32 hex digits), as Pipedrive's.
    public var id: String
    public var outcome: String
    public var toPhoneNumber: String
    public var fromPhoneNumber: String?
    /// UTC, normalised to `YYYY-MM-DD HH:MM:SS` (the API answers `YYYY-MM-DDTHH:MM:SS.000Z`).
    public var startTime: String
    public var endTime: String
    /// Seconds, a string as in the API.
    public var duration: String?
    public var subject: String?
    /// HTML, kept verbatim.
    public var note: String?
    public var userId: Int?
    public var activityId: Int
    public var personId: Int?
    public var orgId: Int?
    public var dealId: Int?
    public var leadId: String?
    public var companyId: Int
    public var hasRecording: Bool
    public var deleted: Bool
    public var createdAt: Date
    public var deletedAt: Date?
    /// The attached audio, if any (kept after deletion; its file is then removed).
    public var recording: SandboxRecording?

    enum CodingKeys: String, CodingKey {
        case id
        case outcome
        case toPhoneNumber = "to_phone_number"
        case fromPhoneNumber = "from_phone_number"
        case startTime = "start_time"
        case endTime = "end_time"
        case duration
        case subject
        case note
        case userId = "user_id"
        case activityId = "activity_id"
        case personId = "person_id"
        case orgId = "org_id"
        case dealId = "deal_id"
        case leadId = "lead_id"
        case companyId = "company_id"
        case hasRecording = "has_recording"
        case deleted
        case createdAt = "created_at"
        case deletedAt = "deleted_at"
        case recording
    }
}

/// Audio attached to a call log with `POST /v1/callLogs/{id}/recordings`.
public struct SandboxRecording: Sendable, Codable, Equatable {
    /// Size of the `file` part's content.
    public var bytes: Int64
    /// Lowercase hex SHA-256 of those bytes.
    public var sha256: String
    /// The part's `Content-Type`.
    public var contentType: String
    /// The part's `filename`.
    public var filename: String
    public var uploadedAt: Date
    /// False once the call log was deleted (which deletes the audio).
    public var stored: Bool

    enum CodingKeys: String, CodingKey {
        case bytes
        case sha256
        case contentType = "content_type"
        case filename
        case uploadedAt = "uploaded_at"
        case stored
    }
}

/// A Telnyx call recording (`RecordingResponseData`, api-contract §2.4).
public struct SandboxTelnyxRecording: Sendable, Codable, Equatable {
    public var id: String
    public var callControlId: String
    public var callLegId: String
    public var callSessionId: String
    public var connectionId: String
    public var from: String
    public var to: String
    public var channels: String
    public var source: String
    public var durationMillis: Int
    public var initiatedBy: String
    public var recordingStartedAt: String
    public var recordingEndedAt: String
    public var createdAt: String
    public var updatedAt: String
    public var deleted: Bool
    /// The format its audio is served in (`wav`, `mp3`) behind expiring links; nil for a
    /// recording seeded without audio (its `download_urls` is empty).
    public var format: String?

    enum CodingKeys: String, CodingKey {
        case id
        case callControlId = "call_control_id"
        case callLegId = "call_leg_id"
        case callSessionId = "call_session_id"
        case connectionId = "connection_id"
        case from
        case to
        case channels
        case source
        case durationMillis = "duration_millis"
        case initiatedBy = "initiated_by"
        case recordingStartedAt = "recording_started_at"
        case recordingEndedAt = "recording_ended_at"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case deleted
        case format
    }
}

/// A VoipNow PhoneCallEvent: an HTTP callback registered on an extension (not a recording).
public struct SandboxVoipNowEvent: Sendable, Codable, Equatable {
    public var id: String
    /// The numeric id of the user owning the extension.
    public var userId: String
    public var `extension`: String
    /// 0 DialIn, 1 DialOut, 2 Hangup.
    public var eventType: Int
    public var method: String
    public var url: String
    public var status: String
    public var note: String
    public var deleted: Bool

    enum CodingKeys: String, CodingKey {
        case id
        case userId = "user_id"
        case `extension`
        case eventType = "event_type"
        case method
        case url
        case status
        case note
        case deleted
    }
}

/// What the sandbox has served since it started.
public struct SandboxCounters: Sendable, Codable, Equatable {
    /// API requests (Pipedrive, Telnyx, VoipNow; not `/_sandbox/`).
    public var requests: Int = 0
    /// Per route, e.g. `POST /v1/callLogs`, `DELETE /v2/recordings/{id}`.
    public var requestsPerRoute: [String: Int] = [:]
    /// Pipedrive tokens spent today (persisted with the state).
    public var tokensSpent: Int = 0
    public var dailyTokens: Int = 0
    /// Every 429 served: burst, budget and injected.
    public var rateLimited: Int = 0
    /// 429s because the rolling window was full.
    public var burstLimited: Int = 0
    /// 429s because the daily budget was spent.
    public var budgetLimited: Int = 0
    /// 401s served.
    public var unauthorized: Int = 0
    /// Faults injected, per class (`429`, `500`, `503`, `slow`, `cut`, `lost`, `abuse`).
    public var faultsInjected: [String: Int] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case requests
        case requestsPerRoute = "requests_per_route"
        case tokensSpent = "tokens_spent"
        case dailyTokens = "daily_tokens"
        case rateLimited = "rate_limited"
        case burstLimited = "burst_limited"
        case budgetLimited = "budget_limited"
        case unauthorized
        case faultsInjected = "faults_injected"
    }
}

/// Everything `GET /_sandbox/state` shows.
public struct SandboxSnapshot: Sendable, Codable, Equatable {
    public var callLogs: [SandboxCallLog]
    public var telnyxRecordings: [SandboxTelnyxRecording]
    public var voipnowEvents: [SandboxVoipNowEvent]
    public var counters: SandboxCounters

    enum CodingKeys: String, CodingKey {
        case callLogs = "call_logs"
        case telnyxRecordings = "telnyx_recordings"
        case voipnowEvents = "voipnow_events"
        case counters
    }

    /// Reads the JSON `GET /_sandbox/state` answers.
    /// - Throws: `DecodingError` when `data` is not such a document.
    public static func decode(_ data: Data) throws -> SandboxSnapshot {
        try SnakeCaseJSON.decoder().decode(SandboxSnapshot.self, from: data)
    }
}

/// What is written to `sandbox-state.json`.
struct PersistedState: Codable, Sendable {
    static let currentVersion = 1
    var version = PersistedState.currentVersion
    var callLogs: [SandboxCallLog] = []
    var nextActivityId = 7001
    var telnyxRecordings: [SandboxTelnyxRecording] = []
    var voipnowEvents: [SandboxVoipNowEvent] = []
    /// Extension → owning user id (every extension ever seeded; deleting its events keeps it).
    var voipnowExtensions: [String: String] = [:]
    /// The UTC day `tokensSpent` belongs to (`YYYY-MM-DD`).
    var budgetDay = ""
    var tokensSpent = 0
    /// The CRM's rows (absent when it is empty, and in state files written before it existed).
    var crm: CRMSeed?

    enum CodingKeys: String, CodingKey {
        case version
        case callLogs = "call_logs"
        case nextActivityId = "next_activity_id"
        case telnyxRecordings = "telnyx_recordings"
        case voipnowEvents = "voipnow_events"
        case voipnowExtensions = "voipnow_extensions"
        case budgetDay = "budget_day"
        case tokensSpent = "tokens_spent"
        case crm
    }
}

/// JSON coders for the state file and the introspection routes (snake_case keys come from each
/// type's `CodingKeys`, so dictionary keys such as routes stay verbatim), ISO-8601 dates.
enum SnakeCaseJSON {
    static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        // Milliseconds: benchmarks time uploads from the outside by these dates (bench/watch.sh).
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        // With or without fractional seconds (state files written before milliseconds).
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
            if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(text) is not an ISO 8601 date")
        }
        return decoder
    }
}

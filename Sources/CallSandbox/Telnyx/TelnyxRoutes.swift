import Foundation
import HTTPTypes
import Hummingbird

/// `GET /v2/recordings`, `GET|DELETE /v2/recordings/{id}` (api-contract §2), and the audio
/// behind their expiring links, `GET /_sandbox/telnyx/media/{id}.{fmt}?expires=…&signature=…`.
struct TelnyxRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        router.get("/v2/recordings") { request, _ in try await list(request) }
        router.get("/v2/recordings/:id") { _, context in try await get(context) }
        router.delete("/v2/recordings/:id") { _, context in try await delete(context) }
        router.get("/_sandbox/telnyx/media/:file") { request, context in try await media(request, context) }
    }

    /// The audio, streamed; like a presigned S3 URL, a bad or expired link is a 403 with an XML
    /// body, a deleted recording a 404.
    private func media(_ request: Request, _ context: SandboxRequestContext) async throws -> Response {
        let file = percentDecoded(context.parameters.get("file") ?? "")
        let query = queryItems(request.uri.query)
        switch core.telnyx.links.check(file: file, expires: query["expires"], signature: query["signature"]) {
        case .valid: break
        case .expired: return Self.s3Error(.forbidden, code: "AccessDenied", "Request has expired")
        case .badSignature:
            return Self.s3Error(.forbidden, code: "AccessDenied", "The request signature we calculated does not match the signature you provided.")
        }
        let parts = file.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, let recording = await core.state.telnyxRecording(parts[0]), recording.format == parts[1] else {
            return Self.s3Error(.notFound, code: "NoSuchKey", "The specified key does not exist.")
        }
        switch parts[1] {
        case "mp3":
            let path = try await core.telnyx.mp3.path(millis: recording.durationMillis)
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return .data(data, contentType: "audio/mpeg")
        default:
            var headers = HTTPFields()
            headers[.contentType] = "audio/wav"
            return Response(status: .ok, headers: headers, body: TelnyxAudio.wavBody(id: recording.id, millis: recording.durationMillis))
        }
    }

    static func s3Error(_ status: HTTPResponse.Status, code: String, _ message: String) -> Response {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <Error><Code>\(code)</Code><Message>\(message)</Message><RequestId>\(randomHex(16).uppercased())</RequestId></Error>

            """
        return .data(Data(body.utf8), contentType: "application/xml", status: status)
    }

    private func list(_ request: Request) async throws -> Response {
        let query = queryItems(request.uri.query)
        func integer(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
            guard let text = query[name] else { return value }
            guard let number = Int(text), range.contains(number) else {
                throw APIError(.badRequest, code: "10015", title: "Bad Request",
                               "\(name) must be an integer between \(range.lowerBound) and \(range.upperBound == Int.max ? "∞" : String(range.upperBound)).")
            }
            return number
        }
        let number = try integer("page[number]", default: 1, in: 1...Int.max)
        let size = try integer("page[size]", default: 20, in: 1...250)
        let filter = try TelnyxRecordingFilter(query: query)
        let all = await core.state.telnyxRecordings(filter: filter)
        let page = all.dropFirst((number - 1).multipliedReportingOverflow(by: size).partialValue).prefix(size)
        let now = Date()
        return .json([
            "data": .array(page.map { apiObject($0, now: now) }),
            "meta": [
                "total_pages": .int(Int64((all.count + size - 1) / size)),
                "total_results": .int(Int64(all.count)),
                "page_number": .int(Int64(number)),
                "page_size": .int(Int64(size)),
            ],
        ])
    }

    private func get(_ context: SandboxRequestContext) async throws -> Response {
        guard let recording = await core.state.telnyxRecording(id(context)) else { throw notFound() }
        return .json(["data": apiObject(recording)])
    }

    private func delete(_ context: SandboxRequestContext) async throws -> Response {
        guard let recording = await core.state.deleteTelnyxRecording(id(context)) else { throw notFound() }
        return .json(["data": recording.apiObject(downloadURLs: [:])])
    }

    /// The recording as the API shows it, with fresh links (``TelnyxLinks/defaultTTL``).
    private func apiObject(_ recording: SandboxTelnyxRecording, now: Date = Date()) -> JSONValue {
        recording.apiObject(downloadURLs: core.telnyx.links.links(for: recording, ttl: TelnyxLinks.defaultTTL, now: now))
    }

    private func notFound() -> APIError {
        APIError(.notFound, code: "10005", title: "Resource not found", "The requested resource or URL could not be found.")
    }

    private func id(_ context: SandboxRequestContext) -> String {
        percentDecoded(context.parameters.get("id") ?? "")
    }
}

/// The `filter[…]` parameters of `GET /v2/recordings`: equality on the ids and numbers,
/// `created_at[gte]` / `created_at[lte]` compared as instants. Other filters are ignored.
struct TelnyxRecordingFilter: Sendable {
    var fields: [String: String] = [:]
    var createdFrom: Date?
    var createdUntil: Date?

    static let fieldNames: Set<String> = ["call_leg_id", "call_session_id", "call_control_id", "connection_id", "from", "to"]

    init(query: [String: String]) throws(APIError) {
        for (key, value) in query where key.hasPrefix("filter[") && key.hasSuffix("]") {
            let name = String(key.dropFirst(7).dropLast())
            switch name {
            case "created_at][gte": createdFrom = try Self.instant(value, key)
            case "created_at][lte": createdUntil = try Self.instant(value, key)
            case _ where Self.fieldNames.contains(name): fields[name] = value
            default: continue
            }
        }
    }

    /// An ISO 8601 date-time (fractional seconds optional), or a date (UTC midnight).
    static func instant(_ text: String, _ key: String) throws(APIError) -> Date {
        if let date = parseInstant(text) { return date }
        throw APIError(.badRequest, code: "10015", title: "Bad Request", "\(key) must be an ISO 8601 date-time, e.g. 2026-12-01T00:00:00Z.")
    }

    static func parseInstant(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return date }
        return try? Date(text + "T00:00:00Z", strategy: Date.ISO8601FormatStyle())
    }

    func matches(_ recording: SandboxTelnyxRecording) -> Bool {
        for (key, value) in fields {
            let field = switch key {
            case "call_leg_id": recording.callLegId
            case "call_session_id": recording.callSessionId
            case "call_control_id": recording.callControlId
            case "connection_id": recording.connectionId
            case "from": recording.from
            default: recording.to
            }
            if field != value { return false }
        }
        if createdFrom != nil || createdUntil != nil {
            guard let created = Self.parseInstant(recording.createdAt) else { return false }
            if let createdFrom, created < createdFrom { return false }
            if let createdUntil, created > createdUntil { return false }
        }
        return true
    }
}

extension SandboxTelnyxRecording {
    /// `RecordingResponseData` (api-contract §2.4).
    func apiObject(downloadURLs: [String: String]) -> JSONValue {
        [
            "record_type": "recording",
            "id": .string(id),
            "status": "completed",
            "channels": .string(channels),
            "source": .string(source),
            "download_urls": .object(downloadURLs.mapValues { .string($0) }),
            "duration_millis": .int(Int64(durationMillis)),
            "recording_started_at": .string(recordingStartedAt),
            "recording_ended_at": .string(recordingEndedAt),
            "created_at": .string(createdAt),
            "updated_at": .string(updatedAt),
            "call_control_id": .string(callControlId),
            "call_leg_id": .string(callLegId),
            "call_session_id": .string(callSessionId),
            "conference_id": nil,
            "connection_id": .string(connectionId),
            "from": .string(from),
            "to": .string(to),
            "initiated_by": .string(initiatedBy),
        ]
    }
}

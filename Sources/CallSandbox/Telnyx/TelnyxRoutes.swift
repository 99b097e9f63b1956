import Foundation
import HTTPTypes
import Hummingbird

/// `GET /v2/recordings`, `GET|DELETE /v2/recordings/{id}` (api-contract §2).
struct TelnyxRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        router.get("/v2/recordings") { request, _ in try await list(request) }
        router.get("/v2/recordings/:id") { _, context in try await get(context) }
        router.delete("/v2/recordings/:id") { _, context in try await delete(context) }
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
        var filters: [String: String] = [:]
        for (key, value) in query where key.hasPrefix("filter[") && key.hasSuffix("]") {
            filters[String(key.dropFirst(7).dropLast())] = value
        }
        let all = await core.state.telnyxRecordings(filters: filters)
        let page = all.dropFirst((number - 1).multipliedReportingOverflow(by: size).partialValue).prefix(size)
        return .json([
            "data": .array(page.map(\.apiObject)),
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
        return .json(["data": recording.apiObject])
    }

    private func delete(_ context: SandboxRequestContext) async throws -> Response {
        guard let recording = await core.state.deleteTelnyxRecording(id(context)) else { throw notFound() }
        return .json(["data": recording.apiObject])
    }

    private func notFound() -> APIError {
        APIError(.notFound, code: "10005", title: "Resource not found", "The requested resource or URL could not be found.")
    }

    private func id(_ context: SandboxRequestContext) -> String {
        percentDecoded(context.parameters.get("id") ?? "")
    }
}

extension SandboxTelnyxRecording {
    /// `RecordingResponseData` (api-contract §2.4).
    var apiObject: JSONValue {
        [
            "record_type": "recording",
            "id": .string(id),
            "status": "completed",
            "channels": .string(channels),
            "source": .string(source),
            "download_urls": [:],
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

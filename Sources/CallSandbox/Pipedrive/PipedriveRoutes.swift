import Foundation
import HTTPTypes
import Hummingbird

/// `POST|GET /v1/callLogs`, `GET|DELETE /v1/callLogs/{id}`, `POST /v1/callLogs/{id}/recordings`
/// (also under `/api/v1`), as api-contract §1 describes them.
struct PipedriveRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        for prefix in ["/v1", "/api/v1"] {
            router.post("\(prefix)/callLogs") { request, _ in try await create(request) }
            router.get("\(prefix)/callLogs") { request, _ in try await list(request) }
            router.get("\(prefix)/callLogs/:id") { _, context in try await get(context) }
            router.delete("\(prefix)/callLogs/:id") { _, context in try await delete(context) }
            router.post("\(prefix)/callLogs/:id/recordings") { request, context in try await upload(request, context: context) }
        }
    }

    private func create(_ request: Request) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let data = Data(buffer.readableBytesView)
        let json: JSONValue
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            json = .object([:])  // no body: the first missing field is reported
        } else if let parsed = JSONValue.parse(data) {
            json = parsed
        } else {
            throw APIError(.badRequest, "Invalid JSON in the request body.")
        }
        let draft = try CallLogDraft.validate(json)
        if let refusal = await core.state.crmRefusal(draft) { throw APIError(.badRequest, refusal) }
        let log = await core.state.createCallLog(draft)
        return .json(["success": true, "data": log.apiObject])
    }

    private func list(_ request: Request) async throws -> Response {
        let query = queryItems(request.uri.query)
        var start = 0
        if let text = query["start"] {
            guard let value = Int(text), value >= 0 else { throw APIError(.badRequest, "\"start\" must be an integer greater than or equal to 0.") }
            start = value
        }
        var limit = 50
        if let text = query["limit"] {
            guard let value = Int(text), value >= 1 else { throw APIError(.badRequest, "\"limit\" must be an integer greater than or equal to 1.") }
            limit = min(value, 50)  // this endpoint's upper bound
        }
        let (page, more) = await core.state.listCallLogs(start: start, limit: limit)
        return .v1Page(page.map(\.apiObject), start: start, limit: limit, more: more)
    }

    private func get(_ context: SandboxRequestContext) async throws -> Response {
        let log = try await core.state.liveCallLog(id(context))
        return .json(["success": true, "data": log.apiObject])
    }

    private func delete(_ context: SandboxRequestContext) async throws -> Response {
        try await core.state.deleteCallLog(id(context))
        return .json(["success": true])
    }

    /// Streams the multipart body to a file while hashing it, checks it is MP3, then attaches it.
    private func upload(_ request: Request, context: SandboxRequestContext) async throws -> Response {
        let id = id(context)
        try await core.state.checkRecordable(id)
        guard let boundary = RecordingReceiver.boundary(contentType: request.headers[.contentType]) else {
            throw APIError(.badRequest, "No files were provided with the request.")
        }
        var cutAfter: Int64?
        if context.faults.contains(.cut) {
            let length = request.headers[.contentLength].flatMap { Int64($0) }
            cutAfter = max(1, (length ?? 128 << 10) / 2)
        }
        let file = try await RecordingReceiver.receive(
            request.body, boundary: boundary, to: core.files.newUploadPath(),
            maximumBytes: core.configuration.maximumRecordingBytes, cutAfter: cutAfter,
            cut: { await context.dropConnection() })
        do {
            if let problem = RecordingCheck.problem(path: file.path) {
                throw APIError(.badRequest, "The file is not a playable MP3 recording: \(problem)")
            }
            try await core.state.attachRecording(id, file: file)
        } catch {
            try? FileManager.default.removeItem(atPath: file.path)
            throw error
        }
        return .json(["success": true])
    }

    private func id(_ context: SandboxRequestContext) -> String {
        percentDecoded(context.parameters.get("id") ?? "")
    }
}

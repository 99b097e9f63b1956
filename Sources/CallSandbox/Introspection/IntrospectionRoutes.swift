import Foundation
import HTTPTypes
import Hummingbird

/// `/_sandbox/…`: state, seeding and test helpers. No credentials; loopback clients only.
///
/// - `GET /_sandbox/state`: ``SandboxSnapshot`` as JSON.
/// - `POST /_sandbox/telnyx/recordings` `{id?, call_leg_id?, from?, to?, …}` → 201 `{id, data}`.
/// - `POST /_sandbox/pipedrive/callLogs` `{id}` → 201 (200 when it existed): a call log made
///   before callrec ran (what a sidecar's `call_log_id` names).
/// - `POST /_sandbox/voipnow/events` `{user_id, extension, event_type, url?, method?, note?}` → 201 `{id, data}`.
/// - `GET /_sandbox/pipedrive/callLogs/{id}/recording`: the stored audio bytes.
/// - `POST /_sandbox/pipedrive/budget/reset`: a new budget day.
struct IntrospectionRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        router.get("/_sandbox/state") { _, _ in
            let snapshot = await core.state.snapshot()
            let data = try SnakeCaseJSON.encoder(pretty: true).encode(snapshot)
            return Response.data(data, contentType: "application/json; charset=utf-8")
        }
        router.post("/_sandbox/telnyx/recordings") { request, _ in
            let body = try await Self.jsonBody(request)
            let id: String?
            switch body["id"] {
            case .string(let text)?:
                guard UUID(uuidString: text) != nil else { throw APIError(.badRequest, "id must be a UUID") }
                id = text
            case nil, .null?: id = nil
            default: throw APIError(.badRequest, "id must be a UUID string")
            }
            let recording = await core.state.seedTelnyxRecording(id: id, overrides: body)
            return Response.json(["id": .string(recording.id), "data": recording.apiObject(downloadURLs: [:])], status: .created)
        }
        router.post("/_sandbox/pipedrive/callLogs") { request, _ in
            let body = try await Self.jsonBody(request)
            guard case .string(let id)? = body["id"], !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber }) else {
                throw APIError(.badRequest, "id must be a non-empty alphanumeric string")
            }
            let existed = await core.state.callLog(id) != nil
            let log = await core.state.seedCallLog(id: id, startTime: "2026-01-01 00:00:00")
            return Response.json(["id": .string(log.id)], status: existed ? .ok : .created)
        }
        router.post("/_sandbox/voipnow/events") { request, _ in
            let body = try await Self.jsonBody(request)
            guard case .string(let number)? = body["extension"], !number.isEmpty, number != "@self" else {
                throw APIError(.badRequest, "extension (a string such as 0003*210) is required")
            }
            guard case .int(let type)? = body["event_type"], (0...2).contains(type) else {
                throw APIError(.badRequest, "event_type must be 0 (DialIn), 1 (DialOut) or 2 (Hangup)")
            }
            var user = "@me"
            if case .string(let text)? = body["user_id"] { user = text } else if case .int(let number)? = body["user_id"] { user = String(number) }
            func text(_ key: String) -> String? { if case .string(let value)? = body[key] { value } else { nil } }
            let event = await core.state.seedVoipNowEvent(
                userId: user, extension: number, type: Int(type), url: text("url"), method: text("method"), note: text("note"))
            let data = try SnakeCaseJSON.encoder().encode(event)
            return Response.json(["id": .string(event.id), "data": JSONValue.parse(data) ?? nil], status: .created)
        }
        router.get("/_sandbox/pipedrive/callLogs/:id/recording") { _, context in
            let id = percentDecoded(context.parameters.get("id") ?? "")
            guard let path = await core.state.recordingPath(id), let log = await core.state.callLog(id),
                  let data = FileManager.default.contents(atPath: path)
            else { throw APIError(.notFound, "no stored recording for call log \(id)") }
            return Response.data(data, contentType: log.recording?.contentType ?? "audio/mpeg")
        }
        router.post("/_sandbox/pipedrive/budget/reset") { _, _ in
            await core.state.resetBudget()
            return Response.json(["tokens_spent": 0])
        }
    }

    static func jsonBody(_ request: Request) async throws -> JSONValue {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        if buffer.readableBytes == 0 { return .object([:]) }
        guard let json = JSONValue.parse(Data(buffer.readableBytesView)), case .object = json else {
            throw APIError(.badRequest, "the body must be a JSON object")
        }
        return json
    }
}

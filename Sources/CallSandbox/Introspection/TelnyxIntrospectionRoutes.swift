import Foundation
import HTTPTypes
import Hummingbird

/// `/_sandbox/telnyx/…`: the Telnyx that calls back (loopback clients only, no credentials).
///
/// - `POST /_sandbox/telnyx/calls` ``TelnyxCallOrder`` → 201 `{seed, calls: [call + recording]}`:
///   simulates calls, adds their recordings, sends their webhooks.
/// - `GET /_sandbox/telnyx/calls` → `{calls: [SandboxTelnyxCall]}` with deliveries and `audio_at`.
/// - `POST /_sandbox/telnyx/webhook` `{"url": "http://…" | null}` → 200 `{url}`: where webhooks go.
/// - `GET /_sandbox/telnyx/public-key` → `{"public_key": "<base64>"}`: what they are signed with.
struct TelnyxIntrospectionRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        router.post("/_sandbox/telnyx/calls") { request, _ in
            let order = try TelnyxCallOrder.parse(try await IntrospectionRoutes.jsonBody(request))
            let (placed, seed) = try await core.telnyx.place(order)
            let encoder = SnakeCaseJSON.encoder()
            let calls: [JSONValue] = try placed.map { item in
                guard case .object(var call)? = JSONValue.parse(try encoder.encode(item.call)) else { return nil }
                call["recording"] = item.recording.apiObject(
                    downloadURLs: core.telnyx.links.links(for: item.recording, ttl: TelnyxLinks.defaultTTL))
                return .object(call)
            }
            return Response.json(["seed": .int(Int64(bitPattern: seed)), "calls": .array(calls)], status: .created)
        }
        router.get("/_sandbox/telnyx/calls") { _, _ in
            let calls = await core.telnyx.calls()
            let data = try SnakeCaseJSON.encoder().encode(["calls": calls])
            return Response.data(data, contentType: "application/json; charset=utf-8")
        }
        router.post("/_sandbox/telnyx/webhook") { request, _ in
            let body = try await IntrospectionRoutes.jsonBody(request)
            switch body["url"] {
            case .string(let url)?:
                var check = core.configuration
                check.telnyxWebhook = url
                do { try check.validate() } catch let error as SandboxError { throw APIError(.badRequest, "url: \(error.message)") }
                core.telnyx.webhooks.url = url
            case .null?:
                core.telnyx.webhooks.url = nil
            default:
                throw APIError(.badRequest, "url: must be an http(s) URL, or null")
            }
            return Response.json(["url": .orNull(core.telnyx.webhooks.url)])
        }
        router.get("/_sandbox/telnyx/public-key") { _, _ in
            Response.json(["public_key": .string(core.telnyx.webhooks.publicKey)])
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird

/// `DELETE /uapi/extensions/{userId}/{extension}/phoneCallEvents[/{eventType}[/{eventId}]]`
/// (api-contract §3.2), with the real API's trap: without a type and an id it deletes every
/// event on the extension.
///
/// 200 answers the deleted ids as `[{"id": "…"}, …]`; 204 when there was nothing to delete.
struct VoipNowRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        let base = "/uapi/extensions/:user/:extension/phoneCallEvents"
        router.delete(RouterPath(base)) { _, context in try await delete(context, type: false, id: false) }
        router.delete(RouterPath(base + "/:type")) { _, context in try await delete(context, type: true, id: false) }
        router.delete(RouterPath(base + "/:type/:id")) { _, context in try await delete(context, type: true, id: true) }
    }

    private func delete(_ context: SandboxRequestContext, type hasType: Bool, id hasId: Bool) async throws -> Response {
        func parameter(_ name: String) -> String { percentDecoded(context.parameters.get(name) ?? "") }
        let deleted = try await core.state.deleteVoipNowEvents(
            userId: parameter("user"), extension: parameter("extension"),
            type: hasType ? parameter("type") : nil, id: hasId ? parameter("id") : nil)
        guard !deleted.isEmpty else { return Response(status: .noContent) }
        return .json(.array(deleted.map { ["id": .string($0)] }))
    }
}

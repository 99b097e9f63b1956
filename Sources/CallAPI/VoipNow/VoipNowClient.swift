import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One VoipNow phone-call event, addressed completely. There is deliberately no way to build a
/// delete for "every event of an extension" or "every event of a type": with the type or the id
/// left out, the real DELETE removes all of them (research/api-contract.md §3.2).
public struct VoipNowEventAddress: Sendable, Equatable {
    public let userId: String
    public let `extension`: String
    public let eventType: Int
    public let eventId: String

    /// Refuses any missing or empty part.
    public init(userId: String, extension ext: String, eventType: Int, eventId: String) throws {
        let trimmed = [userId, ext, eventId].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard !trimmed[0].isEmpty else { throw APIError(.configuration, api: .voipnow, "a VoipNow event needs its user id") }
        guard !trimmed[1].isEmpty, trimmed[1] != "@self" else {
            throw APIError(.configuration, api: .voipnow, "a VoipNow event needs its extension (not @self)")
        }
        guard eventType >= 0 else { throw APIError(.configuration, api: .voipnow, "a VoipNow event type is 0 or more, not \(eventType)") }
        guard !trimmed[2].isEmpty else {
            throw APIError(.configuration, api: .voipnow, "a VoipNow event needs its id: without it the delete would remove every event on the extension")
        }
        // `.` and `..` would be resolved away by a proxy or server, widening the delete.
        for part in trimmed where part == "." || part == ".." {
            throw APIError(.configuration, api: .voipnow, "\"\(part)\" is not a usable VoipNow path segment")
        }
        self.userId = trimmed[0]
        self.extension = trimmed[1]
        self.eventType = eventType
        self.eventId = trimmed[2]
    }

    /// `/uapi/extensions/{userId}/{extension}/phoneCallEvents/{type}/{id}`, each part encoded
    /// once (`*` in `0003*210` stays as it is). Always five non-empty segments after `/uapi/`.
    public var path: String {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_~*@"))  // `.` is encoded too
        func enc(_ s: String) -> String { s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s }
        return "/uapi/extensions/\(enc(userId))/\(enc(self.extension))/phoneCallEvents/\(eventType)/\(enc(eventId))"
    }
}

/// VoipNow UnifiedAPI: deleting one phone-call event.
public struct VoipNowClient: Sendable {
    public let baseURL: String
    let token: Secret
    let transport: Transport
    let backoff = Backoff()

    /// - Parameter baseURL: the server (`https://voip.example.com`); `/uapi/…` is appended.
    public init(baseURL: String, token: Secret, httpClient: HTTPClient, logger: Logger) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        transport = Transport(client: httpClient, api: .voipnow, logger: logger)
    }

    public enum DeleteOutcome: Sendable, Equatable {
        /// 200 with the ids that were deleted.
        case deleted(ids: [String])
        /// 204, or the id is no longer valid: nothing (left) to delete.
        case alreadyGone
    }

    public func deleteEvent(_ address: VoipNowEventAddress) async throws -> DeleteOutcome {
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: baseURL + address.path)
            request.method = .DELETE
            request.headers.add(name: "authorization", value: "Bearer \(token.reveal())")
            request.headers.add(name: "accept", value: "application/json")
            let r: APIResponse
            do {
                r = try await transport.send(request, timeout: .seconds(30), operation: "DELETE phoneCallEvent")
            } catch let error as APIError where attempt < backoff.maxAttempts && [.transient, .unknownOutcome, .unreachable].contains(error.code) {
                try await Task.sleep(for: backoff.delay(attempt: attempt))  // idempotent: the id is explicit
                continue
            }
            switch r.status {
            case 204: return .alreadyGone
            case 200..<300: return .deleted(ids: Self.ids(in: r.json))
            default:
                let error = (r.json as? [String: Any])?["error"] as? [String: Any]
                let code = error?["code"] as? String
                let message = PipedriveClient.cut((error?["message"] as? String) ?? "HTTP \(r.status)")
                // A retried delete finds its id gone: that is the wanted state.
                if code == "pce_id_invalid" { return .alreadyGone }
                let kind: APIError.Code = switch r.status {
                case 401, 403: .credentialsRefused
                case 500..<600: .transient
                default: .permanent
                }
                let text = kind == .credentialsRefused ? "VoipNow refused the access token (\(r.status): \(message)): fix VOIPNOW_ACCESS_TOKEN" : message
                let failure = APIError(kind, api: .voipnow, status: r.status, "DELETE phoneCallEvent: \(text)", serverCode: code)
                guard kind == .transient, attempt < backoff.maxAttempts else { throw failure }
                try await Task.sleep(for: backoff.delay(attempt: attempt))
            }
        }
    }

    static func ids(in json: Any?) -> [String] {
        let items: [Any] = (json as? [Any]) ?? ((json as? [String: Any])?["deleted"] as? [Any]) ?? []
        return items.compactMap { item in
            if let s = item as? String { return s }
            if let o = item as? [String: Any] { return (o["id"] as? String) ?? (o["id"] as? NSNumber)?.stringValue }
            return nil
        }
    }
}

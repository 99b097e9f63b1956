public import AsyncHTTPClient
import CallSupport
import Foundation
public import Logging
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

    /// Why a reference cannot be addressed, naming its field (`user_id`, `extension`,
    /// `event_type`, `event_id`).
    public struct Problem: Sendable, Hashable, CustomStringConvertible {
        public var field: String
        public var reason: String
        public var description: String { "\(field): \(reason)" }
    }

    /// The one rule for a VoipNow reference: what this initializer refuses, and what a sidecar
    /// is refused for (so that nothing is uploaded whose event the delete could never address).
    /// Every part must be present and non-blank; the extension is not `@self`; the type is 0 or
    /// more; no part holds a control character, or a `.` or `..` segment between `/` or `\`
    /// (`0003*210/..`): a proxy or server that decodes and normalises the path would address
    /// another resource — `…/phoneCallEvents/2/x/..` is every event of that type. A `/` alone is
    /// encoded (`%2F`) and kept. Surrounding white space is trimmed.
    public static func problem(userId: String, extension ext: String, eventType: Int, eventId: String) -> Problem? {
        let parts = [("user_id", userId), ("extension", ext), ("event_id", eventId)].map {
            (field: $0.0, value: $0.1.trimmingCharacters(in: .whitespacesAndNewlines), blank: !$0.1.isEmpty)
        }
        for part in parts where part.value.isEmpty {
            let what = part.blank ? "must not be blank" : "is required"
            let reason = switch part.field {
            case "event_id": "\(what): without it the delete would remove every event on the extension"
            default: "\(what) (a VoipNow event is addressed by user, extension, type and id)"
            }
            return Problem(field: part.field, reason: reason)
        }
        if parts[1].value == "@self" {
            return Problem(field: "extension", reason: "must name the extension (@self is not allowed in a delete)")
        }
        if eventType < 0 { return Problem(field: "event_type", reason: "must be 0 or more, not \(eventType)") }
        for part in parts {
            if part.value.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) }) {
                return Problem(field: part.field, reason: "must not hold a control character")
            }
            let segments = part.value.split(omittingEmptySubsequences: false) { $0 == "/" || $0 == "\\" }
            if segments.contains(where: { $0 == "." || $0 == ".." }) {
                return Problem(field: part.field, reason: "\"\(part.value)\" holds a \".\" or \"..\" path segment: a server would resolve it away and address other events")
            }
        }
        return nil
    }

    /// Refuses what ``problem(userId:extension:eventType:eventId:)`` finds.
    public init(userId: String, extension ext: String, eventType: Int, eventId: String) throws {
        if let problem = Self.problem(userId: userId, extension: ext, eventType: eventType, eventId: eventId) {
            throw APIError(.configuration, api: .voipnow, "a VoipNow event's \(problem)")
        }
        self.userId = userId.trimmingCharacters(in: .whitespacesAndNewlines)
        self.extension = ext.trimmingCharacters(in: .whitespacesAndNewlines)
        self.eventType = eventType
        self.eventId = eventId.trimmingCharacters(in: .whitespacesAndNewlines)
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
    let backoff = Backoff.api
    /// The clock the waits between tries are slept on.
    let clock: AnyClock

    /// - Parameter baseURL: the server (`https://voip.example.com`); `/uapi/…` is appended.
    public init(baseURL: String, token: Secret, httpClient: HTTPClient, logger: Logger,
                clock: some Clock<Duration> = ContinuousClock()) {
        self.clock = AnyClock(clock)
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
            } catch let error as APIError where attempt < maxRequestAttempts && [.transient, .unknownOutcome, .unreachable].contains(error.code) {
                try await clock.sleep(for: backoff.delay(afterAttempt: attempt))  // idempotent: the id is explicit
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
                guard kind == .transient, attempt < maxRequestAttempts else { throw failure }
                try await clock.sleep(for: backoff.delay(afterAttempt: attempt))
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

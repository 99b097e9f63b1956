public import AsyncHTTPClient
import CallSupport
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// A Telnyx call recording (the fields callrec uses; research/api-contract.md §2.4).
public struct TelnyxRecording: Sendable, Equatable {
    public var id: String
    public var status: String?
    public var channels: String?
    public var durationMillis: Int?
    public var callLegId: String?
    public var callSessionId: String?
    public var recordingStartedAt: String?
    public var recordingEndedAt: String?
    public var createdAt: String?
    public var callControlId: String?
    public var connectionId: String?
    /// Download links by format (`mp3`, `wav`): short-lived, fetched again before each download.
    public var downloadURLs: [String: String]
    public var from: String?
    public var to: String?

    init?(json: Any?) {
        guard let o = json as? [String: Any], let id = o["id"] as? String else { return nil }
        self.id = id
        status = o["status"] as? String
        channels = o["channels"] as? String
        durationMillis = (o["duration_millis"] as? NSNumber)?.intValue
        callLegId = o["call_leg_id"] as? String
        callSessionId = o["call_session_id"] as? String
        recordingStartedAt = o["recording_started_at"] as? String
        recordingEndedAt = o["recording_ended_at"] as? String
        createdAt = o["created_at"] as? String
        callControlId = o["call_control_id"] as? String
        connectionId = o["connection_id"] as? String
        downloadURLs = (o["download_urls"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
        from = o["from"] as? String
        to = o["to"] as? String
    }
}

/// Telnyx call recordings (v2): list, get, delete. Retries 408, 409, 429 and 5xx with backoff,
/// honouring `Retry-After`, `retry-after-ms`, `x-ratelimit-reset` and `x-should-retry`, as the
/// official SDK does.
public struct TelnyxClient: Sendable {
    public let baseURL: String
    let key: Secret
    let transport: Transport
    let backoff = Backoff.api
    /// The clock the waits between tries are slept on.
    let clock: AnyClock

    public init(baseURL: String, key: Secret, httpClient: HTTPClient, logger: Logger,
                clock: some Clock<Duration> = ContinuousClock()) {
        self.clock = AnyClock(clock)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.key = key
        transport = Transport(client: httpClient, api: .telnyx, logger: logger)
    }

    public struct Page: Sendable {
        public var recordings: [TelnyxRecording]
        public var pageNumber: Int
        public var totalPages: Int
    }

    /// One page of `GET /v2/recordings` (`size` 1…250), filtered: `filters` maps a filter's name
    /// inside `filter[…]` (`call_leg_id`, `call_session_id`, `created_at][gte`, `created_at][lte`)
    /// to its value.
    public func recordings(page: Int = 1, size: Int = 250, filters: [String: String] = [:]) async throws -> Page {
        let size = min(max(size, 1), 250)
        var query = "page%5Bnumber%5D=\(max(page, 1))&page%5Bsize%5D=\(size)"
        for (name, value) in filters.sorted(by: { $0.key < $1.key }) {
            query += "&" + Self.queryEncoded("filter[\(name)]") + "=" + Self.queryEncoded(value)
        }
        let r = try await perform(.GET, "/recordings?" + query)
        let o = r.json as? [String: Any]
        let meta = o?["meta"] as? [String: Any]
        return Page(recordings: (o?["data"] as? [Any] ?? []).compactMap(TelnyxRecording.init(json:)),
                    pageNumber: (meta?["page_number"] as? NSNumber)?.intValue ?? page,
                    totalPages: (meta?["total_pages"] as? NSNumber)?.intValue ?? page)
    }

    /// Percent-encodes a query component (RFC 3986 unreserved characters stay).
    static func queryEncoded(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Every recording (matching `filters`): pages until `page_number >= total_pages`, an empty
    /// page, or `maxPages`.
    public func allRecordings(filters: [String: String] = [:], maxPages: Int = 1000) async throws -> [TelnyxRecording] {
        var all: [TelnyxRecording] = [], page = 1
        var seen = Set<String>()
        while page <= maxPages {
            let p = try await recordings(page: page, filters: filters)
            for r in p.recordings where seen.insert(r.id).inserted { all.append(r) }
            if p.recordings.isEmpty || p.pageNumber >= p.totalPages { break }
            page += 1
        }
        return all
    }

    /// `GET /v2/recordings/{id}`; `not_found` when it does not exist.
    public func recording(id: String) async throws -> TelnyxRecording {
        let r = try await perform(.GET, "/recordings/\(try Self.pathComponent(id))")
        guard let recording = TelnyxRecording(json: (r.json as? [String: Any])?["data"]) else {
            throw APIError(.transient, api: .telnyx, status: r.status, "get answered without a recording")
        }
        return recording
    }

    public enum DeleteOutcome: Sendable, Equatable { case deleted, alreadyGone }

    /// `DELETE /v2/recordings/{id}` (permanent: the media is gone). 404 means already deleted.
    public func deleteRecording(id: String) async throws -> DeleteOutcome {
        do {
            _ = try await perform(.DELETE, "/recordings/\(try Self.pathComponent(id))")
            return .deleted
        } catch let error as APIError where error.code == .notFound {
            return .alreadyGone
        }
    }

    /// The one rule for a Telnyx recording id: what a delete (or get) refuses to address, and
    /// what a sidecar's `telnyx_recording_id` is refused for. Nil when the id is usable.
    public static func recordingIDProblem(_ id: String) -> String? {
        UUID(uuidString: id) == nil ? "must be a Telnyx recording id (a UUID)" : nil
    }

    static func pathComponent(_ id: String) throws -> String {
        if let problem = recordingIDProblem(id) {
            throw APIError(.configuration, api: .telnyx, "\"\(id)\" \(problem)")
        }
        return id
    }

    private func perform(_ method: HTTPMethod, _ path: String) async throws -> APIResponse {
        var attempt = 0
        let name = "\(method) \(path.split(separator: "?").first ?? "")"
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = method
            request.headers.add(name: "authorization", value: "Bearer \(key.reveal())")
            request.headers.add(name: "accept", value: "application/json")
            let response: APIResponse
            do {
                response = try await transport.send(request, timeout: .seconds(30), operation: name)
            } catch let error as APIError where attempt < maxRequestAttempts && [.transient, .unknownOutcome, .unreachable].contains(error.code) {
                try await clock.sleep(for: backoff.delay(afterAttempt: attempt))  // GET and DELETE are idempotent
                continue
            }
            guard let error = classify(response, name: name) else { return response }
            let shouldRetry = response.header("x-should-retry").map { $0 == "true" }
                ?? [.transient, .rateLimited].contains(error.code)
            guard shouldRetry, attempt < maxRequestAttempts else { throw error }
            let hinted = response.headers.retryAfter.flatMap { $0 <= .seconds(60) ? $0 : nil }
            try await clock.sleep(for: hinted ?? backoff.delay(afterAttempt: attempt))
        }
    }

    func classify(_ r: APIResponse, name: String) -> APIError? {
        guard !(200..<300).contains(r.status) else { return nil }
        let first = ((r.json as? [String: Any])?["errors"] as? [[String: Any]])?.first
        let code = first?["code"].map { "\($0)" }
        let text = PipedriveClient.cut((first?["detail"] as? String) ?? (first?["title"] as? String) ?? "HTTP \(r.status)")
        let kind: APIError.Code = switch r.status {
        case 401, 403: .credentialsRefused
        case 404: .notFound
        case 429: .rateLimited
        case 408, 409, 500..<600: .transient
        default: .permanent
        }
        let message = kind == .credentialsRefused ? "Telnyx refused the API key (\(r.status): \(text)): fix TELNYX_API_KEY" : text
        return APIError(kind, api: .telnyx, status: r.status, "\(name): \(message)", serverCode: code,
                        retryAfter: kind == .rateLimited ? r.headers.retryAfter : nil)
    }
}

public import AsyncHTTPClient
import CallSupport
import Foundation
public import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Pipedrive's CallLogs API (v1): create, get, list, delete, and the recording upload.
///
/// Every request goes through the shared ``PipedriveLimiter``. A 429 waits and is sent again
/// without counting as an attempt (its `Retry-After`, else growing waits; a run of them is the
/// daily budget spent); transient failures of GET and DELETE are retried with backoff; a request
/// that could not connect is tried a few times quickly, then throws `unreachable`; a refused
/// token (401, 402) throws `credentials_refused` and stops all traffic; a POST whose answer was
/// lost throws `unknown_outcome` — creating again blindly would make a duplicate call log, so
/// the caller resolves it (DESIGN §3).
public struct PipedriveClient: Sendable {
    public let baseURL: String
    let token: Secret
    public let limiter: PipedriveLimiter
    let transport: Transport
    /// Retries of transient failures and of connections that could not be made (tests shorten it).
    /// Its waits, like every wait of this credential's traffic, are on the limiter's clock.
    var backoff: Backoff
    /// How many 429s one request waits out before giving up.
    let maxRateLimitWaits: Int
    /// Deadline of a JSON request (uploads get 60 s plus 1 s per MiB). A request that runs out
    /// of time has an unknown outcome.
    public var requestTimeout: Duration = .seconds(30)
    /// Extra headers per request, given the request's name (`POST /callLogs`). For tests that aim
    /// the sandbox's fault injection at one request.
    package var decorate: (@Sendable (String) -> [(String, String)])?

    public init(baseURL: String, token: Secret, limiter: PipedriveLimiter, httpClient: HTTPClient, logger: Logger,
                maxRateLimitWaits: Int = 20) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.limiter = limiter
        transport = Transport(client: httpClient, api: .pipedrive, logger: logger)
        backoff = .api
        self.maxRateLimitWaits = maxRateLimitWaits
    }

    // MARK: - Operations

    /// `POST /v1/callLogs`. The draft is checked first (a 400 costs 10 tokens), then the budget
    /// (the create and its upload); `beforeSending` runs last, just before the request may go out
    /// (the caller records its intent there).
    public func createCallLog(_ draft: CallLogDraft, beforeSending: () async throws -> Void = {}) async throws -> CallLog {
        let problems = draft.problems()
        guard problems.isEmpty else {
            throw APIError(.permanent, api: .pipedrive, "the call log would be refused: " + problems.map(\.description).joined(separator: "; "))
        }
        let body = try JSONSerialization.data(withJSONObject: draft.jsonObject(), options: [.sortedKeys])
        // A call log is made to carry a recording: the budget must cover its upload too, or the
        // call log would wait a day without its audio.
        let upload = PipedriveLimiter.Operation.recording.cost
        try await limiter.reserve(upload, alongWith: .add)
        do {
            try await beforeSending()
            let response = try await perform(.add, method: .POST, path: "/callLogs", json: body, idempotent: false)
            guard let log = CallLog(json: (response.json as? [String: Any])?["data"]) else {
                throw APIError(.unknownOutcome, api: .pipedrive, status: response.status, "create answered without a call log id")
            }
            await limiter.keepReservation(upload, for: log.id)
            return log
        } catch {
            await limiter.releaseReservation(upload)
            throw error
        }
    }

    /// `GET /v1/callLogs/{id}`; `not_found` for 404 and 410.
    public func callLog(id: String) async throws -> CallLog {
        let response = try await perform(.get, method: .GET, path: "/callLogs/\(try Self.pathComponent(id))", idempotent: true)
        guard let log = CallLog(json: (response.json as? [String: Any])?["data"]) else {
            throw APIError(.transient, api: .pipedrive, status: response.status, "get answered without a call log")
        }
        return log
    }

    /// One page of `GET /v1/callLogs` (`limit` ≤ 50; each page costs 20 tokens whatever its size).
    public func callLogs(start: Int, limit: Int = 50) async throws -> CallLogPage {
        let limit = min(max(limit, 1), 50)
        let response = try await perform(.list, method: .GET, path: "/callLogs?start=\(max(start, 0))&limit=\(limit)", idempotent: true)
        let object = response.json as? [String: Any]
        let items = (object?["data"] as? [Any] ?? []).compactMap(CallLog.init(json:))
        let pagination = ((object?["additional_data"] as? [String: Any])?["pagination"] as? [String: Any]) ?? [:]
        return CallLogPage(items: items, start: start,
                           moreItems: (pagination["more_items_in_collection"] as? Bool) ?? false,
                           nextStart: (pagination["next_start"] as? NSNumber)?.intValue)
    }

    /// Every call log, page by page (research/api-contract.md §4.3): continues while
    /// `more_items_in_collection`, takes `next_start` only when it advances (else `start + count`),
    /// stops on an empty page or a start that does not move, dedupes by id, and never reads more
    /// than `maxPages` pages.
    public func allCallLogs(maxPages: Int = 10_000, onPage: (CallLogPage) async throws -> Void = { _ in }) async throws -> [CallLog] {
        var start = 0, pages = 0
        var seen = Set<String>()
        var all: [CallLog] = []
        while pages < maxPages {
            let page = try await callLogs(start: start)
            pages += 1
            try await onPage(page)
            for log in page.items where seen.insert(log.id).inserted { all.append(log) }
            guard page.moreItems, !page.items.isEmpty else { break }
            let next = page.nextStart.flatMap { $0 > start ? $0 : nil } ?? start + page.items.count
            guard next > start else { break }
            start = next
        }
        return all
    }

    public enum DeleteOutcome: Sendable, Equatable { case deleted, alreadyGone }

    /// `DELETE /v1/callLogs/{id}`: 404 and 410 mean it is already gone.
    public func deleteCallLog(id: String) async throws -> DeleteOutcome {
        do {
            _ = try await perform(.delete, method: .DELETE, path: "/callLogs/\(try Self.pathComponent(id))", idempotent: true)
            return .deleted
        } catch let error as APIError where error.code == .notFound || error.code == .doneAlready {
            return .alreadyGone
        }
    }

    public enum UploadOutcome: Sendable, Equatable {
        /// 200: attached now.
        case uploaded
        /// 409: a recording is attached already (the caller confirms it is ours).
        case alreadyExists
        /// An attempt sent the whole file but its answer was lost, and `has_recording` then
        /// said it had landed.
        case landedEarlier
    }

    /// `POST /v1/callLogs/{id}/recordings`: the file streamed as the one `file` part.
    ///
    /// Transient failures and lost answers are retried, each safely:
    /// - the connection closed before the whole file went out: nothing can have been stored,
    ///   so it is sent again at once;
    /// - the whole file went out but no answer came (a cut after sending, a timeout): it may have
    ///   landed, so `GET /callLogs/{id}` (2 tokens) looks at `has_recording` before the file is
    ///   sent again (10 tokens, and all its bytes): ``UploadOutcome/landedEarlier``;
    /// - a 5xx: sent again; a 409 then means an earlier attempt landed:
    ///   ``UploadOutcome/alreadyExists``.
    public func uploadRecording(callLogId: String, path: String, filename: String) async throws -> UploadOutcome {
        let target = "/callLogs/\(try Self.pathComponent(callLogId))/recordings"
        var attempt = 0
        while true {
            attempt += 1
            do {
                _ = try await perform(.recording, method: .POST, path: target, upload: (path, filename), idempotent: false, callLog: callLogId)
                return .uploaded
            } catch let error as APIError where error.code == .doneAlready {
                return .alreadyExists
            } catch let error as APIError where (error.code == .unknownOutcome || error.code == .transient) && attempt < maxRequestAttempts {
                if error.bodyDelivered == true, try await callLog(id: callLogId).hasRecording { return .landedEarlier }
                try await limiter.clock.sleep(for: backoff.delay(afterAttempt: attempt))
            }
        }
    }

    /// Tokens spent, requests made and 429s seen so far through this credential.
    public var counters: PipedriveLimiter.Counters { get async { await limiter.counters } }

    /// What stopped all traffic through this credential (a refused token; the abuse block while
    /// its cool-down lasts), if anything did.
    public var stoppedBy: APIError? { get async { await limiter.stoppedBy } }

    // MARK: - Plumbing

    static func pathComponent(_ id: String) throws -> String {
        guard !id.isEmpty, id != ".", id != "..",
              let encoded = id.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_~"))) else {
            throw APIError(.configuration, api: .pipedrive, "an empty or unusable call log id")
        }
        return encoded
    }

    func perform(_ operation: PipedriveLimiter.Operation, method: HTTPMethod, path: String, json: Data? = nil,
                         upload: (path: String, filename: String)? = nil, idempotent: Bool, callLog: String? = nil) async throws -> APIResponse {
        var attempt = 0, waits = 0
        let name = "\(method) \(path.split(separator: "?").first ?? "")"
        while true {
            let ticket = try await limiter.acquire(operation, for: callLog)
            let url = Self.url(baseURL, path)
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers.add(name: "x-api-token", value: token.reveal())
            request.headers.add(name: "accept", value: "application/json")
            for (k, v) in decorate?(name) ?? [] { request.headers.add(name: k, value: v) }
            if let json {
                request.headers.add(name: "content-type", value: "application/json")
                request.body = .bytes(ByteBuffer(data: json))
            }
            let response: APIResponse
            do {
                if let upload {
                    // Size-scaled deadline: 60 s plus 1 s per MiB.
                    let size = (try? FileManager.default.attributesOfItem(atPath: upload.path)[.size] as? NSNumber)?.int64Value ?? 0
                    response = try await transport.sendFile(url: url, headers: request.headers, path: upload.path,
                                                            filename: upload.filename, timeout: .seconds(60 + size / (1 << 20)),
                                                            operation: name)
                } else {
                    let t = requestTimeout.components
                    response = try await transport.send(request, timeout: .nanoseconds(t.seconds * 1_000_000_000 + t.attoseconds / 1_000_000_000), operation: name)
                }
                await limiter.finished(ticket)
            } catch let error as APIError {
                // A request that never left costs nothing and takes no slot of the window.
                if error.neverSent { await limiter.refund(ticket, operation) } else { await limiter.finished(ticket) }
                attempt += 1
                // No connection: a few quick tries (the backoff's first steps), then the caller
                // stops its run rather than wait for minutes.
                let retry = error.code == .transient || error.code == .unreachable || (error.code == .unknownOutcome && idempotent)
                if retry, attempt < maxRequestAttempts {
                    try await limiter.clock.sleep(for: backoff.delay(afterAttempt: attempt))
                    continue
                }
                throw error
            }
            let remaining = response.header("x-ratelimit-remaining").flatMap(Int.init)
            let reset = response.header("x-ratelimit-reset").flatMap(Double.init)
            await limiter.observe(limit: response.header("x-ratelimit-limit").flatMap(Int.init), remaining: remaining, reset: reset)
            let error = classify(response, operation: operation, name: name, idempotent: idempotent)
            if error?.code != .rateLimited { await limiter.answered() }
            guard var error else { return response }
            switch error.code {
            case .rateLimited:
                waits += 1
                // With `Retry-After`, that wait. Without it (Pipedrive documents none for its
                // daily budget) the waits grow, and a run of such 429s with no answer between
                // is taken as the budget spent (the limiter throws `budget_spent`).
                let windowReset = remaining == 0 ? reset.flatMap { $0.isFinite ? Duration.milliseconds(Int64(min(max($0, 0), 3600) * 1000)) : nil } : nil
                let wait = try await limiter.rateLimited(ticket, operation, retryAfter: response.headers.explicitRetryAfter, windowReset: windowReset)
                // A long pause (the daily budget at the server) is not slept out here: the
                // caller snoozes the job until then.
                if waits > maxRateLimitWaits || wait > limiter.maxWait {
                    error.retryAfter = wait
                    error.retryAt = limiter.now().addingTimeInterval(wait.seconds)
                    throw error
                }
            case .transient where idempotent:
                attempt += 1
                guard attempt < maxRequestAttempts else { throw error }
                try await limiter.clock.sleep(for: backoff.delay(afterAttempt: attempt))
            case .stopEverything, .credentialsRefused:
                // Refused at the door (an unknown token, the CDN's block): nothing is charged.
                await limiter.uncharged(operation)
                await limiter.stop(error)
                throw error
            default:
                throw error
            }
        }
    }

    /// A v1 path goes under the base URL (`…/v1`); an `/api/v2/…` path under the same host's root.
    static func url(_ baseURL: String, _ path: String) -> String {
        guard path.hasPrefix("/api/v2/") else { return baseURL + path }
        for suffix in ["/api/v1", "/v1"] where baseURL.hasSuffix(suffix) {
            return String(baseURL.dropLast(suffix.count)) + path
        }
        return baseURL + path
    }

    /// research/api-contract.md §4.1, Pipedrive rows.
    func classify(_ r: APIResponse, operation: PipedriveLimiter.Operation, name: String, idempotent: Bool) -> APIError? {
        let object = r.json as? [String: Any]
        let message = Self.cut((object?["error"] as? String) ?? (r.isJSON ? "HTTP \(r.status)" : "non-JSON answer"))
        let serverCode = object?["code"] as? String
        func error(_ code: APIError.Code, _ text: String? = nil) -> APIError {
            APIError(code, api: .pipedrive, status: r.status, "\(name): \(text ?? message)", serverCode: serverCode,
                     retryAfter: code == .rateLimited ? r.headers.retryAfter : nil)
        }
        switch r.status {
        case 200..<300:
            if let success = object?["success"] as? Bool, !success { return error(.permanent) }
            return nil
        case 401:
            return error(.credentialsRefused, "Pipedrive refused the API token (401: \(message)): fix PIPEDRIVE_API_TOKEN")
        case 402:
            return error(.credentialsRefused, "the Pipedrive company account of PIPEDRIVE_API_TOKEN is not open (402: the trial ended or payment details are missing)")
        case 403 where !r.isJSON:
            var blocked = error(.stopEverything, "Pipedrive blocked callrec's traffic as abuse (403 with an HTML page): nothing more is sent to Pipedrive for \(Int(Self.abuseCoolDown.seconds / 60)) minutes. If it happens again, look for an integration on the account that keeps sending after 429s")
            blocked.retryAfter = Self.abuseCoolDown
            blocked.retryAt = limiter.now().addingTimeInterval(Self.abuseCoolDown.seconds)
            return blocked
        case 403: return error(.permanent)
        case 404 where operation == .add || operation == .addV2: return error(.permanent)
        case 404, 410: return error(.notFound)
        case 409 where operation == .recording: return error(.doneAlready)
        case 429: return error(.rateLimited)
        case 408, 500..<600:
            // A POST that failed on the server may still have taken effect.
            return error(idempotent ? .transient : .unknownOutcome)
        default: return error(.permanent)
        }
    }

    /// How long all Pipedrive traffic stops after the abuse block (research/api-contract.md
    /// §4.1: "a long cool-down, minutes or more").
    static let abuseCoolDown: Duration = .seconds(3600)

    static func cut(_ text: String) -> String { text.count > 300 ? String(text.prefix(300)) + "…" : text }
}

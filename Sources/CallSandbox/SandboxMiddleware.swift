import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Runs in front of every route (and of the router's 404): classifies the request by API, checks
/// credentials, aims faults, applies Pipedrive's rate limits and token costs and Telnyx's rate
/// limit, adds the `x-ratelimit-*` headers, and renders errors in the format of the API they
/// belong to.
struct SandboxMiddleware: RouterMiddleware {
    typealias Context = SandboxRequestContext

    let core: SandboxCore

    private var state: SandboxState { core.state }
    private var configuration: SandboxConfiguration { core.configuration }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let route = RouteInfo(method: request.method, path: request.uri.path) else {
            return .json(["error": "Not found"], status: .notFound)
        }
        switch route.api {
        case .introspection:
            guard Self.isLoopback(context.channel.remoteAddress) else {
                return .json(["error": "The sandbox introspection routes answer loopback clients only."], status: .forbidden)
            }
            return try await rendered(.introspection) { try await next(request, context) }
        case .pipedrive:
            return try await pipedrive(request, context: context, route: route, next: next)
        case .telnyx, .voipnow:
            return try await provider(request, context: context, route: route, next: next)
        }
    }

    // MARK: Pipedrive

    private func pipedrive(
        _ request: Request, context: Context, route: RouteInfo, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        await state.countRequest(route: route.key)
        var headers = HTTPFields()
        guard Self.pipedriveToken(request) == configuration.pipedriveToken else {
            await state.countUnauthorized()
            await state.peekRateLimit().apply(to: &headers)
            return render(.pipedrive, APIError(.unauthorized, "unauthorized access"), headers: headers)
        }
        guard let faults = resolveFaults(request) else {
            return render(.pipedrive, APIError(.badRequest, Self.badFaultMessage))
        }
        if faults.contains(.abuse) {
            await state.countFault(.abuse)
            return abuseBlock()
        }
        if faults.contains(.tooManyRequests) {
            await state.countFault(.tooManyRequests)
            await state.peekRateLimit(exhausted: true).apply(to: &headers)
            headers[.retryAfter] = String(configuration.faults.retryAfterSeconds)
            return render(.pipedrive, APIError(.tooManyRequests, "request over limit"), headers: headers)
        }
        if faults.contains(.budget) {
            // The budget, not the burst: no Retry-After, and the window shows room.
            await state.countFault(.budget)
            await state.peekRateLimit().apply(to: &headers)
            return render(.pipedrive, APIError(.tooManyRequests, "request over limit"), headers: headers)
        }
        // Injected failures happen before the work and cost no tokens.
        let free = faults.contains(.internalServerError) || faults.contains(.serviceUnavailable) || faults.contains(.cut)
        switch await state.admit(cost: free ? 0 : route.cost) {
        case .admitted(let limits):
            limits.apply(to: &headers)
        case .burstLimited(let limits, let retryAfter), .budgetExhausted(let limits, let retryAfter):
            limits.apply(to: &headers)
            headers[.retryAfter] = String(retryAfter)
            return render(.pipedrive, APIError(.tooManyRequests, "request over limit"), headers: headers)
        }
        var context = context
        if let early = try await injectBeforeWork(faults, request: request, context: &context, route: route, api: .pipedrive, headers: headers) {
            return early
        }
        var response = try await rendered(.pipedrive) { try await next(request, context) }
        try await injectAfterWork(faults, context: context)
        for field in headers { response.headers[field.name] = field.value }
        return response
    }

    // MARK: Telnyx, VoipNow

    private func provider(
        _ request: Request, context: Context, route: RouteInfo, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        await state.countRequest(route: route.key)
        let telnyx = route.api == .telnyx
        // Telnyx answers carry its x-ratelimit-* headers (api-contract §2.6); VoipNow's none.
        var headers = HTTPFields()
        let secret = telnyx ? configuration.telnyxKey : configuration.voipnowToken
        guard Self.bearer(request, allowQuery: route.api == .voipnow) == secret else {
            await state.countUnauthorized()
            if telnyx { await state.peekTelnyxRateLimit().apply(to: &headers) }
            let error = telnyx
                ? APIError(.unauthorized, code: "10009", title: "Authentication failed", "The API key looks malformed or is not valid. Check that you copied it correctly.")
                : APIError(.unauthorized, code: "access_denied", "The access token is missing, expired or not valid.")
            return render(route.api, error, headers: headers)
        }
        guard let faults = resolveFaults(request) else {
            return render(route.api, APIError(.badRequest, code: telnyx ? "10015" : "bad_request", title: "Bad Request", Self.badFaultMessage))
        }
        if faults.contains(.abuse) {
            await state.countFault(.abuse)
            return abuseBlock()
        }
        if faults.contains(.tooManyRequests) || faults.contains(.budget) {
            // (budget: a 429 without Retry-After, as Pipedrive answers once the daily budget is spent)
            await state.countFault(faults.contains(.budget) ? .budget : .tooManyRequests)
            if telnyx { await state.peekTelnyxRateLimit(exhausted: true).apply(to: &headers) }
            if !faults.contains(.budget) { headers[.retryAfter] = String(configuration.faults.retryAfterSeconds) }
            return render(route.api, telnyx ? Self.telnyxTooManyRequests : APIError(.tooManyRequests, code: "too_many_requests", "Too many requests."),
                          headers: headers)
        }
        if telnyx {
            let (limits, admitted) = await state.admitTelnyx()
            limits.apply(to: &headers)
            guard admitted else {
                headers[.retryAfter] = String(limits.reset)
                return render(.telnyx, Self.telnyxTooManyRequests, headers: headers)
            }
        }
        var context = context
        if let early = try await injectBeforeWork(faults, request: request, context: &context, route: route, api: route.api, headers: headers) {
            return early
        }
        var response = try await rendered(route.api) { try await next(request, context) }
        try await injectAfterWork(faults, context: context)
        for field in headers { response.headers[field.name] = field.value }
        return response
    }

    static let telnyxTooManyRequests = APIError(.tooManyRequests, code: "10011", title: "Too many requests",
                                                "You have exceeded the maximum number of allowed requests.")

    // MARK: Faults

    static let badFaultMessage = "x-sandbox-fault must be one or more of 429, 500, 503, slow, cut, lost, abuse, budget, none (comma separated)."

    /// The header's faults (it wins, `none` included), else one drawn from the plan. Nil when the
    /// header names an unknown fault.
    private func resolveFaults(_ request: Request) -> FaultSet? {
        var faults: FaultSet
        if let header = request.headers[.sandboxFault] {
            guard let parsed = FaultSet.parse(header: header) else { return nil }
            faults = parsed
        } else {
            faults = FaultSet()
            if let kind = configuration.faults.draw() { faults.kinds.insert(kind) }
        }
        if let delay = request.headers[.sandboxDelay].flatMap(Double.init), delay >= 0, delay <= 600 {
            faults.delay = .milliseconds(Int64(delay * 1000))
        }
        return faults
    }

    /// 500/503 answer at once; `cut` drops the connection (the upload route cuts mid-body itself);
    /// `slow` waits. Returns an answer when the work must not run.
    private func injectBeforeWork(
        _ faults: FaultSet, request: Request, context: inout Context, route: RouteInfo, api: RouteInfo.API, headers: HTTPFields
    ) async throws -> Response? {
        if faults.contains(.internalServerError) {
            await state.countFault(.internalServerError)
            let error = switch api {
            case .telnyx: APIError(.internalServerError, code: "10007", title: "Unexpected error", "An unexpected error occurred.")
            case .voipnow: APIError(.internalServerError, code: "internal_server_error", "Internal server error.")
            default: APIError(.internalServerError, "An internal server error occurred")
            }
            return render(api, error, headers: headers)
        }
        if faults.contains(.serviceUnavailable) {
            await state.countFault(.serviceUnavailable)
            var headers = headers
            headers[.retryAfter] = String(configuration.faults.retryAfterSeconds)
            let error = switch api {
            case .telnyx: APIError(.serviceUnavailable, code: "503", title: "Service Unavailable", "The service is temporarily unavailable.")
            case .voipnow: APIError(.serviceUnavailable, code: "service_unavailable", "Service temporarily unavailable.")
            default: APIError(.serviceUnavailable, "Service temporarily unavailable: scheduled maintenance")
            }
            return render(api, error, headers: headers)
        }
        if faults.contains(.cut) {
            await state.countFault(.cut)
            if route.cutsItself {
                context.faults.kinds.insert(.cut)
            } else {
                // Read what has arrived of the body (if any), then hang up.
                var body = request.body.makeAsyncIterator()
                _ = try? await body.next()
                await context.dropConnection()
                throw ConnectionDropped()
            }
        }
        if faults.contains(.slow) {
            await state.countFault(.slow)
            try await state.clock.sleep(faults.delay ?? configuration.faults.slowDelay)
        }
        return nil
    }

    /// `lost`: the work is done, the answer never leaves.
    private func injectAfterWork(_ faults: FaultSet, context: Context) async throws {
        if faults.contains(.lost) {
            await state.countFault(.lost)
            await context.dropConnection()
            throw ConnectionDropped()
        }
    }

    private func abuseBlock() -> Response {
        .data(Data(cloudflareBlockPage().utf8), contentType: "text/html; charset=UTF-8", status: .forbidden,
              headers: [.cacheControl: "private, max-age=0, no-store, no-cache, must-revalidate"])
    }

    // MARK: Errors

    /// Runs a route and turns its ``APIError`` (or Hummingbird's `HTTPError`, e.g. the router's
    /// 404) into the API's error format.
    private func rendered(_ api: RouteInfo.API, _ work: () async throws -> Response) async throws -> Response {
        do {
            return try await work()
        } catch let error as APIError {
            return render(api, error, headers: error.headers)
        } catch let error as HTTPError {
            return render(api, Self.routeError(api, error), headers: error.headers)
        }
    }

    /// Hummingbird's own errors (the router's 404 for a route or method an API does not have) in
    /// the API's words.
    private static func routeError(_ api: RouteInfo.API, _ error: HTTPError) -> APIError {
        if api == .telnyx, error.status == .notFound {
            return APIError(.notFound, code: "10005", title: "Resource not found", "The requested resource or URL could not be found.")
        }
        return APIError(error.status, error.body ?? (error.status == .notFound ? "Unknown method ." : error.status.reasonPhrase))
    }

    private func render(_ api: RouteInfo.API, _ error: APIError, headers: HTTPFields = [:]) -> Response {
        let body: JSONValue = switch api {
        case .pipedrive:
            pipedriveEnvelope(error.message)
        case .telnyx:
            ["errors": [[
                "code": .string(error.code ?? String(error.status.code)),
                "title": .string(error.title ?? error.status.reasonPhrase),
                "detail": .string(error.message),
            ]]]
        case .voipnow:
            ["error": ["code": .string(error.code ?? Self.voipNowCode(error.status)), "message": .string(error.message)]]
        case .introspection:
            ["error": .string(error.message)]
        }
        var fields = headers
        for field in error.headers { fields[field.name] = field.value }
        return .json(body, status: error.status, headers: fields)
    }

    private static func voipNowCode(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "request_not_found"
        case 405, 501: "request_not_implemented"
        case 500...: "internal_server_error"
        default: "bad_request"
        }
    }

    // MARK: Helpers

    /// Pipedrive's API token: the `x-api-token` header, or else the legacy `?api_token=` query
    /// parameter that clients such as the popular Python one still send (api-contract §1.1).
    /// Neither is ever logged (the sandbox logs no request line).
    static func pipedriveToken(_ request: Request) -> String? {
        request.headers[.apiToken] ?? queryItems(request.uri.query)["api_token"]
    }

    /// `Authorization: Bearer X` → X (VoipNow also takes `?accessRequestToken=Bearer X`).
    static func bearer(_ request: Request, allowQuery: Bool) -> String? {
        var value = request.headers[.authorization]
        if value == nil, allowQuery { value = queryItems(request.uri.query)["accessRequestToken"] }
        guard let value, value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let ip = address?.ipAddress else { return false }
        return ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}

import CallSupport
public import Foundation

/// An API call that did not succeed, classified by what the caller must do next
/// (research/api-contract.md §4.1).
public struct APIError: Error, Sendable, CustomStringConvertible {
    public enum API: String, Sendable {
        case pipedrive, telnyx, voipnow, none

        /// The variable that holds the base URL (DESIGN §7).
        public var urlVariable: String? {
            switch self {
            case .pipedrive: "PIPEDRIVE_API_URL"
            case .telnyx: "TELNYX_API_URL"
            case .voipnow: "VOIPNOW_API_URL"
            case .none: nil
            }
        }

        /// The name a message uses.
        public var title: String {
            switch self {
            case .pipedrive: "Pipedrive"
            case .telnyx: "Telnyx"
            case .voipnow: "VoipNow"
            case .none: "the API"
            }
        }
    }

    /// What the caller does next.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The thing is already in the wanted state (409 on upload, 404/410 on delete).
        public static let doneAlready = Code(rawValue: "done_already")
        /// This item cannot succeed as sent (400, 404 on create, JSON 403, 405, 415, 422).
        public static let permanent = Code(rawValue: "permanent")
        /// 429: wait (``APIError/retryAfter``) and send again; not a failed attempt.
        public static let rateLimited = Code(rawValue: "rate_limited")
        /// 5xx, 408: retry with backoff (idempotent requests only).
        public static let transient = Code(rawValue: "transient")
        /// No connection could be made (refused, no route, DNS, connect timeout), after a few
        /// quick tries: nothing was sent. A run that ends when its work is done stops here and
        /// leaves its jobs for a later run (the API or the network is down, or the URL is wrong).
        public static let unreachable = Code(rawValue: "unreachable")
        /// The credential was refused (Pipedrive 401, 402; Telnyx and VoipNow 401, 403): no
        /// request through it can succeed until the user fixes the variable its message names.
        /// Stop the run (exit 2); the jobs wait for a run with a mended credential.
        public static let credentialsRefused = Code(rawValue: "credentials_refused")
        /// Pipedrive's abuse block (a 403 with an HTML page): stop all traffic to this API for a
        /// cool-down (``APIError/retryAt``).
        public static let stopEverything = Code(rawValue: "stop_everything")
        /// The daily token budget is spent: no request until ``APIError/retryAfter`` (the reset);
        /// wait without using an attempt.
        public static let budgetSpent = Code(rawValue: "budget_spent")
        /// The request may or may not have taken effect (timeout, connection cut after sending).
        public static let unknownOutcome = Code(rawValue: "unknown_outcome")
        /// Not found (404/410 on GET): the resource is gone.
        public static let notFound = Code(rawValue: "not_found")
        /// Bad local configuration (missing credentials, unreadable file, refused URL).
        public static let configuration = Code(rawValue: "configuration")
        public var description: String { rawValue }
    }

    public let code: Code
    public let api: API
    /// HTTP status, when a response arrived.
    public var status: Int?
    /// The server's message (its `error`, `errors[0].detail` or `error.message`), cut short, or
    /// what went wrong locally. Never contains credentials.
    public var message: String
    /// The server's machine code (`feature_capping_…`, `10005`, `pce_id_invalid`), when given.
    public var serverCode: String?
    /// For ``Code/rateLimited`` and ``Code/budgetSpent``: how long to wait.
    public var retryAfter: Duration?
    /// The instant ``retryAfter`` ends: a budget's reset, or a server's `Retry-After` counted
    /// from when its answer arrived. A job put off until then wakes at that instant however
    /// long the error took to reach the queue.
    public var retryAt: Date?
    /// For an upload that ended without an answer (``Code/unknownOutcome``): whether its whole
    /// body went out. `false`: the server cannot have stored it, so sending it again is safe
    /// and nothing needs checking first.
    public var bodyDelivered: Bool?
    /// The request never left this machine (no connection, a URL the client refused): it cannot
    /// have taken effect, and it costs nothing.
    public var neverSent = false

    public init(_ code: Code, api: API, status: Int? = nil, _ message: String, serverCode: String? = nil, retryAfter: Duration? = nil,
                retryAt: Date? = nil) {
        self.code = code
        self.api = api
        self.status = status
        self.message = message
        self.serverCode = serverCode
        self.retryAfter = retryAfter
        self.retryAt = retryAt ?? retryAfter.map { Date().addingTimeInterval($0.seconds) }
    }

    public var description: String {
        var text = "\(api) \(code)"
        if let status { text += " (HTTP \(status))" }
        if let serverCode { text += " [\(serverCode)]" }
        return text + ": " + message
    }
}

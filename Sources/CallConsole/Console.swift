public import CallPipeline
public import CallStore
public import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore

/// How the console is served: its password, whether actions are allowed.
public struct ConsoleConfiguration: Sendable {
    /// What HTTP Basic must carry (any user name; the name is who the audit says acted).
    public var password: ConsolePassword
    /// Pages only: every action answers 403 and no page shows an action's button.
    public var readOnly: Bool
    /// Pipedrive's web app (`https://COMPANY.pipedrive.com`, ``PipedriveWebLinks/base(apiURL:configured:)``):
    /// a recording's page links the deal, person, organization or lead its call logs went to.
    /// Nil: no links (the page says why).
    public var pipedriveWebURL: String?
    /// Runs a reconcile pass with Pipedrive (CallApp gives one when PIPEDRIVE_API_TOKEN is set);
    /// nil: the reconcile page says it cannot.
    public var reconcile: ConsoleReconcile?

    public init(password: ConsolePassword, readOnly: Bool = false, pipedriveWebURL: String? = nil, reconcile: ConsoleReconcile? = nil) {
        self.password = password
        self.readOnly = readOnly
        self.pipedriveWebURL = pipedriveWebURL
        self.reconcile = reconcile
    }
}

/// One reconcile pass with these options, its deletions audited as the given actor
/// (`console:USER`).
public typealias ConsoleReconcile = @Sendable (_ options: Reconciler.Options, _ actor: String) async throws -> ReconcileReport

/// The console's password, kept out of descriptions (logs, errors).
public struct ConsolePassword: Sendable, CustomStringConvertible {
    let bytes: [UInt8]

    /// Nil for an empty password (a console must not be open to anyone who guesses "").
    public init?(_ text: String) {
        guard !text.isEmpty else { return nil }
        bytes = Array(text.utf8)
    }

    public var description: String { "<console password>" }
}

/// The operator's console (issue 19): server-side rendered pages over the ledger and the queue,
/// the spool's audio with HTTP Range, and audited actions. Every route is under `/console/`,
/// behind HTTP Basic; every action is a POST that carries the page's CSRF token.
///
/// `callrec console` serves it alone (``ConsoleServer``); `worker --listen` mounts the same
/// routes beside its webhooks with ``register(on:)``.
public struct Console: Sendable {
    public static let prefix = "/console"

    let store: any ConsoleStore
    let configuration: ConsoleConfiguration
    let guardian: ConsoleGuard
    let logger: Logger
    /// The reconcile plans shown and not yet applied.
    let plans = ReconcilePlans()

    /// Fails when `store` cannot answer the console's reads (a store of neither backend).
    public init(store: any CallStore, configuration: ConsoleConfiguration, logger: Logger) throws {
        guard let store = store as? any ConsoleStore else {
            throw StoreError(.configuration, "\(store.location): this store cannot serve the console")
        }
        self.store = store
        self.configuration = configuration
        guardian = ConsoleGuard(password: configuration.password)
        self.logger = logger
    }

    /// Adds the console's routes (`/console/…`) to `router`, behind the password. The router's
    /// other routes (webhooks, `/healthz`, `/metrics`) are left as they are.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        let pages = ConsolePages(store: store, readOnly: configuration.readOnly, guardian: guardian,
                                 counter: OverviewCounter(store: store, clock: ContinuousClock()),
                                 pipedriveWebURL: configuration.pipedriveWebURL, canReconcile: configuration.reconcile != nil)
        let actions = ConsoleActions(store: store, readOnly: configuration.readOnly, guardian: guardian, logger: logger,
                                     reconcile: configuration.reconcile, plans: plans)
        let group = router.group(RouterPath(stringLiteral: Self.prefix)).add(middleware: ConsoleAuthMiddleware<Context>(guardian: guardian, logger: logger))
        group.get("/") { request, _ in try await pages.overview(request) }
        group.get("style.css") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: Templates.css)))
        }
        group.get("icon.svg") { _, _ in
            Response(status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "max-age=3600"],
                     body: .init(byteBuffer: ByteBuffer(string: Templates.icon)))
        }
        group.get("recordings") { request, _ in try await pages.recordings(request) }
        group.get("recordings/:key") { request, context in
            try await pages.recording(request, key: context.parameters.require("key"))
        }
        group.get("recordings/:key/parts/:index/audio") { request, context in
            try await ConsoleAudio.serve(request, context: context, store: store, key: context.parameters.require("key"),
                                         index: context.parameters.require("index", as: Int.self))
        }
        group.get("recordings/:key/delete") { request, context in
            try await pages.confirmDelete(request, key: context.parameters.require("key"))
        }
        group.post("recordings/:key/delete") { request, context in
            try await actions.delete(request, key: context.parameters.require("key"))
        }
        group.get("reconcile") { request, _ in try await pages.reconcile(request) }
        group.post("reconcile/plan") { request, _ in try await actions.reconcilePlan(request) }
        group.post("reconcile/apply") { request, _ in try await actions.reconcileApply(request) }
        group.post("jobs/:id/:action") { request, context in
            try await actions.job(request, id: context.parameters.require("id", as: Int64.self), action: context.parameters.require("action"))
        }
    }
}

/// Every console response carries these: nothing from elsewhere may load, no framing, no
/// caching of pages, no referrer leaving the machine.
enum ConsoleHeaders {
    static let security: HTTPFields = [
        .contentSecurityPolicy: "default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        HTTPField.Name("x-content-type-options")!: "nosniff",
        HTTPField.Name("referrer-policy")!: "no-referrer",
    ]

    static func html(_ status: HTTPResponse.Status = .ok, _ text: String) -> Response {
        var headers = security
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A page that says one thing (a refusal, a missing recording).
    static func message(_ status: HTTPResponse.Status, _ heading: String, _ text: String) -> Response {
        html(status, Templates.page("message", title: heading, ["heading": heading, "text": text]))
    }

    /// 303 to `location` (after an action: the browser GETs the page again).
    static func seeOther(_ location: String) -> Response {
        var headers = security
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }
}

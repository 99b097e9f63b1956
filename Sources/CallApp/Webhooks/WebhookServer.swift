public import CallConsole
public import CallPipeline
import CallStore
import CallSupport
public import CallTelnyx
public import Foundation
import HTTPTypes
import Hummingbird
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle
import Synchronization

/// `worker --listen HOST:PORT`: `POST /webhooks/telnyx`, `GET /healthz`, `GET /metrics` and,
/// with a console password, the operator's console under `/console/`.
///
/// Without a Telnyx public key (no `verifier`) the webhook endpoint answers 503 naming what is
/// missing (Telnyx keeps the event and delivers it again), and the rest is served as usual.
///
/// A webhook is answered in this order: a declared body over the limit → 413 before anything is
/// read; the body collected up to the limit (413 when it goes over) → the signature checked
/// (401/403, logged with the rejection's code and the peer, never the body) → the event parsed
/// (400 naming the field) → handed to the group-commit writer (``WebhookBatcher``), which stores
/// it with everything waiting beside it in one ``TelnyxIntake/accept(_:receivedAt:)`` → 200
/// `{"stored":true}` once committed (a duplicate too). A full backlog, a store error, or a
/// server shutting down answers 503: Telnyx delivers the event again.
///
/// On graceful shutdown the server stops accepting connections, answers the requests it has
/// (those not yet handed over with 503), the writer commits what it holds, then ``run()``
/// returns.
public struct WebhookServer: Service {
    public static let webhookPath = "/webhooks/telnyx"

    let intake: TelnyxIntake
    let verifier: WebhookVerifier?
    let address: ListenAddress
    let registry: PrometheusCollectorRegistry
    let logger: Logger
    let batcher: WebhookBatcher
    let now: @Sendable () -> Date
    /// How long `/healthz` waits for the store's answer before it says 503.
    let healthTimeout: Duration
    let onRunning: @Sendable (Int) async -> Void
    /// The operator's console, served under `/console/` beside the rest (nil: none).
    let console: Console?

    /// - Parameters:
    ///   - registry: what `/metrics` shows (the worker's: its jobs' metrics too); the webhook
    ///     metrics are made in it.
    ///   - backlog: events waiting for their commit before a request is refused (503).
    ///   - batchLimit: events in one commit at most.
    ///   - now: the time signatures are checked against and events are received at.
    ///   - healthTimeout: how long `/healthz` waits for the store (a second: what a load
    ///     balancer's probe allows; tests on a loaded machine give it longer).
    ///   - onRunning: hears the port once the server listens (the one the kernel picked for 0).
    public init(intake: TelnyxIntake, verifier: WebhookVerifier?, address: ListenAddress,
                registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), logger: Logger, backlog: Int = 10_000,
                batchLimit: Int = 500, now: @escaping @Sendable () -> Date = { Date() }, healthTimeout: Duration = .seconds(1),
                onRunning: @escaping @Sendable (Int) async -> Void = { _ in }, console: Console? = nil) {
        self.intake = intake
        self.verifier = verifier
        self.address = address
        self.registry = registry
        self.logger = logger
        self.now = now
        self.healthTimeout = healthTimeout
        self.onRunning = onRunning
        self.console = console
        batcher = WebhookBatcher(backlog: backlog, batchLimit: batchLimit) { [intake, now] events in
            try await intake.accept(events, receivedAt: now())
        }
    }

    public func run() async throws {
        let metrics = WebhookMetrics(registry: registry)
        let batcher = self.batcher, logger = self.logger
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await batcher.run { size, committed, elapsed in
                    metrics.committed(size, ok: committed, after: elapsed, logger: logger)
                }
            }
            // A graceful shutdown refuses what comes after it; the HTTP server (which hears it
            // too) finishes the requests it has, whose events the writer still commits.
            do {
                try await withGracefulShutdownHandler {
                    try await application(metrics: metrics).run()
                } onGracefulShutdown: {
                    batcher.close()
                }
            } catch {
                batcher.close()
                throw Self.listenError(error, address: address) ?? error
            }
            batcher.close()
            try await group.waitForAll()
        }
    }

    /// A `--listen` address the server cannot bind, said as a usage error (exit 2) naming it
    /// rather than as NIO's `bind(descriptor:ptr:bytes:)` message.
    static func listenError(_ error: any Error, address: ListenAddress) -> AppError? {
        guard let error = error as? IOError else { return nil }
        let reason: String
        switch error.errnoCode {
        case EADDRINUSE: reason = "the address is in use (another process listens there)"
        case EACCES: reason = "permission denied (ports below 1024 need privileges)"
        case EADDRNOTAVAIL: reason = "no interface of this machine has that address"
        default: return nil
        }
        return AppError(.usage, "--listen \(address.host):\(address.port): cannot listen: \(reason)")
    }

    private func application(metrics: WebhookMetrics) -> some ApplicationProtocol {
        let router = Router(context: WebhookRequestContext.self)
        let handler = WebhookHandler(intake: intake, verifier: verifier, batcher: batcher, metrics: metrics, logger: logger, now: now, healthTimeout: healthTimeout)
        router.post(RouterPath(stringLiteral: Self.webhookPath)) { request, context -> Response in
            await handler.receive(request, peer: context.peer)
        }
        router.get("/healthz") { _, _ -> Response in
            await handler.health()
        }
        let registry = self.registry
        router.get("/metrics") { _, _ -> Response in MetricsServer.response(registry) }
        console?.register(on: router)
        var quiet = logger
        quiet.logLevel = .warning
        let address = self.address, logger = self.logger, onRunning = self.onRunning
        return Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port)),
                           onServerRunning: { channel in
                               let bound = ListenAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
                               logger.notice("webhooks served at http://\(bound)\(Self.webhookPath)", metadata: ["port": "\(bound.port)"])
                               await onRunning(bound.port)
                           },
                           logger: quiet)
    }
}

/// The peer of a request (for the logs of a refusal).
struct WebhookRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let peer: String

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "unknown"
    }
}

/// The webhook endpoint's metrics, in the worker's registry.
struct WebhookMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let answer: DurationHistogram
    let batchSize: ValueHistogram
    let commit: DurationHistogram
    /// `callrec_webhook_requests_total{result="stored"}`.
    let stored: Counter
    static let storedResult = "stored"
    /// A commit slower than this is logged (debug): a webhook waits for its batch's commit.
    static let slowCommit: Duration = .milliseconds(40)
    static let buckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5)]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        answer = registry.makeDurationHistogram(
            name: "callrec_webhook_answer_seconds",
            buckets: Self.buckets,
            help: "Seconds from a webhook's arrival to its answer")
        stored = registry.makeCounter(name: "callrec_webhook_requests_total", labels: [("result", Self.storedResult)],
                                      help: "Webhooks answered, by result")
        batchSize = registry.makeValueHistogram(name: "callrec_webhook_batch_size", buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
                                                help: "Events committed together (group commit)")
        commit = registry.makeDurationHistogram(
            name: "callrec_webhook_commit_seconds",
            buckets: Self.buckets,
            help: "Seconds one group commit of webhook events took (its events' answers wait for it)")
    }

    /// One group commit: its size and time, and a debug line when it was slow.
    func committed(_ size: Int, ok: Bool, after elapsed: Duration, logger: Logger) {
        batchSize.record(Double(size))
        commit.record(elapsed)
        if elapsed > Self.slowCommit {
            logger.debug("webhook commit slow", metadata: ["events": "\(size)", "ms": "\(elapsed.milliseconds)", "committed": "\(ok)"])
        }
    }

    /// `stored`, `too_large`, `malformed`, `unavailable`, or the signature rejection's code.
    func answered(_ result: String, after elapsed: Duration) {
        // Thousands a second are `stored`: its counter is made once, the rarer ones when they come.
        let counter = result == Self.storedResult ? stored : requests(result)
        counter.increment()
        answer.record(elapsed)
    }

    private func requests(_ result: String) -> Counter {
        registry.makeCounter(name: "callrec_webhook_requests_total", labels: [("result", result)], help: "Webhooks answered, by result")
    }
}

/// One webhook, from its bytes to its answer.
struct WebhookHandler: Sendable {
    let intake: TelnyxIntake
    let verifier: WebhookVerifier?
    let batcher: WebhookBatcher
    let metrics: WebhookMetrics
    let logger: Logger
    let now: @Sendable () -> Date
    let healthTimeout: Duration

    static let signature = HTTPField.Name(WebhookVerifier.signatureHeader)!
    static let timestamp = HTTPField.Name(WebhookVerifier.timestampHeader)!
    static let forwardedFor = HTTPField.Name("x-forwarded-for")!

    func receive(_ request: Request, peer: String) async -> Response {
        let started = ContinuousClock.now
        let (status, body, result) = await answer(request, peer: peer)
        metrics.answered(result, after: ContinuousClock.now - started)
        // The answer of nearly every webhook, encoded once.
        guard result == WebhookMetrics.storedResult else { return Self.json(status, body) }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: Self.storedBody))
    }

    static let storedBody = ByteBuffer(bytes: json(["stored": true]))

    private func answer(_ request: Request, peer: String) async -> (HTTPResponse.Status, [String: any Sendable], String) {
        let limit = intake.settings.bodyLimit
        let tooLarge: (HTTPResponse.Status, [String: any Sendable], String) = (.contentTooLarge, ["error": "body: over \(limit) bytes"], "too_large")
        guard let verifier else {
            return (.serviceUnavailable, ["error": "Telnyx webhooks are not configured on this worker: set TELNYX_PUBLIC_KEY (or telnyx.public_key in --config)"], "unconfigured")
        }
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit { return tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            return tooLarge
        } catch {
            return (.badRequest, ["error": "body: cannot be read (\(error))"], "malformed")
        }
        let body = buffer.readableBytesView
        do {
            try verifier.verify(signature: request.headers[Self.signature], timestamp: request.headers[Self.timestamp], body: body, now: now())
        } catch {
            var metadata: Logger.Metadata = ["code": "\(error.code.rawValue)", "peer": "\(peer)"]
            if let forwarded = request.headers[Self.forwardedFor] { metadata["forwarded_for"] = "\(forwarded)" }
            logger.warning("webhook refused: \(error.message)", metadata: metadata)
            return (HTTPResponse.Status(code: error.status), ["error": error.code.rawValue], error.code.rawValue)
        }
        let event: TelnyxEvent
        do {
            event = try TelnyxEvent.parse(body)
        } catch {
            logger.warning("webhook verified but not an event callrec reads: \(error)", metadata: ["peer": "\(peer)"])
            return (.badRequest, ["error": error.description], "malformed")
        }
        do {
            try await batcher.submit(event)
        } catch {
            logger.warning("webhook not stored (503, Telnyx delivers it again): \(error)", metadata: ["event": "\(event.id)"])
            return (.serviceUnavailable, ["error": "not stored: \(error)"], "unavailable")
        }
        return (.ok, ["stored": true], WebhookMetrics.storedResult)
    }

    /// 200 when the store answers a read of the event table (a primary-key lookup: what every
    /// webhook's commit needs) within `healthTimeout` (a second by default), else 503.
    func health() async -> Response {
        let store = intake.store, timeout = healthTimeout
        // Not a task group: a store that hangs must not hold the answer past its second.
        let once = Once()
        let answered = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            Task {
                let ok: Bool
                do {
                    _ = try await store.telnyxEvent(id: "healthz")
                    ok = true
                } catch {
                    ok = false
                }
                if once.first() { continuation.resume(returning: ok) }
            }
            Task {
                try? await Task.sleep(for: timeout)
                if once.first() { continuation.resume(returning: false) }
            }
        }
        return answered ? Self.json(.ok, ["status": "ok"]) : Self.json(.serviceUnavailable, ["status": "store unavailable"])
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: any Sendable]) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: json(object))))
    }

    static func json(_ object: [String: any Sendable]) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }
}

/// True for the first caller only.
private final class Once: Sendable {
    private let done = Mutex(false)
    func first() -> Bool {
        done.withLock { done in
            defer { done = true }
            return !done
        }
    }
}

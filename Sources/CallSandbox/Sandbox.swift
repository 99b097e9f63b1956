import Foundation
import Hummingbird
public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// A local emulator of Pipedrive CallLogs (`/v1/…`), Telnyx call recordings (`/v2/…`) and VoipNow
/// phone-call events (`/uapi/…`) on one port, with the validation, status codes, error bodies,
/// pagination, rate limits and hazards of `research/api-contract.md`, plus fault injection and
/// introspection under `/_sandbox/`.
///
/// Run it like any `Service`:
/// ```swift
/// let sandbox = Sandbox(configuration: .random(), logger: logger)
/// let group = ServiceGroup(configuration: .init(services: [sandbox], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
/// or, in tests, with ``withSandbox(_:logger:_:)``.
public final class Sandbox: Service {
    public let configuration: SandboxConfiguration
    private let logger: Logger
    private let files: SandboxFiles
    private let state: SandboxState
    private let telnyx: TelnyxPhone
    private let lifecycle = Lifecycle()

    public init(configuration: SandboxConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        files = configuration.stateDirectory.map { SandboxFiles(root: $0, persistent: true) } ?? .temporary()
        state = SandboxState(configuration: configuration, files: files, logger: logger)
        telnyx = TelnyxPhone(configuration: configuration, state: state, files: files, logger: logger)
    }

    deinit {
        if !files.persistent { try? FileManager.default.removeItem(atPath: files.root) }
    }

    /// Loads the state, listens, and serves until cancelled or shut down gracefully.
    /// - Throws: ``SandboxError`` for a bad configuration or an unreadable state directory, or the
    ///   server's error (e.g. the port is taken).
    ///
    /// A sandbox with a state directory holds it alone while it runs (a second one there fails
    /// with ``SandboxError/Code/stateInUse``) and publishes its ``SandboxAddress`` in it once it
    /// listens (``SandboxAddress/serving(_:)``).
    public func run() async throws {
        lifecycle.starting()
        var claim: SandboxClaim?
        do {
            try configuration.validate()
            if files.persistent { claim = try SandboxClaim(files: files) }
            try await state.load()
            if let seed = configuration.crmSeed { await state.changeCRM { crm, now in crm.upsert(seed, now: now) } }
            try telnyx.webhooks.loadKey(files: files)
            let core = SandboxCore(configuration: configuration, state: state, files: files, telnyx: telnyx)
            let lifecycle = self.lifecycle
            let logger = self.logger
            let published = claim
            let telnyx = self.telnyx
            let load = Mutex<Task<Void, Never>?>(nil)
            defer {
                load.withLock { $0?.cancel() }
                telnyx.webhooks.stop()
            }
            let app = Application(
                router: Self.buildRouter(core),
                configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? core.configuration.port
                    logger.info("sandbox listening", metadata: ["port": "\(port)", "faults": "\(core.configuration.faults.specification)"])
                    telnyx.links.serving(at: core.configuration.baseURL(port: port))
                    if let plan = core.configuration.telnyxLoad {
                        load.withLock { $0 = Task { await telnyx.run(plan) } }
                    }
                    do {
                        try published?.publish(core.configuration.address(port: port))
                    } catch {
                        logger.error("cannot publish the sandbox's address", metadata: ["error": "\(error)"])
                    }
                    lifecycle.running(port: port)
                },
                logger: logger
            )
            try await app.run()
            await state.flush()
            claim?.release()
            lifecycle.stopped(nil)
        } catch {
            await state.flush()
            claim?.release()
            lifecycle.stopped(error)
            throw error
        }
    }

    static func buildRouter(_ core: SandboxCore) -> Router<SandboxRequestContext> {
        let router = Router(context: SandboxRequestContext.self)
        router.add(middleware: SandboxMiddleware(core: core))
        PipedriveRoutes(core: core).register(on: router)
        PipedriveCRMRoutes(core: core).register(on: router)
        TelnyxRoutes(core: core).register(on: router)
        VoipNowRoutes(core: core).register(on: router)
        IntrospectionRoutes(core: core).register(on: router)
        CRMIntrospectionRoutes(core: core).register(on: router)
        TelnyxIntrospectionRoutes(core: core).register(on: router)
        return router
    }

    /// Waits until the server listens and returns its port (the one picked for port 0).
    /// - Throws: the error `run()` failed with, or ``SandboxError`` `.notRunning` when it stopped.
    public func waitUntilRunning() async throws -> Int {
        try await lifecycle.wait()
    }

    // MARK: Introspection

    /// Every call log, deleted ones included, in creation order.
    public func callLogs() async -> [SandboxCallLog] { await state.callLogs() }

    /// One call log, deleted or not.
    public func callLog(id: String) async -> SandboxCallLog? { await state.callLog(id) }

    /// The file holding the audio attached to a call log (nil when none, or deleted).
    public func recordingPath(callLogId: String) async -> String? { await state.recordingPath(callLogId) }

    /// Makes a call log with this id exist (as one made before callrec ran would); returns false
    /// when it existed already.
    @discardableResult
    public func seedCallLog(id: String, startTime: String = "2026-01-01 00:00:00") async -> Bool {
        let existed = await state.callLog(id) != nil
        _ = await state.seedCallLog(id: id, startTime: startTime)
        return !existed
    }

    /// Adds a Telnyx recording and returns its id (`id`, or a new UUID).
    @discardableResult
    public func seedTelnyxRecording(id: String? = nil) async -> String {
        await state.seedTelnyxRecording(id: id).id
    }

    /// The Ed25519 public key the Telnyx webhooks are signed with (base64 of its 32 bytes); the
    /// state directory's once ``run()`` loaded it.
    public var telnyxPublicKey: String { telnyx.webhooks.publicKey }

    /// The seed of the Telnyx webhook faults and of the lengths of calls ordered without one.
    public var telnyxSeed: UInt64 { telnyx.seed }

    /// Where the simulated calls' webhooks go from now on (nil: nowhere).
    public func setTelnyxWebhook(_ url: String?) { telnyx.webhooks.url = url }

    /// The simulated Telnyx calls, oldest first, with their deliveries and the call log their
    /// audio went to.
    public func telnyxCalls() async -> [SandboxTelnyxCall] { await telnyx.calls() }

    /// Whether a Telnyx recording exists and was not deleted.
    public func telnyxRecordingExists(_ id: String) async -> Bool { await state.telnyxRecording(id) != nil }

    /// Every Telnyx recording, deleted ones included (``SandboxTelnyxRecording/deleted``).
    public func telnyxRecordings() async -> [SandboxTelnyxRecording] { await state.allTelnyxRecordings() }

    /// Registers a VoipNow phone-call event on `extension` and returns its id.
    /// - Parameters:
    ///   - userId: `@me` (the token's user) or a numeric user id owning the extension.
    ///   - type: 0 DialIn, 1 DialOut, 2 Hangup.
    @discardableResult
    public func seedVoipNowEvent(userId: String = "@me", extension number: String, type: Int) async -> String {
        await state.seedVoipNowEvent(userId: userId, extension: number, type: type, url: nil, method: nil, note: nil).id
    }

    /// The live (not deleted) VoipNow events, of one extension or of all.
    public func voipNowEvents(extension number: String? = nil) async -> [SandboxVoipNowEvent] {
        await state.voipNowEvents(extension: number)
    }

    /// Requests, tokens, 429s and faults since the start.
    public func counters() async -> SandboxCounters { await state.currentCounters() }

    /// API requests served (all routes, or one, e.g. `POST /v1/callLogs`).
    public func requestCount(route: String? = nil) async -> Int {
        let counters = await state.currentCounters()
        return route.map { counters.requestsPerRoute[$0] ?? 0 } ?? counters.requests
    }

    /// Pipedrive tokens spent today.
    public func tokensSpent() async -> Int { await state.currentCounters().tokensSpent }

    /// 429s served (burst, budget and injected).
    public func rateLimitedCount() async -> Int { await state.currentCounters().rateLimited }

    /// Everything `GET /_sandbox/state` shows.
    public func snapshot() async -> SandboxSnapshot { await state.snapshot() }

    // MARK: CRM

    /// Upserts the seed's persons, organizations, deals, leads and users (as `POST /_sandbox/crm`).
    public func seedCRM(_ seed: CRMSeed) async {
        await state.changeCRM { crm, now in crm.upsert(seed, now: now) }
    }

    /// Replaces the CRM with a generated account (as `POST /_sandbox/crm/generate`).
    @discardableResult
    public func generateCRM(_ generation: CRMGeneration) async -> SandboxCRMCounts {
        await state.changeCRM { crm, now in
            crm.removeAll()
            crm.upsert(generation.make(now: Date(timeIntervalSince1970: TimeInterval(now.seconds))), now: now)
            return crm.counts
        }
    }

    /// What the CRM holds (`GET /_sandbox/crm/stats`).
    public func crmCounts() async -> SandboxCRMCounts { await state.readCRM { $0.counts } }

    /// Starts a new Pipedrive budget day (tokens spent back to 0, burst window emptied).
    public func resetBudget() async { await state.resetBudget() }
}

/// Start/stop state behind a lock, so `waitUntilRunning()` can wait for the bound port.
private final class Lifecycle: Sendable {
    private enum Phase {
        case waiting([CheckedContinuation<Int, any Error>])
        case running(Int)
        case stopped(any Error)
    }

    private let phase = Mutex(Phase.waiting([]))

    func starting() {
        phase.withLock { phase in
            if case .stopped = phase { phase = .waiting([]) }
        }
    }

    func running(port: Int) {
        let waiters = phase.withLock { phase -> [CheckedContinuation<Int, any Error>] in
            defer { phase = .running(port) }
            if case .waiting(let waiters) = phase { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    func stopped(_ error: (any Error)?) {
        let failure = error ?? SandboxError(.notRunning, "the sandbox has stopped")
        let waiters = phase.withLock { phase -> [CheckedContinuation<Int, any Error>] in
            defer { phase = .stopped(failure) }
            if case .waiting(let waiters) = phase { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(throwing: failure) }
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            let result: Result<Int, any Error>? = phase.withLock { phase in
                switch phase {
                case .waiting(var waiters):
                    waiters.append(continuation)
                    phase = .waiting(waiters)
                    return nil
                case .running(let port): return .success(port)
                case .stopped(let error): return .failure(error)
                }
            }
            if let result { continuation.resume(with: result) }
        }
    }
}

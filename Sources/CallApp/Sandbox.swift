import AsyncHTTPClient
public import CallAPI
import CallAudio
import CallPipeline
public import CallSandbox
public import Foundation
public import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import UnixSignals

/// `upload --sandbox`: the run uploads to the sandbox whose state lives under
/// `<state>/sandbox`. One sandbox serves a state directory: the first run starts it in its own
/// process; a run that comes while it serves uses it (the address and credentials it publishes
/// there), and the serving run keeps it up until every run using it has ended.
public enum SandboxSharing {
    /// Runs `body` against the sandbox serving `directory` (another run's, or one started here,
    /// kept up after `body` until the runs using it have ended or `interrupted` returns).
    /// `notice` hears what a person should know (which sandbox, why it stays up).
    public static func run<T: Sendable>(directory: String, logger: Logger, notice: @escaping @Sendable (String) -> Void,
                                        interrupted: @escaping @Sendable () async -> Void,
                                        _ body: (any SandboxAccess) async throws -> T) async throws -> T {
        let use: SandboxUse
        do {
            use = try await SandboxUse(directory: directory)
        } catch let error as SandboxError {
            throw AppError(.usage, error.message)
        }
        defer { use.end() }
        // A sandbox that is starting there holds the directory before it publishes its address.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let address = SandboxAddress.serving(directory) {
                notice("sandbox: using the sandbox process \(address.pid) serves at \(address.url) (state: \(directory))")
                return try await body(RemoteSandbox(address: address))
            }
            let configuration = try SandboxCredentials.configuration(stateDirectory: directory)
            do {
                return try await withSandbox(configuration) { url, sandbox in
                    logger.info("sandbox started", metadata: ["url": "\(url.absoluteString)", "state": "\(directory)"])
                    let result = try await body(LocalSandbox(sandbox: sandbox, url: url.absoluteString, configuration: configuration))
                    try await keepServing(use, notice: notice, interrupted: interrupted)
                    return result
                }
            } catch let error as SandboxError where error.code == .stateInUse {
                // Another run took the directory first: use its sandbox once it is listening.
                guard ContinuousClock.now < deadline else { throw AppError(.usage, error.message) }
                try await Task.sleep(for: .milliseconds(25))
            }
        }
    }

    /// Keeps the sandbox up while other runs use it; `interrupted` (a signal) stops it anyway.
    private static func keepServing(_ use: SandboxUse, notice: @escaping @Sendable (String) -> Void,
                                    interrupted: @escaping @Sendable () async -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await use.waitUntilAlone {
                    notice("sandbox: other runs on this state still use it; it stops once they end (Ctrl-C: stop now)")
                }
            }
            group.addTask { await interrupted() }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// `callrec sandbox`: serves `configuration` until SIGTERM or SIGINT; `listening` hears the
    /// bound port once it listens (and the sandbox, for its Telnyx public key). A state directory
    /// another sandbox serves is a usage error.
    public static func serve(_ configuration: SandboxConfiguration, logger: Logger, listening: (Int, CallSandbox.Sandbox) -> Void) async throws {
        let sandbox = Sandbox(configuration: configuration, logger: logger)
        let services = ServiceGroup(configuration: .init(services: [sandbox], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                listening(try await sandbox.waitUntilRunning(), sandbox)
                try await group.waitForAll()
            }
        } catch let error as SandboxError where error.code == .stateInUse || error.code == .invalidConfiguration {
            // Two sandboxes on one state would each write their own over the other's.
            throw AppError(.usage, error.message)
        }
    }

    /// The CRM rows of `--seed FILE`.
    /// - Throws: ``AppError`` (usage) naming the file, and the field and the reason when it is
    ///   not a seed.
    public static func readSeed(_ path: String) throws -> CRMSeed {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AppError(.usage, "--seed \(path): cannot read the file")
        }
        do {
            return try CRMSeed.decode(data)
        } catch {
            throw AppError(.usage, "--seed \(path): \(error.message)")
        }
    }

    /// The sandbox's MP3 encoder for Telnyx recordings: CallAudio's one-pass transcode (LAME), on
    /// a thread of its own (it blocks).
    public static let mp3Encoder: SandboxConfiguration.MP3Encoder = { wav, mp3 in
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread {
                let outcome = Transcoder.transcodeInOnePass(path: wav, validation: ValidationConfiguration(), settings: TranscodeSettings(),
                                                            destination: mp3)
                if let part = outcome.part {
                    continuation.resume(with: Result {
                        if part.path != mp3 { try FileManager.default.moveItem(atPath: part.path, toPath: mp3) }
                    })
                } else {
                    let reason = outcome.encodeError ?? outcome.analysis.error
                    continuation.resume(throwing: AppError(.usage, "cannot encode the sandbox's MP3: \(reason.map { "\($0)" } ?? "too long for one part")"))
                }
            }
        }
    }

    /// The API environment that points every client at `sandbox`, over `base`.
    public static func environment(_ sandbox: any SandboxAccess, base: [String: String] = ProcessInfo.processInfo.environment) throws -> APIEnvironment {
        let address = sandbox.address
        var environment = base
        environment["PIPEDRIVE_API_URL"] = address.url + "/v1"
        environment["PIPEDRIVE_API_TOKEN"] = address.pipedriveToken
        environment["TELNYX_API_URL"] = address.url + "/v2"
        environment["TELNYX_API_KEY"] = address.telnyxKey
        environment["VOIPNOW_API_URL"] = address.url
        environment["VOIPNOW_ACCESS_TOKEN"] = address.voipnowToken
        return try APIClients.environment(config: nil, environment: environment)
    }

    /// Call logs that sidecars name by call_log_id exist in a real account before the run; in the
    /// sandbox they are made first (`notice` hears of each one made).
    public static func seedNamedCallLogs(in directory: String, sandbox: any SandboxAccess, notice: (String) -> Void) async throws {
        for id in namedCallLogs(in: directory).sorted() {
            if try await sandbox.seedCallLog(id) { notice("sandbox: made call log \(id), which a sidecar names by call_log_id") }
        }
    }

    static func namedCallLogs(in directory: String) -> Set<String> {
        guard let scan = try? Scanner.scan(root: directory) else { return [] }
        var ids: Set<String> = []
        for file in scan.files {
            guard let path = file.sidecarPath, let data = FileManager.default.contents(atPath: path),
                  let id = Sidecar.parse(data).sidecar?.callLogId else { continue }
            ids.insert(id)
        }
        return ids
    }
}

/// What `upload --sandbox` needs of a sandbox, in this process or in another one.
public protocol SandboxAccess: Sendable {
    /// Its address and credentials.
    var address: SandboxAddress { get }
    /// Makes the call log `id` exist; true when it did not before.
    func seedCallLog(_ id: String) async throws -> Bool
    /// Everything it holds now.
    func snapshot() async throws -> SandboxSnapshot
}

/// The sandbox this process serves.
public struct LocalSandbox: SandboxAccess {
    public let sandbox: CallSandbox.Sandbox
    public let address: SandboxAddress

    public init(sandbox: CallSandbox.Sandbox, url: String, configuration: SandboxConfiguration) {
        self.sandbox = sandbox
        address = SandboxAddress(url: url, pid: ProcessInfo.processInfo.processIdentifier, pipedriveToken: configuration.pipedriveToken,
                                 telnyxKey: configuration.telnyxKey, voipnowToken: configuration.voipnowToken)
    }

    public func seedCallLog(_ id: String) async throws -> Bool { await sandbox.seedCallLog(id: id) }
    public func snapshot() async throws -> SandboxSnapshot { await sandbox.snapshot() }
}

/// The sandbox another run serves, through its loopback-only introspection routes.
public struct RemoteSandbox: SandboxAccess {
    public let address: SandboxAddress

    public init(address: SandboxAddress) { self.address = address }

    public func seedCallLog(_ id: String) async throws -> Bool {
        var request = HTTPClientRequest(url: address.url + "/_sandbox/pipedrive/callLogs")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["id": id])))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created || response.status == .ok else {
            throw AppError(.usage, "the sandbox at \(address.url) did not make call log \(id): HTTP \(response.status.code)")
        }
        return response.status == .created
    }

    public func snapshot() async throws -> SandboxSnapshot {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: address.url + "/_sandbox/state"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 30)
        guard response.status == .ok else { throw AppError(.usage, "GET \(address.url)/_sandbox/state: HTTP \(response.status.code)") }
        return try SandboxSnapshot.decode(Data(body.readableBytesView))
    }
}

/// The sandbox of `upload --sandbox`: its state and made-up credentials persist under the state
/// directory, so a re-run meets the same call logs.
public enum SandboxCredentials {
    public static func configuration(stateDirectory: String) throws -> SandboxConfiguration {
        let fm = FileManager.default
        try fm.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = (stateDirectory as NSString).appendingPathComponent("credentials.json")
        var configuration: SandboxConfiguration
        if let data = fm.contents(atPath: path), let saved = try? JSONDecoder().decode([String: String].self, from: data),
           let p = saved["pipedrive"], let t = saved["telnyx"], let v = saved["voipnow"] {
            configuration = SandboxConfiguration(pipedriveToken: p, telnyxKey: t, voipnowToken: v)
        } else {
            configuration = SandboxConfiguration.random()
            let saved = ["pipedrive": configuration.pipedriveToken, "telnyx": configuration.telnyxKey, "voipnow": configuration.voipnowToken]
            guard fm.createFile(atPath: path, contents: try JSONEncoder().encode(saved), attributes: [.posixPermissions: 0o600]) else {
                // Without them a re-run would meet a sandbox whose state no longer matches its keys.
                throw AppError(.usage, "cannot write the sandbox's credentials to \(path)")
            }
        }
        let environment = ProcessInfo.processInfo.environment
        if let burst = environment["PIPEDRIVE_BURST"].flatMap({ Int($0) }), burst > 0 { configuration.burstPerTwoSeconds = burst }
        if let daily = environment["PIPEDRIVE_DAILY_TOKENS"].flatMap({ Int($0) }), daily > 0 { configuration.dailyTokens = daily }
        if let faults = environment["CALLREC_SANDBOX_FAULTS"], !faults.isEmpty {
            configuration.faults = try FaultPlan(specification: faults)
        }
        configuration.stateDirectory = stateDirectory
        return configuration
    }
}

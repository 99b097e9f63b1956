public import AsyncHTTPClient
public import CallAPI
public import CallJobs
public import CallPipeline
public import CallStore
public import Foundation
public import Logging

/// The API clients a command needs, built from the environment (DESIGN §7); those without
/// credentials are nil. Made only by ``with(environment:logger:_:)``, which owns the one HTTP
/// client and shuts it down once, however the command ends.
public struct APIClients: Sendable {
    public let environment: APIEnvironment
    public let apis: LiveDeleteAPIs
    public var pipedrive: PipedriveClient? { apis.pipedrive }
    /// The command's one HTTP client (nil when no API has credentials and none was asked for).
    public let http: HTTPClient?

    /// The API settings of DESIGN §7 from the environment, then `file` for what it leaves unset,
    /// every one checked before any work. `file` is a JSON config (``ConfigFile``: read and
    /// checked whole, sources included; its keys map onto the same variables, secrets read from
    /// its `*_file` keys) or KEY=VALUE lines.
    public static func environment(config file: String?,
                                   environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APIEnvironment {
        guard let file, ConfigFile.isJSON(file) else {
            do {
                return try APIEnvironment.load(environment: environment, file: file)
            } catch let error as APIError {
                throw AppError(.usage, error.message)
            }
        }
        let config = try ConfigFile.load(file)
        let (values, origins) = try config.apiVariables(environment: environment)
        do {
            return try APIEnvironment.load(environment: environment.merging(values) { env, _ in env })
        } catch let error as APIError {
            // The message names the variable; say which key of the file set it.
            let origin = origins.first { error.message.hasPrefix($0.key) }.map { " (set by --config \(file): \($0.value))" } ?? ""
            throw AppError(.usage, error.message + origin)
        }
    }

    /// Which of the API variables a JSON `--config` set (the environment left them unset), each
    /// with where: `PIPEDRIVE_API_TOKEN` → `--config F: pipedrive.api_token_file`. A message that
    /// names a variable the user never set can say where its value came from.
    public static func origins(config file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        guard let file, ConfigFile.isJSON(file), let config = try? ConfigFile.load(file),
              let (_, origins) = try? config.apiVariables(environment: environment) else { return [:] }
        return origins.mapValues { "--config \(file): \($0)" }
    }

    /// Runs `body` with the clients `environment` has credentials for; the HTTP client (made
    /// only when some API has credentials, or `alwaysHTTP`: the worker's pre-signed Telnyx
    /// downloads need none) is shut down when `body` ends, whatever happens.
    public static func with<T>(environment: APIEnvironment, alwaysHTTP: Bool = false, logger: Logger,
                               _ body: (APIClients) async throws -> T) async throws -> T {
        let needed = alwaysHTTP || environment.pipedriveToken != nil || environment.telnyxKey != nil
            || (environment.voipnowURL != nil && environment.voipnowToken != nil)
        guard needed else { return try await body(APIClients(environment: environment, http: nil, logger: logger)) }
        return try await withHTTPClient(HTTPClient.makeForAPIs()) { http in
            try await body(APIClients(environment: environment, http: http, logger: logger))
        }
    }

    private init(environment: APIEnvironment, http: HTTPClient?, logger: Logger) {
        self.environment = environment
        self.http = http
        var pipedrive: PipedriveClient?
        var telnyx: TelnyxClient?
        var voipnow: VoipNowClient?
        if let http {
            if let token = environment.pipedriveToken {
                pipedrive = PipedriveClient(baseURL: environment.pipedriveURL, token: token, limiter: PipedriveLimiter(environment: environment),
                                            httpClient: http, logger: logger)
            }
            if let key = environment.telnyxKey {
                telnyx = TelnyxClient(baseURL: environment.telnyxURL, key: key, httpClient: http, logger: logger)
            }
            if let url = environment.voipnowURL, let token = environment.voipnowToken {
                voipnow = VoipNowClient(baseURL: url, token: token, httpClient: http, logger: logger)
            }
        }
        apis = LiveDeleteAPIs(pipedrive: pipedrive, telnyx: telnyx, voipnow: voipnow)
    }

    public func deleteHandler(store: StoreSettings) -> DeleteJobHandler {
        DeleteJobHandler(apis: apis, spool: Spool(root: store.spoolDirectory), trash: Trash(root: store.trashDirectory))
    }

    /// What is missing to run these steps (empty: nothing).
    public func missingCredentials(for steps: [DeletionStep]) -> [String] {
        var missing: Set<String> = []
        for step in steps {
            switch DeletionTarget(step.target) {
            case .pipedrive, .pipedriveMarker:
                if apis.pipedrive == nil { missing.insert("PIPEDRIVE_API_TOKEN is not set (the recording has call logs to delete)") }
            case .telnyx:
                if apis.telnyx == nil { missing.insert("TELNYX_API_KEY is not set (the recording has a Telnyx recording to delete)") }
            case .voipnow:
                if apis.voipnow == nil && step.state == .pending {
                    missing.insert("VOIPNOW_API_URL and VOIPNOW_ACCESS_TOKEN are not set (the recording has a VoipNow event to delete)")
                }
            case .spool, .unknown:
                break
            }
        }
        return missing.sorted()
    }
}

/// Runs `body` with `http`, then shuts it down: the one teardown path of a command's HTTP client,
/// whatever `body` does.
public func withHTTPClient<T>(_ http: HTTPClient, _ body: (HTTPClient) async throws -> T) async throws -> T {
    do {
        let result = try await body(http)
        try? await http.shutdown()
        return result
    } catch {
        try? await http.shutdown()
        throw error
    }
}

/// How a command runs a worker until it returns: the CLI gives one that handles signals and
/// says what they do.
public typealias RunWorker = @Sendable (Worker<ContinuousClock>) async throws -> Void

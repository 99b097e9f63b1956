public import CallAPI
public import CallConsole
import CallPipeline
public import CallStore
public import Foundation
import Hummingbird
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// `callrec console`: the operator's console served alone, over the same store a worker uses.
public enum ConsoleServer {
    public static let passwordVariable = "CALLREC_CONSOLE_PASSWORD"

    /// The console's password: CALLREC_CONSOLE_PASSWORD, else the file `console.password_file`
    /// of the JSON `--config` names (one line). Never from the command line. A usage error
    /// (exit 2) when neither gives one: a console is never served without a password.
    public static func password(config: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ConsolePassword {
        guard let password = try configuredPassword(config: config, environment: environment) else {
            throw AppError(.usage, "the console needs a password: set \(passwordVariable), or name a file holding it with console.password_file in --config (never on the command line)")
        }
        return password
    }

    /// The console's password when one is configured (`worker --listen` mounts the console only
    /// then), nil when neither CALLREC_CONSOLE_PASSWORD nor `console.password_file` gives one; a
    /// usage error for a file that cannot be read or holds more than one line.
    public static func configuredPassword(config: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ConsolePassword? {
        if let text = environment[passwordVariable], let password = ConsolePassword(text) { return password }
        if let config, ConfigFile.isJSON(config), let file = try ConfigFile.load(config).consolePasswordFile {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw AppError(.usage, "console.password_file \(file): cannot read the file")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .newlines)
            guard let password = ConsolePassword(text), !text.contains(where: \.isNewline) else {
                throw AppError(.usage, "console.password_file \(file): the file must hold the password alone, on one line")
            }
            return password
        }
        return nil
    }

    /// The console's configuration with what the API environment gives: links into Pipedrive's
    /// web app (``PipedriveWebLinks``; `PIPEDRIVE_WEB_URL`), and with Pipedrive credentials the
    /// reconcile page's passes (their spend recorded at once, for the overview).
    public static func configuration(_ configuration: ConsoleConfiguration, clients: APIClients, store: any CallStore, logger: Logger,
                                      environment: [String: String] = ProcessInfo.processInfo.environment) -> ConsoleConfiguration {
        var configuration = configuration
        configuration.pipedriveWebURL = PipedriveWebLinks.base(apiURL: clients.environment.pipedriveURL, configured: environment[PipedriveWebLinks.variable])
        if let pipedrive = clients.pipedrive {
            let recorder = PipedriveSpendRecorder(limiter: pipedrive.limiter, store: store, logger: logger)
            configuration.reconcile = { options, actor in
                let report = try await ReconcileRun.pass(store: store, clients: clients, options: options, logger: logger, actor: actor)
                await recorder.flush()
                return report
            }
        }
        return configuration
    }

    /// Serves the console at `address` until SIGTERM/SIGINT; `onRunning` hears the URL once the
    /// server listens (the port the kernel picked for 0). With `apiEnvironment`, the API clients
    /// it configures serve the reconcile page and the links (``configuration(_:clients:store:logger:environment:)``).
    public static func serve(store settings: StoreSettings, address: ListenAddress, configuration: ConsoleConfiguration, apiEnvironment: APIEnvironment? = nil,
                             logger: Logger, onRunning: @escaping @Sendable (String) -> Void) async throws {
        let store = try await settings.open(logger: logger)
        do {
            if let apiEnvironment {
                try await APIClients.with(environment: apiEnvironment, logger: logger) { clients in
                    try await clients.recordingPipedriveSpend(to: store, logger: logger) {
                        try await serve(store: store, address: address, configuration: Self.configuration(configuration, clients: clients, store: store, logger: logger),
                                        logger: logger, onRunning: onRunning)
                    }
                }
            } else {
                try await serve(store: store, address: address, configuration: configuration, logger: logger, onRunning: onRunning)
            }
        } catch {
            try? await store.close()
            throw error
        }
        try? await store.close()
    }

    private static func serve(store: any CallStore, address: ListenAddress, configuration: ConsoleConfiguration, logger: Logger,
                              onRunning: @escaping @Sendable (String) -> Void) async throws {
        let console = try Console(store: store, configuration: configuration, logger: logger)
        let router = Router()
        console.register(on: router)
        router.get("/") { _, _ in Response.redirect(to: "\(Console.prefix)/") }
        var quiet = logger
        quiet.logLevel = .warning
        let application = Application(router: router, configuration: .init(address: .hostname(address.host, port: address.port)),
                                      onServerRunning: { channel in
                                          let bound = ListenAddress(host: address.host, port: channel.localAddress?.port ?? address.port)
                                          onRunning("http://\(bound)\(Console.prefix)/")
                                      },
                                      logger: quiet)
        let group = ServiceGroup(configuration: .init(services: [.init(service: store), .init(service: application)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: quiet))
        do {
            try await group.run()
        } catch {
            throw WebhookServer.listenError(error, address: address) ?? error
        }
    }
}

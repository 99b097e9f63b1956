public import Foundation
public import Logging
import ServiceLifecycle

/// Runs a sandbox for the duration of `body`: starts it in a task group, waits until it listens,
/// calls `body` with its base URL (`http://127.0.0.1:PORT`; append `/v1`, `/v2` or nothing for
/// VoipNow), and shuts it down gracefully whether `body` returns or throws.
public func withSandbox<T>(
    _ configuration: SandboxConfiguration,
    logger: Logger = Logger(label: "callrec.sandbox", factory: { _ in SwiftLogNoOpLogHandler() }),
    _ body: (URL, Sandbox) async throws -> T
) async throws -> T {
    let sandbox = Sandbox(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        let services = ServiceGroup(configuration: .init(services: [sandbox], gracefulShutdownSignals: [], logger: logger))
        group.addTask { try await services.run() }
        let value: T
        do {
            let port = try await sandbox.waitUntilRunning()
            let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
            value = try await body(URL(string: "http://\(host):\(port)")!, sandbox)
        } catch {
            await services.triggerGracefulShutdown()
            try? await group.waitForAll()
            throw error
        }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
        return value
    }
}

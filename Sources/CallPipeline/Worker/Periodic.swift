import Logging
import ServiceLifecycle

/// Runs `body` now and then every `interval` until a graceful shutdown or cancellation (the
/// loop of the worker's periodic services: reconcile, spool prune). A failure is logged as
/// `failure` and the next round comes anyway.
func everyUntilShutdown(_ interval: Duration, logger: Logger, failure: String, _ body: @escaping @Sendable () async throws -> Void) async throws {
    do {
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await body()
                } catch is CancellationError {
                    return
                } catch {
                    logger.error("\(failure)", metadata: ["error": "\(error)"])
                }
                try await Task.sleep(for: interval)
            }
        }
    } catch is CancellationError {
        return
    }
}

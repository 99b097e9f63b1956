import CallPipeline
import Logging
import ServiceLifecycle
import UnixSignals

/// Runs `group` with callrec's signal semantics. The first SIGTERM/SIGINT triggers a graceful
/// shutdown (running jobs get their grace period, then are released); a second one releases
/// them at once. swift-service-lifecycle takes one signal for one meaning only, so the signals
/// are handled here rather than by the group.
func runHandlingSignals(_ group: ServiceGroup, worker: CallPipeline.Worker,
                        first: @escaping @Sendable (UnixSignal) -> Void,
                        again: @escaping @Sendable (UnixSignal) -> Void = { _ in }) async throws {
    let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint)
    let watcher = Task {
        var count = 0
        for await signal in signals {
            count += 1
            if count == 1 {
                first(signal)
                await group.triggerGracefulShutdown()
            } else {
                again(signal)
                worker.stopNow()
            }
        }
    }
    defer { watcher.cancel() }
    try await group.run()
}

/// A worker alone in a service group, run until it returns, with the signal semantics above.
func runWorkerHandlingSignals(_ worker: CallPipeline.Worker, logger: Logger, first: @escaping @Sendable (UnixSignal) -> Void) async throws {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger))
    try await runHandlingSignals(group, worker: worker, first: first)
}

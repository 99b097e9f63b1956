public import CallJobs
import CallPipeline
public import Logging
public import ServiceLifecycle
public import UnixSignals

/// Runs `group` with callrec's signal semantics. The first SIGTERM/SIGINT triggers a graceful
/// shutdown (running jobs get their grace period, then are released); a second one releases
/// them at once. swift-service-lifecycle takes one signal for one meaning only, so the signals
/// are handled here rather than by the group.
public func runHandlingSignals(_ group: ServiceGroup, worker: CallJobs.Worker<ContinuousClock>,
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
public func runWorkerHandlingSignals(_ worker: CallJobs.Worker<ContinuousClock>, logger: Logger, first: @escaping @Sendable (UnixSignal) -> Void) async throws {
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger))
    try await runHandlingSignals(group, worker: worker, first: first)
}

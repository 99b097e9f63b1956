public import CallAPI
public import CallJobs
public import CallPipeline
public import CallStore
import Foundation
public import Logging
import Synchronization

/// `callrec reconcile` and `worker --reconcile-every`: one pass comparing the ledger with
/// Pipedrive, and with `apply` the deletions it registered run to their end.
public enum ReconcileRun {
    /// What a pass found and did, and what stopped it.
    public struct Outcome: Sendable {
        public var report: ReconcileReport
        /// The Pipedrive client's counters over the run.
        public var counters: PipedriveLimiter.Counters?
        /// A refused credential (listing, confirming, the Telnyx inventory): nothing is deleted
        /// on a pass that saw it.
        public var refused: APIError?
        /// What stopped the delete queue early (a refused credential, an unreachable API).
        public var halted: JobFailure?
        /// Deletions the run registered that did not finish.
        public var unfinished = 0
    }

    /// The pass, and with `options.apply` the delete queue run with `runWorker` until nothing
    /// is due; each recording's line says how its deletion ended.
    public static func run(store: any CallStore, settings: StoreSettings, clients: APIClients, options: Reconciler.Options,
                           logger: Logger, runWorker: RunWorker) async throws -> Outcome {
        let refused = Mutex<APIError?>(nil)
        var outcome = Outcome(report: try await pass(store: store, clients: clients, options: options, logger: logger) { error in
            refused.withLock { $0 = $0 ?? error }
        })
        if options.apply, outcome.report.abort == nil {
            let due = try await store.queueStats().dueByQueue[QueueName.delete.rawValue] ?? 0
            if due > 0 || outcome.report.totals.registered + outcome.report.totals.resumed > 0 {
                outcome.halted = try await runDeleteQueue(store: store, handler: clients.deleteHandler(store: settings), logger: logger,
                                                          runWorker: runWorker)
            }
            for index in outcome.report.recordings.indices {
                guard let id = outcome.report.recordings[index].deletionID, outcome.report.recordings[index].action != "none",
                      let deletion = try await store.deletion(id: id) else { continue }
                if deletion.finishedAt != nil {
                    outcome.report.recordings[index].result = "deleted"
                } else {
                    outcome.unfinished += 1
                    let open = deletion.steps.filter { !$0.state.isSettled }
                    outcome.report.recordings[index].result = "not finished: " + open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { " (\($0))" } ?? "")" }.joined(separator: "; ")
                }
            }
        }
        outcome.counters = await clients.pipedrive?.counters
        let pipedriveStop = await clients.pipedrive?.stoppedBy
        outcome.refused = pipedriveStop.flatMap { $0.code == .credentialsRefused ? $0 : nil } ?? refused.withLock { $0 }
        return outcome
    }

    /// One pass with `clients` (also what `worker --reconcile-every` runs). `refused` hears of a
    /// credential the Telnyx inventory met refused (a warning in the report; the Pipedrive
    /// client keeps its own).
    /// `actor`: who the deletions' audit names (default: this process).
    public static func pass(store: any CallStore, clients: APIClients, options: Reconciler.Options, logger: Logger, actor: String? = nil,
                            refused: (@Sendable (APIError) -> Void)? = nil) async throws -> ReconcileReport {
        var reconciler = Reconciler(store: store, directory: clients.apis, planner: DeletionPlanner(store: store, actor: actor ?? WorkerConfiguration.defaultOwner()),
                                    options: options, logger: logger)
        if let telnyx = clients.apis.telnyx {
            reconciler.providerInventory = {
                do {
                    return Set(try await telnyx.allRecordings().map { $0.id.lowercased() })
                } catch let error as APIError where error.code == .credentialsRefused {
                    refused?(error)
                    throw error
                }
            }
        }
        return try await reconciler.run()
    }
}

import ArgumentParser
import CallApp
import CallAPI
import CallPipeline
import Foundation

extension CallRecCommand {
    struct Reconcile: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find call logs deleted in Pipedrive and delete their recordings everywhere (plan only, unless --apply).",
            discussion: """
                Lists Pipedrive's call logs (20 tokens per 50) to find the call logs of uploaded \
                recordings that are missing, and confirms each with a GET (2 tokens): only a definite \
                404/410 counts. A listing gap, a 401/403, a timeout or a 5xx is never evidence, and a \
                pass that saw any API error deletes nothing. Before acting it checks that a known call \
                log is still listed and still answers 200 (the same account as before). More planned \
                deletions than --max-delete (default: 20 recordings or 5 % of the uploaded ones, \
                whichever is smaller, at least 1) are listed, then refused: the pass deletes nothing \
                and says the cap and how to go on (--max-delete N, or --force). Missing local files \
                and missing provider recordings are reported, never deleted. --apply runs the same \
                cascade as `callrec delete` for every planned recording; a call log callrec did not \
                create (the sidecar's call_log_id) is left and reported unless \
                --include-foreign-call-logs. Exit codes: 0 clean or done, 1 the pass was aborted or \
                refused or a deletion did not finish (an API that cannot be reached included), 2 usage \
                or configuration, including a credential an API refused (the message names the variable).
                """
        )

        @Flag(help: "Delete what the pass finds (otherwise only print the plan).")
        var apply = false

        @Option(help: "Abort when more recordings than this would be deleted (default: min(20, 5 % of the uploaded recordings), at least 1).")
        var maxDelete: Int?

        @Flag(help: "Go on beyond --max-delete, and when the listing shows none of the known call logs.")
        var force = false

        @Flag(help: "Delete call logs callrec did not create too (attached with the sidecar's call_log_id), with everything they hold.")
        var includeForeignCallLogs = false

        @Option(help: "Read the API variables from this file (KEY=VALUE lines) instead of the environment.")
        var config: String?

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let maxDelete, maxDelete < 0 { throw ValidationError("--max-delete must not be negative") }
        }

        func run() async throws {
            var options = Reconciler.Options()
            options.apply = apply
            options.maxDelete = maxDelete
            options.force = force
            options.includeForeignCallLogs = includeForeignCallLogs
            let outcome = try await withClients(config: config, check: { environment in
                guard environment.pipedriveToken != nil else {
                    throw ValidationError("PIPEDRIVE_API_TOKEN is not set: reconcile compares the ledger with Pipedrive")
                }
            }) { clients, store, logger in
                try await ReconcileRun.run(store: store, settings: self.store.settings, clients: clients, options: options, logger: logger,
                                           runWorker: runDeleteWorker(logger: logger))
            }
            try global.emit(outcome.document, outcome.lines)
            // A refused credential (listing, confirming, the Telnyx inventory, a delete step):
            // exit 2, naming the variable; nothing is deleted on a pass that saw it.
            if let halted = outcome.halted { try stopped(by: halted, left: "The deletions stay open: a later run goes on from the step each stopped at.") }
            if let refusal = outcome.refused {
                try stopped(by: JobFailure(.halt, code: refusal.code.rawValue, refusal.message), left: "Fix it and run reconcile again.")
            }
            try fail(ExitStatus.someFailed, if: outcome.report.abort != nil || outcome.unfinished > 0)
        }
    }
}

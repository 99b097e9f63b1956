import ArgumentParser
import CallApp
import CallAPI
import CallPipeline
import Foundation

extension CallRecCommand {
    struct Reconcile: AsyncParsableCommand {
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
            let logger = global.makeLogger()
            let environment = try APIClients.environment(config: config)
            guard environment.pipedriveToken != nil else {
                throw ValidationError("PIPEDRIVE_API_TOKEN is not set: reconcile compares the ledger with Pipedrive")
            }
            var options = Reconciler.Options()
            options.apply = apply
            options.maxDelete = maxDelete
            options.force = force
            options.includeForeignCallLogs = includeForeignCallLogs
            let outcome = try await APIClients.with(environment: environment, logger: logger) { clients in
                try await store.settings.withStore(logger: logger) { store in
                    try await ReconcileRun.run(store: store, settings: self.store.settings, clients: clients, options: options, logger: logger,
                                               runWorker: runDeleteWorker(logger: logger))
                }
            }
            try Self.print(outcome.report, counters: outcome.counters, json: global.json)
            // A refused credential (listing, confirming, the Telnyx inventory, a delete step):
            // exit 2, naming the variable; nothing is deleted on a pass that saw it.
            if let halted = outcome.halted { try stopped(by: halted, left: "The deletions stay open: a later run goes on from the step each stopped at.") }
            if let refusal = outcome.refused {
                try stopped(by: JobFailure(.halt, code: refusal.code.rawValue, refusal.message), left: "Fix it and run reconcile again.")
            }
            if outcome.report.abort != nil || outcome.unfinished > 0 { throw ExitCode(ExitStatus.someFailed) }
        }

        struct Document: Encodable {
            var report: ReconcileReport
            var apiRequests: Int?
            var pipedriveTokensCharged: Int?
            var rateLimited: Int?

            enum CodingKeys: String, CodingKey {
                case report, apiRequests = "api_requests", pipedriveTokensCharged = "pipedrive_tokens_charged", rateLimited = "rate_limited"
            }
        }

        static func print(_ report: ReconcileReport, counters: PipedriveLimiter.Counters?, json: Bool) throws {
            if json {
                try writeJSON(Document(report: report, apiRequests: counters?.requests, pipedriveTokensCharged: counters?.tokensSpent,
                                       rateLimited: counters?.rateLimited))
                return
            }
            let t = report.totals
            for line in report.recordings where !line.evidence.isEmpty || line.action != "none" || line.findings.contains(where: { $0.code == "listing_gap" || $0.code == "deletion_open" }) {
                Swift.print("\(line.action.padding(toLength: 12, withPad: " ", startingAt: 0)) \(line.path) (\(line.key.prefix(12))…)")
                for finding in line.findings { Swift.print("    \(finding.code): \(finding.detail)") }
                if !line.targets.isEmpty { Swift.print("    targets: \(line.targets.joined(separator: ", "))") }
                if let result = line.result { Swift.print("    result: \(result)") }
            }
            var local: [String: Int] = [:]
            for line in report.recordings {
                for finding in line.findings where ["local_file_missing", "spool_missing", "provider_recording_missing"].contains(finding.code) {
                    local[finding.code, default: 0] += 1
                }
            }
            for (code, count) in local.sorted(by: { $0.key < $1.key }) {
                Swift.print("reported only: \(count) recording(s) with \(code) (--json lists them)")
            }
            for warning in report.warnings { Swift.print("warning: \(warning)") }
            if let abort = report.abort {
                Swift.print("aborted (\(abort.code)): \(abort.message)")
            }
            Swift.print("\(report.outcome.rawValue): \(t.uploadedRecordings) uploaded recording(s), \(t.knownCallLogs) call log(s) known, \(t.listedCallLogs) listed in \(t.pages) page(s); \(t.candidates) missing from the listing, \(t.confirmedGone) confirmed gone, \(t.listingGaps) listing gap(s); \(t.plannedRecordings) recording(s) to delete (cap \(t.cap)); \(t.tokensSpent) Pipedrive tokens for the pass\(counters.map { ", \($0.tokensSpent) charged in all" } ?? "") in \(String(format: "%.1f", t.wallSeconds)) s")
        }
    }
}

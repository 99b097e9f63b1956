import ArgumentParser
import CallAPI
import CallApp
import CallJobs
import CallPipeline
import Foundation
import Logging

// Deleting recordings everywhere: one named (delete), or the ones whose call logs are gone (reconcile).

extension CallRecCommand {
    struct Delete: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one recording everywhere: every part's Pipedrive call log, its Telnyx recording, its VoipNow event, its spool.",
            discussion: """
                Name the recording by the call log of any of its parts (--call-log; deleting one part's call log deletes the whole \
                recording), by its key, or by its source path (--recording: every version callrec uploaded from that path, when the file \
                was replaced after an upload). The deletion is a durable intent with one step per target, run in this process: remote \
                deletes first (404/410 count as done), then the spool is moved to <state>/trash/ (`callrec trash purge` empties it). After \
                Ctrl-C or a crash, running the same command again resumes at the step it stopped. The recording keeps a tombstone: no \
                later upload or enqueue takes it up again. A call log callrec did not create (the sidecar's call_log_id) is left, and the \
                report says so: Pipedrive removes a recording only with its call log, and that call log may hold what someone else wrote \
                (--include-foreign-call-logs deletes it too). A step that can never succeed (a provider reference no delete can address, \
                an event the provider refuses to delete) keeps the deletion open; --skip-step gives it up so that the deletion completes, \
                and the audit table records who asked. Credentials come from the environment (PIPEDRIVE_API_TOKEN, TELNYX_API_KEY, \
                VOIPNOW_API_URL + VOIPNOW_ACCESS_TOKEN) or --config. Exit codes: 0 deleted (or deleted before), 1 a step failed or is \
                still waiting (an API that cannot be reached included), 2 usage or configuration (a credential the API refused included: \
                the deletion stays open, and the same command with it mended goes on).
                """
        )

        @Option(help: "The Pipedrive call log of any part of the recording.") var callLog: String?
        @Option(help: "The recording: its source path (every version uploaded from it, or a file with the same bytes) or its key (SHA-256).") var recording: String?
        @Flag(help: "Delete call logs callrec did not create too (attached with the sidecar's call_log_id), with everything they hold.") var includeForeignCallLogs = false
        @Option(help: ArgumentHelp(
            "Give up a step of the recording's deletion that cannot succeed, so that the deletion completes without it (repeatable).",
            discussion: "TARGET is the step's target as the report prints it (pipedrive:ID, telnyx:ID, voipnow:{…}, spool) or its kind (voipnow, telnyx, pipedrive, spool) when one open step has it. What the step names is left in place; the audit table records who asked.",
            valueName: "TARGET"))
        var skipStep: [String] = []
        @Option(help: "Read the API variables (and for upload the sources, state and database) from this file: JSON with comments, or KEY=VALUE lines. The environment wins over it.") var config: String?
        var configFile: String? { config }

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            guard (callLog == nil) != (recording == nil) else {
                throw ValidationError("name the recording with exactly one of --call-log ID or --recording PATH|KEY")
            }
            if let callLog, callLog.trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("--call-log must not be empty") }
            if let recording, recording.isEmpty { throw ValidationError("--recording must not be empty") }
            if skipStep.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) { throw ValidationError("--skip-step must name a step") }
        }

        func run() async throws {
            let request = DeleteRequest(callLog: callLog, recording: recording, includeForeignCallLogs: includeForeignCallLogs, skipStep: skipStep)
            let (document, halted) = try await withClients(config: config) { clients, store, logger in
                try await request.run(store: store, settings: try self.store.settings(config: config), clients: clients, logger: logger,
                                      notice: standardError, runWorker: runDeleteWorker(logger: logger))
            }
            try global.emit(document, document.lines)
            // A refused credential: exit 2; the deletion stays open for the same command with the
            // variable mended.
            if let halted { try stopped(by: halted, left: "The deletion stays open: the same command goes on from the step it stopped at.", origins: APIClients.origins(config: config)) }
            try fail(ExitStatus.someFailed, if: !document.succeeded)
        }
    }

    struct Reconcile: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find call logs deleted in Pipedrive and delete their recordings everywhere (plan only, unless --apply).",
            discussion: """
                Lists Pipedrive's call logs (20 tokens per 50) to find the call logs of uploaded recordings that are missing, and confirms \
                each with a GET (2 tokens): only a definite 404/410 counts. A listing gap, a 401/403, a timeout or a 5xx is never \
                evidence, and a pass that saw any API error deletes nothing. Before acting it checks that a known call log is still listed \
                and still answers 200 (the same account as before). More planned deletions than --max-delete (default: 20 recordings or 5 \
                % of the uploaded ones, whichever is smaller, at least 1) are listed, then refused: the pass deletes nothing and says the \
                cap and how to go on (--max-delete N, or --force). Missing local files and missing provider recordings are reported, never \
                deleted. --apply runs the same cascade as `callrec delete` for every planned recording; a call log callrec did not create \
                (the sidecar's call_log_id) is left and reported unless --include-foreign-call-logs. Exit codes: 0 clean or done, 1 the \
                pass was aborted or refused or a deletion did not finish (an API that cannot be reached included), 2 usage or \
                configuration, including a credential an API refused (the message names the variable).
                """
        )

        @Flag(help: "Delete what the pass finds (otherwise only print the plan).") var apply = false
        @Option(help: "Abort when more recordings than this would be deleted (default: min(20, 5 % of the uploaded recordings), at least 1).") var maxDelete: Int?
        @Flag(help: "Go on beyond --max-delete, and when the listing shows none of the known call logs.") var force = false
        @Flag(help: "Delete call logs callrec did not create too (attached with the sidecar's call_log_id), with everything they hold.") var includeForeignCallLogs = false
        @Option(help: "Read the API variables (and for upload the sources, state and database) from this file: JSON with comments, or KEY=VALUE lines. The environment wins over it.") var config: String?
        var configFile: String? { config }

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
            let outcome = try await withClients(config: config, pipedriveFor: "reconcile compares the ledger with Pipedrive") { clients, store, logger in
                try await ReconcileRun.run(store: store, settings: try self.store.settings(config: config), clients: clients, options: options, logger: logger,
                                           runWorker: runDeleteWorker(logger: logger))
            }
            try global.emit(outcome.document, outcome.lines)
            // A refused credential (listing, confirming, the Telnyx inventory, a delete step):
            // exit 2, naming the variable; nothing is deleted on a pass that saw it.
            if let halted = outcome.halted { try stopped(by: halted, left: "The deletions stay open: a later run goes on from the step each stopped at.", origins: APIClients.origins(config: config)) }
            if let refusal = outcome.refused {
                try stopped(by: JobFailure(.halt, code: refusal.code.rawValue, refusal.message), left: "Fix it and run reconcile again.")
            }
            try fail(ExitStatus.someFailed, if: outcome.report.abort != nil || outcome.unfinished > 0)
        }
    }
}

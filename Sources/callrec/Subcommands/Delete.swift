import ArgumentParser
import CallApp
import Logging

extension CallRecCommand {
    struct Delete: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one recording everywhere: every part's Pipedrive call log, its Telnyx recording, its VoipNow event, its spool.",
            discussion: """
                Name the recording by the call log of any of its parts (--call-log; deleting one part's \
                call log deletes the whole recording), by its key, or by its source path (--recording: \
                every version callrec uploaded from that path, when the file was replaced after an \
                upload). The deletion is a durable intent with one step per target, run in this \
                process: remote deletes first (404/410 count as done), then the spool is moved to \
                <state>/trash/ (`callrec trash purge` empties it). After Ctrl-C or a crash, running the \
                same command again resumes at the step it stopped. The recording keeps a tombstone: no \
                later upload or enqueue takes it up again. A call log callrec did not create (the \
                sidecar's call_log_id) is left, and the report says so: Pipedrive removes a recording \
                only with its call log, and that call log may hold what someone else wrote \
                (--include-foreign-call-logs deletes it too). A step that can never succeed (a provider \
                reference no delete can address, an event the provider refuses to delete) keeps the \
                deletion open; --skip-step gives it up so that the deletion completes, and the audit \
                table records who asked. Credentials come from the environment (PIPEDRIVE_API_TOKEN, \
                TELNYX_API_KEY, VOIPNOW_API_URL + VOIPNOW_ACCESS_TOKEN) or --config. Exit codes: 0 \
                deleted (or deleted before), 1 a step failed or is still waiting (an API that cannot \
                be reached included), 2 usage or configuration (a credential the API refused \
                included: the deletion stays open, and the same command with it mended goes on).
                """
        )

        @Option(help: "The Pipedrive call log of any part of the recording.")
        var callLog: String?

        @Option(help: "The recording: its source path (every version uploaded from it, or a file with the same bytes) or its key (SHA-256).")
        var recording: String?

        @Flag(help: "Delete call logs callrec did not create too (attached with the sidecar's call_log_id), with everything they hold.")
        var includeForeignCallLogs = false

        @Option(help: ArgumentHelp(
            "Give up a step of the recording's deletion that cannot succeed, so that the deletion completes without it (repeatable).",
            discussion: "TARGET is the step's target as the report prints it (pipedrive:ID, telnyx:ID, voipnow:{…}, spool) or its kind (voipnow, telnyx, pipedrive, spool) when one open step has it. What the step names is left in place; the audit table records who asked.",
            valueName: "TARGET"))
        var skipStep: [String] = []

        @Option(help: "Read the API variables from this file (KEY=VALUE lines) instead of the environment.")
        var config: String?

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
                try await request.run(store: store, settings: self.store.settings, clients: clients, logger: logger,
                                      notice: standardError, runWorker: runDeleteWorker(logger: logger))
            }
            try global.emit(document, document.lines)
            // A refused credential: exit 2; the deletion stays open for the same command with the
            // variable mended.
            if let halted { try stopped(by: halted, left: "The deletion stays open: the same command goes on from the step it stopped at.") }
            try fail(ExitStatus.someFailed, if: !document.succeeded)
        }
    }
}

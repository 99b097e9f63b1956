import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallJobs
import CallPipeline
import CallStore
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension CallRecCommand {
    struct Delete: AsyncParsableCommand {
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
            let logger = global.makeLogger()
            let environment = try loadEnvironment(config: config)
            let wiring = DeleteWiring(environment: environment, logger: logger)
            let store: any CallStore
            do {
                store = try await self.store.open(logger: logger)
            } catch {
                await wiring.shutdown()
                throw error
            }
            do {
                let (document, halted) = try await delete(store: store, wiring: wiring, logger: logger)
                try? await store.close()
                await wiring.shutdown()
                try document.print(json: global.json)
                // A refused credential: exit 2; the deletion stays open for the same command
                // with the variable mended.
                if let halted { try stopped(by: halted, left: "The deletion stays open: the same command goes on from the step it stopped at.") }
                if !document.succeeded { throw ExitCode(ExitStatus.someFailed) }
            } catch {
                try? await store.close()
                await wiring.shutdown()
                throw error
            }
        }

        /// The report, and what stopped the deletion early (a refused credential, an unreachable API).
        func delete(store: any CallStore, wiring: DeleteWiring, logger: Logger) async throws -> (DeleteDocument, JobFailure?) {
            let planner = DeletionPlanner(store: store, actor: WorkerConfiguration.defaultOwner())
            var selectors: [DeletionPlanner.Selector] = []
            if let callLog {
                selectors = [.callLog(callLog.trimmingCharacters(in: .whitespaces))]
            } else if let recording {
                let isKey = recording.count == 64 && recording.allSatisfy(\.isHexDigit)
                selectors = isKey ? [.key(recording), .path(recording)] : [.path(recording)]
            }
            var versions: [Recording] = []
            var lastError: (any Error)?
            for selector in selectors {
                do {
                    versions = try await planner.resolveAll(selector)
                    break
                } catch {
                    lastError = error
                }
            }
            guard !versions.isEmpty else {
                return (DeleteDocument(status: "not_found", message: "\(lastError.map { "\($0)" } ?? "no such recording")"), nil)
            }
            let live = versions.filter { $0.state != .deleted }
            if !skipStep.isEmpty, live.count > 1 {
                throw ValidationError("--skip-step gives up a step of one recording's deletion, and \(recording ?? "") names \(live.count) not deleted yet (\(live.map(\.key).joined(separator: ", "))): name one with --recording KEY")
            }
            // Checked before anything is registered: the steps to skip exist, and the credentials
            // for the steps that will run are there.
            for target in live {
                var steps: [DeletionStep]
                if target.state == .deleting, let open = try await store.openDeletions().first(where: { $0.recordingKey == target.key }) {
                    steps = open.steps.map { step in
                        var step = step
                        if includeForeignCallLogs, step.state == .skipped, (step.detail ?? "").hasPrefix(DeletionPlanner.foreignCallLogNote) { step.state = .pending }
                        return step
                    }
                } else {
                    steps = DeletionPlanner.steps(parts: try await store.parts(key: target.key), refs: try await store.providerRefs(key: target.key),
                                                  includeForeign: includeForeignCallLogs)
                }
                var skipped = Set<String>()
                for name in skipStep {
                    do {
                        skipped.insert(try DeletionPlanner.match(name, in: steps).target)
                    } catch let error as DeleteError {
                        throw ValidationError("--skip-step \(name): \(error.message)")
                    }
                }
                let missing = wiring.missingCredentials(for: steps.filter { ($0.state == .pending || $0.state == .failed) && !skipped.contains($0.target) })
                if !missing.isEmpty {
                    throw ValidationError("\(missing.joined(separator: "; ")); nothing was registered")
                }
            }
            var what = callLog.map { "--call-log \($0)" } ?? "--recording \(recording ?? "")"
            if includeForeignCallLogs { what += " --include-foreign-call-logs" }
            for name in skipStep { what += " --skip-step \(name)" }
            var registrations: [String: DeletionPlanner.Registration] = [:]
            for target in versions {
                let registration = try await planner.register(key: target.key, reason: "cli: callrec delete \(what)", includeForeign: includeForeignCallLogs,
                                                              skipping: target.state == .deleted ? [] : skipStep, askedBy: Self.whoAsks())
                registrations[target.key] = registration
                if registration.outcome == .resumed {
                    standardError("resuming the deletion of \(target.path) (\(registration.deletionID ?? ""))")
                }
            }
            var halted: JobFailure?
            if registrations.values.contains(where: { $0.outcome != .alreadyDeleted }) {
                halted = try await runDeleteQueue(store: store, handler: wiring.handler(store: self.store), logger: logger)
            }
            var reports: [DeleteDocument.Version] = []
            for target in versions {
                reports.append(try await DeleteDocument.Version.load(store: store, recording: target, registration: registrations[target.key],
                                                                     hints: DeleteHints(store: self.store)))
            }
            return (DeleteDocument(versions: reports, named: callLog.map { "call log \($0)" } ?? recording ?? ""), halted)
        }

        /// Who asked for what the audit table records: the login (and who used sudo), the host, the process.
        static func whoAsks() -> String {
            var user = NSUserName()
            if let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty, sudo != user { user = "\(sudo) (sudo as \(user))" }
            return "\(user) on \(ProcessInfo.processInfo.hostName), callrec pid \(getpid())"
        }
    }
}

/// The commands a report prints for a deletion that needs a person: the same store options as
/// the run that printed them.
struct DeleteHints {
    let store: StoreOptions

    /// `--state DIR`, or `--database URL` when given on the command line (a URL from
    /// CALLREC_DATABASE is left to the environment; a password is never on the command line).
    var storeArguments: String {
        if let database = store.database { return "--database \(Self.quoted(database))" }
        return "--state \(Self.quoted(store.state))"
    }

    /// How `--skip-step` names `step` among `steps`: its kind when no other open step has it.
    static func name(of step: DeletionStep, among steps: [DeletionStep]) -> String {
        let kind = DeletionTarget(step.target).kind
        let sameKind = steps.filter { !$0.state.isSettled && DeletionTarget($0.target).kind == kind }
        return sameKind.count == 1 ? kind : step.target
    }

    func skip(key: String, step: DeletionStep, among steps: [DeletionStep]) -> String {
        "callrec delete --recording \(key) --skip-step \(Self.quoted(Self.name(of: step, among: steps))) \(storeArguments)"
    }

    func again(key: String) -> String { "callrec delete --recording \(key) \(storeArguments)" }

    /// Why a skipped step was left, in short (its detail has the whole story).
    static func why(left step: DeletionStep) -> String {
        let detail = step.detail ?? ""
        if detail.hasPrefix(DeletionPlanner.foreignCallLogNote) {
            return "callrec did not create it; --include-foreign-call-logs deletes it"
        }
        return detail.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "skipped"
    }

    /// What a person does about a deletion whose steps failed: for each failed step, what went
    /// wrong, and the two ways on (mend the cause and run again, or give the step up).
    func stuck(key: String, steps: [DeletionStep]) -> [String] {
        steps.filter { $0.state == .failed }.map { step in
            let cause = step.detail ?? "failed"
            let never = cause.hasPrefix("not sent:") || cause.hasPrefix("unknown")
            return "\(step.target) cannot be deleted: \(cause). "
                + (never ? "No run will ever send it; to finish the deletion without it, type: \(skip(key: key, step: step, among: steps))"
                         : "Mend the cause and type: \(again(key: key)); or, if it can never succeed, give it up: \(skip(key: key, step: step, among: steps))")
        }
    }

    static func quoted(_ text: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./:@*+=,%"))
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The API clients a deletion needs, built from the environment; those without credentials are nil.
struct DeleteWiring {
    let http: HTTPClient?
    let apis: LiveDeleteAPIs
    let environment: APIEnvironment

    init(environment: APIEnvironment, logger: Logger) {
        self.environment = environment
        let needed = environment.pipedriveToken != nil || environment.telnyxKey != nil
            || (environment.voipnowURL != nil && environment.voipnowToken != nil)
        let http = needed ? HTTPClient.makeForAPIs() : nil
        self.http = http
        var pipedrive: PipedriveClient?
        var telnyx: TelnyxClient?
        var voipnow: VoipNowClient?
        if let http {
            if let token = environment.pipedriveToken {
                let limiter = PipedriveLimiter(environment: environment)
                pipedrive = PipedriveClient(baseURL: environment.pipedriveURL, token: token, limiter: limiter, httpClient: http, logger: logger)
            }
            if let key = environment.telnyxKey {
                telnyx = TelnyxClient(baseURL: environment.telnyxURL, key: key, httpClient: http, logger: logger)
            }
            if let url = environment.voipnowURL, let token = environment.voipnowToken {
                voipnow = VoipNowClient(baseURL: url, token: token, httpClient: http, logger: logger)
            }
        }
        apis = LiveDeleteAPIs(pipedrive: pipedrive, telnyx: telnyx, voipnow: voipnow)
    }

    func handler(store: StoreOptions) -> DeleteJobHandler {
        DeleteJobHandler(apis: apis, spool: Spool(root: store.spoolDirectory), trash: CallPipeline.Trash(root: store.trashDirectory))
    }

    /// What is missing to run these steps (empty: nothing).
    func missingCredentials(for steps: [DeletionStep]) -> [String] {
        var missing: Set<String> = []
        for step in steps {
            switch DeletionTarget(step.target) {
            case .pipedrive, .pipedriveMarker:
                if apis.pipedrive == nil { missing.insert("PIPEDRIVE_API_TOKEN is not set (the recording has call logs to delete)") }
            case .telnyx:
                if apis.telnyx == nil { missing.insert("TELNYX_API_KEY is not set (the recording has a Telnyx recording to delete)") }
            case .voipnow:
                if apis.voipnow == nil && step.state == .pending {
                    missing.insert("VOIPNOW_API_URL and VOIPNOW_ACCESS_TOKEN are not set (the recording has a VoipNow event to delete)")
                }
            case .spool, .unknown:
                break
            }
        }
        return missing.sorted()
    }

    func shutdown() async {
        try? await http?.shutdown()
    }
}

extension StoreOptions {
    var trashDirectory: String { (state as NSString).appendingPathComponent("trash") }
}

/// The API settings of DESIGN §7, every one checked before any work (exit 2 with the reason).
func loadEnvironment(config: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> APIEnvironment {
    do {
        return try APIEnvironment.load(environment: environment, file: config)
    } catch let error as APIError {
        throw ValidationError(error.message)
    }
}

/// Runs the `delete` queue in this process until nothing is due (a retry due within five
/// minutes is waited for). SIGINT/SIGTERM release the running job — running the command again
/// resumes it; a second signal stops at once. Returns what stopped it early, if anything did (a
/// refused credential, an unreachable API).
@discardableResult
func runDeleteQueue(store: any CallStore, handler: DeleteJobHandler, logger: Logger) async throws -> JobFailure? {
    let worker = DeleteRun.worker(store: store, handler: handler, logger: logger)
    try await runWorkerHandlingSignals(worker, logger: logger) { signal in
        standardError("\n\(signal): stopping; the running step gets a moment to finish (again: stop at once). Run the command again to go on.")
    }
    switch worker.summary.stop {
    case .halted(let failure)?, .unavailable(let failure)?: return failure
    case .diskFull?, nil: return nil
    }
}

/// `callrec delete`'s report: every recording the selector named (``recordings``; several when
/// a path held several versions), and, when it named one, that recording's report at the top.
struct DeleteDocument: Encodable {
    struct RecordingInfo: Encodable {
        var key: String
        var path: String
        var state: String
        init(_ recording: Recording, state: RecordingState? = nil) {
            key = recording.key
            path = recording.path
            self.state = (state ?? recording.state).rawValue
        }
    }

    struct Step: Encodable {
        var target: String
        var state: String
        var httpStatus: Int?
        var detail: String?
        enum CodingKeys: String, CodingKey { case target, state, detail, httpStatus = "http_status" }
    }

    struct DeletionInfo: Encodable {
        var id: String
        var reason: String
        var finished: Bool
        var steps: [Step]
    }

    /// One recording: which one (key, path, when registered and uploaded, its call logs) and how
    /// its deletion went.
    struct Version: Encodable {
        var key: String
        var path: String
        var state: String
        var registeredAt: String
        var uploadedAt: String?
        var callLogs: [String]
        /// `deleted`, `already_deleted`, `failed` (a step failed), `not_finished` (waiting: a
        /// retry or a rate limit beyond this run).
        var status: String
        var deletion: DeletionInfo?
        var message: String?

        enum CodingKeys: String, CodingKey {
            case key, path, state, status, deletion, message
            case registeredAt = "registered_at", uploadedAt = "uploaded_at", callLogs = "call_logs"
        }

        var succeeded: Bool { status == "deleted" || status == "already_deleted" }

        static func load(store: any CallStore, recording named: Recording, registration: DeletionPlanner.Registration?,
                         hints: DeleteHints) async throws -> Version {
            let key = named.key
            let recording = try await store.recording(key: key) ?? named
            let parts = try await store.parts(key: key)
            let dates = ISO8601DateFormatter()
            var version = Version(key: key, path: recording.path, state: recording.state.rawValue, registeredAt: dates.string(from: recording.createdAt),
                                  uploadedAt: parts.compactMap(\.attachedAt).max().map(dates.string(from:)),
                                  callLogs: parts.compactMap(\.callLogID), status: "not_finished")
            guard let registration, registration.outcome != .alreadyDeleted, let deletionID = registration.deletionID,
                  let deletion = try await store.deletion(id: deletionID) else {
                let tombstone = try await store.tombstone(key: key)
                version.status = recording.state == .deleted ? "already_deleted" : "not_finished"
                version.message = recording.state == .deleted
                    ? "\(recording.path) was deleted before\(tombstone.map { " (\(dates.string(from: $0.deletedAt)), \($0.reason))" } ?? "")"
                    : "\(recording.path): not registered"
                return version
            }
            let steps = deletion.steps.sorted { $0.position < $1.position }
            version.deletion = DeletionInfo(id: deletion.id, reason: deletion.reason, finished: deletion.finishedAt != nil,
                                            steps: steps.map { Step(target: $0.target, state: $0.state.rawValue, httpStatus: $0.httpStatus, detail: $0.detail) })
            let left = steps.filter { $0.state == .skipped }.map { "\($0.target) (\(DeleteHints.why(left: $0)))" }
            let leftText = left.isEmpty ? nil : "left in place: " + left.joined(separator: "; ")
            if deletion.finishedAt != nil, recording.state == .deleted {
                version.status = "deleted"
                version.message = leftText.map { "\(recording.path): deleted; \($0)" }
                return version
            }
            if steps.contains(where: { $0.state == .failed }) {
                version.status = "failed"
                version.message = "\(recording.path): not every target could be deleted (the recording stays `deleting`, so nothing uploads it again). "
                    + hints.stuck(key: key, steps: steps).joined(separator: " ")
                return version
            }
            let job = try await store.jobs(JobQuery(uniqueKey: "delete:\(key)", limit: 1000)).max { $0.id < $1.id }
            if let job, JobState.live.contains(job.state) {
                version.message = "\(recording.path): still waiting; its delete job runs again at \(dates.string(from: job.runAt))"
                    + (job.lastError.map { " (\($0))" } ?? "") + ". Run the same command again, or leave it to `callrec worker`."
            } else {
                version.message = "\(recording.path): not finished" + (job?.lastError.map { " (\($0))" } ?? "") + "; run the same command again"
            }
            return version
        }
    }

    /// `deleted`, `already_deleted`, `failed` (a step failed), `not_finished` (waiting: a retry or
    /// a rate limit beyond this run), `not_found` — over every recording named.
    var status: String
    var recording: RecordingInfo?
    var deletion: DeletionInfo?
    var message: String?
    var recordings: [Version] = []

    var succeeded: Bool { status == "deleted" || status == "already_deleted" }

    init(status: String, message: String) {
        self.status = status
        self.message = message
    }

    init(versions: [Version], named: String) {
        recordings = versions
        status = versions.allSatisfy { $0.status == "already_deleted" } ? "already_deleted"
            : versions.allSatisfy(\.succeeded) ? "deleted"
            : versions.contains { $0.status == "failed" } ? "failed" : "not_finished"
        if versions.count == 1, let only = versions.first {
            recording = RecordingInfo(key: only.key, path: only.path, state: only.state)
            deletion = only.deletion
            message = only.message
        } else {
            message = "\(named) names \(versions.count) recordings (versions uploaded from that path)"
        }
    }

    func print(json: Bool) throws {
        if json {
            try writeJSON(self)
            return
        }
        if recordings.count > 1, let message { Swift.print(message + ":") }
        for version in recordings {
            let when = "registered \(version.registeredAt)" + (version.uploadedAt.map { ", uploaded \($0)" } ?? "")
            let logs = version.callLogs.isEmpty ? "no call log" : "call log\(version.callLogs.count == 1 ? "" : "s") \(version.callLogs.joined(separator: ", "))"
            switch version.status {
            case "deleted":
                Swift.print("deleted \(version.path) (\(version.key); \(when); \(logs))\(version.deletion?.steps.contains { $0.state == "skipped" } == true ? "; some targets were left in place" : " everywhere")")
            case "already_deleted":
                Swift.print("\(version.message ?? version.status) (\(version.key); \(logs))")
            default:
                Swift.print("\(version.status): \(version.path) (\(version.key); \(when); \(logs))")
            }
            for step in version.deletion?.steps ?? [] {
                let status = step.httpStatus.map(String.init) ?? "-"
                Swift.print("  \(step.state.padding(toLength: 8, withPad: " ", startingAt: 0)) \(status.padding(toLength: 4, withPad: " ", startingAt: 0)) \(step.target)\(step.detail.map { "  \($0)" } ?? "")")
            }
            if version.status != "already_deleted", let message = version.message { Swift.print("  " + message) }
        }
        if recordings.isEmpty { Swift.print(message ?? status) }
    }
}

extension DeleteDocument.RecordingInfo {
    init(key: String, path: String, state: String) {
        self.key = key
        self.path = path
        self.state = state
    }
}

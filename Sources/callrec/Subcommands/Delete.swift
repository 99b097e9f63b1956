import ArgumentParser
import AsyncHTTPClient
import CallAPI
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
                call log deletes the whole recording) or by its source path or key (--recording). The \
                deletion is a durable intent with one step per target, run in this process: remote \
                deletes first (404/410 count as done), then the spool is moved to <state>/trash/ \
                (`callrec trash purge` empties it). After Ctrl-C or a crash, running the same command \
                again resumes at the step it stopped. The recording keeps a tombstone: no later \
                upload or enqueue takes it up again. Credentials come from the environment \
                (PIPEDRIVE_API_TOKEN, TELNYX_API_KEY, VOIPNOW_API_URL + VOIPNOW_ACCESS_TOKEN) or --config. \
                Exit codes: 0 deleted (or deleted before), 1 a step failed or is still waiting (an \
                API that cannot be reached included), 2 usage or configuration (a credential the API \
                refused included: the deletion stays open, and the same command with it mended goes on).
                """
        )

        @Option(help: "The Pipedrive call log of any part of the recording.")
        var callLog: String?

        @Option(help: "The recording: its source path (as uploaded, or a file with the same bytes) or its key (SHA-256).")
        var recording: String?

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
            let planner = DeletionPlanner(store: store, actor: CallPipeline.Worker.defaultOwner())
            var selectors: [DeletionPlanner.Selector] = []
            if let callLog {
                selectors = [.callLog(callLog.trimmingCharacters(in: .whitespaces))]
            } else if let recording {
                let isKey = recording.count == 64 && recording.allSatisfy(\.isHexDigit)
                selectors = isKey ? [.key(recording), .path(recording)] : [.path(recording)]
            }
            var found: Recording?
            var lastError: (any Error)?
            for selector in selectors {
                do {
                    found = try await planner.resolve(selector)
                    break
                } catch {
                    lastError = error
                }
            }
            guard let target = found else {
                return (DeleteDocument(status: "not_found", message: "\(lastError.map { "\($0)" } ?? "no such recording")"), nil)
            }
            // Credentials first: a deletion that could not run is not registered.
            var steps: [DeletionStep]
            if target.state == .deleting, let open = try await store.openDeletions().first(where: { $0.recordingKey == target.key }) {
                steps = open.steps.filter { $0.state != .done }
            } else {
                steps = DeletionPlanner.steps(parts: try await store.parts(key: target.key), refs: try await store.providerRefs(key: target.key))
            }
            steps = steps.filter { $0.state == .pending || $0.state == .failed }
            if target.state != .deleted {
                let missing = wiring.missingCredentials(for: steps)
                if !missing.isEmpty {
                    throw ValidationError("\(missing.joined(separator: "; ")); nothing was registered")
                }
            }
            let what = callLog.map { "--call-log \($0)" } ?? "--recording \(recording ?? "")"
            let registration = try await planner.register(key: target.key, reason: "cli: callrec delete \(what)")
            if registration.outcome == .alreadyDeleted {
                let tombstone = try await store.tombstone(key: target.key)
                return (DeleteDocument(status: "already_deleted", recording: .init(target, state: .deleted),
                                       message: "\(target.path) was deleted before\(tombstone.map { " (\($0.reason))" } ?? "")"), nil)
            }
            if registration.outcome == .resumed {
                standardError("resuming the deletion of \(target.path) (\(registration.deletionID ?? ""))")
            }
            let handler = wiring.handler(store: self.store)
            let halted = try await runDeleteQueue(store: store, handler: handler, logger: logger)
            return (try await DeleteDocument.load(store: store, key: target.key, deletionID: registration.deletionID), halted)
        }
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
    return worker.halted
}

/// `callrec delete`'s report.
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

    /// `deleted`, `already_deleted`, `failed` (a step failed), `not_finished` (waiting: a retry or
    /// a rate limit beyond this run), `not_found`.
    var status: String
    var recording: RecordingInfo?
    var deletion: DeletionInfo?
    var message: String?

    var succeeded: Bool { status == "deleted" || status == "already_deleted" }

    static func load(store: any CallStore, key: String, deletionID: String?) async throws -> DeleteDocument {
        guard let recording = try await store.recording(key: key) else {
            return DeleteDocument(status: "not_found", message: "recording \(key) left the ledger")
        }
        guard let deletionID, let deletion = try await store.deletion(id: deletionID) else {
            return DeleteDocument(status: recording.state == .deleted ? "deleted" : "not_finished", recording: .init(recording))
        }
        let steps = deletion.steps.sorted { $0.position < $1.position }.map {
            Step(target: $0.target, state: $0.state.rawValue, httpStatus: $0.httpStatus, detail: $0.detail)
        }
        let info = DeletionInfo(id: deletion.id, reason: deletion.reason, finished: deletion.finishedAt != nil, steps: steps)
        if deletion.finishedAt != nil, recording.state == .deleted {
            return DeleteDocument(status: "deleted", recording: .init(recording), deletion: info)
        }
        let job = try await store.jobs(JobQuery(uniqueKey: "delete:\(key)", limit: 1000)).max { $0.id < $1.id }
        var message: String?
        if deletion.steps.contains(where: { $0.state == .failed }) {
            message = "\(recording.path): not every target could be deleted; fix the cause and run the same command again"
            return DeleteDocument(status: "failed", recording: .init(recording), deletion: info, message: message)
        }
        if let job, JobState.live.contains(job.state) {
            message = "\(recording.path): still waiting; its delete job runs again at \(ISO8601DateFormatter().string(from: job.runAt))"
                + (job.lastError.map { " (\($0))" } ?? "") + ". Run the same command again, or leave it to `callrec worker`."
        } else {
            message = "\(recording.path): not finished" + (job?.lastError.map { " (\($0))" } ?? "") + "; run the same command again"
        }
        return DeleteDocument(status: "not_finished", recording: .init(recording), deletion: info, message: message)
    }

    func print(json: Bool) throws {
        if json {
            try writeJSON(self)
            return
        }
        switch status {
        case "deleted":
            Swift.print("deleted \(recording?.path ?? "") (\(recording?.key ?? "")) everywhere")
        case "already_deleted", "not_found":
            Swift.print(message ?? status)
        default:
            Swift.print("\(status): \(message ?? "")")
        }
        for step in deletion?.steps ?? [] {
            let status = step.httpStatus.map(String.init) ?? "-"
            Swift.print("  \(step.state.padding(toLength: 8, withPad: " ", startingAt: 0)) \(status.padding(toLength: 4, withPad: " ", startingAt: 0)) \(step.target)\(step.detail.map { "  \($0)" } ?? "")")
        }
    }
}

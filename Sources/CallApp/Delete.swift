import CallAPI
public import CallJobs
public import CallPipeline
public import CallStore
import Foundation
public import Logging

/// `callrec delete`: one recording, named by a call log of any of its parts, its key or its
/// source path, deleted everywhere (DESIGN §9).
public struct DeleteRequest: Sendable {
    public var callLog: String?
    public var recording: String?
    public var includeForeignCallLogs = false
    public var skipStep: [String] = []
    /// Who asked, for the audit table (``whoAsks()``).
    public var askedBy = DeleteRequest.whoAsks()

    public init(callLog: String?, recording: String?, includeForeignCallLogs: Bool = false, skipStep: [String] = []) {
        self.callLog = callLog
        self.recording = recording
        self.includeForeignCallLogs = includeForeignCallLogs
        self.skipStep = skipStep
    }

    /// Who asked for what the audit table records: the login (and who used sudo), the host, the process.
    public static func whoAsks() -> String {
        var user = NSUserName()
        if let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty, sudo != user { user = "\(sudo) (sudo as \(user))" }
        return "\(user) on \(ProcessInfo.processInfo.hostName), callrec pid \(getpid())"
    }

    /// The report (`notice` hears of a deletion resumed), and what stopped the deletion early (a refused credential, an unreachable API).
    public func run(store: any CallStore, settings: StoreSettings, clients: APIClients, logger: Logger,
                    notice: (String) -> Void, runWorker: RunWorker) async throws -> (DeleteDocument, JobFailure?) {
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
            throw AppError(.usage, "--skip-step gives up a step of one recording's deletion, and \(recording ?? "") names \(live.count) not deleted yet (\(live.map(\.key).joined(separator: ", "))): name one with --recording KEY")
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
                    throw AppError(.usage, "--skip-step \(name): \(error.message)")
                }
            }
            let missing = clients.missingCredentials(for: steps.filter { ($0.state == .pending || $0.state == .failed) && !skipped.contains($0.target) })
            if !missing.isEmpty {
                throw AppError(.usage, "\(missing.joined(separator: "; ")); nothing was registered")
            }
        }
        var what = callLog.map { "--call-log \($0)" } ?? "--recording \(recording ?? "")"
        if includeForeignCallLogs { what += " --include-foreign-call-logs" }
        for name in skipStep { what += " --skip-step \(name)" }
        var registrations: [String: DeletionPlanner.Registration] = [:]
        for target in versions {
            let registration = try await planner.register(key: target.key, reason: "cli: callrec delete \(what)", includeForeign: includeForeignCallLogs,
                                                          skipping: target.state == .deleted ? [] : skipStep, askedBy: askedBy)
            registrations[target.key] = registration
            if registration.outcome == .resumed {
                notice("resuming the deletion of \(target.path) (\(registration.deletionID ?? ""))")
            }
        }
        var halted: JobFailure?
        if registrations.values.contains(where: { $0.outcome != .alreadyDeleted }) {
            halted = try await runDeleteQueue(store: store, handler: clients.deleteHandler(store: settings), logger: logger, runWorker: runWorker)
        }
        var reports: [DeleteDocument.Version] = []
        for target in versions {
            reports.append(try await DeleteDocument.Version.load(store: store, recording: target, registration: registrations[target.key],
                                                                 hints: DeleteHints(store: settings)))
        }
        return (DeleteDocument(versions: reports, named: callLog.map { "call log \($0)" } ?? recording ?? ""), halted)
    }
}

/// Runs the `delete` queue until nothing is due (a retry due within five minutes is waited
/// for), with `runWorker` (the CLI's signal handling). Returns what stopped it early, if anything
/// did (a refused credential, an unreachable API).
@discardableResult
public func runDeleteQueue(store: any CallStore, handler: DeleteJobHandler, logger: Logger, runWorker: RunWorker) async throws -> JobFailure? {
    let worker = DeleteRun.worker(store: store, handler: handler, logger: logger)
    try await runWorker(worker)
    return worker.summary.halted
}

/// An open deletion that needs a person: a step failed, or no job will run it.
public struct StuckDeletion: Encodable, Sendable {
    public var key: String
    public var path: String
    public var deletionID: String
    public var reason: String
    /// The steps still to do: `target state: detail`.
    public var steps: [String]
    /// What to type.
    public var next: [String]

    enum CodingKeys: String, CodingKey {
        case key, path, reason, steps, next
        case deletionID = "deletion_id"
    }

    /// Open deletions with a failed step, or with steps to do and no live job.
    public static func all(_ store: any CallStore, hints: DeleteHints) async throws -> [StuckDeletion] {
        var stuck: [StuckDeletion] = []
        for deletion in try await store.openDeletions() {
            let open = deletion.steps.filter { !$0.state.isSettled }
            let failed = open.contains { $0.state == .failed }
            let queued = !(try await store.jobs(JobQuery(states: JobState.live, uniqueKey: "delete:\(deletion.recordingKey)", limit: 1)).isEmpty)
            guard failed || !queued else { continue }
            let path = try await store.recording(key: deletion.recordingKey)?.path ?? ""
            let next = failed ? hints.stuck(key: deletion.recordingKey, steps: deletion.steps)
                : ["nothing is queued to finish it; type: \(hints.again(key: deletion.recordingKey))"]
            stuck.append(StuckDeletion(key: deletion.recordingKey, path: path, deletionID: deletion.id, reason: deletion.reason,
                                       steps: open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { ": \($0)" } ?? "")" }, next: next))
        }
        return stuck
    }
}

/// The commands a report prints for a deletion that needs a person: the same store options as
/// the run that printed them.
public struct DeleteHints: Sendable {
    public let store: StoreSettings

    public init(store: StoreSettings) { self.store = store }

    /// `--state DIR`, or `--database URL` when given on the command line (a URL from
    /// CALLREC_DATABASE is left to the environment; a password is never on the command line).
    public var storeArguments: String {
        if let database = store.database { return "--database \(Self.quoted(database))" }
        return "--state \(Self.quoted(store.state))"
    }

    /// How `--skip-step` names `step` among `steps`: its kind when no other open step has it.
    public static func name(of step: DeletionStep, among steps: [DeletionStep]) -> String {
        let kind = DeletionTarget(step.target).kind
        let sameKind = steps.filter { !$0.state.isSettled && DeletionTarget($0.target).kind == kind }
        return sameKind.count == 1 ? kind : step.target
    }

    public func skip(key: String, step: DeletionStep, among steps: [DeletionStep]) -> String {
        "callrec delete --recording \(key) --skip-step \(Self.quoted(Self.name(of: step, among: steps))) \(storeArguments)"
    }

    public func again(key: String) -> String { "callrec delete --recording \(key) \(storeArguments)" }

    /// Why a skipped step was left, in short (its detail has the whole story).
    public static func why(left step: DeletionStep) -> String {
        let detail = step.detail ?? ""
        if detail.hasPrefix(DeletionPlanner.foreignCallLogNote) {
            return "callrec did not create it; --include-foreign-call-logs deletes it"
        }
        return detail.split(separator: ";", maxSplits: 1).first.map(String.init) ?? "skipped"
    }

    /// What a person does about a deletion whose steps failed: for each failed step, what went
    /// wrong, and the two ways on (mend the cause and run again, or give the step up).
    public func stuck(key: String, steps: [DeletionStep]) -> [String] {
        steps.filter { $0.state == .failed }.map { step in
            let cause = step.detail ?? "failed"
            let never = cause.hasPrefix("not sent:") || cause.hasPrefix("unknown")
            return "\(step.target) cannot be deleted: \(cause). "
                + (never ? "No run will ever send it; to finish the deletion without it, type: \(skip(key: key, step: step, among: steps))"
                         : "Mend the cause and type: \(again(key: key)); or, if it can never succeed, give it up: \(skip(key: key, step: step, among: steps))")
        }
    }

    public static func quoted(_ text: String) -> String {
        let safe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_./:@*+=,%"))
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// `callrec delete`'s report: every recording the selector named (``recordings``; several when
/// a path held several versions), and, when it named one, that recording's report at the top.
public struct DeleteDocument: Encodable, Sendable {
    public struct RecordingInfo: Encodable, Sendable {
        public var key: String
        public var path: String
        public var state: String
        init(_ recording: Recording, state: RecordingState? = nil) {
            key = recording.key
            path = recording.path
            self.state = (state ?? recording.state).rawValue
        }
    }

    public struct Step: Encodable, Sendable {
        public var target: String
        public var state: String
        public var httpStatus: Int?
        public var detail: String?
        enum CodingKeys: String, CodingKey { case target, state, detail, httpStatus = "http_status" }
    }

    public struct DeletionInfo: Encodable, Sendable {
        public var id: String
        public var reason: String
        public var finished: Bool
        public var steps: [Step]
    }

    /// One recording: which one (key, path, when registered and uploaded, its call logs) and how
    /// its deletion went.
    public struct Version: Encodable, Sendable {
        public var key: String
        public var path: String
        public var state: String
        public var registeredAt: String
        public var uploadedAt: String?
        public var callLogs: [String]
        /// `deleted`, `already_deleted`, `failed` (a step failed), `not_finished` (waiting: a
        /// retry or a rate limit beyond this run).
        public var status: String
        public var deletion: DeletionInfo?
        public var message: String?

        enum CodingKeys: String, CodingKey {
            case key, path, state, status, deletion, message
            case registeredAt = "registered_at", uploadedAt = "uploaded_at", callLogs = "call_logs"
        }

        public var succeeded: Bool { status == "deleted" || status == "already_deleted" }

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
    public var status: String
    public var recording: RecordingInfo?
    public var deletion: DeletionInfo?
    public var message: String?
    public var recordings: [Version] = []

    public var succeeded: Bool { status == "deleted" || status == "already_deleted" }

    public init(status: String, message: String) {
        self.status = status
        self.message = message
    }

    public init(versions: [Version], named: String) {
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

}

extension DeleteDocument.RecordingInfo {
    init(key: String, path: String, state: String) {
        self.key = key
        self.path = path
        self.state = state
    }
}

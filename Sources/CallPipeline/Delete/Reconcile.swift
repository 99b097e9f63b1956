import CallAPI
public import CallStore
import CallSupport
import Foundation
public import Logging
public import ServiceLifecycle

/// `callrec reconcile`: finds call logs deleted in Pipedrive and cascades their recordings'
/// deletion (DESIGN §4; research/queue-and-reconcile.md §(3)).
///
/// One pass:
/// 1. reads the call-log ids of every `uploaded` recording from the ledger;
/// 2. lists Pipedrive's call logs page by page (50 a page, 20 tokens each) — ledger ids missing
///    from the listing are *candidates*, never evidence;
/// 3. checks it sees the same account as before: at least one known call log must be in the
///    listing (else nothing is deleted without `force`), and one of those, picked at random,
///    must still answer `GET` with 200 (the sentinel);
/// 4. confirms each candidate with `GET /callLogs/{id}` (2 tokens): only a definite 404 or 410
///    is evidence; a 200 is a listing gap, reported;
/// 5. plans the recordings with evidence. Any API error anywhere in the pass (a listing page, the
///    sentinel, a confirmation: 401/403, timeouts, 5xx — after the client's own retries) aborts
///    the pass: it deletes nothing and says why. More recordings than the cap aborts the whole
///    pass unless `force`, after listing them (`would_delete`, not confirmed: no `GET` is spent
///    on a pass that will not act) with the cap and how to go on;
/// 6. with `apply`, registers each planned deletion through ``DeletionPlanner`` (the same cascade
///    as `callrec delete`; the confirmed call logs count as done with the status seen) and
///    re-queues deletions left open.
///
/// Missing local files and missing provider recordings are reported, never turned into
/// deletions. No `GET` is made per recording: only per candidate, plus the sentinel.
public struct Reconciler: Sendable {
    public struct Options: Sendable {
        /// Register the planned deletions (otherwise only report them).
        public var apply = false
        /// The most recordings one pass may delete; nil: ``defaultCap(uploaded:)``.
        public var maxDelete: Int?
        /// Act beyond the cap, and without a known call log in the listing.
        public var force = false
        /// Report uploaded recordings whose source file or spool parts are gone.
        public var checkLocalFiles = true
        /// Delete call logs callrec did not create too (the sidecar's `call_log_id`); otherwise
        /// they are left and reported (``DeletionPlanner/steps(parts:refs:gone:includeForeign:now:)``).
        public var includeForeignCallLogs = false
        public var pageSize = 50
        /// A listing that has not ended after this many pages aborts the pass.
        public var maxPages = 20_000
        /// The recordings a plan shown earlier would delete (the console applies what it showed):
        /// a pass that finds any other set aborts with `plan_changed` and deletes nothing.
        public var expectedPlan: Set<String>?

        public init() {}

        /// The default cap: 20 recordings or 5 % of the uploaded recordings, whichever is
        /// smaller — but never below 1, so that one deletion is always possible in a small ledger.
        public static func defaultCap(uploaded: Int) -> Int { min(20, max(1, uploaded * 5 / 100)) }

        public func cap(uploaded: Int) -> Int { maxDelete ?? Self.defaultCap(uploaded: uploaded) }
    }

    public let store: any CallStore
    public let directory: any CallLogDirectory
    public let planner: DeletionPlanner
    public let options: Options
    public let logger: Logger
    /// Lists the provider's recording ids (Telnyx), for the report only: a live reference the
    /// provider no longer has is reported. Its failure is a warning, not an abort.
    public var providerInventory: (@Sendable () async throws -> Set<String>)?

    public init(store: any CallStore, directory: any CallLogDirectory, planner: DeletionPlanner, options: Options, logger: Logger) {
        self.store = store
        self.directory = directory
        self.planner = planner
        self.options = options
        self.logger = logger
    }

    private struct Known: Sendable {
        var recording: Recording
        var parts: [Part]
        var refs: [ProviderRef]
    }

    private struct Aborted: Error {
        var problem: ReconcileReport.Problem
    }

    public func run() async throws -> ReconcileReport {
        let clock = ContinuousClock(), started = clock.now
        var report = ReconcileReport(mode: options.apply ? "apply" : "plan")
        var pages = 0, lookups = 0

        // 1. The ledger.
        let known = try await loadUploaded(withRefs: providerInventory != nil)
        var keyOfCallLog: [String: String] = [:]
        for (key, entry) in known {
            for part in entry.parts { if let id = part.callLogID, !id.isEmpty { keyOfCallLog[id] = key } }
        }
        report.totals.uploadedRecordings = known.count
        report.totals.knownCallLogs = keyOfCallLog.count
        let cap = options.cap(uploaded: known.count)
        report.totals.cap = cap
        var findings: [String: [ReconcileReport.Finding]] = [:]
        var evidence: [String: [ReconcileReport.Evidence]] = [:]
        // Recordings a pass over the cap would delete: listed, not acted on.
        var overCap = Set<String>()

        do {
            // 2. The listing.
            var listed = Set<String>()
            if !keyOfCallLog.isEmpty {
                var start = 0
                while true {
                    guard pages < options.maxPages else {
                        throw Aborted(problem: .init(code: "listing_unfinished", message: "the call-log listing did not end within \(options.maxPages) pages"))
                    }
                    let page: CallLogIDPage
                    do {
                        page = try await directory.callLogPage(start: start, limit: options.pageSize)
                    } catch {
                        try Self.rethrowCancellation(error)
                        throw Aborted(problem: .init(code: "api_error", message: "listing call logs (page \(pages + 1), start \(start)) failed: \(error)"))
                    }
                    pages += 1
                    listed.formUnion(page.ids)
                    guard page.moreItems, !page.ids.isEmpty else { break }
                    let next = page.nextStart.flatMap { $0 > start ? $0 : nil } ?? start + page.ids.count
                    guard next > start else { break }
                    start = next
                }
            }
            report.totals.listedCallLogs = listed.count
            report.totals.pages = pages

            // 3. Candidates, and whether this is the account the ledger knows.
            let candidates = keyOfCallLog.keys.filter { !listed.contains($0) }.sorted()
            report.totals.candidates = candidates.count
            let candidateKeys = Set(candidates.compactMap { keyOfCallLog[$0] })
            if !candidates.isEmpty {
                let knownListed = keyOfCallLog.keys.filter { listed.contains($0) }
                if knownListed.isEmpty, !options.force {
                    throw Aborted(problem: .init(code: "no_known_call_log_listed", message:
                        "the listing shows none of the \(keyOfCallLog.count) call logs the ledger knows (\(listed.count) listed): another account, or an empty view; nothing deleted (--force to act anyway)"))
                }
                if candidateKeys.count > cap, !options.force {
                    // Listed, then refused: what would be deleted, without a GET per call log.
                    for id in candidates {
                        guard let key = keyOfCallLog[id] else { continue }
                        overCap.insert(key)
                        findings[key, default: []].append(.init(code: "call_log_missing", detail:
                            "call log \(id) is missing from the listing (not confirmed with a GET: the pass is over the cap)"))
                    }
                    throw Aborted(problem: .init(code: "mass_delete_cap", message: Self.overCap(candidateKeys.count, cap: cap, apply: options.apply,
                                                                                                 what: "have call logs missing from the listing")))
                }
                if let sentinel = knownListed.randomElement() {
                    lookups += 1
                    let answer: CallLogLookup
                    do {
                        answer = try await directory.lookUp(callLogID: sentinel)
                    } catch {
                        try Self.rethrowCancellation(error)
                        throw Aborted(problem: .init(code: "api_error", message: "the sentinel GET of call log \(sentinel) failed: \(error)"))
                    }
                    guard answer == .exists else {
                        throw Aborted(problem: .init(code: "sentinel_failed", message:
                            "call log \(sentinel) is in the listing but GET answers \(answer): the CRM's view is inconsistent; nothing deleted"))
                    }
                    report.totals.sentinel = sentinel
                }
            }

            // 4. Confirmation: only a definite 404/410 is evidence.
            for id in candidates {
                guard let key = keyOfCallLog[id] else { continue }
                lookups += 1
                let answer: CallLogLookup
                do {
                    answer = try await directory.lookUp(callLogID: id)
                } catch {
                    try Self.rethrowCancellation(error)
                    throw Aborted(problem: .init(code: "api_error", message: "confirming call log \(id) failed: \(error)"))
                }
                switch answer {
                case .exists:
                    report.totals.listingGaps += 1
                    findings[key, default: []].append(.init(code: "listing_gap", detail: "call log \(id) is missing from the listing but GET answers 200: kept"))
                case .gone(let status):
                    report.totals.confirmedGone += 1
                    evidence[key, default: []].append(.init(callLogID: id, httpStatus: status))
                    findings[key, default: []].append(.init(code: "call_log_gone", detail: "GET /callLogs/\(id) answered \(status)"))
                }
            }
            if evidence.count > cap, !options.force {
                overCap.formUnion(evidence.keys)
                throw Aborted(problem: .init(code: "mass_delete_cap", message: Self.overCap(evidence.count, cap: cap, apply: options.apply,
                                                                                             what: "would be deleted")))
            }
            if let expected = options.expectedPlan, Set(evidence.keys) != expected {
                let added = Set(evidence.keys).subtracting(expected).count, gone = expected.subtracting(evidence.keys).count
                throw Aborted(problem: .init(code: "plan_changed", message:
                    "the plan changed since it was shown (\(added) recording(s) more, \(gone) no longer planned); nothing deleted: plan again and look before applying"))
            }
        } catch let aborted as Aborted {
            report.abort = aborted.problem
            logger.warning("reconcile pass aborted; nothing deleted", metadata: ["code": "\(aborted.problem.code)", "reason": "\(aborted.problem.message)"])
        }
        report.totals.pages = pages
        report.totals.lookups = lookups
        report.totals.tokensSpent = pages * PipedriveLimiter.Operation.list.cost + lookups * PipedriveLimiter.Operation.get.cost
        report.totals.plannedRecordings = report.abort == nil ? evidence.count : 0

        // Reported only: local files, provider recordings.
        if options.checkLocalFiles {
            let fm = FileManager.default
            for (key, entry) in known {
                if !fm.fileExists(atPath: entry.recording.path) {
                    findings[key, default: []].append(.init(code: "local_file_missing", detail: "the source \(entry.recording.path) is gone (reported only)"))
                }
                let missing = entry.parts.filter { !fm.fileExists(atPath: $0.spoolPath) }
                // Parts the spool retention removed are not missing.
                if !missing.isEmpty, try await SpoolPrune.prunedAt(key: key, store: store) == nil {
                    findings[key, default: []].append(.init(code: "spool_missing", detail: "\(missing.count) of \(entry.parts.count) spool part(s) are gone (reported only)"))
                }
            }
        }
        if let providerInventory {
            do {
                let live = try await providerInventory()
                for (key, entry) in known {
                    for ref in entry.refs where ref.provider == ProviderRef.telnyx && ref.state == "live" && !live.contains(ref.reference.lowercased()) && !live.contains(ref.reference) {
                        findings[key, default: []].append(.init(code: "provider_recording_missing", detail: "Telnyx recording \(ref.reference) is not listed (reported only)"))
                    }
                }
            } catch {
                try Self.rethrowCancellation(error)
                report.warnings.append("cannot list the Telnyx recordings (provider check skipped): \(error)")
            }
        }

        // 5. The plan, and 6. applying it.
        for key in findings.keys.sorted() {
            guard let entry = known[key] else { continue }
            var line = ReconcileReport.Line(key: key, path: entry.recording.path, findings: findings[key] ?? [], evidence: evidence[key] ?? [],
                                            action: "none")
            let proof = evidence[key] ?? []
            let gone = Dictionary(proof.map { ($0.callLogID, $0.httpStatus) }, uniquingKeysWith: { first, _ in first })
            if overCap.contains(key) || !proof.isEmpty {
                let refs = try await store.providerRefs(key: key)
                Self.describe(DeletionPlanner.steps(parts: entry.parts, refs: refs, gone: gone, includeForeign: options.includeForeignCallLogs),
                              in: &line)
            }
            if overCap.contains(key) {
                line.action = "would_delete"
                line.result = "not deleted: the pass is over the cap (\(report.abort?.code ?? ""))"
            } else if !proof.isEmpty {
                if report.abort != nil {
                    line.action = "none"
                    line.result = "pass aborted: \(report.abort?.code ?? "")"
                } else if !options.apply {
                    line.action = "would_delete"
                } else {
                    let reason = "reconcile: " + proof.map { "call log \($0.callLogID) answered \($0.httpStatus)" }.joined(separator: ", ")
                    do {
                        let registration = try await planner.register(key: key, reason: reason, requiring: [.uploaded], gone: gone,
                                                                      includeForeign: options.includeForeignCallLogs)
                        line.action = "delete"
                        line.deletionID = registration.deletionID
                        line.result = registration.outcome.rawValue
                        report.totals.registered += registration.outcome == .registered ? 1 : 0
                    } catch let error as DeleteError {
                        line.action = "skipped"
                        line.result = error.message
                    }
                }
            }
            report.recordings.append(line)
        }

        // Deletions left open (a step failed, or the job gave up): reported, and re-queued on apply.
        for deletion in try await store.openDeletions() {
            guard let recording = try await store.recording(key: deletion.recordingKey) else { continue }
            let open = deletion.steps.filter { !$0.state.isSettled }
            var line = ReconcileReport.Line(
                key: deletion.recordingKey, path: recording.path,
                findings: [.init(code: "deletion_open", detail: "deletion \(deletion.id) (\(deletion.reason)): " +
                                 open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { " (\($0))" } ?? "")" }.joined(separator: "; "))],
                evidence: [], action: "none", targets: open.map(\.target), deletionID: deletion.id)
            if options.apply, report.abort == nil, !report.recordings.contains(where: { $0.key == deletion.recordingKey }) {
                let jobs = try await store.jobs(JobQuery(states: JobState.live, uniqueKey: "delete:\(deletion.recordingKey)", limit: 1))
                if jobs.isEmpty {
                    do {
                        let registration = try await planner.register(key: deletion.recordingKey, reason: "reconcile: resumed",
                                                                      includeForeign: options.includeForeignCallLogs)
                        line.action = "resume"
                        line.result = registration.outcome.rawValue
                        report.totals.resumed += 1
                    } catch let error as DeleteError {
                        line.result = error.message
                    }
                } else {
                    line.result = "its delete job is queued"
                }
            }
            if !report.recordings.contains(where: { $0.key == deletion.recordingKey }) { report.recordings.append(line) }
        }

        report.outcome = report.abort != nil ? .aborted
            : report.totals.plannedRecordings == 0 ? .clean
            : options.apply ? .applied : .planned
        report.totals.wallSeconds = (clock.now - started).seconds
        logger.info("reconcile pass", metadata: [
            "outcome": "\(report.outcome.rawValue)", "uploaded": "\(known.count)", "pages": "\(pages)", "lookups": "\(lookups)",
            "gone": "\(report.totals.confirmedGone)", "tokens": "\(report.totals.tokensSpent)",
        ])
        return report
    }

    /// The refusal of a pass over the cap: how many, the cap, and how to go on.
    static func overCap(_ count: Int, cap: Int, apply: Bool, what: String) -> String {
        let how = apply ? "run again with --max-delete \(count) (or --force)"
            : "run again with --max-delete \(count) to confirm each with a GET (or --force), and with --apply to delete them"
        return "\(count) recordings \(what), more than the cap of \(cap); they are listed, nothing was deleted. If they are meant to go, \(how)"
    }

    /// A line's targets (the steps that would run) and what would be left, with why.
    static func describe(_ steps: [DeletionStep], in line: inout ReconcileReport.Line) {
        line.targets = steps.filter { $0.state != .skipped }.map(\.target)
        for step in steps where step.state == .skipped {
            line.findings.append(.init(code: "call_log_left", detail: "\(step.target): \(step.detail ?? "")"))
        }
    }

    static func rethrowCancellation(_ error: any Error) throws {
        if error is CancellationError || Task.isCancelled { throw CancellationError() }
    }

    /// Every `uploaded` recording with its parts (and references), read a page of keys at a time
    /// with a few reads in flight.
    private func loadUploaded(withRefs: Bool) async throws -> [String: Known] {
        var result: [String: Known] = [:]
        var after: String?
        let store = self.store
        while true {
            let page = try await store.recordings(RecordingQuery(states: [.uploaded], afterKey: after, limit: 1000))
            guard let last = page.last else { break }
            after = last.key
            try await withThrowingTaskGroup(of: Known.self) { group in
                var next = 0
                func add() {
                    let recording = page[next]
                    next += 1
                    group.addTask {
                        let parts = try await store.parts(key: recording.key)
                        let refs = withRefs ? try await store.providerRefs(key: recording.key) : []
                        return Known(recording: recording, parts: parts, refs: refs)
                    }
                }
                while next < min(4, page.count) { add() }
                while let known = try await group.next() {
                    result[known.recording.key] = known
                    if next < page.count { add() }
                }
            }
            if page.count < 1000 { break }
        }
        return result
    }
}

/// What a reconcile pass found and did (`callrec reconcile --json`).
public struct ReconcileReport: Sendable, Encodable {
    public enum Outcome: String, Sendable, Encodable {
        /// Nothing deleted in Pipedrive: nothing to do.
        case clean
        /// Deletions found and listed (not applied).
        case planned
        /// Deletions found and registered.
        case applied
        /// The pass deleted nothing: see ``ReconcileReport/abort``.
        case aborted
    }

    public struct Problem: Sendable, Encodable, Hashable {
        /// `api_error`, `sentinel_failed`, `no_known_call_log_listed`, `mass_delete_cap`, `listing_unfinished`.
        public var code: String
        public var message: String
    }

    public struct Evidence: Sendable, Encodable, Hashable {
        public var callLogID: String
        public var httpStatus: Int
        enum CodingKeys: String, CodingKey { case callLogID = "call_log_id", httpStatus = "http_status" }
    }

    public struct Finding: Sendable, Encodable, Hashable {
        /// `call_log_gone`, `call_log_missing` (not confirmed: over the cap), `listing_gap`,
        /// `call_log_left` (callrec did not create it: the deletion leaves it), `local_file_missing`,
        /// `spool_missing`, `provider_recording_missing`, `deletion_open`.
        public var code: String
        public var detail: String
    }

    /// One recording with something to say.
    public struct Line: Sendable, Encodable, Hashable {
        public var key: String
        public var path: String
        public var findings: [Finding]
        public var evidence: [Evidence]
        /// `would_delete` (plan), `delete` (registered), `resume`, `skipped`, `none`.
        public var action: String
        /// The deletion's steps (what it would do / does).
        public var targets: [String] = []
        public var deletionID: String?
        public var result: String?

        enum CodingKeys: String, CodingKey {
            case key, path, findings, evidence, action, targets, result
            case deletionID = "deletion_id"
        }
    }

    public struct Totals: Sendable, Encodable, Hashable {
        public var uploadedRecordings = 0
        public var knownCallLogs = 0
        public var listedCallLogs = 0
        public var pages = 0
        public var candidates = 0
        /// GETs: candidates plus the sentinel.
        public var lookups = 0
        public var sentinel: String?
        public var confirmedGone = 0
        public var listingGaps = 0
        public var plannedRecordings = 0
        public var cap = 0
        public var registered = 0
        public var resumed = 0
        /// Pipedrive tokens by the cost table (list 20, get 2) for the requests this pass made.
        public var tokensSpent = 0
        public var wallSeconds = 0.0

        enum CodingKeys: String, CodingKey {
            case pages, candidates, lookups, sentinel, cap, registered, resumed
            case uploadedRecordings = "uploaded_recordings", knownCallLogs = "known_call_logs", listedCallLogs = "listed_call_logs"
            case confirmedGone = "confirmed_gone", listingGaps = "listing_gaps", plannedRecordings = "planned_recordings"
            case tokensSpent = "tokens_spent", wallSeconds = "wall_seconds"
        }
    }

    public var mode: String
    public var outcome: Outcome = .clean
    public var abort: Problem?
    public var recordings: [Line] = []
    public var warnings: [String] = []
    public var totals = Totals()

    public init(mode: String) {
        self.mode = mode
    }

    /// The recordings the pass deletes (or would).
    public var planned: [Line] { recordings.filter { !$0.evidence.isEmpty } }
}

/// `callrec worker --reconcile-every 1h`: a reconcile pass (apply, default caps, no force) now and
/// then every `interval`, in the worker's process; the worker's `delete` queue runs what it
/// registers. Stops at graceful shutdown.
public struct ReconcileService: Service {
    public let interval: Duration
    public let pass: @Sendable () async throws -> ReconcileReport
    public let logger: Logger

    public init(interval: Duration, logger: Logger, pass: @escaping @Sendable () async throws -> ReconcileReport) {
        self.interval = interval
        self.pass = pass
        self.logger = logger
    }

    public func run() async throws {
        try await everyUntilShutdown(interval, logger: logger, failure: "periodic reconcile failed") { [pass, logger] in
            let report = try await pass()
            if let abort = report.abort {
                logger.warning("periodic reconcile aborted; nothing deleted", metadata: ["code": "\(abort.code)", "reason": "\(abort.message)"])
            } else {
                logger.info("periodic reconcile", metadata: [
                    "outcome": "\(report.outcome.rawValue)", "registered": "\(report.totals.registered)",
                    "tokens": "\(report.totals.tokensSpent)",
                ])
            }
        }
    }
}

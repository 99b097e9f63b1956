import CallAPI
import CallAudio
import CallJobs
public import CallPipeline
public import CallSandbox
import CallStore
import Foundation

// What each command's report says without `--json`, and the JSON documents that are more than
// one library value: pure renderers, tested in CallAppTests; the CLI writes them.

extension UploadSession.Outcome {
    /// `upload --json`: the files and the batch summary plus what the run cost at the API.
    public struct Document: Encodable, Sendable {
        public var files: [FileReport]
        public var summary: Summary
        public struct Summary: Encodable, Sendable {
            public var batch: BatchReport.Summary
            public var apiRequests, pipedriveTokens, rateLimited: Int
            enum CodingKeys: String, CodingKey {
                case apiRequests = "api_requests", pipedriveTokens = "pipedrive_tokens", rateLimited = "rate_limited"
            }
            public func encode(to encoder: any Encoder) throws {
                try batch.encode(to: encoder)
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(apiRequests, forKey: .apiRequests)
                try c.encode(pipedriveTokens, forKey: .pipedriveTokens)
                try c.encode(rateLimited, forKey: .rateLimited)
            }
        }
    }

    public var document: Document {
        Document(files: report.files, summary: .init(batch: report.summary, apiRequests: counters.requests,
                                                     pipedriveTokens: counters.tokensSpent, rateLimited: counters.rateLimited))
    }

    /// The problems and the run's one-line summary (last). When the run stopped early (a refused
    /// token, an unreachable API) the waiting recordings are not listed one by one: one line says
    /// why they all wait.
    public var lines: [OutputLine] {
        let s = report.summary, stopped = halted != nil
        var lines = report.problemLines(waiting: !stopped)
        if let diskFull = s.stopped {
            lines += [.err("stopped: \(diskFull.message)"), .err("nothing was lost: \(s.waiting) recording(s) wait; free space, then run again to go on")]
        } else if s.waiting > 0, !stopped {
            let when = s.resumeAfter.map { " after " + ISO8601DateFormatter().string(from: $0) } ?? ""
            lines.append(.err("stopped: \(s.waiting) recording(s) wait; run again\(when) to go on"))
        }
        lines.append(.out("\(s.ok) uploaded, \(s.skipped - report.notLogged) done before\(report.notLoggedSuffix), \(s.failed) failed\(s.waiting > 0 ? ", \(s.waiting) waiting" : ""); \(formatDuration(s.audioSeconds)) of audio in \(String(format: "%.1f", s.wallSeconds)) s; \(counters.requests) API requests, \(counters.tokensSpent) Pipedrive tokens\(counters.rateLimited > 0 ? ", \(counters.rateLimited) rate-limited" : "")"))
        return lines
    }

    /// What the spool prune after the run removed, on stderr (nothing when it removed nothing).
    public var prunedLines: [OutputLine] {
        guard let pruned, !pruned.pruned.isEmpty else { return [] }
        return [.err(pruned.line)]
    }
}

extension DeleteDocument {
    /// Each version named, how its deletion went step by step, and what is left to do.
    public var lines: [OutputLine] {
        var lines: [String] = []
        if recordings.count > 1, let message { lines.append(message + ":") }
        for version in recordings {
            let when = "registered \(version.registeredAt)" + (version.uploadedAt.map { ", uploaded \($0)" } ?? "")
            let logs = version.callLogs.isEmpty ? "no call log" : "call log\(version.callLogs.count == 1 ? "" : "s") \(version.callLogs.joined(separator: ", "))"
            switch version.status {
            case "deleted":
                lines.append("deleted \(version.path) (\(version.key); \(when); \(logs))\(version.deletion?.steps.contains { $0.state == "skipped" } == true ? "; some targets were left in place" : " everywhere")")
            case "already_deleted":
                lines.append("\(version.message ?? version.status) (\(version.key); \(logs))")
            default:
                lines.append("\(version.status): \(version.path) (\(version.key); \(when); \(logs))")
            }
            for step in version.deletion?.steps ?? [] {
                let status = step.httpStatus.map(String.init) ?? "-"
                lines.append("  \(step.state.padding(toLength: 8, withPad: " ", startingAt: 0)) \(status.padding(toLength: 4, withPad: " ", startingAt: 0)) \(step.target)\(step.detail.map { "  \($0)" } ?? "")")
            }
            if version.status != "already_deleted", let message = version.message { lines.append("  " + message) }
        }
        if recordings.isEmpty { lines.append(message ?? status) }
        return lines.map(OutputLine.out)
    }
}

extension ReconcileRun.Outcome {
    /// `reconcile --json`: the report and what the run cost at the API.
    public struct Document: Encodable, Sendable {
        public var report: ReconcileReport
        public var apiRequests: Int?
        public var pipedriveTokensCharged: Int?
        public var rateLimited: Int?

        enum CodingKeys: String, CodingKey {
            case report, apiRequests = "api_requests", pipedriveTokensCharged = "pipedrive_tokens_charged", rateLimited = "rate_limited"
        }
    }

    public var document: Document {
        Document(report: report, apiRequests: counters?.requests, pipedriveTokensCharged: counters?.tokensSpent, rateLimited: counters?.rateLimited)
    }

    /// The recordings with something to say, the counts of what is only reported, the warnings,
    /// an abort, and the pass's one-line summary.
    public var lines: [OutputLine] {
        var lines: [String] = []
        for line in report.recordings where !line.evidence.isEmpty || line.action != "none" || line.findings.contains(where: { $0.code == "listing_gap" || $0.code == "deletion_open" }) {
            lines.append("\(line.action.padding(toLength: 12, withPad: " ", startingAt: 0)) \(line.path) (\(line.key.prefix(12))…)")
            lines += line.findings.map { "    \($0.code): \($0.detail)" }
            if !line.targets.isEmpty { lines.append("    targets: \(line.targets.joined(separator: ", "))") }
            if let result = line.result { lines.append("    result: \(result)") }
        }
        var local: [String: Int] = [:]
        for line in report.recordings {
            for finding in line.findings where ["local_file_missing", "spool_missing", "provider_recording_missing"].contains(finding.code) {
                local[finding.code, default: 0] += 1
            }
        }
        lines += local.sorted(by: { $0.key < $1.key }).map { "reported only: \($0.value) recording(s) with \($0.key) (--json lists them)" }
        lines += report.warnings.map { "warning: \($0)" }
        if let abort = report.abort { lines.append("aborted (\(abort.code)): \(abort.message)") }
        let t = report.totals
        lines.append("\(report.outcome.rawValue): \(t.uploadedRecordings) uploaded recording(s), \(t.knownCallLogs) call log(s) known, \(t.listedCallLogs) listed in \(t.pages) page(s); \(t.candidates) missing from the listing, \(t.confirmedGone) confirmed gone, \(t.listingGaps) listing gap(s); \(t.plannedRecordings) recording(s) to delete (cap \(t.cap)); \(t.tokensSpent) Pipedrive tokens for the pass\(counters.map { ", \($0.tokensSpent) charged in all" } ?? "") in \(String(format: "%.1f", t.wallSeconds)) s")
        return lines.map(OutputLine.out)
    }
}

extension StoreStatus {
    public var lines: [OutputLine] {
        var lines = ["store: \(store)",
                     "recordings: " + RecordingState.allCases.map { "\($0.rawValue) \(recordings[$0.rawValue] ?? 0)" }.joined(separator: ", "),
                     "jobs: " + JobState.allCases.map { "\($0.rawValue) \(jobs[$0.rawValue] ?? 0)" }.joined(separator: ", ")]
        for (queue, counts) in queues.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(queue): " + JobState.allCases.compactMap { s in counts[s.rawValue].flatMap { $0 > 0 ? "\(s.rawValue) \($0)" : nil } }.joined(separator: ", "))
        }
        if due > 0 { lines.append("oldest due job has waited \(String(format: "%.1f", oldestAvailableSeconds)) s") }
        if let nextRunAt { lines.append("next scheduled job: \(nextRunAt)") }
        if let crmIndex {
            let rows = ["person", "organization", "deal", "lead", "user"].map { "\($0)s \(crmIndex.rows[$0] ?? 0)" }.joined(separator: ", ")
            lines.append("CRM index: \(rows); refreshed \(crmIndex.lastRefreshAt ?? "never"), full pass \(crmIndex.lastFullPassAt ?? "never")"
                + (crmIndex.underWay.isEmpty ? "" : "; resumes: \(crmIndex.underWay.joined(separator: ", "))"))
        }
        if !matches.isEmpty {
            lines.append("latest matches:")
            lines += matches.map { "  \($0.key.prefix(12)) \($0.reason) \($0.linked.isEmpty ? "-" : $0.linked): \($0.explanation)" }
        }
        if !stuckDeletions.isEmpty {
            lines.append("deletions stuck: \(stuckDeletions.count)")
            for stuck in stuckDeletions {
                lines.append("  \(stuck.path) (\(stuck.key)), deletion \(stuck.deletionID):")
                lines += stuck.next.map { "    \($0)" }
            }
        }
        return lines.map(OutputLine.out)
    }
}

/// `callrec probe`'s report: every file's facts and verdicts.
public struct ProbeDocument: Encodable, Sendable {
    public let files: [ProbeEntry]
    public let summary: [String: Int]

    public init(_ files: [ProbeEntry]) {
        self.files = files
        let ok = files.count { $0.status == "ok" }
        summary = ["ok": ok, "failed": files.count - ok]
    }

    public var succeeded: Bool { summary["failed"] == 0 }

    public var lines: [OutputLine] { files.map { .out($0.text) } }
}

extension ProbeEntry {
    /// The path, the input's format, its levels, the verdict and the warnings, one line each.
    public var text: String {
        var lines = [path]
        if let i = input {
            let declared = i.declaredFrames.map { $0 == i.frames ? "" : " (header: \($0))" } ?? " (header: unknown)"
            lines.append("  \(i.format) \(i.subtype), \(i.sampleRate) Hz, \(i.channels) ch, \(i.frames) frames\(declared), \(String(format: "%.3f", i.seconds)) s")
        }
        if let s = stats {
            lines.append("  peak \(String(format: "%.1f", s.peakdBFS)) dBFS, speech \(s.activeLeveldBFS.map { String(format: "%.1f", $0) } ?? "–") dBFS, floor \(String(format: "%.1f", s.noiseFloordBFS)) dBFS, active \(String(format: "%.0f", s.activeRatio * 100))%")
        }
        lines.append(error.map { "  REJECTED \($0.code): \($0.message)" } ?? "  ok")
        lines += warnings.map { "  warning \($0.code): \($0.message)" }
        return lines.joined(separator: "\n")
    }
}

extension JobRow {
    /// `queue ls`: a tab-separated table with a header.
    public static func table(_ rows: [JobRow]) -> [OutputLine] {
        [.out("ID\tQUEUE\tKIND\tSTATE\tATTEMPT\tRUN AT\tLAST ERROR")]
            + rows.map { .out("\($0.id)\t\($0.queue)\t\($0.kind)\t\($0.state)\t\($0.attempt)/\($0.maxAttempts)\t\($0.runAt)\t\($0.lastError ?? "")") }
    }
}

private func list(_ ids: [Int64]) -> String { ids.map(String.init).joined(separator: " ") }

extension QueueRetry.Report {
    /// What changed on stdout; the ids not found and the jobs left alone on stderr.
    public var lines: [OutputLine] {
        var lines: [OutputLine] = []
        if changed == 0 { lines.append(.out("nothing changed")) }
        if !retried.isEmpty { lines.append(.out("retried \(retried.count) job(s), attempts start over: \(list(retried))")) }
        if !woken.isEmpty { lines.append(.out("made \(woken.count) waiting job(s) due now: \(list(woken))")) }
        lines += rearmed.map { .out("  job \($0.job): \($0.path) is \($0.state) again (it had failed with \($0.error))") }
        if !notFound.isEmpty { lines.append(.err("no such job: \(list(notFound))")) }
        lines += notRetryable.map { .err("left alone: job \($0.id): \($0.reason)") }
        return lines
    }

    /// Named ids must all be done; a bulk selection (`bulk`: --all-…) may meet jobs whose work
    /// another job already did (they are listed, and fail nothing) but must change something.
    public func succeeded(bulk: Bool) -> Bool {
        changed > 0 && notFound.isEmpty && (bulk || notRetryable.isEmpty)
    }
}

/// `queue cancel`: the jobs `action` changed of those asked, and the ones left alone.
public struct QueueChange: Encodable, Sendable {
    public let action: String
    public let done: [Int64]
    public let skipped: [Int64]

    public init(action: String, asked: [Int64], done: [Int64]) {
        self.action = action
        self.done = done
        skipped = Set(asked).subtracting(done).sorted()
    }

    public func encode(to encoder: any Encoder) throws {
        try [action: done, "skipped": skipped].encode(to: encoder)
    }

    public var lines: [OutputLine] {
        [.out("\(action) \(done.count) job(s)" + (done.isEmpty ? "" : ": \(list(done))"))]
            + (skipped.isEmpty ? [] : [.err("left alone (not in a state that allows it, or its recording has another live job): \(list(skipped))")])
    }
}

extension SpoolPrune.Report {
    /// Each folder removed (or, `dryRun`, that would be), the ones kept and left alone, the total.
    public func lines(dryRun: Bool) -> [OutputLine] {
        var lines: [OutputLine] = pruned.map {
            .out("\(dryRun ? "would remove" : "removed") \($0.path) (\($0.parts) part(s), \(DiskSpace.format($0.bytes)), uploaded \(ISO8601DateFormatter().string(from: $0.uploadedAt)))")
        }
        lines += kept.map { .err("kept \($0.path): \($0.reason)") }
        if !unknown.isEmpty { lines.append(.err("left alone: \(unknown.count) spool folder(s) of recordings the ledger does not know")) }
        return lines + [.out(line)]
    }
}

extension Trash.PurgeReport {
    /// The folders kept and why, and the counts (`olderThan` as the user wrote it).
    public func lines(olderThan: String) -> [OutputLine] {
        kept.map { .err("kept \($0.name): \($0.reason)") }
            + [.out("removed \(removed.count) folder(s), \(bytes) bytes; kept \(kept.count); \(young) younger than \(olderThan)")]
    }
}

extension WorkerService.Outcome {
    /// `worker --json`: the jobs' outcomes by name, and how many were rescued.
    public var document: [String: [String: Int]] { ["outcomes": summary.outcomeNames, "rescued": ["count": summary.rescued]] }

    /// `worker: completed 3, discarded 1` (stderr).
    public var summaryLine: OutputLine {
        let line = summary.outcomeNames.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return .err("worker: \(line.isEmpty ? "no jobs run" : line)")
    }
}

/// What `callrec sandbox` says once it listens: the URLs to export, and the credentials made up
/// for it (never ones from the environment).
public struct SandboxAnnouncement: Sendable {
    public let configuration: SandboxConfiguration
    public let base: String
    /// The variables to export, in order.
    public let exports: [(String, String)]
    /// The credentials taken from the environment (named, never shown).
    public let fromEnvironment: [String]

    /// `generated`: the credentials made up for this sandbox.
    public init(_ configuration: SandboxConfiguration, port: Int, generated: [String]) {
        self.configuration = configuration
        base = configuration.baseURL(port: port)
        let secrets = [
            ("PIPEDRIVE_API_TOKEN", configuration.pipedriveToken), ("TELNYX_API_KEY", configuration.telnyxKey),
            ("VOIPNOW_ACCESS_TOKEN", configuration.voipnowToken),
        ]
        exports = [("PIPEDRIVE_API_URL", base + "/v1"), ("TELNYX_API_URL", base + "/v2"), ("VOIPNOW_API_URL", base)]
            + secrets.filter { generated.contains($0.0) }
        fromEnvironment = secrets.map(\.0).filter { !generated.contains($0) }
    }

    public var document: [String: String] {
        var document = ["base_url": base, "state": configuration.stateDirectory ?? "memory"]
        for (name, value) in exports { document[name] = value }
        return document
    }

    public var lines: [String] {
        var lines = ["callrec sandbox listening on \(base)  (state: \(configuration.stateDirectory ?? "memory"); faults: \(configuration.faults.isEmpty ? "none" : configuration.faults.specification))"]
        lines += exports.map { "export \($0.0)=\($0.1)" }
        if !fromEnvironment.isEmpty { lines.append("# taken from the environment: \(fromEnvironment.joined(separator: ", "))") }
        lines.append("# state: curl \(base)/_sandbox/state   stop: Ctrl-C")
        return lines
    }
}

import CallAudio
import CallJobs
public import CallStore
import CallSupport
public import Foundation
public import Logging
public import ServiceLifecycle

/// Where a recording's parts live between transcode and upload: `<state>/spool/<key>/part-NNN.mp3`.
public struct Spool: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    public func directory(key: String) -> String { Paths.join(root, key) }

    /// The transcode's report (input, stats, warnings, parts), kept for the upload report.
    public func reportPath(key: String) -> String { Paths.join(directory(key: key), "report.json") }

    public func report(key: String) -> FileReport? {
        guard let data = FileManager.default.contents(atPath: reportPath(key: key)) else { return nil }
        return try? JSONDecoder().decode(FileReport.self, from: data)
    }

    public func partPaths(key: String, count: Int) -> [String] {
        (1...max(1, count)).map { index in
            let n = String(index)
            return Paths.join(directory(key: key), "part-\(String(repeating: "0", count: max(0, 3 - n.count)))\(n).mp3")
        }
    }

    /// The recordings with a folder in the spool (folders whose name is not a key are not
    /// callrec's and are left alone).
    func keys() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }.sorted()
    }
}

/// Spool retention (`callrec spool prune`, `--spool-retention`): once a recording is uploaded,
/// its MP3 parts in the spool are a copy of what its call logs hold; after the retention they
/// go, and the audit says when and how much.
///
/// Never a spool that is still needed: only recordings that are `uploaded` with every part
/// attached, longer ago than the retention, and with no live transcode, upload or delete job —
/// checked in the commit that audits the prune, before anything is removed. Everything that
/// reads the spool later copes with a pruned recording: the upload report (a `spool_pruned`
/// warning; the parts' call logs stay), the delete cascade (nothing to move to the trash),
/// reconcile (not reported as `spool_missing`).
public struct SpoolPrune: Sendable {
    /// The audit action of a prune.
    public static let auditAction = "spool_pruned"
    /// The retention when none is given (`--spool-retention`, `CALLREC_SPOOL_RETENTION`).
    public static let defaultRetention: Duration = .seconds(30 * 86400)

    public let spool: Spool
    public let store: any CallStore
    /// Who prunes, for the audit.
    public let actor: String

    public init(spool: Spool, store: any CallStore, actor: String) {
        self.spool = spool
        self.store = store
        self.actor = actor
    }

    public struct Report: Sendable, Encodable {
        public var dryRun: Bool
        public var olderThanSeconds: Double
        /// Recordings whose MP3s were removed (with `dryRun`: would be).
        public var pruned: [Entry] = []
        public var bytes: Int64 = 0
        /// Uploaded recordings old enough whose spool is kept, and why.
        public var kept: [Kept] = []
        /// Uploaded recordings younger than the retention.
        public var young = 0
        /// Recordings whose work is not done (pending, transcoded, failed, being deleted): their
        /// spool is still needed.
        public var needed = 0
        /// Spool folders of recordings the ledger does not know: left alone.
        public var unknown: [String] = []
        /// Free space on the spool's disk afterwards, when known.
        public var freeBytes: Int64?

        public struct Entry: Sendable, Encodable, Equatable {
            public var key: String
            /// The source recording.
            public var path: String
            public var uploadedAt: Date
            public var parts: Int
            public var bytes: Int64
        }

        public struct Kept: Sendable, Encodable, Equatable {
            public var key: String
            public var path: String
            public var reason: String
        }

        enum CodingKeys: String, CodingKey {
            case dryRun = "dry_run", olderThanSeconds = "older_than_seconds", pruned, bytes, kept, young, needed, unknown
            case freeBytes = "free_bytes"
        }
    }

    /// Removes the spool folders of recordings uploaded more than `olderThan` before `now`
    /// (with `dryRun`, only says which).
    public func run(olderThan: Duration, now: Date = Date(), dryRun: Bool = false) async throws -> Report {
        var report = Report(dryRun: dryRun, olderThanSeconds: olderThan.seconds)
        let cutoff = now.addingTimeInterval(-olderThan.seconds)
        for key in spool.keys() {
            guard let recording = try await store.recording(key: key) else {
                report.unknown.append(key)
                continue
            }
            guard recording.state == .uploaded else {
                report.needed += 1
                continue
            }
            let parts = try await store.parts(key: key)
            if parts.isEmpty {
                report.kept.append(.init(key: key, path: recording.path, reason: "the ledger has no parts for it"))
                continue
            }
            if let loose = parts.first(where: { $0.state != .attached || $0.attachedAt == nil }) {
                report.kept.append(.init(key: key, path: recording.path, reason: "part \(loose.index) is \(loose.state.rawValue), not attached"))
                continue
            }
            let uploadedAt = parts.compactMap(\.attachedAt).max() ?? now
            guard uploadedAt < cutoff else {
                report.young += 1
                continue
            }
            let guards = try Self.guards(key: key)
            if let busy = try await liveJob(guards) {
                report.kept.append(.init(key: key, path: recording.path, reason: busy))
                continue
            }
            let directory = spool.directory(key: key)
            let downloads = spool.telnyxDownloads(key: key).reduce(Int64(0)) {
                $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? NSNumber)?.int64Value ?? 0)
            }
            let entry = Report.Entry(key: key, path: recording.path, uploadedAt: uploadedAt, parts: parts.count, bytes: Trash.size(directory) + downloads)
            if !dryRun {
                do {
                    // The guards again, in the commit: a job enqueued since is seen.
                    try await store.commit(guards + [
                        .audit(AuditEntry(recordingKey: key, action: Self.auditAction, target: directory,
                                          detail: "\(parts.count) part(s), \(entry.bytes) bytes; uploaded \(ISO8601DateFormatter().string(from: uploadedAt)); retention \(Int(olderThan.seconds)) s",
                                          actor: actor)),
                    ])
                } catch let error as StoreError where error.code == .conflict {
                    report.kept.append(.init(key: key, path: recording.path, reason: error.message))
                    continue
                }
                do {
                    try FileManager.default.removeItem(atPath: directory)
                    // A Telnyx recording's download: Telnyx keeps the original, Pipedrive the parts.
                    for download in spool.telnyxDownloads(key: key) { try FileManager.default.removeItem(atPath: download) }
                } catch {
                    report.kept.append(.init(key: key, path: recording.path, reason: "cannot remove \(directory): \(error.localizedDescription)"))
                    continue
                }
            }
            report.pruned.append(entry)
            report.bytes += entry.bytes
        }
        report.freeBytes = DiskSpace.space(at: spool.root)?.available
        return report
    }

    /// What must hold when a recording's spool goes: it is uploaded (not being deleted, not
    /// re-armed), and no job that could read its parts is live.
    static func guards(key: String) throws -> [LedgerOp] {
        let jobs = [try TranscodeJobHandler.job(key: key), try UploadJobHandler.job(key: key), try DeleteJobHandler.job(key: key, deletionID: "")]
        return [.require(key: key, states: [.uploaded])] + jobs.compactMap(\.uniqueKey).map { .requireNoLiveJob(uniqueKey: $0) }
    }

    /// The live job one of `guards` names, said as the commit's guard would.
    private func liveJob(_ guards: [LedgerOp]) async throws -> String? {
        for case .requireNoLiveJob(let uniqueKey) in guards {
            if let job = try await store.jobs(JobQuery(states: JobState.live, uniqueKey: uniqueKey, limit: 1)).first {
                return "job \(job.id) (\(uniqueKey)) is live"
            }
        }
        return nil
    }

    /// When the spool of a recording was pruned (its audit entry), or nil.
    public static func prunedAt(key: String, store: any CallStore) async throws -> Date? {
        try await store.audit(key: key, limit: 1_000).last { $0.action == auditAction }?.at
    }
}

extension SpoolPrune.Report {
    /// One line for a person: what was (or would be) freed.
    public var line: String {
        let verb = dryRun ? "would remove" : "removed"
        var text = "spool: \(verb) the MP3s of \(pruned.count) uploaded recording(s), \(DiskSpace.format(bytes))"
        text += "; kept \(young) younger than \(Self.age(olderThanSeconds)), \(needed) not uploaded yet or being deleted"
        if !kept.isEmpty { text += ", \(kept.count) held back" }
        if let freeBytes { text += "; \(DiskSpace.format(freeBytes)) free" }
        return text
    }

    static func age(_ seconds: Double) -> String {
        if seconds >= 86400, seconds.truncatingRemainder(dividingBy: 86400) == 0 { return "\(Int(seconds / 86400))d" }
        if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
        if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
        return "\(Int(seconds))s"
    }
}

/// Prunes the spool at start and then every `interval` (the worker's `--spool-retention`).
public struct SpoolPruneService: Service {
    public let prune: SpoolPrune
    public let retention: Duration
    public let interval: Duration
    public let logger: Logger

    public init(prune: SpoolPrune, retention: Duration, interval: Duration = .seconds(3600), logger: Logger) {
        self.prune = prune
        self.retention = retention
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        try await everyUntilShutdown(interval, logger: logger, failure: "spool prune failed") { [prune, retention, logger] in
            let report = try await prune.run(olderThan: retention)
            if !report.pruned.isEmpty { logger.info("\(report.line)") }
        }
    }
}

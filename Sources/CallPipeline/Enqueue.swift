public import CallAudio
import CallJobs
public import CallStore
import CallSupport
import Foundation
public import Logging

/// `callrec enqueue DIR`: every recording under a directory registered in the ledger with its
/// sidecar and provider references, and its transcode job enqueued — in one commit per recording,
/// so the ledger and the queue never disagree.
///
/// What is registered (the rule `upload` shares): a file that has settled (``Settle``), whose
/// stem no other recording in its folder shares, with a valid sidecar; once per bytes (its key)
/// and call (``DuplicateAudio``); never a second version at a path whose first version callrec
/// may have sent (`source_changed`), until that one is deleted. A known recording whose sidecar
/// changed has the new sidecar read in (and, if it failed after its transcode, is tried again).
public struct EnqueueBatch: Sendable {
    public let root: String
    public let store: any CallStore
    public let jobs: Int
    public let excluding: [String]
    public let settle: Settle
    public let logger: Logger
    /// Where the fingerprints taken are remembered for a transcode in this process.
    public let fingerprints: Fingerprints?

    public init(root: String, store: any CallStore, jobs: Int, excluding: [String] = [], settle: Settle = Settle(),
                fingerprints: Fingerprints? = nil, logger: Logger) {
        self.root = root
        self.store = store
        self.jobs = jobs
        self.excluding = excluding
        self.settle = settle
        self.fingerprints = fingerprints
        self.logger = logger
    }

    /// A file that passed the checks that read no audio.
    private struct Candidate: Sendable {
        var file: ScannedFile
        var sidecar: Sidecar
        var text: String
        var hashed: (key: String, stamp: FileStamp?)?
    }

    /// Registers every recording; the report says per file `ok` (enqueued), `skipped` (known
    /// already, deleted, or a duplicate: see the warning), `waiting` (not settled) or `failed`.
    public func run() async throws -> BatchReport {
        let clock = ContinuousClock(), started = clock.now
        let scan = try Scanner.scan(root: root, excluding: excluding)
        let pool = CPUPool(threads: jobs)
        defer { pool.shutdown() }
        var results = [FileReport?](repeating: nil, count: scan.files.count)
        var candidates: [Int: Candidate] = [:]
        for (index, file) in scan.files.enumerated() {
            if let early = Preflight.check(file, settle: settle) {
                results[index] = early
                continue
            }
            let shown = file.relativePath
            switch SidecarRead.read(file) {
            case .missing:
                results[index] = .failed(shown, code: "missing_sidecar", "\(shown): no sidecar \(Scanner.stem(of: shown)).json with the call log's metadata")
            case .broken(let message):
                results[index] = .failed(shown, code: "invalid_sidecar", message)
            case .valid(let sidecar, let text):
                candidates[index] = Candidate(file: file, sidecar: sidecar, text: text)
            }
        }
        let store = self.store
        let duplicates = try await DuplicateAudio.resolve(
            candidates.map { DuplicateAudio.Member(index: $0.key, file: $0.value.file, sidecar: $0.value.sidecar) },
            settle: settle, pool: pool, known: { key in
                if try await store.recording(key: key) != nil { return true }
                return try await store.tombstone(key: key) != nil
            })
        for (index, report) in duplicates.reports {
            results[index] = report
            candidates[index] = nil
        }
        for (index, hashed) in duplicates.hashed { candidates[index]?.hashed = hashed }

        let order = candidates.keys.sorted()
        let registered = await withTaskGroup(of: (Int, FileReport).self) { group in
            var registered: [(Int, FileReport)] = []
            var next = 0
            func add(_ index: Int) {
                let candidate = candidates[index]!
                group.addTask { (index, await self.register(candidate, pool: pool)) }
            }
            while next < min(jobs * 4, order.count) { add(order[next]); next += 1 }
            while let result = await group.next() {
                registered.append(result)
                if next < order.count { add(order[next]); next += 1 }
            }
            return registered
        }
        for (index, report) in registered { results[index] = report }
        let reports = results.compactMap { $0 }
        let summary = BatchReport.Summary(files: reports, wallSeconds: (clock.now - started).seconds)
        return BatchReport(files: reports, summary: summary)
    }

    private func register(_ candidate: Candidate, pool: CPUPool) async -> FileReport {
        let file = candidate.file, shown = file.relativePath
        let key: String
        if let hashed = candidate.hashed {
            key = hashed.key
            fingerprints?.remember(key: key, path: file.absolutePath, stamp: hashed.stamp)
        } else {
            do {
                let now = settle.now
                let read = try await pool.run { try Fingerprint.hashOnce(file.absolutePath, now: now()) }
                guard read.held else { return settle.changedWhileRead(shown: shown) }
                key = read.key
                fingerprints?.remember(key: key, path: file.absolutePath, stamp: read.trusted)
            } catch {
                return .failed(shown, code: "unreadable", "\(shown): \(ScanError.reason(error))")
            }
        }
        // A few passes at most: a conflict means the recording changed meanwhile (the same bytes
        // registered by another run, a job that moved it on), and the next pass meets it as it is.
        for _ in 0..<3 {
            do {
                if let tombstone = try await store.tombstone(key: key) {
                    return FileReport(path: shown, key: key, status: .skipped, error: nil,
                                      warnings: [AudioWarning(.deleted, "\(shown): deleted \(Self.format(tombstone.deletedAt)) (\(tombstone.reason)); not enqueued again")],
                                      input: nil, stats: nil, parts: [])
                }
                if let known = try await store.recording(key: key) {
                    return try await registered(candidate, known: known)
                }
                if let report = try await otherVersion(candidate, key: key) { return report }
                let recording = Recording(key: key, path: file.absolutePath, metadata: candidate.text)
                try await store.commit([.registerRecording(recording)] + Self.providerRefs(candidate.sidecar, key: key).map { .putProviderRef($0) }
                    + [.enqueue(try TranscodeJobHandler.job(key: key, bytes: file.size))])
                return FileReport(path: shown, key: key, status: .ok, error: nil, warnings: [], input: nil, stats: nil, parts: [])
            } catch let error as StoreError where error.code == .conflict {
                continue
            } catch let error as StoreError where error.code == .diskFull {
                // Not the recording's fault: it is registered by a run after space is freed.
                return FileReport(path: shown, key: key, status: .waiting, error: .init(code: error.code.rawValue, message: "\(shown): not registered: \(error.message)"),
                                  warnings: [], input: nil, stats: nil, parts: [])
            } catch {
                return .failed(shown, code: "store_failed", "\(shown): \(error)", key: key)
            }
        }
        return .failed(shown, code: "store_failed", "\(shown): its recording kept changing while it was registered; run again", key: key)
    }

    /// A file whose bytes the ledger knows: the same file again (its sidecar read in again if it
    /// changed), or the same bytes under another name.
    private func registered(_ candidate: Candidate, known: Recording) async throws -> FileReport {
        let file = candidate.file, shown = file.relativePath, key = known.key
        func report(_ status: FileReport.Status, _ warnings: [AudioWarning]) -> FileReport {
            FileReport(path: shown, key: key, status: status, error: nil, warnings: warnings, input: nil, stats: nil, parts: [])
        }
        let stored = known.metadata.flatMap { Sidecar.parse(Data($0.utf8)).sidecar }
        if known.path != file.absolutePath {
            let other = display(known.path)
            if stored == candidate.sidecar {
                return report(.skipped, [AudioWarning(DuplicateAudio.duplicateOf, "\(shown): the same bytes as \(other), for the same call: one recording, taken as \(other) (\(known.state.rawValue))")])
            }
            let when = known.state == .uploaded ? ", uploaded \(Self.format(known.updatedAt))" : " (\(known.state.rawValue))"
            return .failed(shown, code: DuplicateAudio.conflict,
                           DuplicateAudio.conflictMessage(shown, sidecar: Scanner.stem(of: shown) + ".json",
                                                          others: [(other, Scanner.stem(of: other) + ".json")], uploaded: when), key: key)
        }
        // The sidecar mended since it was registered: read in, in the commit that acts on it.
        let changed = stored != candidate.sidecar
        let mend: [LedgerOp] = changed ? [
            .setRecordingMetadata(key: key, metadata: candidate.text),
            .replaceProviderRefs(key: key, refs: Self.providerRefs(candidate.sidecar, key: key)),
            .audit(AuditEntry(recordingKey: key, action: "sidecar_reread", detail: "\(Scanner.stem(of: shown)).json changed since it was read (\(known.state.rawValue))", actor: "enqueue")),
        ] : []
        let reread = AudioWarning(Self.sidecarReread, "\(shown): \(Scanner.stem(of: shown)).json changed since it was read; read again")
        switch known.state {
        case .failed where known.errorCode == "quarantined" || changed:
            // Asked again for a recording whose runs died, or whose sidecar was mended: try it
            // once more (from its upload when its transcode is done; failures before that are the
            // audio's, which a sidecar does not mend).
            let parts = try await store.parts(key: key)
            guard known.errorCode == "quarantined" || !parts.isEmpty else {
                try await store.commit([.require(key: key, states: [.failed])] + mend)
                return report(.skipped, [reread, AudioWarning(.alreadyKnown, "\(shown): failed already (\(known.errorCode ?? "failed")); the audio, not its sidecar, is the cause")])
            }
            let job = parts.isEmpty ? try TranscodeJobHandler.job(key: key, bytes: file.size) : try UploadJobHandler.job(key: key)
            let why = known.errorCode == "quarantined" ? "registered again after quarantine" : "its sidecar changed after it failed (\(known.errorCode ?? "failed"))"
            try await store.commit(mend + [
                .require(key: key, states: [.failed]),
                .setRecordingState(key: key, state: parts.isEmpty ? .pending : .transcoded),
                .audit(AuditEntry(recordingKey: key, action: "rearmed", detail: why, actor: "enqueue")),
                .enqueue(job),
            ])
            let warning = known.errorCode == "quarantined"
                ? AudioWarning(.resumed, "\(shown): quarantined by an earlier run (\(known.errorMessage ?? "")); tried again")
                : AudioWarning(.resumed, "\(shown): failed before (\(known.errorCode ?? "failed"): \(known.errorMessage ?? "")); its sidecar changed since, so it is tried again")
            return report(.ok, (changed ? [reread] : []) + [warning])
        case .pending, .transcoded:
            // Its work is still to do: a run that does it reports it as its own.
            if changed { try await store.commit([.require(key: key, states: [.pending, .transcoded])] + mend) }
            return report(.skipped, (changed ? [reread] : []) + [AudioWarning(.resumed, "\(shown): known already as \(known.path) (\(known.state.rawValue))")])
        case .uploaded, .deleting, .deleted, .skipped:
            var warnings = [AudioWarning(.alreadyKnown, "\(shown): known already as \(known.path) (\(known.state.rawValue))")]
            if changed {
                warnings.append(AudioWarning(Self.sidecarChanged, "\(shown): \(Scanner.stem(of: shown)).json changed after the upload (\(Self.format(known.updatedAt))); its call log keeps what was sent (callrec does not edit call logs), and the provider references stay as registered"))
            }
            return report(.skipped, warnings)
        case .failed:
            return report(.skipped, [AudioWarning(.alreadyKnown, "\(shown): known already as \(known.path) (\(known.state.rawValue))")])
        }
    }

    /// A file whose bytes are new, at a path where callrec registered other bytes: refused while
    /// that version may be in Pipedrive (uploaded, under way, or failed after a create went out);
    /// versions deleted, or failed before anything was sent, do not count.
    private func otherVersion(_ candidate: Candidate, key: String) async throws -> FileReport? {
        let file = candidate.file, shown = file.relativePath
        for version in try await store.recordings(RecordingQuery(path: file.absolutePath, limit: 1000)) where version.key != key {
            switch version.state {
            case .deleted:
                continue
            case .failed:
                let parts = try await store.parts(key: version.key)
                if parts.allSatisfy({ $0.callLogID == nil && $0.state == .pending }) { continue }
            default:
                break
            }
            let what = version.state == .uploaded
                ? "uploaded it \(Self.format(version.updatedAt))"
                : "registered it \(Self.format(version.createdAt)) (\(version.state.rawValue))"
            return .failed(shown, code: AudioError.Code.sourceChanged.rawValue,
                           "\(shown): its bytes changed after callrec \(what) as \(version.key); the new bytes are not sent as a second call. If they are the right recording, `callrec delete --recording \(file.absolutePath)` deletes what was sent from this path (its call logs too) and the next run takes the new bytes; otherwise put the original file back",
                           key: key)
        }
        return nil
    }

    /// A ledger path as the user knows it: relative to the root when it lies under it.
    private func display(_ path: String) -> String {
        let root = URL(fileURLWithPath: self.root).standardizedFileURL.resolvingSymlinksInPath().path + "/"
        return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
    }

    static func providerRefs(_ sidecar: Sidecar, key: String) -> [ProviderRef] {
        var refs: [ProviderRef] = []
        if let telnyx = sidecar.telnyxRecordingId {
            refs.append(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: telnyx))
        }
        if let event = sidecar.voipnowEvent {
            refs.append(ProviderRef(provider: ProviderRef.voipnow, recordingKey: key, reference: event.jsonText))
        }
        return refs
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }

    /// A known recording's sidecar changed and was read in again.
    static let sidecarReread = AudioWarning.Code(rawValue: "sidecar_reread")
    /// An uploaded recording's sidecar changed: nothing is sent (callrec does not edit call logs).
    static let sidecarChanged = AudioWarning.Code(rawValue: "sidecar_changed")
}

extension Sidecar.VoipNowEventReference {
    /// The reference as stored in the ledger.
    public var jsonText: String {
        let object: [String: Any] = ["user_id": userId, "extension": `extension`, "event_type": eventType, "event_id": eventId]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

extension AudioWarning.Code {
    /// The recording was deleted (it has a tombstone): never uploaded again.
    public static let deleted = AudioWarning.Code(rawValue: "deleted")
    /// The ledger knows the recording already (same bytes), and its work is done.
    public static let alreadyKnown = AudioWarning.Code(rawValue: "already_known")
    /// The ledger knows the recording already, and its work is still to do (an interrupted or
    /// waiting run): this run goes on with it.
    public static let resumed = AudioWarning.Code(rawValue: "resumed")
    /// An uploaded recording whose MP3 parts the spool retention removed (the call logs keep
    /// the audio; the part paths in the report no longer exist).
    public static let spoolPruned = AudioWarning.Code(rawValue: "spool_pruned")
}

import CallAudio
import CallStore
import Foundation
import Logging

/// `callrec enqueue DIR`: every recording under a directory registered in the ledger with its
/// sidecar and provider references, and its transcode job enqueued — in one commit per recording,
/// so the ledger and the queue never disagree.
public struct EnqueueBatch: Sendable {
    public let root: String
    public let store: any CallStore
    public let jobs: Int
    public let excluding: [String]
    public let logger: Logger
    /// Where the fingerprints taken are remembered for a transcode in this process.
    public let fingerprints: Fingerprints?

    public init(root: String, store: any CallStore, jobs: Int, excluding: [String] = [], fingerprints: Fingerprints? = nil, logger: Logger) {
        self.root = root
        self.store = store
        self.jobs = jobs
        self.excluding = excluding
        self.fingerprints = fingerprints
        self.logger = logger
    }

    /// Registers every recording; the report says per file `ok` (enqueued), `skipped` (known
    /// already, or deleted: see the warning) or `failed`.
    public func run() async throws -> BatchReport {
        let clock = ContinuousClock(), started = clock.now
        let scan = try Scanner.scan(root: root, excluding: excluding)
        let pool = CPUPool(threads: jobs)
        defer { pool.shutdown() }
        let reports = await withTaskGroup(of: (Int, FileReport).self) { group in
            var results = [FileReport?](repeating: nil, count: scan.files.count)
            var next = 0
            func add(_ index: Int) {
                group.addTask { (index, await self.register(scan.files[index], pool: pool)) }
            }
            while next < min(jobs * 4, scan.files.count) { add(next); next += 1 }
            while let (index, report) = await group.next() {
                results[index] = report
                if next < scan.files.count { add(next); next += 1 }
            }
            return results.compactMap { $0 }
        }
        let summary = BatchReport.Summary(files: reports, wallSeconds: (clock.now - started).seconds)
        return BatchReport(files: reports, summary: summary)
    }

    private func register(_ file: ScannedFile, pool: CPUPool) async -> FileReport {
        let shown = file.relativePath
        if let refusal = file.refusal {
            return .failed(shown, code: "refused", "\(shown): \(refusal)")
        }
        let stem = Scanner.stem(of: shown)
        guard let sidecarPath = file.sidecarPath else {
            return .failed(shown, code: "missing_sidecar", "\(shown): no sidecar \(stem).json with the call log's metadata")
        }
        guard let data = FileManager.default.contents(atPath: sidecarPath) else {
            return .failed(shown, code: "invalid_sidecar", "\(stem).json: cannot be read")
        }
        let (parsed, problems) = Sidecar.parse(data)
        guard let sidecar = parsed, problems.isEmpty else {
            return .failed(shown, code: "invalid_sidecar", "\(stem).json: " + problems.map(\.description).joined(separator: "; "))
        }
        let key: String
        do {
            let (hashed, stamp) = try await pool.run { try Fingerprint.stamped(ofFile: file.absolutePath) }
            key = hashed
            fingerprints?.remember(key: key, path: file.absolutePath, stamp: stamp)
        } catch {
            return .failed(shown, code: "unreadable", "\(shown): \(error)")
        }
        do {
            if let tombstone = try await store.tombstone(key: key) {
                return FileReport(path: shown, key: key, status: .skipped, error: nil,
                                  warnings: [AudioWarning(.deleted, "\(shown): deleted \(Self.format(tombstone.deletedAt)) (\(tombstone.reason)); not enqueued again")],
                                  input: nil, stats: nil, parts: [])
            }
            if let known = try await store.recording(key: key), known.state == .failed, known.errorCode == "quarantined" {
                // Asked again for a recording whose runs died: try it once more.
                let parts = try await store.parts(key: key)
                let state: RecordingState = parts.isEmpty ? .pending : .transcoded
                let job = parts.isEmpty ? try TranscodeJobHandler.job(key: key, bytes: file.size) : try UploadJobHandler.job(key: key)
                try await store.commit([
                    .require(key: key, states: [.failed]),
                    .setRecordingState(key: key, state: state),
                    .audit(AuditEntry(recordingKey: key, action: "rearmed", detail: "registered again after quarantine", actor: "enqueue")),
                    .enqueue(job),
                ])
                return FileReport(path: shown, key: key, status: .ok, error: nil,
                                  warnings: [AudioWarning(.resumed, "\(shown): quarantined by an earlier run (\(known.errorMessage ?? "")); tried again")],
                                  input: nil, stats: nil, parts: [])
            }
            if let known = try await store.recording(key: key) {
                // Known and finished (uploaded, failed, deleted), or known with its work still to
                // do: a run that does that work reports it as its own.
                let unfinished = known.state == .pending || known.state == .transcoded
                return FileReport(path: shown, key: key, status: .skipped, error: nil,
                                  warnings: [AudioWarning(unfinished ? .resumed : .alreadyKnown, "\(shown): known already as \(known.path) (\(known.state.rawValue))")],
                                  input: nil, stats: nil, parts: [])
            }
            var ops: [LedgerOp] = [
                .insertRecording(Recording(key: key, path: file.absolutePath, metadata: String(decoding: data, as: UTF8.self))),
            ]
            if let telnyx = sidecar.telnyxRecordingId {
                ops.append(.putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: telnyx)))
            }
            if let event = sidecar.voipnowEvent {
                ops.append(.putProviderRef(ProviderRef(provider: ProviderRef.voipnow, recordingKey: key, reference: event.jsonText)))
            }
            ops.append(.enqueue(try TranscodeJobHandler.job(key: key, bytes: file.size)))
            let results = try await store.commit(ops)
            if results.last == .duplicate {
                return FileReport(path: shown, key: key, status: .skipped, error: nil,
                                  warnings: [AudioWarning(.resumed, "\(shown): a job for it is queued already")],
                                  input: nil, stats: nil, parts: [])
            }
            return FileReport(path: shown, key: key, status: .ok, error: nil, warnings: [], input: nil, stats: nil, parts: [])
        } catch let error as StoreError where error.code == .diskFull {
            // Not the recording's fault: it is registered by a run after space is freed.
            return FileReport(path: shown, key: key, status: .waiting, error: .init(code: error.code.rawValue, message: "\(shown): not registered: \(error.message)"),
                              warnings: [], input: nil, stats: nil, parts: [])
        } catch {
            return .failed(shown, code: "store_failed", "\(shown): \(error)", key: key)
        }
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
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

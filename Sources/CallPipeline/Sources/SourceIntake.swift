public import CallAudio
public import CallSources
public import CallStore
import CallSupport
import Foundation
public import Logging

// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// One PBX source's way into the ledger: its CDR files read in, and each recording file taken
/// once (registered with its transcode job, or recorded as skipped with its reason), identified by
/// the PBX's call id rather than its bytes. `upload`/`enqueue DIR --source …` and the watching
/// worker share it.
///
/// A scan goes one directory at a time: it lists the directory, `lstat`s each entry and loads
/// what the ledger knows of that directory once; a file whose stamp (device, inode, size, mtime,
/// ctime) equals its row is done, neither opened nor read. Everything else is taken
/// (``take(path:)``): settled, its name parsed, its bytes hashed once, then registered as a new
/// call, moved to (a WAV converted to MP3 before its upload), or reported against the call the
/// ledger knows (`converted`, `changed_after_upload`, `same_call`). Its stamp is recorded in
/// every case, so the next scan is silent.
public struct SourceIntake: Sendable {
    public let settings: SourceSettings
    public let store: any CallStore
    public let settle: Settle
    public let fingerprints: Fingerprints?
    public let logger: Logger
    /// Directories and files never taken (the state directory).
    public let excluding: [String]

    public init(settings: SourceSettings, store: any CallStore, settle: Settle = Settle(), fingerprints: Fingerprints? = nil,
                logger: Logger, excluding: [String] = []) {
        self.settings = settings
        self.store = store
        self.settle = settle
        self.fingerprints = fingerprints
        self.logger = logger
        self.excluding = excluding
    }

    /// The root, absolute, symlinks resolved (the paths in the ledger are under it).
    var root: String { Self.resolve(settings.root) }

    static func resolve(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// Paths a scan passes over: the excluded ones and the CDR files.
    private var skipped: Set<String> { Set((excluding + settings.cdrFiles).map(Self.resolve)) }

    /// Every file under the root, one directory at a time. Files the ledger knows unchanged are
    /// neither opened nor reported unless `reportKnown` (one-shot `upload` lists every file).
    public func scan(reportKnown: Bool) async throws -> [FileReport] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ScanError(path: settings.root, reason: "is not a directory")
        }
        var reports: [FileReport] = []
        var pending = [root]
        while let directory = pending.popLast() {
            let (found, subdirectories) = try await scanOne(directory: directory, reportKnown: reportKnown)
            reports += found
            pending += subdirectories.reversed()
        }
        return reports
    }

    /// The files of one directory (absolute) the ledger does not know as they are.
    public func scan(directory: String, reportKnown: Bool) async throws -> [FileReport] {
        try await scanOne(directory: Self.resolve(directory), reportKnown: reportKnown).reports
    }

    private func scanOne(directory: String, reportKnown: Bool) async throws -> (reports: [FileReport], subdirectories: [String]) {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted() } catch {
            let shown = display(directory)
            return ([.failed(shown, code: "refused", "\(shown): cannot list the directory: \(error.localizedDescription)")], [])
        }
        let skipped = self.skipped
        let known = Dictionary(try await store.sourceFiles(directory: directory).map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        var reports: [FileReport] = [], subdirectories: [String] = []
        for name in names where !name.hasPrefix(".") {
            let path = Paths.join(directory, name)
            if skipped.contains(path) { continue }
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                subdirectories.append(path)
            case S_IFREG:
                if Self.isNotRecording(name) { continue }
                if let row = known[path], SourceStamp(st).matches(row), !needsReview(row) {
                    if reportKnown { reports.append(try await knownReport(row)) }
                    continue
                }
                reports.append(await take(path: path))
            default:
                reports.append(refusal(path, st))
            }
        }
        return (reports, subdirectories)
    }

    /// Sidecars, CDR exports, notes: never recordings.
    static func isNotRecording(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasSuffix(".json") || Scanner.documentExtensions.contains { lower.hasSuffix($0) }
    }

    /// A skip by policy is looked at again when the policy changed (`--log` edited).
    private func needsReview(_ row: SourceFile) -> Bool {
        row.verdict == Verdict.skipped && row.reason != SkipReason.unrecognisedName.rawValue && row.policyDigest != settings.policyDigest
    }

    private func refusal(_ path: String, _ st: stat) -> FileReport {
        let shown = display(path)
        if st.st_mode & S_IFMT == S_IFLNK {
            return .failed(shown, code: "refused", "\(shown): is a symbolic link; links are not followed (they could leave the directory)")
        }
        return .failed(shown, code: "refused", "\(shown): is not a regular file")
    }

    /// A path as the user knows it: relative to the root when it lies under it.
    func display(_ path: String) -> String {
        let root = self.root + "/"
        if path.hasPrefix(root) { return String(path.dropFirst(root.count)) }
        let resolved = Self.resolve(path)
        return resolved.hasPrefix(root) ? String(resolved.dropFirst(root.count)) : path
    }

    /// One file (absolute path), as a watcher saw it close or arrive.
    public func take(path: String) async -> FileReport {
        let shown = display(path)
        // A watcher may pass what a scan passes over (a CDR file, the state directory's files).
        if Self.isNotRecording(Paths.name(of: path)) || skipped.contains(where: { path == $0 || path.hasPrefix($0 + "/") }) {
            return FileReport(path: shown, key: nil, status: .skipped, error: nil, warnings: [], input: nil, stats: nil, parts: [])
        }
        for _ in 0..<3 {
            do {
                return try await attempt(path: path, shown: shown)
            } catch let error as StoreError where error.code == .conflict {
                continue  // the call changed meanwhile (another run registered it): look again
            } catch let error as StoreError where error.code == .diskFull {
                return FileReport(path: shown, key: nil, status: .waiting, error: .init(code: error.code.rawValue, message: "\(shown): not registered: \(error.message)"),
                                  warnings: [], input: nil, stats: nil, parts: [])
            } catch {
                return .failed(shown, code: "store_failed", "\(shown): \(error)")
            }
        }
        return .failed(shown, code: "store_failed", "\(shown): its call kept changing while it was registered; run again")
    }

    /// Everything ``take(path:)`` needs to know of the file it takes.
    private struct Taken {
        var path: String
        var shown: String
        var relative: String
        var name: NameFacts
        var key: String
        var sha256: String
        var size: Int64
        var modified: Double
        var row: SourceFile
    }

    /// A file gone before it was taken (a PBX script converted it, a writer renamed its temporary
    /// file): nothing to do; what it became is taken on its own.
    static func vanished(_ shown: String) -> FileReport {
        FileReport(path: shown, key: nil, status: .skipped, error: .init(code: vanishedCode, message: "\(shown): gone before it was taken (converted or renamed); what it became is taken on its own"),
                   warnings: [], input: nil, stats: nil, parts: [])
    }

    /// ``vanished(_:)``'s code.
    public static let vanishedCode = "vanished"

    private func attempt(path: String, shown: String) async throws -> FileReport {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return Self.vanished(shown) }
            return .failed(shown, code: "unreadable", "\(shown): cannot be read: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else { return refusal(path, st) }
        let stamp = SourceStamp(st)
        let file = ScannedFile(relativePath: shown, absolutePath: path, sidecarPath: nil, refusal: nil, size: stamp.size,
                               modified: Double(stamp.modifiedNanos) / 1e9)
        if let early = Preflight.check(file, settle: settle) { return early }
        var row = stamp.row(path: path, pbx: settings.pbx, verdict: Verdict.registered, policyDigest: settings.policyDigest, seenAt: settle.now())
        guard let name = Layouts.parse(relativePath: shown, kind: settings.kind) else {
            row.verdict = Verdict.skipped
            row.reason = SkipReason.unrecognisedName.rawValue
            try await store.commit([.putSourceFile(row)])
            return FileReport(path: shown, key: nil, status: .skipped,
                              error: .init(code: SkipReason.unrecognisedName.rawValue,
                                           message: "\(shown): the name fits no \(settings.kind.rawValue) recording layout; not a call callrec can log"),
                              warnings: [], input: nil, stats: nil, parts: [])
        }
        let read: (key: String, held: Bool, trusted: FileStamp?)
        do { read = try Fingerprint.hashOnce(path, now: settle.now()) } catch {
            if !FileManager.default.fileExists(atPath: path) { return Self.vanished(shown) }
            return .failed(shown, code: "unreadable", "\(shown): \(ScanError.reason(error))")
        }
        var after = stat()
        guard read.held, lstat(path, &after) == 0, SourceStamp(after) == stamp else { return settle.changedWhileRead(shown: shown) }
        fingerprints?.remember(key: read.key, path: path, stamp: read.trusted)
        let key = SourceIdentity.key(pbx: settings.pbx, callID: name.callID)
        row.recordingKey = key
        row.audioSHA256 = read.key
        let taken = Taken(path: path, shown: shown, relative: shown, name: name, key: key, sha256: read.key, size: stamp.size,
                          modified: Double(stamp.modifiedNanos) / 1e9, row: row)
        if let tombstone = try await store.tombstone(key: key) {
            var row = taken.row
            row.verdict = Verdict.deleted
            try await store.commit([.putSourceFile(row)])
            return report(taken, .skipped, [AudioWarning(.deleted, "\(shown): its call was deleted \(EnqueueBatch.format(tombstone.deletedAt)) (\(tombstone.reason)); not taken again")])
        }
        guard let known = try await store.recording(key: key) else { return try await register(taken) }
        return try await met(taken, known: known)
    }

    private func report(_ taken: Taken, _ status: FileReport.Status, _ warnings: [AudioWarning], error: FileReport.ErrorReport? = nil) -> FileReport {
        FileReport(path: taken.shown, key: taken.key, status: status, error: error, warnings: warnings, input: nil, stats: nil, parts: [])
    }

    private func metadata(_ taken: Taken) -> SourceMetadata {
        SourceMetadata(source: .init(kind: settings.kind.rawValue, pbx: settings.pbx, name: settings.name, root: root,
                                     relativePath: taken.relative, callID: taken.name.callID, nameFacts: taken.name,
                                     cdrWaitUntil: taken.modified + settings.cdrWait.seconds, fileModified: taken.modified,
                                     settings: SourceSettingsSnapshot(settings)))
    }

    /// Whether the name alone says the call is internal and `--log` leaves internal calls out.
    private func internalByName(_ name: NameFacts) -> Bool {
        name.directionHint == .internal && !settings.log.contains(.internal)
    }

    private static let internalMessage = "an internal call (extension to extension): not logged unless --log internal"

    /// A call the ledger does not know: registered with its transcode job in one commit, or, when
    /// its name says it is internal and `--log` leaves those out, registered as skipped.
    private func register(_ taken: Taken) async throws -> FileReport {
        var row = taken.row
        let recording = Recording(key: taken.key, path: taken.path, metadata: metadata(taken).text)
        if internalByName(taken.name) {
            row.verdict = Verdict.skipped
            row.reason = SkipReason.internalCall.rawValue
            let message = "\(taken.shown): \(Self.internalMessage)"
            try await store.commit([
                .registerRecording(recording),
                .setRecordingState(key: taken.key, state: .skipped, errorCode: SkipReason.internalCall.rawValue, errorMessage: message),
                .putSourceFile(row),
                .audit(AuditEntry(recordingKey: taken.key, action: "skipped", detail: "\(SkipReason.internalCall.rawValue): \(taken.shown)", actor: "intake")),
            ])
            return report(taken, .skipped, [], error: .init(code: SkipReason.internalCall.rawValue, message: message))
        }
        try await store.commit([
            .registerRecording(recording),
            .putSourceFile(row),
            .enqueue(try TranscodeJobHandler.job(key: taken.key, bytes: taken.size)),
        ])
        return report(taken, .ok, [])
    }

    /// A file of a call the ledger knows.
    private func met(_ taken: Taken, known: Recording) async throws -> FileReport {
        let shown = taken.shown, key = taken.key
        var row = taken.row
        let previous = try await store.sourceFile(path: taken.path)
        let other = display(known.path)
        let otherGone = known.path != taken.path && !FileManager.default.fileExists(atPath: known.path)
        let sameStem = Scanner.stem(of: (known.path as NSString).lastPathComponent) == Scanner.stem(of: (taken.path as NSString).lastPathComponent)
        let otherRoot = !known.path.hasPrefix(root + "/")
        switch known.state {
        case .pending, .transcoded, .failed:
            if known.path == taken.path {
                // The same file again (touched, or rewritten before its transcode: the new bytes count).
                try await store.commit([.require(key: key, states: [known.state]), .putSourceFile(row)])
                let code: AudioWarning.Code = known.state == .failed ? .alreadyKnown : .resumed
                return report(taken, .skipped, [AudioWarning(code, "\(shown): known already (\(known.state.rawValue))")])
            }
            if otherGone, known.state != .failed {
                // WAV→MP3 before the upload (the PBX's script removed the WAV): the call goes on
                // with this file; a transcode still to come reads it.
                var metadata = SourceMetadata.parse(known.metadata) ?? self.metadata(taken)
                metadata.source.relativePath = taken.relative
                metadata.source.root = root
                try await store.commit([
                    .require(key: key, states: [known.state]),
                    .setRecordingPath(key: key, path: taken.path),
                    .setRecordingMetadata(key: key, metadata: metadata.text),
                    .putSourceFile(row),
                    .audit(AuditEntry(recordingKey: key, action: "converted", detail: "\(other) → \(shown)", actor: "intake")),
                ])
                return report(taken, .ok, [AudioWarning(Self.converted, "\(shown): replaces \(other), which is gone (converted), for the same call")])
            }
            row.verdict = Verdict.sameCall
            try await store.commit([.putSourceFile(row)])
            return report(taken, .skipped, [AudioWarning(Self.sameCall, "\(shown): the same call (\(taken.name.callID)) as \(other) (\(known.state.rawValue)); one call, one call log")])
        case .skipped:
            if known.path == taken.path || otherGone, let review = try await reviewed(taken, known: known) { return review }
            try await store.commit([.putSourceFile(withVerdict(row, Verdict.skipped, reason: known.errorCode))])
            return report(taken, .skipped, [], error: .init(code: known.errorCode ?? "skipped", message: known.errorMessage ?? "\(shown): not logged"))
        case .uploaded, .deleting, .deleted:
            let warning: AudioWarning
            if known.path == taken.path {
                if previous?.audioSHA256 == nil || previous?.audioSHA256 == taken.sha256 {
                    // Touched: the same bytes. Nothing to say beyond "done before".
                    try await store.commit([.putSourceFile(withVerdict(row, previous?.verdict ?? Verdict.registered, reason: previous?.reason))])
                    return report(taken, .skipped, [AudioWarning(.alreadyKnown, "\(shown): uploaded already (\(known.state.rawValue))")])
                }
                warning = AudioWarning(Self.changedAfterUpload, "\(shown): its bytes changed after its call was uploaded (\(EnqueueBatch.format(known.updatedAt))); the call log keeps what was sent, nothing is sent again")
                row.verdict = Verdict.changedAfterUpload
            } else if otherRoot {
                warning = AudioWarning(Self.sameCall, "\(shown): the same call (\(taken.name.callID)) as \(known.path), under another root, uploaded already; not sent again")
                row.verdict = Verdict.sameCall
            } else if otherGone, sameStem {
                warning = AudioWarning(Self.converted, "\(shown): replaces \(other), which is gone (converted after the upload); its call was uploaded already")
                row.verdict = Verdict.converted
            } else {
                warning = AudioWarning(Self.changedAfterUpload, "\(shown): another file of the call \(taken.name.callID), which was uploaded as \(other); nothing is sent again")
                row.verdict = Verdict.changedAfterUpload
            }
            try await store.commit([.putSourceFile(row)])
            return report(taken, .skipped, [warning, AudioWarning(.alreadyKnown, "\(shown): uploaded already as \(other)")])
        }
    }

    private func withVerdict(_ row: SourceFile, _ verdict: String, reason: String?) -> SourceFile {
        var row = row
        row.verdict = verdict
        row.reason = reason
        return row
    }

    /// A call skipped by policy, met again after the policy changed (`--log` edited): resolved
    /// again from the start (its transcode job decides with the new policy).
    private func reviewed(_ taken: Taken, known: Recording) async throws -> FileReport? {
        guard var metadata = SourceMetadata.parse(known.metadata), metadata.source.settings.settings.policyDigest != settings.policyDigest else { return nil }
        metadata.source.settings = SourceSettingsSnapshot(settings)
        metadata.source.relativePath = taken.relative
        metadata.callLog = nil
        metadata.facts = nil
        metadata.warnings = []
        var row = taken.row
        if internalByName(taken.name) {
            row.verdict = Verdict.skipped
            row.reason = SkipReason.internalCall.rawValue
            try await store.commit([.require(key: taken.key, states: [.skipped]), .setRecordingMetadata(key: taken.key, metadata: metadata.text), .putSourceFile(row)])
            return nil
        }
        try await store.commit([
            .require(key: taken.key, states: [.skipped]),
            .setRecordingPath(key: taken.key, path: taken.path),
            .setRecordingMetadata(key: taken.key, metadata: metadata.text),
            .setRecordingState(key: taken.key, state: .pending),
            .putSourceFile(row),
            .audit(AuditEntry(recordingKey: taken.key, action: "rearmed", detail: "the policy changed (\(settings.policyDigest)) since it was skipped (\(known.errorCode ?? "skipped"))", actor: "intake")),
            .enqueue(try TranscodeJobHandler.job(key: taken.key, bytes: taken.size)),
        ])
        return report(taken, .ok, [AudioWarning(.resumed, "\(taken.shown): skipped before (\(known.errorCode ?? "skipped")); the policy changed, so it is looked at again")])
    }

    /// The line of a file the ledger knows unchanged (one-shot `upload` lists every file).
    private func knownReport(_ row: SourceFile) async throws -> FileReport {
        let shown = display(row.path)
        func line(_ status: FileReport.Status, _ warnings: [AudioWarning], error: FileReport.ErrorReport? = nil) -> FileReport {
            FileReport(path: shown, key: row.recordingKey, status: status, error: error, warnings: warnings, input: nil, stats: nil, parts: [])
        }
        guard let key = row.recordingKey, let recording = try await store.recording(key: key) else {
            let code = row.reason ?? row.verdict
            return line(.skipped, [], error: .init(code: code, message: code == SkipReason.unrecognisedName.rawValue
                    ? "\(shown): the name fits no \(settings.kind.rawValue) recording layout; not a call callrec can log" : "\(shown): \(code)"))
        }
        switch row.verdict {
        case Verdict.sameCall:
            return line(.skipped, [AudioWarning(Self.sameCall, "\(shown): the same call as \(display(recording.path)); one call, one call log")])
        case Verdict.changedAfterUpload:
            return line(.skipped, [AudioWarning(Self.changedAfterUpload, "\(shown): changed after its call was uploaded; nothing is sent again"),
                                   AudioWarning(.alreadyKnown, "\(shown): uploaded already")])
        default:
            break
        }
        switch recording.state {
        case .pending, .transcoded:
            return line(.skipped, [AudioWarning(.resumed, "\(shown): known already (\(recording.state.rawValue))")])
        case .skipped:
            return line(.skipped, [], error: .init(code: recording.errorCode ?? "skipped", message: recording.errorMessage ?? "\(shown): not logged"))
        case .deleting, .deleted:
            return line(.skipped, [AudioWarning(.deleted, "\(shown): deleted; not uploaded again")])
        case .uploaded, .failed:
            return line(.skipped, [AudioWarning(.alreadyKnown, "\(shown): known already (\(recording.state.rawValue))")])
        }
    }

    /// A file whose call was registered from another file: an info when the other is gone (a
    /// WAV converted to MP3).
    public static let converted = AudioWarning.Code(rawValue: "converted")
    /// New bytes (or another file) for a call that was uploaded: reported, never sent again.
    public static let changedAfterUpload = AudioWarning.Code(rawValue: "changed_after_upload")
    /// The same call under another root, or a second file of it beside the first.
    public static let sameCall = AudioWarning.Code(rawValue: "same_call")

    /// The verdicts a source file's row records.
    enum Verdict {
        static let registered = "registered"
        static let skipped = "skipped"
        static let converted = "converted"
        static let sameCall = "same_call"
        static let changedAfterUpload = "changed_after_upload"
        static let deleted = "deleted"
    }
}

/// A source file's stamp from `lstat`: device, inode, size, mtime and ctime (nanoseconds).
struct SourceStamp: Equatable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modifiedNanos: Int64
    var changedNanos: Int64

    init(_ st: stat) {
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        size = Int64(st.st_size)
        modifiedNanos = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        changedNanos = Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec)
    }

    func matches(_ row: SourceFile) -> Bool {
        row.device == device && row.inode == inode && row.size == size && row.modifiedNanos == modifiedNanos && row.changedNanos == changedNanos
    }

    func row(path: String, pbx: String, verdict: String, policyDigest: String, seenAt: Date) -> SourceFile {
        SourceFile(path: path, directory: Paths.directory(of: path), pbx: pbx, device: device, inode: inode, size: size,
                   modifiedNanos: modifiedNanos, changedNanos: changedNanos, verdict: verdict, policyDigest: policyDigest, seenAt: seenAt)
    }
}

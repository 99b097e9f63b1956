import CallAPI
public import CallAudio
import CallSupport
import Foundation
public import Logging

// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// What `callrec transcode` runs: every recording under a directory validated, transcoded and
/// chunked into an output tree that mirrors it.
public struct TranscodeBatch: Sendable {
    public struct Options: Sendable {
        public var settings = TranscodeSettings()
        public var validation = ValidationConfiguration()
        /// CPU concurrency: files, and the parts of one long file, run side by side.
        public var jobs = ProcessInfo.processInfo.activeProcessorCount
        /// A missing sidecar fails the recording (upload, enqueue) instead of warning (transcode).
        public var requireSidecar = false
        /// Redo recordings whose outputs are already complete.
        public var force = false
        /// When a file counts as written to its end; one still being written waits for a later run.
        public var settle = Settle()
        public init() {}
    }

    /// Progress, as it happens (for the progress bar and the periodic log line).
    public enum Event: Sendable {
        case started(files: Int)
        case finished(FileReport, audioSeconds: Double)
    }

    public let root: String
    public let output: String
    public let options: Options
    public let logger: Logger

    public init(root: String, output: String, options: Options, logger: Logger) {
        self.root = root
        self.output = output
        self.options = options
        self.logger = logger
    }

    /// Runs the batch. One bad file costs that file only; the report lists every file.
    ///
    /// Throws ``OverlappingTrees`` before anything is written when the output tree and the input
    /// tree overlap (the same directory, one inside the other): outputs would land among the
    /// recordings, replace some of them, and be taken for recordings by a later run.
    public func run(events: @escaping @Sendable (Event) -> Void = { _ in }) async throws -> BatchReport {
        try options.settings.validate()
        try Self.checkSeparate(input: root, output: output)
        let clock = ContinuousClock(), started = clock.now
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let scan = try Scanner.scan(root: root, excluding: [output])
        for orphan in scan.orphanSidecars {
            logger.warning("sidecar without a recording", metadata: ["path": "\(orphan)"])
        }
        events(.started(files: scan.files.count))

        // What is settled before any audio is read: refused files, shared stems, files still
        // being written, sidecars; then the same bytes under several names.
        var results = [FileReport?](repeating: nil, count: scan.files.count)
        var sidecars: [Int: SidecarRead] = [:]
        for (index, file) in scan.files.enumerated() {
            if let early = Preflight.check(file, settle: options.settle) { results[index] = early } else { sidecars[index] = SidecarRead.read(file) }
        }
        let pool = CPUPool(threads: options.jobs)
        defer { pool.shutdown() }
        let members = sidecars.compactMap { index, read -> DuplicateAudio.Member? in
            switch read {
            case .broken: nil  // fails on its own
            case .missing where options.requireSidecar: nil
            case .missing, .valid: DuplicateAudio.Member(index: index, file: scan.files[index], sidecar: read.sidecar)
            }
        }
        for (index, report) in try await DuplicateAudio.resolve(members, settle: options.settle, pool: pool).reports {
            results[index] = report
            sidecars[index] = nil
        }
        for report in results.compactMap({ $0 }) { events(.finished(report, audioSeconds: 0)) }

        // Every recording's single-part name is claimed up front; a split recording claims its
        // part names later and fails rather than overwrite another recording's output
        // (`a.wav` split into `a-part01.mp3` beside a recording `a-part01.wav`).
        var initialClaims: [String: String] = [:]
        for index in sidecars.keys {
            let file = scan.files[index]
            initialClaims[Scanner.stem(of: file.relativePath) + ".mp3"] = file.relativePath
        }
        let claims = OutputClaims(initialClaims)
        let reports = await withTaskGroup(of: (Int, FileReport).self) { group in
            var next = 0
            // Biggest files first (size stands in for duration), so a long call does not start
            // last and leave the other cores idle at the end; the report keeps the scan's order.
            let order = sidecars.keys.sorted { (scan.files[$0].size, $1) > (scan.files[$1].size, $0) }
            // Keep a few files more than the CPU slots in flight, so the pool never idles while a
            // file is between stages, and memory stays bounded.
            let window = options.jobs * 2
            func add(_ position: Int) {
                let index = order[position]
                let file = scan.files[index]
                let sidecar = sidecars[index] ?? .missing
                group.addTask {
                    let report = await self.process(file, sidecar: sidecar, pool: pool, claims: claims)
                    return (index, report)
                }
            }
            while next < min(window, order.count) { add(next); next += 1 }
            while let (index, report) = await group.next() {
                results[index] = report
                events(.finished(report, audioSeconds: report.parts.reduce(0) { $0 + $1.seconds }))
                if next < order.count { add(next); next += 1 }
            }
            return results.compactMap { $0 }
        }

        let summary = BatchReport.Summary(files: reports, wallSeconds: (clock.now - started).seconds)
        return BatchReport(files: reports, summary: summary)
    }

    // MARK: - One recording

    private func process(_ file: ScannedFile, sidecar read: SidecarRead, pool: CPUPool, claims: OutputClaims) async -> FileReport {
        let shown = file.relativePath
        let stem = Scanner.stem(of: shown)
        let manifestPath = Manifest.path(output: output, stem: stem)
        let fingerprint = Manifest.settingsFingerprint(options)
        if !options.force, let done = Manifest.load(manifestPath), done.matches(file, settings: fingerprint, output: output) {
            return done.report(path: shown, output: output)
        }

        var warnings: [AudioWarning] = []
        var sidecarFailure: String?
        switch read {
        case .valid: break
        case .broken(let message): sidecarFailure = message
        case .missing where options.requireSidecar:
            sidecarFailure = "\(shown): no sidecar \(stem).json with the call log's metadata"
        case .missing:
            warnings.append(AudioWarning(.missingSidecar, "\(shown): no sidecar \(stem).json; an upload would refuse this recording"))
        }
        let sidecar = read.sidecar
        let before = FileStamp(path: file.absolutePath)

        // callrec writes over no file it did not create: an output name already taken by a file
        // that no manifest of callrec's lists is left alone, and the recording fails.
        let previous = Manifest.load(manifestPath)
        if let foreign = Self.foreignFile(names: [stem + ".mp3"], output: output, previous: previous) {
            return .failed(shown, code: "output_exists", Self.foreignMessage(shown, foreign), warnings: warnings)
        }
        let outputDir = Paths.join(output, Paths.directory(of: stem))
        do { try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true) } catch {
            return .failed(shown, code: "output_failed", "\(shown): cannot create \(outputDir): \(error.localizedDescription)", warnings: warnings)
        }
        let output = self.output
        let targets = PartTargets(
            paths: { count in Self.partNames(stem: stem, count: count).map { Paths.join(output, $0) } },
            claim: { paths in
                let names = Self.partNames(stem: stem, count: paths.count)
                if let owner = await claims.claim(names, for: shown) {
                    return ("output_collision", "its parts would overwrite the output of \(owner) (\(names.joined(separator: ", "))); rename one of them")
                }
                // (The single-part name was checked before the first pass wrote it.)
                if let foreign = Self.foreignFile(names: names.filter { $0 != stem + ".mp3" }, output: output, previous: previous) {
                    return ("output_exists", Self.foreignMessage(nil, foreign))
                }
                return nil
            })
        let report = await RecordingTranscode.run(
            path: file.absolutePath, shown: shown, key: nil, sidecarFailure: sidecarFailure,
            declaredCallSeconds: sidecar?.declaredCallSeconds, warnings: warnings,
            settings: options.settings, validation: options.validation, pool: pool, targets: targets)
        if before == nil || FileStamp(path: file.absolutePath) != before {
            // Written to while it was read: what was made is not the recording.
            for part in report.parts { try? FileManager.default.removeItem(atPath: part.path) }
            return options.settle.changedWhileRead(shown: shown)
        }
        guard report.status == .ok else { return report }
        let names = Self.partNames(stem: stem, count: report.parts.count)
        let manifest = Manifest(sourceSize: file.size, sourceModified: file.modified, settings: fingerprint, report: report,
                                partNames: names)
        do {
            let others = await claims.names(ownedByOthersThan: shown)
            try manifest.save(manifestPath, removingStaleFrom: Manifest.load(manifestPath), output: output, keeping: others)
        } catch {
            logger.warning("cannot write the manifest; a re-run will redo this recording", metadata: ["path": "\(shown)", "error": "\(error)"])
        }
        return report
    }

    /// The first of `names` that exists in `output` although callrec's manifest for this
    /// recording does not list it: a file callrec did not create.
    static func foreignFile(names: [String], output: String, previous: Manifest?) -> String? {
        let ours = Set(previous?.partNames ?? [])
        for name in names where !ours.contains(name) {
            let path = Paths.join(output, name)
            var st = stat()
            if lstat(path, &st) == 0 { return path }
        }
        return nil
    }

    static func foreignMessage(_ shown: String?, _ foreign: String) -> String {
        (shown.map { "\($0): " } ?? "") + "\(foreign) exists and callrec did not write it; it is left alone (move it away, or choose another --out)"
    }

    /// Refuses an output tree that is the input tree, lies inside it, or contains it.
    public static func checkSeparate(input: String, output: String) throws {
        let input = Paths.resolved(input), output = Paths.resolved(output)
        func inside(_ a: String, _ b: String) -> Bool { a == b || a.hasPrefix(b.hasSuffix("/") ? b : b + "/") }
        if inside(output, input) || inside(input, output) {
            let relation = output == input ? "is the input directory" : inside(output, input) ? "lies inside the input directory \(input)" : "contains the input directory \(input)"
            throw OverlappingTrees(message: "--out \(output) \(relation): the MP3s would be written among the recordings (and could replace them); choose an output directory outside \(input)")
        }
    }

    /// `<stem>.mp3` for one part; `<stem>-part01.mp3`, `-part02`, … for several.
    static func partNames(stem: String, count: Int) -> [String] {
        guard count > 1 else { return [stem + ".mp3"] }
        let width = max(2, String(count).count)
        return (1...count).map { i in
            let n = String(i)
            return "\(stem)-part\(String(repeating: "0", count: width - n.count))\(n).mp3"
        }
    }
}

/// The output tree and the input tree overlap (a usage error: nothing was written).
public struct OverlappingTrees: Error, CustomStringConvertible {
    public let code = "overlapping_trees"
    public let message: String
    public var description: String { message }
}

/// What a finished recording left in the output tree, so a re-run can skip it: stored hidden
/// beside the parts as `.<name>.callrec.json`.
struct Manifest: Codable {
    var sourceSize: Int64
    var sourceModified: Double
    var settings: String
    var key: String
    var warnings: [AudioWarning]
    var input: AudioInfo?
    var parts: [FileReport.Part]
    var partNames: [String]

    init(sourceSize: Int64, sourceModified: Double, settings: String, report: FileReport, partNames: [String]) {
        self.sourceSize = sourceSize
        self.sourceModified = sourceModified
        self.settings = settings
        key = report.key ?? ""
        warnings = report.warnings
        input = report.input
        parts = report.parts
        self.partNames = partNames
    }

    static func path(output: String, stem: String) -> String {
        Paths.join(output, Paths.directory(of: stem), ".\(Paths.name(of: stem)).callrec.json")
    }

    static func settingsFingerprint(_ options: TranscodeBatch.Options) -> String {
        struct Fingerprint: Encodable {
            let version = 1
            let settings: TranscodeSettings
            let validation: ValidationConfiguration
            let requireSidecar: Bool
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data = (try? encoder.encode(Fingerprint(settings: options.settings, validation: options.validation,
                                                    requireSidecar: options.requireSidecar))) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func load(_ path: String) -> Manifest? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Manifest.self, from: data)
    }

    /// Same source (size and modification time), same settings, and every part still there
    /// with its size.
    func matches(_ file: ScannedFile, settings: String, output: String) -> Bool {
        guard sourceSize == file.size, sourceModified == file.modified, self.settings == settings else { return false }
        return zip(parts, partNames).allSatisfy { part, name in
            let path = Paths.join(output, name)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value
            return size == part.bytes
        }
    }

    func report(path: String, output: String) -> FileReport {
        FileReport(path: path, key: key, status: .skipped, error: nil, warnings: warnings, input: input, stats: nil,
                   parts: zip(parts, partNames).map { part, name in
                       var p = part
                       p.path = Paths.join(output, name)
                       return p
                   })
    }

    /// Writes atomically, then removes parts an earlier run made that this one did not.
    func save(_ path: String, removingStaleFrom previous: Manifest?, output: String, keeping others: Set<String>) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
        for stale in Set(previous?.partNames ?? []).subtracting(partNames).subtracting(others) {
            try? FileManager.default.removeItem(atPath: Paths.join(output, stale))
        }
    }
}

/// Which recording owns which output name in this batch.
actor OutputClaims {
    private var owners: [String: String]

    init(_ owners: [String: String]) { self.owners = owners }

    /// Claims `names` for `owner`; returns the other owner of the first name already taken.
    func claim(_ names: [String], for owner: String) -> String? {
        if let taken = names.lazy.compactMap({ self.owners[$0] }).first(where: { $0 != owner }) { return taken }
        for name in names { owners[name] = owner }
        return nil
    }

    func names(ownedByOthersThan owner: String) -> Set<String> {
        Set(owners.filter { $0.value != owner }.keys)
    }
}

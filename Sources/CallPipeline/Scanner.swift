import Foundation

// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// One entry found under the scanned root.
public struct ScannedFile: Sendable, Equatable {
    /// Path relative to the root, with `/` separators.
    public let relativePath: String
    public let absolutePath: String
    /// The sidecar beside it (same stem, `.json`), if there is one.
    public let sidecarPath: String?
    /// Why the entry cannot be processed (a symlink, a path outside the root, …); nil when fine.
    public let refusal: String?
    public let size: Int64
    public let modified: Double
    /// Other recordings in the same folder with the same stem (`x.wav` beside `x.aif`): they
    /// would share one sidecar (`x.json`) and one output name, so every command fails them all
    /// (`shared_stem`, see `Preflight`).
    public var sharesStemWith: [String] = []
}

/// Walks a recording directory (DESIGN §2): recursive, content decides (every file that is not a
/// sidecar is a candidate), symlinks and escapes refused, hidden entries and excluded folders
/// (the output and state directories) skipped.
public enum Scanner {
    public static func scan(root: String, excluding excluded: [String] = []) throws -> (files: [ScannedFile], orphanSidecars: [String]) {
        let fm = FileManager.default
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL.resolvingSymlinksInPath()
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: rootURL.path, isDirectory: &isDir), isDir.boolValue else {
            throw ScanError(path: root, reason: "is not a directory")
        }
        let excludedPaths = Set(excluded.map { URL(fileURLWithPath: $0).standardizedFileURL.resolvingSymlinksInPath().path })
        var files: [ScannedFile] = []
        var sidecars: Set<String> = []
        var used: Set<String> = []

        func walk(_ dir: URL, _ relative: String) throws {
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: dir.path).sorted() } catch {
                files.append(ScannedFile(relativePath: relative.isEmpty ? "." : relative, absolutePath: dir.path, sidecarPath: nil,
                                         refusal: "cannot list the directory: \(error.localizedDescription)", size: 0, modified: 0))
                return
            }
            for name in names where !name.hasPrefix(".") {
                let url = dir.appendingPathComponent(name)
                let rel = relative.isEmpty ? name : "\(relative)/\(name)"
                if excludedPaths.contains(url.path) { continue }
                var st = stat()
                guard lstat(url.path, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFLNK:
                    files.append(ScannedFile(relativePath: rel, absolutePath: url.path, sidecarPath: nil,
                                             refusal: "is a symbolic link; links are not followed (they could leave the directory)", size: 0, modified: 0))
                case S_IFDIR:
                    try walk(url, rel)
                case S_IFREG:
                    let lower = name.lowercased()
                    if lower.hasSuffix(".json") {
                        sidecars.insert(rel)
                    } else if Self.documentExtensions.contains(where: { lower.hasSuffix($0) }) {
                        continue  // CDR exports, notes, scripts: not recordings, not errors
                    } else {
                        let modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
                        files.append(ScannedFile(relativePath: rel, absolutePath: url.path, sidecarPath: nil, refusal: nil,
                                                 size: Int64(st.st_size), modified: modified))
                    }
                default:
                    files.append(ScannedFile(relativePath: rel, absolutePath: url.path, sidecarPath: nil,
                                             refusal: "is not a regular file", size: 0, modified: 0))
                }
            }
        }
        try walk(rootURL, "")

        var byStem: [String: [String]] = [:]
        for file in files where file.refusal == nil { byStem[Self.stem(of: file.relativePath), default: []].append(file.relativePath) }
        let resolved = files.map { file -> ScannedFile in
            guard file.refusal == nil else { return file }
            let stem = Self.stem(of: file.relativePath)
            let sidecar = sidecars.first { Self.isSidecar($0, of: stem) }
            if let sidecar { used.insert(sidecar) }
            return ScannedFile(relativePath: file.relativePath, absolutePath: file.absolutePath,
                               sidecarPath: sidecar.map { rootURL.appendingPathComponent($0).path },
                               refusal: nil, size: file.size, modified: file.modified,
                               sharesStemWith: (byStem[stem] ?? []).filter { $0 != file.relativePath })
        }
        return (resolved, sidecars.subtracting(used).sorted())
    }

    /// Whether `name` (a path) is the sidecar of the recording with this stem: the stem and
    /// `.json` in any case.
    static func isSidecar(_ name: String, of stem: String) -> Bool {
        name.count == stem.count + 5 && name.hasPrefix(stem) && name.lowercased().hasSuffix(".json")
    }

    /// The sidecar beside a recording file, as a scan would pair them; nil when there is none.
    public static func sidecarPath(ofRecording path: String) -> String? {
        let directory = (path as NSString).deletingLastPathComponent
        let stem = Self.stem(of: (path as NSString).lastPathComponent)
        let exact = Paths.join(directory, stem + ".json")
        if FileManager.default.fileExists(atPath: exact) { return exact }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().first { isSidecar($0, of: stem) }.map { Paths.join(directory, $0) }
    }

    /// Files a recording folder commonly holds beside the audio (CDR exports, notes, checksums).
    /// They are not candidates. Everything else is, and its content decides: a text file named
    /// `.wav` is still reported as not audio.
    public static let documentExtensions = [".txt", ".csv", ".tsv", ".md", ".log", ".xml", ".html", ".htm", ".pdf",
                                            ".yaml", ".yml", ".ini", ".sh", ".sha256", ".md5"]

    /// `sub/call-17.wav` → `sub/call-17`.
    public static func stem(of relative: String) -> String {
        let slash = relative.lastIndex(of: "/")
        let nameStart = slash.map { relative.index(after: $0) } ?? relative.startIndex
        if let dot = relative[nameStart...].lastIndex(of: "."), dot != nameStart {
            return String(relative[..<dot])
        }
        return relative
    }
}

public struct ScanError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }

    /// What went wrong without the path, for a message that names the file already.
    static func reason(_ error: any Error) -> String {
        (error as? ScanError)?.reason ?? "\(error)"
    }
}

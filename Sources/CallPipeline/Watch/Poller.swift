import Foundation

#if canImport(Glibc)
import Glibc
#endif
#if canImport(CDispatch)
import CDispatch
#endif

/// Finds new files by looking (`--watch-mode poll`, and network mounts, where no inotify event
/// comes for a change made by another machine). Every poll stats each directory of the tree and
/// lists again only those whose modification time moved (or moved so recently that a second
/// change in the same timestamp tick could hide behind it); new entries, and files still
/// changing, are stat'ed on every poll, and a file is due once its size and modification time
/// have stayed the same for `settle` (measured on the watcher's clock, not from the file's own
/// times). Files present at the ``baseline()`` are left to the startup scan.
struct Poller<Instant: InstantProtocol> where Instant.Duration == Duration {
    struct Stamp: Equatable {
        var size: Int64
        var modified: Int64

        init(_ s: stat) {
            size = Int64(s.st_size)
            modified = Int64(s.st_mtim.tv_sec) * 1_000_000_000 + Int64(s.st_mtim.tv_nsec)
        }
    }

    private struct Directory {
        var modified: Int64
        /// Relist on the next poll even if the time did not move: it moved within the tick of the
        /// last listing.
        var recent: Bool
        var names: Set<String>
    }

    private struct Pending {
        var stamp: Stamp
        var since: Instant
    }

    let root: String
    let settle: Duration
    /// Paths not watched (hidden names, CDR files).
    let ignored: @Sendable (String) -> Bool
    private var directories: [String: Directory] = [:]
    private var pending: [String: Pending] = [:]

    init(root: String, settle: Duration, ignoring ignored: @escaping @Sendable (String) -> Bool) {
        self.root = root
        self.settle = settle
        self.ignored = ignored
    }

    /// Directories known, files still waiting to settle.
    var counts: (directories: Int, pending: Int) { (directories.count, pending.count) }

    /// Lists the whole tree as it is now: what is here is not new.
    mutating func baseline() {
        directories = [:]
        pending = [:]
        _ = list(root, now: nil)
    }

    /// One look. Returns the files that are due (settled), and the directories that appeared.
    mutating func poll(at now: Instant) -> (due: [String], newDirectories: [String]) {
        var newDirectories: [String] = []
        for path in directories.keys.sorted() {
            guard var directory = directories[path] else { continue }  // removed with its parent
            var s = stat()
            guard lstat(path, &s) == 0, s.st_mode & S_IFMT == S_IFDIR else {
                forget(path)
                continue
            }
            let modified = Stamp(s).modified
            guard modified != directory.modified || directory.recent else { continue }
            directory.modified = modified
            directories[path] = directory
            newDirectories += relist(path, now: now)
        }
        var due: [String] = []
        for (path, entry) in pending.sorted(by: { $0.key < $1.key }) {
            var s = stat()
            guard lstat(path, &s) == 0, s.st_mode & S_IFMT == S_IFREG else {
                pending[path] = nil
                continue
            }
            let stamp = Stamp(s)
            if stamp != entry.stamp {
                pending[path] = Pending(stamp: stamp, since: now)
            } else if entry.since.duration(to: now) >= settle {
                pending[path] = nil
                due.append(path)
            }
        }
        return (due, newDirectories)
    }

    /// Lists `path` (a known directory) again: new files wait to settle, new directories are
    /// listed whole. Returns the new directories.
    private mutating func relist(_ path: String, now: Instant) -> [String] {
        guard let names = Self.names(path) else { return [] }
        let before = directories[path]?.names ?? []
        if var directory = directories[path] {
            directory.names = names
            directory.recent = Self.isRecent(directory.modified)
            directories[path] = directory
        }
        var added: [String] = []
        for name in names.subtracting(before).sorted() where !ignored(path + "/" + name) {
            let child = path + "/" + name
            var s = stat()
            guard lstat(child, &s) == 0 else { continue }
            switch s.st_mode & S_IFMT {
            case S_IFDIR: added += list(child, now: now)
            case S_IFREG: pending[child] = Pending(stamp: Stamp(s), since: now)
            default: continue
            }
        }
        for name in before.subtracting(names) { forget(path + "/" + name) }
        return added
    }

    /// Lists a directory and everything under it; with `now`, its files are new (they wait to
    /// settle). Returns the directories listed.
    private mutating func list(_ path: String, now: Instant?) -> [String] {
        var s = stat()
        guard lstat(path, &s) == 0, s.st_mode & S_IFMT == S_IFDIR, let names = Self.names(path) else { return [] }
        let modified = Stamp(s).modified
        directories[path] = Directory(modified: modified, recent: Self.isRecent(modified), names: names)
        var listed = [path]
        for name in names.sorted() where !ignored(path + "/" + name) {
            let child = path + "/" + name
            var c = stat()
            guard lstat(child, &c) == 0 else { continue }
            switch c.st_mode & S_IFMT {
            case S_IFDIR: listed += list(child, now: now)
            case S_IFREG: if let now { pending[child] = Pending(stamp: Stamp(c), since: now) }
            default: continue
            }
        }
        return listed
    }

    private mutating func forget(_ path: String) {
        pending[path] = nil
        guard directories.removeValue(forKey: path) != nil else { return }
        let prefix = path + "/"
        for key in directories.keys where key.hasPrefix(prefix) { directories[key] = nil }
        for key in pending.keys where key.hasPrefix(prefix) { pending[key] = nil }
    }

    private static func names(_ path: String) -> Set<String>? {
        (try? FileManager.default.contentsOfDirectory(atPath: path)).map(Set.init)
    }

    /// A directory time within two seconds of the wall clock: a change in the same tick would not move it.
    private static func isRecent(_ modified: Int64) -> Bool {
        Double(modified) / 1e9 > Date().timeIntervalSince1970 - 2
    }
}

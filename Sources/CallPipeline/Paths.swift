import CallStore
import Foundation

/// Plain `/`-separated path helpers. (Foundation's NSString path methods crash on Linux for
/// some one-component strings, so callrec does not use them.)
enum Paths {
    /// `a/b/c.mp3` → `a/b`; `c.mp3` → ``.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[..<slash])
    }

    /// `a/b/c.mp3` → `c.mp3`.
    static func name(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// Joins with one `/`, ignoring empty parts.
    static func join(_ parts: String...) -> String {
        var out = ""
        for part in parts where !part.isEmpty {
            if out.isEmpty { out = part } else if out.hasSuffix("/") { out += part } else { out += "/" + part }
        }
        return out
    }

    /// The absolute, symlink-free form of `path`, which need not exist: its deepest existing
    /// ancestor is resolved and the rest appended (so `out/new` compares right with `out`).
    static func resolved(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : join(FileManager.default.currentDirectoryPath, path)
        var components = absolute.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var rest: [String] = []
        while !components.isEmpty {
            let candidate = "/" + components.joined(separator: "/")
            if let real = realpath(candidate, nil) {
                defer { free(real) }
                var base = String(cString: real)
                for part in rest.reversed() {
                    if part == "." { continue }
                    if part == ".." { base = directory(of: base); if base.isEmpty { base = "/" }; continue }
                    base = join(base, part)
                }
                return base
            }
            rest.append(components.removeLast())
        }
        return "/" + rest.reversed().joined(separator: "/")
    }
}

/// Whether a file operation failed because the disk (or the user's quota) is full: a POSIX
/// `ENOSPC`/`EDQUOT`, or Foundation's out-of-space error, or one wrapping them.
func isDiskFull(_ error: any Error) -> Bool {
    let error = error as NSError
    if error.domain == NSPOSIXErrorDomain, DiskSpace.isFull(errno: Int32(error.code)) { return true }
    if error.domain == NSCocoaErrorDomain, error.code == CocoaError.fileWriteOutOfSpace.rawValue { return true }
    if let underlying = error.userInfo[NSUnderlyingErrorKey] as? any Error { return isDiskFull(underlying) }
    return false
}

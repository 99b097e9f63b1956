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
}

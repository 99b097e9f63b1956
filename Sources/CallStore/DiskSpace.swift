import Foundation

/// The free space of a file system, for the messages of a full disk (`disk_full`), which name
/// the path that could not be written and how much space is left on its disk.
public enum DiskSpace {
    /// Whether `code` (an `errno`) says the disk or the user's quota is full.
    public static func isFull(errno code: Int32) -> Bool { code == ENOSPC || code == EDQUOT }

    /// Bytes an unprivileged writer may still use, and the size, of the file system holding
    /// `path` (or its nearest existing parent); nil when it cannot be read.
    public static func space(at path: String) -> (available: Int64, total: Int64)? {
        var candidate = path.isEmpty ? "." : path
        var info = statvfs()
        while statvfs(candidate, &info) != 0 {
            // The parent, by hand (NSString's path methods crash on Linux for some strings).
            guard let slash = candidate.lastIndex(of: "/") else {
                if candidate == "." { return nil }
                candidate = "."
                continue
            }
            let parent = slash == candidate.startIndex ? "/" : String(candidate[..<slash])
            guard parent != candidate else { return nil }
            candidate = parent
        }
        let unit = Int64(info.f_frsize == 0 ? info.f_bsize : info.f_frsize)
        return (Int64(info.f_bavail) * unit, Int64(info.f_blocks) * unit)
    }

    /// `12 KiB free of 2.0 MiB`, or `free space unknown`.
    public static func describe(at path: String) -> String {
        guard let space = space(at: path) else { return "free space unknown" }
        return "\(format(space.available)) free of \(format(space.total))"
    }

    /// `the disk holding PATH is full (12 KiB free of 2.0 MiB)`: the start of every `disk_full`
    /// message.
    public static func fullMessage(_ path: String) -> String {
        "the disk holding \(path) is full (\(describe(at: path)))"
    }

    /// Bytes for a person: `512 B`, `12 KiB`, `2.0 MiB`, `1.5 GiB`.
    public static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        return value >= 100 || unit == 1 ? "\(Int(value.rounded())) \(units[unit])" : String(format: "%.1f", value) + " " + units[unit]
    }
}

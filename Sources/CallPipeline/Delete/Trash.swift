import CallSupport
public import Foundation

/// `<state>/trash/`: where a cascade delete moves a recording's spool (`<UTC time>-<key>/`, one
/// rename, nothing deleted), and what `callrec trash purge` empties after a retention period.
public struct Trash: Sendable {
    public let root: String

    public init(root: String) {
        self.root = root
    }

    /// One folder in the trash.
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var path: String
        /// The recording it held the parts of.
        public var key: String
        /// When it was moved here (from its name).
        public var trashedAt: Date
    }

    static func stamp(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.string(from: date)
    }

    static func parseStamp(_ text: Substring) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return formatter.date(from: String(text))
    }

    /// Moves `directory` into the trash as `<time>-<key>` (a rename: the spool and the trash
    /// live under one state directory). Returns the new path, or nil when `directory` does not
    /// exist (never made, or moved by an earlier run whose commit did not land).
    public func move(_ directory: String, key: String, at date: Date = Date()) throws -> String? {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory) else { return nil }
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let base = "\(Self.stamp(date))-\(key)"
        var destination = Paths.join(root, base)
        var n = 1
        while fm.fileExists(atPath: destination) {
            n += 1
            destination = Paths.join(root, "\(base)-\(n)")
        }
        guard rename(directory, destination) == 0 else {
            let code = errno
            throw CocoaError(.fileWriteUnknown, userInfo: [
                NSLocalizedDescriptionKey: "cannot move \(directory) to \(destination): \(String(cString: strerror(code)))",
            ])
        }
        return destination
    }

    /// The trash folders (names that do not parse are not callrec's and are left alone).
    public func entries() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.sorted().compactMap { name in
            let fields = name.split(separator: "-", maxSplits: 2)
            guard fields.count >= 2, let date = Self.parseStamp(fields[0]), fields[1].count == 64,
                  fields[1].allSatisfy({ $0.isHexDigit }) else { return nil }
            return Entry(name: name, path: Paths.join(root, name), key: String(fields[1]), trashedAt: date)
        }
    }

    /// The trash folders of one recording.
    public func entries(key: String) -> [Entry] { entries().filter { $0.key == key } }

    public struct PurgeReport: Sendable, Hashable, Encodable {
        public var removed: [String] = []
        public var bytes: Int64 = 0
        /// Folders old enough but kept, with the reason.
        public var kept: [Kept] = []
        /// Folders younger than the retention.
        public var young = 0

        public struct Kept: Sendable, Hashable, Encodable {
            public var name: String
            public var reason: String
        }
    }

    /// Removes the folders trashed more than `olderThan` ago for which `keep` returns nil (the
    /// CLI keeps the spool of a deletion that has not finished: its provider steps are not done).
    public func purge(olderThan: Duration, now: Date = Date(), keep: (Entry) async -> String?) async -> PurgeReport {
        var report = PurgeReport()
        let cutoff = now.addingTimeInterval(-olderThan.seconds)
        for entry in entries() {
            guard entry.trashedAt < cutoff else {
                report.young += 1
                continue
            }
            if let reason = await keep(entry) {
                report.kept.append(.init(name: entry.name, reason: reason))
                continue
            }
            let bytes = Self.size(entry.path)
            do {
                try FileManager.default.removeItem(atPath: entry.path)
                report.removed.append(entry.name)
                report.bytes += bytes
            } catch {
                report.kept.append(.init(name: entry.name, reason: "cannot remove: \(error.localizedDescription)"))
            }
        }
        return report
    }

    static func size(_ path: String) -> Int64 {
        guard let enumerator = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total: Int64 = 0
        for case let name as String in enumerator {
            let attributes = try? FileManager.default.attributesOfItem(atPath: Paths.join(path, name))
            if attributes?[.type] as? FileAttributeType == .typeRegular {
                total += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
            }
        }
        return total
    }
}

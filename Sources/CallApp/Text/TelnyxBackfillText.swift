import Foundation

extension TelnyxBackfillReport {
    /// One stdout line per recording planned or registered (id, created, session, length), one
    /// stderr line per unreadable item, then the summary. Known recordings are only counted
    /// (`--json` lists them with their state): a backfill over a busy month would print thousands.
    public var lines: [OutputLine] {
        var lines: [OutputLine] = []
        for item in recordings {
            switch item.status {
            case .new, .registered:
                let seconds = item.seconds.map { formatDuration($0) } ?? "?"
                lines.append(.out("\(item.status == .new ? "new       " : "registered") \(item.recordingID) created \(item.createdAt ?? "?") session \(item.callSessionID ?? "?") \(seconds)"))
            case .unreadable:
                lines.append(.err("unreadable \(item.recordingID): \(item.reason ?? "")"))
            case .known:
                continue
            }
        }
        let range = "created \(since) to \(until ?? "now")"
        let counts = "\(recordings.count) listed (\(range), \(pages) page(s)): \(count(.known)) known, \(count(.new) + count(.registered)) new, \(count(.unreadable)) unreadable"
        if apply {
            lines.append(.out("\(counts); \(count(.registered)) registered: a worker fetches and uploads them"))
        } else {
            lines.append(.out("\(counts); plan only — run with --apply to register them (a worker then fetches and uploads them)"))
        }
        return lines
    }
}

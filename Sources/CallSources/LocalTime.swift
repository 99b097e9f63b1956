public import Foundation

/// PBX local wall-clock times to instants, right across daylight-saving changes.
public enum LocalTime {
    /// The instant `local` names in `zone`. In the hour a DST change repeats, the candidate
    /// nearest `anchor` (an instant the source also gives, such as the uniqueid's epoch) wins,
    /// else the earlier with ``SourceWarning/ambiguousLocalTime``; in the hour it skips, the
    /// offset before the change is used, with ``SourceWarning/nonexistentLocalTime``.
    public static func instant(_ local: LocalDateTime, in zone: TimeZone, anchor: Date? = nil) -> (date: Date, warning: SourceWarning?) {
        // Step-0 stub (WP1 replaces it).
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components = DateComponents(year: local.year, month: local.month, day: local.day, hour: local.hour, minute: local.minute, second: local.second)
        return (calendar.date(from: components) ?? Date(timeIntervalSince1970: 0), nil)
    }
}

public import Foundation

/// PBX local wall-clock times to instants, right across daylight-saving changes.
public enum LocalTime {
    /// The instant `local` names in `zone`. In the hour a DST change repeats, the candidate
    /// nearest `anchor` (an instant the source also gives, such as the uniqueid's epoch) wins,
    /// else the earlier with ``SourceWarning/ambiguousLocalTime``; in the hour it skips, the
    /// offset before the change is used, with ``SourceWarning/nonexistentLocalTime``.
    ///
    /// The candidates are the local time less each UTC offset the zone has within a day either
    /// side; a candidate counts when the zone really has that offset at it (it round-trips).
    public static func instant(_ local: LocalDateTime, in zone: TimeZone, anchor: Date? = nil) -> (date: Date, warning: SourceWarning?) {
        let naive = asUTC(local)
        let before = zone.secondsFromGMT(for: Date(timeIntervalSince1970: naive - 86400))
        let after = zone.secondsFromGMT(for: Date(timeIntervalSince1970: naive + 86400))
        let candidates = Set([before, zone.secondsFromGMT(for: Date(timeIntervalSince1970: naive)), after])
            .map { Date(timeIntervalSince1970: naive - Double($0)) }
            .filter { Double(zone.secondsFromGMT(for: $0)) == naive - $0.timeIntervalSince1970 }
            .sorted()
        switch candidates.count {
        case 1:
            return (candidates[0], nil)
        case 0:
            // The skipped hour: a clock still on the offset before the change wrote it.
            let date = Date(timeIntervalSince1970: naive - Double(before))
            return (date, SourceWarning(SourceWarning.nonexistentLocalTime,
                                        "\(local) does not exist in \(zone.identifier) (the clocks skip that hour): read as \(CallLogTime.utc(date))"))
        default:
            if let anchor {
                let nearest = candidates.min { abs($0.timeIntervalSince(anchor)) < abs($1.timeIntervalSince(anchor)) }!
                return (nearest, nil)
            }
            return (candidates[0], SourceWarning(SourceWarning.ambiguousLocalTime,
                                                 "\(local) occurs twice in \(zone.identifier) (the clocks repeat that hour) and nothing tells which: read as the earlier, \(CallLogTime.utc(candidates[0]))"))
        }
    }

    /// The wall-clock time `date` shows in `zone`.
    public static func local(_ date: Date, in zone: TimeZone) -> LocalDateTime {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return LocalDateTime(year: c.year ?? 0, month: c.month ?? 0, day: c.day ?? 0, hour: c.hour ?? 0, minute: c.minute ?? 0, second: c.second ?? 0)
    }

    /// Seconds since 1970 of `local` read as if it were UTC (days from the civil calendar).
    static func asUTC(_ local: LocalDateTime) -> Double {
        // Howard Hinnant's days_from_civil.
        let y = local.month <= 2 ? local.year - 1 : local.year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (local.month + 9) % 12
        let doy = (153 * mp + 2) / 5 + local.day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86400 + local.hour * 3600 + local.minute * 60 + local.second)
    }
}

/// Times as call logs and messages show them.
enum CallLogTime {
    /// `2026-03-08 07:30:00 UTC`.
    static func utc(_ date: Date) -> String { LocalTime.local(date, in: TimeZone(identifier: "UTC")!).description + " UTC" }
}

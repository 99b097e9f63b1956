import CallSources
import Foundation
import Testing

/// PBX local times to UTC on the 2026 DST days of New York and Berlin: the hour the clocks skip
/// and the hour they repeat, with and without an anchor.
@Suite struct LocalTimeTests {
    let newYork = TimeZone(identifier: "America/New_York")!
    let berlin = TimeZone(identifier: "Europe/Berlin")!

    func utc(_ text: String) -> Date { utcDate(text) }

    func local(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int) -> LocalDateTime {
        LocalDateTime(year: y, month: mo, day: d, hour: h, minute: mi)
    }

    @Test func anOrdinaryTimeHasOneInstant() {
        let summer = LocalTime.instant(local(2026, 7, 1, 12, 0), in: newYork)
        #expect(summer.date == utc("2026-07-01 16:00:00") && summer.warning == nil)
        let winter = LocalTime.instant(local(2026, 1, 15, 9, 30), in: berlin)
        #expect(winter.date == utc("2026-01-15 08:30:00") && winter.warning == nil)
        // Across a year boundary.
        let tokyo = LocalTime.instant(local(2026, 1, 1, 0, 0), in: TimeZone(identifier: "Asia/Tokyo")!)
        #expect(tokyo.date == utc("2025-12-31 15:00:00") && tokyo.warning == nil)
        // Either side of New York's gap.
        #expect(LocalTime.instant(local(2026, 3, 8, 1, 59), in: newYork).date == utc("2026-03-08 06:59:00"))
        #expect(LocalTime.instant(local(2026, 3, 8, 3, 0), in: newYork).date == utc("2026-03-08 07:00:00"))
    }

    @Test func theSkippedHourIsReadWithTheOffsetBeforeTheChange() {
        for anchor in [nil, utc("2026-03-08 07:31:00")] {
            let ny = LocalTime.instant(local(2026, 3, 8, 2, 30), in: newYork, anchor: anchor)
            #expect(ny.date == utc("2026-03-08 07:30:00"))
            #expect(ny.warning?.code == SourceWarning.nonexistentLocalTime)
            let de = LocalTime.instant(local(2026, 3, 29, 2, 30), in: berlin, anchor: anchor)
            #expect(de.date == utc("2026-03-29 01:30:00"))
            #expect(de.warning?.code == SourceWarning.nonexistentLocalTime)
        }
    }

    @Test func theRepeatedHourIsTheEarlierWithAWarningUnlessAnAnchorTells() {
        let ny = LocalTime.instant(local(2026, 11, 1, 1, 30), in: newYork)
        #expect(ny.date == utc("2026-11-01 05:30:00"))  // 01:30 EDT
        #expect(ny.warning?.code == SourceWarning.ambiguousLocalTime)
        #expect(ny.warning?.message.contains("America/New_York") == true)
        let second = LocalTime.instant(local(2026, 11, 1, 1, 30), in: newYork, anchor: utc("2026-11-01 06:30:04"))
        #expect(second.date == utc("2026-11-01 06:30:00") && second.warning == nil)  // 01:30 EST
        let first = LocalTime.instant(local(2026, 11, 1, 1, 30), in: newYork, anchor: utc("2026-11-01 05:29:58"))
        #expect(first.date == utc("2026-11-01 05:30:00") && first.warning == nil)

        let de = LocalTime.instant(local(2026, 10, 25, 2, 30), in: berlin)
        #expect(de.date == utc("2026-10-25 00:30:00"))  // 02:30 CEST
        #expect(de.warning?.code == SourceWarning.ambiguousLocalTime)
        let deLater = LocalTime.instant(local(2026, 10, 25, 2, 30), in: berlin, anchor: utc("2026-10-25 01:30:00"))
        #expect(deLater.date == utc("2026-10-25 01:30:00") && deLater.warning == nil)  // 02:30 CET
        // Just after the repeated hour: one instant.
        #expect(LocalTime.instant(local(2026, 10, 25, 3, 0), in: berlin).warning == nil)
    }

    @Test func localIsTheInverse() {
        let date = utc("2026-11-01 06:30:00")
        #expect(LocalTime.local(date, in: newYork) == local(2026, 11, 1, 1, 30))
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
func utcDate(_ text: String) -> Date {
    let c = text.split { $0 == "-" || $0 == " " || $0 == ":" }.map { Int($0)! }
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    return calendar.date(from: DateComponents(year: c[0], month: c[1], day: c[2], hour: c[3], minute: c[4], second: c[5]))!
}

import CallSupport

/// File-name layouts of the PBXs: a path under a source's root to what it says about its call.
public enum Layouts {
    /// The facts of `relativePath` (relative to the source's root), or nil when the name fits no
    /// layout of `kind` (the report then says `unrecognised_name`). A file whose extension is not
    /// one a PBX records to (`.json`, `.csv`, `.txt`, …) fits no layout, and neither does a hidden
    /// file (`.in-….wav`: a copy in progress).
    public static func parse(relativePath: String, kind: SourceKind) -> NameFacts? {
        let components = relativePath.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard let file = components.last, !file.hasPrefix("."), let dot = file.lastIndex(of: "."),
              audioExtensions.contains(file[file.index(after: dot)...].lowercased())
        else { return nil }
        let stem = String(file[..<dot])
        let folders = Array(components.dropLast())
        switch kind {
        case .sidecar: return nil
        case .freepbx: return FreePBXName.parse(stem: stem)
        case .threeCX: return ThreeCXName.parse(stem: stem, folders: folders)
        case .fusionpbx: return FusionPBXName.parse(stem: stem, folders: folders)
        }
    }

    /// What PBXs record to (MixMonitor's formats, `.WAV` of wav49 included, and what a post
    /// script converts to), lower case.
    public static let audioExtensions: Set<String> = [
        "wav", "mp3", "gsm", "ogg", "oga", "opus", "flac", "m4a", "aac", "au", "ulaw", "alaw", "ul", "al", "g722", "g729",
        "sln", "sln16", "sln48", "wav16",
    ]
}

/// Fixed-width decimal fields of names (`20260304`, `101530`).
extension Substring {
    /// The value of exactly `count` ASCII digits, else nil.
    func digits(_ count: Int) -> Int? {
        guard self.count == count, allSatisfy(\.isASCIIDigit) else { return nil }
        return Int(self)
    }
}

extension LocalDateTime {
    /// `YYYYMMDD` and `HHMMSS`, checked for range.
    init?(date: Substring, time: Substring) {
        guard let year = date.prefix(4).digits(4), let month = date.dropFirst(4).prefix(2).digits(2),
              let day = date.dropFirst(6).digits(2), let hour = time.prefix(2).digits(2),
              let minute = time.dropFirst(2).prefix(2).digits(2), let second = time.dropFirst(4).digits(2)
        else { return nil }
        self.init(checkedYear: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    init?(checkedYear year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        guard (1970...9999).contains(year), (1...12).contains(month), (1...31).contains(day), (0...23).contains(hour),
              (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    /// `YYYY-MM-DD`: the day key of CDR rows without a join key.
    var dayText: String { String(description.prefix(10)) }

    /// Seconds since 1970 as if this wall-clock time were UTC: for comparing two local times and
    /// for bounds (never an instant).
    var naiveSeconds: Int {
        CivilDays.days(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60 + second
    }

    /// The wall-clock time `seconds` later (naively: no zone, so no DST).
    func adding(seconds: Int) -> LocalDateTime {
        let (days, rest) = CivilDays.split(seconds: naiveSeconds + seconds)
        let (year, month, day) = CivilDays.date(days: days)
        return LocalDateTime(year: year, month: month, day: day, hour: rest / 3_600,
                             minute: rest % 3_600 / 60, second: rest % 60)
    }
}

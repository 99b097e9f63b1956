import CallPhone
public import Foundation

/// What to look a recording's CDR rows up by.
public struct CDRKeys: Sendable, Hashable {
    public var uniqueids: [String]
    public var stems: [String]
    /// Local days (`YYYY-MM-DD`) whose rows without a join key may be this call's.
    public var days: [String]

    public init(uniqueids: [String], stems: [String], days: [String]) {
        self.uniqueids = uniqueids
        self.stems = stems
        self.days = days
    }
}

/// A recording's call facts from its CDR rows and its file name.
public enum CallAssembly {
    /// How far a Master.csv row without uniqueid may start from the name's time and still be its call.
    static let fuzzSeconds = 5

    /// The keys a recording's rows are found by (then widened to their `linkedid` groups): its
    /// call id as uniqueid, its stem as recording file, and the local day of its start (the day
    /// before or after too, within seconds of midnight) for rows without a join key.
    public static func keys(for name: NameFacts) -> CDRKeys {
        var days: [String] = []
        if let local = name.localStart, name.hasTimeOfDay {
            for day in [local.adding(seconds: -fuzzSeconds).dayText, local.dayText, local.adding(seconds: fuzzSeconds).dayText] where !days.contains(day) {
                days.append(day)
            }
        }
        return CDRKeys(uniqueids: [name.callID], stems: [name.stem], days: days)
    }

    /// The facts from the CDR rows found for the recording (its `linkedid` groups), taken from the
    /// answered leg the recording belongs to; nil when none of `rows` is this recording's call,
    /// or when several calls fit it (``ambiguity(name:rows:)`` says so).
    public static func fromCDR(name: NameFacts, rows: [CDRRow], settings: SourceSettings) -> CallFacts? {
        guard case .found(let group, let own) = CDRMatch(name: name, rows: rows), let leg = LegSelection(group: group, own: own) else {
            return nil
        }
        var facts = FactsBuilder(name: name, settings: settings)
        return facts.fromCDR(leg)
    }

    /// Warning `cdr_ambiguous` when several calls' rows fit the recording (Master.csv without
    /// uniqueid: the same number within seconds), so that none was used; else nil.
    public static func ambiguity(name: NameFacts, rows: [CDRRow]) -> SourceWarning? {
        guard case .ambiguous(let count) = CDRMatch(name: name, rows: rows) else { return nil }
        return SourceWarning(
            SourceWarning.cdrAmbiguous,
            "\(name.stem): \(count) calls in the CDR have its numbers within \(fuzzSeconds) s of its start (a Master.csv without uniqueid); none was used")
    }

    /// The facts from the file name alone (no CDR row came within the wait): warning `cdr_missing`.
    /// `fileModified` and `audioSeconds` stand in for the times a name does not carry.
    ///
    /// A recording is taken as answered (MixMonitor records the bridged call). The start is the
    /// name's local time; a FusionPBX name has its day only, so the start is `fileModified −
    /// audioSeconds` (the recording closes at hangup). Without a `--cdr` (3CX) there is nothing to
    /// miss and no `cdr_missing`.
    public static func fromName(name: NameFacts, settings: SourceSettings, fileModified: Date?, audioSeconds: Double?) -> CallFacts? {
        var facts = FactsBuilder(name: name, settings: settings)
        return facts.fromName(fileModified: fileModified, audioSeconds: audioSeconds)
    }
}

/// The rows of a recording's call: its own rows (named by its stem, else its uniqueid, else a
/// Master.csv row without uniqueid with its numbers and start), widened to their linkedid groups.
enum CDRMatch {
    case none
    case ambiguous(Int)
    case found(group: [CDRRow], own: [CDRRow])

    init(name: NameFacts, rows: [CDRRow]) {
        var own = rows.filter { $0.recordingStem == name.stem }
        if own.isEmpty { own = rows.filter { $0.uniqueid == name.callID } }
        if own.isEmpty {
            let candidates = rows.filter { $0.kind == .asteriskMaster && $0.uniqueid == nil && Self.fits(name, $0) }
            let calls = Set(candidates.map { $0.linkedid ?? $0.rowKey })
            if calls.count > 1 {
                self = .ambiguous(calls.count)
                return
            }
            own = candidates
        }
        guard !own.isEmpty else {
            self = .none
            return
        }
        let keys = Set(own.map(\.rowKey)), linked = Set(own.compactMap(\.linkedid)), uniques = Set(own.compactMap(\.uniqueid))
        var seen: Set<String> = []
        let group = rows.filter { row in
            guard keys.contains(row.rowKey) || row.linkedid.map(linked.contains) == true || row.uniqueid.map(uniques.contains) == true
            else { return false }
            return seen.insert(row.rowKey).inserted
        }
        self = .found(group: group, own: own)
    }

    /// A Master.csv row without uniqueid is the name's call when one of its numbers is one of the
    /// name's (the same digits, or one ending in the other's 7 or more) and it starts within
    /// seconds of the name's time.
    static func fits(_ name: NameFacts, _ row: CDRRow) -> Bool {
        guard let local = name.localStart, name.hasTimeOfDay, case .local(let start) = row.start,
              abs(start.naiveSeconds - local.naiveSeconds) <= CallAssembly.fuzzSeconds
        else { return false }
        let ours = [name.from, name.to].compactMap { $0.map(digits) }.filter { !$0.isEmpty }
        let theirs = [row.source, row.destination, row.callerNumber].compactMap { $0.map(digits) }.filter { !$0.isEmpty }
        return ours.contains { a in theirs.contains { b in sameNumber(a, b) } }
    }

    static func digits(_ text: String) -> String { text.filter(\.isASCIIDigit) }

    static func sameNumber(_ a: String, _ b: String) -> Bool {
        if a == b { return true }
        let (short, long) = a.count < b.count ? (a, b) : (b, a)
        return short.count >= 7 && long.hasSuffix(short)
    }
}

/// The leg of a call's rows whose facts the call log takes (plan §2.3 step 3): the recording's
/// own row if answered; else the group's answered row that talked longest; else the group's
/// latest row, with the group's best disposition.
struct LegSelection {
    var row: CDRRow
    var disposition: String

    /// Best first: what a call that rang several phones (a ring group, a queue) ended as.
    static let rank = ["ANSWERED", "VOICEMAIL", "BUSY", "NO ANSWER", "CANCEL", "FAILED", "CONGESTION"]

    init?(group: [CDRRow], own: [CDRRow]) {
        func longestAnswered(_ rows: [CDRRow]) -> CDRRow? {
            rows.filter { $0.disposition == "ANSWERED" }.max { ($0.billsec ?? 0, $0.rowKey) < ($1.billsec ?? 0, $1.rowKey) }
        }
        if let leg = longestAnswered(own) ?? longestAnswered(group) {
            row = leg
            disposition = leg.lastApplication?.lowercased() == "voicemail" ? "VOICEMAIL" : "ANSWERED"
            return
        }
        guard let latest = group.max(by: { ($0.start?.sortSeconds ?? 0, $0.rowKey) < ($1.start?.sortSeconds ?? 0, $1.rowKey) }) else {
            return nil
        }
        row = latest
        let ranked = { (d: String) in Self.rank.firstIndex(of: d) ?? Self.rank.count }
        disposition = group.map(\.disposition).min { ranked($0) < ranked($1) } ?? latest.disposition
        if disposition.isEmpty { disposition = "FAILED" }
    }
}

extension CDRTime {
    /// For ordering rows of one file (local times compared as written).
    var sortSeconds: Double {
        switch self {
        case .local(let local): Double(local.naiveSeconds)
        case .instant(let date): date.timeIntervalSince1970
        }
    }
}

extension CDRRow {
    /// The local day (`YYYY-MM-DD`) a row without a join key (Master.csv without uniqueid) is
    /// found by; nil for rows with a uniqueid or a recording file.
    public var dayKey: String? {
        guard uniqueid == nil, recordingStem == nil, case .local(let local) = start else { return nil }
        return local.dayText
    }
}

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
    /// The keys a recording's rows are found by (then widened to their `linkedid` groups).
    public static func keys(for name: NameFacts) -> CDRKeys {
        CDRKeys(uniqueids: [name.callID], stems: [name.stem], days: [])  // Step-0 stub (WP2 replaces it).
    }

    /// The facts from the CDR rows found for the recording (its `linkedid` groups), taken from the
    /// answered leg the recording belongs to; nil when none of `rows` is this recording's call.
    public static func fromCDR(name: NameFacts, rows: [CDRRow], settings: SourceSettings) -> CallFacts? {
        nil  // Step-0 stub (WP2 replaces it).
    }

    /// The facts from the file name alone (no CDR row came within the wait): warning `cdr_missing`.
    /// `fileModified` and `audioSeconds` stand in for the times a name does not carry.
    public static func fromName(name: NameFacts, settings: SourceSettings, fileModified: Date?, audioSeconds: Double?) -> CallFacts? {
        nil  // Step-0 stub (WP2 replaces it).
    }
}

/// The phone numbers a recording is found by (the console's phone filter, at a million
/// recordings): every run of 7 to 15 ASCII digits in its source path and in its sidecar document,
/// kept reversed (table `recording_number`, migration v7), so that "the numbers ending with these
/// digits" is a range of one index: `+44 20 7946 0123`, `020 7946 0123` and `442079460123` as
/// typed all find a file named after `442079460123` or `02079460123` by their last nine digits.
///
/// Runs are maximal (a 20-digit run is no number, not two), which the PostgreSQL migration's
/// backfill (``backfillPostgresSQL``) reads alike with `regexp_matches(…, '[0-9]+', 'g')`.
public enum RecordingNumbers {
    public static let lengths = 7...15

    /// The reversed digit runs of `path` and `metadata`.
    public static func reversed(path: String, metadata: String?) -> Set<String> {
        var found: Set<String> = []
        for text in [path, metadata ?? ""] {
            var run: [UInt8] = []
            for byte in text.utf8 {
                if byte >= 0x30 && byte <= 0x39 {
                    run.append(byte)
                    continue
                }
                if lengths.contains(run.count) { found.insert(String(decoding: run.reversed(), as: UTF8.self)) }
                run.removeAll(keepingCapacity: true)
            }
            if lengths.contains(run.count) { found.insert(String(decoding: run.reversed(), as: UTF8.self)) }
        }
        return found
    }

    /// What finds the numbers that end with `digits` (ASCII digits): the reversed numbers that
    /// start with `prefix` (a range: `>= prefix` and `< prefix + ":"`, the character after "9"),
    /// and those equal to one of `exact` (a shorter number that the digits end with: a local
    /// `5550123` found by `020 7555 0123`).
    public static func lookup(_ digits: String) -> (prefix: String, upper: String, exact: [String]) {
        let reversed = String(digits.reversed())
        let exact = lengths.filter { $0 < reversed.count }.map { String(reversed.prefix($0)) }
        return (reversed, reversed + ":", exact)
    }

    /// The backfill of migration v7 on PostgreSQL: the same runs as ``reversed(path:metadata:)``.
    public static let backfillPostgresSQL = """
        INSERT INTO recording_number (reversed, recording_key)
        SELECT DISTINCT reverse(m[1]), r.key
        FROM recording r, regexp_matches(r.path || ' ' || coalesce(r.metadata, ''), '[0-9]+', 'g') AS m
        WHERE length(m[1]) BETWEEN \(lengths.lowerBound) AND \(lengths.upperBound)
        """
}

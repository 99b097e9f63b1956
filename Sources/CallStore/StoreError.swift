/// A store operation that did not succeed, with a machine-readable code.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A ``LedgerOp/require(key:states:)`` guard failed: the whole commit was rolled back.
        public static let conflict = Code(rawValue: "store_conflict")
        /// The thing named does not exist.
        public static let notFound = Code(rawValue: "store_not_found")
        /// The request itself is wrong (job arguments over 64 KiB, bad priority, empty queue name).
        public static let invalid = Code(rawValue: "store_invalid")
        /// The database could not be opened, reached or migrated.
        public static let unavailable = Code(rawValue: "store_unavailable")
        /// The database URL or state directory is unusable.
        public static let configuration = Code(rawValue: "store_configuration")
        /// The database file is not a usable database: empty, not SQLite, cut short or damaged.
        /// Nothing was written to it; the message names it.
        public static let corrupt = Code(rawValue: "store_corrupt")
        /// The database file is another program's SQLite database, not callrec's. Nothing was
        /// written to it; the message names it and some of its tables.
        public static let foreign = Code(rawValue: "store_foreign")
        /// The schema on disk is newer than this build understands.
        public static let schemaTooNew = Code(rawValue: "store_schema_too_new")
        /// The disk holding the database is full: nothing was written, and nothing is lost; the
        /// same call succeeds once there is space again. The message names the path and the free
        /// space.
        public static let diskFull = Code(rawValue: "disk_full")
        public var description: String { rawValue }
    }

    public let code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

public import Foundation

/// The rows read from a CDR file from some offset, and where the next read starts.
public struct CDRChunk: Sendable, Hashable {
    public var kind: CDRKind
    /// The header row's columns, for kinds with one.
    public var header: [String]?
    public var rows: [CDRRow]
    /// After the last complete line read: a line still being written is left for the next read.
    public var nextOffset: Int64
    /// Rows that could not be read (each names the file, line and reason); the others are kept.
    public var problems: [CDRError]

    public init(kind: CDRKind, header: [String]?, rows: [CDRRow], nextOffset: Int64, problems: [CDRError] = []) {
        self.kind = kind
        self.header = header
        self.rows = rows
        self.nextOffset = nextOffset
        self.problems = problems
    }
}

/// A CDR file or row that cannot be read: the file, the line, the reason.
public struct CDRError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var file: String
    public var line: Int?
    public var reason: String

    public init(code: String, file: String, line: Int? = nil, reason: String) {
        self.code = code
        self.file = file
        self.line = line
        self.reason = reason
    }

    public var description: String { line.map { "\(file):\($0): \(reason)" } ?? "\(file): \(reason)" }

    /// The file's columns fit no known CDR kind (the message names what was expected).
    public static let unknownKind = "cdr_unknown_kind"
    /// One row is malformed (skipped; the rest of the file is read).
    public static let badRow = "cdr_bad_row"
    /// The file cannot be opened or read.
    public static let unreadable = "cdr_unreadable"
}

/// Reads CDR exports: the kind recognised from the columns, rows tailed from an offset.
public enum CDRFile {
    /// Reads the complete lines of `path` from `offset` (0: the start, where the kind is
    /// recognised; later reads pass the `kind` and `header` the first one found).
    public static func read(path: String, from offset: Int64, kind: CDRKind?, header: [String]?) throws(CDRError) -> CDRChunk {
        throw CDRError(code: CDRError.unreadable, file: path, reason: "not implemented yet")  // Step-0 stub (WP2 replaces it).
    }
}

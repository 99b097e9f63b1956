import Foundation

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
    ///
    /// A read stops after about `maxBytes` (at the end of a line): call again from `nextOffset`
    /// until it stops moving. A line still being written is never read; a file with no complete
    /// line yet gives no rows and `nextOffset` 0 (its kind is recognised by a later read). A
    /// malformed row becomes one of the chunk's `problems` (`cdr_bad_row`, naming its byte
    /// offset); a file of no known kind throws `cdr_unknown_kind` naming what each kind expects.
    public static func read(path: String, from offset: Int64, kind: CDRKind?, header: [String]?,
                            maxBytes: Int = 4 << 20) throws(CDRError) -> CDRChunk
    {
        // A short read (a tail of a few new lines) need not allocate the reader's 1 MiB chunk.
        let reader = try CSVReader(path: path, offset: offset, chunkSize: min(1 << 20, max(4 << 10, maxBytes)))
        var kind = offset == 0 ? nil : kind
        var header = kind?.hasHeader == true ? header : nil
        var pending: CSVRecord?
        var consumed = offset
        if offset == 0 {
            guard let first = try reader.next() else { return CDRChunk(kind: .asteriskMaster, header: nil, rows: [], nextOffset: 0) }
            let detected = try CDRColumns.detect(first.fields, path: path)
            kind = detected
            if detected.hasHeader {
                header = CDRColumns.names(first.fields)
                consumed = first.endOffset
            } else {
                pending = first
            }
        } else if kind == nil || (kind!.hasHeader && header == nil) {
            // The kind or header of a file read from the middle: its first line says.
            guard let first = try CSVReader(path: path, chunkSize: 64 << 10).next() else {
                throw CDRError(code: CDRError.unreadable, file: path, reason: "is shorter than the \(offset) bytes already read")
            }
            kind = try CDRColumns.detect(first.fields, path: path)
            header = kind!.hasHeader ? CDRColumns.names(first.fields) : nil
        }
        let columns = CDRColumns(kind: kind!, header: header, path: path)
        var chunk = CDRChunk(kind: kind!, header: header, rows: [], nextOffset: consumed)
        while true {
            let next: CSVRecord?
            if let first = pending { next = first } else { next = try reader.next() }
            guard let record = next else { break }
            pending = nil
            switch columns.row(record) {
            case .success(let row): chunk.rows.append(row)
            case .failure(let problem): chunk.problems.append(problem)
            }
            chunk.nextOffset = record.endOffset
            if chunk.nextOffset - offset >= maxBytes { break }
        }
        return chunk
    }
}

extension CDRKind {
    /// Whether the file starts with a header row naming its columns.
    var hasHeader: Bool { self != .asteriskMaster }
}

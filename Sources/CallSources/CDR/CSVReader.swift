import Foundation

/// One CSV record (RFC 4180) and where it lies in its file.
public struct CSVRecord: Sendable, Hashable {
    public var fields: [String]
    /// The record's bytes as written, without its line end (a key for the row: the same whether
    /// the file ends lines with CRLF or LF).
    public var raw: [UInt8]
    /// Where the record starts in the file.
    public var offset: Int64
    /// After its line end: where the next record starts.
    public var endOffset: Int64
}

/// Reads RFC 4180 records from a file, from any offset, a chunk at a time: quoted fields may hold
/// commas, doubled quotes and line ends; CRLF and LF both end a line; a UTF-8 BOM at the start is
/// skipped; blank lines are skipped. A last line without its line end is never returned: a writer
/// may still be appending it, so it is left for the next read.
public final class CSVReader {
    private let descriptor: Int32
    private let path: String
    /// What one read(2) reads into: sized to what the file held at open (a small CDR or a tail
    /// of a few rows does not pay for a whole chunk), grown up to `chunkSize` while reads fill it.
    private var scratch: [UInt8]
    private let chunkSize: Int
    private var buffer: [UInt8] = []
    /// The file offset of `buffer[0]`.
    private var bufferOffset: Int64
    private var position = 0
    private var atEnd = false

    public init(path: String, offset: Int64 = 0, chunkSize: Int = 1 << 20) throws(CDRError) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw CDRError(code: CDRError.unreadable, file: path, reason: "cannot be opened: \(String(cString: strerror(errno)))")
        }
        let size = Int64(lseek(descriptor, 0, SEEK_END))
        guard lseek(descriptor, off_t(max(0, offset)), SEEK_SET) >= 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw CDRError(code: CDRError.unreadable, file: path, reason: "cannot seek to byte \(offset): \(reason)")
        }
        self.descriptor = descriptor
        self.path = path
        self.chunkSize = max(16, chunkSize)
        let remaining = size >= 0 ? max(0, size - max(0, offset)) : Int64(chunkSize)
        // A byte more than the file holds: a read of the whole file leaves room, and grows nothing.
        self.scratch = [UInt8](repeating: 0, count: Int(min(Int64(self.chunkSize), max(16, remaining + 1))))
        self.bufferOffset = max(0, offset)
    }

    deinit { close(descriptor) }

    /// The next complete record, or nil at the end (or before a last line still being written).
    public func next() throws(CDRError) -> CSVRecord? {
        while true {
            if bufferOffset == 0, position == 0, buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF {
                position = 3
            }
            if CSV.recordEnds(in: buffer, from: position), let (fields, contentEnd, end) = CSV.record(in: buffer, from: position) {
                let start = position
                position = end
                let raw = Array(buffer[start..<contentEnd])
                if raw.isEmpty { continue }  // a blank line
                return CSVRecord(fields: fields, raw: raw, offset: bufferOffset + Int64(start), endOffset: bufferOffset + Int64(end))
            }
            if atEnd { return nil }
            try fill()
        }
    }

    private func fill() throws(CDRError) {
        if position > 0 {
            buffer.removeFirst(position)
            bufferOffset += Int64(position)
            position = 0
        }
        let count = scratch.count
        var got: Int
        repeat {
            got = scratch.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, count) }
        } while got < 0 && errno == EINTR
        guard got >= 0 else {
            throw CDRError(code: CDRError.unreadable, file: path, reason: "cannot be read: \(String(cString: strerror(errno)))")
        }
        guard got > 0 else {
            atEnd = true
            return
        }
        buffer.append(contentsOf: scratch[0..<got])
        // A file that grew since it was opened: read it in larger pieces, up to the chunk size.
        if got == count, count < chunkSize { scratch = [UInt8](repeating: 0, count: min(chunkSize, count * 2)) }
    }
}

enum CSV {
    static let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), newline = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r")

    /// Whether a whole record starts at `start` (what ``record(in:from:)`` would find, without
    /// building its fields: a record still arriving is scanned once a read, and cheaply).
    static func recordEnds(in bytes: [UInt8], from start: Int) -> Bool {
        scan(bytes, from: start, building: false) != nil
    }

    /// The record starting at `start`: its fields, where its content ends (before CR LF) and where
    /// the next record starts; nil when the buffer holds no complete record yet.
    static func record(in bytes: [UInt8], from start: Int) -> (fields: [String], contentEnd: Int, end: Int)? {
        scan(bytes, from: start, building: true)
    }

    /// ``record(in:from:)``; without `building`, only where the record ends (no fields).
    private static func scan(_ bytes: [UInt8], from start: Int, building: Bool) -> (fields: [String], contentEnd: Int, end: Int)? {
        var fields: [String] = []
        var field: [UInt8] = []
        var inQuotes = false, atFieldStart = true
        var i = start
        let count = bytes.count
        while i < count {
            let byte = bytes[i]
            if inQuotes {
                if byte == quote {
                    guard i + 1 < count else { return nil }  // a doubled quote or the closing one: wait to see
                    if bytes[i + 1] == quote {
                        if building { field.append(quote) }
                        i += 2
                    } else {
                        inQuotes = false
                        i += 1
                    }
                    continue
                }
                if building { field.append(byte) }
                i += 1
                continue
            }
            switch byte {
            case quote where atFieldStart:
                inQuotes = true
                atFieldStart = false
            case comma:
                if building {
                    fields.append(String(decoding: field, as: UTF8.self))
                    field.removeAll(keepingCapacity: true)
                }
                atFieldStart = true
            case newline:
                if building { fields.append(String(decoding: field, as: UTF8.self)) }
                return (fields, i, i + 1)
            case cr:
                guard i + 1 < count else { return nil }
                if bytes[i + 1] == newline {
                    if building { fields.append(String(decoding: field, as: UTF8.self)) }
                    return (fields, i, i + 2)
                }
                if building { field.append(byte) }
                atFieldStart = false
            default:
                if building { field.append(byte) }
                atFieldStart = false
            }
            i += 1
        }
        return nil
    }
}

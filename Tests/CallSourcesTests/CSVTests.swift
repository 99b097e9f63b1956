import CallSources
import CallTesting
import Foundation
import Testing

/// The RFC 4180 reader: quoted fields, CRLF, a BOM, and a last line still being written.
@Suite struct CSVTests {
    static func records(_ bytes: [UInt8], in directory: String, from offset: Int64 = 0, chunkSize: Int = 1 << 20) throws -> [CSVRecord] {
        let path = directory + "/t.csv"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let reader = try CSVReader(path: path, offset: offset, chunkSize: chunkSize)
        var out: [CSVRecord] = []
        while let record = try reader.next() { out.append(record) }
        return out
    }

    static let tricky = Array("\u{FEFF}a,\"b,c\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",x,\r\n\n\"\",plain\r\nlast,unterminated".utf8)

    @Test func quotedFieldsLineEndsAndBOM() async throws {
        try await withTemporaryDirectory { dir in
            let records = try Self.records(Self.tricky, in: dir)
            #expect(records.map(\.fields) == [["a", "b,c", "say \"hi\""], ["multi\nline", "x", ""], ["", "plain"]])
            // the BOM is not part of the first record; the raw text has no line end
            #expect(records.first?.offset == 3)
            #expect(records.first.map { String(decoding: $0.raw, as: UTF8.self) } == "a,\"b,c\",\"say \"\"hi\"\"\"")
            // the unterminated last line is not returned: the last record ends before it
            let lastEnd = Int64(Self.tricky.count - "last,unterminated".utf8.count)
            #expect(records.last?.endOffset == lastEnd)
        }
    }

    @Test func everyChunkSizeReadsTheSameRecords() async throws {
        try await withTemporaryDirectory { dir in
            let whole = try Self.records(Self.tricky, in: dir)
            for chunkSize in [16, 17, 19, 23, 64] {
                #expect(try Self.records(Self.tricky, in: dir, chunkSize: chunkSize) == whole, "chunk size \(chunkSize)")
            }
        }
    }

    @Test func aLineIsCompleteOnlyAtItsLineEnd() async throws {
        try await withTemporaryDirectory { dir in
            // a closing quote, a CR or an open quoted field at the end of what is written yet: wait
            for partial in ["\"abc\"", "abc\r", "\"abc\ndef", "abc"] {
                #expect(try Self.records(Array(partial.utf8), in: dir).isEmpty, "\(partial.debugDescription)")
            }
            #expect(try Self.records(Array("\"abc\"\n".utf8), in: dir).map(\.fields) == [["abc"]])
            // CRLF and LF give the same raw text (one row key for either)
            let crlf = try Self.records(Array("x,y\r\n".utf8), in: dir), lf = try Self.records(Array("x,y\n".utf8), in: dir)
            #expect(crlf.map(\.raw) == lf.map(\.raw))
        }
    }

    @Test func readingFromAnOffsetContinuesAtTheNextRecord() async throws {
        try await withTemporaryDirectory { dir in
            let whole = try Self.records(Self.tricky, in: dir)
            for (index, record) in whole.enumerated() {
                #expect(try Self.records(Self.tricky, in: dir, from: record.endOffset) == Array(whole[(index + 1)...]))
            }
        }
    }

    /// The reader sizes its read buffer to the file at open: rows a writer appends after that
    /// (a CDR being written while a tailer reads it) are all read, whatever their size.
    @Test func rowsAppendedAfterTheReaderOpenedAreRead() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/growing.csv"
            try Data("a,b\n".utf8).write(to: URL(fileURLWithPath: path))
            let reader = try CSVReader(path: path, chunkSize: 64 << 10)
            #expect(try reader.next()?.fields == ["a", "b"])
            let rows = (0..<5000).map { "row\($0),\(String(repeating: "x", count: $0 % 97))\n" }
            let handle = try #require(FileHandle(forWritingAtPath: path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(rows.joined().utf8))
            try handle.close()
            var read: [String] = []
            while let record = try reader.next() { read.append(record.fields[0]) }
            #expect(read == (0..<5000).map { "row\($0)" })
        }
    }
}

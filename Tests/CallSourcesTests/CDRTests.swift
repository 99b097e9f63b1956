import CallSources
import CallTesting
import Foundation
import Testing

/// The CDR readers on the fixture exports under testdata/pbx: the kind from the columns, the rows
/// in callrec's vocabulary, bad rows, tailing from an offset.
@Suite struct CDRTests {
    static let root = repositoryRoot() + "/testdata/pbx"

    static func read(_ file: String) throws -> CDRChunk {
        try CDRFile.read(path: root + "/" + file, from: 0, kind: nil, header: nil)
    }

    static func local(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> CDRTime {
        .local(LocalDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s))
    }

    @Test func masterCSVInEveryColumnLayout() throws {
        // 16: no uniqueid; 17: uniqueid or userfield, told apart by the value; 19: newcdrcolumns; 21: all
        let cases: [(file: String, count: Int, uniqueid: String?, linkedid: String?, userfield: Bool)] = [
            ("freepbx/cdr/Master-16.csv", 4, nil, nil, false),
            ("freepbx/cdr/Master-17u.csv", 4, "1772637330.12", nil, false),
            ("freepbx/cdr/Master-17f.csv", 2, nil, nil, true),
            ("freepbx/cdr/Master-19.csv", 6, nil, "1772637330.12", false),
            ("freepbx/cdr/Master-21.csv", 13, "1772637330.12", "1772637330.12", true),
        ]
        for c in cases {
            let chunk = try Self.read(c.file)
            #expect(chunk.kind == .asteriskMaster && chunk.header == nil && chunk.problems.isEmpty, "\(c.file)")
            #expect(chunk.rows.count == c.count, "\(c.file)")
            let first = try #require(chunk.rows.first)
            #expect(first.uniqueid == c.uniqueid && first.linkedid == c.linkedid, "\(c.file)")
            #expect((first.fields["userfield"] != nil) == c.userfield, "\(c.file)")
            // the same call in every layout
            #expect(first.source == "6175550199" && first.destination == "2125550100", "\(c.file)")
            #expect(first.callerName == "Doe, John" && first.callerNumber == "6175550199", "\(c.file)")
            #expect(first.channel == "PJSIP/trunk-00000001" && first.destinationChannel == "PJSIP/101-00000002", "\(c.file)")
            #expect(first.start == Self.local(2026, 3, 4, 10, 15, 30) && first.answer == Self.local(2026, 3, 4, 10, 15, 35), "\(c.file)")
            #expect(first.end == Self.local(2026, 3, 4, 10, 17, 35) && first.duration == 125 && first.billsec == 120, "\(c.file)")
            #expect(first.disposition == "ANSWERED" && first.lastApplication == "Dial", "\(c.file)")
            #expect(first.rowKey.count == 64 && first.rowKey.allSatisfy(\.isHexDigit), "\(c.file)")
        }
        // a ring group's unanswered legs have no answer time
        let ring = try Self.read("freepbx/cdr/Master-21.csv").rows[2]
        #expect(ring.answer == nil && ring.disposition == "NO ANSWER" && ring.destinationChannel == "Local/101@from-internal-00000001;1")
    }

    @Test func masterCSVWidthsEighteenAndTwenty() async throws {
        // Master-21's first row: 16 base columns, uniqueid, userfield, peeraccount, linkedid, sequence
        let reader = try CSVReader(path: Self.root + "/freepbx/cdr/Master-21.csv")
        let full = try #require(try reader.next()).fields
        let quoted = { (fields: [String]) in fields.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }.joined(separator: ",") }
        let base = Array(full[..<16]), uniqueid = full[16], newColumns = Array(full[18...])
        let cases: [(fields: [String], uniqueid: String?, userfield: String?, linkedid: String?)] = [
            (base + [uniqueid, "note"], uniqueid, "note", nil),
            (base + [uniqueid] + newColumns, uniqueid, nil, uniqueid),
            (base + ["a userfield"] + newColumns, nil, "a userfield", uniqueid),
            (base + ["sys-name-1772637330.12"], "sys-name-1772637330.12", nil, nil),
        ]
        try await withTemporaryDirectory { dir in
            for c in cases {
                let path = dir + "/Master.csv"
                try (quoted(c.fields) + "\n").write(toFile: path, atomically: true, encoding: .utf8)
                let row = try #require(try CDRFile.read(path: path, from: 0, kind: nil, header: nil).rows.first, "\(c.fields.count) columns")
                #expect(row.uniqueid == c.uniqueid && row.fields["userfield"] == c.userfield && row.linkedid == c.linkedid,
                        "\(c.fields.count) columns: \(c.fields[16])")
            }
        }
    }

    @Test func freePBXExportWithBOMCRLFAndRewrittenRecordingFile() throws {
        let chunk = try Self.read("freepbx/cdr/freepbx-cdr.csv")
        #expect(chunk.kind == .freepbxCDR && chunk.problems.isEmpty)
        #expect(chunk.header?.first == "calldate" && chunk.header?.contains("recordingfile") == true)
        #expect(chunk.rows.count == 7)
        let inbound = chunk.rows[0]
        // a post script rewrote the recording to .mp3: the stem still names the call
        #expect(inbound.recordingStem == "in-2125550100-6175550199-20260304-101530-1772637330.12")
        #expect(inbound.uniqueid == "1772637330.12" && inbound.linkedid == "1772637330.12" && inbound.did == "2125550100")
        #expect(inbound.callerNumber == "6175550199" && inbound.callerName == "Doe, John")
        #expect(inbound.start == Self.local(2026, 3, 4, 10, 15, 30) && inbound.duration == 125 && inbound.billsec == 120)
        // a quoted field across lines
        #expect(chunk.rows[1].fields["lastdata"] == "PJSIP/2125550123@trunk,300,Tb\nsecond line of a note")
        #expect(chunk.rows[1].fields["outbound_cnum"] == "2125550100")
        // a CDR row with no recording is read like any other
        #expect(chunk.rows[6].recordingStem == nil && chunk.rows[6].disposition == "NO ANSWER")
    }

    /// Header names and values are trimmed of spaces, tabs and the other Unicode space
    /// separators (a no-break space from a spreadsheet), as Foundation's `.whitespaces` trims.
    @Test func headerNamesAndValuesLoseTheirBlanks() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/cdr.csv"
            let header = Self.freepbxHeader.split(separator: ",").map { "\u{00A0}\t\($0) \u{3000}" }.joined(separator: ",")
            try Data((header + "\n" + Self.freepbxRow + "\n").utf8).write(to: URL(fileURLWithPath: path))
            let chunk = try CDRFile.read(path: path, from: 0, kind: nil, header: nil)
            #expect(chunk.kind == .freepbxCDR && chunk.problems.isEmpty)
            #expect(chunk.header?.first == "calldate")
            #expect(chunk.rows.first?.uniqueid == "1772637330.12" && chunk.rows.first?.billsec == 120)
        }
    }

    static let freepbxHeader = "calldate,clid,src,dst,disposition,duration,billsec,uniqueid,linkedid,recordingfile,did,cnum"
    static let freepbxRow = "2026-03-04 10:15:30,\"Doe\" <6175550199>,6175550199,101,ANSWERED,125,\u{2007}120\t,1772637330.12,1772637330.12,in-1.wav,2125550100,6175550199"

    @Test func fusionPBXExport() throws {
        let chunk = try Self.read("fusionpbx/cdr/fusionpbx-cdr.csv")
        #expect(chunk.kind == .fusionpbxCDR && chunk.problems.isEmpty)
        #expect(chunk.rows.map(\.disposition) == ["ANSWERED", "BUSY", "VOICEMAIL", "ANSWERED", "NO ANSWER"])
        #expect(chunk.rows.map(\.direction) == [.inbound, .outbound, .inbound, .internal, .inbound])
        let first = chunk.rows[0]
        #expect(first.uniqueid == "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01" && first.recordingStem == "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01")
        // the epoch beats the local stamp; the columns without one stay local
        #expect(first.start == .instant(Date(timeIntervalSince1970: 1_772_637_330)))
        #expect(first.answer == Self.local(2026, 3, 4, 10, 15, 35))
        #expect(chunk.rows[1].start == Self.local(2026, 3, 4, 11, 0, 0) && chunk.rows[1].answer == nil)
        #expect(first.source == "6175550199" && first.destination == "101" && first.callerName == "Doe, John")
    }

    @Test func aColumnLayoutOfNoKnownKindNamesWhatEachKindExpects() async throws {
        try await withTemporaryDirectory { dir in
            let path = dir + "/calls.csv"
            try "date,from,to,seconds\n2026-03-04 10:00:00,101,102,5\n".write(toFile: path, atomically: true, encoding: .utf8)
            let error = try #require(throws: CDRError.self) { try CDRFile.read(path: path, from: 0, kind: nil, header: nil) }
            #expect(error.code == CDRError.unknownKind && error.file == path)
            for expected in ["Master.csv", "accountcode", "recordingfile", "linkedid", "xml_cdr_uuid", "record_name", "\"date\""] {
                #expect(error.reason.contains(expected), "\(expected)")
            }
            // a header that lacks one required column names it
            try "calldate,uniqueid,linkedid,disposition,billsec,did,cnum\n".write(toFile: path, atomically: true, encoding: .utf8)
            let missing = try #require(throws: CDRError.self) { try CDRFile.read(path: path, from: 0, kind: nil, header: nil) }
            #expect(missing.reason.contains("(missing: recordingfile)"))
            // mysql --batch writes tabs: the message says so
            try "calldate\tclid\tsrc\n".write(toFile: path, atomically: true, encoding: .utf8)
            let tabs = try #require(throws: CDRError.self) { try CDRFile.read(path: path, from: 0, kind: nil, header: nil) }
            #expect(tabs.reason.contains("tab-separated"))
        }
    }

    @Test func aBadRowIsAProblemAndTheRestIsRead() async throws {
        try await withTemporaryDirectory { dir in
            let lines = try String(contentsOfFile: Self.root + "/freepbx/cdr/Master-21.csv", encoding: .utf8).split(separator: "\n")
            let path = dir + "/Master.csv"
            let badTime = lines[1].replacingOccurrences(of: "\"2026-03-04 11:00:00\"", with: "\"yesterday\"")
            try ([String(lines[0]), "\"only\",\"five\",\"columns\",\"here\",\"x\"", badTime, String(lines[2])].joined(separator: "\n") + "\n")
                .write(toFile: path, atomically: true, encoding: .utf8)
            let chunk = try CDRFile.read(path: path, from: 0, kind: nil, header: nil)
            #expect(chunk.rows.map(\.uniqueid) == ["1772637330.12", "1772643600.30"])
            #expect(chunk.problems.map(\.code) == [CDRError.badRow, CDRError.badRow])
            #expect(chunk.problems.first?.reason.contains("has 5 columns") == true)
            #expect(chunk.problems.last?.reason.contains("start \"yesterday\" is not a time") == true)
            #expect(chunk.nextOffset == Int64(try Data(contentsOf: URL(fileURLWithPath: path)).count))
        }
    }

    /// The ledger keeps rows as JSON: every kind's rows come back equal.
    @Test func rowsSurviveJSON() throws {
        for file in ["freepbx/cdr/Master-21.csv", "freepbx/cdr/freepbx-cdr.csv", "fusionpbx/cdr/fusionpbx-cdr.csv"] {
            let rows = try Self.read(file).rows
            #expect(try JSONDecoder().decode([CDRRow].self, from: JSONEncoder().encode(rows)) == rows, "\(file)")
        }
    }

    @Test func aLastLineStillBeingWrittenIsLeftForTheNextRead() throws {
        let path = Self.root + "/freepbx/cdr/Master-tail.csv"
        let chunk = try CDRFile.read(path: path, from: 0, kind: nil, header: nil)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(chunk.rows.count == 2)
        #expect(chunk.nextOffset == Int64(bytes.lastIndex(of: UInt8(ascii: "\n"))! + 1))
        #expect(try CDRFile.read(path: path, from: chunk.nextOffset, kind: chunk.kind, header: chunk.header).rows.isEmpty)
    }

    /// A CDR file written up to any byte, read, then written to its end and read on from where the
    /// first read stopped, gives the rows one read of the whole file gives.
    @Test(arguments: ["freepbx/cdr/Master-16.csv", "freepbx/cdr/Master-17u.csv", "freepbx/cdr/freepbx-cdr.csv", "fusionpbx/cdr/fusionpbx-cdr.csv"])
    func tailingFromEverySplitPointGivesTheRowsOfOneRead(file: String) async throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/" + file))
        let whole = try Self.read(file)
        try await withTemporaryDirectory { dir in
            // the file as written up to the split, and the same file once written to its end
            let partial = dir + "/partial.csv", path = dir + "/cdr.csv"
            try bytes.write(to: URL(fileURLWithPath: path))
            for split in 0...bytes.count {
                try bytes.prefix(split).write(to: URL(fileURLWithPath: partial))
                let first = try CDRFile.read(path: partial, from: 0, kind: nil, header: nil)
                let rest = try CDRFile.read(path: path, from: first.nextOffset, kind: first.kind, header: first.header)
                #expect(first.rows + rest.rows == whole.rows, "split at byte \(split)")
                #expect(rest.nextOffset == Int64(bytes.count) && rest.kind == whole.kind)
            }
            // reads bounded by size, each from the last one's offset, give the same rows
            var rows: [CDRRow] = []
            var chunk = try CDRFile.read(path: path, from: 0, kind: nil, header: nil, maxBytes: 100)
            rows += chunk.rows
            while true {
                let next = try CDRFile.read(path: path, from: chunk.nextOffset, kind: chunk.kind, header: chunk.header, maxBytes: 100)
                rows += next.rows
                if next.nextOffset == chunk.nextOffset { break }
                chunk = next
            }
            #expect(rows == whole.rows)
        }
    }
}

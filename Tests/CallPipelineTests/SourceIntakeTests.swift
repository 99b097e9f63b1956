import CallAudio
import CallPipeline
import CallSources
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Testing

/// A PBX source's intake over a real SQLite store and real files: a rescan takes nothing it knows
/// unchanged, the call (not the bytes) is the identity, and CDR files are tailed from their cursor.
@Suite struct SourceIntakeTests {
    static let inbound = "in-2125550123-6175550199-20260310-140500-1773165900.1"
    static let outbound = "out-6175550198-101-20260310-141000-1773166200.2"
    static let header = "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,amaflags,accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,outbound_cnum,outbound_cnam,dst_cnam,linkedid,peeraccount,sequence"

    static func row(_ uniqueid: String, stem: String, billsec: Int = 42) -> String {
        "2026-03-10 14:05:00,<6175550199>,6175550199,101,from-pstn,PJSIP/trunk-1,PJSIP/101-2,Dial,,50,\(billsec),ANSWERED,3,,\(uniqueid),,2125550123,\(stem).wav,6175550199,,,,,\(uniqueid),,1"
    }

    func withIntake(_ body: (String, SQLiteStore, (String) -> SourceIntake) async throws -> Void) async throws {
        try await withTemporaryDirectory { dir in
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            try await body(dir, store) { root in
                SourceIntake(settings: SourceSettings(kind: .freepbx, root: root, cdrFiles: ["\(dir)/cdr.csv"], timeZone: TimeZone(identifier: "America/New_York")!,
                                                      region: "US"),
                             store: store, settle: .immediate, logger: Logger(label: "test"), excluding: ["\(dir)/state"])
            }
            try await store.close()
        }
    }

    @Test func aRescanTakesNoFileItKnowsUnchanged() async throws {
        try await withIntake { dir, store, intake in
            let day = "\(dir)/monitor/2026/03/10"
            try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 3, format: .wavULaw, to: "\(day)/\(Self.inbound).wav")
            try SyntheticAudio.write(.speech(), seconds: 3.5, format: .wavULaw, to: "\(day)/\(Self.outbound).wav")
            try Data("not a call".utf8).write(to: URL(fileURLWithPath: "\(day)/greeting.wav"))
            let source = intake("\(dir)/monitor")
            let first = try await source.scan(reportKnown: false)
            #expect(first.map(\.status) == [.skipped, .ok, .ok], "\(first.map { ($0.path, $0.status, $0.error?.code) })")
            #expect(first[0].error?.code == "unrecognised_name")
            let keys = Set(first.compactMap(\.key))
            #expect(keys == [SourceIdentity.key(pbx: "freepbx", callID: "1773165900.1"), SourceIdentity.key(pbx: "freepbx", callID: "1773166200.2")])

            // Nothing changed: nothing taken, nothing reported.
            #expect(try await source.scan(reportKnown: false).isEmpty)
            // Listed when asked, with the same keys, from the ledger alone.
            let listed = try await source.scan(reportKnown: true)
            #expect(listed.count == 3)
            #expect(Set(listed.compactMap(\.key)) == keys)
            #expect(try await store.jobs(JobQuery(limit: 100)).count == 2, "one transcode job per call")

            // A touched file is taken again, and stays the same call.
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 5)], ofItemAtPath: "\(day)/\(Self.inbound).wav")
            let touched = try await source.scan(reportKnown: false)
            #expect(touched.count == 1)
            #expect(touched.first?.key == SourceIdentity.key(pbx: "freepbx", callID: "1773165900.1"))
            #expect(try await store.recordings(RecordingQuery(limit: 100)).count == 2)
        }
    }

    @Test func symlinksAreRefusedAndTheStateAndCDRFilesPassedOver() async throws {
        try await withIntake { dir, store, intake in
            let day = "\(dir)/monitor/2026/03/10"
            try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 3, format: .wavULaw, to: "\(dir)/elsewhere.wav")
            try FileManager.default.createSymbolicLink(atPath: "\(day)/\(Self.inbound).wav", withDestinationPath: "\(dir)/elsewhere.wav")
            try Data((Self.header + "\n").utf8).write(to: URL(fileURLWithPath: "\(dir)/monitor/cdr.csv"))
            let source = SourceIntake(settings: SourceSettings(kind: .freepbx, root: "\(dir)/monitor", cdrFiles: ["\(dir)/monitor/cdr.csv"]),
                                      store: store, settle: .immediate, logger: Logger(label: "test"))
            let reports = try await source.scan(reportKnown: true)
            #expect(reports.map(\.path) == ["2026/03/10/\(Self.inbound).wav"], "\(reports)")
            #expect(reports.first?.error?.code == "refused")
            #expect(try await store.recordings(RecordingQuery(limit: 10)).isEmpty)
            _ = intake
        }
    }

    @Test func theCallNotTheBytesIsTheIdentity() async throws {
        try await withIntake { dir, store, intake in
            let day = "monitor/2026/03/10", other = "mirror/2026/03/10"
            for folder in [day, other] { try FileManager.default.createDirectory(atPath: "\(dir)/\(folder)", withIntermediateDirectories: true) }
            try SyntheticAudio.write(.speech(), seconds: 3, format: .wavULaw, to: "\(dir)/\(day)/\(Self.inbound).wav")
            #expect(try await intake("\(dir)/monitor").scan(reportKnown: false).first?.status == .ok)
            // The same call as an MP3 of other bytes, under a second root: no second recording.
            try SyntheticAudio.write(.speech(), seconds: 3, format: .mp3, to: "\(dir)/\(other)/\(Self.inbound).mp3")
            let second = try await intake("\(dir)/mirror").scan(reportKnown: false)
            #expect(second.first?.status == .skipped)
            #expect(second.first?.warnings.map(\.code) == [SourceIntake.sameCall], "\(second)")
            // The WAV converted to MP3 in place (the WAV removed): the recording moves to the MP3.
            try SyntheticAudio.write(.speech(), seconds: 3, format: .mp3, to: "\(dir)/\(day)/\(Self.inbound).mp3")
            try FileManager.default.removeItem(atPath: "\(dir)/\(day)/\(Self.inbound).wav")
            let converted = try await intake("\(dir)/monitor").scan(reportKnown: false)
            #expect(converted.first?.warnings.map(\.code) == [SourceIntake.converted], "\(converted)")
            let recordings = try await store.recordings(RecordingQuery(limit: 100))
            #expect(recordings.count == 1)
            #expect(recordings.first?.path.hasSuffix("\(day)/\(Self.inbound).mp3") == true)
        }
    }

    @Test func cdrFilesAreTailedFromTheirCursorAndReadAgainWhenReplaced() async throws {
        try await withIntake { dir, store, intake in
            try FileManager.default.createDirectory(atPath: "\(dir)/monitor", withIntermediateDirectories: true)
            let cdr = "\(dir)/cdr.csv"
            try Data((Self.header + "\n" + Self.row("1773165900.1", stem: Self.inbound) + "\n").utf8).write(to: URL(fileURLWithPath: cdr))
            let source = intake("\(dir)/monitor")
            #expect(try await source.ingestCDRs() == 1)
            #expect(try await source.ingestCDRs() == 0, "nothing new")
            // A row being written (no newline yet) waits for its end.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cdr))
            handle.seekToEndOfFile()
            handle.write(Data(Self.row("1773166200.2", stem: Self.outbound).utf8))
            #expect(try await source.ingestCDRs() == 0)
            handle.write(Data("\n".utf8))
            try handle.close()
            #expect(try await source.ingestCDRs() == 1)
            // Rotated: a new file at the path, read from its start; the rows read before are kept once.
            let rotated = Self.header + "\n" + Self.row("1773165900.1", stem: Self.inbound) + "\n" + Self.row("1773167400.4", stem: "x") + "\n"
            try Data(rotated.utf8).write(to: URL(fileURLWithPath: cdr + ".new"))
            try FileManager.default.removeItem(atPath: cdr)
            try FileManager.default.moveItem(atPath: cdr + ".new", toPath: cdr)
            #expect(try await source.ingestCDRs() == 2)
            let rows = try await store.cdrRows(CDRRowQuery(pbx: "freepbx", uniqueids: ["1773165900.1", "1773166200.2", "1773167400.4"]))
            #expect(rows.count == 3, "\(rows.map(\.uniqueid))")
            // Rows with a join key are found by it, never by their day: a recording's lookup reads
            // its call's rows, not the whole day's (which grows with every call).
            #expect(try await store.cdrRows(CDRRowQuery(pbx: "freepbx", days: ["2026-03-10", "2026-03-11"])).isEmpty)
        }
    }
}

import CallTesting
import Foundation
import Testing

/// `callrec upload DIR --source freepbx|3cx|fusionpbx` and `enqueue --source`, from the outside:
/// the built binary on PBX trees written here (synthetic audio of a few seconds, CDR text), its
/// `--sandbox`, and the call logs the sandbox holds afterwards. The times are New York's on
/// 2026-03-10 (EDT, UTC−4): 14:05 local is 18:05 UTC.
@Suite(.serialized) struct PBXUploadCLITests {
    let callrec = callrecExecutable()

    /// FreePBX `asteriskcdrdb.cdr` export columns.
    static let freepbxHeader = "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,amaflags,accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,outbound_cnum,outbound_cnam,dst_cnam,linkedid,peeraccount,sequence"

    /// One FreePBX export row.
    static func freepbxRow(calldate: String, clid: String, src: String, dst: String, channel: String, dstchannel: String, duration: Int,
                           billsec: Int, disposition: String, uniqueid: String, did: String = "", recordingfile: String, cnum: String,
                           outboundCnum: String = "", linkedid: String? = nil) -> String {
        "\(calldate),\(clid),\(src),\(dst),from-internal,\(channel),\(dstchannel),Dial,,\(duration),\(billsec),\(disposition),3,,\(uniqueid),,\(did),\(recordingfile),\(cnum),,\(outboundCnum),,,\(linkedid ?? uniqueid),,1"
    }

    /// A run of the binary: its exit status, its `--json` document's files by path, its summary.
    struct Run {
        var status: Int32
        var files: [String: [String: Any]]
        var summary: [String: Any]
        var stderr: String

        func code(_ path: String) -> String? { (files[path]?["error"] as? [String: Any])?["code"] as? String }
        func status(_ path: String) -> String? { files[path]?["status"] as? String }
        func warnings(_ path: String) -> [String] { (files[path]?["warnings"] as? [[String: Any]] ?? []).compactMap { $0["code"] as? String } }
    }

    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        return environment
    }

    func run(_ command: String, _ root: String, state: String, _ extra: [String], json: Bool = true) async throws -> Run {
        let sandbox = command == "upload" ? ["--sandbox"] : []
        let result = try await runProcess(callrec, [command, root, "--state", state, "--settle", "0", "--jobs", "2", "--log-level", "warning",
                                              "--timezone", "America/New_York", "--region", "US"] + (json ? ["--json"] : []) + sandbox + extra,
                                    environment: environment)
        let document = (try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]) ?? [:]
        var files: [String: [String: Any]] = [:]
        for file in document["files"] as? [[String: Any]] ?? [] { files[file["path"] as? String ?? ""] = file }
        return Run(status: result.status, files: files, summary: document["summary"] as? [String: Any] ?? [:],
                   stderr: result.stderr + (document.isEmpty ? String(decoding: result.stdout, as: UTF8.self) : ""))
    }

    func upload(_ root: String, state: String, _ extra: [String] = []) async throws -> Run { try await run("upload", root, state: state, extra) }

    /// The live call logs of the sandbox `upload --sandbox --state state` kept.
    func callLogs(state: String) throws -> [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: "\(state)/sandbox/sandbox-state.json") else { return [] }
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (json["call_logs"] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }
    }

    /// The call log whose recording came from `stem` (the upload names the file after the stem).
    func callLog(_ logs: [[String: Any]], stem: String) -> [String: Any]? {
        logs.first { (($0["recording"] as? [String: Any])?["filename"] as? String)?.hasPrefix(stem) == true }
    }

    func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    func audio(_ path: String, seconds: Double, format: SyntheticAudio.Format = .wavULaw) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try SyntheticAudio.write(.speech(), seconds: seconds, format: format, to: path)
    }

    /// The users map: extension 101 is Pipedrive user 7.
    func config(_ dir: String) throws -> [String] {
        try write(#"{ // extension → Pipedrive user"# + "\n" + #""users": {"101": 7, "102": 8}, }"#, to: "\(dir)/callrec.json")
        return ["--config", "\(dir)/callrec.json"]
    }

    /// A re-run that sends nothing: exit 0, the file skipped with `warning`, the sandbox still
    /// holding `count` call logs.
    func expectNothingSent(_ run: Run, _ path: String, warning: String, state: String, count: Int) throws {
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.status(path) == "skipped", "\(run.files)")
        #expect(run.warnings(path).contains(warning), "\(run.files)")
        #expect(try callLogs(state: state).count == count)
    }

    // MARK: FreePBX

    static let inbound = "in-2125550123-6175550199-20260310-140500-1773165900.1"
    static let outbound = "out-6175550198-101-20260310-141000-1773166200.2"
    static let missed = "in-2125550123-6175550197-20260310-142000-1773166800.3"
    static let internalCall = "internal-102-101-20260310-143000-1773167400.4"

    /// A FreePBX day folder with an inbound and an outbound answered call, a missed and an internal
    /// one, a file whose name fits no layout, and the export with their rows plus one for a call
    /// nothing recorded.
    func freepbxTree(_ root: String) throws {
        let day = "\(root)/2026/03/10"
        try audio("\(day)/\(Self.inbound).wav", seconds: 3)
        try audio("\(day)/\(Self.outbound).wav", seconds: 3.2)
        try audio("\(day)/\(Self.missed).wav", seconds: 2.1)
        try audio("\(day)/\(Self.internalCall).wav", seconds: 2.3)
        try write("not a call", to: "\(day)/voicemail-greeting.wav")
        let rows = [
            Self.freepbxRow(calldate: "2026-03-10 14:05:00", clid: "\"Jane Roe\" <6175550199>", src: "6175550199", dst: "101", channel: "PJSIP/trunk-00000001",
                            dstchannel: "PJSIP/101-00000002", duration: 50, billsec: 42, disposition: "ANSWERED", uniqueid: "1773165900.1",
                            did: "2125550123", recordingfile: "\(Self.inbound).wav", cnum: "6175550199"),
            Self.freepbxRow(calldate: "2026-03-10 14:10:00", clid: "\"Sales\" <101>", src: "101", dst: "6175550198", channel: "PJSIP/101-00000003",
                            dstchannel: "PJSIP/trunk-00000004", duration: 35, billsec: 30, disposition: "ANSWERED", uniqueid: "1773166200.2",
                            recordingfile: "\(Self.outbound).wav", cnum: "101", outboundCnum: "2125550123"),
            Self.freepbxRow(calldate: "2026-03-10 14:20:00", clid: "<6175550197>", src: "6175550197", dst: "101", channel: "PJSIP/trunk-00000005",
                            dstchannel: "PJSIP/101-00000006", duration: 20, billsec: 0, disposition: "NO ANSWER", uniqueid: "1773166800.3",
                            did: "2125550123", recordingfile: "\(Self.missed).wav", cnum: "6175550197"),
            Self.freepbxRow(calldate: "2026-03-10 14:30:00", clid: "\"Sales\" <101>", src: "101", dst: "102", channel: "PJSIP/101-00000007",
                            dstchannel: "PJSIP/102-00000008", duration: 15, billsec: 12, disposition: "ANSWERED", uniqueid: "1773167400.4",
                            recordingfile: "\(Self.internalCall).wav", cnum: "101"),
            // A call nothing recorded: not an error.
            Self.freepbxRow(calldate: "2026-03-10 14:40:00", clid: "<6175550196>", src: "6175550196", dst: "101", channel: "PJSIP/trunk-00000009",
                            dstchannel: "PJSIP/101-0000000a", duration: 25, billsec: 20, disposition: "ANSWERED", uniqueid: "1773168000.5",
                            did: "2125550123", recordingfile: "", cnum: "6175550196"),
        ]
        try write(([Self.freepbxHeader] + rows).joined(separator: "\n") + "\n", to: "\(root)-cdr/cdr.csv")
    }

    @Test(.timeLimit(.minutes(5)))
    func freepbxTreeWithItsCDRGivesTheExpectedCallLogsAndSkipsWithReasons() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state"
            try freepbxTree(root)
            let flags = ["--source", "freepbx", "--cdr", "\(root)-cdr/cdr.csv"] + (try config(dir))
            let first = try await upload(root, state: state, flags)
            #expect(first.status == 0, "\(first.stderr)")
            let day = "2026/03/10"
            #expect(first.status("\(day)/\(Self.inbound).wav") == "ok", "\(first.files)")
            #expect(first.status("\(day)/\(Self.outbound).wav") == "ok", "\(first.files)")
            #expect(first.code("\(day)/\(Self.missed).wav") == "missed_call", "\(first.files)")
            #expect(first.code("\(day)/\(Self.internalCall).wav") == "internal_call", "\(first.files)")
            #expect(first.code("\(day)/voicemail-greeting.wav") == "unrecognised_name", "\(first.files)")
            #expect(first.status("\(day)/\(Self.missed).wav") == "skipped")

            var logs = try callLogs(state: state)
            #expect(logs.count == 2, "\(logs)")
            let inbound = try #require(callLog(logs, stem: Self.inbound), "\(logs)")
            #expect(inbound["from_phone_number"] as? String == "+16175550199")
            #expect(inbound["to_phone_number"] as? String == "+12125550123")
            #expect(inbound["start_time"] as? String == "2026-03-10 18:05:00")
            #expect(inbound["end_time"] as? String == "2026-03-10 18:05:42")
            #expect(inbound["outcome"] as? String == "connected")
            #expect(inbound["user_id"] as? Int == 7)
            #expect((inbound["subject"] as? String)?.hasPrefix("Inbound call") == true, "\(inbound)")
            #expect((inbound["subject"] as? String)?.contains("101") == true, "\(inbound)")
            let outbound = try #require(callLog(logs, stem: Self.outbound), "\(logs)")
            #expect(outbound["from_phone_number"] as? String == "+12125550123")
            #expect(outbound["to_phone_number"] as? String == "+16175550198")
            #expect(outbound["start_time"] as? String == "2026-03-10 18:10:00")
            #expect(outbound["end_time"] as? String == "2026-03-10 18:10:30")
            #expect(outbound["user_id"] as? Int == 7)
            #expect((outbound["subject"] as? String)?.hasPrefix("Outbound call") == true, "\(outbound)")

            // The same run again: nothing new is sent, every file is listed.
            let again = try await upload(root, state: state, flags)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.files.count == 5, "\(again.files.keys)")
            #expect(again.code("\(day)/\(Self.internalCall).wav") == "internal_call")
            #expect(try callLogs(state: state).count == 2)
            // Without --json: each call not logged on stderr with its reason, and counted apart from those done before.
            let text = try await run("upload", root, state: state, flags, json: false)
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stderr.contains("skipped missed_call: \(day)/\(Self.missed).wav"), "\(text.stderr)")
            #expect(text.stderr.contains("skipped unrecognised_name: \(day)/voicemail-greeting.wav"), "\(text.stderr)")
            #expect(text.stderr.contains("0 uploaded, 2 done before, 3 not logged, 0 failed"), "\(text.stderr)")

            // `--log internal,missed`: the two skipped calls are logged now, the others not again.
            let all = try await upload(root, state: state, flags + ["--log", "internal,missed"])
            #expect(all.status == 0, "\(all.stderr)")
            logs = try callLogs(state: state)
            #expect(logs.count == 4, "\(logs)")
            let missed = try #require(callLog(logs, stem: Self.missed), "\(logs)")
            #expect(missed["outcome"] as? String == "no_answer")
            #expect(missed["from_phone_number"] as? String == "+16175550197")
            let internalCall = try #require(callLog(logs, stem: Self.internalCall), "\(logs)")
            #expect(internalCall["from_phone_number"] as? String == "101")
            #expect(internalCall["to_phone_number"] as? String == "102")
            #expect(internalCall["start_time"] as? String == "2026-03-10 18:30:00")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func conversionTouchChangedBytesAndASecondRootNeverMakeASecondCallLog() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state", day = "2026/03/10"
            let fm = FileManager.default
            try freepbxTree(root)
            // Only the two answered calls matter here.
            for stem in [Self.missed, Self.internalCall] { try fm.removeItem(atPath: "\(root)/\(day)/\(stem).wav") }
            try fm.removeItem(atPath: "\(root)/\(day)/voicemail-greeting.wav")
            let flags = ["--source", "freepbx", "--cdr", "\(root)-cdr/cdr.csv"]

            // WAV→MP3 before the upload: registered (enqueue) as WAV, converted, then uploaded once as MP3.
            let enqueued = try await run("enqueue", root, state: state, flags)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")
            #expect(enqueued.status("\(day)/\(Self.inbound).wav") == "ok", "\(enqueued.files)")
            try audio("\(root)/\(day)/\(Self.inbound).mp3", seconds: 3, format: .mp3)
            try fm.removeItem(atPath: "\(root)/\(day)/\(Self.inbound).wav")
            let first = try await upload(root, state: state, flags)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.status("\(day)/\(Self.inbound).mp3") == "ok", "\(first.files)")
            #expect(first.warnings("\(day)/\(Self.inbound).mp3").contains("converted"), "\(first.files)")
            let logs = try callLogs(state: state)
            #expect(logs.count == 2, "\(logs)")
            #expect(callLog(logs, stem: Self.inbound)?["start_time"] as? String == "2026-03-10 18:05:00")

            // WAV→MP3 after the upload: reported, not sent again.
            try audio("\(root)/\(day)/\(Self.outbound).mp3", seconds: 3.2, format: .mp3)
            try fm.removeItem(atPath: "\(root)/\(day)/\(Self.outbound).wav")
            try await expectNothingSent(try upload(root, state: state, flags), "\(day)/\(Self.outbound).mp3", warning: "converted", state: state, count: 2)

            // `touch`: the same bytes, a new mtime: done before.
            let touched = "\(root)/\(day)/\(Self.inbound).mp3"
            try fm.setAttributes([.modificationDate: Date(timeIntervalSinceNow: 60)], ofItemAtPath: touched)
            let afterTouch = try await upload(root, state: state, flags)
            #expect(afterTouch.status == 0, "\(afterTouch.stderr)")
            #expect(afterTouch.status("\(day)/\(Self.inbound).mp3") == "skipped", "\(afterTouch.files)")
            #expect(afterTouch.warnings("\(day)/\(Self.inbound).mp3").allSatisfy { $0 != "changed_after_upload" }, "\(afterTouch.files)")
            #expect(try callLogs(state: state).count == 2)

            // New bytes after the upload: reported, not re-sent.
            try audio(touched, seconds: 4, format: .mp3)
            try await expectNothingSent(try upload(root, state: state, flags), "\(day)/\(Self.inbound).mp3", warning: "changed_after_upload", state: state, count: 2)

            // The same call under a second root: one call log still.
            let second = "\(dir)/mirror"
            try fm.createDirectory(atPath: "\(second)/\(day)", withIntermediateDirectories: true)
            try fm.copyItem(atPath: "\(root)/\(day)/\(Self.outbound).mp3", toPath: "\(second)/\(day)/\(Self.outbound).mp3")
            try await expectNothingSent(try upload(second, state: state, flags), "\(day)/\(Self.outbound).mp3", warning: "same_call", state: state, count: 2)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aLateCDRRowMakesTheRecordingWaitThenItIsUploadedWithTheRowsFacts() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state", day = "2026/03/10"
            try audio("\(root)/\(day)/\(Self.inbound).wav", seconds: 3)
            let cdr = "\(dir)/cdr.csv"
            try write(Self.freepbxHeader + "\n", to: cdr)
            // A wait shorter than the run's idle horizon (5 min) is reported, not waited for.
            let flags = ["--source", "freepbx", "--cdr", cdr, "--cdr-wait", "2m"]
            let started = ContinuousClock.now
            let first = try await upload(root, state: state, flags)
            #expect(ContinuousClock.now - started < .seconds(100), "the run waited for the CDR")
            #expect(first.status == 3, "\(first.stderr)")
            #expect(first.status("\(day)/\(Self.inbound).wav") == "waiting", "\(first.files)")
            #expect(first.code("\(day)/\(Self.inbound).wav") == "awaiting_cdr", "\(first.files)")
            #expect(first.summary["resume_after"] is String, "\(first.summary)")
            #expect(try callLogs(state: state).isEmpty)

            // The row comes: the next run uploads with its facts (billsec 42).
            let row = Self.freepbxRow(calldate: "2026-03-10 14:05:00", clid: "<6175550199>", src: "6175550199", dst: "101", channel: "PJSIP/trunk-00000001",
                                      dstchannel: "PJSIP/101-00000002", duration: 50, billsec: 42, disposition: "ANSWERED", uniqueid: "1773165900.1",
                                      did: "2125550123", recordingfile: "\(Self.inbound).wav", cnum: "6175550199")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: cdr))
            handle.seekToEndOfFile()
            handle.write(Data((row + "\n").utf8))
            try handle.close()
            let second = try await upload(root, state: state, flags)
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.status("\(day)/\(Self.inbound).wav") == "ok", "\(second.files)")
            let logs = try callLogs(state: state)
            #expect(logs.count == 1, "\(logs)")
            #expect(logs.first?["end_time"] as? String == "2026-03-10 18:05:42", "\(logs)")
            #expect(logs.first?["to_phone_number"] as? String == "+12125550123", "\(logs)")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aCDRWaitThatIsOverGoesOnWithTheFileNamesFacts() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state", day = "2026/03/10"
            let path = "\(root)/\(day)/\(Self.inbound).wav"
            try audio(path, seconds: 3)
            // Closed an hour ago: a wait of 1 s is long over (no sleeping).
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: path)
            let cdr = "\(dir)/cdr.csv"
            try write(Self.freepbxHeader + "\n", to: cdr)
            let run = try await upload(root, state: state, ["--source", "freepbx", "--cdr", cdr, "--cdr-wait", "1s"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.status("\(day)/\(Self.inbound).wav") == "ok", "\(run.files)")
            #expect(run.warnings("\(day)/\(Self.inbound).wav").contains("cdr_missing"), "\(run.files)")
            let logs = try callLogs(state: state)
            #expect(logs.count == 1, "\(logs)")
            // From the name: the caller, the DID, the local time in UTC, the audio's length.
            #expect(logs.first?["from_phone_number"] as? String == "+16175550199", "\(logs)")
            #expect(logs.first?["start_time"] as? String == "2026-03-10 18:05:00", "\(logs)")
            #expect(logs.first?["end_time"] as? String == "2026-03-10 18:05:03", "\(logs)")
        }
    }

    /// 2026-11-01 in New York repeats 01:00–02:00 (EDT, then EST): two calls at 01:30 local are an
    /// hour apart, told apart by their uniqueids' epochs.
    @Test(.timeLimit(.minutes(5)))
    func theRepeatedHourOfADSTChangeGivesTwoDifferentUTCTimes() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state"
            let first = "in-2125550123-6175550199-20261101-013000-1793511000.7", second = "in-2125550123-6175550198-20261101-013000-1793514600.8"
            try audio("\(root)/2026/11/01/\(first).wav", seconds: 3)
            try audio("\(root)/2026/11/01/\(second).wav", seconds: 3.3)
            let rows = [("1793511000.7", first, "6175550199"), ("1793514600.8", second, "6175550198")].map { uniqueid, stem, caller in
                Self.freepbxRow(calldate: "2026-11-01 01:30:00", clid: "<\(caller)>", src: caller, dst: "101", channel: "PJSIP/trunk-1", dstchannel: "PJSIP/101-2",
                                duration: 20, billsec: 10, disposition: "ANSWERED", uniqueid: uniqueid, did: "2125550123", recordingfile: "\(stem).wav", cnum: caller)
            }
            try write(([Self.freepbxHeader] + rows).joined(separator: "\n") + "\n", to: "\(dir)/cdr.csv")
            let run = try await upload(root, state: state, ["--source", "freepbx", "--cdr", "\(dir)/cdr.csv"])
            #expect(run.status == 0, "\(run.stderr)")
            let logs = try callLogs(state: state)
            #expect(callLog(logs, stem: first)?["start_time"] as? String == "2026-11-01 05:30:00", "\(logs)")
            #expect(callLog(logs, stem: second)?["start_time"] as? String == "2026-11-01 06:30:00", "\(logs)")
        }
    }

    // MARK: 3CX and FusionPBX

    @Test(.timeLimit(.minutes(5)))
    func threeCXTreeGivesCallLogsFromItsNames() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/3cx", state = "\(dir)/state"
            let inbound = "[Jane Roe (Acme)]_6175550199-101_20260310140500(17)"
            let outbound = "[Sales]_101-6175550198_20260310141000(18)"
            try audio("\(root)/Recordings/101/\(inbound).wav", seconds: 3)
            try audio("\(root)/Recordings/101/\(outbound).wav", seconds: 4)
            let run = try await upload(root, state: state, ["--source", "3cx"] + (try config(dir)))
            #expect(run.status == 0, "\(run.stderr)")
            let logs = try callLogs(state: state)
            #expect(logs.count == 2, "\(logs)")
            let first = try #require(callLog(logs, stem: inbound), "\(logs)")
            #expect(first["from_phone_number"] as? String == "+16175550199")
            #expect(first["start_time"] as? String == "2026-03-10 18:05:00")
            #expect(first["end_time"] as? String == "2026-03-10 18:05:03")
            #expect(first["outcome"] as? String == "connected")
            #expect(first["user_id"] as? Int == 7)
            #expect((first["subject"] as? String)?.hasPrefix("Inbound call") == true, "\(first)")
            let second = try #require(callLog(logs, stem: outbound), "\(logs)")
            #expect(second["to_phone_number"] as? String == "+16175550198")
            #expect(second["start_time"] as? String == "2026-03-10 18:10:00")
            #expect((second["subject"] as? String)?.hasPrefix("Outbound call") == true, "\(second)")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func fusionPBXTreeWithItsCDRGivesTheExpectedCallLogs() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/recordings", state = "\(dir)/state"
            let answered = "0f8c6a3e-5b1d-4c2a-9e7f-1a2b3c4d5e6f", missed = "1f8c6a3e-5b1d-4c2a-9e7f-1a2b3c4d5e6f"
            try audio("\(root)/archive/2026/Mar/10/\(answered).wav", seconds: 3)
            try audio("\(root)/archive/2026/Mar/10/\(missed).wav", seconds: 2)
            let header = "xml_cdr_uuid,direction,caller_id_name,caller_id_number,destination_number,start_stamp,answer_stamp,end_stamp,duration,billsec,hangup_cause,record_name"
            let rows = [
                "\(answered),inbound,Jane Roe,6175550199,101,2026-03-10 14:05:00,2026-03-10 14:05:08,2026-03-10 14:05:50,50,42,NORMAL_CLEARING,\(answered).wav",
                "\(missed),inbound,,6175550197,101,2026-03-10 14:20:00,,2026-03-10 14:20:20,20,0,NO_ANSWER,\(missed).wav",
            ]
            try write(([header] + rows).joined(separator: "\n") + "\n", to: "\(dir)/fusion.csv")
            let run = try await upload(root, state: state, ["--source", "fusionpbx", "--cdr", "\(dir)/fusion.csv"] + (try config(dir)))
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.code("archive/2026/Mar/10/\(missed).wav") == "missed_call", "\(run.files)")
            let logs = try callLogs(state: state)
            #expect(logs.count == 1, "\(logs)")
            let log = try #require(logs.first)
            #expect(log["from_phone_number"] as? String == "+16175550199")
            #expect(log["start_time"] as? String == "2026-03-10 18:05:00")
            #expect(log["end_time"] as? String == "2026-03-10 18:05:42")
            #expect(log["outcome"] as? String == "connected")
            #expect(log["user_id"] as? Int == 7)
        }
    }

    @Test func aCDRFileOfNoKnownKindExitsTwoNamingTheColumns() async throws {
        try await withTemporaryDirectory { dir in
            try audio("\(dir)/monitor/2026/03/10/\(Self.inbound).wav", seconds: 3)
            try write("a,b,c\n1,2,3\n", to: "\(dir)/cdr.csv")
            let run = try await upload("\(dir)/monitor", state: "\(dir)/state", ["--source", "freepbx", "--cdr", "\(dir)/cdr.csv"])
            #expect(run.status == 2, "\(run.stderr)")
            #expect(run.stderr.contains("recordingfile"), "\(run.stderr)")
        }
    }
}

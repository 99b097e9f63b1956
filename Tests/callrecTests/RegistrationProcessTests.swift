import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// What `callrec upload` (and `enqueue`, `transcode`) take from a recording directory, run as
/// real processes against a `callrec sandbox` process (issue 13, items 2, 3 and 5): a recording
/// still being written, a file whose bytes changed after its upload, the same audio under two
/// names, two recordings sharing one sidecar, and sidecars mended after a failure.
@Suite(.serialized) struct RegistrationProcessTests {
    let callrec = callrecExecutable()

    func environment(base: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
        environment["PIPEDRIVE_BURST"] = "500"
        environment["PIPEDRIVE_API_URL"] = base + "/v1"
        return environment
    }

    /// A temporary directory with an empty `in/`, a sandbox process, and the environment that
    /// points callrec at it, for `body`.
    func withSandboxAndDirectory(_ body: (String, SandboxProcess, [String: String]) async throws -> Void) async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment(base: ""))
            defer { sandbox.terminate() }
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try await body(dir, sandbox, environment(base: sandbox.base))
        }
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr)")
    }

    /// The report's files by path.
    func files(_ result: ProcessResult) throws -> [String: [String: Any]] {
        let files = try #require(try json(result)["files"] as? [[String: Any]], "\(result.stderr)")
        return Dictionary(uniqueKeysWithValues: files.map { ($0["path"] as? String ?? "", $0) })
    }

    func code(_ file: [String: Any]?) -> String? { (file?["error"] as? [String: Any])?["code"] as? String }
    func message(_ file: [String: Any]?) -> String { (file?["error"] as? [String: Any])?["message"] as? String ?? "" }
    func warnings(_ file: [String: Any]?) -> [String: String] {
        Dictionary((file?["warnings"] as? [[String: Any]] ?? []).map { ($0["code"] as? String ?? "", $0["message"] as? String ?? "") },
                   uniquingKeysWith: { a, _ in a })
    }
    func callLogIDs(_ file: [String: Any]?) -> [String] {
        (file?["parts"] as? [[String: Any]] ?? []).compactMap { $0["call_log_id"] as? String }
    }

    func liveCallLogs(_ sandbox: SandboxProcess) async throws -> [[String: Any]] {
        (try await sandbox.state()["call_logs"] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }
    }

    func write(_ text: String, to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    // MARK: - Item 2: a recording still being written

    /// A recorder has written the first 4 s of a 20 s call, its WAV header still saying the data
    /// size is 0. The run does not take it (today it uploaded the 4 s, and the next run the whole
    /// 20 s as a second call): it waits (`not_settled`, exit 3, the time to run again), and the
    /// run after the recorder finished takes it once, whole. The file's times are "now" because it
    /// was just written; `--settle 3600` makes that certain on a loaded machine, and the later
    /// run's `--settle 0` stands for the time that passed.
    @Test(.timeLimit(.minutes(5)))
    func aRecordingStillBeingWrittenWaitsAndTheNextRunUploadsItOnceWhole() async throws {
        try await withSandboxAndDirectory { dir, sandbox, env in
            try SyntheticAudio.write(.speech(), seconds: 20, to: "\(dir)/whole.wav")
            let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/whole.wav"))
            write(RecorderFixtures.sidecar(to: "+15550100", subject: "Recorded"), to: "\(dir)/in/call.json")
            try RecorderFixtures.unfinishedWAV(whole, fraction: 0.2).write(to: URL(fileURLWithPath: "\(dir)/in/call.wav"))

            let upload = ["upload", "\(dir)/in", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, upload + ["--settle", "3600"], environment: env)
            #expect(first.status == 3, "nothing failed, one recording waits: \(first.stderr.suffix(2000))")
            let file = try files(first)["call.wav"]
            #expect(file?["status"] as? String == "waiting")
            #expect(code(file) == "not_settled")
            #expect(message(file).contains("call.wav: still being written") && message(file).contains("run again after"), "\(message(file))")
            #expect((try json(first)["summary"] as? [String: Any])?["resume_after"] is String)
            #expect(try await liveCallLogs(sandbox).isEmpty, "a recording still being written was uploaded")
            // enqueue and transcode take the same view, with the same exit code.
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--state", "\(dir)/e", "--settle", "3600", "--json"], environment: env)
            let enqueued = try files(enqueue)["call.wav"]
            #expect(enqueue.status == 3 && code(enqueued) == "not_settled", "\(enqueue.stderr)")
            let transcode = try await runProcess(callrec, ["transcode", "\(dir)/in", "--out", "\(dir)/out", "--settle", "3600", "--json"], environment: env)
            let transcoded = try files(transcode)["call.wav"]
            #expect(transcode.status == 3 && code(transcoded) == "not_settled", "\(transcode.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/call.mp3"))

            // The recorder finishes the file; the next run takes it, once, whole.
            try whole.write(to: URL(fileURLWithPath: "\(dir)/in/call.wav"))
            let second = try await runProcess(callrec, upload + ["--settle", "0"], environment: env)
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            let uploaded = try files(second)["call.wav"]
            #expect(uploaded?["status"] as? String == "ok")
            let logs = try await liveCallLogs(sandbox)
            #expect(logs.count == 1, "\(logs.map { ($0["id"] ?? "", $0["duration"] ?? "") })")
            #expect(logs.first?["duration"] as? String == "20")
            #expect(callLogIDs(uploaded) == logs.compactMap { $0["id"] as? String })
            let third = try await runProcess(callrec, upload + ["--settle", "0"], environment: env)
            #expect(third.status == 0)
            #expect((try json(third)["summary"] as? [String: Any])?["api_requests"] as? Int == 0)
        }
    }

    /// A file replaced with other bytes after its upload: reported `source_changed` (failed, with
    /// the path, the old key and when it was uploaded, and what to do), never sent as a second
    /// call. Once the old version is deleted (`delete --recording PATH`), the next run uploads the
    /// new bytes.
    @Test(.timeLimit(.minutes(5)))
    func aFileReplacedAfterItsUploadIsSourceChangedUntilTheOldVersionIsDeleted() async throws {
        try await withSandboxAndDirectory { dir, sandbox, env in
            try SyntheticAudio.write(.speech(), seconds: 6, to: "\(dir)/in/call.wav")
            write(RecorderFixtures.sidecar(to: "+15550101", subject: "Replaced"), to: "\(dir)/in/call.json")
            let upload = ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, upload, environment: env)
            #expect(first.status == 0, "\(first.stderr.suffix(2000)) \(String(decoding: first.stdout, as: UTF8.self))")
            let oldKey = try #require(try files(first)["call.wav"]?["key"] as? String)
            let oldLog = try #require(callLogIDs(try files(first)["call.wav"]).first)

            try SyntheticAudio.write(.speech(talk: 3, pause: 1), seconds: 6, to: "\(dir)/in/call.wav")
            let second = try await runProcess(callrec, upload, environment: env)
            #expect(second.status == 1, "\(second.stderr.suffix(2000))")
            let changed = try files(second)["call.wav"]
            #expect(changed?["status"] as? String == "failed")
            #expect(code(changed) == "source_changed")
            let text = message(changed)
            #expect(text.contains("call.wav") && text.contains(oldKey) && text.contains("uploaded it 20"), "\(text)")
            #expect(text.contains("callrec delete --recording \(dir)/in/call.wav") || text.contains("callrec delete --recording /"), "\(text)")
            #expect(try await liveCallLogs(sandbox).compactMap { $0["id"] as? String } == [oldLog], "the new bytes were sent as a second call")

            // The user deletes what was sent from that path; then the new bytes go up.
            let delete = try await runProcess(callrec, ["delete", "--recording", "\(dir)/in/call.wav", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(delete.status == 0, "\(delete.stderr.suffix(2000))")
            let third = try await runProcess(callrec, upload, environment: env)
            #expect(third.status == 0, "\(third.stderr.suffix(2000))")
            let new = try files(third)["call.wav"]
            #expect(new?["status"] as? String == "ok")
            #expect(new?["key"] as? String != oldKey)
            let logs = try await liveCallLogs(sandbox).compactMap { $0["id"] as? String }
            #expect(logs.count == 1 && logs != [oldLog] && logs == callLogIDs(new), "\(logs)")
        }
    }

    // MARK: - Item 3: the same audio under two names, one sidecar for two files

    /// One rule in `upload`, `enqueue` and `transcode`: the same bytes with a sidecar for the same
    /// call are one recording (the copy `skipped`, `duplicate_of`); with sidecars for different
    /// calls, neither is taken (`duplicate_audio`, naming both files and sidecars); two recordings
    /// sharing a stem, and so one sidecar, both fail (`shared_stem`). A later run meets a copy of
    /// an uploaded recording the same way, against the call the ledger holds.
    @Test(.timeLimit(.minutes(5)))
    func theSameAudioUnderTwoNamesAndOneSidecarForTwoFilesFollowOneRuleInEveryCommand() async throws {
        try await withSandboxAndDirectory { dir, sandbox, env in
            let fm = FileManager.default
            try SyntheticAudio.write(.speech(), seconds: 5, to: "\(dir)/in/a.wav")
            write(RecorderFixtures.sidecar(to: "+15550102", subject: "A"), to: "\(dir)/in/a.json")
            try fm.copyItem(atPath: "\(dir)/in/a.wav", toPath: "\(dir)/in/b.wav")
            try fm.copyItem(atPath: "\(dir)/in/a.json", toPath: "\(dir)/in/b.json")
            try SyntheticAudio.write(.speech(talk: 2, pause: 1), seconds: 5, to: "\(dir)/in/c.wav")
            write(RecorderFixtures.sidecar(to: "+15550103", subject: "C"), to: "\(dir)/in/c.json")
            try fm.copyItem(atPath: "\(dir)/in/c.wav", toPath: "\(dir)/in/d.wav")
            write(RecorderFixtures.sidecar(to: "+15550104", subject: "D"), to: "\(dir)/in/d.json")
            try SyntheticAudio.write(.speech(talk: 4, pause: 2), seconds: 5, to: "\(dir)/in/x.wav")
            try SyntheticAudio.write(.speech(talk: 5, pause: 2), seconds: 5, format: .aiffPCM16, to: "\(dir)/in/x.aif")
            write(RecorderFixtures.sidecar(to: "+15550105", subject: "X"), to: "\(dir)/in/x.json")

            let upload = ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, upload, environment: env)
            #expect(first.status == 1, "\(first.stderr.suffix(2000))")
            var byPath = try files(first)
            #expect(byPath["a.wav"]?["status"] as? String == "ok")
            let logs = try await liveCallLogs(sandbox)
            #expect(logs.count == 1 && logs.first?["subject"] as? String == "A", "\(logs.map { $0["subject"] ?? "" })")
            #expect(callLogIDs(byPath["a.wav"]) == logs.compactMap { $0["id"] as? String })

            /// The verdicts every command gives (a.wav is the one recording taken).
            func checkVerdicts(_ byPath: [String: [String: Any]], _ command: String) {
                #expect(byPath["b.wav"]?["status"] as? String == "skipped", "\(command): \(String(describing: byPath["b.wav"]))")
                #expect(warnings(byPath["b.wav"])["duplicate_of"]?.contains("a.wav") == true, "\(command)")
                #expect(callLogIDs(byPath["b.wav"]).isEmpty, "\(command): b.wav reported with a.wav's call log")
                for (name, other) in [("c", "d"), ("d", "c")] {
                    let file = byPath["\(name).wav"]
                    #expect(file?["status"] as? String == "failed" && code(file) == "duplicate_audio", "\(command): \(name).wav \(String(describing: file))")
                    for word in ["\(name).wav", "\(name).json", "\(other).wav", "\(other).json"] {
                        #expect(message(file).contains(word), "\(command): \(name).wav: \(message(file))")
                    }
                }
                for (name, other) in [("x.wav", "x.aif"), ("x.aif", "x.wav")] {
                    #expect(code(byPath[name]) == "shared_stem", "\(command): \(name)")
                    #expect(message(byPath[name]) == "\(name): \(other) has the same name in the same folder: one sidecar x.json would describe both, and both would become x.mp3; rename one (with its own sidecar)", "\(command): \(message(byPath[name]))")
                }
            }
            checkVerdicts(byPath, "upload")
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--settle", "0", "--state", "\(dir)/e", "--json"], environment: env)
            #expect(enqueue.status == 1)
            checkVerdicts(try files(enqueue), "enqueue")
            #expect(try files(enqueue)["a.wav"]?["status"] as? String == "ok")
            let transcode = try await runProcess(callrec, ["transcode", "\(dir)/in", "--out", "\(dir)/out", "--settle", "0", "--json"], environment: env)
            #expect(transcode.status == 1)
            checkVerdicts(try files(transcode), "transcode")
            #expect(try fm.contentsOfDirectory(atPath: "\(dir)/out").filter { $0.hasSuffix(".mp3") } == ["a.mp3"])

            // Later copies of the uploaded recording: one for the same call (the same facts,
            // written differently), one for another call.
            try fm.copyItem(atPath: "\(dir)/in/a.wav", toPath: "\(dir)/in/e.wav")
            write(RecorderFixtures.sidecar(to: "+15550106", subject: "E"), to: "\(dir)/in/e.json")
            try fm.copyItem(atPath: "\(dir)/in/a.wav", toPath: "\(dir)/in/f.wav")
            write(#"{ "call_log" : { "subject": "A", "start_time": "2026-11-22 09:00:00", "to_phone_number": "+15550102", "outcome": "connected" } }"#, to: "\(dir)/in/f.json")
            let second = try await runProcess(callrec, upload, environment: env)
            #expect(second.status == 1)
            byPath = try files(second)
            let firstA = try files(first)["a.wav"]
            #expect(byPath["a.wav"]?["status"] as? String == "skipped" && callLogIDs(byPath["a.wav"]) == callLogIDs(firstA))
            #expect(byPath["f.wav"]?["status"] as? String == "skipped" && warnings(byPath["f.wav"])["duplicate_of"]?.contains("a.wav") == true,
                    "\(String(describing: byPath["f.wav"]))")
            #expect(code(byPath["e.wav"]) == "duplicate_audio" && message(byPath["e.wav"]).contains("a.wav") && message(byPath["e.wav"]).contains("uploaded"),
                    "\(message(byPath["e.wav"]))")
            #expect(try await liveCallLogs(sandbox).count == 1)
        }
    }

    // MARK: - Item 5: a mended sidecar is read again

    /// Recordings that failed after registration — a `call_log_id` that does not exist (404), an
    /// id Pipedrive refuses (400) — are taken again once their sidecars are mended: by a re-run
    /// (it reads a sidecar that changed), and by `queue retry` (the retried job reads it). A
    /// sidecar broken meanwhile fails the retried job with `invalid_sidecar`. The 404 says the
    /// call log does not exist, not that it was deleted in Pipedrive.
    @Test(.timeLimit(.minutes(5)))
    func aMendedSidecarIsReadAgainByAReRunAndByARetriedJob() async throws {
        try await withSandboxAndDirectory { dir, sandbox, env in
            try await sandbox.seedCallLog("CAseeded0001")
            try await sandbox.seedCallLog("CAseeded0002")
            for (index, name) in ["gone", "refused", "later", "broken"].enumerated() {
                try SyntheticAudio.write(.speech(), seconds: 4 + Double(index) / 10, to: "\(dir)/in/\(name).wav")
            }
            write(#"{"call_log_id": "CAmissing0001"}"#, to: "\(dir)/in/gone.json")
            write(RecorderFixtures.sidecar(to: "+15550107", subject: "Refused", extra: #", "person_id": 9999999999999"#), to: "\(dir)/in/refused.json")
            write(#"{"call_log_id": "CAmissing0002"}"#, to: "\(dir)/in/later.json")
            write(#"{"call_log_id": "CAmissing0003"}"#, to: "\(dir)/in/broken.json")

            let upload = ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, upload, environment: env)
            #expect(first.status == 1)
            var byPath = try files(first)
            #expect(code(byPath["gone.wav"]) == "call_log_not_found", "\(String(describing: byPath["gone.wav"]))")
            let gone = message(byPath["gone.wav"])
            #expect(gone.contains("CAmissing0001") && gone.contains("does not exist") && gone.contains("gone.json") && !gone.contains("deleted in Pipedrive"), "\(gone)")
            #expect(code(byPath["refused.wav"]) == "api_refused", "\(String(describing: byPath["refused.wav"]))")

            // Mended: gone.json names a call log that exists, refused.json drops the refused id.
            write(#"{"call_log_id": "CAseeded0001"}"#, to: "\(dir)/in/gone.json")
            write(RecorderFixtures.sidecar(to: "+15550107", subject: "Refused"), to: "\(dir)/in/refused.json")
            let second = try await runProcess(callrec, upload, environment: env)
            #expect(second.status == 1, "later and broken still fail: \(second.stderr.suffix(2000))")
            byPath = try files(second)
            #expect(byPath["gone.wav"]?["status"] as? String == "ok" && callLogIDs(byPath["gone.wav"]) == ["CAseeded0001"], "\(String(describing: byPath["gone.wav"]))")
            #expect(byPath["refused.wav"]?["status"] as? String == "ok", "\(String(describing: byPath["refused.wav"]))")
            #expect(warnings(byPath["refused.wav"])["sidecar_reread"] != nil)
            let refusedLogs = try await liveCallLogs(sandbox).filter { $0["subject"] as? String == "Refused" }
            #expect(refusedLogs.count == 1 && callLogIDs(byPath["refused.wav"]) == refusedLogs.compactMap { $0["id"] as? String })
            #expect(code(byPath["later.wav"]) == "call_log_not_found", "unchanged sidecar: still failed")

            // Mended after the run, then retried: the worker's job reads the sidecar again.
            write(#"{"call_log_id": "CAseeded0002"}"#, to: "\(dir)/in/later.json")
            write(#"{"call_log_id": true}"#, to: "\(dir)/in/broken.json")
            // Written a while ago (a sidecar written to just now may be caught half-written, and
            // is looked at again shortly rather than called broken).
            for name in ["later", "broken"] {
                try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-60)], ofItemAtPath: "\(dir)/in/\(name).json")
            }
            let retry = try await runProcess(callrec, ["queue", "retry", "--all-discarded", "--state", "\(dir)/state"], environment: env)
            #expect(retry.status == 0, "\(retry.stderr)")
            let worker = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--log-level", "error"], environment: env)
            #expect(worker.status == 1, "broken.wav's job is discarded: \(worker.stderr.suffix(2000))")
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            let recordings = Dictionary(uniqueKeysWithValues: try await store.recordings(RecordingQuery()).map { (($0.path as NSString).lastPathComponent, $0) })
            #expect(recordings["later.wav"]?.state == .uploaded, "\(String(describing: recordings["later.wav"]))")
            #expect(try await store.parts(key: try #require(recordings["later.wav"]?.key)).map(\.callLogID) == ["CAseeded0002"])
            #expect(recordings["broken.wav"]?.state == .failed && recordings["broken.wav"]?.errorCode == "invalid_sidecar")
            #expect(recordings["broken.wav"]?.errorMessage?.contains("broken.json: call_log_id") == true, "\(String(describing: recordings["broken.wav"]?.errorMessage))")
            try await store.close()
            let logs = try await liveCallLogs(sandbox)
            #expect(logs.filter { ($0["recording"] as? [String: Any]) != nil }.compactMap { $0["id"] as? String }.sorted()
                == (["CAseeded0001", "CAseeded0002"] + refusedLogs.compactMap { $0["id"] as? String }).sorted())

            // A sidecar changed after the upload: nothing is sent again, and the run says so.
            write(#"{"call_log_id": "CAseeded0002"}"#, to: "\(dir)/in/gone.json")
            let third = try await runProcess(callrec, upload, environment: env)
            byPath = try files(third)
            #expect(byPath["gone.wav"]?["status"] as? String == "skipped" && callLogIDs(byPath["gone.wav"]) == ["CAseeded0001"])
            #expect(warnings(byPath["gone.wav"])["sidecar_changed"]?.contains("callrec does not edit call logs") == true, "\(String(describing: byPath["gone.wav"]))")
            #expect((try json(third)["summary"] as? [String: Any])?["api_requests"] as? Int == 0)
        }
    }
}

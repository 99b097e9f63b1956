import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// What a newcomer sees of `upload --sandbox`, `sandbox` and the audio commands: only callrec's
/// own lines on stderr, a short view of the sandbox, and one sandbox per state directory.
@Suite struct SandboxCLITests {
    let callrec = callrecExecutable()

    /// An environment without the developer's API settings or database.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for name in ["CALLREC_DATABASE", "PIPEDRIVE_API_TOKEN", "PIPEDRIVE_API_URL", "PIPEDRIVE_BURST", "PIPEDRIVE_DAILY_TOKENS",
                     "CALLREC_SANDBOX_FAULTS"] {
            environment[name] = nil
        }
        return environment.merging(extra) { $1 }
    }

    /// The stderr lines callrec did not write: its log records (`<time> <level> callrec : …`),
    /// its messages (`sandbox: …`, `failed …`, `waiting …`, `stopped: …`) and blank lines are its
    /// own; anything else came from a library behind its back.
    static func foreignLines(_ stderr: String) -> [String] {
        let own = [#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4} (trace|debug|info|notice|warning|error|critical) callrec"#,
                   #"^(sandbox: |failed |waiting |stopped: )"#]
        return stderr.split(separator: "\n").map(String.init).filter { line in
            !line.trimmingCharacters(in: .whitespaces).isEmpty && !own.contains { line.range(of: $0, options: .regularExpression) != nil }
        }
    }

    /// A 20 s call transcoded to MP3 by callrec itself (so it carries the LAME/Xing tag that
    /// promises the whole length), then cut in the middle of a frame at about half.
    func cutMP3(in dir: String) async throws -> String {
        try FileManager.default.createDirectory(atPath: "\(dir)/src", withIntermediateDirectories: true)
        try SyntheticAudio.write(.speech(), seconds: 20, format: .wavPCM16, to: "\(dir)/src/call.wav")
        let made = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/src", "--out", "\(dir)/mp3", "--log-level", "error"], environment: Self.environment())
        try #require(made.status == 0, "\(made.stderr)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/mp3/call.mp3"))
        try FileManager.default.createDirectory(atPath: "\(dir)/cut", withIntermediateDirectories: true)
        let path = "\(dir)/cut/call.mp3"
        try whole.prefix(whole.count / 2 + 37).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// libmpg123 (inside libsndfile) wrote "Warning: Xing stream size off by more than 1%…" and
    /// the like straight to stderr when callrec decoded a cut MP3; now only callrec speaks there.
    @Test func aCutMP3GivesOnlyCallrecsOwnLinesOnStderr() async throws {
        try await withTemporaryDirectory { dir in
            let cut = try await cutMP3(in: dir)
            let environment = Self.environment()
            let probe = try await runProcess(callrec, ["probe", cut], environment: environment)
            #expect(probe.status == 0, "\(probe.stderr)")
            #expect(String(decoding: probe.stdout, as: UTF8.self).contains("MPEG"))
            let probeJSON = try await runProcess(callrec, ["probe", cut, "--json", "--log-level", "trace"], environment: environment)
            #expect(probeJSON.status == 0)
            _ = FileManager.default.createFile(atPath: "\(dir)/cut/call.json", contents: Data(#"{"call_log": {"outcome": "connected", "to_phone_number": "+15551230000", "start_time": "2026-11-20 10:00:00"}}"#.utf8))
            let transcode = try await runProcess(callrec, ["transcode", "--settle", "0", "\(dir)/cut", "--out", "\(dir)/out", "--json"], environment: environment)
            #expect(transcode.status == 0, "\(transcode.stderr)")
            for (name, result) in [("probe", probe), ("probe --json", probeJSON), ("transcode", transcode)] {
                #expect(Self.foreignLines(result.stderr).isEmpty, "\(name) let a library write: \(Self.foreignLines(result.stderr))")
            }
        }
    }

    /// `upload --sandbox` (the demo) printed that warning once per upload: the sandbox checked
    /// each upload by decoding its first 16 KiB with callrec's decoder. Its own frame-header check
    /// says nothing, and neither does anything else.
    @Test func aSandboxUploadGivesOnlyCallrecsOwnLinesOnStderr() async throws {
        try await withTemporaryDirectory { dir in
            let result = try await runProcess(callrec, ["upload", "--settle", "0", repositoryRoot() + "/testdata/calls", "--sandbox", "--state", "\(dir)/state"],
                                        environment: Self.environment())
            #expect(result.status == 0, "\(result.stderr)")
            #expect(Self.foreignLines(result.stderr).isEmpty, "\(Self.foreignLines(result.stderr))")
        }
    }

    /// A `--sandbox` run over a sandbox that holds many call logs printed every one of them
    /// (5,000 lines at 5,000 calls). Now: a summary, the newest ten and where to see them all,
    /// and the run's own one-line summary last, which is what the demo's second run shows
    /// (0 API requests).
    @Test(.timeLimit(.minutes(3)))
    func aSandboxRunShowsASummaryAndTheNewestCallLogsThenItsOwnSummary() async throws {
        try await withTemporaryDirectory { dir in
            let environment = Self.environment()
            // 25 call logs made before, in the sandbox of this state.
            let sandbox = try await SandboxProcess.start(callrec, dir: "\(dir)/state", environment: environment)
            for i in 0..<25 { try await sandbox.seedCallLog("CAbefore\(i)") }
            sandbox.terminate()
            #expect(try await waitForExit(sandbox.process, upTo: 30))

            let upload = ["upload", "--settle", "0", repositoryRoot() + "/testdata/calls", "--sandbox", "--state", "\(dir)/state"]
            let first = try await runProcess(callrec, upload, environment: environment)
            #expect(first.status == 0, "\(first.stderr)")
            let lines = String(decoding: first.stdout, as: UTF8.self).split(separator: "\n").map(String.init)
            let rows = lines.filter { $0.hasPrefix("  CA") }
            #expect(rows.count == 10, "\(lines)")
            // The newest: this run's eight parts, each with the spool's bytes, then two made before.
            #expect(rows.filter { $0.hasSuffix("= spool") }.count == 8, "\(rows)")
            #expect(rows.filter { $0.contains("CAbefore") }.count == 2, "\(rows)")
            #expect(lines.contains { $0.contains("sandbox-state.json") }, "where to see them all: \(lines)")
            #expect(lines.count <= 16, "\(lines)")
            let summary = try #require(lines.last)
            #expect(summary.range(of: #"^8 uploaded, 0 done before, 0 failed; .* API requests"#, options: .regularExpression) != nil, "\(lines)")

            let again = try await runProcess(callrec, upload + ["--log-level", "warning"], environment: environment)
            #expect(again.status == 0, "\(again.stderr)")
            let last = String(decoding: again.stdout, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.range(of: #"^0 uploaded, 8 done before, 0 failed; .*; 0 API requests, 0 Pipedrive tokens$"#, options: .regularExpression) != nil,
                    "\(String(decoding: again.stdout, as: UTF8.self))")
        }
    }

    /// Polls the sandbox state file of `state` until it lists a live call log, then starts the
    /// next process at once: on a thread of its own, poll and start both, because the suite's
    /// CPU-bound tests can hold every cooperative thread for longer than the first run lasts (a
    /// task that polled saw the run end before it looked, twice in CI).
    static func startOnceACallLog(state: String, while process: ChildProcess, log: String? = nil,
                                  _ start: @escaping @Sendable () throws -> ChildProcess) async throws -> ChildProcess {
        let outcome: Result<ChildProcess, TestAudioError> = await withCheckedContinuation { done in
            Thread {
                let deadline = ContinuousClock.now + .seconds(120)
                func made() -> Int {
                    (FileManager.default.contents(atPath: "\(state)/sandbox/sandbox-state.json")
                        .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }).map { liveIDs("call_logs", $0).count } ?? 0
                }
                while process.isRunning, ContinuousClock.now < deadline {
                    if made() > 0 {
                        do { done.resume(returning: .success(try start())) } catch {
                            done.resume(returning: .failure(TestAudioError("cannot start the next process: \(error)")))
                        }
                        return
                    }
                    usleep(5_000)
                }
                let tail = log.flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }.map { String($0.suffix(3000)) } ?? ""
                let how = process.isRunning ? "still running after 120 s" : "exited with \(process.terminationStatus)"
                done.resume(returning: .failure(TestAudioError("the first run made no call log its poller saw (\(how); it made \(made())): \(tail)")))
            }.start()
        }
        return try outcome.get()
    }

    /// The call logs the ledger of `state` attached parts to, and the live ones its sandbox holds.
    static func ledgerAndSandbox(state: String) async throws -> (ledger: Set<String>, sandbox: Set<String>) {
        let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
        var ledger: Set<String> = []
        for recording in try await store.recordings(RecordingQuery(limit: 10_000)) {
            for part in try await store.parts(key: recording.key) { if let id = part.callLogID { ledger.insert(id) } }
        }
        try await store.close()
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(state)/sandbox/sandbox-state.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return (ledger, liveIDs("call_logs", json))
    }

    /// Two `upload --sandbox` runs on one state each started a sandbox on the same snapshot, and
    /// the last one to write it won: call logs the ledger holds were missing from the sandbox
    /// (30 against 17). The second run now uses the sandbox the first one serves, and the first
    /// serves until both ended.
    @Test(.timeLimit(.minutes(6)))
    func twoSandboxUploadsOnOneStateShareOneSandbox() async throws {
        try await withTemporaryDirectory { dir in
            try UploadFixtures.makeDirectory(dir, count: 12, longCalls: 1)
            // Every request is answered 0.6 s late and each run sends two at a time: the first run
            // has some 10 s of work left when the second starts.
            let environment = Self.environment(["CALLREC_SANDBOX_FAULTS": "slow=1,delay=0.6", "PIPEDRIVE_BURST": "500"])
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--sandbox", "--state", "\(dir)/state", "--jobs", "2", "--upload-slots", "2",
                          "--part-max-minutes", "1", "--json", "--log-level", "warning"]
            let first = try startProcess(callrec, upload, environment: environment, log: "\(dir)/first.log")
            let callrec = self.callrec
            let second = try await Self.startOnceACallLog(state: "\(dir)/state", while: first, log: "\(dir)/first.log") {
                try startProcess(callrec, upload, environment: environment, log: "\(dir)/second.log")
            }
            #expect(try await waitForExit(second, upTo: 240))
            #expect(try await waitForExit(first, upTo: 240))
            let secondLog = (try? String(contentsOfFile: "\(dir)/second.log", encoding: .utf8)) ?? ""
            #expect(secondLog.contains("sandbox: using the sandbox process \(first.processIdentifier) serves"), "\(secondLog.suffix(2000))")

            let (ledger, sandbox) = try await Self.ledgerAndSandbox(state: "\(dir)/state")
            #expect(ledger.count >= 12)
            #expect(ledger == sandbox, "ledger \(ledger.count), sandbox \(sandbox.count): \(ledger.subtracting(sandbox).count) missing from the sandbox")
        }
    }

    /// `callrec sandbox --state DIR` on the state a running `upload --sandbox` serves from
    /// started a second sandbox on the same snapshot; now it refuses with exit 2 and says who
    /// serves it.
    @Test(.timeLimit(.minutes(4)))
    func aStandaloneSandboxRefusesAStateInUse() async throws {
        try await withTemporaryDirectory { dir in
            try UploadFixtures.makeDirectory(dir, count: 8, longCalls: 0)
            // Every request is answered 0.5 s late, one at a time: the run lasts some 9 s.
            let environment = Self.environment(["CALLREC_SANDBOX_FAULTS": "slow=1,delay=0.5"])
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--sandbox", "--state", "\(dir)/state", "--jobs", "1", "--upload-slots", "1",
                          "--log-level", "warning"]
            let first = try startProcess(callrec, upload, environment: environment, log: "\(dir)/first.log")
            let callrec = self.callrec
            let standalone = try await Self.startOnceACallLog(state: "\(dir)/state", while: first) {
                try startProcess(callrec, ["sandbox", "--port", "0", "--state", "\(dir)/state/sandbox"], environment: environment,
                                 log: "\(dir)/standalone.log")
            }
            let refused = try await waitForExit(standalone, upTo: 30)
            if !refused {
                standalone.terminate()
                _ = try await waitForExit(standalone, upTo: 30)
            }
            #expect(refused, "a second sandbox served the same state")
            #expect(refused && standalone.terminationStatus == 2)
            let message = (try? String(contentsOfFile: "\(dir)/standalone.log", encoding: .utf8)) ?? ""
            #expect(message.contains("\(dir)/state/sandbox is in use: process \(first.processIdentifier) serves it at http://127.0.0.1:"), "\(message)")
            #expect(try await waitForExit(first, upTo: 120))
            let (ledger, sandbox) = try await Self.ledgerAndSandbox(state: "\(dir)/state")
            #expect(ledger == sandbox)
        }
    }

    /// `callrec sandbox --seed FILE` serves the file's CRM rows over the v2 listings; a file that is
    /// not a seed stops it before it listens, with exit 2 naming the file and the field.
    @Test func sandboxSeedFillsTheCRMAndABadSeedExits2NamingFileAndField() async throws {
        try await withTemporaryDirectory { dir in
            let token = String(repeating: "ab", count: 20)
            let environment = Self.environment(["PIPEDRIVE_API_TOKEN": token])
            let bad = "\(dir)/bad-seed.json"
            try Data(#"{"persons": [{"id": 1, "name": "A", "phones": [{"value": 7}]}]}"#.utf8).write(to: URL(fileURLWithPath: bad))
            for (file, reason) in [(bad, "persons[0].phones[0].value"), ("\(dir)/missing.json", "cannot read")] {
                let log = "\(dir)/refused.log"
                let refused = try startProcess(callrec, ["sandbox", "--port", "0", "--seed", file], environment: environment, log: log)
                let exited = try await waitForExit(refused, upTo: 60)
                if !exited { refused.kill() }
                try #require(exited, "the sandbox started with \(file)")
                let output = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
                #expect(refused.terminationStatus == 2, "\(output)")
                #expect(output.contains(file) && output.contains(reason), "\(output)")
            }

            let good = "\(dir)/seed.json"
            try Data(#"{"persons": [{"id": 7, "name": "Seeded", "phones": ["+49 30 1234567"]}], "deals": [{"id": 3, "title": "T", "person_id": 7}]}"#.utf8)
                .write(to: URL(fileURLWithPath: good))
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment, arguments: ["--seed", good])
            defer { sandbox.terminate() }
            let (status, persons) = try await sandbox.request("GET", "/api/v2/persons", headers: ["x-api-token": token])
            #expect(status == 200)
            let person = try #require((persons["data"] as? [[String: Any]])?.first)
            #expect(person["id"] as? Int == 7)
            #expect((person["phones"] as? [[String: Any]])?.first?["value"] as? String == "+49 30 1234567")
            let (_, deals) = try await sandbox.request("GET", "/api/v2/deals?person_id=7", headers: ["x-api-token": token])
            #expect((deals["data"] as? [[String: Any]])?.count == 1)
        }
    }
}

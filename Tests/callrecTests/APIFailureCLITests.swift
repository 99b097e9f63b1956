import CallTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How API failures end a run of the built `callrec`, against a `callrec sandbox` process or a
/// refused port: a refused credential stops the run with exit 2 and names the variable to fix,
/// settings are checked before any work, an unreachable API stops the run within seconds, and
/// in every case the recordings wait for the next run instead of failing.
@Suite(.serialized) struct APIFailureCLITests {
    let callrec = callrecExecutable()

    static let pipedriveToken = "0123456789abcdef0123456789abcdef01234567"
    static let wrongToken = "fedcba9876543210fedcba9876543210f0e0d0c0"
    static let telnyxKey = "KEYTESTTELNYX0000000000000000000_abc"

    func environment(base: String? = nil) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = Self.pipedriveToken
        environment["TELNYX_API_KEY"] = Self.telnyxKey
        environment["VOIPNOW_ACCESS_TOKEN"] = nil
        environment["PIPEDRIVE_BURST"] = "200"
        if let base {
            environment["PIPEDRIVE_API_URL"] = base + "/v1"
            environment["TELNYX_API_URL"] = base + "/v2"
        }
        return environment
    }

    /// `count` short calls with sidecars under `dir/in` (the first `telnyx` of them name a Telnyx
    /// recording).
    static func recordings(_ dir: String, count: Int, telnyx: String? = nil) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        for i in 0..<count {
            try SyntheticAudio.write(.speech(), seconds: 3 + Double(i) * 0.1, to: "\(dir)/in/call-\(i).wav")
            var sidecar = UploadFixtures.sidecar(index: i)
            if let telnyx, i == 0 { sidecar = sidecar.replacingOccurrences(of: #""telnyx_recording_id": null"#, with: #""telnyx_recording_id": "\#(telnyx)""#) }
            _ = fm.createFile(atPath: "\(dir)/in/call-\(i).json", contents: Data(sidecar.utf8))
        }
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        try json(result.stdout, result.stderr)
    }

    func json(_ stdout: Data, _ stderr: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any], "\(stderr.suffix(2000))")
    }

    func jobs(_ dir: String, _ environment: [String: String]) async throws -> [[String: Any]] {
        let list = try await runProcess(callrec, ["queue", "ls", "--json", "--job-state", "available,running,completed,discarded,cancelled", "--state", "\(dir)/state"],
                                  environment: environment)
        return try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]], "\(list.stderr)")
    }

    /// Runs `arguments` in the background (stdout and stderr into files under `dir`); the
    /// result, or nil (and the process killed) when it did not end within `seconds`.
    func run(_ arguments: [String], environment: [String: String], within seconds: Double, dir: String,
             name: String) async throws -> (status: Int32, stdout: Data, stderr: String)? {
        let out = "\(dir)/\(name).out", err = "\(dir)/\(name).err"
        for path in [out, err] { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let process = try ChildProcess(callrec, arguments, environment: environment, stdout: .append(out), stderr: .append(err))
        guard try await waitForExit(process, upTo: seconds) else {
            kill(process.processIdentifier, SIGKILL)
            _ = try await waitForExit(process, upTo: 10)
            return nil
        }
        return (process.terminationStatus, FileManager.default.contents(atPath: out) ?? Data(),
                String(decoding: FileManager.default.contents(atPath: err) ?? Data(), as: UTF8.self))
    }

    // MARK: - Item 9: a refused credential

    /// `count` recordings and a sandbox; `body` gets the sandbox and an environment pointing at
    /// it with a Pipedrive token it refuses.
    func withRevokedToken(_ dir: String, recordings count: Int, _ body: (SandboxProcess, [String: String]) async throws -> Void) async throws {
        try Self.recordings(dir, count: count)
        let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
        defer { sandbox.terminate() }
        var revoked = environment(base: sandbox.base)
        revoked["PIPEDRIVE_API_TOKEN"] = Self.wrongToken
        try await body(sandbox, revoked)
    }

    /// Nothing failed or was put off: every job is done or available, the uploads with no
    /// attempt used.
    func expectNothingLost(_ dir: String, _ environment: [String: String]) async throws {
        let all = try await jobs(dir, environment)
        let uploads = all.filter { $0["kind"] as? String == "upload" }
        #expect(!uploads.isEmpty && uploads.allSatisfy { $0["state"] as? String == "available" && $0["attempt"] as? Int == 0 }, "\(uploads)")
        #expect(all.allSatisfy { ["available", "completed"].contains($0["state"] as? String) }, "\(all)")
    }

    /// `upload` with a revoked Pipedrive token: exit 2 at once, naming PIPEDRIVE_API_TOKEN (never
    /// its value); nothing failed — the recordings wait, their upload jobs available with no
    /// attempt used; the run with the mended token uploads them all.
    @Test(.timeLimit(.minutes(5)))
    func uploadWithARefusedTokenExitsTwoAndTheRunWithTheMendedTokenUploadsEverything() async throws {
        try await withTemporaryDirectory { dir in try await withRevokedToken(dir, recordings: 3) { sandbox, revoked in
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--json", "--jobs", "2", "--log-level", "error"]

            let first = try await runProcess(callrec, upload, environment: revoked)
            #expect(first.status == 2, "a refused token is a configuration error: \(first.stderr.suffix(2000))")
            #expect(first.stderr.contains("PIPEDRIVE_API_TOKEN"), "\(first.stderr.suffix(2000))")
            #expect(!first.stderr.contains(Self.wrongToken) && !String(decoding: first.stdout, as: UTF8.self).contains(Self.wrongToken))
            let doc = try json(first)
            let summary = try #require(doc["summary"] as? [String: Any])
            #expect(summary["failed"] as? Int == 0 && summary["ok"] as? Int == 0, "\(summary)")
            // Stopped at once: no more than the requests already in flight met the refusal.
            let counters = try #require(try await sandbox.state()["counters"] as? [String: Any])
            #expect((counters["unauthorized"] as? Int ?? 99) <= 4, "\(counters)")
            try await expectNothingLost(dir, revoked)

            let second = try await runProcess(callrec, upload, environment: environment(base: sandbox.base))
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            #expect((try json(second)["summary"] as? [String: Any])?["ok"] as? Int == 3)
            #expect(liveIDs("call_logs", try await sandbox.state()).count == 3)
        } }
    }

    /// `worker --until-idle` meeting a refused token: exit 2 naming the variable, the upload
    /// jobs left available; a worker with the mended token finishes them.
    @Test(.timeLimit(.minutes(5)))
    func workerUntilIdleWithARefusedTokenExitsTwo() async throws {
        try await withTemporaryDirectory { dir in try await withRevokedToken(dir, recordings: 2) { sandbox, revoked in
            let enqueue = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state"], environment: revoked)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = ["worker", "--until-idle", "--concurrency", "1", "--poll-interval", "0.2", "--state", "\(dir)/state", "--log-level", "error"]
            let first = try await runProcess(callrec, worker, environment: revoked)
            #expect(first.status == 2, "\(first.stderr.suffix(2000))")
            #expect(first.stderr.contains("PIPEDRIVE_API_TOKEN"), "\(first.stderr.suffix(2000))")
            try await expectNothingLost(dir, revoked)

            let second = try await runProcess(callrec, worker, environment: environment(base: sandbox.base))
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            #expect(liveIDs("call_logs", try await sandbox.state()).count == 2)
        } }
    }

    /// `delete` whose Telnyx key is refused: exit 2 naming TELNYX_API_KEY; the deletion stays
    /// open (the step pending, not failed) and the same command with the mended key finishes it.
    /// `reconcile` with a refused Pipedrive token: exit 2 naming PIPEDRIVE_API_TOKEN.
    @Test(.timeLimit(.minutes(5)))
    func deleteAndReconcileWithARefusedCredentialExitTwo() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let (status, body) = try await sandbox.request("POST", "/_sandbox/telnyx/recordings", json: "{}")
            #expect(status == 201)
            let telnyx = try #require(body["id"] as? String)
            try Self.recordings(dir, count: 1, telnyx: telnyx)
            let good = environment(base: sandbox.base)
            let upload = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--log-level", "error"], environment: good)
            #expect(upload.status == 0, "\(upload.stderr.suffix(2000))")

            var revokedPipedrive = good
            revokedPipedrive["PIPEDRIVE_API_TOKEN"] = Self.wrongToken
            let reconcile = try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state", "--log-level", "error"], environment: revokedPipedrive)
            #expect(reconcile.status == 2, "\(reconcile.stderr.suffix(2000))")
            #expect(reconcile.stderr.contains("PIPEDRIVE_API_TOKEN"), "\(reconcile.stderr.suffix(2000))")

            var revokedTelnyx = good
            revokedTelnyx["TELNYX_API_KEY"] = "KEYREVOKED000000000000000000000_xyz"
            let delete = ["delete", "--recording", "\(dir)/in/call-0.wav", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, delete, environment: revokedTelnyx)
            #expect(first.status == 2, "\(first.stderr.suffix(2000))")
            #expect(first.stderr.contains("TELNYX_API_KEY"), "\(first.stderr.suffix(2000))")
            #expect(!first.stderr.contains("KEYREVOKED"))
            let steps = try #require((try json(first)["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
            #expect(steps.first { ($0["target"] as? String)?.hasPrefix("telnyx:") == true }?["state"] as? String == "pending", "\(steps)")
            #expect(liveIDs("telnyx_recordings", try await sandbox.state()).contains(telnyx))

            let second = try await runProcess(callrec, delete, environment: good)
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            #expect(try json(second)["status"] as? String == "deleted")
            #expect(!liveIDs("telnyx_recordings", try await sandbox.state()).contains(telnyx))
        }
    }

    /// Pipedrive's abuse block (a 403 with an HTML page) is not a configuration error: all
    /// traffic stops at once for an hour's cool-down, the recordings wait until then, and the
    /// run says so and exits 3.
    @Test(.timeLimit(.minutes(3)))
    func theAbuseBlockStopsAllTrafficAndTheRecordingsWaitAnHour() async throws {
        try await withTemporaryDirectory { dir in
            try Self.recordings(dir, count: 3)
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment(), faults: "abuse=1")
            defer { sandbox.terminate() }
            let result = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--json", "--log-level", "error"],
                                        environment: environment(base: sandbox.base))
            #expect(result.status == 3, "\(result.stderr.suffix(2000))")
            let summary = try #require(try json(result)["summary"] as? [String: Any])
            #expect(summary["waiting"] as? Int == 3 && summary["failed"] as? Int == 0, "\(summary)")
            let resume = (summary["resume_after"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
            #expect(resume.map { (3000...3700).contains($0.timeIntervalSinceNow) } == true, "\(summary)")
            let files = try #require(try json(result)["files"] as? [[String: Any]])
            #expect(files.allSatisfy { (($0["error"] as? [String: Any])?["message"] as? String)?.contains("abuse") == true }, "\(files)")
            // Stopped at once: only the requests in flight met the block.
            #expect((summary["api_requests"] as? Int ?? 99) <= 4, "\(summary)")
        }
    }

    // MARK: - Item 10: settings before any work; an unreachable API

    /// Every `*_API_URL` is checked before any work: exit 2 at once, naming the variable; no
    /// state is created.
    @Test(.timeLimit(.minutes(3)))
    func aBadAPIURLIsRefusedBeforeAnyWork() async throws {
        try await withTemporaryDirectory { dir in
            try Self.recordings(dir, count: 1)
            let cases: [(variable: String, value: String, arguments: [String])] = [
                ("PIPEDRIVE_API_URL", "not a url", ["upload", "\(dir)/in"]),
                ("PIPEDRIVE_API_URL", "https:///v1", ["upload", "\(dir)/in"]),
                ("TELNYX_API_URL", "ftp://api.telnyx.com/v2", ["reconcile"]),
                ("VOIPNOW_API_URL", "voip.example.com", ["delete", "--call-log", "CA1"]),
            ]
            for (i, c) in cases.enumerated() {
                var environment = environment(base: "http://127.0.0.1:\(try refusedLoopbackPort())")
                environment[c.variable] = c.value
                let result = try await run(c.arguments + ["--state", "\(dir)/state-\(i)", "--log-level", "error"], environment: environment,
                                           within: 30, dir: dir, name: "bad-url-\(i)")
                let ended = try #require(result, "\(c.variable)=\(c.value): still running after 30 s")
                #expect(ended.status == 2, "\(c.variable)=\(c.value): \(ended.stderr.suffix(1500))")
                #expect(ended.stderr.contains(c.variable), "\(ended.stderr.suffix(1500))")
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/state-\(i)/callrec.sqlite"), "\(c.variable): work started")
            }
        }
    }

    /// A Pipedrive nothing answers at (a refused port): the run stops within seconds, says it
    /// could not connect, counts no request and no token, and leaves the recordings waiting
    /// (exit 3); the run with the right URL uploads them.
    @Test(.timeLimit(.minutes(5)))
    func anUnreachableAPIStopsTheRunWithinSecondsAndTheRecordingsWait() async throws {
        try await withTemporaryDirectory { dir in
            try Self.recordings(dir, count: 2)
            let port = try refusedLoopbackPort()
            let unreachable = environment(base: "http://127.0.0.1:\(port)")
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--json", "--jobs", "2", "--log-level", "error"]
            let clock = ContinuousClock(), started = clock.now
            let result = try await run(upload, environment: unreachable, within: 90, dir: dir, name: "unreachable")
            let ended = try #require(result, "the run was still retrying after 90 s")
            #expect(clock.now - started < .seconds(60))
            #expect(ended.status == 3, "\(ended.stderr.suffix(2000))")
            #expect(ended.stderr.contains("could not connect") && ended.stderr.contains("PIPEDRIVE_API_URL"), "\(ended.stderr.suffix(2000))")
            let doc = try json(ended.stdout, ended.stderr)
            let summary = try #require(doc["summary"] as? [String: Any])
            #expect(summary["api_requests"] as? Int == 0 && summary["pipedrive_tokens"] as? Int == 0, "\(summary)")
            #expect(summary["waiting"] as? Int == 2 && summary["failed"] as? Int == 0, "\(summary)")

            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let second = try await runProcess(callrec, upload, environment: environment(base: sandbox.base))
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            #expect((try json(second)["summary"] as? [String: Any])?["ok"] as? Int == 2)
        }
    }

    // MARK: - Item 11: the --config file

    /// A `--config` line that is not `KEY=VALUE`, names an unknown key, sets a key twice, or has a
    /// comment after its value: exit 2 naming the file and the line, never the line's text.
    /// Comments, blank lines, `export` and quotes are fine.
    @Test func aConfigFileWithABadLineIsAnErrorNamingTheFileAndTheLine() async throws {
        try await withTemporaryDirectory { dir in
            let secret = "s3cr3t-0123456789abcdef0123456789abcdef"
            let good = "# callrec settings\n\nPIPEDRIVE_API_TOKEN=\"\(secret)\"\nexport PIPEDRIVE_BURST=40\n  # indented comment\nTELNYX_API_KEY='KEYabc'\n"
            let cases: [(text: String, line: Int, reason: String)] = [
                (good + "PIPEDRIVE_API_TOKN=\(secret)\n", 7, "PIPEDRIVE_API_TOKEN"),
                (good + "\(secret)\n", 7, "KEY=VALUE"),
                ("PIPEDRIVE_BURST=40\n" + good, 5, "PIPEDRIVE_BURST"),
                ("PIPEDRIVE_API_URL=https://api.pipedrive.com/v1 # the EU one\n", 1, "space"),
                ("PIPEDRIVE_API_TOKEN=\"\(secret)\n", 1, "quote"),
            ]
            var environment = ProcessInfo.processInfo.environment
            for key in ["PIPEDRIVE_API_TOKEN", "PIPEDRIVE_API_URL", "PIPEDRIVE_BURST", "TELNYX_API_KEY", "TELNYX_API_URL", "CALLREC_DATABASE"] {
                environment[key] = nil
            }
            for (i, c) in cases.enumerated() {
                let file = "\(dir)/callrec-\(i).env"
                try c.text.write(toFile: file, atomically: true, encoding: .utf8)
                let result = try await runProcess(callrec, ["delete", "--call-log", "CA1", "--config", file, "--state", "\(dir)/state"], environment: environment)
                #expect(result.status == 2, "case \(i): \(result.stderr)")
                #expect(result.stderr.contains("\(file):\(c.line):"), "case \(i): \(result.stderr)")
                #expect(result.stderr.contains(c.reason), "case \(i): \(result.stderr)")
                #expect(!result.stderr.contains(secret), "case \(i) printed the secret: \(result.stderr)")
            }
            // The good file is read: the delete runs and finds no such call log (exit 1). (On a
            // state that exists: delete refuses a --state holding no database.)
            try FileManager.default.createDirectory(atPath: "\(dir)/empty", withIntermediateDirectories: true)
            let made = try await runProcess(callrec, ["enqueue", "\(dir)/empty", "--state", "\(dir)/state"], environment: environment)
            #expect(made.status == 0, "\(made.stderr)")
            try good.write(toFile: "\(dir)/good.env", atomically: true, encoding: .utf8)
            let accepted = try await runProcess(callrec, ["delete", "--call-log", "CA1", "--config", "\(dir)/good.env", "--state", "\(dir)/state"], environment: environment)
            #expect(accepted.status == 1, "\(accepted.stderr)")
        }
    }

    // MARK: - Item 18: a worker without credentials

    /// `worker --until-idle` without PIPEDRIVE_API_TOKEN runs the transcodes, then says the
    /// uploads wait for PIPEDRIVE_API_TOKEN and exits 2; with `--upload-slots 0` (uploads left
    /// to other workers on purpose) it exits 0; a worker with the token uploads them.
    @Test(.timeLimit(.minutes(5)))
    func workerUntilIdleWithUploadsDueAndNoTokenSaysSoAndExitsTwo() async throws {
        try await withTemporaryDirectory { dir in
            try Self.recordings(dir, count: 2)
            var bare = environment()
            bare["PIPEDRIVE_API_TOKEN"] = nil
            bare["TELNYX_API_KEY"] = nil
            let enqueue = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state"], environment: bare)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = ["worker", "--until-idle", "--concurrency", "1", "--poll-interval", "0.2", "--state", "\(dir)/state", "--log-level", "error"]
            let first = try await runProcess(callrec, worker, environment: bare)
            #expect(first.status == 2, "\(first.stderr.suffix(2000))")
            #expect(first.stderr.contains("PIPEDRIVE_API_TOKEN") && first.stderr.contains("upload"), "\(first.stderr.suffix(2000))")
            let all = try await jobs(dir, bare)
            #expect(all.filter { $0["kind"] as? String == "transcode" }.allSatisfy { $0["state"] as? String == "completed" }, "\(all)")
            #expect(all.filter { $0["kind"] as? String == "upload" && $0["state"] as? String == "available" }.count == 2, "\(all)")

            let onPurpose = try await runProcess(callrec, worker + ["--upload-slots", "0"], environment: bare)
            #expect(onPurpose.status == 0, "\(onPurpose.stderr.suffix(2000))")

            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let second = try await runProcess(callrec, worker, environment: environment(base: sandbox.base))
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            #expect(liveIDs("call_logs", try await sandbox.state()).count == 2)
        }
    }
}

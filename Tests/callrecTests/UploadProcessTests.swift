import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallTesting
import Crypto
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `callrec upload` and `callrec worker` as real processes against a `callrec sandbox` process:
/// `kill -9` at seeded random points of the work, re-runs, and the exactly-once result in the sandbox.
@Suite(.serialized) struct UploadProcessTests {
    let callrec = callrecExecutable()

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    /// Every uploaded recording's parts are attached exactly once (one live call log per
    /// marker), with the spool's bytes; nothing is left half-done.
    func checkExactlyOnce(_ sandbox: SandboxProcess, store: any CallStore, expectedOK: Int) async throws {
        let state = try await sandbox.state()
        let logs = (state["call_logs"] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }
        var byMarker: [String: [[String: Any]]] = [:]
        for log in logs {
            guard let note = log["note"] as? String, let range = note.range(of: #"callrec:[0-9a-f]+:p[0-9]+"#, options: .regularExpression) else { continue }
            byMarker[String(note[range]), default: []].append(log)
        }
        let recordings = try await store.recordings(RecordingQuery(limit: 10_000))
        for recording in recordings where recording.state != .uploaded && recording.state != .failed {
            let jobs = try await store.jobs(JobQuery(limit: 10_000)).filter { $0.args.contains(recording.key) }
            print("UNFINISHED \(recording.path) \(recording.state): jobs \(jobs.map { "\($0.id) \($0.kind) \($0.state) attempt \($0.attempt) rescues \($0.rescueCount) \($0.errors.map { "\($0.kind): \($0.error)" })" }); parts \(try await store.parts(key: recording.key).map { "\($0.index) \($0.state) \($0.callLogID ?? "-")" }); audit \(try await store.audit(key: recording.key, limit: 50).map { "\($0.action) \($0.target ?? "") \($0.detail ?? "")" })")
        }
        #expect(recordings.filter { $0.state == .uploaded }.count == expectedOK)
        #expect(recordings.allSatisfy { $0.state == .uploaded || $0.state == .failed }, "half-done: \(recordings.filter { $0.state != .uploaded && $0.state != .failed }.map(\.path))")
        for recording in recordings where recording.state == .uploaded {
            for part in try await store.parts(key: recording.key) {
                let id = try #require(part.callLogID)
                if !recording.path.hasSuffix("attached.wav") {
                    let marker = "callrec:\(recording.key.prefix(32)):p\(part.index)"
                    #expect(byMarker[marker]?.count == 1, "\(recording.path) part \(part.index): \(byMarker[marker]?.count ?? 0) call logs carry its marker")
                }
                let log = try #require(logs.first { $0["id"] as? String == id })
                let uploaded = (log["recording"] as? [String: Any])?["sha256"] as? String
                #expect(uploaded == (try Self.sha256(part.spoolPath)), "\(recording.path) part \(part.index)")
            }
        }
        // Call logs that carry a marker but belong to no recording's part would be duplicates.
        let known = Set(try await recordings.asyncFlatMap { try await store.parts(key: $0.key).compactMap(\.callLogID) })
        let strays = logs.filter { ($0["note"] as? String)?.contains("callrec:") == true && !known.contains($0["id"] as? String ?? "") }
        #expect(strays.isEmpty, "call logs nobody owns: \(strays.map { $0["id"] ?? "" })")
    }

    @Test(.timeLimit(.minutes(10)))
    func killNineUploadAtRandomMomentsThenRerunGivesTheSameExactlyOnceResult() async throws {
        try await withTemporaryDirectory { dir in
            let expected = try UploadFixtures.makeDirectory(dir, count: 24)
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
            environment["PIPEDRIVE_BURST"] = "200"
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment)
            let base = sandbox.base
            defer { sandbox.terminate() }
            environment["PIPEDRIVE_API_URL"] = base + "/v1"
            try await sandbox.seedCallLog(UploadFixtures.existingCallLog)
            let upload = ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--jobs", "2", "--log-level", "warning", "--part-max-minutes", "1"]

            // Each run is killed after a seeded random number of further requests the sandbox
            // saw (an event, not a moment: a loaded machine kills at the same point of the work),
            // or ends first when fewer are left. The first run is killed mid-way for certain:
            // after a few requests, with most of the batch still to go.
            var random = TestSeed("killNineUploadAtRandomMomentsThenRerunGivesTheSameExactlyOnceResult")
            var kills = 0
            for round in 0..<10 {
                let before = try await sandbox.requestCount()
                let after = round == 0 ? Int.random(in: 3...12, using: &random) : Int.random(in: 1...40, using: &random)
                let process = try startProcess(callrec, upload, environment: environment, log: "\(dir)/upload-\(round).log")
                if let at = await sandbox.kill(process, atRequest: before + after) {
                    kills += 1
                    print("run \(round): killed after request \(at - before) of its own (aimed at \(after))")
                } else if round == 0 {
                    let log = String(decoding: FileManager.default.contents(atPath: "\(dir)/upload-0.log") ?? Data(), as: UTF8.self)
                    Issue.record("the first run ended (status \(process.terminationStatus)) before it could be killed: \(log.suffix(3000))")
                }
                _ = try await waitForExit(process, upTo: 60)
            }
            let final = try await runProcess(callrec, upload + ["--json"], environment: environment)
            #expect(final.status == 1, "bad inputs fail: exit 1 (\(final.stderr.suffix(2000)))")
            let doc = try #require(try JSONSerialization.jsonObject(with: final.stdout) as? [String: Any])
            let files = try #require(doc["files"] as? [[String: Any]])
            for (name, code) in UploadFixtures.failing {
                let file = files.first { ($0["path"] as? String)?.hasSuffix(name) == true }
                #expect((file?["error"] as? [String: Any])?["code"] as? String == code, "\(name)")
            }
            let okOrDone = files.filter { ["ok", "skipped"].contains($0["status"] as? String) }
            #expect(okOrDone.count == expected, "\(files.filter { !["ok", "skipped"].contains($0["status"] as? String) }.map { ($0["path"] as? String ?? "") + ": " + (($0["error"] as? [String: Any])?["message"] as? String ?? "") })")
            #expect(kills > 0, "no run was killed mid-way")

            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await checkExactlyOnce(sandbox, store: store, expectedOK: expected)
            // And a further re-run sends nothing.
            let again = try await runProcess(callrec, upload + ["--json"], environment: environment)
            let againDoc = try #require(try JSONSerialization.jsonObject(with: again.stdout) as? [String: Any])
            #expect((againDoc["summary"] as? [String: Any])?["api_requests"] as? Int == 0)
            try await store.close()
        }
    }

    /// `callrec upload --sandbox` with a daily budget that runs out: exit 3, every unfinished
    /// recording said to wait until the reset; `queue retry --all-waiting` after a top-up and a
    /// re-run finish the rest (exit 0).
    @Test(.timeLimit(.minutes(5)))
    func aSpentBudgetExitsThreeAndTheRunAfterATopUpFinishes() async throws {
        try await withTemporaryDirectory { dir in
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            environment["PIPEDRIVE_DAILY_TOKENS"] = "70"
            let upload = ["upload", repositoryRoot() + "/testdata/calls", "--sandbox", "--state", "\(dir)/state", "--json", "--log-level", "error"]
            let first = try await runProcess(callrec, upload, environment: environment)
            #expect(first.status == 3, "\(first.stderr.suffix(2000))")
            let doc = try #require(try JSONSerialization.jsonObject(with: first.stdout) as? [String: Any])
            let summary = try #require(doc["summary"] as? [String: Any])
            #expect((summary["waiting"] as? Int ?? 0) > 0 && summary["failed"] as? Int == 0, "\(summary)")
            #expect((summary["resume_after"] as? String)?.hasSuffix("T00:00:00Z") == true, "\(summary)")
            #expect((summary["pipedrive_tokens"] as? Int ?? 99) <= 70)
            let files = try #require(doc["files"] as? [[String: Any]])
            #expect(files.filter { $0["status"] as? String == "waiting" }.allSatisfy { (($0["error"] as? [String: Any])?["code"] as? String) == "budget_spent" })

            let woken = try await runProcess(callrec, ["queue", "retry", "--all-waiting", "--state", "\(dir)/state", "--json"], environment: environment)
            #expect(woken.status == 0, "\(woken.stderr)")
            environment["PIPEDRIVE_DAILY_TOKENS"] = "30000"
            let second = try await runProcess(callrec, upload, environment: environment)
            #expect(second.status == 0, "\(second.stderr.suffix(2000))")
            let again = try #require(try JSONSerialization.jsonObject(with: second.stdout) as? [String: Any])
            let after = try #require(again["summary"] as? [String: Any])
            #expect(after["waiting"] as? Int == 0 && after["failed"] as? Int == 0, "\(after)")
            #expect((after["ok"] as? Int ?? 0) == summary["waiting"] as? Int)
            // Nothing was left to look for: a create the budget refused never went out.
            #expect((after["pipedrive_tokens"] as? Int ?? 999) <= 20 * (summary["waiting"] as? Int ?? 0), "\(after)")
        }
    }

    @Test(.timeLimit(.minutes(10)), .enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func twoWorkersOnPostgresOneKilledUploadEveryPartExactlyOnce() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "upload"))
        try await withTemporaryDirectory { dir in
            let expected = try UploadFixtures.makeDirectory(dir, count: 24)
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = url
            environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
            environment["PIPEDRIVE_BURST"] = "200"
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment, faults: "500=0.03,cut=0.03,lost=0.03")
            let base = sandbox.base
            defer { sandbox.terminate() }
            environment["PIPEDRIVE_API_URL"] = base + "/v1"
            try await sandbox.seedCallLog(UploadFixtures.existingCallLog)
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--settle", "0", "--state", "\(dir)/e"], environment: environment)
            #expect(enqueue.status == 1, "three bad inputs: \(enqueue.stderr)")
            let flags = ["worker", "--concurrency", "1", "--upload-slots", "2", "--until-idle", "--lease-ttl", "20", "--rescue-interval", "1",
                         "--poll-interval", "0.2", "--part-max-minutes", "1", "--log-level", "warning"]
            // One worker is killed after a seeded random number of requests the sandbox saw from
            // both (an event, not a moment), while uploads of both are under way.
            var random = TestSeed("twoWorkersOnPostgresOneKilledUploadEveryPartExactlyOnce")
            let killAt = Int.random(in: 2...40, using: &random)
            let victim = try startProcess(callrec, flags + ["--state", "\(dir)/a"], environment: environment, log: "\(dir)/a.log")
            let survivor = try startProcess(callrec, flags + ["--state", "\(dir)/b"], environment: environment, log: "\(dir)/b.log")
            let killed = await sandbox.kill(victim, atRequest: killAt)
            #expect(killed != nil, "the worker ended before request \(killAt)")
            _ = try await waitForExit(victim, upTo: 10)
            let finished = try await waitForExit(survivor, upTo: 300)
            if !finished { survivor.terminate() }
            #expect(finished)
            let store = try PostgresStore(url: url)
            // The killed worker's transcodes wrote its parts into its own spool; the survivor
            // re-ran them into its own. Both are on this machine, so the checks can read them.
            try await withRunningStore(store) { try await checkExactlyOnce(sandbox, store: $0, expectedOK: expected) }
        }
    }
}

extension Sequence {
    func asyncFlatMap<T>(_ transform: (Element) async throws -> [T]) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out += try await transform(element) }
        return out
    }
}

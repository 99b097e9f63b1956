import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// `callrec queue retry` tells the truth about what it changed, and `callrec spool prune`
/// removes only what is no longer needed — the built binary on a real state.
@Suite(.serialized) struct QueueRetryAndSpoolTests {
    let callrec = callrecExecutable()

    static func environment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["CALLREC_SPOOL_RETENTION"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = nil
        return environment
    }

    static func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "stdout: \(String(decoding: result.stdout, as: UTF8.self)); stderr: \(result.stderr.suffix(3000))")
    }

    /// A transcode that an older callrec failed for good on a full disk (`output_failed`, job
    /// discarded): `queue retry` makes the recording pending again with its job, says so, and the
    /// next worker transcodes it. Ids that do not exist or cannot be retried exit 1, named.
    @Test(.timeLimit(.minutes(3)))
    func queueRetryRearmsTheFailedRecordingAndExitsNonZeroForWhatItCannotRetry() async throws {
        try await withTemporaryDirectory { dir in
            try DiskFullProcessTests.makeCalls("\(dir)/in", count: 2, seconds: 4)
            let environment = Self.environment()
            let state = ["--state", "\(dir)/state"]
            let enqueued = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in"] + state, environment: environment)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")

            // What the older callrec left behind: the job discarded, the recording failed.
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            let claimed = try #require(try await store.claim(queue: "transcode", limit: 1, owner: "old", leaseTTL: .seconds(60)).first)
            let key = try #require(try claimed.arguments(as: [String: String].self)["key"])
            let message = "call-0.wav: cannot write \(dir)/state/spool/\(key)/part-001.mp3: No space left on device"
            #expect(try await store.fail(try #require(claimed.lease), error: "output_failed: \(message)", permanent: true, retryIn: .zero) == .discarded)
            try await store.commit([.setRecordingState(key: key, state: .failed, errorCode: "output_failed", errorMessage: message)])

            let retried = try await runProcess(callrec, ["queue", "retry", "\(claimed.id)", "--json"] + state, environment: environment)
            #expect(retried.status == 0, "\(retried.stderr)")
            let report = try Self.json(retried)
            #expect(report["retried"] as? [Int] == [Int(claimed.id)])
            let rearmed = try #require((report["rearmed"] as? [[String: Any]])?.first, "\(report)")
            #expect(rearmed["key"] as? String == key && rearmed["state"] as? String == "pending", "\(rearmed)")
            #expect((rearmed["error"] as? String)?.hasPrefix("output_failed: ") == true)
            #expect(try await store.recording(key: key)?.state == .pending)
            #expect(try await store.audit(key: key, limit: 10).contains { $0.action == "rearmed" })

            // The retried job does the work: the recording is transcoded now.
            _ = try await runProcess(callrec, ["worker", "--until-idle", "--concurrency", "1", "--upload-slots", "0", "--idle-horizon", "0"] + state,
                               environment: environment)
            let recording = try #require(try await store.recording(key: key))
            #expect(recording.state == .transcoded, "\(recording.state) \(recording.errorCode ?? "")")
            #expect(try await store.parts(key: key).count == 1)
            #expect(try await store.job(id: claimed.id)?.state == .completed)

            // Now it completed: left alone, exit 1; an id that does not exist: named, exit 1.
            let again = try await runProcess(callrec, ["queue", "retry", "\(claimed.id)"] + state, environment: environment)
            #expect(again.status == 1)
            #expect(again.stderr.contains("left alone: job \(claimed.id): it completed"), "\(again.stderr)")
            #expect(String(decoding: again.stdout, as: UTF8.self).contains("nothing changed"))
            let missing = try await runProcess(callrec, ["queue", "retry", "999999", "--json"] + state, environment: environment)
            #expect(missing.status == 1, "\(missing.stderr)")
            #expect(try Self.json(missing)["not_found"] as? [Int] == [999999])
            let none = try await runProcess(callrec, ["queue", "retry", "--all-discarded"] + state, environment: environment)
            #expect(none.status == 1)
            try await store.close()
        }
    }

    /// `spool prune` removes the MP3s of recordings uploaded longer ago than the age — never of
    /// one not uploaded, or with a live job — says what it freed and audits it; the re-run's
    /// report, reconcile and the delete cascade cope with a pruned recording; `upload
    /// --spool-retention` prunes on its own.
    @Test(.timeLimit(.minutes(5)))
    func spoolPruneRemovesOnlyUploadedMP3sPastTheAgeAndEverythingCopes() async throws {
        try await withTemporaryDirectory { dir in
            try DiskFullProcessTests.makeCalls("\(dir)/in", count: 4, seconds: 4)
            // One that fails at upload (a call log that does not exist): its spool stays.
            try SyntheticAudio.write(.speech(), seconds: 4.5, format: .wavULaw, to: "\(dir)/in/nolog.wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/in/nolog.json", contents: Data(#"{"call_log_id": "987654"}"#.utf8))
            let (sandbox, environment) = try await DiskFullProcessTests.sandbox(callrec, dir: dir)
            defer { sandbox.terminate() }
            let state = ["--state", "\(dir)/state"]
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--json"] + state
            let first = try await runProcess(callrec, upload, environment: environment)
            #expect(first.status == 1, "\(first.stderr.suffix(3000))")

            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            func key(_ name: String) async throws -> String {
                try #require(try await store.recordings(RecordingQuery()).first { $0.path.hasSuffix("/\(name)") }?.key, "\(name)")
            }
            let old = [try await key("call-0.wav"), try await key("call-1.wav")]
            let busy = try await key("call-2.wav"), recent = try await key("call-3.wav"), failed = try await key("nolog.wav")
            #expect(try await store.recording(key: failed)?.state == .failed)
            // Uploaded 40 days ago (the clock of the ledger, moved back), and a live job on one.
            for key in old + [busy] {
                for var part in try await store.parts(key: key) {
                    part.attachedAt = Date().addingTimeInterval(-40 * 86400)
                    try await store.commit([.updatePart(part)])
                }
            }
            let live = try await store.enqueue(NewJob(queue: "upload", kind: "upload", args: #"{"key":"\#(busy)"}"#, uniqueKey: "upload:\(busy)"))
            let spool = "\(dir)/state/spool"
            let folders = { Set((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []) }
            #expect(folders() == Set(old + [busy, recent, failed]))

            let dry = try await runProcess(callrec, ["spool", "prune", "--dry-run", "--json"] + state, environment: environment)
            #expect(dry.status == 0, "\(dry.stderr)")
            #expect((try Self.json(dry)["pruned"] as? [[String: Any]])?.compactMap { $0["key"] as? String }.sorted() == old.sorted())
            #expect(folders().count == 5, "a dry run removes nothing")

            let pruned = try await runProcess(callrec, ["spool", "prune", "--json"] + state, environment: environment)
            #expect(pruned.status == 0, "\(pruned.stderr)")
            let report = try Self.json(pruned)
            #expect((report["pruned"] as? [[String: Any]])?.compactMap { $0["key"] as? String }.sorted() == old.sorted())
            #expect((report["bytes"] as? Int ?? 0) > 2 * 4 * 2000, "\(report)")
            let kept = try #require(report["kept"] as? [[String: Any]])
            #expect(kept.count == 1 && kept.first?["key"] as? String == busy, "\(kept)")
            #expect((kept.first?["reason"] as? String)?.contains("upload:\(busy)") == true, "\(kept)")
            #expect(report["young"] as? Int == 1 && report["needed"] as? Int == 1, "\(report)")
            #expect(folders() == Set([busy, recent, failed]))
            let audit = try #require(try await store.audit(key: old[0], limit: 20).last)
            #expect(audit.action == "spool_pruned" && audit.detail?.contains("part(s)") == true, "\(audit)")
            let text = try await runProcess(callrec, ["spool", "prune"] + state, environment: environment)
            #expect(String(decoding: text.stdout, as: UTF8.self).contains("removed the MP3s of 0 uploaded recording(s)"), "\(String(decoding: text.stdout, as: UTF8.self))")

            // A re-run reports the pruned ones as done, with a warning, and sends nothing.
            if case .inserted(let id) = live { _ = try await store.cancel(ids: [id]) }
            let rerun = try await runProcess(callrec, upload, environment: environment)
            let doc = try Self.json(rerun)
            #expect((doc["summary"] as? [String: Any])?["api_requests"] as? Int == 0, "\(doc["summary"] ?? "")")
            let line = try #require((doc["files"] as? [[String: Any]])?.first { $0["key"] as? String == old[0] })
            #expect(line["status"] as? String == "skipped")
            #expect((line["warnings"] as? [[String: Any]])?.contains { $0["code"] as? String == "spool_pruned" } == true, "\(line)")

            // Reconcile does not take a pruned spool for a lost one.
            let reconcile = try await runProcess(callrec, ["reconcile", "--json"] + state, environment: environment)
            #expect(reconcile.status == 0, "\(reconcile.stderr.suffix(2000))")
            #expect(!String(decoding: reconcile.stdout, as: UTF8.self).contains("spool_missing"))

            // The delete cascade of a pruned recording completes (nothing to move to the trash).
            let deleted = try await runProcess(callrec, ["delete", "--recording", old[1], "--json"] + state, environment: environment)
            #expect(deleted.status == 0, "\(deleted.stderr.suffix(2000))")
            #expect(try await store.recording(key: old[1])?.state == .deleted)

            // upload --spool-retention: pruned at the end of the run.
            try DiskFullProcessTests.makeCalls("\(dir)/in", from: 4, count: 1, seconds: 4)
            let retained = try await runProcess(callrec, upload + ["--spool-retention", "0s"], environment: environment)
            #expect(retained.stderr.contains("spool: removed the MP3s of"), "\(retained.stderr.suffix(2000))")
            let newest = try await key("call-4.wav")
            #expect(try await store.recording(key: newest)?.state == .uploaded)
            #expect(!folders().contains(newest) && !folders().contains(recent))
            #expect(folders().contains(failed), "a failed recording keeps its spool")
            try await store.close()
        }
    }
}

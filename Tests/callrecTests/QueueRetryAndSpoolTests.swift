import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// `callrec queue retry` tells the truth about what it changed — the built binary on a real state.
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
            let enqueued = try runProcess(callrec, ["enqueue", "\(dir)/in"] + state, environment: environment)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")

            // What the older callrec left behind: the job discarded, the recording failed.
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            let claimed = try #require(try await store.claim(queue: JobQueue.transcode, limit: 1, owner: "old", leaseTTL: .seconds(60)).first)
            let key = try #require(try claimed.arguments(as: [String: String].self)["key"])
            let message = "call-0.wav: cannot write \(dir)/state/spool/\(key)/part-001.mp3: No space left on device"
            #expect(try await store.fail(try #require(claimed.lease), error: "output_failed: \(message)", permanent: true, retryIn: .zero) == .discarded)
            try await store.commit([.setRecordingState(key: key, state: .failed, errorCode: "output_failed", errorMessage: message)])

            let retried = try runProcess(callrec, ["queue", "retry", "\(claimed.id)", "--json"] + state, environment: environment)
            #expect(retried.status == 0, "\(retried.stderr)")
            let report = try Self.json(retried)
            #expect(report["retried"] as? [Int] == [Int(claimed.id)])
            let rearmed = try #require((report["rearmed"] as? [[String: Any]])?.first, "\(report)")
            #expect(rearmed["key"] as? String == key && rearmed["state"] as? String == "pending", "\(rearmed)")
            #expect((rearmed["error"] as? String)?.hasPrefix("output_failed: ") == true)
            #expect(try await store.recording(key: key)?.state == .pending)
            #expect(try await store.audit(key: key, limit: 10).contains { $0.action == "rearmed" })

            // The retried job does the work: the recording is transcoded now.
            _ = try runProcess(callrec, ["worker", "--until-idle", "--concurrency", "1", "--upload-slots", "0", "--idle-horizon", "0"] + state,
                               environment: environment)
            let recording = try #require(try await store.recording(key: key))
            #expect(recording.state == .transcoded, "\(recording.state) \(recording.errorCode ?? "")")
            #expect(try await store.parts(key: key).count == 1)
            #expect(try await store.job(id: claimed.id)?.state == .completed)

            // Now it completed: left alone, exit 1; an id that does not exist: named, exit 1.
            let again = try runProcess(callrec, ["queue", "retry", "\(claimed.id)"] + state, environment: environment)
            #expect(again.status == 1)
            #expect(again.stderr.contains("left alone: job \(claimed.id): it completed"), "\(again.stderr)")
            #expect(String(decoding: again.stdout, as: UTF8.self).contains("nothing changed"))
            let missing = try runProcess(callrec, ["queue", "retry", "999999", "--json"] + state, environment: environment)
            #expect(missing.status == 1, "\(missing.stderr)")
            #expect(try Self.json(missing)["not_found"] as? [Int] == [999999])
            let none = try runProcess(callrec, ["queue", "retry", "--all-discarded"] + state, environment: environment)
            #expect(none.status == 1)
            try await store.close()
        }
    }
}

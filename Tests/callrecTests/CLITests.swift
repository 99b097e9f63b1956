import CallTesting
import Foundation
import Testing

/// The built `callrec` binary, run as a user would: exit codes, the JSON document on stdout,
/// progress and logs on stderr.
@Suite struct CLITests {
    let callrec = callrecExecutable()

    @Test func transcodeReportsJSONAndExitCodes() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 6, format: .wavALaw, to: "\(dir)/in/call-1.wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/in/call-1.json", contents: Data(#"{"call_log": {"outcome": "connected", "to_phone_number": "+1555", "start_time": "2026-11-20 10:00:00", "end_time": "2026-11-20 10:00:06"}}"#.utf8))
            // All good: exit 0.
            let good = try await runProcess(callrec, ["transcode", "\(dir)/in", "--out", "\(dir)/out", "--json", "--jobs", "2", "--settle", "0"])
            #expect(good.status == 0, "\(good.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: good.stdout) as? [String: Any])
            let files = try #require(doc["files"] as? [[String: Any]])
            #expect(files.count == 1)
            #expect(files[0]["status"] as? String == "ok")
            #expect(files[0]["error"] is NSNull)
            #expect((files[0]["key"] as? String)?.count == 64)
            let input = try #require(files[0]["input"] as? [String: Any])
            #expect(input["format"] as? String == "WAV")
            #expect(input["subtype"] as? String == "ALAW")
            #expect(input["frames"] as? Int == 48000)
            let part = try #require((files[0]["parts"] as? [[String: Any]])?.first)
            #expect(part["call_log_id"] is NSNull)
            #expect(part["path"] as? String == "\(dir)/out/call-1.mp3")
            let summary = try #require(doc["summary"] as? [String: Any])
            #expect(summary["ok"] as? Int == 1)

            // One bad file among good ones: exit 1, the good one still done (skipped: already complete).
            _ = FileManager.default.createFile(atPath: "\(dir)/in/broken.wav", contents: Data(repeating: 0x41, count: 500))
            let mixed = try await runProcess(callrec, ["transcode", "\(dir)/in", "--out", "\(dir)/out", "--json", "--settle", "0"])
            #expect(mixed.status == 1)
            let mixedDoc = try #require(try JSONSerialization.jsonObject(with: mixed.stdout) as? [String: Any])
            let statuses = (mixedDoc["files"] as? [[String: Any]])?.map { $0["status"] as? String }
            #expect(statuses == ["failed", "skipped"])

            // Usage errors: exit 2, message on stderr, nothing on stdout.
            let usage = try await runProcess(callrec, ["transcode", "\(dir)/in", "--out", "\(dir)/out", "--quality", "12"])
            #expect(usage.status == 2)
            #expect(usage.stdout.isEmpty)
            #expect(usage.stderr.contains("quality"))
            let missing = try await runProcess(callrec, ["transcode", "\(dir)/nowhere", "--out", "\(dir)/out"])
            #expect(missing.status == 2)
            let unknown = try await runProcess(callrec, ["transcode", "\(dir)/in"])
            #expect(unknown.status == 2)
        }
    }

    @Test func probePrintsFactsAndVerdicts() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 4, sampleRate: 16000, format: .flac16, to: "\(dir)/a.flac")
            try SyntheticAudio.write(.silence, seconds: 4, to: "\(dir)/quiet.wav")
            let result = try await runProcess(callrec, ["probe", "\(dir)/a.flac", "\(dir)/quiet.wav", "--json"])
            #expect(result.status == 1)
            let doc = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            let files = try #require(doc["files"] as? [[String: Any]])
            #expect(files[0]["status"] as? String == "ok")
            #expect((files[0]["input"] as? [String: Any])?["sample_rate"] as? Int == 16000)
            #expect((files[1]["error"] as? [String: Any])?["code"] as? String == "silent_recording")
            let text = try await runProcess(callrec, ["probe", "\(dir)/a.flac"])
            #expect(text.status == 0)
            #expect(String(decoding: text.stdout, as: UTF8.self).contains("FLAC PCM_16, 16000 Hz, 1 ch, 64000 frames"))
        }
    }

    @Test func helpAndVersionExitZero() async throws {
        #expect(try await runProcess(callrec, ["--help"]).status == 0)
        let version = try await runProcess(callrec, ["--version"])
        #expect(version.status == 0)
        #expect(String(decoding: version.stdout, as: UTF8.self).contains("libsndfile"))
    }

    /// The benchmarks' plumbing lives in `callrec-bench`, not in the product: `callrec` knows no
    /// bench subcommand and no `--bench-slots`, and `callrec-bench` runs the bench queue.
    @Test func theBenchPlumbingIsNotInCallrec() async throws {
        for arguments in [["bench-enqueue", "--count", "1"], ["bench-api", "creates"], ["bench-reconcile-seed", "--sandbox-url", "http://127.0.0.1:1"],
                          ["worker", "--bench-slots", "1", "--until-idle"]] {
            let result = try await runProcess(callrec, arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
        }
        try await withTemporaryDirectory { dir in
            let bench = callrecBenchExecutable()
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            let enqueue = try await runProcess(bench, ["bench-enqueue", "--count", "3", "--state", "\(dir)/state"], environment: environment)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = try await runProcess(bench, ["worker", "--bench-slots", "2", "--until-idle", "--state", "\(dir)/state"], environment: environment)
            #expect(worker.status == 0, "\(worker.stderr)")
            #expect(worker.stderr.contains("worker: completed 3"), "\(worker.stderr)")
        }
    }
}

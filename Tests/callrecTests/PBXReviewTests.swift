import CallTesting
import Foundation
import Testing

/// Issue 15 end to end, as a FreePBX / 3CX user sees it: defects found by running the built
/// binary on PBX trees against the sandbox. Each test reproduces one defect from the outside.
@Suite(.serialized) struct PBXReviewTests {
    let callrec = callrecExecutable()
    let upload = PBXUploadCLITests()
    let watch = WatchProcessTests()

    /// 3CX names its files with the PBX's local time and a call id with no epoch in it, so a call in
    /// the repeated hour of a DST change (New York, 2026-11-01 01:00–02:00 happens twice) cannot be
    /// told apart by its name. Its file's mtime can: the recording is closed at hangup, so a file
    /// closed at 06:30:03 UTC holding 3 s of audio started at 06:30 UTC (01:30 EST), not an hour
    /// before it closed (05:30 UTC = 01:30 EDT). callrec takes the earlier reading and logs the
    /// call an hour early.
    @Test(.timeLimit(.minutes(5)))
    func threeCXCallInTheRepeatedHourTakesTheReadingItsFileTimesAllow() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/Recordings", state = "\(dir)/state"
            let first = "[Jane Roe]_6175550199-101_20261101013000(7)"  // 01:30 EDT = 05:30 UTC
            let second = "[John Doe]_6175550198-101_20261101013000(9)"  // 01:30 EST = 06:30 UTC
            try upload.audio("\(root)/101/\(first).wav", seconds: 3)
            try upload.audio("\(root)/101/\(second).wav", seconds: 3)
            let utc = ISO8601DateFormatter()
            try FileManager.default.setAttributes([.modificationDate: try #require(utc.date(from: "2026-11-01T05:30:03Z"))],
                                                  ofItemAtPath: "\(root)/101/\(first).wav")
            try FileManager.default.setAttributes([.modificationDate: try #require(utc.date(from: "2026-11-01T06:30:03Z"))],
                                                  ofItemAtPath: "\(root)/101/\(second).wav")
            let run = try await upload.upload(root, state: state, ["--source", "3cx"])
            #expect(run.status == 0, "\(run.stderr)")
            let logs = try upload.callLogs(state: state)
            #expect(logs.count == 2, "\(logs)")
            let early = try #require(upload.callLog(logs, stem: first), "\(logs)")
            #expect(early["start_time"] as? String == "2026-11-01 05:30:00", "\(early)")
            let late = try #require(upload.callLog(logs, stem: second), "\(logs)")
            #expect(late["start_time"] as? String == "2026-11-01 06:30:00", "the second 01:30 (EST) logged as the first: \(late)")
        }
    }

    /// The text report (no `--json`) lists every recording not logged on stderr; the line of a
    /// missed call must say which file it is (the internal call's line does, the missed call's
    /// says only `NO ANSWER call: not logged`).
    @Test(.timeLimit(.minutes(5)))
    func textReportNamesTheFileOfEveryCallNotLogged() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor", state = "\(dir)/state"
            try upload.freepbxTree(root)
            let result = try await runProcess(callrec, ["upload", root, "--state", state, "--settle", "0", "--sandbox", "--log-level", "warning",
                                                  "--timezone", "America/New_York", "--region", "US", "--source", "freepbx",
                                                  "--cdr", "\(root)-cdr/cdr.csv"], environment: upload.environment)
            #expect(result.status == 0, "\(result.stderr)")
            let skipped = result.stderr.split(separator: "\n").filter { $0.hasPrefix("skipped ") }
            #expect(skipped.contains { $0.contains("missed_call") }, "\(result.stderr)")
            for line in skipped {
                #expect(line.contains(".wav"), "a skipped line that names no file: \(line)")
            }
            #expect(skipped.contains { $0.contains("missed_call") && $0.contains(PBXUploadCLITests.missed) }, "\(result.stderr)")
        }
    }

    /// FreePBX's post-recording script (or the simulator's `wav2mp3` quirk) converts the WAV to an
    /// MP3 and removes the WAV right after the call, usually before `--settle` has passed. The
    /// watching worker then takes the vanished WAV and logs, for every single converted call,
    /// `error … failed (unreadable): … cannot be read: No such file or directory`, although
    /// nothing failed: the MP3 is uploaded once. A file gone before it settled is nothing to take.
    @Test(.timeLimit(.minutes(5)))
    func aWAVConvertedToMP3BeforeItSettledIsNoErrorInTheWatchingWorkersLog() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: watch.environment())
            defer { sandbox.terminate() }
            let pbx = try WatchProcessTests.PBX(dir)
            let arguments = ["worker", "--watch", pbx.root, "--source", "freepbx", "--cdr", pbx.cdr, "--timezone", "America/New_York",
                             "--region", "US", "--settle", "1", "--state", "\(dir)/state", "--concurrency", "2", "--log-level", "info"]
            let log = "\(dir)/worker.log"
            let worker = try startProcess(callrec, arguments, environment: watch.environment(base: sandbox.base), log: log)
            defer { if worker.isRunning { worker.terminate() } }
            #expect(try await waitForText("with inotify", inFile: log), "the worker never said it watches")
            // Call 1 first: its day folder is watched once its call log is in.
            try pbx.write(call: 1)
            #expect(try await watch.waitForCallLogs(sandbox, count: 1).values.reduce(0, +) == 1)
            // Call 0: the WAV is closed, then converted: the MP3 is renamed in, the WAV removed.
            try pbx.write(call: 0)
            let day = "\(pbx.root)/2026/03/10", stem = WatchProcessTests.PBX.stem(0)
            try SyntheticAudio.write(.speech(), seconds: 2, format: .mp3, to: "\(dir)/\(stem).mp3")
            try FileManager.default.moveItem(atPath: "\(dir)/\(stem).mp3", toPath: "\(day)/\(stem).mp3")
            try FileManager.default.removeItem(atPath: "\(day)/\(stem).wav")
            // Call 2, closed after call 0's WAV: once it is uploaded, the WAV's settle has passed too.
            try pbx.write(call: 2)
            watch.expectExactlyOnce(try await watch.waitForCallLogs(sandbox, count: 3), count: 3)
            worker.terminate()
            #expect(try await waitForExit(worker, upTo: 60))
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let errors = text.split(separator: "\n").filter { $0.contains(" error ") || $0.contains("unreadable") }
            #expect(errors.isEmpty, "a converted call logged as an error: \(errors)")
        }
    }
}

extension PBXReviewTests {
    /// `worker --until-idle` is the cron form of the watching worker; a recording whose CDR row has
    /// not come yet is snoozed (awaiting_cdr) and the run still exits 0 ("everything succeeded"),
    /// while `upload` on the same tree exits 3 with `resume_after`. A cron script cannot tell that a
    /// call still waits. Expected: exit 3 (nothing failed but some recordings wait), as `upload`.
    @Test(.timeLimit(.minutes(5)))
    func untilIdleWithACallAwaitingItsCDRRowExitsThree() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: watch.environment())
            defer { sandbox.terminate() }
            let pbx = try WatchProcessTests.PBX(dir)  // the export holds its header only: no row yet
            let stem = WatchProcessTests.PBX.stem(0)
            try upload.audio("\(pbx.root)/2026/03/10/\(stem).wav", seconds: 2)
            let arguments = ["worker", "--watch", pbx.root, "--source", "freepbx", "--cdr", pbx.cdr, "--timezone", "America/New_York",
                             "--region", "US", "--settle", "0", "--state", "\(dir)/state", "--log-level", "info", "--until-idle"]
            let run = try await runProcess(callrec, arguments, environment: watch.environment(base: sandbox.base))
            #expect(run.stderr.contains("awaiting_cdr"), "\(run.stderr.suffix(3000))")
            #expect(try await watch.callLogs(sandbox, count: 1).isEmpty)
            #expect(run.status == 3, "a call waits for its CDR row, yet: \(run.status)\n\(run.stderr.suffix(2000))")
        }
    }
}

extension PBXReviewTests {
    /// The JSON config's `state` key (README: `"database": …, // or "state": "/var/lib/callrec"`) is
    /// parsed and then ignored: `upload --config` (and `worker --config`) keep their ledger in
    /// `.callrec/` under the current directory. A FreePBX box whose systemd unit and cron job start
    /// in different directories gets two ledgers, and every call is sent once per ledger. The same
    /// holds for `database` (ConfigFile.database is read by nothing). Suspect: StoreOptions.settings
    /// (Sources/callrec/Subcommands/Options.swift) never consults ConfigFile.state/database.
    @Test(.timeLimit(.minutes(5)))
    func theConfigFilesStateKeyChoosesTheStateDirectory() async throws {
        try await withTemporaryDirectory { dir in
            let root = "\(dir)/monitor"
            try upload.freepbxTree(root)
            try upload.write("""
                { "state": "\(dir)/configured-state",
                  "defaults": { "timezone": "America/New_York", "region": "US" },
                  "sources": [ { "name": "hq", "kind": "freepbx", "path": "\(root)", "cdr": ["\(root)-cdr/cdr.csv"] } ] }
                """, to: "\(dir)/callrec.json")
            // From `dir`, so the default `.callrec` would land there and not in the checkout.
            let result = try await runProcess("/bin/sh", ["-c", #"cd "$1" && shift && exec "$@""#, "sh", dir, callrec, "upload", root,
                                                    "--config", "\(dir)/callrec.json", "--sandbox", "--settle", "0", "--log-level", "warning"],
                                        environment: upload.environment)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/configured-state/callrec.sqlite"), "the config's state was not used")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/.callrec"), "the default state was used instead of the config's")
        }
    }
}

extension PBXReviewTests {
    /// A token the API refuses, read from the config's `pipedrive.api_token_file`, is reported as
    /// `fix PIPEDRIVE_API_TOKEN`: a variable this user never set. The message should name where the
    /// token came from (the key and the file), as it names the variable when the token came from it.
    @Test(.timeLimit(.minutes(5)))
    func aRefusedTokenFromTheConfigsTokenFileNamesThatFile() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: watch.environment())
            defer { sandbox.terminate() }
            let root = "\(dir)/monitor"
            try upload.freepbxTree(root)
            try upload.write("not-the-sandbox-token-0123456789abcdef\n", to: "\(dir)/pipedrive.token")
            try upload.write("""
                { "pipedrive": { "api_url": "\(sandbox.base)/v1", "api_token_file": "\(dir)/pipedrive.token" },
                  "defaults": { "timezone": "America/New_York", "region": "US" },
                  "sources": [ { "name": "hq", "kind": "freepbx", "path": "\(root)", "cdr": ["\(root)-cdr/cdr.csv"] } ] }
                """, to: "\(dir)/callrec.json")
            var environment = upload.environment
            environment["PIPEDRIVE_API_TOKEN"] = nil
            environment["PIPEDRIVE_API_URL"] = nil
            let result = try await runProcess(callrec, ["upload", root, "--config", "\(dir)/callrec.json", "--state", "\(dir)/state", "--settle", "0",
                                                  "--log-level", "error"], environment: environment)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(!result.stderr.contains("not-the-sandbox-token"), "the secret itself is printed")
            #expect(result.stderr.contains("api_token_file") || result.stderr.contains("\(dir)/pipedrive.token"),
                    "the message sends the user to a variable they never set: \(result.stderr)")
        }
    }
}

extension PBXReviewTests {
    /// `worker --watch DIR` with a DIR that does not exist (a typo in a systemd unit or a cron line)
    /// logs "watching DIR with inotify", then "cannot watch" and "is not a directory", and goes on
    /// watching nothing: with `--until-idle` it exits 0 ("worker: no jobs run"), without it it runs
    /// forever; a directory created later is never watched. A `--cdr` that does not exist exits 2
    /// before anything; a `--watch` that does not exist should too, naming the flag and the path.
    @Test(.timeLimit(.minutes(5)))
    func watchingADirectoryThatDoesNotExistIsAUsageError() async throws {
        try await withTemporaryDirectory { dir in
            var environment = watch.environment()
            environment["PIPEDRIVE_API_URL"] = "http://127.0.0.1:9/v1"
            let result = try await runProcess(callrec, ["worker", "--watch", "\(dir)/no-such-monitor", "--source", "freepbx", "--timezone", "America/New_York",
                                                  "--region", "US", "--state", "\(dir)/state", "--until-idle", "--log-level", "warning"],
                                        environment: environment)
            #expect(result.status == 2, "exit \(result.status): \(result.stderr)")
            #expect(result.stderr.contains("--watch") && result.stderr.contains("no-such-monitor"), "\(result.stderr)")
        }
    }
}

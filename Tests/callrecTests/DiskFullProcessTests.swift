import CallStore
import CallStoreSQLite
import CallTesting
import Crypto
import Foundation
import Testing

/// A full disk, for real: `callrec upload` with its spool, or its whole state, on a small tmpfs
/// (in a private mount namespace: ``SmallDisk``) against a `callrec sandbox` process.
@Suite(.serialized, .enabled(if: SmallDisk.isAvailable, "needs root to mount tmpfs in a private mount namespace"))
struct DiskFullProcessTests {
    let callrec = callrecExecutable()

    /// `count` calls of `seconds` each (8 kHz µ-law: about 3 KB of MP3 a second) with sidecars.
    static func makeCalls(_ dir: String, from first: Int = 0, count: Int, seconds: Double = 20) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for i in first..<(first + count) {
            try SyntheticAudio.write(.speech(), seconds: seconds + Double(i) * 0.01, format: .wavULaw, to: "\(dir)/call-\(i).wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/call-\(i).json", contents: Data(UploadFixtures.sidecar(index: i).utf8))
        }
    }

    /// A `callrec sandbox` process (its state under `dir`, on the ordinary disk) and the
    /// environment that points `upload` at it.
    static func sandbox(_ callrec: String, dir: String) async throws -> (SandboxProcess, [String: String]) {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["CALLREC_SPOOL_RETENTION"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
        let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment)
        environment["PIPEDRIVE_API_URL"] = sandbox.base + "/v1"
        return (sandbox, environment)
    }

    static func sha256(_ path: String) throws -> String {
        SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: path))).map { String(format: "%02x", $0) }.joined()
    }

    static func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "stdout: \(String(decoding: result.stdout, as: UTF8.self)); stderr: \(result.stderr.suffix(3000))")
    }

    /// Every uploaded part is attached to one live call log in the sandbox, whose recording has
    /// the spool part's bytes (read where the spool is: `spool` maps a spool path to a readable
    /// one); no call log carries a marker that no part owns.
    static func checkAttachedOnce(_ sandbox: SandboxProcess, store: any CallStore, spool: (String) -> String) async throws {
        let state = try await sandbox.state()
        let logs = (state["call_logs"] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }
        var owned: Set<String> = []
        for recording in try await store.recordings(RecordingQuery(states: [.uploaded])) {
            for part in try await store.parts(key: recording.key) {
                let id = try #require(part.callLogID)
                owned.insert(id)
                let log = try #require(logs.first { $0["id"] as? String == id })
                let received = (log["recording"] as? [String: Any])?["sha256"] as? String
                #expect(received == (try sha256(spool(part.spoolPath))), "\(recording.path) part \(part.index)")
            }
        }
        let strays = logs.filter { ($0["note"] as? String)?.contains("callrec:") == true && !owned.contains($0["id"] as? String ?? "") }
        #expect(strays.isEmpty, "call logs no part owns (a partial or second upload): \(strays.map { $0["id"] ?? "" })")
    }

    /// The spool's disk fills during the transcodes: the run stops with exit 4 and `disk_full`
    /// (naming the spool and its free space), every recording waits `pending` with its attempt
    /// unused and no part file left; nothing reaches the sandbox. With space again, a re-run
    /// uploads each recording once, whole.
    @Test(.timeLimit(.minutes(5)))
    func aFullSpoolStopsTheRunWithExitFourAndTheRunAfterFreeingSpaceUploadsEachOnce() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeCalls("\(dir)/in", count: 4)
            let (sandbox, environment) = try await Self.sandbox(callrec, dir: dir)
            defer { sandbox.terminate() }

            let spool = "\(dir)/state/spool"
            let disk = try SmallDisk([spool: 1 << 20])
            defer { disk.close() }
            // Room for the spool folders, not for a part (each is about 60 KB).
            let ballast = try disk.fill(spool, leaving: 16 << 10)
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--state", "\(dir)/state", "--jobs", "2", "--json"]

            let full = try disk.run(callrec, upload, environment: environment)
            #expect(full.status == 4, "\(full.stderr.suffix(3000))")
            let doc = try Self.json(full)
            let summary = try #require(doc["summary"] as? [String: Any])
            let stopped = try #require(summary["stopped"] as? [String: Any], "\(summary)")
            #expect(stopped["code"] as? String == "disk_full")
            let message = stopped["message"] as? String ?? ""
            #expect(message.contains("the disk holding \(spool)/") && message.contains("free of 1.0 MiB"), "\(message)")
            #expect(summary["failed"] as? Int == 0 && summary["ok"] as? Int == 0, "\(summary)")
            let files = try #require(doc["files"] as? [[String: Any]])
            #expect(files.count == 4)
            #expect(files.allSatisfy { $0["status"] as? String == "waiting" && ($0["error"] as? [String: Any])?["code"] as? String == "disk_full" }, "\(files)")
            #expect(full.stderr.contains("stopping: disk_full: "), "\(full.stderr.suffix(2000))")
            #expect(full.stderr.components(separatedBy: "claim failed").count <= 3, "claims in a loop: \(full.stderr.suffix(2000))")

            // The ledger: every recording pending, no part, its transcode waiting without an attempt used.
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            let recordings = try await store.recordings(RecordingQuery())
            #expect(recordings.count == 4 && recordings.allSatisfy { $0.state == .pending }, "\(recordings.map { "\($0.state) \($0.errorCode ?? "")" })")
            for recording in recordings { #expect(try await store.parts(key: recording.key).isEmpty) }
            let jobs = try await store.jobs(JobQuery(queue: "transcode"))
            #expect(jobs.allSatisfy { $0.state == .available && $0.attempt == 0 }, "\(jobs.map { "\($0.state) \($0.attempt)" })")
            #expect(jobs.contains { $0.lastError?.hasPrefix("disk_full: ") == true })
            // No part (whole or half) is left in the spool, and nothing reached the sandbox.
            let left = try FileManager.default.subpathsOfDirectory(atPath: disk.outside(spool)).filter { !$0.hasPrefix("ballast") }
            #expect(left.allSatisfy { !$0.hasSuffix(".mp3") && !$0.hasSuffix(".tmp") }, "\(left)")
            #expect(liveIDs("call_logs", try await sandbox.state()).isEmpty)

            try disk.free(ballast)
            let again = try disk.run(callrec, upload, environment: environment)
            #expect(again.status == 0, "\(again.stderr.suffix(3000))")
            let after = try #require(try Self.json(again)["summary"] as? [String: Any])
            #expect(after["ok"] as? Int == 4 && after["stopped"] == nil, "\(after)")
            try await Self.checkAttachedOnce(sandbox, store: store, spool: disk.outside)
            try await store.close()
        }
    }

    /// The state's disk (the SQLite database and the spool) is full: the run ends — no claim
    /// loop — with exit 4 and a message naming the database and its free space, whether the
    /// disk is full from the start or fills during the run. With space again, the run goes on.
    @Test(.timeLimit(.minutes(5)))
    func aFullStateDiskEndsTheRunWithExitFourInsteadOfAClaimLoop() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeCalls("\(dir)/in", count: 2)
            let (sandbox, environment) = try await Self.sandbox(callrec, dir: dir)
            defer { sandbox.terminate() }

            let state = "\(dir)/state"
            let disk = try SmallDisk([state: 2 << 20])
            defer { disk.close() }
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--state", state, "--jobs", "2", "--log-level", "info"]
            let first = try disk.run(callrec, upload, environment: environment)
            #expect(first.status == 0, "\(first.stderr.suffix(3000))")

            try Self.makeCalls("\(dir)/in", from: 2, count: 3)
            // Full from the start, then with a little room that the run itself uses up.
            for leaving in [0, 40 << 10] {
                let ballast = try disk.fill(state, leaving: Int64(leaving))
                let log = "\(dir)/full-\(leaving).log"
                let process = try disk.start(callrec, upload, environment: environment, log: log)
                let ended = try await waitForExit(process, upTo: 90)
                if !ended { process.terminate() }
                let output = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
                #expect(ended, "with \(leaving) bytes free the run did not end: \(output.suffix(3000))")
                #expect(process.terminationStatus == 4, "with \(leaving) bytes free: \(output.suffix(3000))")
                #expect(output.contains("the disk holding \(state)/") && output.contains("free of 2.0 MiB"), "\(output.suffix(3000))")
                #expect(output.components(separatedBy: "claim failed").count <= 3, "claims in a loop: \(output.suffix(3000))")
                if leaving == 0 {
                    // Registration alone (`enqueue`) stops the same way.
                    let enqueue = try disk.run(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", state], environment: environment)
                    #expect(enqueue.status == 4, "\(enqueue.stderr.suffix(2000))")
                    // Either its registration fails, or (the last run truncated the WAL at its close,
                    // so not one page of room is left) the database does not open; both name the disk.
                    #expect(enqueue.stderr.contains("waiting disk_full: call-2.wav: not registered: ")
                                || enqueue.stderr.contains("stopped: cannot open the SQLite database \(state)/callrec.sqlite: the disk holding \(state)/callrec.sqlite is full"),
                            "\(enqueue.stderr.suffix(2000))")
                }
                try disk.free(ballast)
            }

            let again = try disk.run(callrec, upload + ["--json"], environment: environment)
            #expect(again.status == 0, "\(again.stderr.suffix(3000))")
            let summary = try #require(try Self.json(again)["summary"] as? [String: Any])
            #expect((summary["ok"] as? Int ?? 0) + (summary["skipped"] as? Int ?? 0) == 5, "\(summary)")
            // A copy: SQLite resolves /proc/<pid>/root to the test's own root.
            for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: disk.outside("\(state)/callrec.sqlite\(suffix)")) {
                try FileManager.default.copyItem(atPath: disk.outside("\(state)/callrec.sqlite\(suffix)"), toPath: "\(dir)/ledger.sqlite\(suffix)")
            }
            let store = try SQLiteStore(path: "\(dir)/ledger.sqlite")
            #expect(try await store.recordings(RecordingQuery(states: [.uploaded])).count == 5)
            try await Self.checkAttachedOnce(sandbox, store: store, spool: disk.outside)
            try await store.close()
        }
    }

    /// The spool part at `path` (a path the test reaches) decodes whole: as long as the
    /// recording it came from, `seconds`.
    func expectDecodesWhole(_ path: String, seconds: Double) async throws {
        let probe = try await runProcess(callrec, ["probe", path, "--json"])
        let file = try #require((try Self.json(probe)["files"] as? [[String: Any]])?.first, "\(probe.stderr)")
        let input = try #require(file["input"] as? [String: Any], "\(file)")
        let decoded = Double(input["frames"] as? Int ?? 0) / Double(input["sample_rate"] as? Int ?? 1)
        #expect(abs(decoded - seconds) < 0.1, "\(path): \(decoded) s decoded of \(seconds) s")
    }

    /// Waits, with a deadline, until the ledger (read through `store`) has `count` recordings
    /// uploaded; the last counts seen.
    static func waitForUploads(_ store: SQLiteStore, count: Int, timeout: Duration) async throws -> [RecordingState: Int] {
        let deadline = ContinuousClock.now + timeout
        var counts: [RecordingState: Int] = [:]
        while ContinuousClock.now < deadline {
            counts = try await store.recordingCounts()
            if counts[.uploaded, default: 0] >= count { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        return counts
    }

    /// A long-running `callrec worker` whose spool fills while it transcodes: the transcodes
    /// that meet the full disk fail with `disk_full`, are put off (no attempt used, never
    /// discarded) and the queue pauses, saying so in the log, naming the spool; no part file is
    /// left half written and nothing partial reaches Pipedrive. Once space is freed the same
    /// worker, never restarted, uploads every recording once, whole.
    @Test(.timeLimit(.minutes(5)))
    func aSpoolThatFillsUnderARunningWorkerPausesItsTranscodesAndTheyResumeOnceSpaceIsFreed() async throws {
        try await withTemporaryDirectory { dir in
            let count = 6
            let (sandbox, environment) = try await Self.callsAndSandbox(callrec, dir: dir, count: count)
            defer { sandbox.terminate() }
            let state = "\(dir)/state"
            let enqueued = try await runProcess(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", state], environment: environment)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")

            let spool = "\(state)/spool"
            let disk = try SmallDisk([spool: 1 << 20])
            defer { disk.close() }
            // Room for about two parts (each about 60 KB) of the six: the spool fills mid-run.
            let ballast = try disk.fill(spool, leaving: 150 << 10)
            let worker = try WorkerRun(callrec, disk: disk, state: state, environment: environment, log: "\(dir)/worker.log")
            defer { worker.process.terminate() }
            let output = { worker.output }
            #expect(try await worker.logs("the disk is full; the transcode queue pauses"), "\(output().suffix(3000))")
            #expect(output().contains("No space left on device: the disk holding \(spool)/"), "\(output().suffix(3000))")

            // While full: a transcode put off for the disk (its outcome is recorded just after
            // the log line), none failed for good.
            let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
            var jobs: [Job] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                jobs = try await store.jobs(JobQuery(queue: "transcode"))
                if jobs.contains(where: { $0.lastError?.hasPrefix("disk_full: ") == true }) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(jobs.contains { $0.lastError?.hasPrefix("disk_full: ") == true && $0.state == .available }, "\(jobs.map { "\($0.state) \($0.lastError ?? "")" })")
            #expect(jobs.count == count && jobs.allSatisfy { $0.state != .discarded }, "\(jobs.map { "\($0.state) \($0.lastError ?? "")" })")
            #expect(try await store.recordingCounts()[.failed, default: 0] == 0)

            try disk.free(ballast)
            let counts = try await Self.waitForUploads(store, count: count, timeout: .seconds(150))
            #expect(counts[.uploaded] == count, "\(counts): \(output().suffix(3000))")
            try await worker.stop()

            try await Self.checkAttachedOnce(sandbox, store: store, spool: disk.outside)
            for recording in try await store.recordings(RecordingQuery()) {
                let seconds = 20 + Double(Int(recording.path.split(separator: "-").last?.split(separator: ".").first ?? "") ?? 0) * 0.01
                for part in try await store.parts(key: recording.key) {
                    try await expectDecodesWhole(disk.outside(part.spoolPath), seconds: seconds)
                }
            }
            // Every transcode done in the end, none by more than one attempt of its own.
            let done = try await store.jobs(JobQuery(queue: "transcode"))
            #expect(done.allSatisfy { $0.state == .completed && $0.attempt <= 1 }, "\(done.map { "\($0.state) attempt \($0.attempt)" })")
            // No part file (whole or half) but the ledger's.
            var owned: Set<String> = []
            for recording in try await store.recordings(RecordingQuery()) {
                for part in try await store.parts(key: recording.key) { owned.insert(part.spoolPath) }
            }
            let files = try FileManager.default.subpathsOfDirectory(atPath: disk.outside(spool)).filter { $0.hasSuffix(".mp3") || $0.hasSuffix(".tmp") }
            #expect(files.allSatisfy { owned.contains("\(spool)/\($0)") }, "\(files) vs \(owned)")
            try await store.close()
        }
    }

    /// The disk of a long-running worker's SQLite database fills while it works (the spool is
    /// on a disk of its own here, so that it is the database that meets the full disk): its
    /// writes fail with `disk_full` naming the database and its free space, and the worker says
    /// so and goes on trying — no exit, no job failed for good; once space is freed, every
    /// recording is uploaded once, whole, and the ledger agrees with Pipedrive.
    @Test(.timeLimit(.minutes(5)))
    func aDatabaseDiskThatFillsUnderARunningWorkerLosesNothingAndTheWorkResumesOnceSpaceIsFreed() async throws {
        try await withTemporaryDirectory { dir in
            let count = 6
            let (sandbox, environment) = try await Self.callsAndSandbox(callrec, dir: dir, count: count)
            defer { sandbox.terminate() }
            let state = "\(dir)/state"
            let disk = try SmallDisk([state: 4 << 20, "\(state)/spool": 8 << 20])
            defer { disk.close() }
            let enqueued = try disk.run(callrec, ["enqueue", "--settle", "0", "\(dir)/in", "--state", state], environment: environment)
            #expect(enqueued.status == 0, "\(enqueued.stderr)")
            // Short leases: a job whose outcome could not be recorded comes back soon.
            let worker = try WorkerRun(callrec, disk: disk, state: state, environment: environment, log: "\(dir)/worker.log",
                                       ["--lease-ttl", "6", "--rescue-interval", "1", "--poll-interval", "0.5"])
            defer { worker.process.terminate() }
            let output = { worker.output }
            // Once the worker has its database open, the database's disk fills.
            #expect(try await worker.logs("worker started"), "\(output().suffix(3000))")
            let ballast = try disk.fill(state)
            #expect(try await worker.logs("the disk holding \(state)/callrec.sqlite is full ("), "\(output().suffix(3000))")
            #expect(try await worker.logs("disk_full"), "\(output().suffix(3000))")
            #expect(worker.process.isRunning, "the worker exited on a full disk: \(output().suffix(3000))")

            try disk.free(ballast)
            // `callrec status` (in the namespace, beside the running worker), until every
            // recording is uploaded.
            let deadline = ContinuousClock.now + .seconds(150)
            var counts: [String: Any] = [:]
            while ContinuousClock.now < deadline {
                let status = try disk.run(callrec, ["status", "--state", state, "--json"], environment: environment)
                counts = (try? Self.json(status)["recordings"] as? [String: Any]) ?? [:]
                if counts["uploaded"] as? Int == count { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(counts["uploaded"] as? Int == count, "\(counts): \(output().suffix(3000))")
            try await worker.stop()

            let store = try Self.copyLedger(disk, state: state, to: "\(dir)/ledger-final")
            try await Self.checkAttachedOnce(sandbox, store: store, spool: disk.outside)
            let jobs = try await store.jobs(JobQuery())
            #expect(jobs.allSatisfy { $0.state == .completed }, "\(jobs.map { "\($0.queue) \($0.state) \($0.lastError ?? "")" })")
            try await store.close()
        }
    }

    /// A state directory on a full disk before its database exists: the run stops with exit 4
    /// and leaves no empty database file behind (one would be refused as not a database); with
    /// space, the next run makes the database and uploads.
    @Test(.timeLimit(.minutes(3)))
    func aNewStateOnAFullDiskLeavesNoEmptyDatabaseBehind() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeCalls("\(dir)/in", count: 1, seconds: 4)
            let (sandbox, environment) = try await Self.sandbox(callrec, dir: dir)
            defer { sandbox.terminate() }
            let state = "\(dir)/state"
            let disk = try SmallDisk([state: 2 << 20])
            defer { disk.close() }
            let ballast = try disk.fill(state)
            let upload = ["upload", "--settle", "0", "\(dir)/in", "--state", state]
            let full = try disk.run(callrec, upload, environment: environment)
            #expect(full.status == 4, "\(full.stderr.suffix(2000))")
            #expect(full.stderr.contains("the disk holding \(state)/callrec.sqlite is full"), "\(full.stderr.suffix(2000))")
            #expect(!FileManager.default.fileExists(atPath: disk.outside("\(state)/callrec.sqlite")), "an empty database file was left")

            try disk.free(ballast)
            let again = try disk.run(callrec, upload, environment: environment)
            #expect(again.status == 0, "\(again.stderr.suffix(2000))")
        }
    }

    /// `count` calls under `dir/in` (``makeCalls(_:from:count:seconds:)``) and a sandbox
    /// (``sandbox(_:dir:)``).
    static func callsAndSandbox(_ callrec: String, dir: String, count: Int) async throws -> (SandboxProcess, [String: String]) {
        try makeCalls("\(dir)/in", count: count)
        return try await sandbox(callrec, dir: dir)
    }

    /// A long-running `callrec worker` on `state` in the small disk's namespace (two transcode
    /// and two upload slots, `info` logs in `log`).
    struct WorkerRun {
        let process: ChildProcess
        let log: String

        init(_ callrec: String, disk: SmallDisk, state: String, environment: [String: String], log: String, _ options: [String] = []) throws {
            self.log = log
            process = try disk.start(callrec, ["worker", "--state", state, "--concurrency", "2", "--upload-slots", "2", "--log-level", "info"] + options,
                                     environment: environment, log: log)
        }

        var output: String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }

        /// Whether the worker logs `text` within two minutes.
        func logs(_ text: String) async throws -> Bool { try await waitForText(text, inFile: log, timeout: .seconds(120)) }

        /// SIGTERM: the worker drains and ends with 0.
        func stop() async throws {
            kill(process.processIdentifier, SIGTERM)
            #expect(try await waitForExit(process, upTo: 30))
            #expect(process.terminationStatus == 0, "\(output.suffix(2000))")
        }
    }

    /// A copy of the SQLite ledger under the small disk (SQLite resolves `/proc/<pid>/root` to
    /// the test's own root: it cannot open the file where it is), opened.
    static func copyLedger(_ disk: SmallDisk, state: String, to path: String) throws -> SQLiteStore {
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: disk.outside("\(state)/callrec.sqlite\(suffix)")) {
            try? FileManager.default.removeItem(atPath: path + suffix)
            try FileManager.default.copyItem(atPath: disk.outside("\(state)/callrec.sqlite\(suffix)"), toPath: path + suffix)
        }
        return try SQLiteStore(path: path)
    }
}

import CallTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `callrec worker --watch DIR` as a real process (R12, R15): a FreePBX tree and its CDR export
/// written while the worker runs, while it is stopped, and while it is killed with SIGKILL at
/// random points, against a `callrec sandbox` process; the sandbox's call logs are the verdict.
/// Every wait is for an observable event (a log line, the sandbox's state) with a deadline.
@Suite(.serialized) struct WatchProcessTests {
    let callrec = callrecExecutable()

    static let pipedriveToken = "0123456789abcdef0123456789abcdef01234567"

    func environment(base: String? = nil) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = Self.pipedriveToken
        environment["TELNYX_API_KEY"] = nil
        environment["VOIPNOW_ACCESS_TOKEN"] = nil
        environment["PIPEDRIVE_BURST"] = "200"
        if let base { environment["PIPEDRIVE_API_URL"] = base + "/v1" }
        return environment
    }

    /// A FreePBX monitor tree (`root`) and its `asteriskcdrdb.cdr` export (`cdr`), written call by
    /// call as the PBX writes them: the CDR row, then the recording (open, write, close).
    /// Call `i` is an inbound answered call from +1 617 555 01ii to extension 101 on the DID
    /// 212 555 0123, at 14:05 + i minutes New York time on 2026-03-10.
    struct PBX {
        let root: String
        let cdr: String

        static let header = "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,amaflags,accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,outbound_cnum,outbound_cnam,dst_cnam,linkedid,peeraccount,sequence"

        init(_ dir: String) throws {
            root = dir + "/monitor"
            cdr = dir + "/cdr/cdr.csv"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir + "/cdr", withIntermediateDirectories: true)
            try Data((Self.header + "\n").utf8).write(to: URL(fileURLWithPath: cdr))
        }

        /// The recording's file stem (the upload names the sandbox's file after it).
        static func stem(_ i: Int) -> String {
            let epoch = 1_773_165_900 + 60 * i
            let minute = 5 + i
            let time = String(format: "%02d%02d00", 14 + minute / 60, minute % 60)
            return "in-2125550123-61755501\(String(format: "%02d", i))-20260310-\(time)-\(epoch).\(i)"
        }

        func write(call i: Int) throws {
            let epoch = 1_773_165_900 + 60 * i
            let minute = 5 + i
            let calldate = String(format: "2026-03-10 %02d:%02d:00", 14 + minute / 60, minute % 60)
            let caller = "61755501" + String(format: "%02d", i)
            let row = "\(calldate),<\(caller)>,\(caller),101,from-internal,PJSIP/trunk-\(i),PJSIP/101-\(i),Dial,,40,32,ANSWERED,3,,\(epoch).\(i),,2125550123,\(Self.stem(i)).wav,\(caller),,,,,\(epoch).\(i),,1\n"
            let handle = try #require(FileHandle(forWritingAtPath: cdr))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(row.utf8))
            try handle.close()
            let day = root + "/2026/03/10"
            try FileManager.default.createDirectory(atPath: day, withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 2 + Double(i % 3) * 0.3, format: .wavULaw, to: "\(day)/\(Self.stem(i)).wav")
        }
    }

    func workerArguments(_ pbx: PBX, state: String, _ extra: [String] = []) -> [String] {
        ["worker", "--watch", pbx.root, "--source", "freepbx", "--cdr", pbx.cdr, "--timezone", "America/New_York", "--region", "US",
         "--settle", "0.2", "--state", state, "--concurrency", "2", "--poll-interval", "0.2", "--lease-ttl", "3", "--rescue-interval", "1",
         "--log-level", "info"] + extra
    }

    /// The stem a sandbox recording file name starts with (the stem of call `i`, for some i < count).
    func stems(_ byFile: [String: Int], count: Int) -> [String: Int] {
        var byStem: [String: Int] = [:]
        for (file, n) in byFile {
            let stem = (0..<count).map(PBX.stem).first { file.hasPrefix($0) } ?? "unknown:" + file
            byStem[stem, default: 0] += n
        }
        return byStem
    }

    /// Call logs by the call they belong to.
    func callLogs(_ sandbox: SandboxProcess, count: Int) async throws -> [String: Int] {
        let state = try await sandbox.state()
        var byFile: [String: Int] = [:]
        for log in state["call_logs"] as? [[String: Any]] ?? [] where (log["deleted"] as? Bool) != true {
            byFile[(log["recording"] as? [String: Any])?["filename"] as? String ?? "no recording", default: 0] += 1
        }
        return stems(byFile, count: count)
    }

    /// Waits until the sandbox holds call logs for the first `count` calls, each with its
    /// recording attached (or the deadline): a call log is created before its audio is uploaded,
    /// so one counted between the two has no recording yet.
    func waitForCallLogs(_ sandbox: SandboxProcess, count: Int, timeout: Duration = .seconds(120)) async throws -> [String: Int] {
        let deadline = ContinuousClock.now + timeout
        var logs: [String: Int] = [:]
        while ContinuousClock.now < deadline {
            logs = try await callLogs(sandbox, count: count)
            let all = logs.values.reduce(0, +)
            let attached = logs.filter { !$0.key.hasSuffix("no recording") }.values.reduce(0, +)
            if attached >= count, attached == all { return logs }
            try await Task.sleep(for: .milliseconds(50))
        }
        return logs
    }

    func expectExactlyOnce(_ logs: [String: Int], count: Int, _ comment: String = "") {
        let expected = Dictionary(uniqueKeysWithValues: (0..<count).map { (PBX.stem($0), 1) })
        #expect(logs == expected, "\(comment)")
    }

    @Test(.timeLimit(.minutes(5)))
    func untilIdleScansTheTreeUploadsItsCallsAndExitsZero() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let pbx = try PBX(dir)
            for i in 0..<3 { try pbx.write(call: i) }
            let run = try await runProcess(callrec, workerArguments(pbx, state: "\(dir)/state", ["--until-idle"]), environment: environment(base: sandbox.base))
            #expect(run.status == 0, "\(run.stderr.suffix(3000))")
            expectExactlyOnce(try await callLogs(sandbox, count: 3), count: 3)
            // Again: nothing new, nothing sent.
            let requests = try await sandbox.requestCount()
            let again = try await runProcess(callrec, workerArguments(pbx, state: "\(dir)/state", ["--until-idle"]), environment: environment(base: sandbox.base))
            #expect(again.status == 0, "\(again.stderr.suffix(3000))")
            #expect(try await sandbox.requestCount() == requests)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func filesWrittenWhileTheWorkerRunsAndWhileItIsStoppedAreUploadedOnce() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let pbx = try PBX(dir)
            let state = "\(dir)/state"
            try pbx.write(call: 0)  // before the first start: the startup scan's
            let first = try startProcess(callrec, workerArguments(pbx, state: state), environment: environment(base: sandbox.base), log: "\(dir)/worker-1.log")
            defer { if first.isRunning { first.terminate() } }
            #expect(try await waitForText("with inotify", inFile: "\(dir)/worker-1.log"), "the worker never said it watches")
            expectExactlyOnce(try await waitForCallLogs(sandbox, count: 1), count: 1, "the call there at start")
            // Written while it runs, the second inside a day folder that appears meanwhile.
            try pbx.write(call: 1)
            try pbx.write(call: 2)
            expectExactlyOnce(try await waitForCallLogs(sandbox, count: 3), count: 3, "calls written while it runs")
            first.terminate()
            #expect(try await waitForExit(first, upTo: 60))
            // Written while it is stopped: found by the next start's scan.
            try pbx.write(call: 3)
            try pbx.write(call: 4)
            let second = try startProcess(callrec, workerArguments(pbx, state: state), environment: environment(base: sandbox.base), log: "\(dir)/worker-2.log")
            defer { if second.isRunning { second.terminate() } }
            expectExactlyOnce(try await waitForCallLogs(sandbox, count: 5), count: 5, "calls written while it was stopped")
            second.terminate()
            #expect(try await waitForExit(second, upTo: 60))
            let log = (try? String(contentsOfFile: "\(dir)/worker-1.log", encoding: .utf8)) ?? ""
            #expect(log.contains("\(PBX.stem(1)).wav"), "a file taken is logged with its path")
        }
    }

    /// SIGKILL at seeded random points (counted in sandbox requests, so the kill lands at the same
    /// point of the work however loaded the machine is) while calls keep coming: after a last
    /// `--until-idle` run, every call has exactly one call log. Two kills, not more: a job whose
    /// lease is lost a third time is discarded as poison by design (`poisonRescues`), and the
    /// first requests after a restart are the rescued jobs' own.
    @Test(.timeLimit(.minutes(10)))
    func killMinus9DuringAStreamOfCallsLosesAndDoublesNothing() async throws {
        var rng = TestSeed("killMinus9DuringAStreamOfCallsLosesAndDoublesNothing")
        let seed = rng.seed
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let pbx = try PBX(dir)
            let state = "\(dir)/state", count = 10
            var written = 0, kills: [Int] = []
            for round in 0..<2 {
                let worker = try startProcess(callrec, workerArguments(pbx, state: state), environment: environment(base: sandbox.base),
                                              log: "\(dir)/worker-\(round).log")
                defer { if worker.isRunning { worker.terminate() } }
                #expect(try await waitForText("with inotify", inFile: "\(dir)/worker-\(round).log"))
                // Killed once the sandbox has seen a few more requests: in the middle of a create,
                // an upload or an attach.
                let before = try await sandbox.requestCount()
                let target = before + Int.random(in: 1...6, using: &rng)
                let killer = Task { await sandbox.kill(worker, atRequest: target, timeout: .seconds(60)) }
                // The stream: five calls a round, a few milliseconds apart.
                for _ in 0..<5 where written < count {
                    try pbx.write(call: written)
                    written += 1
                    try await Task.sleep(for: .milliseconds(Int.random(in: 5...80, using: &rng)))
                }
                let killed = await killer.value
                if let killed { kills.append(killed) } else { worker.terminate() }
                _ = try await waitForExit(worker, upTo: 60)
            }
            #expect(written == count)
            #expect(!kills.isEmpty, "seed \(seed): no kill landed")
            print("WatchProcessTests: killed at sandbox requests \(kills)")
            // The last run takes what is left and ends when the queue is idle (expired leases of the
            // killed workers are rescued by it).
            let last = try await runProcess(callrec, workerArguments(pbx, state: state, ["--until-idle"]), environment: environment(base: sandbox.base))
            #expect(last.status == 0, "seed \(seed): \(last.stderr.suffix(3000))")
            expectExactlyOnce(try await callLogs(sandbox, count: count), count: count, "seed \(seed)")
        }
    }
}

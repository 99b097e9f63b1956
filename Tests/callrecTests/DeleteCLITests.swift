import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `callrec delete`, `reconcile` and `trash purge` as real processes against a `callrec sandbox`
/// process: delete by part 2's call log, no re-upload, `kill -9` mid-cascade and a re-run.
@Suite(.serialized) struct DeleteCLITests {
    let callrec = callrecExecutable()

    static let pipedriveToken = ClientEnvironment.pipedriveToken
    static let telnyxKey = ClientEnvironment.telnyxKey
    static let voipnowToken = ClientEnvironment.voipnowToken

    func environment(base: String? = nil) -> [String: String] { ClientEnvironment.make(base: base) }

    /// A request the sandbox's fault injection leaves alone.
    @discardableResult
    func request(_ method: String, _ url: String, json: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: Any]) {
        try await httpJSON(method, url, json: json, headers: headers.merging(["x-sandbox-fault": "none"]) { a, _ in a })
    }

    func seedTelnyx(_ base: String) async throws -> String {
        let (status, body) = try await request("POST", base + "/_sandbox/telnyx/recordings", json: "{}")
        #expect(status == 201)
        return try #require(body["id"] as? String)
    }

    func seedEvent(_ base: String, extension number: String) async throws -> String {
        let (status, body) = try await request("POST", base + "/_sandbox/voipnow/events", json: #"{"user_id": "@me", "extension": "\#(number)", "event_type": 2}"#)
        #expect(status == 201)
        return try #require(body["id"] as? String)
    }

    func routeCount(_ state: [String: Any], _ route: String) -> Int {
        ((state["counters"] as? [String: Any])?["requests_per_route"] as? [String: Any])?[route] as? Int ?? 0
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr)")
    }

    // MARK: - Upload, delete by part 2, no re-upload, purge

    @Test(.timeLimit(.minutes(5)))
    func deleteByPartTwoDeletesTheRecordingAndUploadDoesNotBringItBack() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            let base = sandbox.base
            defer { sandbox.terminate() }
            let env = environment(base: base)
            let telnyx = try await seedTelnyx(base)
            let event = try await seedEvent(base, extension: "0003*201")
            let bystander = try await seedEvent(base, extension: "0003*201")
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150, format: .wavPCM16, to: "\(dir)/in/long.wav")
            _ = fm.createFile(atPath: "\(dir)/in/long.json", contents: Data(#"""
                {"call_log": {"outcome": "connected", "to_phone_number": "+15550001", "start_time": "2026-11-21 10:00:00", "subject": "Long"},
                 "telnyx_recording_id": "\#(telnyx)",
                 "voipnow_event": {"user_id": "@me", "extension": "0003*201", "event_type": 2, "event_id": "\#(event)"}}
                """#.utf8))
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/short.wav")
            _ = fm.createFile(atPath: "\(dir)/in/short.json", contents: Data(#"{"call_log": {"outcome": "connected", "to_phone_number": "+15550002", "start_time": "2026-11-21 11:00:00"}}"#.utf8))

            let upload = try await runProcess(callrec, ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--json", "--jobs", "2", "--part-max-minutes", "1"], environment: env)
            #expect(upload.status == 0, "\(upload.stderr)")
            // Progress on stderr counts files (an upload run learns no audio lengths as it goes).
            let progress = upload.stderr.split(separator: "\n").last { $0.contains(" files") }
            #expect(progress?.contains("2/2 files") == true && progress?.contains("files/s") == true, "\(upload.stderr.suffix(1500))")
            let files = try #require(try json(upload)["files"] as? [[String: Any]])
            let long = try #require(files.first { $0["path"] as? String == "long.wav" })
            let partIDs = try #require((long["parts"] as? [[String: Any]])?.compactMap { $0["call_log_id"] as? String })
            #expect(partIDs.count == 3)
            let short = try #require((files.first { $0["path"] as? String == "short.wav" }?["parts"] as? [[String: Any]])?.first?["call_log_id"] as? String)

            // Usage: exactly one of --call-log and --recording.
            #expect(try await runProcess(callrec, ["delete", "--state", "\(dir)/state"], environment: env).status == 2)
            #expect(try await runProcess(callrec, ["delete", "--call-log", "x", "--recording", "y", "--state", "\(dir)/state"], environment: env).status == 2)
            #expect(try await runProcess(callrec, ["delete", "--call-log", "CAnothing", "--state", "\(dir)/state", "--json"], environment: env).status == 1)

            let delete = try await runProcess(callrec, ["delete", "--call-log", partIDs[1], "--state", "\(dir)/state", "--json"], environment: env)
            #expect(delete.status == 0, "\(delete.stderr)")
            let doc = try json(delete)
            #expect(doc["status"] as? String == "deleted")
            let steps = try #require((doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
            #expect(steps.map { $0["target"] as? String } == partIDs.map { "pipedrive:\($0)" } + [
                "telnyx:\(telnyx)",
                #"voipnow:{"event_id":"\#(event)","event_type":2,"extension":"0003*201","user_id":"@me"}"#, "spool",
            ])
            #expect(steps.allSatisfy { $0["state"] as? String == "done" })
            #expect(steps.map { $0["http_status"] as? Int } == [200, 200, 200, 200, 200, nil])

            var sandboxState = try await sandbox.state()
            #expect(liveIDs("call_logs", sandboxState).isDisjoint(with: partIDs))
            #expect(liveIDs("call_logs", sandboxState).contains(short))
            #expect(!liveIDs("telnyx_recordings", sandboxState).contains(telnyx))
            #expect(liveIDs("voipnow_events", sandboxState) == [bystander])
            #expect(routeCount(sandboxState, "DELETE /uapi/extensions/{user_id}/{extension}/phoneCallEvents") == 0)
            #expect(routeCount(sandboxState, "DELETE /uapi/extensions/{user_id}/{extension}/phoneCallEvents/{type}") == 0)
            let trash = try fm.contentsOfDirectory(atPath: "\(dir)/state/trash")
            #expect(trash.count == 1)

            // Once deleted, a re-run of upload does not bring it back.
            let creates = routeCount(sandboxState, "POST /v1/callLogs")
            let again = try await runProcess(callrec, ["upload", "\(dir)/in", "--settle", "0", "--state", "\(dir)/state", "--json", "--part-max-minutes", "1"], environment: env)
            #expect(again.status == 0, "\(again.stderr)")
            let againLong = try #require((try json(again)["files"] as? [[String: Any]])?.first { $0["path"] as? String == "long.wav" })
            #expect(againLong["status"] as? String == "skipped")
            #expect((againLong["warnings"] as? [[String: Any]])?.contains { $0["code"] as? String == "deleted" } == true)
            sandboxState = try await sandbox.state()
            #expect(routeCount(sandboxState, "POST /v1/callLogs") == creates)

            // Deleting again is fine; the trash purge takes the spool.
            let twice = try await runProcess(callrec, ["delete", "--recording", "\(dir)/in/long.wav", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(twice.status == 0)
            #expect(try json(twice)["status"] as? String == "already_deleted")
            let young = try await runProcess(callrec, ["trash", "purge", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(young.status == 0)
            #expect((try json(young)["removed"] as? [Any])?.isEmpty == true)
            let purge = try await runProcess(callrec, ["trash", "purge", "--older-than", "0s", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(purge.status == 0, "\(purge.stderr)")
            #expect((try json(purge)["removed"] as? [Any])?.count == 1)
            #expect(try fm.contentsOfDirectory(atPath: "\(dir)/state/trash").isEmpty)
        }
    }

    // MARK: - kill -9 in the middle of a cascade

    struct Seeded {
        var key: String
        var callLogIDs: [String]
        var telnyx: String
        var event: String
    }

    /// Uploaded recordings straight into the ledger, their call logs, Telnyx recordings and
    /// VoipNow events into the sandbox (through its seeding routes, which no fault touches).
    func seed(_ count: Int, parts: Int, base: String, state: String) async throws -> [Seeded] {
        var seeded: [Seeded] = []
        for i in 0..<count {
            seeded.append(try await seedRecording(base: base, state: state, path: "/recordings/\(i).wav", parts: parts, extensionNumber: "0003*3\(i)"))
        }
        return seeded
    }

    /// One uploaded recording straight into the ledger (as callrec would have left it: call logs
    /// it created, with their markers), its call logs, Telnyx recording and VoipNow event in the
    /// sandbox. `voipnow` makes the reference JSON the ledger holds from the event's id.
    func seedRecording(base: String, state: String, path: String, parts: Int = 1, voipnow: ((String) -> String)? = nil,
                       extensionNumber: String = "0003*401") async throws -> Seeded {
        let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
        try await store.migrate()
        let key = (0..<4).map { _ in String(format: "%016llx", UInt64.random(in: 0...UInt64.max)) }.joined()
        var rows: [Part] = []
        var ids: [String] = []
        try FileManager.default.createDirectory(atPath: "\(state)/spool/\(key)", withIntermediateDirectories: true)
        for j in 1...parts {
            let id = "CA\(key.prefix(20))\(j)"
            let (status, _) = try await request("POST", base + "/_sandbox/pipedrive/callLogs", json: #"{"id": "\#(id)"}"#)
            #expect(status == 201)
            let spool = "\(state)/spool/\(key)/part-00\(j).mp3"
            _ = FileManager.default.createFile(atPath: spool, contents: Data(count: 10))
            rows.append(Part(recordingKey: key, index: j, spoolPath: spool, bytes: 10, seconds: 1, sha256: key, state: .attached, callLogID: id,
                             callLogOrigin: .created, marker: "callrec:\(key.prefix(32)):p\(j)", attachedAt: Date()))
            ids.append(id)
        }
        let telnyx = try await seedTelnyx(base)
        let event = try await seedEvent(base, extension: extensionNumber)
        let reference = voipnow?(event) ?? #"{"event_id":"\#(event)","event_type":2,"extension":"\#(extensionNumber)","user_id":"@me"}"#
        try await store.commit([
            .insertRecording(Recording(key: key, path: path, state: .uploaded, partCount: parts)),
            .replaceParts(key: key, parts: rows),
            .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: telnyx)),
            .putProviderRef(ProviderRef(provider: ProviderRef.voipnow, recordingKey: key, reference: reference)),
        ])
        try await store.close()
        return Seeded(key: key, callLogIDs: ids, telnyx: telnyx, event: event)
    }

    /// A `callrec sandbox` process and a state directory: `body(sandbox, environment, dir, state)`.
    func withSandboxAndState(_ body: (SandboxProcess, [String: String], String, String) async throws -> Void) async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            try await body(sandbox, environment(base: sandbox.base), dir, "\(dir)/state")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func killNineInTheMiddleOfACascadeThenARerunFinishesIt() async throws {
        try await withTemporaryDirectory { dir in
            // Every API request takes three seconds: the cascade is slow enough to be killed
            // midway even when the machine is busy.
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment(), faults: "slow=1,delay=3")
            let base = sandbox.base
            defer { sandbox.terminate() }
            let env = environment(base: base)
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            let seeded = try await seed(2, parts: 3, base: base, state: "\(dir)/state")
            let target = seeded[0]

            let process = try ChildProcess(callrec, ["delete", "--recording", target.key, "--state", "\(dir)/state"], environment: env)
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            // Wait for the first step to be committed, then kill -9 while the second is in flight.
            let deadline = ContinuousClock.now + .seconds(60)
            var done = 0
            while ContinuousClock.now < deadline {
                done = (try? await store.audit(key: target.key, limit: 100).filter { $0.action == "delete_step" }.count) ?? 0
                if done >= 1 { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(done == 1)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)

            let halfway = try #require(try await store.openDeletions().first { $0.recordingKey == target.key })
            #expect(halfway.steps.filter { $0.state == .done }.count == 1)
            #expect(try await store.recording(key: target.key)?.state == .deleting)

            // The re-run rescues the job (its lease expires) and goes on from the second step.
            let rerun = try await runProcess(callrec, ["delete", "--recording", target.key, "--state", "\(dir)/state", "--json"], environment: env)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            let doc = try json(rerun)
            #expect(doc["status"] as? String == "deleted")
            let steps = try #require((doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
            #expect(steps.allSatisfy { $0["state"] as? String == "done" })
            let audit = try await store.audit(key: target.key, limit: 100)
            #expect(audit.filter { $0.action == "delete_step" && $0.target == "pipedrive:\(target.callLogIDs[0])" }.count == 1)
            #expect(try await store.recording(key: target.key)?.state == .deleted)
            #expect(try await store.tombstone(key: target.key) != nil)
            try await store.close()

            let snapshot = try await sandbox.state()
            #expect(liveIDs("call_logs", snapshot).isDisjoint(with: target.callLogIDs))
            #expect(liveIDs("call_logs", snapshot).isSuperset(of: seeded[1].callLogIDs))
            #expect(!liveIDs("telnyx_recordings", snapshot).contains(target.telnyx) && liveIDs("telnyx_recordings", snapshot).contains(seeded[1].telnyx))
            #expect(!liveIDs("voipnow_events", snapshot).contains(target.event) && liveIDs("voipnow_events", snapshot).contains(seeded[1].event))
        }
    }

    // MARK: - reconcile

    @Test(.timeLimit(.minutes(5)))
    func reconcilePlansThenAppliesAndAbortsOverTheCap() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            let base = sandbox.base
            defer { sandbox.terminate() }
            let env = environment(base: base)
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            let seeded = try await seed(30, parts: 1, base: base, state: "\(dir)/state")
            let (status, _) = try await request("DELETE", base + "/v1/callLogs/\(seeded[4].callLogIDs[0])", headers: ["x-api-token": Self.pipedriveToken])
            #expect(status == 200)

            let plan = try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(plan.status == 0, "\(plan.stderr)")
            let planReport = try #require(try json(plan)["report"] as? [String: Any])
            #expect(planReport["outcome"] as? String == "planned")
            let lines = try #require(planReport["recordings"] as? [[String: Any]])
            let planned = lines.filter { !(($0["evidence"] as? [Any]) ?? []).isEmpty }
            #expect(planned.map { $0["key"] as? String } == [seeded[4].key])
            #expect(planned.first?["action"] as? String == "would_delete")
            #expect(liveIDs("telnyx_recordings", try await sandbox.state()).contains(seeded[4].telnyx))

            let capped = try await runProcess(callrec, ["reconcile", "--apply", "--max-delete", "0", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(capped.status == 1)
            #expect((try json(capped)["report"] as? [String: Any]).flatMap { ($0["abort"] as? [String: Any])?["code"] as? String } == "mass_delete_cap")
            #expect(liveIDs("telnyx_recordings", try await sandbox.state()).contains(seeded[4].telnyx))

            let apply = try await runProcess(callrec, ["reconcile", "--apply", "--state", "\(dir)/state", "--json"], environment: env)
            #expect(apply.status == 0, "\(apply.stderr)")
            let applied = try #require(try json(apply)["report"] as? [String: Any])
            #expect(applied["outcome"] as? String == "applied")
            let line = try #require((applied["recordings"] as? [[String: Any]])?.first { $0["key"] as? String == seeded[4].key })
            #expect(line["result"] as? String == "deleted")
            let snapshot = try await sandbox.state()
            #expect(!liveIDs("telnyx_recordings", snapshot).contains(seeded[4].telnyx))
            #expect(!liveIDs("voipnow_events", snapshot).contains(seeded[4].event))
            for r in seeded where r.key != seeded[4].key {
                #expect(liveIDs("call_logs", snapshot).contains(r.callLogIDs[0]) && liveIDs("telnyx_recordings", snapshot).contains(r.telnyx) && liveIDs("voipnow_events", snapshot).contains(r.event))
            }
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state/spool/\(seeded[4].key)"))
            #expect(FileManager.default.fileExists(atPath: "\(dir)/state/spool/\(seeded[5].key)"))

            // Without credentials: a configuration error (2), nothing done.
            var bare = env
            bare["PIPEDRIVE_API_TOKEN"] = nil
            #expect(try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state"], environment: bare).status == 2)
        }
    }
    /// `callrec worker --reconcile-every 2s` runs a pass at start and then on its timer: a call log
    /// deleted behind callrec's back before the worker starts, and another one deleted while it
    /// runs, each take their recording's provider recordings, events and spool with them; the
    /// other recordings stay.
    @Test(.timeLimit(.minutes(5)))
    func workerReconcilesPeriodically() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let env = environment(base: sandbox.base)
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            let seeded = try await seed(30, parts: 1, base: sandbox.base, state: "\(dir)/state")
            func deleteBehindCallrecsBack(_ r: Seeded) async throws {
                let (status, _) = try await sandbox.request("DELETE", "/v1/callLogs/\(r.callLogIDs[0])", headers: ["x-api-token": Self.pipedriveToken])
                #expect(status == 200)
            }
            func cleaned(_ r: Seeded, within seconds: Double) async throws -> Bool {
                let deadline = ContinuousClock.now + .seconds(seconds)
                while ContinuousClock.now < deadline {
                    let snapshot = try await sandbox.state()
                    if !liveIDs("telnyx_recordings", snapshot).contains(r.telnyx), !liveIDs("voipnow_events", snapshot).contains(r.event),
                       !FileManager.default.fileExists(atPath: "\(dir)/state/spool/\(r.key)") { return true }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return false
            }
            try await deleteBehindCallrecsBack(seeded[3])
            let log = "\(dir)/worker.log"
            let worker = try startProcess(callrec, ["worker", "--reconcile-every", "2s", "--concurrency", "0", "--upload-slots", "0", "--delete-slots", "1",
                                                    "--poll-interval", "0.2", "--state", "\(dir)/state", "--log-level", "info"], environment: env, log: log)
            defer { if worker.isRunning { worker.terminate() } }
            let first = try await cleaned(seeded[3], within: 60)
            #expect(first, "the pass at start did not clean up: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self).suffix(3000))")
            try await deleteBehindCallrecsBack(seeded[17])
            let second = try await cleaned(seeded[17], within: 60)
            #expect(second, "a later pass did not clean up: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self).suffix(3000))")

            let snapshot = try await sandbox.state()
            for r in seeded where r.key != seeded[3].key && r.key != seeded[17].key {
                #expect(liveIDs("call_logs", snapshot).contains(r.callLogIDs[0]) && liveIDs("telnyx_recordings", snapshot).contains(r.telnyx)
                        && liveIDs("voipnow_events", snapshot).contains(r.event))
            }
            kill(worker.processIdentifier, SIGTERM)
            #expect(try await waitForExit(worker, upTo: 30))
            #expect(worker.terminationStatus == 0)
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            #expect(try await store.recording(key: seeded[3].key)?.state == .deleted)
            #expect(try await store.recording(key: seeded[17].key)?.state == .deleted)
            #expect(try await store.tombstone(key: seeded[17].key) != nil)
            try await store.close()
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            #expect(text.components(separatedBy: "periodic reconcile").count - 1 >= 2, "fewer than two passes logged")
        }
    }
}

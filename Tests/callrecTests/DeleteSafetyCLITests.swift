import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// What a delete must leave alone, and how a user mends one that cannot finish (issue 13, items
/// 2, 7, 8 and 12): the built `callrec` against a `callrec sandbox` process.
extension DeleteCLITests {
    func stdout(_ result: ProcessResult) -> String { String(decoding: result.stdout, as: UTF8.self) }

    // MARK: - Item 7: a deletion that can never finish

    /// A reference registered by the old rules (straight into the ledger) makes a deletion that
    /// can never finish: the delete and `status` say what is stuck and what to type, and
    /// `--skip-step` (audited with who asked) lets the deletion complete.
    @Test(.timeLimit(.minutes(5)))
    func aStuckDeletionSaysWhatToTypeAndSkippingTheStepFinishesIt() async throws {
        try await withSandboxAndState { sandbox, env, dir, state in
            let stuck = try await seedRecording(base: sandbox.base, state: state, path: "\(dir)/in/stuck.wav",
                                                voipnow: { _ in #"{"event_id":".","event_type":2,"extension":"0003*401","user_id":"@me"}"# })
            let other = try await seedRecording(base: sandbox.base, state: state, path: "\(dir)/in/other.wav", extensionNumber: "0003*402")

            // Today's dead end: every run fails the same step, the recording stays `deleting`.
            for _ in 0..<2 {
                let run = try await runProcess(callrec, ["delete", "--recording", stuck.key, "--state", state, "--json"], environment: env)
                #expect(run.status == 1, "\(run.stderr)")
                let doc = try json(run)
                #expect(doc["status"] as? String == "failed")
                let steps = try #require((doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
                #expect(steps.first { ($0["target"] as? String ?? "").hasPrefix("voipnow:") }?["state"] as? String == "failed")
                let message = doc["message"] as? String ?? ""
                #expect(message.contains("callrec delete --recording \(stuck.key) --skip-step voipnow --state \(state)"), "\(message)")
            }
            #expect(liveIDs("call_logs", try await sandbox.state()).isDisjoint(with: stuck.callLogIDs))

            // The text report and `status` say what is stuck and what to type.
            let text = try await runProcess(callrec, ["delete", "--recording", stuck.key, "--state", state], environment: env)
            #expect(text.status == 1)
            #expect(stdout(text).contains("--skip-step voipnow"), "\(stdout(text))")
            let status = try await runProcess(callrec, ["status", "--state", state], environment: env)
            #expect(status.status == 0, "\(status.stderr)")
            #expect(stdout(status).contains("deletions stuck: 1"), "\(stdout(status))")
            #expect(stdout(status).contains("callrec delete --recording \(stuck.key) --skip-step voipnow --state \(state)"), "\(stdout(status))")
            let statusJSON = try json(try await runProcess(callrec, ["status", "--state", state, "--json"], environment: env))
            let open = try #require(statusJSON["stuck_deletions"] as? [[String: Any]])
            #expect(open.map { $0["key"] as? String } == [stuck.key])

            // A step that is not open is refused (usage), nothing changes.
            let wrong = try await runProcess(callrec, ["delete", "--recording", stuck.key, "--skip-step", "pipedrive:nope", "--state", state, "--json"], environment: env)
            #expect(wrong.status == 2, "\(wrong.stderr)")

            // The mend: skip the step that cannot succeed; the deletion completes.
            let skip = try await runProcess(callrec, ["delete", "--recording", stuck.key, "--skip-step", "voipnow", "--state", state, "--json"], environment: env)
            #expect(skip.status == 0, "\(skip.stderr)")
            let doc = try json(skip)
            #expect(doc["status"] as? String == "deleted")
            let steps = try #require((doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
            #expect(steps.first { ($0["target"] as? String ?? "").hasPrefix("voipnow:") }?["state"] as? String == "skipped")
            #expect(steps.filter { !($0["target"] as? String ?? "").hasPrefix("voipnow:") }.allSatisfy { $0["state"] as? String == "done" })

            let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
            #expect(try await store.recording(key: stuck.key)?.state == .deleted)
            #expect(try await store.tombstone(key: stuck.key) != nil)
            let audit = try await store.audit(key: stuck.key, limit: 100)
            let skipped = try #require(audit.first { $0.action == "delete_step_skipped" })
            #expect(skipped.target?.hasPrefix("voipnow:") == true)
            #expect(skipped.detail?.hasPrefix("asked by ") == true && skipped.detail?.contains(NSUserName()) == true, "\(skipped.detail ?? "")")
            #expect(try await store.recording(key: other.key)?.state == .uploaded)
            try await store.close()

            let after = try await runProcess(callrec, ["status", "--state", state], environment: env)
            #expect(!stdout(after).contains("stuck"), "\(stdout(after))")
            let snapshot = try await sandbox.state()
            #expect(liveIDs("voipnow_events", snapshot).contains(other.event) && liveIDs("call_logs", snapshot).isSuperset(of: other.callLogIDs))
        }
    }

    // MARK: - Item 8: call logs callrec did not create

    /// A recording attached with the sidecar's `call_log_id` to a call log made by hand: `delete`
    /// leaves that call log (and says so) while the rest of the cascade goes; only
    /// `--include-foreign-call-logs` deletes it.
    @Test(.timeLimit(.minutes(5)))
    func aCallLogCallrecDidNotCreateIsLeftUnlessAskedFor() async throws {
        try await withSandboxAndState { sandbox, env, dir, state in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try await sandbox.seedCallLog("CAbyhand1")
            try await sandbox.seedCallLog("CAbyhand2")
            let telnyx = try await seedTelnyx(sandbox.base)
            try SyntheticAudio.write(.speech(), seconds: 3, to: "\(dir)/in/hand.wav")
            _ = fm.createFile(atPath: "\(dir)/in/hand.json", contents: Data(#"{"call_log_id": "CAbyhand1", "telnyx_recording_id": "\#(telnyx)"}"#.utf8))
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/hand2.wav")
            _ = fm.createFile(atPath: "\(dir)/in/hand2.json", contents: Data(#"{"call_log_id": "CAbyhand2"}"#.utf8))
            try SyntheticAudio.write(.speech(), seconds: 5, to: "\(dir)/in/own.wav")
            _ = fm.createFile(atPath: "\(dir)/in/own.json", contents: Data(#"{"call_log": {"outcome": "connected", "to_phone_number": "+15550003", "start_time": "2026-11-21 12:00:00"}}"#.utf8))
            let upload = try await runProcess(callrec, ["upload", "--settle", "0", "\(dir)/in", "--state", state, "--json"], environment: env)
            #expect(upload.status == 0, "\(upload.stderr)")
            let files = try #require(try json(upload)["files"] as? [[String: Any]])
            let own = try #require((files.first { $0["path"] as? String == "own.wav" }?["parts"] as? [[String: Any]])?.first?["call_log_id"] as? String)

            let delete = try await runProcess(callrec, ["delete", "--recording", "\(dir)/in/hand.wav", "--state", state, "--json"], environment: env)
            #expect(delete.status == 0, "\(delete.stderr)")
            let doc = try json(delete)
            #expect(doc["status"] as? String == "deleted")
            let steps = try #require((doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]])
            let left = try #require(steps.first { $0["target"] as? String == "pipedrive:CAbyhand1" })
            #expect(left["state"] as? String == "skipped")
            #expect((left["detail"] as? String ?? "").contains("did not create"), "\(left)")
            #expect((doc["message"] as? String ?? "").contains("CAbyhand1"), "\(doc)")
            var snapshot = try await sandbox.state()
            #expect(liveIDs("call_logs", snapshot).contains("CAbyhand1"))
            #expect(!liveIDs("telnyx_recordings", snapshot).contains(telnyx))
            let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
            let key = try #require(doc["recording"] as? [String: Any])["key"] as? String ?? ""
            #expect(try await store.audit(key: key, limit: 100).contains {
                $0.action == "delete_step" && $0.target == "pipedrive:CAbyhand1" && ($0.detail ?? "").hasPrefix("skipped")
            })
            try await store.close()

            // The text report says which call log was left and why.
            let text = try await runProcess(callrec, ["delete", "--recording", "\(dir)/in/hand.wav", "--state", state], environment: env)
            #expect(text.status == 0)

            // Told explicitly: deleted.
            let include = try await runProcess(callrec, ["delete", "--recording", "\(dir)/in/hand2.wav", "--include-foreign-call-logs", "--state", state, "--json"],
                                         environment: env)
            #expect(include.status == 0, "\(include.stderr)")
            // callrec's own call log goes as before.
            let ownDelete = try await runProcess(callrec, ["delete", "--call-log", own, "--state", state, "--json"], environment: env)
            #expect(ownDelete.status == 0, "\(ownDelete.stderr)")
            snapshot = try await sandbox.state()
            #expect(!liveIDs("call_logs", snapshot).contains("CAbyhand2"))
            #expect(!liveIDs("call_logs", snapshot).contains(own))
            #expect(liveIDs("call_logs", snapshot).contains("CAbyhand1"))
        }
    }

    // MARK: - Item 12: reconcile's plan over the cap

    /// Without `--apply`, more recordings to delete than `--max-delete` are listed, then refused:
    /// a non-zero exit and a message with the cap and how to go on.
    @Test(.timeLimit(.minutes(5)))
    func reconcileOverTheCapListsWhatItWouldDeleteThenRefuses() async throws {
        try await withSandboxAndState { sandbox, env, _, state in
            let seeded = try await seed(12, parts: 1, base: sandbox.base, state: state)
            let gone = [seeded[2], seeded[5], seeded[9]]
            for r in gone {
                let (status, _) = try await request("DELETE", sandbox.base + "/v1/callLogs/\(r.callLogIDs[0])", headers: ["x-api-token": Self.pipedriveToken])
                #expect(status == 200)
            }
            let plan = try await runProcess(callrec, ["reconcile", "--max-delete", "2", "--state", state, "--json"], environment: env)
            #expect(plan.status == 1, "\(plan.stderr)")
            let report = try #require(try json(plan)["report"] as? [String: Any])
            let abort = try #require(report["abort"] as? [String: Any])
            #expect(abort["code"] as? String == "mass_delete_cap")
            let message = abort["message"] as? String ?? ""
            #expect(message.contains("cap of 2") && message.contains("--max-delete 3"), "\(message)")
            let listed = (report["recordings"] as? [[String: Any]] ?? []).filter { $0["action"] as? String == "would_delete" }
            #expect(Set(listed.compactMap { $0["key"] as? String }) == Set(gone.map(\.key)))

            let text = try await runProcess(callrec, ["reconcile", "--max-delete", "2", "--state", state], environment: env)
            #expect(text.status == 1)
            let out = stdout(text)
            for r in gone { #expect(out.contains(r.key.prefix(12)), "\(out)") }
            #expect(out.contains("cap of 2") && out.contains("--max-delete 3"), "\(out)")
            // Nothing was deleted.
            let snapshot = try await sandbox.state()
            for r in gone { #expect(liveIDs("telnyx_recordings", snapshot).contains(r.telnyx)) }
        }
    }

    // MARK: - Item 2: every version from one path

    /// The ledger can hold several recordings from one path (the file was replaced after its
    /// upload): `delete --recording PATH` removes every one, and says which.
    @Test(.timeLimit(.minutes(5)))
    func deleteByPathRemovesEveryVersionFromThatPathAndSaysWhich() async throws {
        try await withSandboxAndState { sandbox, env, dir, state in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            let path = "\(dir)/in/call.wav"
            _ = FileManager.default.createFile(atPath: path, contents: Data("the third version".utf8))
            let first = try await seedRecording(base: sandbox.base, state: state, path: path, extensionNumber: "0003*501")
            let second = try await seedRecording(base: sandbox.base, state: state, path: path, parts: 2, extensionNumber: "0003*502")
            let bystander = try await seedRecording(base: sandbox.base, state: state, path: "\(dir)/in/other.wav", extensionNumber: "0003*503")

            let delete = try await runProcess(callrec, ["delete", "--recording", path, "--state", state, "--json"], environment: env)
            #expect(delete.status == 0, "\(delete.stderr)")
            let doc = try json(delete)
            #expect(doc["status"] as? String == "deleted")
            let versions = try #require(doc["recordings"] as? [[String: Any]])
            #expect(Set(versions.compactMap { $0["key"] as? String }) == [first.key, second.key])
            for version in versions {
                let seeded = version["key"] as? String == first.key ? first : second
                #expect(version["call_logs"] as? [String] == seeded.callLogIDs, "\(version)")
                #expect(version["registered_at"] is String && version["status"] as? String == "deleted", "\(version)")
            }
            let snapshot = try await sandbox.state()
            #expect(liveIDs("call_logs", snapshot).isDisjoint(with: first.callLogIDs + second.callLogIDs))
            #expect(liveIDs("call_logs", snapshot).isSuperset(of: bystander.callLogIDs))
            let store = try SQLiteStore(path: "\(state)/callrec.sqlite")
            #expect(try await store.recording(key: first.key)?.state == .deleted)
            #expect(try await store.recording(key: second.key)?.state == .deleted)
            #expect(try await store.recording(key: bystander.key)?.state == .uploaded)
            try await store.close()

            // The text says which: keys and call logs.
            let again = try await runProcess(callrec, ["delete", "--recording", path, "--state", state], environment: env)
            #expect(again.status == 0)
            let out = stdout(again)
            #expect(out.contains(first.key) && out.contains(second.key) && out.contains(second.callLogIDs[1]), "\(out)")
        }
    }
}

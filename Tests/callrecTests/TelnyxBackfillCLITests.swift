import CallTesting
import Foundation
import Testing

/// `callrec telnyx backfill` (issue 16) run as built, against a `callrec sandbox` process: plan
/// only registers nothing, --apply registers exactly the recordings callrec does not know (each
/// with its fetch job) and a second --apply none, the date range, the paging, and the items it
/// cannot read.
@Suite(.serialized) struct TelnyxBackfillCLITests {
    let callrec = callrecExecutable()

    static let pipedriveToken = "0123456789abcdef0123456789abcdef01234567"
    static let telnyxKey = "KEYTESTTELNYX0000000000000000000_abc"

    func environment(base: String? = nil) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = Self.pipedriveToken
        environment["TELNYX_API_KEY"] = Self.telnyxKey
        environment["TELNYX_PUBLIC_KEY"] = nil
        environment["VOIPNOW_ACCESS_TOKEN"] = nil
        if let base {
            environment["PIPEDRIVE_API_URL"] = base + "/v1"
            environment["TELNYX_API_URL"] = base + "/v2"
        }
        return environment
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr.suffix(2000))")
    }

    func totals(_ document: [String: Any]) -> [String: Int] {
        document["totals"] as? [String: Int] ?? [:]
    }

    /// `count` recordings in the sandbox's account (their other fields made up); their ids.
    @discardableResult
    func seed(_ sandbox: SandboxProcess, count: Int, fields: String = "") async throws -> [String] {
        var ids: [String] = []
        for _ in 0..<count {
            let (status, body) = try await sandbox.request("POST", "/_sandbox/telnyx/recordings", json: "{\(fields)}")
            guard status == 201, let id = body["id"] as? String else { throw TestAudioError("seeding a Telnyx recording: HTTP \(status)") }
            ids.append(id)
        }
        return ids
    }

    /// `--state DIR/state`, or `--database URL`.
    func store(_ dir: String, database: String? = nil) -> [String] {
        database.map { ["--database", $0] } ?? ["--state", "\(dir)/state"]
    }

    func backfill(_ dir: String, _ sandbox: SandboxProcess, _ arguments: [String], database: String? = nil) async throws -> ProcessResult {
        try await runProcess(callrec, ["telnyx", "backfill"] + store(dir, database: database) + arguments, environment: environment(base: sandbox.base))
    }

    /// The fetch jobs in the state's queue, by unique key.
    func fetchJobs(_ dir: String, database: String? = nil) async throws -> [String] {
        let list = try await runProcess(callrec, ["queue", "ls", "--json", "--job-state", "available,running,completed,discarded,cancelled"] + store(dir, database: database),
                                        environment: environment())
        let jobs = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]], "\(list.stderr)")
        return jobs.filter { $0["kind"] as? String == "telnyx-fetch" }.compactMap { $0["unique_key"] as? String }.sorted()
    }

    @Test(.timeLimit(.minutes(3)))
    func planOnlyRegistersNothingApplyRegistersTheUnknownOnesOnce() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let ids = try await seed(sandbox, count: 3)
            let plan = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--json"])
            #expect(plan.status == 0, "\(plan.stderr)")
            let planned = try json(plan)
            #expect(totals(planned) == ["listed": 3, "known": 0, "new": 3, "registered": 0, "unreadable": 0], "\(planned)")
            let items = planned["recordings"] as? [[String: Any]] ?? []
            #expect(Set(items.compactMap { $0["recording_id"] as? String }) == Set(ids))
            #expect(items.allSatisfy { $0["status"] as? String == "new" && ($0["key"] as? String)?.count == 64 }, "\(items)")
            #expect(try await fetchJobs(dir).isEmpty, "plan only registers nothing")

            // The text says what it would do, one line per recording.
            let text = try await backfill(dir, sandbox, ["--since", "2020-01-01"])
            let out = String(decoding: text.stdout, as: UTF8.self)
            #expect(text.status == 0 && ids.allSatisfy { out.contains($0) }, "\(out)\(text.stderr)")
            #expect(out.contains("3 listed") && out.contains("plan only") && out.contains("--apply"), "\(out)")

            let apply = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply", "--json"])
            #expect(apply.status == 0, "\(apply.stderr)")
            let applied = try json(apply)
            #expect(totals(applied)["registered"] == 3 && totals(applied)["new"] == 0, "\(applied)")
            let keys = (applied["recordings"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(try await fetchJobs(dir) == keys.map { "fetch:\($0)" }.sorted(), "one fetch job per registered recording")

            // Known now: a plan shows nothing to do, each with the ledger's state.
            let known = try json(try await backfill(dir, sandbox, ["--since", "2020-01-01", "--json"]))
            #expect(totals(known)["known"] == 3 && totals(known)["new"] == 0, "\(known)")
            #expect((known["recordings"] as? [[String: Any]] ?? []).allSatisfy { $0["state"] as? String == "pending" }, "\(known)")

            // One more recording: a second --apply registers only it.
            let late = try await seed(sandbox, count: 1)
            let again = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply", "--json"])
            #expect(again.status == 0, "\(again.stderr)")
            let second = try json(again)
            #expect(totals(second)["registered"] == 1 && totals(second)["known"] == 3, "\(second)")
            let registered = (second["recordings"] as? [[String: Any]] ?? []).filter { $0["status"] as? String == "registered" }
            #expect(registered.compactMap { $0["recording_id"] as? String } == late)
            #expect(try await fetchJobs(dir).count == 4)
            let third = try json(try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply", "--json"]))
            #expect(totals(third)["registered"] == 0 && totals(third)["known"] == 4, "\(third)")
        }
    }

    @Test(.timeLimit(.minutes(3)), .enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func onPostgreSQLApplyRegistersTheUnknownOnesOnce() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "backfill"))
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            try await seed(sandbox, count: 2)
            let apply = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply", "--json"], database: url)
            #expect(apply.status == 0, "\(apply.stderr)")
            let applied = try json(apply)
            let keys = (applied["recordings"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
            #expect(keys.count == 2 && totals(applied)["registered"] == 2, "\(applied)")
            #expect(try await fetchJobs(dir, database: url) == keys.map { "fetch:\($0)" }.sorted())
            let again = try json(try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply", "--json"], database: url))
            #expect(totals(again)["registered"] == 0 && totals(again)["known"] == 2, "\(again)")
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func theDateRangeSelectsTheRecordings() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            try await seed(sandbox, count: 2)  // created now
            let created = (try await sandbox.state()["telnyx_recordings"] as? [[String: Any]])?.first?["created_at"] as? String
            let today = String(try #require(created).prefix(10))
            for (arguments, listed) in [(["--since", today], 2), (["--since", "2020-01-01", "--until", today], 2),
                                        (["--since", "2020-01-01", "--until", "2020-12-31"], 0),
                                        (["--since", "2099-01-01T00:00:00Z"], 0)] {
                let run = try await backfill(dir, sandbox, arguments + ["--json"])
                #expect(run.status == 0, "\(arguments): \(run.stderr)")
                #expect(totals(try json(run))["listed"] == listed, "\(arguments)")
            }
            for (arguments, words) in [(["--since", "2026-02-30"], "--since 2026-02-30"), (["--since", "yesterday"], "--since yesterday"),
                                       (["--since", "2026-03-02", "--until", "2026-03-01"], "is before --since")] {
                let run = try await backfill(dir, sandbox, arguments)
                #expect(run.status == 2 && run.stderr.contains(words), "\(arguments): \(run.stderr)")
            }
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func sixHundredRecordingsComeInThreePages() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let ids = try await seed(sandbox, count: 600)
            let before = try await sandbox.requestCount()
            let run = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let document = try json(run)
            #expect(document["pages"] as? Int == 3 && totals(document)["listed"] == 600, "\(totals(document))")
            #expect(Set((document["recordings"] as? [[String: Any]] ?? []).compactMap { $0["recording_id"] as? String }) == Set(ids))
            #expect(try await sandbox.requestCount() - before == 3, "one request a page")
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func anItemWithoutItsCallIsNamedAndTheRestGoOn() async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment())
            defer { sandbox.terminate() }
            let bad = try await seed(sandbox, count: 1, fields: #""call_leg_id": """#)
            try await seed(sandbox, count: 1)
            let run = try await backfill(dir, sandbox, ["--since", "2020-01-01", "--apply"])
            #expect(run.status == 1, "\(run.stderr)")
            #expect(run.stderr.contains("unreadable \(bad[0])") && run.stderr.contains("call_leg_id"), "\(run.stderr)")
            #expect(String(decoding: run.stdout, as: UTF8.self).contains("1 registered"))
            #expect(try await fetchJobs(dir).count == 1)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func withoutTheAPIKeyItStopsNamingIt() async throws {
        try await withTemporaryDirectory { dir in
            var environment = environment(base: "http://127.0.0.1:9")
            environment["TELNYX_API_KEY"] = nil
            let run = try await runProcess(callrec, ["telnyx", "backfill", "--since", "2026-01-01", "--state", "\(dir)/state"], environment: environment)
            #expect(run.status == 2 && run.stderr.contains("TELNYX_API_KEY"), "\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"), "nothing is created before the settings are checked")
        }
    }
}

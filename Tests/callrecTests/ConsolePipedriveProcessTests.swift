import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// The console's Pipedrive side (issue 19) from the outside: a `callrec console` process over a
/// SQLite state, beside a `callrec sandbox` process when Pipedrive is asked — today's tokens on
/// the overview as the sandbox counted them, links into Pipedrive's web app, the warning filter,
/// and a reconcile plan applied exactly as shown.
@Suite(.serialized) struct ConsolePipedriveProcessTests {
    let callrec = callrecExecutable()
    let consoles = ConsoleProcessTests()
    let deletes = DeleteCLITests()

    /// The sandbox's count of Pipedrive tokens spent today.
    static func sandboxTokens(_ sandbox: SandboxProcess) async throws -> Int {
        try #require((try await sandbox.state()["counters"] as? [String: Any])?["tokens_spent"] as? Int)
    }

    /// The overview's token table: spent, left, daily budget.
    static func overviewTokens(_ html: String) -> (spent: Int, left: Int, budget: Int)? {
        func row(_ name: String) -> Int? {
            guard let range = html.range(of: #"<td>\#(name)</td><td class="n">"#) else { return nil }
            return Int(html[range.upperBound...].prefix { $0.isNumber })
        }
        guard let spent = row("spent"), let left = row("left"), let budget = row("daily budget") else { return nil }
        return (spent, left, budget)
    }

    /// The reconcile page's row of the recording at `path` (DeleteCLITests.seed: `/recordings/N.wav`).
    static func row(_ path: String, in html: String) -> String? {
        html.components(separatedBy: "<tr>").first { $0.contains(">\(path)</a>") }
    }

    /// A `callrec sandbox` process with `count` uploaded recordings seeded in it and in the
    /// state under `dir/state` (DeleteCLITests.seed); `body(dir, sandbox, environment, seeded)`.
    func withSeededSandbox(_ count: Int, _ body: (String, SandboxProcess, [String: String], [DeleteCLITests.Seeded]) async throws -> Void) async throws {
        try await withTemporaryDirectory { dir in
            let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: deletes.environment())
            defer { sandbox.terminate() }
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            let seeded = try await deletes.seed(count, parts: 1, base: sandbox.base, state: "\(dir)/state")
            try await body(dir, sandbox, deletes.environment(base: sandbox.base), seeded)
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func theOverviewShowsTodaysTokensAsTheSandboxCountedThem() async throws {
        try await withSeededSandbox(3) { dir, sandbox, environment, _ in

            let before = try await consoles.start(dir, name: "before", environment: environment)
            #expect(try before.request("/console/").text.contains("No Pipedrive request recorded yet."))
            before.stop()

            // A process that talks to Pipedrive (a reconcile pass: listing pages) records its spend.
            let pass = try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state"], environment: environment)
            #expect(pass.status == 0, "\(pass.stderr)")
            let counted = try await Self.sandboxTokens(sandbox)
            #expect(counted > 0)

            let console = try await consoles.start(dir, environment: environment)
            defer { console.stop() }
            let overview = try console.request("/console/").text
            let tokens = try #require(Self.overviewTokens(overview), "\(overview)")
            #expect(tokens.spent == counted && tokens.budget == 1_000_000 && tokens.left == 1_000_000 - counted, "\(tokens) vs \(counted)")
            // The budget renews at midnight UTC (PIPEDRIVE_BUDGET_RESET unset), said as a time and as a wait.
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let midnight = calendar.startOfDay(for: Date()).addingTimeInterval(86400)
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
            #expect(overview.contains("<td>resets at</td><td class=\"n\">\(formatter.string(from: midnight)) UTC</td>"), "\(overview)")
            #expect(overview.contains("<td>resets in</td>"))
        }
    }

    /// A worker's uploads (the upload path's spend, recorded as it goes and at its end) show on
    /// the overview as the sandbox counted them.
    @Test(.timeLimit(.minutes(5)))
    func aWorkersUploadsShowOnTheOverviewAsTheSandboxCountedThem() async throws {
        try await withSeededSandbox(1) { dir, sandbox, environment, _ in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            for i in 1...2 {
                try SyntheticAudio.write(.speech(), seconds: 4 + Double(i), to: "\(dir)/in/call-\(i).wav")
                _ = FileManager.default.createFile(atPath: "\(dir)/in/call-\(i).json", contents: Data(UploadFixtures.sidecar(index: i).utf8))
            }
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--state", "\(dir)/state", "--settle", "0"], environment: environment)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--delete-slots", "0", "--fetch-slots", "0"],
                                              environment: environment)
            #expect(worker.status == 0, "\(worker.stderr)")
            let counted = try await Self.sandboxTokens(sandbox)
            #expect(counted >= 40, "two creates and two uploads at least")
            let console = try await consoles.start(dir, environment: environment)
            defer { console.stop() }
            let tokens = try #require(Self.overviewTokens(try console.request("/console/").text))
            #expect(tokens.spent == counted, "\(tokens) vs \(counted)")
        }
    }

    /// Processes sharing one account (one ledger) share its daily budget: what one recorded counts
    /// against the next one's from its first request, and nothing goes out past it.
    @Test(.timeLimit(.minutes(5)))
    func processesSharingAnAccountShareItsDailyBudget() async throws {
        try await withSeededSandbox(3) { dir, sandbox, environment, _ in
            var environment = environment
            environment["PIPEDRIVE_DAILY_TOKENS"] = "30"

            // One listing page: 20 of the 30 tokens.
            let first = try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state", "--json"], environment: environment)
            #expect(first.status == 0, "\(first.stderr)")
            #expect(try await Self.sandboxTokens(sandbox) == 20)

            // The next process alone would have 30 for its 20; with the first one's spend it has 10.
            let second = try await runProcess(callrec, ["reconcile", "--state", "\(dir)/state", "--json"], environment: environment)
            let report = try #require(try JSONSerialization.jsonObject(with: second.stdout) as? [String: Any])["report"] as? [String: Any]
            let abort = try #require(report?["abort"] as? [String: Any], "\(second.stdout) \(second.stderr)")
            let message = abort["message"] as? String ?? ""
            #expect(message.contains("budget_spent") || message.contains("daily token budget is spent"), "\(message)")
            #expect(message.contains("20 more by other processes sharing the account"), "\(message)")
            #expect(try await Self.sandboxTokens(sandbox) == 20, "no request went out past the shared budget")
        }
    }

    @Test(.timeLimit(.minutes(5)))
    func aReconcilePlanIsShownThenAppliedExactlyAndAuditedWithWho() async throws {
        try await withSeededSandbox(6) { dir, sandbox, environment, seeded in
            func deleteBehindCallrecsBack(_ r: DeleteCLITests.Seeded) async throws {
                let (status, _) = try await sandbox.request("DELETE", "/v1/callLogs/\(r.callLogIDs[0])", headers: ["x-api-token": DeleteCLITests.pipedriveToken])
                #expect(status == 200)
            }
            try await deleteBehindCallrecsBack(seeded[1])
            try await deleteBehindCallrecsBack(seeded[3])
            let console = try await consoles.start(dir, environment: environment)
            defer { console.stop() }
            let state = { (key: String) async throws -> RecordingState? in try await ConsoleProcessTests.read(dir) { try await $0.recording(key: key)?.state } }

            let page = try console.request("/console/reconcile", user: "alice")
            #expect(page.status == 200 && page.text.contains(#"action="/console/reconcile/plan""#), "\(page.text)")
            let csrf = try #require(ConsoleProcessTests.field("csrf", in: page.text))
            #expect(try console.request("/console/reconcile/plan", method: "POST", form: [:]).status == 403, "no token")

            // Over the default cap (1 of 6 uploaded): listed, no plan to apply.
            let capped = try console.request("/console/reconcile/plan", method: "POST", form: ["csrf": csrf])
            #expect(capped.status == 200 && capped.text.contains("mass_delete_cap") && !capped.text.contains("Apply this plan"), "\(capped.text)")

            // The plan: the recordings whose call logs are gone, nothing deleted yet.
            let plan = try console.request("/console/reconcile/plan", method: "POST", form: ["csrf": csrf, "max_delete": "5"])
            #expect(plan.status == 200, "\(plan.text)")
            #expect(Self.row("/recordings/1.wav", in: plan.text)?.contains("<td>would_delete</td>") == true, "\(plan.text)")
            #expect(Self.row("/recordings/3.wav", in: plan.text)?.contains("<td>would_delete</td>") == true)
            #expect(Self.row("/recordings/2.wav", in: plan.text)?.contains("would_delete") != true)
            #expect(plan.text.contains("Apply this plan"))
            let shown = try #require(ConsoleProcessTests.field("plan", in: plan.text))
            #expect(try await state(seeded[1].key) == .uploaded)

            // Pipedrive changes before the apply: the pass finds another plan and deletes nothing.
            try await deleteBehindCallrecsBack(seeded[2])
            let changed = try console.request("/console/reconcile/apply", method: "POST", form: ["csrf": csrf, "plan": shown])
            #expect(changed.status == 409 && changed.text.contains("plan_changed"), "\(changed.status) \(changed.text)")
            #expect(try await state(seeded[1].key) == .uploaded)
            #expect(try await state(seeded[2].key) == .uploaded)
            #expect(try console.request("/console/reconcile/apply", method: "POST", form: ["csrf": csrf, "plan": shown]).status == 404, "a plan is applied once")

            // Planned again and applied: exactly those three, registered as alice's, for a worker to carry out.
            let again = try console.request("/console/reconcile/plan", method: "POST", form: ["csrf": csrf, "max_delete": "5"])
            #expect(Self.row("/recordings/1.wav", in: again.text)?.contains("<td>would_delete</td>") == true)
            #expect(Self.row("/recordings/2.wav", in: again.text)?.contains("<td>would_delete</td>") == true)
            let applied = try console.request("/console/reconcile/apply", method: "POST",
                                              form: ["csrf": csrf, "plan": try #require(ConsoleProcessTests.field("plan", in: again.text))])
            #expect(applied.status == 200 && applied.text.contains("apply: applied"), "\(applied.text)")
            for r in seeded {
                #expect(try await state(r.key) == ([seeded[1].key, seeded[2].key, seeded[3].key].contains(r.key) ? .deleting : .uploaded))
            }
            let (audit, jobs) = try await ConsoleProcessTests.read(dir) { store in
                (try await store.audit(key: seeded[1].key, limit: 50), try await store.jobs(JobQuery(uniqueKey: "delete:\(seeded[1].key)")))
            }
            #expect(audit.contains { $0.action == "delete_registered" && $0.actor == "console:alice" }, "\(audit)")
            #expect(jobs.map(\.state) == [.available])

            // The console's passes recorded their spend: all the sandbox counted but the test's three DELETEs (6 tokens each).
            let tokens = try #require(Self.overviewTokens(try console.request("/console/").text))
            let counted = try await Self.sandboxTokens(sandbox)
            #expect(tokens.spent == counted - 18, "\(tokens) vs \(counted)")
        }
    }

    @Test(.timeLimit(.minutes(4)))
    func aRecordingLinksIntoPipedriveAndTheListFiltersByWarning() async throws {
        try await withTemporaryDirectory { dir in
            try await ConsoleProcessTests.seed(dir)
            let (one, two) = (ConsoleProcessTests.key(1), ConsoleProcessTests.key(2))
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.commit([
                .putWarnings(key: one, codes: ["one_way_audio"]), .putWarnings(key: two, codes: ["clipping"]),
                .audit(AuditEntry(recordingKey: one, action: "match", target: "deal:42,person:7",
                                  detail: "single_open_deal: +44 20 7946 0123 is person 7, whose one open deal is 42", actor: "worker-1")),
                .setRecordingMetadata(key: two, metadata: #"{"call_log": {"to_phone_number": "+15550100", "person_id": 9, "org_id": 3}}"#),
            ])
            try await store.close()

            // A company domain in the API URL: links to the deal, the person, the organization.
            var environment = ClientEnvironment.make()
            environment["PIPEDRIVE_API_TOKEN"] = nil
            environment["PIPEDRIVE_API_URL"] = "https://acme.pipedrive.com/api/v1"
            let console = try await consoles.start(dir, name: "acme", environment: environment)
            let page = try console.request("/console/recordings/\(one)").text
            #expect(page.contains(#"<a href="https://acme.pipedrive.com/deal/42" rel="noreferrer">deal 42</a>"#), "\(page)")
            #expect(page.contains(#"href="https://acme.pipedrive.com/person/7""#))
            #expect(page.contains("<h2>Match</h2>") && page.contains("single_open_deal: +44 20 7946 0123 is person 7") && page.contains("by worker-1"))
            let sidecar = try console.request("/console/recordings/\(two)").text
            #expect(sidecar.contains(#"href="https://acme.pipedrive.com/person/9""#) && sidecar.contains(#"href="https://acme.pipedrive.com/organization/3""#))
            #expect(sidecar.contains("<strong>clipping</strong>"), "the ledger's warnings once the report is gone")

            // The warning filter, alone and with a state.
            #expect(ConsoleProcessTests.linkedKeys(try console.request("/console/recordings?warning=one_way_audio").text) == [one])
            #expect(ConsoleProcessTests.linkedKeys(try console.request("/console/recordings?warning=clipping&state=uploaded").text) == [two])
            #expect(ConsoleProcessTests.linkedKeys(try console.request("/console/recordings?warning=clipping&state=failed").text).isEmpty)
            #expect(try console.request("/console/recordings?warning=clipping").text.contains(#"name="warning" value="clipping""#))
            console.stop()

            // The generic API URL names no company: no link, and the page says how to get them.
            environment["PIPEDRIVE_API_URL"] = nil
            let generic = try await consoles.start(dir, name: "generic", environment: environment)
            let plain = try generic.request("/console/recordings/\(one)").text
            #expect(plain.contains("deal 42") && !plain.contains("pipedrive.com/deal") && plain.contains("PIPEDRIVE_WEB_URL"), "\(plain)")
            generic.stop()
            environment["PIPEDRIVE_WEB_URL"] = "https://example.pipedrive.com/"
            let configured = try await consoles.start(dir, name: "configured", environment: environment)
            defer { configured.stop() }
            #expect(try configured.request("/console/recordings/\(one)").text.contains(#"href="https://example.pipedrive.com/deal/42""#))
        }
    }

    /// A real transcode keeps its warnings in the ledger: the list finds a one-way call by its code.
    @Test(.timeLimit(.minutes(4)))
    func aTranscodesWarningsAreFoundByTheList() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.oneWay(), seconds: 30, channels: 2, to: "\(dir)/in/call.wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/in/call.json", contents: Data(UploadFixtures.sidecar(index: 1).utf8))
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--state", "\(dir)/state", "--settle", "0"])
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let worker = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--upload-slots", "0", "--delete-slots", "0", "--fetch-slots", "0"])
            #expect(worker.status == 0 || worker.status == 3, "\(worker.stderr)")
            let recording = try #require(try await ConsoleProcessTests.read(dir) { try await $0.recordingPage(RecordingPageQuery()) }.first)
            #expect(try await ConsoleProcessTests.read(dir) { try await $0.warnings(key: recording.key) }.contains("one_way_audio"))
            let console = try await consoles.start(dir)
            defer { console.stop() }
            #expect(ConsoleProcessTests.linkedKeys(try console.request("/console/recordings?warning=one_way_audio").text) == [recording.key])
            #expect(ConsoleProcessTests.linkedKeys(try console.request("/console/recordings?warning=clipping").text).isEmpty)
        }
    }
}

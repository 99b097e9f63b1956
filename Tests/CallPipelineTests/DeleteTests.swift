import AsyncHTTPClient
import CallAPI
import CallAudio
import CallJobs
import CallPipeline
import CallSandbox
import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallSupport
import CallTesting
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// Cascade delete and reconcile (issue 7) against the sandbox over loopback and real stores:
/// what is deleted is exactly one recording's call logs, provider recording, VoipNow event and
/// spool; reconcile acts only on definite 404/410s; a crash resumes; nothing comes back.
@Suite struct DeleteTests {
    // MARK: - Fixture

    /// One seeded `uploaded` recording: call logs in the sandbox, a Telnyx recording, a VoipNow
    /// event (plus a bystander event on the same extension that must survive), spool parts.
    struct Seeded: Sendable {
        var key: String
        var path: String
        var callLogIDs: [String]
        var telnyxID: String
        var voipnowExtension: String
        var voipnowEventID: String
        var bystanderEventID: String
    }

    final class Fixture: Sendable {
        let dir: String
        let store: any CallStore
        let sandbox: Sandbox
        let url: URL
        let configuration: SandboxConfiguration
        let http: HTTPClient
        let pipedrive: PipedriveClient
        let apis: LiveDeleteAPIs
        let spool: Spool
        let trash: Trash
        let logger = Logger(label: "test")

        init(dir: String, store: any CallStore, sandbox: Sandbox, url: URL, configuration: SandboxConfiguration,
             decorate: (@Sendable (String) -> [(String, String)])? = nil, pipedriveToken: String? = nil) {
            self.dir = dir
            self.store = store
            self.sandbox = sandbox
            self.url = url
            self.configuration = configuration
            http = HTTPClient.makeForAPIs()
            let limiter = PipedriveLimiter(burst: configuration.burstPerTwoSeconds, window: configuration.burstWindow, dailyTokens: configuration.dailyTokens)
            var pipedrive = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(pipedriveToken ?? configuration.pipedriveToken),
                                            limiter: limiter, httpClient: http, logger: logger)
            pipedrive.decorate = decorate
            self.pipedrive = pipedrive
            apis = LiveDeleteAPIs(
                pipedrive: pipedrive,
                telnyx: TelnyxClient(baseURL: url.absoluteString + "/v2", key: Secret(configuration.telnyxKey), httpClient: http, logger: logger),
                voipnow: VoipNowClient(baseURL: url.absoluteString, token: Secret(configuration.voipnowToken), httpClient: http, logger: logger))
            spool = Spool(root: "\(dir)/state/spool")
            trash = Trash(root: "\(dir)/state/trash")
        }

        func shutdown() async { try? await http.shutdown() }

        var planner: DeletionPlanner { DeletionPlanner(store: store, actor: "test") }
        var handler: DeleteJobHandler { DeleteJobHandler(apis: apis, spool: spool, trash: trash) }

        func reconciler(_ configure: (inout Reconciler.Options) -> Void = { _ in }) -> Reconciler {
            var options = Reconciler.Options()
            configure(&options)
            return Reconciler(store: store, directory: apis, planner: planner, options: options, logger: logger)
        }

        /// Seeds `count` uploaded recordings; recording i has `parts(i)` parts.
        func seed(_ count: Int, parts: (Int) -> Int = { $0 % 3 == 0 ? 2 : 1 }) async throws -> [Seeded] {
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            var seeded: [Seeded] = []
            for i in 0..<count {
                let key = SHA256.hash(data: Data(UUID().uuidString.utf8)).map { String(format: "%02x", $0) }.joined()
                let path = "\(dir)/in/rec-\(i)-\(key.prefix(6)).wav"
                _ = FileManager.default.createFile(atPath: path, contents: Data("source \(i)".utf8))
                let n = parts(i)
                let spoolPaths = spool.partPaths(key: key, count: n)
                try FileManager.default.createDirectory(atPath: spool.directory(key: key), withIntermediateDirectories: true)
                var logIDs: [String] = []
                var partRows: [Part] = []
                for j in 0..<n {
                    let id = "CA" + key.prefix(24) + String(format: "%02d", j + 1)
                    await sandbox.seedCallLog(id: id)
                    logIDs.append(id)
                    _ = FileManager.default.createFile(atPath: spoolPaths[j], contents: Data(repeating: UInt8(j), count: 100))
                    partRows.append(Part(recordingKey: key, index: j + 1, spoolPath: spoolPaths[j], bytes: 100, seconds: 10, sha256: key,
                                         state: .attached, callLogID: id, callLogOrigin: .created, marker: UploadJobHandler.marker(key: key, index: j + 1),
                                         attachedAt: Date()))
                }
                let telnyx = await sandbox.seedTelnyxRecording()
                let ext = "0003*\(200 + seeded.count)"
                let event = await sandbox.seedVoipNowEvent(userId: "@me", extension: ext, type: 2)
                let bystander = await sandbox.seedVoipNowEvent(userId: "@me", extension: ext, type: 2)
                let reference = #"{"event_id":"\#(event)","event_type":2,"extension":"\#(ext)","user_id":"@me"}"#
                try await store.commit([
                    .insertRecording(Recording(key: key, path: path, state: .uploaded, partCount: n, seconds: Double(10 * n))),
                    .replaceParts(key: key, parts: partRows),
                    .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: telnyx)),
                    .putProviderRef(ProviderRef(provider: ProviderRef.voipnow, recordingKey: key, reference: reference)),
                ])
                seeded.append(Seeded(key: key, path: path, callLogIDs: logIDs, telnyxID: telnyx, voipnowExtension: ext,
                                     voipnowEventID: event, bystanderEventID: bystander))
            }
            return seeded
        }

        /// A request made with plain HTTP, not through callrec's clients: "behind callrec's back".
        @discardableResult
        func raw(_ method: String, _ path: String, bearer: String? = nil) async throws -> Int {
            var request = HTTPClientRequest(url: url.absoluteString + path)
            request.method = method == "DELETE" ? .DELETE : .GET
            if let bearer { request.headers.add(name: "authorization", value: "Bearer \(bearer)") } else {
                request.headers.add(name: "x-api-token", value: configuration.pipedriveToken)
            }
            request.headers.add(name: "x-sandbox-fault", value: "none")
            let response = try await http.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }

        func deleteBehindBack(callLog id: String) async throws {
            let status = try await raw("DELETE", "/v1/callLogs/\(id)")
            #expect(status == 200)
        }

        /// Runs the delete queue in process until idle.
        @discardableResult
        func runDeletes(_ handler: DeleteJobHandler? = nil) async throws -> WorkerSummary {
            let worker = DeleteRun.worker(store: store, handler: handler ?? self.handler, logger: logger)
            try await worker.run()
            return worker.summary
        }

        /// Everything of `r` is still there: call logs live, provider recording, both events, spool, ledger.
        func expectUntouched(_ r: Seeded, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            for id in r.callLogIDs {
                #expect(await sandbox.callLog(id: id)?.deleted == false, "call log \(id) of an untouched recording", sourceLocation: sourceLocation)
            }
            #expect(await sandbox.telnyxRecordingExists(r.telnyxID), sourceLocation: sourceLocation)
            #expect(Set(await sandbox.voipNowEvents(extension: r.voipnowExtension).map(\.id)) == [r.voipnowEventID, r.bystanderEventID],
                    sourceLocation: sourceLocation)
            #expect(FileManager.default.fileExists(atPath: spool.directory(key: r.key)), sourceLocation: sourceLocation)
            #expect(try await store.recording(key: r.key)?.state == .uploaded, sourceLocation: sourceLocation)
            #expect(try await store.tombstone(key: r.key) == nil, sourceLocation: sourceLocation)
        }

        /// Everything of `r` is gone (the bystander event stays), the spool is in the trash, the
        /// ledger says deleted with a tombstone.
        func expectDeleted(_ r: Seeded, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            for id in r.callLogIDs {
                #expect(await sandbox.callLog(id: id)?.deleted == true, "call log \(id)", sourceLocation: sourceLocation)
            }
            #expect(await !sandbox.telnyxRecordingExists(r.telnyxID), sourceLocation: sourceLocation)
            #expect(await sandbox.voipNowEvents(extension: r.voipnowExtension).map(\.id) == [r.bystanderEventID], sourceLocation: sourceLocation)
            #expect(!FileManager.default.fileExists(atPath: spool.directory(key: r.key)), sourceLocation: sourceLocation)
            let trashed = trash.entries(key: r.key)
            #expect(trashed.count == 1, sourceLocation: sourceLocation)
            if let entry = trashed.first {
                #expect(FileManager.default.fileExists(atPath: entry.path + "/part-001.mp3"), sourceLocation: sourceLocation)
            }
            #expect(try await store.recording(key: r.key)?.state == .deleted, sourceLocation: sourceLocation)
            #expect(try await store.tombstone(key: r.key) != nil, sourceLocation: sourceLocation)
            #expect(try await store.providerRefs(key: r.key).allSatisfy { $0.state == "deleted" }, sourceLocation: sourceLocation)
        }

        /// No request ever addressed VoipNow events without both type and id.
        func expectNoWideVoipNowDelete(sourceLocation: SourceLocation = #_sourceLocation) async {
            let counters = await sandbox.counters()
            #expect(counters.requestsPerRoute["DELETE /uapi/extensions/{user_id}/{extension}/phoneCallEvents"] == nil, sourceLocation: sourceLocation)
            #expect(counters.requestsPerRoute["DELETE /uapi/extensions/{user_id}/{extension}/phoneCallEvents/{type}"] == nil, sourceLocation: sourceLocation)
        }
    }

    static func sidecar(index: Int) -> String {
        #"{"call_log": {"outcome": "connected", "to_phone_number": "+1555000\#(index)", "start_time": "2026-11-21 10:\#(String(format: "%02d", index % 60)):00", "subject": "Call \#(index)"}}"#
    }

    /// `callrec upload` in process (like UploadRunTests): register, run the worker until idle, report.
    static func upload(_ dir: String, url: URL, configuration: SandboxConfiguration, store: any CallStore) async throws -> BatchReport {
        let http = HTTPClient.makeForAPIs()
        let limiter = PipedriveLimiter(burst: configuration.burstPerTwoSeconds, dailyTokens: configuration.dailyTokens)
        let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(configuration.pipedriveToken), limiter: limiter,
                                     httpClient: http, logger: Logger(label: "test"))
        var options = UploadRun.Options()
        options.jobs = 2
        options.settings.partMaximumSeconds = 60
        options.settle = .immediate
        let run = UploadRun(root: "\(dir)/in", store: store, spool: Spool(root: "\(dir)/state/spool"), client: client, options: options,
                            logger: Logger(label: "test"))
        let pool = CPUPool(threads: 2)
        defer { pool.shutdown() }
        do {
            let registration = try await run.register(excluding: [])
            try await run.worker(pool: pool).run()
            let report = try await run.report(registration: registration, wallSeconds: 0)
            try await http.shutdown()
            return report
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    static func sandboxConfiguration() -> SandboxConfiguration {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 2_000
        configuration.dailyTokens = 10_000_000
        return configuration
    }

    /// The PostgreSQL runs of the fixture's `postgres: true` tests, shown skipped where
    /// PostgreSQL is not available.
    @Test(.enabled(if: TestPostgres.available, "PostgreSQL is not available: the deletion tests ran on SQLite only"))
    func deletionTestsRunOnPostgres() {}

    /// Runs `body` with a sandbox and a fresh SQLite store (and again with PostgreSQL when
    /// `postgres` and a server is available).
    static func withFixture(postgres: Bool = false, configuration: SandboxConfiguration = sandboxConfiguration(),
                            decorate: (@Sendable (String) -> [(String, String)])? = nil,
                            _ body: (Fixture) async throws -> Void) async throws {
        var backends: [String] = ["sqlite"]
        if postgres, TestPostgres.available { backends.append(try #require(try TestPostgres.freshDatabase(prefix: "delete"))) }
        for backend in backends {
            try await withTemporaryDirectory { dir in
                let store: any CallStore = backend == "sqlite" ? try SQLiteStore(path: "\(dir)/state/callrec.sqlite") : try PostgresStore(url: backend)
                try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
                try await store.migrate()
                try await withRunningStore(store) { store in
                    try await withSandbox(configuration) { url, sandbox in
                        let fixture = Fixture(dir: dir, store: store, sandbox: sandbox, url: url, configuration: configuration, decorate: decorate)
                        do {
                            try await body(fixture)
                        } catch {
                            await fixture.shutdown()
                            throw error
                        }
                        await fixture.shutdown()
                    }
                }
            }
        }
    }

    // MARK: - Cascade

    @Test func deletingPartTwosCallLogDeletesTheWholeRecordingAndNothingElse() async throws {
        try await Self.withFixture(postgres: true) { f in
            let seeded = try await f.seed(4, parts: { $0 == 1 ? 3 : 1 })
            let target = seeded[1]
            let recording = try await f.planner.resolve(.callLog(target.callLogIDs[1]))
            #expect(recording.key == target.key)
            let registration = try await f.planner.register(key: recording.key, reason: "test: delete --call-log \(target.callLogIDs[1])")
            #expect(registration.outcome == .registered)
            #expect(registration.steps.map(\.target) == target.callLogIDs.map { "pipedrive:\($0)" } + [
                "telnyx:\(target.telnyxID)",
                "voipnow:{\"event_id\":\"\(target.voipnowEventID)\",\"event_type\":2,\"extension\":\"\(target.voipnowExtension)\",\"user_id\":\"@me\"}",
                "spool",
            ])
            #expect(try await f.store.recording(key: target.key)?.state == .deleting)
            let summary = try await f.runDeletes()
            #expect(summary[.completed] == 1)

            try await f.expectDeleted(target)
            for other in seeded where other.key != target.key { try await f.expectUntouched(other) }
            await f.expectNoWideVoipNowDelete()

            let deletion = try #require(try await f.store.deletion(id: registration.deletionID ?? ""))
            #expect(deletion.finishedAt != nil)
            #expect(deletion.steps.allSatisfy { $0.state == .done })
            #expect(deletion.steps.map(\.httpStatus) == [200, 200, 200, 200, 200, nil])
            // Every step is in the audit table, with its HTTP status.
            let audit = try await f.store.audit(key: target.key, limit: 100)
            for step in deletion.steps {
                let lines = audit.filter { $0.action == "delete_step" && $0.target == step.target }
                #expect(lines.count == 1, "\(step.target)")
                #expect(lines.first?.httpStatus == step.httpStatus)
            }
            #expect(audit.contains { $0.action == "delete_registered" })
            #expect(audit.contains { $0.action == "deleted" })
            // Once deleted, always deleted: a second delete does nothing.
            #expect(try await f.planner.register(key: target.key, reason: "again").outcome == .alreadyDeleted)
            #expect(try await f.planner.resolve(.path(target.path)).key == target.key)
        }
    }

    @Test func targetsGoneAlreadyCountAsDone() async throws {
        try await Self.withFixture { f in
            let seeded = try await f.seed(2, parts: { _ in 2 })
            let target = seeded[0]
            // Gone before callrec deletes them: call log 1 (410 on DELETE), the Telnyx recording
            // (404), the VoipNow event (its id is no longer valid).
            try await f.deleteBehindBack(callLog: target.callLogIDs[0])
            #expect(try await f.raw("DELETE", "/v2/recordings/\(target.telnyxID)", bearer: f.configuration.telnyxKey) == 200)
            let eventPath = "/uapi/extensions/@me/\(target.voipnowExtension.replacingOccurrences(of: "*", with: "%2A"))/phoneCallEvents/2/\(target.voipnowEventID)"
            #expect(try await f.raw("DELETE", eventPath, bearer: f.configuration.voipnowToken) == 200)

            let registration = try await f.planner.register(key: target.key, reason: "test")
            try await f.runDeletes()
            try await f.expectDeleted(target)
            try await f.expectUntouched(seeded[1])
            let deletion = try #require(try await f.store.deletion(id: registration.deletionID ?? ""))
            let status = Dictionary(uniqueKeysWithValues: deletion.steps.map { ($0.target, $0.httpStatus) })
            #expect(status["pipedrive:\(target.callLogIDs[0])"] == 404)  // 404/410: already gone
            #expect(status["pipedrive:\(target.callLogIDs[1])"] == 200)
            #expect(status["telnyx:\(target.telnyxID)"] == 404)
            #expect(deletion.steps.first { $0.target.hasPrefix("voipnow:") }?.httpStatus == 204)
            #expect(deletion.steps.allSatisfy { $0.state == .done })
        }
    }

    // MARK: - Reconcile

    @Test func reconcileFindsCallLogsDeletedBehindCallrecsBack() async throws {
        try await Self.withFixture(postgres: true) { f in
            let seeded = try await f.seed(40)  // 14 with two parts: 54 call logs
            let gone = [seeded[3], seeded[7]]  // 3 has two parts: its second call log goes
            try await f.deleteBehindBack(callLog: seeded[3].callLogIDs[1])
            try await f.deleteBehindBack(callLog: seeded[7].callLogIDs[0])
            // Reported, never deleted: a source file gone, a spool gone, a Telnyx recording gone.
            try FileManager.default.removeItem(atPath: seeded[10].path)
            try FileManager.default.removeItem(atPath: f.spool.partPaths(key: seeded[11].key, count: 1)[0])
            #expect(try await f.raw("DELETE", "/v2/recordings/\(seeded[12].telnyxID)", bearer: f.configuration.telnyxKey) == 200)
            let telnyx = try #require(f.apis.telnyx)

            // The plan: nothing changes.
            let tokensBefore = await f.sandbox.tokensSpent()
            var planner = f.reconciler()
            planner.providerInventory = { Set(try await telnyx.allRecordings().map { $0.id.lowercased() }) }
            let plan = try await planner.run()
            #expect(plan.abort == nil)
            #expect(plan.outcome == .planned)
            #expect(plan.totals.cap == 2)
            #expect(plan.planned.map(\.key).sorted() == gone.map(\.key).sorted())
            #expect(plan.planned.allSatisfy { $0.action == "would_delete" && $0.evidence.allSatisfy { $0.httpStatus == 410 } })
            #expect(plan.totals.pages == 2 && plan.totals.candidates == 2 && plan.totals.lookups == 3)
            #expect(plan.totals.tokensSpent == 2 * 20 + 3 * 2)
            #expect(await f.sandbox.tokensSpent() - tokensBefore == plan.totals.tokensSpent)
            let findings = Dictionary(grouping: plan.recordings.flatMap { line in line.findings.map { ($0.code, line.key) } }, by: \.0).mapValues { $0.map(\.1) }
            #expect(findings["local_file_missing"] == [seeded[10].key])
            #expect(findings["spool_missing"] == [seeded[11].key])
            #expect(findings["provider_recording_missing"] == [seeded[12].key])
            for r in seeded where r.key != seeded[10].key && r.key != seeded[11].key && r.key != seeded[12].key {
                if gone.contains(where: { $0.key == r.key }) {
                    #expect(await f.sandbox.telnyxRecordingExists(r.telnyxID))
                    #expect(try await f.store.recording(key: r.key)?.state == .uploaded)
                } else {
                    try await f.expectUntouched(r)
                }
            }

            // Apply: the same cascade for both; the confirmed call logs are not sent a DELETE.
            let deletesBefore = await f.sandbox.requestCount(route: "DELETE /v1/callLogs/{id}")
            let applied = try await f.reconciler { $0.apply = true }.run()
            #expect(applied.outcome == .applied)
            #expect(applied.totals.registered == 2)
            try await f.runDeletes()
            #expect(await f.sandbox.requestCount(route: "DELETE /v1/callLogs/{id}") - deletesBefore == 1)  // seeded[3]'s first part only
            for r in gone { try await f.expectDeleted(r) }
            for r in seeded where !gone.contains(where: { $0.key == r.key }) {
                for id in r.callLogIDs { #expect(await f.sandbox.callLog(id: id)?.deleted == false) }
                #expect(try await f.store.recording(key: r.key)?.state == .uploaded)
                #expect(Set(await f.sandbox.voipNowEvents(extension: r.voipnowExtension).map(\.id)).count == 2)
                if r.key != seeded[12].key { #expect(await f.sandbox.telnyxRecordingExists(r.telnyxID)) }
            }
            await f.expectNoWideVoipNowDelete()
            let tombstone = try #require(try await f.store.tombstone(key: seeded[7].key))
            #expect(tombstone.reason.contains("reconcile: call log \(seeded[7].callLogIDs[0]) answered 410"))

            // The next pass finds nothing to do.
            let again = try await f.reconciler { $0.apply = true }.run()
            #expect(again.outcome == .clean)
            #expect(again.totals.candidates == 0)
        }
    }

    @Test func massDeleteCapAbortsThePass() async throws {
        try await Self.withFixture { f in
            let seeded = try await f.seed(40, parts: { _ in 1 })
            for r in seeded.prefix(5) { try await f.deleteBehindBack(callLog: r.callLogIDs[0]) }
            let before = await f.sandbox.requestCount(route: "GET /v1/callLogs/{id}")
            let report = try await f.reconciler { $0.apply = true }.run()
            #expect(report.outcome == .aborted)
            #expect(report.abort?.code == "mass_delete_cap")
            #expect(report.totals.cap == 2 && report.totals.registered == 0)
            // Aborted before spending a GET on candidates.
            #expect(await f.sandbox.requestCount(route: "GET /v1/callLogs/{id}") == before)
            #expect(try await f.store.openDeletions().isEmpty)
            for r in seeded { #expect(try await f.store.recording(key: r.key)?.state == .uploaded) }

            let capped = try await f.reconciler { $0.apply = true; $0.maxDelete = 4 }.run()
            #expect(capped.abort?.code == "mass_delete_cap")
            let forced = try await f.reconciler { $0.apply = true; $0.force = true }.run()
            #expect(forced.outcome == .applied && forced.totals.registered == 5)
            try await f.runDeletes()
            for r in seeded.prefix(5) { try await f.expectDeleted(r) }
            for r in seeded.dropFirst(5) { try await f.expectUntouched(r) }
        }
    }

    @Test func defaultCapRule() {
        #expect(Reconciler.Options.defaultCap(uploaded: 0) == 1)
        #expect(Reconciler.Options.defaultCap(uploaded: 10) == 1)
        #expect(Reconciler.Options.defaultCap(uploaded: 40) == 2)
        #expect(Reconciler.Options.defaultCap(uploaded: 100) == 5)
        #expect(Reconciler.Options.defaultCap(uploaded: 400) == 20)
        #expect(Reconciler.Options.defaultCap(uploaded: 10_000) == 20)
    }

    /// 5xx on the confirmations, 5xx on the listing, a refused token, a foreign account: each
    /// pass deletes nothing and says why.
    @Test func apiErrorsMakeAPassDeleteNothing() async throws {
        let failGets: @Sendable (String) -> [(String, String)] = { name in
            name.hasPrefix("GET /callLogs/") ? [("x-sandbox-fault", "500")] : []
        }
        try await Self.withFixture(decorate: failGets) { f in
            let seeded = try await f.seed(20, parts: { _ in 1 })
            try await f.deleteBehindBack(callLog: seeded[0].callLogIDs[0])
            let report = try await f.reconciler { $0.apply = true }.run()
            #expect(report.outcome == .aborted)
            #expect(report.abort?.code == "api_error")
            #expect(report.abort?.message.contains("500") == true)
            #expect(try await f.store.openDeletions().isEmpty)
            #expect(try await f.store.recording(key: seeded[0].key)?.state == .uploaded)
            #expect(await f.sandbox.telnyxRecordingExists(seeded[0].telnyxID))
            for r in seeded.dropFirst() { try await f.expectUntouched(r) }
        }
        let failListing: @Sendable (String) -> [(String, String)] = { name in
            name == "GET /callLogs" ? [("x-sandbox-fault", "503")] : []
        }
        try await Self.withFixture(decorate: failListing) { f in
            let seeded = try await f.seed(5, parts: { _ in 1 })
            try await f.deleteBehindBack(callLog: seeded[0].callLogIDs[0])
            let report = try await f.reconciler { $0.apply = true; $0.force = true }.run()
            #expect(report.abort?.code == "api_error")
            #expect(report.totals.lookups == 0)
            #expect(try await f.store.recording(key: seeded[0].key)?.state == .uploaded)
        }
        try await Self.withFixture { f in
            let seeded = try await f.seed(5, parts: { _ in 1 })
            try await f.deleteBehindBack(callLog: seeded[0].callLogIDs[0])
            // A refused token (401).
            let wrong = Fixture(dir: f.dir, store: f.store, sandbox: f.sandbox, url: f.url, configuration: f.configuration, pipedriveToken: "0123456789abcdef0123456789abcdef01234567")
            let refused = try await wrong.reconciler { $0.apply = true; $0.force = true }.run()
            await wrong.shutdown()
            #expect(refused.abort?.code == "api_error")
            #expect(refused.abort?.message.contains("401") == true)
            // Another account: its listing shows none of the known call logs, and every GET
            // answers 404 — exactly what must never become a mass delete.
            try await withSandbox(Self.sandboxConfiguration()) { url, other in
                for i in 0..<3 { await other.seedCallLog(id: "CAforeign\(i)") }
                let foreign = Fixture(dir: f.dir, store: f.store, sandbox: other, url: url, configuration: other.configuration)
                let report = try await foreign.reconciler { $0.apply = true; $0.maxDelete = 100 }.run()
                await foreign.shutdown()
                #expect(report.abort?.code == "no_known_call_log_listed")
                #expect(report.totals.lookups == 0)
            }
            #expect(try await f.store.openDeletions().isEmpty)
            for r in seeded { #expect(try await f.store.recording(key: r.key)?.state == .uploaded) }
        }
    }

    /// Random 5xx, 429s and lost answers on every API: whatever the passes do, they delete only
    /// the recording whose call log was deleted in the CRM.
    @Test func randomFaultsNeverCauseAWrongDeletion() async throws {
        var configuration = Self.sandboxConfiguration()
        configuration.faults = try FaultPlan(specification: "500=0.1,503=0.05,lost=0.05")
        try await Self.withFixture(configuration: configuration) { f in
            let seeded = try await f.seed(20, parts: { _ in 1 })
            try await f.deleteBehindBack(callLog: seeded[5].callLogIDs[0])
            for _ in 0..<3 {
                _ = try await f.reconciler { $0.apply = true }.run()
                try await f.runDeletes()
            }
            for r in seeded where r.key != seeded[5].key {
                for id in r.callLogIDs { #expect(await f.sandbox.callLog(id: id)?.deleted == false) }
                #expect(await f.sandbox.telnyxRecordingExists(r.telnyxID))
                #expect(await f.sandbox.voipNowEvents(extension: r.voipnowExtension).count == 2)
                #expect(try await f.store.recording(key: r.key)?.state == .uploaded)
            }
            await f.expectNoWideVoipNowDelete()
        }
    }

    // MARK: - Durability

    /// The process stops after a step's DELETE answered but before its result was committed;
    /// the next run skips the steps done, repeats that one (404/410: done) and finishes.
    @Test func aCascadeInterruptedMidwayFinishesOnTheNextRun() async throws {
        try await Self.withFixture { f in
            let seeded = try await f.seed(2, parts: { _ in 3 })
            let target = seeded[0]
            let registration = try await f.planner.register(key: target.key, reason: "test")
            let stop = "pipedrive:\(target.callLogIDs[1])"
            let box = Mutex<Worker<ContinuousClock>?>(nil)
            var crashing = f.handler
            crashing.checkpoint = { point in
                guard point == .afterRequest(stop) else { return }
                box.withLock { $0 }?.stopNow()
                throw CancellationError()
            }
            let first = DeleteRun.worker(store: f.store, handler: crashing, logger: f.logger)
            box.withLock { $0 = first }
            try await first.run()
            #expect(first.summary[.released] == 1)
            let halfway = try #require(try await f.store.deletion(id: registration.deletionID ?? ""))
            #expect(halfway.steps.map(\.state) == [.done, .pending, .pending, .pending, .pending, .pending])
            #expect(await f.sandbox.callLog(id: target.callLogIDs[1])?.deleted == true)  // sent, not recorded
            #expect(try await f.store.recording(key: target.key)?.state == .deleting)

            let second = try await f.runDeletes()
            #expect(second[.completed] == 1)
            try await f.expectDeleted(target)
            try await f.expectUntouched(seeded[1])
            let deletion = try #require(try await f.store.deletion(id: registration.deletionID ?? ""))
            #expect(deletion.steps.map(\.httpStatus) == [200, 404, 200, 200, 200, nil])
            let audit = try await f.store.audit(key: target.key, limit: 100)
            #expect(audit.filter { $0.target == "pipedrive:\(target.callLogIDs[0])" }.count == 1)  // not repeated
            #expect(await f.sandbox.requestCount(route: "DELETE /v1/callLogs/{id}") == 4)  // 3 parts + the repeat
        }
    }

    /// A transient failure keeps the step pending (audited) and retries; a refused step fails the
    /// deletion, which stays open (and the recording `deleting`) until run again.
    @Test func transientFailuresRetryAndRefusalsLeaveTheDeletionOpen() async throws {
        // Five 500s in a row: more than the client's own retries, so the job retries.
        let flaky = Mutex(5)
        try await Self.withFixture(decorate: { name in
            guard name.hasPrefix("DELETE /callLogs/") else { return [] }
            return flaky.withLock { n in
                guard n > 0 else { return [] }
                n -= 1
                return [("x-sandbox-fault", "500")]
            }
        }) { f in
            let seeded = try await f.seed(2, parts: { _ in 1 })
            _ = try await f.planner.register(key: seeded[0].key, reason: "test")
            let summary = try await f.runDeletes()
            #expect(summary[.retried] == 1 && summary[.completed] == 1)
            try await f.expectDeleted(seeded[0])
            let attempts = try await f.store.audit(key: seeded[0].key, limit: 100).filter { $0.action == "delete_attempt" }
            #expect(attempts.map(\.httpStatus) == [500])
            #expect(attempts.first?.target == "pipedrive:\(seeded[0].callLogIDs[0])")

            // A Telnyx id that is not one: refused locally, the step fails, the rest goes on.
            let r = seeded[1]
            try await f.store.commit([.putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: r.key, reference: "not-a-uuid"))])
            let second = try await f.planner.register(key: r.key, reason: "test")
            let failed = try await f.runDeletes()
            #expect(failed[.discarded] == 1)
            let deletion = try #require(try await f.store.deletion(id: second.deletionID ?? ""))
            #expect(deletion.finishedAt == nil)
            #expect(deletion.steps.first { $0.target == "telnyx:not-a-uuid" }?.state == .failed)
            #expect(deletion.steps.filter { $0.target != "telnyx:not-a-uuid" }.allSatisfy { $0.state == .done })
            #expect(try await f.store.recording(key: r.key)?.state == .deleting)
            #expect(try await f.store.tombstone(key: r.key) == nil)
            // Registering again resumes the same deletion (and fails the same step again).
            let again = try await f.planner.register(key: r.key, reason: "again")
            #expect(again.outcome == .resumed && again.deletionID == second.deletionID)
        }
    }

    // MARK: - Call logs callrec did not create; steps a user gives up

    /// A call log callrec did not create (the sidecar's call_log_id, or of unknown origin) is
    /// left by the cascade — in a reconcile too — and said so in the deletion, the audit and the
    /// report; `includeForeign` deletes it like any other.
    @Test func callLogsCallrecDidNotCreateAreLeftUnlessIncluded() async throws {
        try await Self.withFixture(postgres: true) { f in
            let seeded = try await f.seed(4, parts: { $0 == 0 ? 2 : 1 })
            // Recording 0: its second part went to a call log made by hand; recording 1: its only
            // call log has no recorded origin (treated as not callrec's).
            var parts = try await f.store.parts(key: seeded[0].key)
            parts[1].callLogOrigin = .given
            try await f.store.commit([.updatePart(parts[1])])
            var unknown = try #require(try await f.store.parts(key: seeded[1].key).first)
            unknown.callLogOrigin = nil
            try await f.store.commit([.updatePart(unknown)])

            // Reconcile: recording 0's first call log was deleted in Pipedrive.
            try await f.deleteBehindBack(callLog: seeded[0].callLogIDs[0])
            let report = try await f.reconciler { $0.apply = true; $0.maxDelete = 5 }.run()
            let line = try #require(report.recordings.first { $0.key == seeded[0].key })
            #expect(!line.targets.contains("pipedrive:\(seeded[0].callLogIDs[1])"))
            #expect(line.findings.contains { $0.code == "call_log_left" && $0.detail.hasPrefix("pipedrive:\(seeded[0].callLogIDs[1]): left") })
            try await f.runDeletes()
            #expect(await f.sandbox.callLog(id: seeded[0].callLogIDs[1])?.deleted == false)
            #expect(!(await f.sandbox.telnyxRecordingExists(seeded[0].telnyxID)))
            #expect(try await f.store.recording(key: seeded[0].key)?.state == .deleted)
            let deletion = try #require(try await f.store.deletion(id: line.deletionID ?? ""))
            #expect(deletion.finishedAt != nil)
            #expect(deletion.steps.first { $0.target == "pipedrive:\(seeded[0].callLogIDs[1])" }?.state == .skipped)
            let audit = try await f.store.audit(key: seeded[0].key, limit: 100)
            #expect(audit.contains { $0.action == "delete_step" && $0.target == "pipedrive:\(seeded[0].callLogIDs[1])" && ($0.detail ?? "").hasPrefix("skipped: left") })
            #expect(audit.contains { $0.action == "deleted" && ($0.detail ?? "").contains("1 skipped") })

            // Of unknown origin: left by default …
            let left = try await f.planner.register(key: seeded[1].key, reason: "test")
            #expect(left.steps.first?.state == .skipped)
            #expect(left.steps.first?.detail?.contains("does not say who made it") == true)
            // … and included when asked: the open deletion's step is pending again.
            let included = try await f.planner.register(key: seeded[1].key, reason: "test: include", includeForeign: true)
            #expect(included.outcome == .resumed && included.steps.first?.state == .pending)
            try await f.runDeletes()
            try await f.expectDeleted(seeded[1])
            for other in seeded[2...] { try await f.expectUntouched(other) }
        }
    }

    /// A step is named by its target or its kind; a name that matches no open step, one already
    /// settled, or several, is refused with the steps still to do.
    @Test func aStepToSkipIsNamedByItsTargetOrItsKind() throws {
        let steps = [
            DeletionStep(position: 1, target: "pipedrive:1", state: .done),
            DeletionStep(position: 2, target: "pipedrive:2", state: .failed),
            DeletionStep(position: 3, target: "pipedrive:3"),
            DeletionStep(position: 4, target: #"voipnow:{"event_id":"."}"#, state: .failed),
            DeletionStep(position: 5, target: "spool"),
        ]
        #expect(try DeletionPlanner.match("voipnow", in: steps).position == 4)
        #expect(try DeletionPlanner.match(#"voipnow:{"event_id":"."}"#, in: steps).position == 4)
        #expect(try DeletionPlanner.match("pipedrive:2", in: steps).position == 2)
        #expect(try DeletionPlanner.match("spool", in: steps).position == 5)
        for name in ["pipedrive", "pipedrive:1", "telnyx", "pipedrive:9"] {
            let error = #expect(throws: DeleteError.self, "\(name)") { try DeletionPlanner.match(name, in: steps) }
            #expect(error?.code == .unknownStep)
            #expect(error?.message.contains("pipedrive:2") == true, "\(error?.message ?? "")")
        }
    }

    // MARK: - VoipNow: never a delete-all

    @Test func aVoipNowReferenceWithoutTypeOrIdIsNeverSent() async throws {
        let bad = [
            #"{"event_type":2,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"","event_type":2,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"  ","event_type":2,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"..","event_type":2,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"e1","extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":null,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":"x","extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":-1,"extension":"0003*201","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":2,"extension":"","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":2,"extension":"@self","user_id":"@me"}"#,
            #"{"event_id":"e1","event_type":2,"extension":"0003*201"}"#,
            #"{"event_id":"e1","event_type":true,"extension":"0003*201","user_id":"@me"}"#,
            "not json", "", "[]",
        ]
        for reference in bad {
            let steps = DeletionPlanner.steps(parts: [], refs: [ProviderRef(provider: ProviderRef.voipnow, recordingKey: "k", reference: reference)])
            let step = try #require(steps.first { $0.target.hasPrefix("voipnow:") })
            #expect(step.state == .failed, "\(reference)")
            #expect(step.detail?.contains("not sent") == true)
            #expect(throws: DeleteError.self) { try VoipNowReference.address(reference) }
        }
        let good = DeletionPlanner.steps(parts: [], refs: [ProviderRef(provider: ProviderRef.voipnow, recordingKey: "k",
                                                                     reference: #"{"event_id":"e1","event_type":"0","extension":"0003*201","user_id":"@me"}"#)])
        #expect(good.first?.state == .pending)
        // Every address is the full five-part path.
        for _ in 0..<200 {
            let id = String((0..<Int.random(in: 1...12)).map { _ in "ab01.-_/ *%".randomElement()! })
            guard let address = try? VoipNowEventAddress(userId: "@me", extension: "0003*201", eventType: Int.random(in: 0...2), eventId: id) else { continue }
            let segments = address.path.split(separator: "/", omittingEmptySubsequences: false)
            // "", uapi, extensions, user, extension, phoneCallEvents, type, id
            #expect(segments.count == 8 && segments.dropFirst().allSatisfy { !$0.isEmpty }, "\(address.path)")
            #expect(segments[5] == "phoneCallEvents" && segments[7] != "." && segments[7] != "..", "\(address.path)")
        }

        // End to end: the other steps run, the VoipNow step fails without a request.
        try await Self.withFixture { f in
            let seeded = try await f.seed(1, parts: { _ in 1 })
            let r = seeded[0]
            try await f.store.commit([.putProviderRef(ProviderRef(provider: ProviderRef.voipnow, recordingKey: r.key,
                                                                   reference: #"{"event_type":2,"extension":"\#(r.voipnowExtension)","user_id":"@me"}"#))])
            let registration = try await f.planner.register(key: r.key, reason: "test")
            try await f.runDeletes()
            let deletion = try #require(try await f.store.deletion(id: registration.deletionID ?? ""))
            #expect(deletion.steps.filter { $0.target.hasPrefix("voipnow:") }.map(\.state) == [.failed])
            #expect(await f.sandbox.voipNowEvents(extension: r.voipnowExtension).count == 2)
            let counters = await f.sandbox.counters()
            #expect(counters.requestsPerRoute.keys.filter { $0.contains("/uapi/") }.isEmpty)
            #expect(await f.sandbox.callLog(id: r.callLogIDs[0])?.deleted == true)
            #expect(!(await f.sandbox.telnyxRecordingExists(r.telnyxID)))
            #expect(try await f.store.recording(key: r.key)?.state == .deleting)
        }
    }

    // MARK: - Tombstone: never uploaded again

    @Test func aDeletedRecordingIsNotUploadedAgain() async throws {
        try await withTemporaryDirectory { dir in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150, format: .wavPCM16, to: "\(dir)/in/long.wav")
            _ = fm.createFile(atPath: "\(dir)/in/long.json", contents: Data(Self.sidecar(index: 901).utf8))
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/short.wav")
            _ = fm.createFile(atPath: "\(dir)/in/short.json", contents: Data(Self.sidecar(index: 3).utf8))
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            let configuration = Self.sandboxConfiguration()
            try await withSandbox(configuration) { url, sandbox in
                let first = try await Self.upload(dir, url: url, configuration: configuration, store: store)
                #expect(first.summary.ok == 2)
                let long = try #require(first.files.first { $0.path == "long.wav" })
                #expect(long.parts.count == 3)
                let partTwo = try #require(long.parts[1].callLogId)

                let f = Fixture(dir: dir, store: store, sandbox: sandbox, url: url, configuration: configuration)
                let recording = try await f.planner.resolve(.callLog(partTwo))
                let registration = try await f.planner.register(key: recording.key, reason: "test: delete --call-log \(partTwo)")
                try await f.runDeletes()
                #expect(try await store.recording(key: recording.key)?.state == .deleted)
                for part in long.parts { #expect(await sandbox.callLog(id: try #require(part.callLogId))?.deleted == true) }
                #expect(try await store.deletion(id: try #require(registration.deletionID))?.finishedAt != nil)
                #expect(f.trash.entries(key: recording.key).count == 1)
                await f.shutdown()

                let logs = await sandbox.callLogs().count
                let creates = await sandbox.requestCount(route: "POST /v1/callLogs")
                let uploads = await sandbox.requestCount(route: "POST /v1/callLogs/{id}/recordings")
                let second = try await Self.upload(dir, url: url, configuration: configuration, store: store)
                let again = try #require(second.files.first { $0.path == "long.wav" })
                #expect(again.status == .skipped)
                #expect(again.warnings.contains { $0.code == .deleted })
                #expect(await sandbox.callLogs().count == logs)
                #expect(await sandbox.requestCount(route: "POST /v1/callLogs") == creates)
                #expect(await sandbox.requestCount(route: "POST /v1/callLogs/{id}/recordings") == uploads)
                #expect(try await store.recording(key: recording.key)?.state == .deleted)
                let enqueue = try await EnqueueBatch(root: "\(dir)/in", store: store, jobs: 1, settle: .immediate, logger: Logger(label: "test")).run()
                #expect(enqueue.files.first { $0.path == "long.wav" }?.warnings.contains { $0.code == .deleted } == true)
            }
            try await store.close()
        }
    }

    // MARK: - Trash

    @Test func purgeRemovesOldFinishedTrashOnly() async throws {
        try await withTemporaryDirectory { dir in
            let trash = Trash(root: "\(dir)/trash")
            let keys = (0..<3).map { i in String(repeating: String(i), count: 64) }
            let old = Date().addingTimeInterval(-20 * 86400)
            for (i, key) in keys.enumerated() {
                try FileManager.default.createDirectory(atPath: "\(dir)/spool/\(key)", withIntermediateDirectories: true)
                _ = FileManager.default.createFile(atPath: "\(dir)/spool/\(key)/part-001.mp3", contents: Data(count: 10))
                #expect(try trash.move("\(dir)/spool/\(key)", key: key, at: i == 2 ? Date() : old) != nil)
            }
            #expect(try trash.move("\(dir)/spool/nothing", key: keys[0]) == nil)
            let report = await trash.purge(olderThan: .seconds(14 * 86400)) { entry in entry.key == keys[1] ? "not finished" : nil }
            #expect(report.removed.count == 1 && report.bytes == 10)
            #expect(report.kept.map(\.reason) == ["not finished"])
            #expect(report.young == 1)
            #expect(trash.entries().map(\.key).sorted() == [keys[1], keys[2]])
        }
    }
}

// MARK: - Randomized rounds

/// A CRM and two providers in memory, with instant faults (no client backoff to wait out), so
/// that a thousand reconcile rounds run in seconds. Records every delete it is sent.
actor FakeCRM: DeleteAPIs, CallLogDirectory {
    var rng: SplitMix64
    /// Call logs in creation order; `deleted` maps the deleted ones to the status GET answers.
    var callLogs: [String] = []
    var deleted: [String: Int] = [:]
    var telnyx: Set<String> = []
    var voipnow: Set<String> = []
    /// Another account: the listing shows other call logs, and GET answers 404 for ours.
    var foreign = false
    var foreignIDs: [String] = []
    var readFaultRate = 0.0
    var deleteFaultRate = 0.0
    var gapRate = 0.0
    /// What callrec deleted (`pipedrive:`, `telnyx:`, `voipnow:` + id).
    var sent: [String] = []
    var violations: [String] = []
    var readFaults = 0

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    func configure(_ body: @Sendable (isolated FakeCRM) -> Void) { body(self) }

    private func readFault() throws {
        guard rng.chance(readFaultRate) else { return }
        readFaults += 1
        switch rng.next() % 6 {
        case 0: throw APIError(.transient, api: .pipedrive, status: 500, "injected 500")
        case 1: throw APIError(.transient, api: .pipedrive, status: 503, "injected 503")
        case 2: throw APIError(.credentialsRefused, api: .pipedrive, status: 401, "injected 401")
        case 3: throw APIError(.permanent, api: .pipedrive, status: 403, "injected 403")
        case 4: throw APIError(.unknownOutcome, api: .pipedrive, "injected timeout")
        default: throw APIError(.rateLimited, api: .pipedrive, status: 429, "injected 429", retryAfter: .milliseconds(1))
        }
    }

    /// Before (or, for a lost answer, after) the delete happens.
    private func deleteFault(_ perform: () -> Void) throws {
        guard rng.chance(deleteFaultRate) else { return }
        switch rng.next() % 3 {
        case 0: throw APIError(.transient, api: .pipedrive, status: 500, "injected 500")
        case 1:
            perform()
            throw APIError(.unknownOutcome, api: .pipedrive, "injected lost answer")
        default: throw APIError(.rateLimited, api: .pipedrive, status: 429, "injected 429", retryAfter: .milliseconds(1))
        }
    }

    func callLogPage(start: Int, limit: Int) async throws -> CallLogIDPage {
        try readFault()
        let live = foreign ? foreignIDs : callLogs.filter { deleted[$0] == nil }
        var page = Array(live.dropFirst(start).prefix(limit))
        if gapRate > 0 { page.removeAll { _ in rng.chance(gapRate) } }  // eventual consistency
        let more = start + limit < live.count
        return CallLogIDPage(ids: page, moreItems: more, nextStart: more ? start + limit : nil)
    }

    func lookUp(callLogID: String) async throws -> CallLogLookup {
        try readFault()
        if foreign { return foreignIDs.contains(callLogID) ? .exists : .gone(status: 404) }
        if let status = deleted[callLogID] { return .gone(status: status) }
        return callLogs.contains(callLogID) ? .exists : .gone(status: 404)
    }

    func deleteCallLog(id: String) async throws -> DeleteResult {
        let existed = callLogs.contains(id) && deleted[id] == nil
        try deleteFault { if existed { deleted[id] = 410 } }
        sent.append("pipedrive:\(id)")
        guard callLogs.contains(id), deleted[id] == nil else { return DeleteResult(httpStatus: 410, detail: "gone") }
        deleted[id] = 410
        return DeleteResult(httpStatus: 200, detail: "deleted")
    }

    func deleteTelnyxRecording(id: String) async throws -> DeleteResult {
        try deleteFault { telnyx.remove(id) }
        sent.append("telnyx:\(id)")
        return telnyx.remove(id) == nil ? DeleteResult(httpStatus: 404, detail: "gone") : DeleteResult(httpStatus: 200, detail: "deleted")
    }

    func deleteVoipNowEvent(_ address: VoipNowEventAddress) async throws -> DeleteResult {
        if address.eventId.isEmpty || address.extension.isEmpty || !(0...2).contains(address.eventType) {
            violations.append("incomplete VoipNow address \(address.path)")
        }
        try deleteFault { voipnow.remove(address.eventId) }
        sent.append("voipnow:\(address.eventId)")
        return voipnow.remove(address.eventId) == nil ? DeleteResult(httpStatus: 204, detail: "gone") : DeleteResult(httpStatus: 200, detail: "deleted")
    }

    func callLogIDs(carrying markers: Set<String>) async throws -> [String: [String]] { [:] }
}


@Suite struct ReconcileRandomizedTests {
    struct Round: Sendable {
        var keys: [String]
        var callLogs: [String: [String]]
        var telnyx: [String: String]
        var voipnow: [String: String]
    }

    struct Stats: Sendable {
        var rounds = 0, gone = 0, deletedEverywhere = 0, abortedPasses = 0, crashes = 0, faultyRounds = 0, quietRounds = 0
        /// Recordings touched (any delete sent, state changed, spool moved) without a call log gone in the CRM.
        var wrongDeletions = 0
        mutating func add(_ other: Stats) {
            rounds += other.rounds; wrongDeletions += other.wrongDeletions; gone += other.gone; deletedEverywhere += other.deletedEverywhere
            abortedPasses += other.abortedPasses; crashes += other.crashes; faultyRounds += other.faultyRounds; quietRounds += other.quietRounds
        }
    }

    /// ≥ 1,000 rounds: small ledgers, random CRM-side deletions (some of several parts), listing
    /// gaps, another account, read faults of every class, delete faults (5xx, lost answers, 429),
    /// crashes between a delete and its commit or after it, random caps, page sizes and --force.
    /// Invariant: no recording whose call logs all still exist is ever touched; every deletion
    /// callrec makes belongs to a recording with a call log confirmed gone; VoipNow addresses
    /// are complete. Liveness in quiet rounds: every recording deleted in the CRM is deleted
    /// everywhere.
    @Test func thousandRoundsWithoutAWrongDeletion() async throws {
        let rounds = Int(ProcessInfo.processInfo.environment["CALLREC_RECONCILE_ROUNDS"] ?? "") ?? 1000
        let baseSeed = UInt64(ProcessInfo.processInfo.environment["CALLREC_RECONCILE_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max / 2)
        let root = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        let clock = ContinuousClock(), started = clock.now
        // Independent lanes (own store and directories) share the rounds between the cores.
        let lanes = 2
        let stats = try await withThrowingTaskGroup(of: Stats.self) { group in
            for lane in 0..<lanes {
                group.addTask {
                    let dir = "\(root)/callrec-reconcile-\(UUID().uuidString)"
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    defer { try? FileManager.default.removeItem(atPath: dir) }
                    let store = try SQLiteStore(path: "\(dir)/callrec.sqlite")
                    try await store.migrate()
                    var stats = Stats()
                    for roundIndex in stride(from: lane, to: rounds, by: lanes) {
                        stats.add(try await Self.round(roundIndex, seed: baseSeed &+ UInt64(roundIndex), store: store, dir: dir))
                    }
                    try await store.close()
                    return stats
                }
            }
            var total = Stats()
            for try await stats in group { total.add(stats) }
            return total
        }
        let seconds = (clock.now - started).seconds
        #expect(stats.rounds == rounds)
        #expect(stats.wrongDeletions == 0)
        print("reconcile rounds: \(stats.rounds) in \(String(format: "%.1f", seconds)) s (seed \(baseSeed)): \(stats.gone) recordings deleted in the CRM, \(stats.deletedEverywhere) deleted everywhere, \(stats.abortedPasses) aborted passes, \(stats.crashes) crashes injected, \(stats.faultyRounds) rounds with faults, \(stats.quietRounds) rounds checked for liveness; \(stats.wrongDeletions) wrong deletions")
    }

    /// One round on a store whose earlier rounds are retired (not `uploaded` any more).
    static func round(_ roundIndex: Int, seed: UInt64, store: SQLiteStore, dir: String) async throws -> Stats {
        let spool = Spool(root: "\(dir)/spool"), trash = Trash(root: "\(dir)/trash")
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var stats = Stats()
        stats.rounds = 1
        do {
            var rng = SplitMix64(seed: seed)
            let crm = FakeCRM(seed: seed ^ 0xA5A5)
            // The ledger and the CRM.
            let n = rng.int(2...6)
            var round = Round(keys: [], callLogs: [:], telnyx: [:], voipnow: [:])
            var allLogs: [String] = []
            for _ in 0..<rng.int(0...30) { allLogs.append("CAother\(roundIndex)-\(rng.next() % 1_000_000)") }
            var setup: [LedgerOp] = []
            for i in 0..<n {
                let key = String(format: "%016llx", rng.next()) + String(format: "%016llx", rng.next()) + String(format: "%016llx", rng.next()) + String(format: "%016llx", UInt64(roundIndex * 8 + i))
                let partCount = rng.int(1...3)
                let ids = (1...partCount).map { "CA\(key.prefix(20))\($0)" }
                try FileManager.default.createDirectory(atPath: spool.directory(key: key), withIntermediateDirectories: true)
                let paths = spool.partPaths(key: key, count: partCount)
                var parts: [Part] = []
                for (j, id) in ids.enumerated() {
                    _ = FileManager.default.createFile(atPath: paths[j], contents: Data([1]))
                    parts.append(Part(recordingKey: key, index: j + 1, spoolPath: paths[j], bytes: 1, seconds: 1, sha256: key, state: .attached, callLogID: id,
                                      callLogOrigin: .created))
                }
                let telnyxID = UUID().uuidString.lowercased(), eventID = "ev\(key.prefix(12))"
                setup += [
                    .insertRecording(Recording(key: key, path: "\(dir)/src-\(key)", state: .uploaded, partCount: partCount)),
                    .replaceParts(key: key, parts: parts),
                    .putProviderRef(ProviderRef(provider: ProviderRef.telnyx, recordingKey: key, reference: telnyxID)),
                    .putProviderRef(ProviderRef(provider: ProviderRef.voipnow, recordingKey: key,
                                                reference: #"{"event_id":"\#(eventID)","event_type":\#(rng.int(0...2)),"extension":"0003*2\#(i)","user_id":"@me"}"#)),
                ]
                round.keys.append(key)
                round.callLogs[key] = ids
                round.telnyx[key] = telnyxID
                round.voipnow[key] = eventID
                allLogs.insert(contentsOf: ids, at: rng.int(0...allLogs.count))
            }
            try await store.commit(setup)
            // Deleted in the CRM, behind callrec's back.
            var goneKeys = Set<String>()
            var deletedIDs: [String: Int] = [:]
            for key in round.keys where rng.chance(0.35) {
                goneKeys.insert(key)
                let ids = round.callLogs[key]!
                for id in ids where rng.chance(0.5) || id == ids[rng.int(0...ids.count - 1)] { deletedIDs[id] = rng.chance(0.5) ? 410 : 404 }
                if !ids.contains(where: { deletedIDs[$0] != nil }) { deletedIDs[ids[0]] = 410 }
            }
            // Unrelated call logs deleted too (not in the ledger: never a reason for anything).
            for id in allLogs where id.hasPrefix("CAother") && rng.chance(0.1) { deletedIDs[id] = 410 }
            let foreign = rng.chance(0.05)
            let faulty = rng.chance(0.4)
            let readFaultRate = faulty ? rng.unit() * 0.3 : 0
            let deleteFaultRate = faulty ? rng.unit() * 0.2 : 0
            let gapRate = rng.chance(0.2) ? rng.unit() * 0.2 : 0
            let telnyxIDs = Set(round.telnyx.values), eventIDs = Set(round.voipnow.values)
            let logs = allLogs, gone = deletedIDs
            await crm.configure { crm in
                crm.callLogs = logs
                crm.deleted = gone
                crm.telnyx = telnyxIDs
                crm.voipnow = eventIDs
                crm.foreign = foreign
                crm.foreignIDs = (0..<5).map { "CAforeign\($0)" }
                crm.readFaultRate = readFaultRate
                crm.deleteFaultRate = deleteFaultRate
                crm.gapRate = gapRate
            }
            var options = Reconciler.Options()
            options.apply = true
            options.pageSize = rng.int(2...50)
            options.checkLocalFiles = false
            if rng.chance(0.3) { options.maxDelete = rng.int(0...n) }
            options.force = !foreign && rng.chance(0.1)
            // Crashes: after a delete answered but before its commit, or after the commit.
            let crashes = Mutex((left: rng.chance(0.5) ? rng.int(1...3) : 0, rng: SplitMix64(seed: seed ^ 0x5A5A), count: 0))
            var handler = DeleteJobHandler(apis: crm, spool: spool, trash: trash)
            handler.checkpoint = { _ in
                let crash = crashes.withLock { state -> Bool in
                    guard state.left > 0, state.rng.chance(0.3) else { return false }
                    state.left -= 1
                    state.count += 1
                    return true
                }
                if crash { throw CancellationError() }
            }
            var configuration = WorkerConfiguration(slots: [.delete: 2])
            configuration.untilIdle = true
            configuration.idleHorizon = .milliseconds(100)
            configuration.backoff = Backoff(base: .milliseconds(1), cap: .milliseconds(2))
            configuration.pollInterval = .milliseconds(5)
            configuration.leaseTTL = .seconds(10)
            configuration.statsInterval = .seconds(3600)
            configuration.maxSnoozes = 1000
            let planner = DeletionPlanner(store: store, actor: "round-\(roundIndex)")
            var reports: [ReconcileReport] = []
            for pass in 0..<2 {
                if pass == 1 {
                    // The second pass: a quieter CRM (the incident is over), same deletions.
                    await crm.configure { $0.readFaultRate = 0; $0.deleteFaultRate = 0; $0.gapRate = 0 }
                }
                let report = try await Reconciler(store: store, directory: crm, planner: planner, options: options, logger: logger).run()
                reports.append(report)
                if try await !store.isIdle(queues: [QueueName.delete]) {
                    try await Worker(store: store, handlers: [handler], configuration: configuration, logger: logger).run()
                }
            }
            let context = "round \(roundIndex) (seed \(seed)): foreign \(foreign), faults \(readFaultRate)/\(deleteFaultRate), gaps \(gapRate), cap \(options.maxDelete.map(String.init) ?? "default"), force \(options.force), aborts \(reports.map { $0.abort?.code ?? "-" })"

            // The invariant.
            let sent = await crm.sent
            let violations = await crm.violations
            #expect(violations.isEmpty, "\(context): \(violations)")
            for key in round.keys {
                let state = try await store.recording(key: key)?.state
                let touched = sent.filter { target in
                    round.callLogs[key]!.contains { target == "pipedrive:\($0)" } || target == "telnyx:\(round.telnyx[key]!)" || target == "voipnow:\(round.voipnow[key]!)"
                }
                if !goneKeys.contains(key) {
                    if state != .uploaded || !touched.isEmpty || !FileManager.default.fileExists(atPath: spool.directory(key: key)) {
                        stats.wrongDeletions += 1
                    }
                    #expect(state == .uploaded, "\(context): \(key) was not deleted in the CRM but is \(String(describing: state))")
                    #expect(touched.isEmpty, "\(context): \(key) was not deleted in the CRM but callrec sent \(touched)")
                    #expect(FileManager.default.fileExists(atPath: spool.directory(key: key)), "\(context): spool of \(key) moved")
                }
            }
            // Liveness: with no foreign view and a cap that allows it, everything deleted in the
            // CRM is deleted everywhere after the quiet second pass.
            let cap = options.maxDelete ?? Reconciler.Options.defaultCap(uploaded: n)
            // (When every known call log is gone, nothing is listed to prove the account: --force.)
            let someListed = round.callLogs.values.joined().contains { deletedIDs[$0] == nil }
            let quiet = !foreign && (options.force || (goneKeys.count <= cap && someListed))
            if quiet {
                stats.quietRounds += 1
                for key in goneKeys {
                    let state = try await store.recording(key: key)?.state
                    #expect(state == .deleted, "\(context): \(key) deleted in the CRM is still \(String(describing: state))")
                }
                let liveTelnyx = await crm.telnyx, liveEvents = await crm.voipnow
                #expect(liveTelnyx.isDisjoint(with: goneKeys.map { round.telnyx[$0]! }), "\(context)")
                #expect(liveEvents.isDisjoint(with: goneKeys.map { round.voipnow[$0]! }), "\(context)")
            }
            stats.deletedEverywhere += try await round.keys.asyncCount { try await store.recording(key: $0)?.state == .deleted }
            stats.abortedPasses += reports.filter { $0.abort != nil }.count
            stats.crashes += crashes.withLock { $0.count }
            stats.faultyRounds += faulty ? 1 : 0
            stats.gone += goneKeys.count

            // Retire the round's recordings so the next round's ledger holds only its own.
            var retire: [LedgerOp] = []
            for deletion in try await store.openDeletions() { retire.append(.finishDeletion(id: deletion.id)) }
            for key in round.keys {
                if let state = try await store.recording(key: key)?.state, state != .deleted {
                    retire.append(.setRecordingState(key: key, state: .failed, errorCode: "retired", errorMessage: nil))
                }
            }
            try await store.commit(retire)
            let live = try await store.jobs(JobQuery(states: JobState.live, queue: QueueName.delete))
            _ = try await store.cancel(ids: live.map(\.id))
        }
        return stats
    }
}

extension Sequence {
    func asyncCount(_ predicate: (Element) async throws -> Bool) async rethrows -> Int {
        var count = 0
        for element in self where try await predicate(element) { count += 1 }
        return count
    }
}

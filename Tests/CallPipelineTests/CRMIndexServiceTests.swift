import AsyncHTTPClient
import CallAPI
import CallJobs
import CallMatch
import CallPipeline
import CallSandbox
import CallStore
import CallStoreSQLite
import CallSupport
import CallTesting
import Foundation
import Logging
import Testing

/// The worker's index refresh on a clock the test moves (issue 17): the first build at once, a
/// miss brings the persons listing forward no sooner than `miss_refresh`, the schedule lists what
/// is stale (the deals; not the persons a miss listed), and a full pass a day sweeps a deleted
/// person. Against an in-process sandbox whose CRM times follow the same clock.
@Suite struct CRMIndexServiceTests {
    /// A fresh SQLite store and an in-process sandbox (its CRM's clock `now`, if given), and a
    /// Pipedrive client for it, for `body`; the client's HTTP client is shut down after.
    func withIndexFixture(now: (@Sendable () -> Date)? = nil,
                          _ body: (any CallStore, Sandbox, URL, PipedriveClient) async throws -> Void) async throws {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 2_000
        configuration.dailyTokens = 10_000_000
        configuration.now = now
        try await withTemporaryDirectory { dir in
            let store = try SQLiteStore(path: "\(dir)/callrec.sqlite")
            try await store.migrate()
            try await withRunningStore(store) { store in
                try await withSandbox(configuration) { url, sandbox in
                    let http = HTTPClient.makeForAPIs()
                    let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(configuration.pipedriveToken),
                                                 limiter: PipedriveLimiter(burst: 2_000, dailyTokens: 10_000_000), httpClient: http, logger: Logger(label: "test"))
                    do {
                        try await body(store, sandbox, url, client)
                    } catch {
                        try? await http.shutdown()
                        throw error
                    }
                    try? await http.shutdown()
                }
            }
        }
    }
    @Test(.timeLimit(.minutes(2)))
    func theRefreshScheduleRunsOnItsClock() async throws {
        let clock = ManualClock(start: Date(timeIntervalSince1970: 1_796_601_600))
        try await withIndexFixture(now: { clock.date }) { store, sandbox, url, client in
                    let (seeded, _) = try await httpJSON("POST", url.absoluteString + "/_sandbox/crm", json: """
                        {"persons": [{"id": 1, "name": "Ada", "phones": ["+49 30 1234567"]}, {"id": 2, "name": "Bob", "phones": ["+49 30 7654321"]}],
                         "deals": [{"id": 5, "title": "Renewal", "person_id": 1, "status": "open"}]}
                        """)
                    #expect(seeded == 200)
                    let settings = CRMIndexSettings(region: "DE", refresh: .seconds(900), missRefresh: .seconds(60), fullPass: .seconds(86_400), leads: false)
                    let sync = CRMIndexSync(store: store, client: client, settings: settings, now: { clock.date }, logger: Logger(label: "test"))
                    let service = CRMIndexService(sync: sync, clock: AnyClock(clock), logger: Logger(label: "test"))
                    let running = Task { try await service.run() }
                    defer { running.cancel() }

                    /// The requests of each route after the service sleeps again.
                    func settled() async throws -> [String: Int] {
                        #expect(await clock.waitForSleepers(1), "the service never went back to sleep")
                        return ["persons": await sandbox.requestCount(route: "GET /api/v2/persons"),
                                "deals": await sandbox.requestCount(route: "GET /api/v2/deals"),
                                "users": await sandbox.requestCount(route: "GET /v1/users")]
                    }
                    // The first build, at once: persons, open deals, users (leads off).
                    #expect(try await settled() == ["persons": 1, "deals": 1, "users": 1])
                    #expect(try await store.phoneCandidates("+49301234567").openDeals.map(\.id) == [5])

                    // Carla is added in the CRM; her number misses; the persons listing comes a
                    // minute after the last, not before.
                    _ = try await httpJSON("POST", url.absoluteString + "/_sandbox/crm",
                                           json: #"{"persons": [{"id": 3, "name": "Carla", "phones": ["030 5555555"]}]}"#)
                    service.noteMiss("+49305555555")
                    clock.advance(by: .seconds(30))
                    #expect(try await settled()["persons"] == 1, "no listing within miss_refresh")
                    #expect(try await store.phoneCandidates("+49305555555").isEmpty)
                    clock.advance(by: .seconds(30))
                    #expect(try await settled() == ["persons": 2, "deals": 1, "users": 1])
                    #expect(try await store.phoneCandidates("+49305555555").persons.map(\.id) == [3])

                    // The schedule at 15 minutes lists the deals; the persons the miss listed a
                    // minute in are fresh until 16 minutes.
                    clock.advance(by: .seconds(840))
                    #expect(try await settled() == ["persons": 2, "deals": 2, "users": 1])
                    clock.advance(by: .seconds(60))
                    #expect(try await settled() == ["persons": 3, "deals": 2, "users": 1])

                    // Bob is deleted in the CRM: he matches until the full pass a day after the first.
                    let (deleted, _) = try await httpJSON("DELETE", url.absoluteString + "/_sandbox/crm/persons/2")
                    #expect(deleted == 200)
                    while clock.date < Date(timeIntervalSince1970: 1_796_601_600 + 86_400 - 1) {
                        clock.advance(by: .seconds(900))
                        _ = try await settled()
                        if clock.date < Date(timeIntervalSince1970: 1_796_601_600 + 86_400 - 1) {
                            #expect(try await store.phoneCandidates("+49307654321").persons.map(\.id) == [2])
                        }
                    }
                    clock.advance(by: .seconds(900))
                    _ = try await settled()
                    #expect(try await store.phoneCandidates("+49307654321").isEmpty, "the full pass swept the deleted person")
                    #expect(await sandbox.requestCount(route: "GET /v1/users") == 2, "users are listed by full passes only")
                    running.cancel()
        }
    }

    /// `unknown_numbers: create_person` creates one person per caller even when the create's
    /// answer is lost: the next attempt finds the person the lost one made (one listing of the
    /// persons updated since) instead of creating a second.
    @Test(.timeLimit(.minutes(2)))
    func aPersonForAnUnknownCallerIsCreatedOnceWhenTheAnswerIsLost() async throws {
        try await withIndexFixture { store, sandbox, url, client in
                    var client = client
                    let sync = CRMIndexSync(store: store, client: client, settings: CRMIndexSettings(region: "DE", leads: false), logger: Logger(label: "test"))
                    _ = try await sync.refresh(.full)
                    let linker = CallLinker(settings: MatchSettings(region: "DE", unknownNumbers: .createPerson))
                    var draft = CallLogDraft(outcome: "connected", toPhoneNumber: "201", startTime: "2026-12-06 10:00:00")
                    draft.fromPhoneNumber = "+49 30 2222222"
                    // The first create lands, and its answer is lost on the way back.
                    client.decorate = { name in name == "POST /api/v2/persons" ? [("x-sandbox-fault", "lost")] : [] }
                    await #expect(throws: APIError.self) {
                        _ = try await linker.link(draft, metadata: nil, key: "k1", actor: "test", store: store, client: client, logger: Logger(label: "test"))
                    }
                    client.decorate = nil
                    let linked = try await linker.link(draft, metadata: nil, key: "k1", actor: "test", store: store, client: client, logger: Logger(label: "test"))
                    #expect(await sandbox.requestCount(route: "POST /api/v2/persons") == 1, "one create, not two")
                    let (_, stats) = try await httpJSON("GET", url.absoluteString + "/_sandbox/crm/stats")
                    #expect(stats["persons"] as? Int == 1)
                    let person = try #require(linked.draft.personId)
                    #expect(linked.decision.personID == person)
                    // And the index has it: the caller's next call links the same person.
                    #expect(try await store.phoneCandidates("+49302222222").persons.map(\.id) == [person])
        }
    }

    /// A listing the account refuses (here the leads, failing every time) leaves the index built
    /// from the others, and does not make every later refresh a new full pass.
    @Test(.timeLimit(.minutes(2)))
    func aRefusedOptionalListingDoesNotHoldTheIndexBack() async throws {
        try await withIndexFixture { store, sandbox, url, client in
                    _ = try await httpJSON("POST", url.absoluteString + "/_sandbox/crm", json: #"{"persons": [{"id": 1, "name": "Ada", "phones": ["+49 30 1234567"]}]}"#)
                    var client = client
                    client.decorate = { name in name == "GET /leads" ? [("x-sandbox-fault", "500")] : [] }
                    let sync = CRMIndexSync(store: store, client: client, settings: CRMIndexSettings(region: "DE"), logger: Logger(label: "test"))
                    let report = try await sync.refresh(.full, scheduled: true)
                    #expect(report.skipped.contains { $0.hasPrefix("lead:") }, "\(report.skipped)")
                    let states = try await store.crmSyncStates()
                    #expect(CRMIndexSync.isBuilt(states))
                    #expect(sync.due(states, at: Date()) == nil, "nothing due: the leads do not force another full pass")
                    #expect(try await store.phoneCandidates("+49301234567").persons.map(\.id) == [1])
                    let persons = await sandbox.requestCount(route: "GET /api/v2/persons")
                    _ = try await sync.refresh(.full, scheduled: true)
                    #expect(await sandbox.requestCount(route: "GET /api/v2/persons") == persons, "a scheduled pass does not list fresh persons again")
        }
    }

    /// A call log whose sidecar names its person links that person at once, before the index's
    /// first build has ended (no lookup, nothing to wait for); one that names none waits.
    @Test(.timeLimit(.minutes(2)))
    func aSidecarsOwnIdsDoNotWaitForTheIndex() async throws {
        try await withIndexFixture { store, _, _, client in
            let linker = CallLinker(settings: MatchSettings(region: "DE"))
            var draft = CallLogDraft(outcome: "connected", toPhoneNumber: "201", startTime: "2026-12-06 10:00:00")
            draft.fromPhoneNumber = "+49 30 2222222"
            await #expect(throws: JobFailure.self) {
                _ = try await linker.link(draft, metadata: nil, store: store, client: client, logger: Logger(label: "test"))
            }
            draft.personId = 9
            let linked = try await linker.link(draft, metadata: nil, store: store, client: client, logger: Logger(label: "test"))
            #expect(linked.decision.reason == .sidecarIDs && linked.draft.personId == 9)
        }
    }
}

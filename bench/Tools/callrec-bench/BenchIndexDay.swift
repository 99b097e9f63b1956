import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallApp
import CallMatch
import CallPipeline
import CallSandbox
import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallSupport
import CallTesting
import Foundation
import Logging
import Synchronization

/// Plumbing for bench/match-day.sh: one simulated day of the CRM index (issue 17's token goal).
/// An in-process sandbox holds a generated account; the day runs on a virtual clock minute by
/// minute through the refresh policy the worker's ``CRMIndexService`` follows (the first build,
/// an incremental refresh every `refresh`, a persons refresh brought forward by a miss at most
/// once per `miss_refresh`, a full pass every `full_pass`); the CRM changes during the day; the
/// day's calls are matched through ``CallLinker`` (the upload job's path) against the index.
/// Prints what the index cost in Pipedrive tokens, per call, and the requests the matches made.
struct BenchIndexDay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-index-day",
        abstract: "Simulate a day of the CRM index: tokens spent per call, requests on the calls' path.",
        shouldDisplay: false
    )

    @Option(help: "Persons in the account.") var persons = 50_000
    @Option(help: "Organizations.") var organizations = 5_000
    @Option(help: "Open deals.") var deals = 20_000
    @Option(help: "Leads.") var leads = 2_000
    @Option(help: "Users.") var users = 20
    @Option(help: "Calls in the day (spread over the business hours).") var calls = 5_000
    @Option(help: "Share of calls from numbers the CRM does not have.") var unknown = 0.1
    @Option(help: "Persons changed in the CRM during the day (a new number, a new person).") var changes = 500
    @Option(help: "Business hours: calls and changes happen from 08:00 for this many hours.") var hours = 10
    @Option(help: "Seed of the account and of the day.") var seed: UInt64 = 1
    @Option(help: "PostgreSQL URL (default: a SQLite file in a temporary directory).") var database: String?

    func run() async throws {
        var logger = Logger(label: "callrec.bench")
        logger.logLevel = .warning
        let start = Date(timeIntervalSince1970: 1_796_601_600)  // 2026-12-07T00:00:00Z
        let minute = VirtualMinute()
        let now: @Sendable () -> Date = { start.addingTimeInterval(Double(minute.value) * 60) }
        let token = "bench" + String(repeating: "0", count: 35)
        var configuration = SandboxConfiguration(pipedriveToken: token, telnyxKey: "KEY0123456789", voipnowToken: "voipnow")
        configuration.dailyTokens = 100_000_000
        configuration.burstPerTwoSeconds = 100_000
        configuration.now = now
        let sandbox = Sandbox(configuration: configuration, logger: logger)
        let server = Task { try await sandbox.run() }
        defer { server.cancel() }
        let port = try await sandbox.waitUntilRunning()
        let base = "http://127.0.0.1:\(port)"
        var generate = ["persons": persons, "organizations": organizations, "deals": deals, "leads": leads, "users": users, "seed": Int(seed % 1_000_000)] as [String: Any]
        generate["region"] = "DE"
        let (status, _) = try await httpJSON("POST", base + "/_sandbox/crm/generate", json: String(decoding: try JSONSerialization.data(withJSONObject: generate), as: UTF8.self))
        guard status == 200 else { throw ValidationError("the sandbox did not generate the account (HTTP \(status))") }

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("callrec-index-day-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let store: any CallStore = try database.map { try PostgresStore(url: $0, logger: logger) } ?? SQLiteStore(path: work + "/state.sqlite", logger: logger)
        try await store.migrate()
        let environment = try APIEnvironment.load(environment: [
            "PIPEDRIVE_API_URL": base + "/v1", "PIPEDRIVE_API_TOKEN": token, "PIPEDRIVE_BURST": "100000", "PIPEDRIVE_DAILY_TOKENS": "100000000",
        ])
        try await withRunningStore(store) { store in
            try await APIClients.with(environment: environment, logger: logger) { clients in
                guard let client = clients.pipedrive else { throw ValidationError("no Pipedrive client") }
                try await day(store: store, client: client, sandbox: sandbox, base: base, minute: minute, now: now, logger: logger)
            }
        }
    }

    func day(store: any CallStore, client: PipedriveClient, sandbox: Sandbox, base: String, minute: VirtualMinute,
             now: @escaping @Sendable () -> Date, logger: Logger) async throws {
        var random = SplitMix64(seed: seed)
        // Numbers of the account's persons for the day's calls: one listing, not counted.
        var known: [String] = []
        var cursor: String?
        repeat {
            let page = try await client.persons(cursor: cursor)
            known += page.items.compactMap { $0.phones.first?.value }
            cursor = page.nextCursor
        } while cursor != nil && known.count < 20_000
        let baseline = await sandbox.tokensSpent(), baselineRequests = await sandbox.requestCount()

        var matching = MatchSettings(companyNumbers: ["+4930123450"], region: "DE")
        matching.link = .deal
        let sync = CRMIndexSync(store: store, client: client, settings: matching.indexSettings, now: now, logger: logger)
        let linker = CallLinker(settings: matching)
        let business = 8 * 60..<(8 + hours) * 60
        // Calls and changes, each at a random minute of the business hours.
        let callMinutes = (0..<calls).map { _ in business.lowerBound + Int(random.next() % UInt64(business.count)) }.sorted()
        let changeMinutes = (0..<changes).map { _ in business.lowerBound + Int(random.next() % UInt64(business.count)) }.sorted()
        var nextCall = 0, nextChange = 0
        var refreshes: [CRMIndexSync.Mode: Int] = [:]
        var refreshTokens: [CRMIndexSync.Mode: Int] = [:]
        var misses = MissRefreshPolicy(settings: matching.indexSettings), lastPersons = -1_000_000
        var missed: [String] = []
        var reasons: [MatchReason: Int] = [:]
        var requestsOnCalls = 0
        var buildSeconds = 0.0
        for m in 0..<(24 * 60) {
            minute.value = m
            // The CRM changes: a person gets a new number, or (one change in two) a rep adds a
            // person for a caller the CRM did not have.
            while nextChange < changeMinutes.count, changeMinutes[nextChange] == m {
                nextChange += 1
                let id = Int(random.next() % UInt64(persons)) + 1
                let number = random.next() % 2 == 0 && !missed.isEmpty ? missed.removeLast() : "+49 30 \(7_000_000 + Int(random.next() % 999_999))"
                let body = #"{"persons": [{"id": \#(id), "name": "Changed \#(id)", "phones": [{"value": "\#(number)", "primary": true}]}]}"#
                _ = try await httpJSON("POST", base + "/_sandbox/crm", json: body)
            }
            // The refresh policy of CRMIndexService.
            let before = await sandbox.tokensSpent()
            let clock = ContinuousClock(), started = clock.now
            var ran: CRMIndexSync.Mode?
            if let mode = sync.due(try await store.crmSyncStates(), at: now()) {
                ran = mode
            } else if misses.due(elapsed: .seconds(60 * (m - lastPersons))) {
                ran = .persons
            }
            if let mode = ran {
                let report = try await sync.refresh(mode, scheduled: true)
                // As CRMIndexService: only a listing of the persons settles the misses.
                if report.rows[.person] != nil {
                    lastPersons = m
                    misses.listed(found: try await misses.found(in: store), missRefresh: mode == .persons)
                }
                refreshes[mode, default: 0] += 1
                refreshTokens[mode, default: 0] += await sandbox.tokensSpent() - before
                if mode == .full, refreshes[.full] == 1 { buildSeconds = (clock.now - started).seconds }
            }
            // The minute's calls, matched as the upload job matches them.
            let requestsBefore = await sandbox.requestCount()
            while nextCall < callMinutes.count, callMinutes[nextCall] == m {
                nextCall += 1
                let isUnknown = Double(random.next() % 1_000_000) / 1_000_000 < unknown
                let other = isUnknown ? "+49 30 \(9_000_000 + Int(random.next() % 999_999))" : known[Int(random.next() % UInt64(known.count))]
                var draft = CallLogDraft(outcome: "connected", toPhoneNumber: "+4930123450", startTime: CallLogDraft.formatTime(now()))
                draft.fromPhoneNumber = other
                let linked = try await linker.link(draft, metadata: nil, store: store, client: nil, logger: logger)
                reasons[linked.decision.reason, default: 0] += 1
                if linked.decision.reason == .unknownNumber, let number = linked.decision.number {
                    misses.noteMiss(number)
                    missed.append(other)
                }
            }
            requestsOnCalls += await sandbox.requestCount() - requestsBefore
        }
        let spent = await sandbox.tokensSpent() - baseline
        let requests = await sandbox.requestCount() - baselineRequests
        let perCall = Double(spent) / Double(max(1, calls))
        func row(_ mode: CRMIndexSync.Mode) -> String { "\(refreshes[mode] ?? 0) (\(refreshTokens[mode] ?? 0) tokens)" }
        print("| \(database == nil ? "SQLite" : "PostgreSQL") | \(persons) / \(deals) | \(calls) (\(Int(unknown * 100)) % unknown) | \(changes) | "
            + "\(row(.full)) | \(row(.incremental)) | \(row(.persons)) | \(requests) | **\(spent)** | **\(String(format: "%.2f", perCall))** | "
            + "\(requestsOnCalls) | \(String(format: "%.0f", 20 + perCall)) | \(String(format: "%.1f", buildSeconds)) s | \(perCall <= 1 && requestsOnCalls == 0 ? "PASS" : "MISS") |")
        let shown = reasons.sorted { $0.value > $1.value }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
        FileHandle.standardError.write(Data("matches: \(shown)\n".utf8))
    }
}

/// The simulated day's minute, shared by the sandbox's clock and the index's.
final class VirtualMinute: Sendable {
    private let minute = Mutex(0)
    var value: Int {
        get { minute.withLock { $0 } }
        set { minute.withLock { $0 = newValue } }
    }
}

import ArgumentParser
import CallApp
import CallStore
import CallSupport
import CallTesting
import Foundation

/// Hidden: bench/match.sh's lookup benchmark (issue 17 goal: a lookup in the CRM index ≤ 1 ms
/// p99 at 50,000 persons). Fills the store's index as a refresh would (pages of 500 through
/// `applyCRMPage`, then the end of a full pass of each kind), then times lookups of random
/// numbers, known and unknown, one after the other.
struct BenchMatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-match",
        abstract: "Fill the CRM index and time phone lookups (benchmarks).",
        shouldDisplay: false
    )

    @Option(help: "Persons (1–3 numbers each; the persons of every tenth organization share its switchboard number).")
    var persons = 50_000
    @Option(help: "Organizations (every fifth has a number of its own).")
    var organizations = 10_000
    @Option(help: "Open deals (and a quarter as many won or lost).")
    var deals = 20_000
    @Option(help: "Leads (a tenth archived).")
    var leads = 5_000
    @Option(help: "Timed lookups.")
    var lookups = 20_000
    @Option(help: "Untimed lookups first.")
    var warmup = 1_000
    @Option(help: "Share of the lookups that ask for an unknown number.")
    var unknownShare = 0.3
    @Option(help: "Rows per page (as a listing's page).")
    var page = 500
    @Option(help: "Seed of the data and of the numbers asked.")
    var seed: UInt64 = 17
    @Flag(help: "Leave the index as it is (filled by an earlier run): time the lookups only.")
    var noFill = false

    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard persons >= 1, organizations >= 1, deals >= 0, leads >= 0, lookups >= 1, warmup >= 0, page >= 1,
              (0...1).contains(unknownShare) else {
            throw ValidationError("--persons, --organizations, --lookups and --page must be positive, --unknown-share within 0…1")
        }
    }

    func run() async throws {
        let logger = options.makeLogger()
        var random = SplitMix64(seed: seed)
        let data = BenchCRM(persons: persons, organizations: organizations, deals: deals, leads: leads, random: &random)
        try await options.settings.withStore(creating: true, logger: logger) { store in
            let clock = ContinuousClock()
            var fill: Double?
            if !noFill {
                let started = clock.now
                try await data.fill(store, page: page)
                fill = (clock.now - started).seconds
            }
            let counts = try await store.crmCounts()
            let asked = (0..<(warmup + lookups)).map { _ in
                random.unit() < unknownShare ? BenchCRM.unknownNumber(&random) : random.pick(data.numbers)
            }
            var times: [Double] = []
            times.reserveCapacity(lookups)
            var found = 0
            for (n, number) in asked.enumerated() {
                let started = clock.now
                let candidates = try await store.phoneCandidates(number)
                let elapsed = clock.now - started
                if n >= warmup {
                    times.append(elapsed.seconds * 1000)
                    if !candidates.isEmpty { found += 1 }
                }
            }
            times.sort()
            let percentile = { (p: Double) in times[min(times.count - 1, Int((p * Double(times.count)).rounded(.up)) - 1)] }
            let result = BenchMatchResult(
                store: store.location.hasPrefix("sqlite:") ? "sqlite" : "postgres", persons: counts[.person] ?? 0,
                organizations: counts[.organization] ?? 0, deals: counts[.deal] ?? 0, leads: counts[.lead] ?? 0,
                numbers: data.numbers.count, fillSeconds: fill, lookups: times.count, found: found,
                p50Ms: percentile(0.5), p99Ms: percentile(0.99), maxMs: times.last ?? 0,
                meanMs: times.reduce(0, +) / Double(times.count))
            if options.json {
                let encoder = JSONEncoder()
                encoder.keyEncodingStrategy = .convertToSnakeCase
                encoder.outputFormatting = [.sortedKeys]
                FileHandle.standardOutput.write(try encoder.encode(result) + Data("\n".utf8))
            } else {
                print(String(format: "%@: %d persons, %d organizations, %d deals, %d leads (%d numbers); fill %@; %d lookups (%d found): p50 %.3f ms, p99 %.3f ms, max %.3f ms",
                             result.store, result.persons, result.organizations, result.deals, result.leads, result.numbers,
                             fill.map { String(format: "%.1f s", $0) } ?? "skipped", result.lookups, found, result.p50Ms, result.p99Ms,
                             result.maxMs))
            }
        }
    }
}

struct BenchMatchResult: Encodable {
    var store: String
    var persons, organizations, deals, leads, numbers: Int
    var fillSeconds: Double?
    var lookups, found: Int
    var p50Ms, p99Ms, maxMs, meanMs: Double
}

/// A synthetic CRM of the benchmark's size, the same for a seed.
struct BenchCRM {
    var persons: [CRMPerson] = []
    var organizations: [CRMOrganization] = []
    var deals: [CRMDeal] = []
    var leads: [CRMLead] = []
    /// Every number in the index (a switchboard's once).
    var numbers: [String] = []

    init(persons personCount: Int, organizations organizationCount: Int, deals dealCount: Int, leads leadCount: Int,
         random: inout SplitMix64) {
        let base = Date(timeIntervalSince1970: 1_790_000_000)
        func updated(_ random: inout SplitMix64) -> Date { base.addingTimeInterval(Double(random.int(0...86_400 * 365))) }
        var numbers = Set<String>()
        for id in 1...organizationCount {
            // Every tenth organization has a switchboard its persons share; every fifth a number of its own.
            let phones = id % 5 == 0 ? [String(format: "+4940%07d", id)] : []
            organizations.append(CRMOrganization(id: id, name: "Organization \(id)", phones: phones, updatedAt: updated(&random)))
            numbers.formUnion(phones)
        }
        for id in 1...personCount {
            let org: Int? = random.chance(0.2) ? nil : random.int(1...organizationCount)
            var phones = (0..<random.int(1...3)).map { String(format: "+49%d%08d", 151 + $0, id) }
            if let org, org % 10 == 0 { phones.append(String(format: "+4989%07d", org)) }
            persons.append(CRMPerson(id: id, name: "Person \(id)", orgID: org, ownerID: random.int(1...50), phones: phones,
                                     updatedAt: updated(&random)))
            numbers.formUnion(phones)
        }
        let closed = dealCount / 4
        for id in 0..<(dealCount + closed) {
            let person = random.pick(persons)
            let status = id < dealCount ? "open" : (id % 2 == 0 ? "won" : "lost")
            deals.append(CRMDeal(id: id + 1, title: "Deal \(id + 1)", personID: person.id, orgID: person.orgID, status: status,
                                 updatedAt: updated(&random)))
        }
        for id in 0..<leadCount {
            let person = random.pick(persons)
            leads.append(CRMLead(id: String(format: "00000000-0000-4000-8000-%012d", id), title: "Lead \(id)", personID: person.id,
                                 orgID: person.orgID, archived: id % 10 == 0, updatedAt: updated(&random)))
        }
        self.numbers = numbers.sorted()
    }

    /// A well-formed number no row has (another range).
    static func unknownNumber(_ random: inout SplitMix64) -> String { String(format: "+4930%08d", random.int(0...99_999_999)) }

    /// Pages of `page` rows of each kind, as full passes of generation 1, then their ends.
    func fill(_ store: any CallStore, page: Int) async throws {
        func pages<Row>(_ rows: [Row], _ kind: CRMEntityKind, _ make: ([Row], CRMSyncState) -> CRMPage) async throws {
            for start in stride(from: 0, to: rows.count, by: page) {
                let end = min(start + page, rows.count)
                let sync = CRMSyncState(entity: kind, cursor: end < rows.count ? "\(end)" : nil, full: true, pass: 1)
                try await store.applyCRMPage(make(Array(rows[start..<end]), sync))
            }
            try await store.finishCRMFullPass(CRMSyncState(entity: kind, full: true, pass: 1, lastFullPassAt: Date()))
        }
        try await pages(organizations, .organization) { CRMPage(sync: $1, organizations: $0) }
        try await pages(persons, .person) { CRMPage(sync: $1, persons: $0) }
        try await pages(deals, .deal) { CRMPage(sync: $1, deals: $0) }
        try await pages(leads, .lead) { CRMPage(sync: $1, leads: $0) }
    }
}

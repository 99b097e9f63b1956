import CallStore
import CallTesting
import Foundation
import GRDB
import PostgresNIO
import Testing

@testable import CallStorePostgres
@testable import CallStoreSQLite

/// The local phone index of the CRM (migration v5, CRMIndex.swift) on every backend: pages
/// written and removed, the full pass's sweep, the lookup's content and order, the listings'
/// state, users by e-mail, and pages applied at once.
@Suite(.timeLimit(.minutes(2)))
struct CRMIndexTests {
    static func sync(_ entity: CRMEntityKind = .person, pass: Int64 = 1, cursor: String? = nil, full: Bool = true) -> CRMSyncState {
        CRMSyncState(entity: entity, cursor: cursor, full: full, pass: pass)
    }

    // MARK: writes

    @Test(arguments: backends)
    func aPersonsPhonesAreReplacedByItsNextRow(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let ana = CRMPerson(id: 1, name: "Ana", orgID: 10, ownerID: 7, phones: ["+4930111", "+4930222"], updatedAt: .fixture(1))
            // A number twice in the CRM: once in the index.
            let ben = CRMPerson(id: 2, name: "Ben", phones: ["+4930222", "+4930333", "+4930222"], updatedAt: nil)
            let acme = CRMOrganization(id: 10, name: "Acme", phones: ["+4930999"], updatedAt: .fixture(2))
            try await store.applyCRMPage(CRMPage(sync: Self.sync(cursor: "c1"), persons: [ana, ben], organizations: [acme]))

            let first = try await store.phoneCandidates("+4930111")
            #expect(first.persons == [ana])
            #expect(first.organizations == [acme])
            #expect(try await store.phoneCandidates("+4930222").persons.map(\.id) == [1, 2])
            #expect(try await store.phoneCandidates("+4930333").persons.first?.phones == ["+4930222", "+4930333"])
            #expect(try await store.phoneCandidates("+4930999").organizations == [acme])
            #expect(try await store.phoneCandidates("+4930999").persons.isEmpty)

            // The next listing of Ana: other numbers, order, name, no organization.
            let renamed = CRMPerson(id: 1, name: "Ana B.", ownerID: nil, phones: ["+4930444", "+4930222"], updatedAt: .fixture(3))
            try await store.applyCRMPage(CRMPage(sync: Self.sync(cursor: "c2"), persons: [renamed]))
            #expect(try await store.phoneCandidates("+4930111").isEmpty)
            let again = try await store.phoneCandidates("+4930444")
            #expect(again.persons == [renamed])
            #expect(again.organizations.isEmpty)
            #expect(try await store.phoneCandidates("+4930222").persons.map(\.id) == [1, 2])
            // No numbers at all: the person stays, unreachable by number.
            try await store.applyCRMPage(CRMPage(sync: Self.sync(), persons: [CRMPerson(id: 1, name: "Ana B.")]))
            #expect(try await store.phoneCandidates("+4930444").isEmpty)
            #expect(try await store.phoneCandidates("+4930222").persons.map(\.id) == [2])
            #expect(try await store.crmCounts() == [.person: 2, .organization: 1, .deal: 0, .lead: 0, .user: 0])
        }
    }

    @Test(arguments: backends)
    func removedRowsAndTheirNumbersGo(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let lead = "0f8e4a8c-1b2c-4d5e-8f90-123456789abc"
            try await store.applyCRMPage(CRMPage(
                sync: Self.sync(), persons: [CRMPerson(id: 1, name: "Ana", phones: ["+111"]), CRMPerson(id: 2, name: "Ben", phones: ["+111"])],
                organizations: [CRMOrganization(id: 10, name: "Acme", phones: ["+999"])],
                deals: [CRMDeal(id: 100, title: "Deal", personID: 2), CRMDeal(id: 101, title: "Other", personID: 1)],
                leads: [CRMLead(id: lead, title: "Lead", personID: 2)],
                users: [CRMUser(id: 5, name: "Uma", email: "uma@example.com")]))
            // Removals of every kind; an id that cannot exist (not a number) is nothing to remove.
            try await store.applyCRMPage(CRMPage(sync: Self.sync(cursor: "next"), removed: [
                .person: ["2", "not-a-number"], .organization: ["10"], .deal: ["100"], .lead: [lead], .user: ["5"],
            ]))
            let candidates = try await store.phoneCandidates("+111")
            #expect(candidates.persons.map(\.id) == [1])
            #expect(candidates.openDeals.map(\.id) == [101])
            #expect(try await store.phoneCandidates("+999").isEmpty)
            #expect(try await store.crmUser(id: 5) == nil)
            #expect(try await store.crmCounts() == [.person: 1, .organization: 0, .deal: 1, .lead: 0, .user: 0])
            #expect(try await store.crmSyncStates()[.person]?.cursor == "next")

            // Written and removed by one page: gone.
            try await store.applyCRMPage(CRMPage(sync: Self.sync(), persons: [CRMPerson(id: 3, name: "Cy", phones: ["+333"])],
                                                 removed: [.person: ["3"]]))
            #expect(try await store.phoneCandidates("+333").isEmpty)
        }
    }

    /// A person deleted or merged away in the CRM is absent from the next full pass: its end
    /// deletes the rows of older generations, and their numbers, of that kind only.
    @Test(arguments: backends)
    func aFullPassSweepsWhatItDidNotSee(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let persons = (1...3).map { CRMPerson(id: $0, name: "P\($0)", phones: ["+4930\($0)"]) }
            try await store.applyCRMPage(CRMPage(sync: Self.sync(pass: 1, cursor: "c"), persons: Array(persons[0..<2])))
            try await store.applyCRMPage(CRMPage(sync: Self.sync(pass: 1), persons: [persons[2]],
                                                 deals: [CRMDeal(id: 7, title: "D", personID: 2)]))
            #expect(try await store.finishCRMFullPass(Self.sync(pass: 1, full: false)) == 0)

            // Pass 2 lists persons 1 and 3 (2 was merged into 1, which now has its number).
            var merged = persons[0]
            merged.phones.append("+49302")
            try await store.applyCRMPage(CRMPage(sync: Self.sync(pass: 2, cursor: "c"), persons: [merged, persons[2]]))
            // Before the pass ends, person 2 still matches.
            #expect(try await store.phoneCandidates("+49302").persons.map(\.id) == [1, 2])
            let ended = CRMSyncState(entity: .person, full: false, pass: 2, updatedSince: .fixture(60), lastRefreshAt: .fixture(61),
                                     lastFullPassAt: .fixture(61))
            #expect(try await store.finishCRMFullPass(ended) == 1)
            #expect(try await store.phoneCandidates("+49302").persons == [merged])
            // The deal (another kind, written in pass 1) stays until a full pass of deals ends.
            #expect(try await store.crmCounts() == [.person: 2, .organization: 0, .deal: 1, .lead: 0, .user: 0])
            #expect(try await store.crmSyncStates()[.person] == ended)
            #expect(try await store.finishCRMFullPass(Self.sync(.deal, pass: 2)) == 1)
            #expect(try await store.crmCounts()[.deal] == 0)
        }
    }

    // MARK: the lookup

    /// Persons by id; their organizations and the number's own; open deals and leads not
    /// archived of all of them, the most recently updated first (none last), then the newest id.
    @Test(arguments: backends)
    func theLookupGathersPersonsOrganizationsDealsAndLeadsInOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let shared = "+4930123456"
            let persons = [
                CRMPerson(id: 22, name: "Zoë", orgID: 10, phones: ["+4917000022", shared], updatedAt: .fixture(5)),
                CRMPerson(id: 3, name: "Ana", orgID: 10, ownerID: 9, phones: [shared], updatedAt: .fixture(6)),
                CRMPerson(id: 4, name: "Other", orgID: 11, phones: ["+4930999"]),
            ]
            // Org 12 has the number itself; org 13 (a person's org) is not in the index yet.
            let organizations = [
                CRMOrganization(id: 10, name: "Acme", updatedAt: .fixture(1)),
                CRMOrganization(id: 11, name: "Elsewhere"),
                CRMOrganization(id: 12, name: "Switchboard Ltd", phones: [shared, "+4930777"]),
            ]
            let deals = [
                CRMDeal(id: 50, title: "of Zoë, older", personID: 22, updatedAt: .fixture(10)),
                CRMDeal(id: 51, title: "of Acme, newest", orgID: 10, updatedAt: .fixture(30)),
                CRMDeal(id: 52, title: "of Ana, won", personID: 3, status: "won", updatedAt: .fixture(40)),
                CRMDeal(id: 53, title: "of Ana and Acme, tie", personID: 3, orgID: 10, updatedAt: .fixture(10)),
                CRMDeal(id: 54, title: "no time", personID: 3),
                CRMDeal(id: 55, title: "of Other", personID: 4, updatedAt: .fixture(50)),
                CRMDeal(id: 56, title: "of the switchboard", orgID: 12, updatedAt: .fixture(20)),
                CRMDeal(id: 57, title: "of org 13", personID: 99, orgID: 13, updatedAt: .fixture(15)),
                CRMDeal(id: 58, title: "of Acme, lost", orgID: 10, status: "lost", updatedAt: .fixture(60)),
            ]
            let leads = [
                CRMLead(id: "a-lead", title: "Zoë's", personID: 22, updatedAt: .fixture(1)),
                CRMLead(id: "b-lead", title: "Acme's", orgID: 10, updatedAt: .fixture(2)),
                CRMLead(id: "c-lead", title: "archived", personID: 3, archived: true, updatedAt: .fixture(3)),
                CRMLead(id: "d-lead", title: "Other's", personID: 4, updatedAt: .fixture(4)),
            ]
            var thirteen = persons[1]
            thirteen.id = 30
            thirteen.orgID = 13
            thirteen.phones = ["+4930555", shared]
            try await store.applyCRMPage(CRMPage(sync: Self.sync(), persons: persons + [thirteen], organizations: organizations,
                                                 deals: deals, leads: leads))

            let found = try await store.phoneCandidates(shared)
            #expect(found.persons == [persons[1], persons[0], thirteen])
            #expect(found.organizations == [organizations[0], organizations[2]])
            #expect(found.openDeals.map(\.id) == [51, 56, 57, 53, 50, 54])
            #expect(found.openDeals.first == deals[1])
            #expect(found.openLeads == [leads[1], leads[0]])

            // A number of the organization alone: it, and its deals; none of its persons.
            let board = try await store.phoneCandidates("+4930777")
            #expect(board.persons.isEmpty)
            #expect(board.organizations == [organizations[2]])
            #expect(board.openDeals == [deals[6]])
            #expect(board.openLeads.isEmpty)

            #expect(try await store.phoneCandidates("+4930000000").isEmpty)
            #expect(try await store.phoneCandidates("") == PhoneCandidates())
        }
    }

    // MARK: state and users

    @Test(arguments: backends)
    func listingStatesRoundTrip(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            #expect(try await store.crmSyncStates().isEmpty)
            let persons = CRMSyncState(entity: .person, cursor: "eyJpZCI6NTAwfQ==", full: true, pass: 4, updatedSince: .fixture(-60),
                                       lastRefreshAt: .fixture(0), lastFullPassAt: .fixture(-86_400))
            let leads = CRMSyncState(entity: .lead, cursor: "500", full: false, pass: 1)
            try await store.applyCRMPage(CRMPage(sync: persons))
            try await store.applyCRMPage(CRMPage(sync: leads))
            #expect(try await store.crmSyncStates() == [.person: persons, .lead: leads])

            // The listing's next page moves it on; the end of the pass clears the cursor.
            var next = persons
            next.cursor = nil
            next.lastFullPassAt = .fixture(10)
            #expect(try await store.finishCRMFullPass(next) == 0)
            #expect(try await store.crmSyncStates() == [.person: next, .lead: leads])
        }
    }

    @Test(arguments: backends)
    func usersAreFoundByEmailWhateverItsCase(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let uma = CRMUser(id: 5, name: "Uma", email: "Uma.Ortiz@Example.com")
            // The same address on a deactivated account: the active one is the owner.
            let former = CRMUser(id: 2, name: "Uma (old)", email: "uma.ortiz@example.com", active: false)
            try await store.applyCRMPage(CRMPage(sync: Self.sync(.user), users: [former, uma]))
            #expect(try await store.crmUser(email: "UMA.ORTIZ@example.COM") == uma)
            #expect(try await store.crmUser(id: 2) == former)
            #expect(try await store.crmUser(email: "nobody@example.com") == nil)
            #expect(try await store.crmUser(id: 3) == nil)
        }
    }

    // MARK: concurrency

    /// Refreshes (several processes) apply pages of the same persons at once, two in the same
    /// order and one in the opposite: every page lands whole, none fails, and each person ends
    /// with the numbers of one of its rows, never a mixture.
    @Test(arguments: backends)
    func pagesAppliedAtOnceEachLandWhole(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let ids = Array(1...1_000)
            let pages = stride(from: 0, to: ids.count, by: 100).map { Array(ids[$0..<min($0 + 100, ids.count)]) }
            let writers = ["a", "b", "c"]
            func own(_ writer: Substring, _ id: Int) -> String { "+1555\(writers.firstIndex(of: String(writer))! + 1)\(id)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in writers {
                    let order = writer == "c" ? pages.reversed().map { Array($0.reversed()) } : pages
                    group.addTask {
                        for (n, page) in order.enumerated() {
                            let persons = page.map { CRMPerson(id: $0, name: "\(writer)\($0)", orgID: $0 % 7, phones: [own(writer[...], $0), "+19000\($0)"]) }
                            let deals = page.map { CRMDeal(id: $0, title: "\(writer)\($0)", personID: $0) }
                            try await store.applyCRMPage(CRMPage(sync: CRMSyncState(entity: .person, cursor: "\(writer)\(n)", full: true, pass: 1),
                                                                 persons: persons, deals: deals))
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.crmCounts() == [.person: 1_000, .organization: 0, .deal: 1_000, .lead: 0, .user: 0])
            var mixed: [Int] = []
            for id in ids {
                let candidates = try await store.phoneCandidates("+19000\(id)")
                let person = try #require(candidates.persons.first)
                #expect(candidates.persons.count == 1)
                if person.phones != [own(person.name.prefix(1), id), "+19000\(id)"] { mixed.append(id) }
            }
            #expect(mixed.isEmpty, "persons with numbers of several rows: \(mixed.prefix(20))")
            let last = try #require(try await store.crmSyncStates()[.person]?.cursor)
            #expect(["a9", "b9", "c9"].contains(last))
        }
    }

    // MARK: migration

    /// A v4 database (a ledger in use) upgrades to v5 with its rows kept, and the index works.
    @Test func aVersion4DatabaseUpgradesInSQLite() async throws {
        try await withTemporaryDirectory { directory in
            let store = try SQLiteStore(path: directory + "/state.db")
            try SQLiteSchema.migrator.migrate(store.pool, upTo: "v4-telnyx-events")
            let r = LedgerTests.recording(1)
            // The recording as v4 wrote it (today's commit also writes tables of later versions).
            try await store.pool.write { db in
                try db.execute(sql: """
                    INSERT INTO recording (key, path, metadata, state, part_count, created_at, updated_at)
                    VALUES (?, ?, ?, ?, 0, 0, 0)
                    """, arguments: [r.key, r.path, r.metadata, r.state.rawValue])
            }
            await #expect(throws: StoreError.self) { try await store.crmCounts() }
            try await store.migrate()
            try await Self.indexWorks(after: r, store)
            try await store.migrate()
            try await store.close()
        }
    }

    @Test(.enabled(if: postgresAvailable, "PostgreSQL is not available"))
    func aVersion4DatabaseUpgradesInPostgres() async throws {
        try await withPostgresAtVersion(4, prefix: "pg_v4") { store in
            let r = LedgerTests.recording(1)
            try await store.commit([.insertRecording(r)])
            await #expect(throws: StoreError.self) { try await store.crmCounts() }
            try await store.migrate()
            try await Self.indexWorks(after: r, store)
        }
    }

    static func indexWorks(after recording: Recording, _ store: any CallStore) async throws {
        #expect(try await store.recording(key: recording.key)?.path == recording.path)
        try await store.applyCRMPage(CRMPage(sync: sync(), persons: [CRMPerson(id: 1, name: "Ana", phones: ["+4930111"])]))
        #expect(try await store.phoneCandidates("+4930111").persons.map(\.id) == [1])
    }
}

import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// `callrec match NUMBER` (issue 17) run as built, on an index seeded through the store's API
/// (SQLite under --state, PostgreSQL with --database): every form of a number finds the same
/// person, the precedence and the link bound, the shared switchboard, the company's own number,
/// an unknown number, and the exit codes (0 linked, 1 nothing, 2 usage or configuration).
@Suite struct MatchCLITests {
    let callrec = callrecExecutable()

    func environment() -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        return environment
    }

    /// 2026-12-`day` 10:00 UTC.
    static func day(_ day: Int) -> Date { Date(timeIntervalSince1970: 1_796_119_200 + Double(day - 1) * 86400) }

    /// Anna (7, Acme) with two open deals and a won one; Bob and Carl (Acme) on the switchboard;
    /// Dana (no organization) and Eve (Globex) sharing a number.
    static func seed(_ store: any CallStore) async throws {
        let page = CRMPage(
            sync: CRMSyncState(entity: .person, pass: 1),
            persons: [CRMPerson(id: 7, name: "Anna Schmidt", orgID: 3, phones: ["+49301234567"], updatedAt: day(2)),
                      CRMPerson(id: 8, name: "Bob Bauer", orgID: 3, phones: ["+49309876543"], updatedAt: day(2)),
                      CRMPerson(id: 9, name: "Carl Czerny", orgID: 3, phones: ["+49309876543", "+4915112345678"], updatedAt: day(2)),
                      CRMPerson(id: 10, name: "Dana Dorn", phones: ["+49891234567"], updatedAt: day(2)),
                      CRMPerson(id: 11, name: "Eve Engel", orgID: 4, phones: ["+49891234567"], updatedAt: day(2))],
            organizations: [CRMOrganization(id: 3, name: "Acme GmbH", updatedAt: day(1)), CRMOrganization(id: 4, name: "Globex", updatedAt: day(1))],
            deals: [CRMDeal(id: 11, title: "Pilot", personID: 7, orgID: 3, updatedAt: day(1)),
                    CRMDeal(id: 12, title: "Renewal", personID: 7, orgID: 3, updatedAt: day(5)),
                    CRMDeal(id: 13, title: "Closed", personID: 7, orgID: 3, status: "won", updatedAt: day(6))])
        try await withRunningStore(store) { store in
            try await store.migrate()
            try await store.applyCRMPage(page)
        }
    }

    func json(_ result: ProcessResult) throws -> [String: Any] {
        // An empty or broken answer says what the process said (status and stderr).
        let object = try? JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return try #require(object, "exit \(result.status): \(result.stderr.suffix(2000))")
    }

    func decision(_ result: ProcessResult) throws -> [String: Any] {
        try #require(try json(result)["decision"] as? [String: Any])
    }

    func checkMatches(_ store: [String], dir: String) async throws {
        func match(_ arguments: String...) async throws -> ProcessResult {
            try await runProcess(callrec, ["match"] + arguments + store, environment: environment())
        }
        // Every form of Anna's number: her most recently updated open deal.
        for form in ["030 123-45-67", "(030) 1234567", "+49 30 1234567", "0049301234567", "+49-30-123 45 67"] {
            let result = try await match(form, "--region", "DE", "--json")
            #expect(result.status == 0, "\(form): \(result.stderr)")
            let d = try decision(result)
            #expect(d["reason"] as? String == "deal" && d["deal_id"] as? Int == 12 && d["person_id"] as? Int == 7 && d["org_id"] as? Int == 3, "\(form): \(d)")
            #expect(try json(result)["number"] as? String == "+49301234567")
        }
        // Without --json: the number, the candidates and the decision, on stdout.
        let text = try await match("+49 30 1234567")
        let out = String(decoding: text.stdout, as: UTF8.self)
        #expect(text.status == 0 && out.contains("+49 30 1234567 → +49301234567") && out.contains("person 7 Anna Schmidt"), "\(out)")
        #expect(out.contains("deal: +49301234567 → deal 12 'Renewal' of person 7 Anna Schmidt of organization 3 Acme GmbH (open, updated 2026-12-05); 1 other open deal older"), "\(out)")
        // The link bound.
        let person = try await match("+49301234567", "--link", "person", "--json")
        let personDecision = try decision(person)
        #expect(person.status == 0 && personDecision["reason"] as? String == "person" && personDecision["deal_id"] is NSNull)
        let none = try await match("+49301234567", "--link", "none", "--json")
        let noneReason = try decision(none)["reason"] as? String
        #expect(none.status == 1 && noneReason == "link_none")
        // The switchboard of Acme: the organization; a number of persons of two organizations: nothing.
        let shared = try await match("+49 30 9876543", "--json")
        let sharedDecision = try decision(shared)
        #expect(shared.status == 0 && sharedDecision["reason"] as? String == "shared_number_org" && sharedDecision["org_id"] as? Int == 3)
        #expect(sharedDecision["person_id"] is NSNull)
        let ambiguous = try await match("+49 89 1234567", "--json")
        let ambiguousReason = try decision(ambiguous)["reason"] as? String
        #expect(ambiguous.status == 1 && ambiguousReason == "shared_number_ambiguous")
        // Unknown.
        let unknown = try await match("+49 30 5555555", "--json")
        let unknownReason = try decision(unknown)["reason"] as? String
        #expect(unknown.status == 1 && unknownReason == "unknown_number")
        // The company's own number, from --config (its matching section sets the region too).
        try #"{ "matching": { "region": "DE" }, "company_numbers": ["030 1234567"] }"#.write(toFile: "\(dir)/c.json", atomically: true, encoding: .utf8)
        let company = try await match("030 1234567", "--config", "\(dir)/c.json", "--json")
        let companyDecision = try decision(company)
        #expect(company.status == 1 && companyDecision["reason"] as? String == "company_number", "\(company.stderr)")
        // Usage and configuration: exit 2 with the reason.
        let extensionNumber = try await match("201", "--region", "DE")
        #expect(extensionNumber.status == 2 && extensionNumber.stderr.contains("201: not a phone number"), "\(extensionNumber.stderr)")
        let national = try await match("030 1234567")
        #expect(national.status == 2 && national.stderr.contains("--region"), "\(national.stderr)")
        let link = try await match("+49301234567", "--link", "everything")
        #expect(link.status == 2 && link.stderr.contains("--link everything"), "\(link.stderr)")
    }

    @Test(.timeLimit(.minutes(3)))
    func matchExplainsANumberFromTheSQLiteIndex() async throws {
        try await withTemporaryDirectory { dir in
            // No state there yet: nothing to explain from.
            let missing = try await runProcess(callrec, ["match", "+49301234567", "--state", "\(dir)/state"], environment: environment())
            #expect(missing.status == 2 && missing.stderr.contains("\(dir)/state"), "\(missing.stderr)")
            try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
            try await Self.seed(try SQLiteStore(path: "\(dir)/state/callrec.sqlite"))
            try await checkMatches(["--state", "\(dir)/state"], dir: dir)
        }
    }

    @Test(.timeLimit(.minutes(3)), .enabled(if: TestPostgres.available, "PostgreSQL is not available (install postgresql)"))
    func matchExplainsANumberFromThePostgreSQLIndex() async throws {
        try await withTemporaryDirectory { dir in
            let url = try #require(try TestPostgres.freshDatabase(prefix: "match_cli"))
            try await Self.seed(try PostgresStore(url: url))
            try await checkMatches(["--database", url], dir: dir)
        }
    }
}

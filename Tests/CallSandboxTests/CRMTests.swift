import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Synchronization
import Testing

/// The sandbox's CRM over loopback: Pipedrive's v2 cursor listings of persons, organizations and
/// deals, the v1 leads and users, their token costs and 400s, and the `/_sandbox/crm` routes that
/// seed and change it.
@Suite struct CRMTests {
    /// A wall time the test sets (the CRM's `now`).
    final class Now: Sendable {
        private let date: Mutex<Date>
        init(_ text: String) { date = Mutex(Self.date(text)) }
        func set(_ text: String) { date.withLock { $0 = Self.date(text) } }
        var value: Date { date.withLock { $0 } }
        static func date(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }
    }

    // MARK: Helpers

    @discardableResult
    func seed(_ client: SandboxClient, _ document: [String: Any], expect status: Int = 200) async throws -> HTTPResult {
        let result = try await client.send(.POST, "/_sandbox/crm", headers: ["Content-Type": "application/json"],
                                           body: try JSONSerialization.data(withJSONObject: document))
        #expect(result.status == status, "\(result.text)")
        return result
    }

    /// One v2 page: its items and `additional_data.next_cursor`.
    func page(_ client: SandboxClient, _ path: String) async throws -> (items: [[String: Any]], next: String?) {
        let result = try await client.send(.GET, path, headers: client.pipedriveAuth)
        try #require(result.status == 200, "\(path): \(result.status) \(result.text)")
        let json = try result.json
        #expect(json["success"] as? Bool == true)
        let items = try #require(json["data"] as? [[String: Any]])
        let additional = try #require(json["additional_data"] as? [String: Any])
        return (items, additional["next_cursor"] as? String)
    }

    /// Every page of a v2 listing (`path` has a query), following `next_cursor`; and the pages' count.
    func all(_ client: SandboxClient, _ path: String) async throws -> (items: [[String: Any]], pages: Int) {
        var items: [[String: Any]] = [], pages = 0, cursor: String?
        repeat {
            let (page, next) = try await self.page(client, path + (cursor.map { "&cursor=\($0)" } ?? ""))
            items += page
            pages += 1
            cursor = next
            try #require(pages <= 1000, "the listing never ends")
        } while cursor != nil
        return (items, pages)
    }

    func ids(_ items: [[String: Any]]) -> [Int] { items.compactMap { $0["id"] as? Int } }

    /// RFC 3339 of seconds since 1970.
    static func time(_ seconds: Int) -> String { Date(timeIntervalSince1970: TimeInterval(seconds)).formatted(.iso8601) }

    /// JSON with sorted keys, to compare answers.
    func canonical(_ value: Any?) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value ?? NSNull(), options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    func v1(_ client: SandboxClient, _ path: String) async throws -> [String: Any] {
        let result = try await client.send(.GET, path, headers: client.pipedriveAuth)
        try #require(result.status == 200, "\(path): \(result.status) \(result.text)")
        return try result.json
    }

    func change(_ client: SandboxClient, _ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil) async throws -> HTTPResult {
        try await client.send(method, path, headers: ["Content-Type": "application/json"],
                              body: try body.map { try JSONSerialization.data(withJSONObject: $0) })
    }

    // MARK: Listings

    @Test func pagingThroughPersonsGivesEachOnceInOrderAndCostsTenTokensAPage() async throws {
        try await withTestSandbox { client, sandbox in
            let persons: [[String: Any]] = (1...1234).shuffled().map { id in
                ["id": id, "name": "Person \(id)", "phones": ["+4930\(1_000_000 + id)"],
                 "update_time": Self.time(1_800_000_000 + id * 7919 % 1234)]
            }
            try await seed(client, ["persons": persons])
            let before = await sandbox.tokensSpent()

            let (items, pages) = try await all(client, "/api/v2/persons?limit=500")
            #expect(pages == 3)
            #expect(ids(items) == Array(1...1234))
            #expect(await sandbox.tokensSpent() - before == 3 * 10)
            #expect(await sandbox.requestCount(route: "GET /api/v2/persons") == 3)
            let first = try #require(items.first)
            #expect((first["phones"] as? [[String: Any]])?.first?["value"] as? String == "+49301000001")
            #expect((first["phones"] as? [[String: Any]])?.first?["primary"] as? Bool == true)
            #expect(first["org_id"] is NSNull)

            // By update time, newest first: the same persons, each once, times not increasing.
            let (newest, _) = try await all(client, "/api/v2/persons?limit=500&sort_by=update_time&sort_direction=desc")
            #expect(Set(ids(newest)) == Set(1...1234) && newest.count == 1234)
            let times = newest.compactMap { $0["update_time"] as? String }
            #expect(times == times.sorted(by: >))
            // The default page is 100.
            #expect(try await page(client, "/api/v2/persons").items.count == 100)
        }
    }

    @Test func updatedSinceReturnsOnlyTheRowsChangedSince() async throws {
        try await withTestSandbox { client, _ in
            let persons: [[String: Any]] = (1...300).map { id in
                let time = id == 150 ? "2026-03-01T00:00:00Z" : id <= 200 ? Self.time(1_767_225_600 + id) : "2026-06-01T00:00:\(String(format: "%02d", id % 60))Z"
                return ["id": id, "name": "P\(id)", "update_time": time]
            }
            let organizations: [[String: Any]] = [["id": 1, "name": "Old", "update_time": "2025-01-01T00:00:00Z"],
                                                  ["id": 2, "name": "New", "update_time": "2026-04-01T00:00:00Z"]]
            try await seed(client, ["persons": persons, "organizations": organizations])

            let expected = [150] + Array(201...300)
            let byId = try await all(client, "/api/v2/persons?limit=30&updated_since=2026-03-01T00:00:00Z")
            #expect(ids(byId.items) == expected)
            #expect(byId.pages == 4)
            let byTime = try await all(client, "/api/v2/persons?limit=30&sort_by=update_time&updated_since=2026-03-01T00:00:00Z")
            #expect(Set(ids(byTime.items)) == Set(expected) && byTime.items.count == expected.count)
            #expect(ids(byTime.items).first == 150)
            // An offset is read as such: 02:00+02:00 is midnight UTC.
            let offset = try await all(client, "/api/v2/persons?limit=500&updated_since=2026-03-01T02:00:00%2B02:00")
            #expect(ids(offset.items) == expected)
            let organizationsSince = try await page(client, "/api/v2/organizations?updated_since=2026-01-01T00:00:00Z")
            #expect(ids(organizationsSince.items) == [2])
            #expect(organizationsSince.next == nil)
        }
    }

    @Test func dealsFilterByStatusPersonAndOrganization() async throws {
        try await withTestSandbox { client, sandbox in
            let deals: [[String: Any]] = [
                ["id": 1, "title": "A", "status": "open", "person_id": 1, "org_id": 1],
                ["id": 2, "title": "B", "status": "won", "person_id": 1],
                ["id": 3, "title": "C", "status": "lost", "person_id": 2, "org_id": 1],
                ["id": 4, "title": "D", "status": "deleted", "person_id": 1],
                ["id": 5, "title": "E", "org_id": 2],
            ]
            try await seed(client, ["deals": deals])
            let cases: [(String, [Int])] = [
                ("", [1, 2, 3, 5]), ("status=open", [1, 5]), ("status=deleted", [4]), ("status=open,won", [1, 2, 5]),
                ("person_id=1", [1, 2]), ("person_id=1&status=deleted", [4]), ("org_id=1", [1, 3]), ("person_id=1&org_id=1", [1]),
                ("person_id=9", []), ("sort_direction=desc&limit=2", [5, 3, 2, 1]),
            ]
            var requests = 1
            for (query, expected) in cases {
                let (items, pages) = try await all(client, "/api/v2/deals?\(query)")
                #expect(ids(items) == expected, "\(query)")
                requests += pages
            }
            let (open, _) = try await page(client, "/api/v2/deals?status=open&limit=1")
            #expect(open.first?["status"] as? String == "open")
            #expect(open.first?["person_id"] as? Int == 1)
            #expect(await sandbox.requestCount(route: "GET /api/v2/deals") == requests)
            #expect(await sandbox.tokensSpent() == requests * 10)
        }
    }

    @Test func leadsPageByOffsetAndUsersListWithTheirCosts() async throws {
        try await withTestSandbox { client, sandbox in
            let leads: [[String: Any]] = (0..<7).map { index in
                ["id": UUID().uuidString, "title": "Lead \(index)", "person_id": index < 3 ? 1 : 2, "is_archived": index >= 5]
            }
            let users: [[String: Any]] = [["id": 2, "name": "Bo", "email": "bo@example.com", "active_flag": false],
                                          ["id": 1, "name": "Al", "email": "al@example.com"]]
            try await seed(client, ["leads": leads, "users": users])
            let before = await sandbox.tokensSpent()

            var titles: [String] = [], start = 0, pages = 0
            while true {
                let json = try await v1(client, "/v1/leads?limit=2&start=\(start)")
                titles += (json["data"] as? [[String: Any]] ?? []).compactMap { $0["title"] as? String }
                pages += 1
                let pagination = try #require((json["additional_data"] as? [String: Any])?["pagination"] as? [String: Any])
                guard pagination["more_items_in_collection"] as? Bool == true else { break }
                start = try #require(pagination["next_start"] as? Int)
            }
            #expect(titles == (0..<5).map { "Lead \($0)" })
            #expect(pages == 3)
            #expect((try await v1(client, "/v1/leads?archived_status=archived")["data"] as? [[String: Any]])?.count == 2)
            #expect((try await v1(client, "/v1/leads?archived_status=all")["data"] as? [[String: Any]])?.count == 7)
            let ofPerson = try await v1(client, "/v1/leads?person_id=1")["data"] as? [[String: Any]]
            #expect(ofPerson?.count == 3)
            #expect(ofPerson?.first?["id"] as? String == (leads[0]["id"] as? String)?.lowercased())
            #expect((ofPerson?.first?["update_time"] as? String)?.hasSuffix(".000Z") == true)

            let listed = try #require(try await v1(client, "/api/v1/users")["data"] as? [[String: Any]])
            #expect(listed.map { $0["email"] as? String } == ["al@example.com", "bo@example.com"])
            #expect(listed.map { $0["active_flag"] as? Bool } == [true, false])
            #expect(await sandbox.tokensSpent() - before == (pages + 3) * 20 + 20)
        }
    }

    @Test func badParametersAnswer400InPipedrivesShape() async throws {
        try await withTestSandbox { client, _ in
            let paths = [
                "/api/v2/persons?limit=501", "/api/v2/persons?limit=0", "/api/v2/persons?limit=ten", "/api/v2/persons?sort_by=name",
                "/api/v2/persons?sort_direction=up", "/api/v2/persons?cursor=bm90IGEgY3Vyc29y", "/api/v2/organizations?updated_since=yesterday",
                "/api/v2/deals?status=closed", "/api/v2/deals?person_id=x", "/v1/leads?archived_status=some", "/v1/leads?limit=501",
                "/v1/leads?start=-1",
            ]
            for path in paths {
                let result = try await client.send(.GET, path, headers: client.pipedriveAuth)
                #expect(result.status == 400, "\(path): \(result.text)")
                let json = try result.json
                #expect(json["success"] as? Bool == false, "\(path)")
                #expect((json["error"] as? String)?.isEmpty == false, "\(path)")
                #expect(result.header("x-ratelimit-limit") != nil, "\(path)")
            }
            // A cursor of another sort is refused rather than misread.
            try await seed(client, ["persons": (1...3).map { ["id": $0, "name": "P\($0)"] }])
            let (_, next) = try await page(client, "/api/v2/persons?limit=1")
            let other = try await client.send(.GET, "/api/v2/persons?limit=1&sort_by=update_time&cursor=\(try #require(next))", headers: client.pipedriveAuth)
            #expect(other.status == 400)
            #expect(other.text.contains("cursor"))
            let unauthorized = try await client.send(.GET, "/api/v2/persons", headers: ["x-api-token": "wrong"])
            #expect(unauthorized.status == 401)
            let legacy = try await client.send(.GET, "/api/v2/persons?api_token=\(client.configuration.pipedriveToken)")
            #expect(legacy.status == 200)
        }
    }

    @Test func aPersonCreatedThroughTheAPIIsListedAndCostsFiveTokens() async throws {
        try await withTestSandbox { client, sandbox in
            try await seed(client, ["persons": [["id": 41, "name": "Existing"]]])
            let before = await sandbox.tokensSpent()
            let body = try JSONSerialization.data(withJSONObject: ["name": "New Caller", "phones": [["value": "+4930123456", "primary": true, "label": "work"]]])
            let created = try await client.send(.POST, "/api/v2/persons", headers: client.pipedriveAuth.merging(["Content-Type": "application/json"]) { $1 }, body: body)
            #expect(created.status == 200, "\(created.text)")
            let person = try #require(try created.json["data"] as? [String: Any])
            #expect(person["id"] as? Int == 42)
            #expect(person["name"] as? String == "New Caller")
            #expect((person["phones"] as? [[String: Any]])?.first?["value"] as? String == "+4930123456")
            #expect(await sandbox.tokensSpent() - before == 5)
            #expect(ids(try await page(client, "/api/v2/persons").items) == [41, 42])

            let nameless = try await client.send(.POST, "/api/v2/persons", headers: client.pipedriveAuth.merging(["Content-Type": "application/json"]) { $1 },
                                                 body: Data(#"{"phones": ["+4930999"]}"#.utf8))
            #expect(nameless.status == 400)
            #expect(try nameless.json["success"] as? Bool == false)
            let badPhone = try await client.send(.POST, "/api/v2/persons", headers: client.pipedriveAuth.merging(["Content-Type": "application/json"]) { $1 },
                                                 body: Data(#"{"name": "X", "phones": [{"value": 5}]}"#.utf8))
            #expect(badPhone.status == 400)
            #expect(badPhone.text.contains("phones[0].value"))
        }
    }

    // MARK: Changes

    @Test func mergeDeleteAndPatchShowInTheListings() async throws {
        let now = Now("2026-12-01T00:00:00Z")
        try await withTestSandbox(testConfiguration { $0.now = { now.value } }) { client, _ in
            try await seed(client, [
                "persons": [["id": 1, "name": "Kept", "phones": ["+49301111111"]],
                            ["id": 2, "name": "Duplicate", "phones": ["030 2222222", "+49301111111"], "emails": ["d@example.com"]],
                            ["id": 3, "name": "Gone"]],
                "deals": [["id": 10, "title": "Of the duplicate", "person_id": 2], ["id": 11, "title": "Of the kept", "person_id": 1]],
                "leads": [["id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "title": "Lead", "person_id": 2]],
            ])
            let seeded = try await page(client, "/api/v2/persons").items
            #expect(seeded.first?["update_time"] as? String == "2026-12-01T00:00:00Z")
            #expect(seeded.first?["add_time"] as? String == "2026-12-01T00:00:00Z")

            now.set("2026-12-02T08:00:00Z")
            let merged = try await change(client, .POST, "/_sandbox/crm/persons/2/merge", ["into": 1])
            #expect(merged.status == 200, "\(merged.text)")
            let persons = try await page(client, "/api/v2/persons").items
            #expect(ids(persons) == [1, 3])
            #expect((persons[0]["phones"] as? [[String: Any]])?.compactMap { $0["value"] as? String } == ["+49301111111", "030 2222222"])
            #expect((persons[0]["emails"] as? [[String: Any]])?.count == 1)
            #expect(persons[0]["update_time"] as? String == "2026-12-02T08:00:00Z")
            #expect(ids(try await page(client, "/api/v2/persons?updated_since=2026-12-02T00:00:00Z").items) == [1])
            #expect(ids(try await page(client, "/api/v2/deals?person_id=1").items) == [10, 11])
            #expect(try await page(client, "/api/v2/deals?person_id=2").items.isEmpty)
            #expect(ids(try await page(client, "/api/v2/deals?updated_since=2026-12-02T00:00:00Z").items) == [10])
            let leads = try await v1(client, "/v1/leads?person_id=1")["data"] as? [[String: Any]]
            #expect(leads?.count == 1)

            #expect(try await change(client, .DELETE, "/_sandbox/crm/persons/3").status == 200)
            #expect(ids(try await page(client, "/api/v2/persons").items) == [1])
            #expect(try await change(client, .DELETE, "/_sandbox/crm/persons/3").status == 404)
            #expect(try await change(client, .POST, "/_sandbox/crm/persons/1/merge", ["into": 3]).status == 404)
            #expect(try await change(client, .POST, "/_sandbox/crm/persons/1/merge", ["into": 1]).status == 400)

            now.set("2026-12-03T09:00:00Z")
            let lost = try await change(client, .PATCH, "/_sandbox/crm/deals/11", ["status": "lost"])
            #expect(lost.status == 200, "\(lost.text)")
            #expect(ids(try await page(client, "/api/v2/deals?status=open").items) == [10])
            let lostDeals = try await page(client, "/api/v2/deals?status=lost").items
            #expect(ids(lostDeals) == [11])
            #expect(lostDeals.first?["update_time"] as? String == "2026-12-03T09:00:00Z")
            #expect(try await change(client, .PATCH, "/_sandbox/crm/deals/11", ["status": "closed"]).status == 400)
            let renamed = try await change(client, .PATCH, "/_sandbox/crm/persons/1", ["name": "Renamed", "phones": ["+4989123456"], "org_id": 5])
            #expect(renamed.status == 200, "\(renamed.text)")
            let person = try #require(try await page(client, "/api/v2/persons").items.first)
            #expect(person["name"] as? String == "Renamed")
            #expect(person["org_id"] as? Int == 5)
            #expect((person["phones"] as? [[String: Any]])?.compactMap { $0["value"] as? String } == ["+4989123456"])
            #expect(try await change(client, .PATCH, "/_sandbox/crm/persons/77", ["name": "Nobody"]).status == 404)

            let stats = try await client.send(.GET, "/_sandbox/crm/stats").json
            #expect(stats["persons"] as? Int == 1)
            #expect(stats["deals"] as? Int == 2)
            #expect((stats["deals_by_status"] as? [String: Any])?["lost"] as? Int == 1)
            #expect(stats["leads"] as? Int == 1)
        }
    }

    /// `--seed FILE` is applied at every start: an unchanged row keeps its times (a refresh would
    /// otherwise see the whole seed as changed after each restart); a changed one gets now, and
    /// keeps its add time.
    @Test func seedingAnUnchangedRowAgainKeepsItsTimes() async throws {
        let now = Now("2026-12-01T00:00:00Z")
        try await withTestSandbox(testConfiguration { $0.now = { now.value } }) { client, _ in
            let document: [String: Any] = [
                "persons": [["id": 1, "name": "Same", "phones": ["+4930123"]], ["id": 2, "name": "Before"]],
                "leads": [["id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "title": "Lead"]],
            ]
            try await seed(client, document)
            now.set("2026-12-05T00:00:00Z")
            var changed = document
            changed["persons"] = [["id": 1, "name": "Same", "phones": ["+4930123"]], ["id": 2, "name": "After"]]
            try await seed(client, changed)
            let persons = try await page(client, "/api/v2/persons").items
            #expect(persons.map { $0["update_time"] as? String } == ["2026-12-01T00:00:00Z", "2026-12-05T00:00:00Z"])
            #expect(persons.map { $0["add_time"] as? String } == ["2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z"])
            let lead = (try await v1(client, "/v1/leads")["data"] as? [[String: Any]])?.first
            #expect(lead?["update_time"] as? String == "2026-12-01T00:00:00.000Z")
        }
    }

    @Test func aBadSeedNamesTheFieldAndChangesNothing() async throws {
        try await withTestSandbox { client, sandbox in
            let cases: [([String: Any], String)] = [
                (["persons": [["id": 1, "name": "A"], ["id": 2, "name": "B", "phones": [42]]]], "persons[1].phones[0]"),
                (["persons": [["name": "No id"]]], "persons[0].id: is required"),
                (["deals": [["id": 1, "title": "T", "status": "closed"]]], "deals[0].status"),
                (["leads": [["id": "17", "title": "T"]]], "leads[0].id"),
                (["persons": [["id": 1, "name": "A", "update_time": "yesterday"]]], "persons[0].update_time"),
                (["persons": [["id": 1, "name": "A"], ["id": 1, "name": "B"]]], "persons[1].id"),
            ]
            for (document, field) in cases {
                let result = try await seed(client, document, expect: 400)
                #expect(result.text.contains(field), "\(result.text)")
            }
            #expect(await sandbox.crmCounts().persons == 0)
        }
    }

    @Test func theCRMSurvivesARestart() async throws {
        let directory = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = testConfiguration { $0.stateDirectory = directory }
        let (persons, deals, leads, users) = try await withTestSandbox(configuration) { client, _ in
            try await seed(client, [
                "persons": (1...5).map { ["id": $0, "name": "P\($0)", "phones": [["value": "+4930555000\($0)", "label": "mobile"]], "custom_fields": ["abc": $0]] },
                "organizations": [["id": 1, "name": "Org", "custom_fields": ["phone": "+49305550000"]]],
                "deals": [["id": 1, "title": "Deal", "person_id": 2, "status": "won"]],
                "leads": [["id": UUID().uuidString, "title": "Lead", "is_archived": true]],
                "users": [["id": 1, "name": "U", "email": "u@example.com"]],
            ])
            #expect(try await change(client, .POST, "/_sandbox/crm/persons/2/merge", ["into": 1]).status == 200)
            return (try await page(client, "/api/v2/persons").items, try await page(client, "/api/v2/deals").items,
                    try await v1(client, "/v1/leads?archived_status=all")["data"] as? [[String: Any]], try await v1(client, "/v1/users")["data"] as? [[String: Any]])
        }
        try await withTestSandbox(configuration) { client, sandbox in
            let again = try await page(client, "/api/v2/persons").items
            #expect(try canonical(again) == canonical(persons))
            #expect(try canonical(try await page(client, "/api/v2/deals").items) == canonical(deals))
            #expect(try canonical(try await v1(client, "/v1/leads?archived_status=all")["data"]) == canonical(leads))
            #expect(try canonical(try await v1(client, "/v1/users")["data"]) == canonical(users))
            #expect(ids(again) == [1, 3, 4, 5])
            #expect(await sandbox.crmCounts().organizations == 1)
        }
    }

    // MARK: Generated accounts

    @Test func aGeneratedAccountIsTheSameForTheSameSeedAndLooksReal() async throws {
        try await withTestSandbox { client, _ in
            let order: [String: Any] = ["persons": 3000, "organizations": 300, "deals": 800, "closed_deals": 100, "leads": 200, "users": 12,
                                        "seed": 7, "region": "DE", "now": "2026-12-07T10:00:00Z"]
            let made = try await change(client, .POST, "/_sandbox/crm/generate", order)
            #expect(made.status == 200, "\(made.text)")
            let counts = try #require(try made.json["counts"] as? [String: Any])
            #expect(counts["persons"] as? Int == 3000)
            #expect(counts["deals"] as? Int == 900)
            #expect((counts["deals_by_status"] as? [String: Any])?["open"] as? Int == 800)
            let first = try await all(client, "/api/v2/persons?limit=500")
            #expect(try await change(client, .POST, "/_sandbox/crm/generate", order).status == 200)
            let second = try await all(client, "/api/v2/persons?limit=500")
            #expect(try canonical(first.items) == canonical(second.items))

            let phones = first.items.flatMap { ($0["phones"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? String } }
            #expect(phones.contains { $0.hasPrefix("+49 ") } && phones.contains { $0.hasPrefix("0") && !$0.hasPrefix("00") }
                && phones.contains { $0.hasPrefix("0049") } && phones.contains { $0.allSatisfy { $0 == "+" || $0.isNumber } })
            // The same number in different forms: +49 30 1234567, 030-123-4567 … (the national significant number).
            func national(_ phone: String) -> String {
                var digits = phone.replacingOccurrences(of: "(0)", with: "").filter(\.isNumber)
                if digits.hasPrefix("0049") { digits.removeFirst(4) } else if digits.hasPrefix("49"), phone.contains("+") { digits.removeFirst(2) } else if digits.hasPrefix("0") { digits.removeFirst() }
                return digits
            }
            var holders: [String: Set<Int>] = [:]
            for person in first.items {
                for phone in (person["phones"] as? [[String: Any]] ?? []).compactMap({ $0["value"] as? String }) {
                    holders[national(phone), default: []].insert(person["id"] as? Int ?? 0)
                }
            }
            let shared = holders.values.filter { $0.count > 1 }
            #expect(shared.count > 20)
            let byId = Dictionary(uniqueKeysWithValues: first.items.map { ($0["id"] as? Int ?? 0, $0) })
            // A shared number is an organization's switchboard: its holders share that organization.
            #expect(shared.allSatisfy { Set($0.map { byId[$0]?["org_id"] as? Int }).count == 1 })
            #expect(first.items.contains { $0["org_id"] is NSNull } && first.items.contains { ($0["phones"] as? [Any])?.isEmpty == true })
            let organization = try #require(try await page(client, "/api/v2/organizations?limit=1").items.first)
            #expect((organization["custom_fields"] as? [String: Any])?[CRMGeneration.organizationPhoneField] is String)
            #expect((try await v1(client, "/v1/users")["data"] as? [Any])?.count == 12)
        }
    }

    /// The benchmark's account: 50,000 persons and 20,000 open deals page as fast as a small one
    /// (a page reads only what it serves).
    @Test func fiftyThousandPersonsAndTwentyThousandDeals() async throws {
        try await withTestSandbox { client, sandbox in
            let made = try await change(client, .POST, "/_sandbox/crm/generate", ["persons": 50_000, "organizations": 5000, "deals": 20_000, "users": 20, "seed": 1])
            #expect(made.status == 200, "\(made.text)")
            let counts = await sandbox.crmCounts()
            #expect(counts.persons == 50_000 && counts.dealsByStatus["open"] == 20_000)
            let deals = try await all(client, "/api/v2/deals?status=open&limit=500")
            #expect(deals.pages == 40)
            #expect(Set(ids(deals.items)).count == 20_000)
            let (newest, next) = try await page(client, "/api/v2/persons?limit=500&sort_by=update_time&sort_direction=desc")
            #expect(newest.count == 500 && next != nil)
            let (last, end) = try await page(client, "/api/v2/persons?limit=500&sort_direction=desc")
            #expect(ids(last).first == 50_000 && end != nil)
        }
    }
}

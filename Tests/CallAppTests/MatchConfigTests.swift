import CallMatch
import CallPipeline
import CallStore
import CallTesting
import Foundation
import Testing

@testable import CallApp

/// The config file's `matching` section and `company_numbers` (issue 17): every key read into
/// the settings, the defaults, each bad value refused with its key path, and the flags over
/// the file; `callrec match`'s explanation from an index.
extension ConfigTests {
    @Test func matchingSectionEveryKeyIsReadIntoTheSettings() async throws {
        try await withTemporaryDirectory { dir in
            try write("""
                { "defaults": { "region": "US" },
                  "matching": { "region": "de", "link": "person", "unknown_numbers": "create_person", "refresh": "30m", "miss_refresh": 90,
                                "full_pass": "12h", "leads": false, "organization_phone_field": "5d8a1f0c0b2e" },
                  "company_numbers": ["040 123456", "+1 212 555 0123"],
                  "telnyx": { "region": "GB", "users": { "020 7946 0018": 7 } } }
                """, to: "\(dir)/c.json")
            let settings = try MatchConfiguration.resolve(config: "\(dir)/c.json")
            #expect(settings.region == "DE" && settings.link == .person && settings.unknownNumbers == .createPerson)
            #expect(settings.refresh == .seconds(1800) && settings.missRefresh == .seconds(90) && settings.fullPass == .seconds(12 * 3600))
            #expect(!settings.leads && settings.organizationPhoneField == "5d8a1f0c0b2e")
            #expect(settings.indexSettings == CRMIndexSettings(region: "DE", refresh: .seconds(1800), missRefresh: .seconds(90), fullPass: .seconds(12 * 3600),
                                                               leads: false, organizationPhoneField: "5d8a1f0c0b2e"))
            // Read with matching.region; the Telnyx numbers (read with telnyx.region) are the company's too.
            #expect(settings.companyNumbers == ["+4940123456", "+12125550123", "+442079460018"])
            // The flags over the file.
            let flagged = try MatchConfiguration.resolve(config: "\(dir)/c.json", link: "none", region: "fr")
            #expect(flagged.link == .none && flagged.region == "FR" && flagged.companyNumbers == settings.companyNumbers)
        }
    }

    @Test func matchingDefaultsAndTheRegionOfDefaults() async throws {
        try await withTemporaryDirectory { dir in
            #expect(try MatchConfiguration.resolve(config: nil) == MatchSettings())
            let defaults = MatchSettings()
            #expect(defaults.link == .deal && defaults.unknownNumbers == .leave && defaults.leads && defaults.companyNumbers.isEmpty)
            #expect(defaults.refresh == .seconds(900) && defaults.missRefresh == .seconds(60) && defaults.fullPass == .seconds(86400))
            try write(#"{ "defaults": { "region": "de" }, "company_numbers": "040 123456" }"#, to: "\(dir)/c.json")
            let settings = try MatchConfiguration.resolve(config: "\(dir)/c.json")
            #expect(settings.region == "DE" && settings.companyNumbers == ["+4940123456"] && settings.link == .deal)
            // A KEY=VALUE file has no matching section.
            try write("PIPEDRIVE_API_TOKEN=abc\n", to: "\(dir)/env")
            #expect(try MatchConfiguration.resolve(config: "\(dir)/env") == MatchSettings())
        }
    }

    @Test func aBadMatchingValueIsRefusedWithItsPath() async throws {
        try await withTemporaryDirectory { dir in
            let cases = [
                (#"{ "matching": { "link": "org" } }"#, "matching.link", "none, person, deal"),
                (#"{ "matching": { "unknown_numbers": "create" } }"#, "matching.unknown_numbers", "leave, create_person"),
                (#"{ "matching": { "region": "XX" } }"#, "matching.region", "ISO 3166"),
                (#"{ "matching": { "refresh": "0" } }"#, "matching.refresh", "positive"),
                (#"{ "matching": { "miss_refresh": "soon" } }"#, "matching.miss_refresh", "age"),
                (#"{ "matching": { "full_pass": "-1h" } }"#, "matching.full_pass", "age"),
                (#"{ "matching": { "leads": "yes" } }"#, "matching.leads", "true or false"),
                (#"{ "matching": { "organization_phone_field": "a b" } }"#, "matching.organization_phone_field", "custom field"),
                (#"{ "matching": { "region": "DE" }, "company_numbers": ["040 123456", "201"] }"#, "company_numbers[1]", "libphonenumber"),
                (#"{ "company_numbers": ["040 123456"] }"#, "company_numbers[0]", "matching.region"),
                (#"{ "company_numbers": [5] }"#, "company_numbers", "list of strings"),
            ]
            for (index, (text, path, hint)) in cases.enumerated() {
                try write(text, to: "\(dir)/\(index).json")
                let message = usageError { _ = try ConfigFile.load("\(dir)/\(index).json") }
                #expect(message.contains(path) && message.contains(hint) && message.contains("\(dir)/\(index).json"), "\(message)")
            }
            #expect(usageError { _ = try MatchConfiguration.resolve(config: nil, link: "all") }.contains("--link all"))
            #expect(usageError { _ = try MatchConfiguration.resolve(config: nil, region: "Germany") }.contains("--region Germany"))
        }
    }

    // MARK: callrec match

    @Test func aNumberIsExplainedFromTheIndex() async throws {
        let anna = CRMPerson(id: 7, name: "Anna Schmidt", orgID: 3, phones: ["+49301234567"])
        let index = FixedIndex(candidates: ["+49301234567": PhoneCandidates(
            persons: [anna], organizations: [CRMOrganization(id: 3, name: "Acme GmbH")],
            openDeals: [CRMDeal(id: 12, title: "Renewal", personID: 7, orgID: 3, updatedAt: Date(timeIntervalSince1970: 1_796_000_000))])])
        let settings = MatchSettings(companyNumbers: ["+4940123456"], region: "DE")
        let match = try await NumberMatch.explain("030 123-45-67", settings: settings, index: index)
        #expect(match.linked && match.decision.dealID == 12 && match.decision.number == "+49301234567")
        #expect(match.lines.map(\.text).contains("  person 7 Anna Schmidt (organization 3)"))
        #expect(match.lines.last?.text.hasPrefix("deal: +49301234567 → deal 12 'Renewal'") == true, "\(match.lines)")
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(match)) as? [String: Any])
        #expect(object["number"] as? String == "+49301234567" && object["linked"] as? Bool == true && object["link"] as? String == "deal")
        let candidates = try #require(object["candidates"] as? [String: Any])
        #expect((candidates["open_deals"] as? [[String: Any]])?.first?["id"] as? Int == 12)
        // Unknown, a company number (never looked up), a bad number.
        #expect(try await NumberMatch.explain("+49 30 7654321", settings: settings, index: index).decision.reason == .unknownNumber)
        let company = try await NumberMatch.explain("040 123456", settings: settings, index: index)
        #expect(company.decision.reason == .companyNumber && !company.linked && index.lookups() == ["+49301234567", "+49307654321"])
        #expect(usageError { _ = try NumberMatch.number("201", settings: settings) }.contains("201: not a phone number"))
        #expect(usageError { _ = try NumberMatch.number("030 1234567", settings: MatchSettings()) }.contains("--region"))
    }
}

/// An index that answers from a map, and records the numbers looked up.
final class FixedIndex: CRMIndexStore, @unchecked Sendable {
    let candidates: [String: PhoneCandidates]
    private let lock = NSLock()
    private var looked: [String] = []

    init(candidates: [String: PhoneCandidates]) { self.candidates = candidates }

    func lookups() -> [String] { lock.withLock { looked } }

    func phoneCandidates(_ e164: String) async throws -> PhoneCandidates {
        lock.withLock { looked.append(e164) }
        return candidates[e164] ?? PhoneCandidates()
    }

    func applyCRMPage(_ page: CRMPage) async throws {}
    func finishCRMFullPass(_ state: CRMSyncState) async throws -> Int { 0 }
    func crmSyncStates() async throws -> [CRMEntityKind: CRMSyncState] { [:] }
    func crmUser(email: String) async throws -> CRMUser? { nil }
    func crmUser(id: Int) async throws -> CRMUser? { nil }
    func crmCounts() async throws -> [CRMEntityKind: Int] { [:] }
}

import CallAPI
import CallMatch
import CallPhone
import CallStore
import Foundation
import Testing

/// The matching rules (issue 17), pure: the other party's number, the precedence open deal →
/// open lead → person (+ organization), the link bound, the shared switchboard, the company's own
/// numbers, unknown numbers, the owner, and a sidecar's ids winning.
@Suite struct PhoneMatcherTests {
    static let anna = "+49301234567"
    static let switchboard = "+49309876543"
    static let company = "+4940123456"

    /// 2026-12-`day` 10:00 UTC.
    static func day(_ day: Int) -> Date {
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour) = (2026, 12, day, 10)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: c)!
    }

    let settings = MatchSettings(companyNumbers: [PhoneMatcherTests.company], region: "DE")
    let acme = CRMOrganization(id: 3, name: "Acme GmbH")
    let annaPerson = CRMPerson(id: 7, name: "Anna Schmidt", orgID: 3, phones: [PhoneMatcherTests.anna])

    /// Anna with two open deals (12 updated later than 11), a lead, and a won deal updated last.
    var annaCandidates: PhoneCandidates {
        PhoneCandidates(persons: [annaPerson], organizations: [acme],
                        openDeals: [CRMDeal(id: 11, title: "Pilot", personID: 7, orgID: 3, updatedAt: Self.day(1)),
                                    CRMDeal(id: 12, title: "Renewal", personID: 7, orgID: 3, updatedAt: Self.day(5)),
                                    CRMDeal(id: 13, title: "Won", personID: 7, status: "won", updatedAt: Self.day(6))],
                        openLeads: [CRMLead(id: "5f0c3c52-0000-4000-8000-000000000001", title: "Website enquiry", personID: 7, updatedAt: Self.day(6))])
    }

    // MARK: The number

    @Test func everyFormOfANumberGivesTheSameCandidateKey() {
        // National, international, 00 prefix, with and without separators, wrapped as a PBX writes it.
        let forms = ["030 1234567", "0301234567", "(030) 123 45 67", "030/123-45-67", "+49 30 1234567", "+49301234567", "+49-30-123 45 67",
                     "0049 30 1234567", "004930 1234567", "tel:+49-30-1234567", "\"Anna\" <0301234567>"]
        for raw in forms {
            #expect(settings.normalize(raw).e164 == Self.anna, "\(raw)")
            #expect(PhoneMatcher.otherParty(from: raw, to: "201", direction: .inbound, settings: settings) == .number(Self.anna), "\(raw)")
        }
        // The same number written from the US (011) and from a region-less config (international only).
        #expect(MatchSettings(region: "US").normalize("011 49 30 1234567").e164 == Self.anna)
        #expect(MatchSettings().normalize("+49 (30) 123-4567").e164 == Self.anna)
        #expect(MatchSettings().normalize("030 1234567").e164 == nil)
        // A US number in its forms.
        let us = MatchSettings(region: "US")
        for raw in ["(212) 555-0123", "212.555.0123", "2125550123", "1-212-555-0123", "+1 212 555 0123"] {
            #expect(us.normalize(raw).e164 == "+12125550123", "\(raw)")
        }
    }

    @Test func theOtherPartyIsTheCallerInboundAndTheCalledNumberOutbound() {
        #expect(PhoneMatcher.otherParty(from: "030 1234567", to: "040 123456", direction: .inbound, settings: settings) == .number(Self.anna))
        #expect(PhoneMatcher.otherParty(from: "201", to: "030 1234567", direction: .outbound, settings: settings) == .number(Self.anna))
        // Inbound to a company number from an outside one: the outside one; outbound from the company number likewise.
        #expect(PhoneMatcher.otherParty(from: "+49 40 123456", to: "030 1234567", direction: .outbound, settings: settings) == .number(Self.anna))
    }

    @Test func neverAnExtensionNorACompanyNumber() throws {
        // The caller is an extension (an inbound call as a PBX might misreport it).
        let ext = try #require(unmatched(PhoneMatcher.otherParty(from: "201", to: "030 1234567", direction: .inbound, settings: settings)))
        #expect(ext.reason == .notANumber && ext.number == nil && !ext.linked && ext.explanation.contains("'201'"))
        // The called number is the company's own (written nationally).
        let own = try #require(unmatched(PhoneMatcher.otherParty(from: "201", to: "040 123456", direction: .outbound, settings: settings)))
        #expect(own.reason == .companyNumber && own.number == Self.company && !own.linked)
        // No number at all.
        #expect(unmatched(PhoneMatcher.otherParty(from: nil, to: "030 1234567", direction: .inbound, settings: settings))?.reason == .notANumber)
        // An internal call.
        #expect(unmatched(PhoneMatcher.otherParty(from: "201", to: "202", direction: .internal, settings: settings))?.reason == .notANumber)
        // decide refuses a company number even if the index had it.
        let decided = PhoneMatcher.decide(number: Self.company, candidates: PhoneCandidates(persons: [CRMPerson(id: 1, name: "Reception", phones: [Self.company])]),
                                          settings: settings)
        #expect(decided.reason == .companyNumber && decided.personID == nil)
    }

    @Test func anUnknownDirectionTakesTheOneOutsideNumber() throws {
        #expect(PhoneMatcher.otherParty(from: "201", to: "030 1234567", direction: .unknown, settings: settings) == .number(Self.anna))
        #expect(PhoneMatcher.otherParty(from: "030 1234567", to: "201", direction: .unknown, settings: settings) == .number(Self.anna))
        #expect(PhoneMatcher.otherParty(from: "040 123456", to: "030 1234567", direction: .unknown, settings: settings) == .number(Self.anna))
        #expect(PhoneMatcher.otherParty(from: "+49301234567", to: "030 1234567", direction: .unknown, settings: settings) == .number(Self.anna))
        let both = try #require(unmatched(PhoneMatcher.otherParty(from: "030 1234567", to: "030 9876543", direction: .unknown, settings: settings)))
        #expect(both.reason == .ambiguousDirection && both.number == nil && both.explanation.contains(Self.anna) && both.explanation.contains(Self.switchboard))
        #expect(unmatched(PhoneMatcher.otherParty(from: "201", to: "202", direction: .unknown, settings: settings))?.reason == .notANumber)
        #expect(unmatched(PhoneMatcher.otherParty(from: "201", to: "040 123456", direction: .unknown, settings: settings))?.reason == .notANumber)
        #expect(unmatched(PhoneMatcher.otherParty(from: nil, to: "040 123456", direction: .unknown, settings: settings))?.reason == .companyNumber)
    }

    func unmatched(_ party: PhoneMatcher.OtherParty) -> MatchDecision? {
        if case .unmatched(let decision) = party { return decision }
        return nil
    }

    // MARK: Precedence

    @Test func theMostRecentlyUpdatedOpenDealComesFirst() {
        let decision = PhoneMatcher.decide(number: Self.anna, candidates: annaCandidates, settings: settings)
        #expect(decision.reason == .deal && decision.dealID == 12 && decision.leadID == nil && decision.personID == 7 && decision.orgID == 3)
        #expect(decision.explanation == "+49301234567 → deal 12 'Renewal' of person 7 Anna Schmidt of organization 3 Acme GmbH (open, updated 2026-12-05); 1 other open deal older")
        // Whatever order the store gives them in.
        var reversed = annaCandidates
        reversed.openDeals.reverse()
        #expect(PhoneMatcher.decide(number: Self.anna, candidates: reversed, settings: settings).dealID == 12)
    }

    @Test func anOpenLeadWhenNoOpenDealThenThePerson() {
        var candidates = annaCandidates
        candidates.openDeals = candidates.openDeals.filter { !$0.isOpen }
        let lead = PhoneMatcher.decide(number: Self.anna, candidates: candidates, settings: settings)
        #expect(lead.reason == .lead && lead.leadID == "5f0c3c52-0000-4000-8000-000000000001" && lead.dealID == nil && lead.personID == 7 && lead.orgID == 3)
        #expect(lead.explanation.contains("lead 5f0c3c52-0000-4000-8000-000000000001 'Website enquiry' of person 7 Anna Schmidt"))
        // Leads not indexed (matching.leads false): the person.
        var noLeads = settings
        noLeads.leads = false
        #expect(PhoneMatcher.decide(number: Self.anna, candidates: candidates, settings: noLeads).reason == .person)
        // An archived lead does not count.
        candidates.openLeads[0].archived = true
        let person = PhoneMatcher.decide(number: Self.anna, candidates: candidates, settings: settings)
        #expect(person.reason == .person && person.personID == 7 && person.orgID == 3 && person.dealID == nil && person.leadID == nil)
        #expect(person.explanation == "+49301234567 → person 7 Anna Schmidt of organization 3 Acme GmbH (no open deal or lead)")
        // Another person's (or only the organization's) deal is not Anna's.
        candidates.openDeals = [CRMDeal(id: 20, title: "Acme-wide", personID: nil, orgID: 3, updatedAt: Self.day(7))]
        #expect(PhoneMatcher.decide(number: Self.anna, candidates: candidates, settings: settings).reason == .person)
    }

    @Test func theLinkBoundsTheMatch() {
        var person = settings
        person.link = .person
        let bounded = PhoneMatcher.decide(number: Self.anna, candidates: annaCandidates, settings: person)
        #expect(bounded.reason == .person && bounded.personID == 7 && bounded.orgID == 3 && bounded.dealID == nil && bounded.leadID == nil)
        #expect(bounded.explanation.contains("link person"))
        var none = settings
        none.link = .none
        let nothing = PhoneMatcher.decide(number: Self.anna, candidates: annaCandidates, settings: none)
        #expect(nothing.reason == .linkNone && !nothing.linked && nothing.number == Self.anna)
        #expect(nothing.explanation.contains("deal 12"))
        // A bound changes nothing where the match is below it.
        #expect(PhoneMatcher.decide(number: Self.switchboard, candidates: PhoneCandidates(organizations: [acme]), settings: person).orgID == 3)
        #expect(PhoneMatcher.decide(number: Self.switchboard, candidates: PhoneCandidates(), settings: none).reason == .unknownNumber)
        #expect(MatchSettings.Link.none < .person && MatchSettings.Link.person < .deal)
    }

    // MARK: Shared numbers, organizations, unknown numbers

    @Test func aSwitchboardSharedByPersonsOfOneOrganizationLinksTheOrganization() {
        let staff = (1...3).map { CRMPerson(id: 40 + $0, name: "Staff \($0)", orgID: 3, phones: [Self.switchboard]) }
        let candidates = PhoneCandidates(persons: staff, organizations: [acme],
                                         openDeals: [CRMDeal(id: 50, title: "Staff deal", personID: 41, orgID: 3, updatedAt: Self.day(3))])
        let decision = PhoneMatcher.decide(number: Self.switchboard, candidates: candidates, settings: settings)
        #expect(decision.reason == .sharedNumberOrg && decision.orgID == 3 && decision.personID == nil && decision.dealID == nil)
        #expect(decision.explanation.contains("organization 3 Acme GmbH") && decision.explanation.contains("3 persons (41 Staff 1, 42 Staff 2, 43 Staff 3)"))
    }

    @Test func aNumberSharedAcrossOrganizationsLinksNothingAndSaysSo() {
        for orgs in [[3, 4], [3, nil], [nil, nil]] as [[Int?]] {
            let persons = orgs.enumerated().map { CRMPerson(id: 60 + $0.offset, name: "P\($0.offset)", orgID: $0.element, phones: [Self.switchboard]) }
            let decision = PhoneMatcher.decide(number: Self.switchboard, candidates: PhoneCandidates(persons: persons, organizations: [acme]), settings: settings)
            #expect(decision.reason == .sharedNumberAmbiguous && !decision.linked, "\(orgs)")
            #expect(decision.explanation.contains("60 P0") && decision.explanation.contains("61 P1") && decision.explanation.contains("never an arbitrary person"))
        }
    }

    @Test func aNumberOnlyOnAnOrganizationLinksIt() {
        let org = CRMOrganization(id: 9, name: "Front desk Ltd", phones: [Self.switchboard])
        let decision = PhoneMatcher.decide(number: Self.switchboard, candidates: PhoneCandidates(organizations: [org]), settings: settings)
        #expect(decision.reason == .organizationNumber && decision.orgID == 9 && decision.personID == nil)
        #expect(decision.explanation.contains("organization 9 Front desk Ltd"))
        let two = PhoneMatcher.decide(number: Self.switchboard, candidates: PhoneCandidates(organizations: [org, acme]), settings: settings)
        #expect(two.reason == .sharedNumberAmbiguous && !two.linked)
    }

    @Test func anUnknownNumberIsLeftUnlinkedOrMakesAPerson() {
        let left = PhoneMatcher.decide(number: Self.anna, candidates: PhoneCandidates(), settings: settings)
        #expect(left.reason == .unknownNumber && !left.linked && !left.createPerson && left.number == Self.anna)
        var create = settings
        create.unknownNumbers = .createPerson
        let made = PhoneMatcher.decide(number: Self.anna, candidates: PhoneCandidates(), settings: create)
        #expect(made.reason == .createPerson && made.createPerson && made.linked && made.personID == nil)
    }

    @Test func matchLooksUpOnlyAnOutsideNumber() async throws {
        var looked: [String] = []
        let found = await PhoneMatcher.match(from: "(030) 123 45 67", to: "201", direction: .inbound, settings: settings) { number in
            looked.append(number)
            return annaCandidates
        }
        #expect(found.dealID == 12 && looked == [Self.anna])
        let none = await PhoneMatcher.match(from: "201", to: "040 123456", direction: .outbound, settings: settings) { number in
            looked.append(number)
            return annaCandidates
        }
        #expect(none.reason == .companyNumber && looked == [Self.anna])
    }

    // MARK: The call log

    @Test func aSidecarsIDsWinOverMatching() {
        let decision = PhoneMatcher.decide(number: Self.anna, candidates: annaCandidates, settings: settings)
        var draft = CallLogDraft(outcome: "connected", toPhoneNumber: Self.anna, startTime: "2026-12-07 10:00:00")
        let filled = draft.applying(decision)
        #expect(filled.draft.personId == 7 && filled.draft.orgId == 3 && filled.draft.dealId == 12 && filled.draft.leadId == nil)
        #expect(filled.decision == decision)
        for set in [{ (d: inout CallLogDraft) in d.personId = 99 }, { $0.orgId = 98 }, { $0.dealId = 97 }, { $0.leadId = "lead-1" }] {
            var named = draft
            set(&named)
            let kept = named.applying(decision)
            #expect(kept.draft == named && kept.decision.reason == .sidecarIDs, "\(named)")
            #expect(kept.decision.personID == named.personId && kept.decision.dealID == named.dealId && kept.decision.leadID == named.leadId)
            #expect(kept.decision.explanation.contains("sidecar"))
        }
        // A lead decision fills the lead, never a deal too.
        draft.dealId = nil
        let lead = MatchDecision(number: Self.anna, personID: 7, leadID: "L", reason: .lead, explanation: "")
        #expect(draft.applying(lead).draft.leadId == "L" && draft.applying(lead).draft.dealId == nil)
        #expect(MatchDecision(number: nil, dealID: 1, leadID: "L", reason: .deal, explanation: "").leadID == nil)
    }

    @Test func theOwnerFromTheExtensionMapElseByEmail() async {
        let users = ["anna@example.com": CRMUser(id: 5, name: "Anna", email: "Anna@Example.com"),
                     "gone@example.com": CRMUser(id: 6, name: "Gone", email: "gone@example.com", active: false)]
        let lookup: (String) async -> CRMUser? = { users[$0] }
        let mapped = await PhoneMatcher.owner(mapped: 4, email: "anna@example.com", lookup: lookup)
        #expect(mapped.userID == 4 && mapped.reason == .extensionMap)
        let byEmail = await PhoneMatcher.owner(mapped: nil, email: " ANNA@example.com ", lookup: lookup)
        #expect(byEmail.userID == 5 && byEmail.reason == .email)
        #expect(await PhoneMatcher.owner(mapped: nil, email: "gone@example.com", lookup: lookup).userID == nil)
        #expect(await PhoneMatcher.owner(mapped: nil, email: "who@example.com", lookup: lookup).reason == .emailUnknown)
        #expect(await PhoneMatcher.owner(mapped: nil, email: nil, lookup: lookup).reason == .none)
        var draft = CallLogDraft(outcome: "connected", toPhoneNumber: Self.anna, startTime: "2026-12-07 10:00:00")
        #expect(draft.applying(byEmail).userId == 5)
        draft.userId = 4
        #expect(draft.applying(byEmail).userId == 4)
    }

    @Test func theDecisionEncodesEveryKey() throws {
        let decision = PhoneMatcher.decide(number: Self.anna, candidates: annaCandidates, settings: settings)
        let object = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(decision)) as? [String: Any])
        #expect(Set(object.keys) == ["number", "person_id", "org_id", "deal_id", "lead_id", "create_person", "reason", "explanation"])
        #expect(object["deal_id"] as? Int == 12 && object["reason"] as? String == "deal" && object["lead_id"] is NSNull)
        #expect(try JSONDecoder().decode(MatchDecision.self, from: JSONEncoder().encode(decision)) == decision)
    }

    @Test func companyNumbersAreReadWithTheRegion() {
        let read = MatchSettings.companyNumbers(["040 123456", "+49 40 123456", "+1 212 555 0123"], region: "DE")
        #expect(read.numbers == [Self.company, "+12125550123"] && read.invalid == nil)
        #expect(MatchSettings.companyNumbers(["040 123456", "201"], region: "DE").invalid == "201")
        #expect(MatchSettings.companyNumbers(["040 123456"], region: nil).invalid == "040 123456")
    }
}

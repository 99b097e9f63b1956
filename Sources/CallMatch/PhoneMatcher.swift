import CallPhone
public import CallStore
import Foundation

/// The matching rules (issue 17; research/sources-and-matching.md §4), pure: which number of a
/// call is the other party's, and what a number's candidates in the index link.
///
/// - The other party: inbound → the caller, outbound → the called number; unknown → the one side
///   that is a valid outside number. Never an internal extension, never a company number.
/// - Precedence: the person's open deal (the most recently updated) → their open lead → the
///   person and their organization; `link` bounds it.
/// - A number several persons have: their organization when they all share one, else nothing
///   (never an arbitrary person). A number only an organization has: that organization.
/// - An unknown number: nothing, or a person to create (`unknown_numbers: create_person`).
public enum PhoneMatcher {
    /// Which way the call went, seen from the company.
    public enum Direction: String, Sendable, Hashable, CaseIterable, Codable {
        case inbound, outbound, `internal`, unknown
    }

    /// The other party's number, or the decision that there is none to match.
    public enum OtherParty: Sendable, Hashable {
        /// In E.164.
        case number(String)
        case unmatched(MatchDecision)
    }

    /// The number of the call to match: inbound → `from`, outbound → `to`, unknown → whichever
    /// of the two is a valid number and not a company number (both → nothing, ambiguous).
    public static func otherParty(from: String?, to: String?, direction: Direction, settings: MatchSettings) -> OtherParty {
        switch direction {
        case .inbound: return party(from, side: "caller", settings: settings)
        case .outbound: return party(to, side: "called number", settings: settings)
        case .internal:
            return .unmatched(MatchDecision(number: nil, reason: .notANumber, explanation: "an internal call (extension to extension): nothing to match"))
        case .unknown:
            let outside = [from, to].compactMap { $0 }.compactMap { raw -> String? in
                guard let e164 = settings.normalize(raw).e164, !settings.isCompanyNumber(e164) else { return nil }
                return e164
            }
            let distinct = Array(Set(outside)).sorted()
            if distinct.count == 1 { return .number(distinct[0]) }
            if distinct.count > 1 {
                return .unmatched(MatchDecision(number: nil, reason: .ambiguousDirection,
                                                explanation: "direction unknown and both \(distinct.joined(separator: " and ")) are outside numbers: nothing matched (list one in company_numbers)"))
            }
            let sides = [from, to].compactMap { $0 }.filter { !$0.isEmpty }
            if let company = sides.compactMap({ settings.normalize($0).e164 }).first(where: settings.isCompanyNumber), sides.count == 1 {
                return .unmatched(companyNumber(company))
            }
            let written = sides.isEmpty ? "no number" : sides.map { "'\($0)'" }.joined(separator: " and ")
            return .unmatched(MatchDecision(number: nil, reason: .notANumber,
                                            explanation: "direction unknown and \(written) \(sides.count == 1 ? "is" : "are") no outside number (an extension, or a company number): nothing matched"))
        }
    }

    /// `raw` as the other party's number (`side` names it in the explanation).
    static func party(_ raw: String?, side: String, settings: MatchSettings) -> OtherParty {
        guard let raw, !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
            return .unmatched(MatchDecision(number: nil, reason: .notANumber, explanation: "no \(side) number: nothing to match"))
        }
        guard let e164 = settings.normalize(raw).e164 else { return .unmatched(notANumber(raw, region: settings.region)) }
        if settings.isCompanyNumber(e164) { return .unmatched(companyNumber(e164)) }
        return .number(e164)
    }

    /// `raw` that libphonenumber does not call valid.
    public static func notANumber(_ raw: String, region: String?) -> MatchDecision {
        MatchDecision(number: nil, reason: .notANumber,
                      explanation: "'\(raw)' is not a phone number libphonenumber calls valid\(region.map { " in region \($0)" } ?? " (no region set for numbers without a country code)") (an internal extension?): never matched")
    }

    static func companyNumber(_ e164: String) -> MatchDecision {
        MatchDecision(number: e164, reason: .companyNumber, explanation: "\(e164) is one of the company's own numbers (company_numbers): never matched")
    }

    /// What `number` (E.164) links, from its `candidates` in the index.
    public static func decide(number: String, candidates: PhoneCandidates, settings: MatchSettings) -> MatchDecision {
        if settings.isCompanyNumber(number) { return companyNumber(number) }
        let decision = unbounded(number: number, candidates: candidates, settings: settings)
        switch settings.link {
        case .deal: return decision
        case .person:
            guard decision.dealID != nil || decision.leadID != nil else { return decision }
            let person = candidates.persons.first { $0.id == decision.personID }!
            return personDecision(number, person, candidates, note: "link person: deals and leads not linked")
        case .none:
            guard decision.linked else { return decision }
            return MatchDecision(number: number, reason: .linkNone, explanation: "\(number): link none, nothing linked (would be: \(decision.explanation.dropping(prefix: "\(number) → ")))")
        }
    }

    /// The decision before `link` bounds it.
    static func unbounded(number: String, candidates: PhoneCandidates, settings: MatchSettings) -> MatchDecision {
        let persons = candidates.persons.sorted { $0.id < $1.id }
        if persons.count == 1 {
            let person = persons[0]
            let deals = recentFirst(candidates.openDeals.filter { $0.personID == person.id && $0.isOpen }, \.updatedAt, \.id)
            if let deal = deals.first {
                let others = deals.count - 1
                let more = others == 0 ? "" : "; \(others) other open deal\(others == 1 ? "" : "s") older"
                return MatchDecision(number: number, personID: person.id, orgID: person.orgID, dealID: deal.id, reason: .deal,
                                     explanation: "\(number) → deal \(deal.id) '\(deal.title)' of \(describe(person, candidates)) (open\(updated(deal.updatedAt)))\(more)")
            }
            if settings.leads {
                let leads = recentFirst(candidates.openLeads.filter { $0.personID == person.id && !$0.archived }, \.updatedAt, \.id)
                if let lead = leads.first {
                    let others = leads.count - 1
                    let more = others == 0 ? "" : "; \(others) other open lead\(others == 1 ? "" : "s") older"
                    return MatchDecision(number: number, personID: person.id, orgID: person.orgID, leadID: lead.id, reason: .lead,
                                         explanation: "\(number) → lead \(lead.id) '\(lead.title)' of \(describe(person, candidates)) (no open deal\(updated(lead.updatedAt)))\(more)")
                }
            }
            return personDecision(number, person, candidates, note: settings.leads ? "no open deal or lead" : "no open deal")
        }
        if persons.count > 1 {
            let names = persons.map { "\($0.id) \($0.name)" }.joined(separator: ", ")
            let orgs = Set(persons.map(\.orgID))
            if orgs.count == 1, let orgID = orgs.first! {
                return MatchDecision(number: number, orgID: orgID, reason: .sharedNumberOrg,
                                     explanation: "\(number) → \(describeOrg(orgID, candidates)): the number of \(persons.count) persons (\(names)), all of that organization")
            }
            return MatchDecision(number: number, reason: .sharedNumberAmbiguous,
                                 explanation: "\(number): the number of \(persons.count) persons (\(names)) not all of one organization: nothing linked (never an arbitrary person)")
        }
        // No person has it: the organizations found are the ones with the number.
        let organizations = candidates.organizations.sorted { $0.id < $1.id }
        if organizations.count == 1 {
            return MatchDecision(number: number, orgID: organizations[0].id, reason: .organizationNumber,
                                 explanation: "\(number) → \(describeOrg(organizations[0].id, candidates)) (the number is the organization's; no person has it)")
        }
        if organizations.count > 1 {
            let names = organizations.map { "\($0.id) \($0.name)" }.joined(separator: ", ")
            return MatchDecision(number: number, reason: .sharedNumberAmbiguous,
                                 explanation: "\(number): the number of \(organizations.count) organizations (\(names)): nothing linked (never an arbitrary one)")
        }
        if settings.unknownNumbers == .createPerson {
            return MatchDecision(number: number, createPerson: true, reason: .createPerson,
                                 explanation: "\(number): no person or organization in the index has it: a person is created with it (unknown_numbers: create_person)")
        }
        return MatchDecision(number: number, reason: .unknownNumber, explanation: "\(number): no person or organization in the index has it: left unlinked")
    }

    static func personDecision(_ number: String, _ person: CRMPerson, _ candidates: PhoneCandidates, note: String) -> MatchDecision {
        MatchDecision(number: number, personID: person.id, orgID: person.orgID, reason: .person,
                      explanation: "\(number) → \(describe(person, candidates)) (\(note))")
    }

    /// `person 7 Anna Schmidt` (`of organization 3 Acme GmbH`).
    static func describe(_ person: CRMPerson, _ candidates: PhoneCandidates) -> String {
        "person \(person.id) \(person.name)" + (person.orgID.map { " of \(describeOrg($0, candidates))" } ?? "")
    }

    static func describeOrg(_ id: Int, _ candidates: PhoneCandidates) -> String {
        "organization \(id)" + (candidates.organizations.first { $0.id == id }.map { " \($0.name)" } ?? "")
    }

    /// `, updated 2026-12-01` (UTC), or nothing.
    static func updated(_ date: Date?) -> String {
        guard let date else { return "" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: ", updated %04d-%02d-%02d", c.year!, c.month!, c.day!)
    }

    /// The most recently updated first (no time last), then by id, newest first: one order
    /// whatever order the store gave.
    static func recentFirst<T, ID: Comparable>(_ items: [T], _ time: KeyPath<T, Date?>, _ id: KeyPath<T, ID>) -> [T] {
        items.sorted { a, b in
            switch (a[keyPath: time], b[keyPath: time]) {
            case let (x?, y?) where x != y: x > y
            case (.some, nil): true
            case (nil, .some): false
            default: a[keyPath: id] > b[keyPath: id]
            }
        }
    }
}

extension String {
    func dropping(prefix: String) -> String {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : self
    }
}

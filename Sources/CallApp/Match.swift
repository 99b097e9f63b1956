public import CallAPI
public import CallMatch
import CallPhone
public import CallPipeline
public import CallStore
import Foundation
public import Logging

/// `callrec match NUMBER`: a number's match explained from the local index of the CRM, without
/// a request: the number in E.164, what the index holds for it, and what a call log would link
/// and why.
public struct NumberMatch: Encodable, Sendable {
    /// The number as given.
    public var input: String
    public var region: String?
    public var link: MatchSettings.Link
    /// What the index holds for the number (empty for a company number: it is never looked up).
    public var candidates: Candidates
    public var decision: MatchDecision

    /// Whether a call log with this number would link anything.
    public var linked: Bool { decision.linked }

    enum CodingKeys: String, CodingKey { case input, region, link, number, candidates, decision, linked }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(input, forKey: .input)
        try c.encode(region, forKey: .region)
        try c.encode(link, forKey: .link)
        try c.encode(decision.number, forKey: .number)
        try c.encode(candidates, forKey: .candidates)
        try c.encode(decision, forKey: .decision)
        try c.encode(linked, forKey: .linked)
    }

    /// `raw` read with `settings.region`, looked up in `index` (unless it is a company number)
    /// and decided. A number libphonenumber does not call valid is a usage error.
    public static func explain(_ raw: String, settings: MatchSettings, index: any CRMIndexStore) async throws -> NumberMatch {
        let e164 = try number(raw, settings: settings)
        let candidates = settings.isCompanyNumber(e164) ? PhoneCandidates() : try await index.phoneCandidates(e164)
        return NumberMatch(input: raw, region: settings.region, link: settings.link, candidates: Candidates(candidates),
                           decision: PhoneMatcher.decide(number: e164, candidates: candidates, settings: settings))
    }

    /// `raw` in E.164, or a usage error saying why not.
    /// `--refresh`'s mode: nil for `due`.
    public static func refreshMode(_ text: String) throws -> CRMIndexSync.Mode? {
        switch text {
        case "due": return nil
        case "incremental": return .incremental
        case "full": return .full
        default: throw AppError(.usage, "--refresh \(text): not one of due, incremental, full")
        }
    }

    /// Refreshes the index (`mode` nil: what is due) before a number is explained.
    public static func refresh(_ mode: CRMIndexSync.Mode?, settings: MatchSettings, client: PipedriveClient, store: any CallStore,
                               logger: Logger) async throws {
        let sync = CRMIndexSync(store: store, client: client, settings: settings.indexSettings, logger: logger)
        if let mode { _ = try await sync.refresh(mode) } else { try await sync.refreshIfDue() }
    }

    public static func number(_ raw: String, settings: MatchSettings) throws -> String {
        guard let e164 = settings.normalize(raw).e164 else {
            let hint = settings.region == nil ? "; a number without a country code needs --region (or matching.region in --config)" : ""
            throw AppError(.usage, "\(raw): not a phone number libphonenumber calls valid\(settings.region.map { " in region \($0)" } ?? "")\(hint)")
        }
        return e164
    }

    /// Without `--json`: the number, each candidate, then the decision.
    public var lines: [OutputLine] {
        var lines: [OutputLine] = [.out("\(input) → \(decision.number ?? "?")\(region.map { " (region \($0))" } ?? "")")]
        if candidates.isEmpty {
            lines.append(.out("  index: \(decision.reason == .companyNumber ? "not looked up (a company number)" : "nothing for this number")"))
        }
        lines += candidates.persons.map { .out("  person \($0.id) \($0.name)\($0.orgID.map { " (organization \($0))" } ?? "")") }
        lines += candidates.organizations.map { .out("  organization \($0.id) \($0.name)") }
        lines += candidates.openDeals.map { .out("  open deal \($0.id) '\($0.title)'\($0.personID.map { " of person \($0)" } ?? "")\($0.updatedAt.map { " updated \($0)" } ?? "")") }
        lines += candidates.openLeads.map { .out("  open lead \($0.id) '\($0.title)'\($0.personID.map { " of person \($0)" } ?? "")\($0.updatedAt.map { " updated \($0)" } ?? "")") }
        lines.append(.out("\(decision.reason.rawValue): \(decision.explanation)"))
        return lines
    }

    /// The index's rows for the number, as the JSON shows them.
    public struct Candidates: Encodable, Sendable {
        public var persons: [Person]
        public var organizations: [Organization]
        public var openDeals: [Deal]
        public var openLeads: [Lead]

        var isEmpty: Bool { persons.isEmpty && organizations.isEmpty && openDeals.isEmpty && openLeads.isEmpty }

        enum CodingKeys: String, CodingKey { case persons, organizations, openDeals = "open_deals", openLeads = "open_leads" }

        init(_ c: PhoneCandidates) {
            persons = c.persons.map { Person(id: $0.id, name: $0.name, orgID: $0.orgID, phones: $0.phones, updatedAt: stamp($0.updatedAt)) }
            organizations = c.organizations.map { Organization(id: $0.id, name: $0.name, phones: $0.phones) }
            openDeals = c.openDeals.map { Deal(id: $0.id, title: $0.title, personID: $0.personID, orgID: $0.orgID, updatedAt: stamp($0.updatedAt)) }
            openLeads = c.openLeads.map { Lead(id: $0.id, title: $0.title, personID: $0.personID, orgID: $0.orgID, updatedAt: stamp($0.updatedAt)) }
        }

        public struct Person: Encodable, Sendable {
            var id: Int, name: String, orgID: Int?, phones: [String], updatedAt: String?
            enum CodingKeys: String, CodingKey { case id, name, orgID = "org_id", phones, updatedAt = "updated_at" }
        }
        public struct Organization: Encodable, Sendable {
            var id: Int, name: String, phones: [String]
        }
        public struct Deal: Encodable, Sendable {
            var id: Int, title: String, personID: Int?, orgID: Int?, updatedAt: String?
            enum CodingKeys: String, CodingKey { case id, title, personID = "person_id", orgID = "org_id", updatedAt = "updated_at" }
        }
        public struct Lead: Encodable, Sendable {
            var id: String, title: String, personID: Int?, orgID: Int?, updatedAt: String?
            enum CodingKeys: String, CodingKey { case id, title, personID = "person_id", orgID = "org_id", updatedAt = "updated_at" }
        }
    }
}

/// RFC 3339 in UTC, or nil.
private func stamp(_ date: Date?) -> String? {
    date.map { ISO8601DateFormatter().string(from: $0) }
}

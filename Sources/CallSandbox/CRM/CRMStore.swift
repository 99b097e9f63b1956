import Foundation
import HTTPTypes

/// The sandbox's CRM: persons, organizations, deals, leads and users, indexed for the listings.
/// Kept by ``SandboxState`` and written to the state file as a ``CRMSeed``.
struct CRMStore: Sendable {
    var persons = CRMTable<CRMPerson>()
    var organizations = CRMTable<CRMOrganization>()
    var deals = CRMTable<CRMDeal>()
    /// Leads by id, and their ids in the order they were added (the v1 listing's order).
    private(set) var leads: [String: CRMLead] = [:]
    private(set) var leadOrder: [String] = []
    private(set) var users: [Int: CRMUser] = [:]
    /// Deal ids per person and per organization (the `person_id`/`org_id` filters).
    private var dealsByPerson: [Int: Set<Int>] = [:]
    private var dealsByOrganization: [Int: Set<Int>] = [:]

    var isEmpty: Bool { persons.isEmpty && organizations.isEmpty && deals.isEmpty && leads.isEmpty && users.isEmpty }

    // MARK: Changes

    /// Upserts every row of `seed` (checked already). A row without an update time gets `now`,
    /// unless it is the same as the stored one (a seed applied again at every start changes no
    /// time); a missing add time is the stored row's, else the update time.
    mutating func upsert(_ seed: CRMSeed, now: CRMTime) {
        func stamped<Row: CRMTimed>(_ row: Row, _ existing: Row?) -> Row {
            var row = row
            if row.addTime == nil { row.addTime = existing?.addTime }
            if row.updateTime == nil {
                if let existing, row.same(as: existing) { return existing }
                row.updateTime = now
            }
            if row.addTime == nil { row.addTime = row.updateTime }
            return row
        }
        if let batch = seed.persons {
            persons.upsert(batch.map { person in
                var person = person
                person.phones = CRMContactValue.normalised(person.phones ?? [])
                person.emails = CRMContactValue.normalised(person.emails ?? [])
                return stamped(person, persons[person.id])
            })
        }
        if let batch = seed.organizations { organizations.upsert(batch.map { stamped($0, organizations[$0.id]) }) }
        if let batch = seed.deals {
            let rows = batch.map { deal in
                var deal = deal
                if deal.status == nil { deal.status = "open" }
                return stamped(deal, deals[deal.id])
            }
            for deal in rows { if let old = deals[deal.id] { unindex(old) } }
            deals.upsert(rows)
            for deal in rows { index(deal) }
        }
        for var lead in seed.leads ?? [] {
            lead.id = lead.id.lowercased()
            if lead.isArchived == nil { lead.isArchived = false }
            lead = stamped(lead, leads[lead.id])
            if leads.updateValue(lead, forKey: lead.id) == nil { leadOrder.append(lead.id) }
        }
        for var user in seed.users ?? [] {
            if user.activeFlag == nil { user.activeFlag = true }
            users[user.id] = user
        }
    }

    /// Everything, as a seed that ``upsert(_:now:)`` restores (the state file's `crm`).
    var exported: CRMSeed {
        CRMSeed(persons: persons.ordered, organizations: organizations.ordered, deals: deals.ordered,
                leads: leadOrder.map { leads[$0]! }, users: users.keys.sorted().map { users[$0]! })
    }

    mutating func removeAll() { self = CRMStore() }

    /// `DELETE /_sandbox/crm/persons/{id}`: the person leaves every listing (its deals and leads
    /// keep naming it, as they do in Pipedrive until they are edited).
    mutating func deletePerson(_ id: Int) throws(APIError) {
        guard persons.remove(id) != nil else { throw Self.notFound("person", id) }
    }

    /// Pipedrive's merge: `id` disappears; its phones and e-mails the target lacks are added to the
    /// target, whose update time becomes `now`; its deals and leads move to the target (their
    /// update times become `now`).
    mutating func mergePerson(_ id: Int, into target: Int, now: CRMTime) throws(APIError) {
        guard id != target else { throw APIError(.badRequest, "a person cannot be merged into itself") }
        guard let merged = persons[id] else { throw Self.notFound("person", id) }
        guard var kept = persons[target] else { throw Self.notFound("person", target) }
        for (own, added) in [(\CRMPerson.phones, merged.phones), (\CRMPerson.emails, merged.emails)] {
            var values = kept[keyPath: own] ?? []
            for value in added ?? [] where !values.contains(where: { $0.value == value.value }) {
                values.append(CRMContactValue(value: value.value, primary: false, label: value.label ?? "work"))
            }
            kept[keyPath: own] = values
        }
        if kept.orgId == nil { kept.orgId = merged.orgId }
        kept.updateTime = now
        persons.remove(id)
        persons.upsert(kept)
        for dealId in dealsByPerson[id] ?? [] {
            guard var deal = deals[dealId] else { continue }
            deal.personId = target
            deal.updateTime = now
            replace(deal)
        }
        for leadId in leadOrder where leads[leadId]?.personId == id {
            leads[leadId]?.personId = target
            leads[leadId]?.updateTime = now
        }
    }

    /// The kinds `PATCH /_sandbox/crm/{kind}/{id}` changes.
    enum Kind: String, CaseIterable, Sendable { case persons, organizations, deals, leads, users }

    /// Applies `patch` (the fields to change, in the seed's form) to one row; `update_time` becomes
    /// `now` unless the patch sets it.
    mutating func patch(_ kind: Kind, id: String, _ patch: [String: JSONValue], now: CRMTime) throws(APIError) {
        if let given = patch["id"], given != .string(id), given != Int64(id).map(JSONValue.int) {
            throw APIError(.badRequest, "id: a row's id cannot change")
        }
        let number = Int(id) ?? -1
        let current: JSONValue? = switch kind {
        case .persons: persons[number].map(Self.json)
        case .organizations: organizations[number].map(Self.json)
        case .deals: deals[number].map(Self.json)
        case .leads: leads[id.lowercased()].map(Self.json)
        case .users: users[number].map(Self.json)
        }
        guard case .object(var fields)? = current else { throw APIError(.notFound, "no \(kind.rawValue.dropLast()) \(id)") }
        for (key, value) in patch { fields[key] = value }
        if patch["update_time"] == nil, kind != .users { fields["update_time"] = .string(now.text) }
        upsert(try CRMSeed.row(kind.rawValue, fields).get(), now: now)
    }

    // MARK: Reading

    /// Deal ids of a person, of an organization, or of both (nil: no such filter).
    func dealCandidates(person: Int?, organization: Int?) -> [Int]? {
        switch (person, organization) {
        case (nil, nil): nil
        case (let person?, nil): Array(dealsByPerson[person] ?? [])
        case (nil, let organization?): Array(dealsByOrganization[organization] ?? [])
        case (let person?, let organization?): Array((dealsByPerson[person] ?? []).intersection(dealsByOrganization[organization] ?? []))
        }
    }

    /// A page of leads in the order they were added, and whether more follow.
    func leadPage(start: Int, limit: Int, include: (CRMLead) -> Bool) -> (page: [CRMLead], more: Bool) {
        let matching = leadOrder.lazy.map { leads[$0]! }.filter(include)
        let page = Array(matching.dropFirst(start).prefix(limit + 1))
        return (Array(page.prefix(limit)), page.count > limit)
    }

    /// `GET /_sandbox/crm/stats`.
    var counts: SandboxCRMCounts {
        var byStatus: [String: Int] = [:]
        for deal in deals.rows.values { byStatus[deal.status ?? "open", default: 0] += 1 }
        return SandboxCRMCounts(persons: persons.count, organizations: organizations.count, deals: deals.count, dealsByStatus: byStatus,
                                leads: leads.count, archivedLeads: leads.values.count(where: { $0.isArchived == true }), users: users.count,
                                phones: persons.rows.values.reduce(0) { $0 + ($1.phones?.count ?? 0) })
    }

    // MARK: Helpers

    private mutating func replace(_ deal: CRMDeal) {
        if let old = deals[deal.id] { unindex(old) }
        deals.upsert(deal)
        index(deal)
    }

    private mutating func index(_ deal: CRMDeal) {
        if let person = deal.personId { dealsByPerson[person, default: []].insert(deal.id) }
        if let organization = deal.orgId { dealsByOrganization[organization, default: []].insert(deal.id) }
    }

    private mutating func unindex(_ deal: CRMDeal) {
        if let person = deal.personId { dealsByPerson[person]?.remove(deal.id) }
        if let organization = deal.orgId { dealsByOrganization[organization]?.remove(deal.id) }
    }

    private static func json(_ row: some Encodable) -> JSONValue {
        (try? JSONEncoder().encode(row)).flatMap(JSONValue.parse) ?? .object([:])
    }

    static func notFound(_ kind: String, _ id: Int) -> APIError { APIError(.notFound, "no \(kind) \(id)") }

    /// What `POST /v1/callLogs` refuses of the ids a call log links, once the CRM holds persons
    /// (an account whose CRM the sandbox does not model links what it is told): a person,
    /// organization or deal that is not there (deleted, merged away), or a lead that is not.
    func refusal(person: Int?, organization: Int?, deal: Int?, lead: String?) -> String? {
        guard !persons.isEmpty else { return nil }
        if let person, persons[person] == nil { return "Person with ID \(person) not found." }
        if let organization, !organizations.isEmpty, organizations[organization] == nil { return "Organization with ID \(organization) not found." }
        if let deal, deals[deal] == nil || deals[deal]?.status == "deleted" { return "Deal with ID \(deal) not found." }
        if let lead, leads[lead.lowercased()] == nil { return "Lead with ID \(lead) not found." }
        return nil
    }
}

/// What the sandbox's CRM holds (`GET /_sandbox/crm/stats`).
public struct SandboxCRMCounts: Sendable, Codable, Equatable {
    public var persons: Int
    public var organizations: Int
    public var deals: Int
    /// Deals per status (`open`, `won`, `lost`, `deleted`).
    public var dealsByStatus: [String: Int]
    public var leads: Int
    public var archivedLeads: Int
    public var users: Int
    /// Phone numbers over all persons.
    public var phones: Int

    enum CodingKeys: String, CodingKey {
        case persons, organizations, deals, leads, users, phones
        case dealsByStatus = "deals_by_status", archivedLeads = "archived_leads"
    }
}

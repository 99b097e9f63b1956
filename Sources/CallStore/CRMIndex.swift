public import Foundation

// The local phone index of the CRM (issue 17; research/sources-and-matching.md §3–4), kept in the
// same database as the queue so that a call's match is one indexed read and no request.
//
// Logical schema (migration v5 of both backends):
//
// - `crm_person` (id PK, name, org_id, owner_id, updated_at, pass), `crm_organization` (id PK,
//   name, updated_at, pass), `crm_deal` (id PK, title, person_id, org_id, status, updated_at,
//   pass; indexed on person_id and org_id), `crm_lead` (id PK text, title, person_id, org_id,
//   archived, updated_at, pass; indexed on person_id and org_id), `crm_user` (id PK, name,
//   email lower-cased and indexed, active, pass);
// - `crm_phone` (e164, kind `person`/`organization`, owner id; PK on all three, indexed on e164):
//   every number of a person or organization that libphonenumber read, in E.164;
// - `crm_sync` (entity PK, cursor, full, pass, updated_since, last_refresh_at, last_full_pass_at):
//   where each listing stands, written in the same transaction as the page it follows, so a
//   refresh killed mid-way resumes from its cursor.

/// What the index holds: one listing of the CRM each.
public enum CRMEntityKind: String, Sendable, Hashable, CaseIterable, Codable {
    case person, organization, deal, lead, user
}

/// A person, with every phone number that read as a valid number, in E.164.
public struct CRMPerson: Sendable, Hashable, Codable {
    public var id: Int
    public var name: String
    public var orgID: Int?
    public var ownerID: Int?
    /// E.164, deduplicated, in the CRM's order (the primary first).
    public var phones: [String]
    public var updatedAt: Date?

    public init(id: Int, name: String, orgID: Int? = nil, ownerID: Int? = nil, phones: [String] = [], updatedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.orgID = orgID
        self.ownerID = ownerID
        self.phones = phones
        self.updatedAt = updatedAt
    }
}

/// An organization; `phones` only where the account keeps numbers on organizations (a custom
/// field the config names).
public struct CRMOrganization: Sendable, Hashable, Codable {
    public var id: Int
    public var name: String
    public var phones: [String]
    public var updatedAt: Date?

    public init(id: Int, name: String, phones: [String] = [], updatedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.phones = phones
        self.updatedAt = updatedAt
    }
}

/// A deal; the index keeps its status so that a deal won, lost or deleted stops matching.
public struct CRMDeal: Sendable, Hashable, Codable {
    public var id: Int
    public var title: String
    public var personID: Int?
    public var orgID: Int?
    /// `open`, `won`, `lost` or `deleted`.
    public var status: String
    public var updatedAt: Date?

    public init(id: Int, title: String, personID: Int? = nil, orgID: Int? = nil, status: String = "open", updatedAt: Date? = nil) {
        self.id = id
        self.title = title
        self.personID = personID
        self.orgID = orgID
        self.status = status
        self.updatedAt = updatedAt
    }

    public var isOpen: Bool { status == "open" }
}

/// A lead (its id is a UUID).
public struct CRMLead: Sendable, Hashable, Codable {
    public var id: String
    public var title: String
    public var personID: Int?
    public var orgID: Int?
    public var archived: Bool
    public var updatedAt: Date?

    public init(id: String, title: String, personID: Int? = nil, orgID: Int? = nil, archived: Bool = false, updatedAt: Date? = nil) {
        self.id = id
        self.title = title
        self.personID = personID
        self.orgID = orgID
        self.archived = archived
        self.updatedAt = updatedAt
    }
}

/// A Pipedrive user, for the call log's owner by e-mail.
public struct CRMUser: Sendable, Hashable, Codable {
    public var id: Int
    public var name: String
    /// Lower-cased.
    public var email: String
    public var active: Bool

    public init(id: Int, name: String, email: String, active: Bool = true) {
        self.id = id
        self.name = name
        self.email = email.lowercased()
        self.active = active
    }
}

/// Where one listing of the CRM stands.
public struct CRMSyncState: Sendable, Hashable, Codable {
    public var entity: CRMEntityKind
    /// The next page of the listing under way; nil when none is under way.
    public var cursor: String?
    /// Whether the listing under way (or the last) is a full pass.
    public var full: Bool
    /// The generation of the last full pass begun: rows written carry it, and when a full pass
    /// ends the rows of older generations (deleted or merged away in the CRM) go.
    public var pass: Int64
    /// `updated_since` for the next incremental listing (the newest update time seen, less a
    /// margin); nil before the first full pass ended.
    public var updatedSince: Date?
    public var lastRefreshAt: Date?
    public var lastFullPassAt: Date?

    public init(entity: CRMEntityKind, cursor: String? = nil, full: Bool = false, pass: Int64 = 0, updatedSince: Date? = nil,
                lastRefreshAt: Date? = nil, lastFullPassAt: Date? = nil) {
        self.entity = entity
        self.cursor = cursor
        self.full = full
        self.pass = pass
        self.updatedSince = updatedSince
        self.lastRefreshAt = lastRefreshAt
        self.lastFullPassAt = lastFullPassAt
    }
}

/// One page of a listing, applied in one transaction with the listing's state after it.
public struct CRMPage: Sendable, Hashable {
    public var persons: [CRMPerson]
    public var organizations: [CRMOrganization]
    public var deals: [CRMDeal]
    public var leads: [CRMLead]
    public var users: [CRMUser]
    /// Ids known to be gone (a listing that reports deletions), by kind; as text (leads are UUIDs).
    public var removed: [CRMEntityKind: [String]]
    /// The state of `sync.entity`'s listing after this page. Rows written carry `sync.pass`.
    public var sync: CRMSyncState

    public init(sync: CRMSyncState, persons: [CRMPerson] = [], organizations: [CRMOrganization] = [], deals: [CRMDeal] = [],
                leads: [CRMLead] = [], users: [CRMUser] = [], removed: [CRMEntityKind: [String]] = [:]) {
        self.sync = sync
        self.persons = persons
        self.organizations = organizations
        self.deals = deals
        self.leads = leads
        self.users = users
        self.removed = removed
    }
}

/// What the index knows about one number: the lookup a match decides from.
public struct PhoneCandidates: Sendable, Equatable {
    /// Persons with this number, by id.
    public var persons: [CRMPerson]
    /// Organizations with this number, and the organizations of `persons`, by id.
    public var organizations: [CRMOrganization]
    /// Open deals of those persons and organizations, the most recently updated first.
    public var openDeals: [CRMDeal]
    /// Leads not archived of those persons and organizations, the most recently updated first.
    public var openLeads: [CRMLead]

    public init(persons: [CRMPerson] = [], organizations: [CRMOrganization] = [], openDeals: [CRMDeal] = [], openLeads: [CRMLead] = []) {
        self.persons = persons
        self.organizations = organizations
        self.openDeals = openDeals
        self.openLeads = openLeads
    }

    public var isEmpty: Bool { persons.isEmpty && organizations.isEmpty }
}

/// The index's part of the store (both backends).
public protocol CRMIndexStore: Sendable {
    /// Writes a page's rows (upserts; each row's phones replace the stored ones) and removals,
    /// and the listing's state, in one transaction.
    func applyCRMPage(_ page: CRMPage) async throws
    /// Ends a full pass of `state.entity`: deletes that kind's rows (and their phones) whose
    /// generation is older than `state.pass`, and stores `state`, in one transaction. Returns how
    /// many rows went.
    @discardableResult
    func finishCRMFullPass(_ state: CRMSyncState) async throws -> Int
    /// Every listing's state (a kind never listed is absent).
    func crmSyncStates() async throws -> [CRMEntityKind: CRMSyncState]
    /// The lookup: one read, ≤ 1 ms at 50,000 persons.
    func phoneCandidates(_ e164: String) async throws -> PhoneCandidates
    func crmUser(email: String) async throws -> CRMUser?
    func crmUser(id: Int) async throws -> CRMUser?
    /// Rows per kind.
    func crmCounts() async throws -> [CRMEntityKind: Int]
}

public import CallStore
import Foundation
import GRDB

// The local phone index of the CRM (issue 17); the tables of migration v5.
extension SQLiteStore {
    public func applyCRMPage(_ page: CRMPage) async throws {
        try await write("apply a CRM page") { db in
            let pass = page.sync.pass
            let persons = page.personRows, organizations = page.organizationRows
            let upsertPerson = try db.cachedStatement(sql: Self.upsertSQL("crm_person", ["id", "name", "org_id", "owner_id", "updated_at", "pass"]))
            for person in persons {
                try upsertPerson.execute(arguments: [person.id, person.name, person.orgID, person.ownerID,
                                                     person.updatedAt.map(Millis.from), pass])
                try Self.replacePhones(db, kind: .person, owner: person.id, person.phones)
            }
            let upsertOrganization = try db.cachedStatement(sql: Self.upsertSQL("crm_organization", ["id", "name", "updated_at", "pass"]))
            for organization in organizations {
                try upsertOrganization.execute(arguments: [organization.id, organization.name,
                                                           organization.updatedAt.map(Millis.from), pass])
                try Self.replacePhones(db, kind: .organization, owner: organization.id, organization.phones)
            }
            let upsertDeal = try db.cachedStatement(sql: Self.upsertSQL("crm_deal", ["id", "title", "person_id", "org_id", "status", "updated_at", "pass"]))
            for deal in page.dealRows {
                try upsertDeal.execute(arguments: [deal.id, deal.title, deal.personID, deal.orgID, deal.status,
                                                   deal.updatedAt.map(Millis.from), pass])
            }
            let upsertLead = try db.cachedStatement(sql: Self.upsertSQL("crm_lead", ["id", "title", "person_id", "org_id", "archived", "updated_at", "pass"]))
            for lead in page.leadRows {
                try upsertLead.execute(arguments: [lead.id, lead.title, lead.personID, lead.orgID, lead.archived,
                                                   lead.updatedAt.map(Millis.from), pass])
            }
            let upsertUser = try db.cachedStatement(sql: Self.upsertSQL("crm_user", ["id", "name", "email", "active", "pass"]))
            for user in page.userRows {
                try upsertUser.execute(arguments: [user.id, user.name, user.email.lowercased(), user.active, pass])
            }
            // Removals after the rows: an id both written and removed by a page is gone.
            for kind in CRMEntityKind.allCases {
                let ids: [any DatabaseValueConvertible] = kind == .lead ? page.removedLeadIDs : page.removedIntegerIDs(kind)
                for start in stride(from: 0, to: ids.count, by: Self.crmChunk) {
                    let chunk = Array(ids[start..<min(start + Self.crmChunk, ids.count)])
                    try Self.delete(db, kind, where: "id IN (\(placeholders(chunk.count)))", StatementArguments(chunk))
                }
            }
            try Self.putSync(db, page.sync)
        }
    }

    @discardableResult
    public func finishCRMFullPass(_ state: CRMSyncState) async throws -> Int {
        try await write("finish a CRM full pass") { db in
            let deleted = try Self.delete(db, state.entity, where: "pass < ?", [state.pass])
            try Self.putSync(db, state)
            return deleted
        }
    }

    public func crmSyncStates() async throws -> [CRMEntityKind: CRMSyncState] {
        try await read("CRM sync states") { db in
            var states: [CRMEntityKind: CRMSyncState] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT * FROM crm_sync") {
                guard let entity = CRMEntityKind(rawValue: row["entity"]) else { continue }
                states[entity] = CRMSyncState(
                    entity: entity, cursor: row["cursor"], full: row["full_pass"], pass: row["pass"],
                    updatedSince: Millis.date(row["updated_since"] as Int64?), lastRefreshAt: Millis.date(row["last_refresh_at"] as Int64?),
                    lastFullPassAt: Millis.date(row["last_full_pass_at"] as Int64?))
            }
            return states
        }
    }

    /// The lookup: a few indexed reads in one read transaction (one snapshot): the number's
    /// owners (`crm_phone`'s key), the persons and organizations, their numbers
    /// (`crm_phone_owner`), and the open deals and leads by person and by organization.
    public func phoneCandidates(_ e164: String) async throws -> PhoneCandidates {
        try await read("phone candidates") { db in
            var personIDs: [Int] = [], organizationIDs = Set<Int>()
            for row in try Row.fetchAll(db, sql: "SELECT kind, owner_id FROM crm_phone WHERE e164 = ?", arguments: [e164]) {
                if row["kind"] == CRMEntityKind.person.rawValue { personIDs.append(row["owner_id"]) } else { organizationIDs.insert(row["owner_id"]) }
            }
            guard !personIDs.isEmpty || !organizationIDs.isEmpty else { return PhoneCandidates() }
            let phones = try db.cachedStatement(sql: "SELECT e164 FROM crm_phone WHERE kind = ? AND owner_id = ? ORDER BY position")
            let persons = try Row.fetchAll(db, sql: "SELECT * FROM crm_person WHERE id IN (\(placeholders(personIDs.count)))",
                                           arguments: StatementArguments(personIDs)).map { row in
                CRMPerson(id: row["id"], name: row["name"], orgID: row["org_id"], ownerID: row["owner_id"],
                          phones: try String.fetchAll(phones, arguments: [CRMEntityKind.person.rawValue, row["id"] as Int]),
                          updatedAt: Millis.date(row["updated_at"] as Int64?))
            }
            organizationIDs.formUnion(persons.compactMap(\.orgID))
            let orgIDs = organizationIDs.sorted()
            let organizations = try Row.fetchAll(db, sql: "SELECT * FROM crm_organization WHERE id IN (\(placeholders(orgIDs.count)))",
                                                 arguments: StatementArguments(orgIDs)).map { row in
                CRMOrganization(id: row["id"], name: row["name"],
                                phones: try String.fetchAll(phones, arguments: [CRMEntityKind.organization.rawValue, row["id"] as Int]),
                                updatedAt: Millis.date(row["updated_at"] as Int64?))
            }
            // Of the persons found and of every organization id (one not listed yet included).
            let arguments = StatementArguments(persons.map(\.id)) + StatementArguments(orgIDs)
            let deals = try Row.fetchAll(db, sql: Self.ofOwners("crm_deal", "status = 'open'", persons.count, orgIDs.count),
                                         arguments: arguments).map { row in
                CRMDeal(id: row["id"], title: row["title"], personID: row["person_id"], orgID: row["org_id"], status: row["status"],
                        updatedAt: Millis.date(row["updated_at"] as Int64?))
            }
            let leads = try Row.fetchAll(db, sql: Self.ofOwners("crm_lead", "archived = 0", persons.count, orgIDs.count),
                                         arguments: arguments).map { row in
                CRMLead(id: row["id"], title: row["title"], personID: row["person_id"], orgID: row["org_id"], archived: row["archived"],
                        updatedAt: Millis.date(row["updated_at"] as Int64?))
            }
            return PhoneCandidates(persons: persons, organizations: organizations, openDeals: deals, openLeads: leads).ordered()
        }
    }

    public func crmUser(email: String) async throws -> CRMUser? {
        try await read("CRM user") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM crm_user WHERE email = ? ORDER BY active DESC, id LIMIT 1",
                             arguments: [email.lowercased()]).map(Self.crmUser(from:))
        }
    }

    public func crmUser(id: Int) async throws -> CRMUser? {
        try await read("CRM user") { db in
            try Row.fetchOne(db, sql: "SELECT * FROM crm_user WHERE id = ?", arguments: [id]).map(Self.crmUser(from:))
        }
    }

    public func crmCounts() async throws -> [CRMEntityKind: Int] {
        try await read("CRM counts") { db in
            var counts: [CRMEntityKind: Int] = [:]
            for kind in CRMEntityKind.allCases {
                counts[kind] = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(Self.crmTable(kind))") ?? 0
            }
            return counts
        }
    }

    // MARK: helpers

    /// Ids per DELETE (an IN list well under SQLite's limit of bound variables).
    static let crmChunk = 500

    static func crmTable(_ kind: CRMEntityKind) -> String { "crm_" + kind.rawValue }

    /// An upsert into `table` by `id` (the first column): every other column takes the row's value,
    /// but a row's pass never goes back (a writer with an older state must not expose it to the
    /// sweep of the pass under way).
    static func upsertSQL(_ table: String, _ columns: [String]) -> String {
        """
        INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(placeholders(columns.count)))
        ON CONFLICT (id) DO UPDATE SET \(columns.dropFirst().map { $0 == "pass" ? "pass = max(pass, excluded.pass)" : "\($0) = excluded.\($0)" }.joined(separator: ", "))
        """
    }

    /// The rows of `table` (deals or leads) that `condition` keeps, of `persons` person ids then
    /// `organizations` organization ids (bound in that order): two reads of the
    /// (person_id, …) and (org_id, …) indexes.
    static func ofOwners(_ table: String, _ condition: String, _ persons: Int, _ organizations: Int) -> String {
        """
        SELECT * FROM \(table) WHERE person_id IN (\(placeholders(persons))) AND \(condition)
        UNION SELECT * FROM \(table) WHERE org_id IN (\(placeholders(organizations))) AND \(condition)
        """
    }

    static func crmUser(from row: Row) -> CRMUser {
        CRMUser(id: row["id"], name: row["name"], email: row["email"], active: row["active"])
    }

    /// The owner's numbers become `phones`, in that order.
    static func replacePhones(_ db: Database, kind: CRMEntityKind, owner: Int, _ phones: [String]) throws {
        try db.cachedStatement(sql: "DELETE FROM crm_phone WHERE kind = ? AND owner_id = ?").execute(arguments: [kind.rawValue, owner])
        let insert = try db.cachedStatement(sql: "INSERT INTO crm_phone (e164, kind, owner_id, position) VALUES (?, ?, ?, ?)")
        for (position, phone) in phones.enumerated() {
            try insert.execute(arguments: [phone, kind.rawValue, owner, position])
        }
    }

    /// Deletes the rows of `kind` that `condition` selects, with their numbers; returns how many
    /// rows (numbers not counted) went.
    @discardableResult
    static func delete(_ db: Database, _ kind: CRMEntityKind, where condition: String, _ arguments: StatementArguments) throws -> Int {
        let table = crmTable(kind)
        if kind == .person || kind == .organization {
            try db.execute(sql: """
                DELETE FROM crm_phone WHERE kind = '\(kind.rawValue)' AND owner_id IN (SELECT id FROM \(table) WHERE \(condition))
                """, arguments: arguments)
        }
        try db.execute(sql: "DELETE FROM \(table) WHERE \(condition)", arguments: arguments)
        return db.changesCount
    }

    static func putSync(_ db: Database, _ state: CRMSyncState) throws {
        try db.execute(sql: """
            INSERT INTO crm_sync (entity, cursor, full_pass, pass, updated_since, last_refresh_at, last_full_pass_at)
            VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (entity) DO UPDATE SET cursor = excluded.cursor, full_pass = excluded.full_pass, pass = excluded.pass,
              updated_since = excluded.updated_since, last_refresh_at = excluded.last_refresh_at,
              last_full_pass_at = excluded.last_full_pass_at
            """, arguments: [state.entity.rawValue, state.cursor, state.full, state.pass, state.updatedSince.map(Millis.from),
                             state.lastRefreshAt.map(Millis.from), state.lastFullPassAt.map(Millis.from)])
    }
}

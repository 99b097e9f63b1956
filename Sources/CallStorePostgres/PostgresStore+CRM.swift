public import CallStore
import Foundation
import Logging
import PostgresNIO

// The local phone index of the CRM (issue 17); the tables of migration v5.
extension PostgresStore {
    /// One transaction of at most three statements, whatever the page's size: the index's lock
    /// (``PostgresSchema/crmLock``: pages applied at once wait for each other; a statement's
    /// snapshot taken before another page committed would miss the numbers that page wrote and
    /// leave them beside the new ones), the rows (one `INSERT … SELECT FROM unnest(arrays)` per
    /// kind, each owner's numbers replaced by a DELETE of those no longer listed and an upsert of
    /// the others, and the listing's state, all one statement), then the removals.
    public func applyCRMPage(_ page: CRMPage) async throws {
        let rows = try Self.crmRows(page, offset: offset)
        var removals: [(CRMEntityKind, CRMDeletion)] = []
        for kind in CRMEntityKind.allCases {
            if kind == .lead {
                if !page.removedLeadIDs.isEmpty { removals.append((kind, .leads(page.removedLeadIDs))) }
            } else if case let ids = page.removedIntegerIDs(kind), !ids.isEmpty {
                removals.append((kind, .ids(ids)))
            }
        }
        var removal: Statement?
        if !removals.isEmpty {
            var s = statement()
            let (ctes, count) = try Self.crmDeletions(removals, &s)
            s.sql = "WITH " + ctes.joined(separator: ",\n") + "\nSELECT " + count
            removal = s
        }
        let logger = self.logger, cleanup = removal
        try await transaction("apply a CRM page") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.crmLock))", logger: logger)
            _ = try await connection.query(rows.query, logger: logger).collect()
            if let cleanup { _ = try await connection.query(cleanup.query, logger: logger).collect() }
        }
    }

    @discardableResult
    public func finishCRMFullPass(_ state: CRMSyncState) async throws -> Int {
        var s = statement()
        let (ctes, count) = try Self.crmDeletions([(state.entity, .olderThan(state.pass))], &s)
        s.sql = "WITH " + (ctes + ["sync AS (\(Self.putSync(state, &s)))"]).joined(separator: ",\n") + "\nSELECT " + count
        let logger = self.logger, query = s.query
        let rows = try await transaction("finish a CRM full pass") { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(PostgresSchema.crmLock))", logger: logger)
            return try await connection.query(query, logger: logger).collect()
        }
        return try decode("finish a CRM full pass") { try rows.first.map { Int(try $0.decode(Int64.self)) } ?? 0 }
    }

    public func crmSyncStates() async throws -> [CRMEntityKind: CRMSyncState] {
        let rows = try await query("CRM sync states", """
            SELECT entity, cursor, full_pass, pass, \(unescaped: SQL.ms("updated_since")), \(unescaped: SQL.ms("last_refresh_at")),
                   \(unescaped: SQL.ms("last_full_pass_at"))
            FROM crm_sync
            """)
        return try decode("CRM sync states") {
            var states: [CRMEntityKind: CRMSyncState] = [:]
            for row in rows {
                let (entity, cursor, full, pass, since, refresh, fullPass) =
                    try row.decode((String, String?, Bool, Int64, Int64?, Int64?, Int64?).self)
                guard let kind = CRMEntityKind(rawValue: entity) else { continue }
                states[kind] = CRMSyncState(entity: kind, cursor: cursor, full: full, pass: pass, updatedSince: SQL.date(since),
                                            lastRefreshAt: SQL.date(refresh), lastFullPassAt: SQL.date(fullPass))
            }
            return states
        }
    }

    /// The lookup, ONE statement (one round trip), prepared once per connection (its plan, half
    /// a millisecond to make, is made once): see ``PhoneCandidatesStatement``.
    public func phoneCandidates(_ e164: String) async throws -> PhoneCandidates {
        try await checkRunning()
        var candidates = PhoneCandidates()
        do {
            for try await row in try await client.execute(PhoneCandidatesStatement(e164: e164), logger: logger) {
                let (kind, id, leadID, name, orgID, ownerID, personID, updated, phones) = row
                let int = { (value: Int64?) in value.map { Int($0) } }
                switch kind {
                case "person":
                    candidates.persons.append(CRMPerson(id: Int(id ?? 0), name: name, orgID: int(orgID), ownerID: int(ownerID),
                                                        phones: phones ?? [], updatedAt: SQL.date(updated)))
                case "organization":
                    candidates.organizations.append(CRMOrganization(id: Int(id ?? 0), name: name, phones: phones ?? [],
                                                                    updatedAt: SQL.date(updated)))
                case "deal":
                    candidates.openDeals.append(CRMDeal(id: Int(id ?? 0), title: name, personID: int(personID), orgID: int(orgID),
                                                        status: "open", updatedAt: SQL.date(updated)))
                default:
                    candidates.openLeads.append(CRMLead(id: leadID ?? "", title: name, personID: int(personID), orgID: int(orgID),
                                                        archived: false, updatedAt: SQL.date(updated)))
                }
            }
        } catch {
            throw wrap(error, "phone candidates")
        }
        return candidates.ordered()
    }

    public func crmUser(email: String) async throws -> CRMUser? {
        let rows = try await query("CRM user", """
            SELECT id, name, email, active FROM crm_user WHERE email = \(email.lowercased()) ORDER BY active DESC, id LIMIT 1
            """)
        return try decode("CRM user") { try rows.first.map(Self.crmUser(from:)) }
    }

    public func crmUser(id: Int) async throws -> CRMUser? {
        let rows = try await query("CRM user", "SELECT id, name, email, active FROM crm_user WHERE id = \(id)")
        return try decode("CRM user") { try rows.first.map(Self.crmUser(from:)) }
    }

    public func crmCounts() async throws -> [CRMEntityKind: Int] {
        let rows = try await query("CRM counts", PostgresQuery(unsafeSQL: CRMEntityKind.allCases.map {
            "SELECT '\($0.rawValue)', count(*)::int8 FROM \(Self.crmTable($0))"
        }.joined(separator: " UNION ALL ")))
        return try decode("CRM counts") {
            var counts = Dictionary(uniqueKeysWithValues: CRMEntityKind.allCases.map { ($0, 0) })
            for row in rows {
                let (kind, count) = try row.decode((String, Int64).self)
                if let kind = CRMEntityKind(rawValue: kind) { counts[kind] = Int(count) }
            }
            return counts
        }
    }

    // MARK: statements

    static func crmTable(_ kind: CRMEntityKind) -> String { "crm_" + kind.rawValue }

    static func crmUser(from row: PostgresRow) throws -> CRMUser {
        let (id, name, email, active) = try row.decode((Int64, String, String, Bool).self)
        return CRMUser(id: Int(id), name: name, email: email, active: active)
    }

    /// `TIMESTAMPTZ` of an optional unix-ms column expression (NULL stays NULL).
    private static func time(_ ms: String) -> String { "(" + SQL.epochPlus + "(\(ms)))" }

    /// The page's rows and its listing's state, as one statement.
    static func crmRows(_ page: CRMPage, offset: Int64) throws -> Statement {
        var s = Statement(offset: offset)
        let pass = "\(s.bind(page.sync.pass))::int8"
        var writes: [String] = []

        let persons = page.personRows
        if !persons.isEmpty {
            var rows = UnnestRows()
            let columns: [(String, String)] = [
                ("id", try rows.column(persons.map(\.id), "int8", &s)), ("name", try rows.column(persons.map(\.name), "text", &s)),
                ("org_id", try rows.column(persons.map(\.orgID), "int8", nilAs: 0, &s)),
                ("owner_id", try rows.column(persons.map(\.ownerID), "int8", nilAs: 0, &s)),
                ("updated_at", time(try rows.column(persons.map { SQL.ms($0.updatedAt) }, "int8", nilAs: 0, &s))), ("pass", pass),
            ]
            writes.append(upsert("persons", "crm_person", from: rows.from, columns))
            writes += try phones(.person, persons.map { ($0.id, $0.phones) }, &s)
        }

        let organizations = page.organizationRows
        if !organizations.isEmpty {
            var rows = UnnestRows()
            let columns: [(String, String)] = [
                ("id", try rows.column(organizations.map(\.id), "int8", &s)),
                ("name", try rows.column(organizations.map(\.name), "text", &s)),
                ("updated_at", time(try rows.column(organizations.map { SQL.ms($0.updatedAt) }, "int8", nilAs: 0, &s))), ("pass", pass),
            ]
            writes.append(upsert("organizations", "crm_organization", from: rows.from, columns))
            writes += try phones(.organization, organizations.map { ($0.id, $0.phones) }, &s)
        }

        let deals = page.dealRows
        if !deals.isEmpty {
            var rows = UnnestRows()
            let columns: [(String, String)] = [
                ("id", try rows.column(deals.map(\.id), "int8", &s)), ("title", try rows.column(deals.map(\.title), "text", &s)),
                ("person_id", try rows.column(deals.map(\.personID), "int8", nilAs: 0, &s)),
                ("org_id", try rows.column(deals.map(\.orgID), "int8", nilAs: 0, &s)),
                ("status", try rows.column(deals.map(\.status), "text", &s)),
                ("updated_at", time(try rows.column(deals.map { SQL.ms($0.updatedAt) }, "int8", nilAs: 0, &s))), ("pass", pass),
            ]
            writes.append(upsert("deals", "crm_deal", from: rows.from, columns))
        }

        let leads = page.leadRows
        if !leads.isEmpty {
            var rows = UnnestRows()
            let columns: [(String, String)] = [
                ("id", try rows.column(leads.map(\.id), "text", &s)), ("title", try rows.column(leads.map(\.title), "text", &s)),
                ("person_id", try rows.column(leads.map(\.personID), "int8", nilAs: 0, &s)),
                ("org_id", try rows.column(leads.map(\.orgID), "int8", nilAs: 0, &s)),
                ("archived", try rows.column(leads.map(\.archived), "bool", &s)),
                ("updated_at", time(try rows.column(leads.map { SQL.ms($0.updatedAt) }, "int8", nilAs: 0, &s))), ("pass", pass),
            ]
            writes.append(upsert("leads", "crm_lead", from: rows.from, columns))
        }

        let users = page.userRows
        if !users.isEmpty {
            var rows = UnnestRows()
            let columns: [(String, String)] = [
                ("id", try rows.column(users.map(\.id), "int8", &s)), ("name", try rows.column(users.map(\.name), "text", &s)),
                ("email", try rows.column(users.map { $0.email.lowercased() }, "text", &s)),
                ("active", try rows.column(users.map(\.active), "bool", &s)), ("pass", pass),
            ]
            writes.append(upsert("users", "crm_user", from: rows.from, columns))
        }

        // Every data-modifying CTE runs once, to its end, whether or not the query reads it.
        let sync = putSync(page.sync, &s)
        s.sql = writes.isEmpty ? sync : "WITH " + writes.joined(separator: ",\n") + "\n" + sync
        return s
    }

    /// A CTE upserting `rows` into `table` by `id` (the first column): every other column takes
    /// the row's value, but a row's pass never goes back (see SQLiteStore's).
    private static func upsert(_ name: String, _ table: String, from: String, _ columns: [(String, String)]) -> String {
        let names = columns.map(\.0)
        return """
            \(name) AS (
              INSERT INTO \(table) (\(names.joined(separator: ", ")))
              SELECT \(columns.map(\.1).joined(separator: ", ")) FROM \(from) ORDER BY n
              ON CONFLICT (id) DO UPDATE SET \(names.dropFirst().map { $0 == "pass" ? "pass = GREATEST(\(table).pass, excluded.pass)" : "\($0) = excluded.\($0)" }.joined(separator: ", ")))
            """
    }

    /// Two CTEs that make each owner's numbers exactly `phones` (in that order): a DELETE of the
    /// numbers no longer listed and an upsert of the others (disjoint rows: no row is written
    /// twice in the statement); a number whose position is unchanged is left as it is.
    private static func phones(_ kind: CRMEntityKind, _ owners: [(id: Int, phones: [String])], _ s: inout Statement) throws -> [String] {
        let listed = owners.flatMap { owner in owner.phones.enumerated().map { (owner.id, $0.element, $0.offset) } }
        let ownerIDs = try s.bind(array: owners.map(\.id))
        let numbers = try s.bind(array: listed.map(\.1)), ids = try s.bind(array: listed.map(\.0))
        let positions = try s.bind(array: listed.map { Int64($0.2) })
        let new = "unnest(\(numbers)::text[], \(ids)::int8[], \(positions)::int8[]) WITH ORDINALITY AS t(e, o, p, n)"
        let name = kind.rawValue
        return [
            """
            \(name)_phones_gone AS (
              DELETE FROM crm_phone AS ph WHERE ph.kind = '\(name)' AND ph.owner_id = ANY(\(ownerIDs)::int8[])
                AND NOT EXISTS (SELECT 1 FROM \(new) WHERE t.e = ph.e164 AND t.o = ph.owner_id))
            """,
            """
            \(name)_phones AS (
              INSERT INTO crm_phone (e164, kind, owner_id, position)
              SELECT e, '\(name)', o, p FROM \(new) ORDER BY n
              ON CONFLICT (e164, kind, owner_id) DO UPDATE SET position = excluded.position
                WHERE crm_phone.position <> excluded.position)
            """,
        ]
    }

    enum CRMDeletion {
        case ids([Int])
        case leads([String])
        case olderThan(Int64)
    }

    /// CTEs deleting, per kind, the rows selected and their numbers, and the expression of how
    /// many rows (numbers not counted) went.
    static func crmDeletions(_ deletions: [(CRMEntityKind, CRMDeletion)], _ s: inout Statement) throws -> (ctes: [String], count: String) {
        var ctes: [String] = [], counts: [String] = []
        for (kind, deletion) in deletions {
            let condition = switch deletion {
            case .ids(let ids): "id = ANY(\(try s.bind(array: ids))::int8[])"
            case .leads(let ids): "id = ANY(\(try s.bind(array: ids))::text[])"
            case .olderThan(let pass): "pass < \(s.bind(pass))::int8"
            }
            let gone = "\(kind.rawValue)_gone"
            ctes.append("\(gone) AS (DELETE FROM \(crmTable(kind)) WHERE \(condition) RETURNING id)")
            if kind == .person || kind == .organization {
                ctes.append("""
                    \(kind.rawValue)_phones_gone AS (DELETE FROM crm_phone WHERE kind = '\(kind.rawValue)'
                      AND owner_id IN (SELECT id FROM \(gone)))
                    """)
            }
            counts.append("(SELECT count(*) FROM \(gone))")
        }
        return (ctes, "(" + counts.joined(separator: " + ") + ")::int8")
    }

    /// The upsert of a listing's state.
    static func putSync(_ state: CRMSyncState, _ s: inout Statement) -> String {
        let values = [
            "\(s.bind(state.entity.rawValue))::text", "\(s.bind(state.cursor))::text", "\(s.bind(state.full))::bool",
            "\(s.bind(state.pass))::int8", time("\(s.bind(SQL.ms(state.updatedSince)))::int8"),
            time("\(s.bind(SQL.ms(state.lastRefreshAt)))::int8"), time("\(s.bind(SQL.ms(state.lastFullPassAt)))::int8"),
        ]
        return """
            INSERT INTO crm_sync (entity, cursor, full_pass, pass, updated_since, last_refresh_at, last_full_pass_at)
            VALUES (\(values.joined(separator: ", ")))
            ON CONFLICT (entity) DO UPDATE SET cursor = excluded.cursor, full_pass = excluded.full_pass, pass = excluded.pass,
              updated_since = excluded.updated_since, last_refresh_at = excluded.last_refresh_at,
              last_full_pass_at = excluded.last_full_pass_at
            """
    }
}

/// The lookup: the number's owners by `crm_phone`'s key, the persons and organizations by id,
/// the open deals and leads through the (person_id, …) and (org_id, …) indexes, each owner's
/// numbers through `crm_phone_owner`; one row each, told apart by its first column. A named
/// prepared statement (PostgresNIO prepares it once per connection): planning this statement
/// costs more than running it.
struct PhoneCandidatesStatement: PostgresPreparedStatement {
    static let name = "callrec_phone_candidates_v5"
    static let sql = """
        WITH hit AS (SELECT kind, owner_id FROM crm_phone WHERE e164 = $1::text),
        p AS (SELECT id, name, org_id, owner_id, updated_at FROM crm_person
              WHERE id = ANY(ARRAY(SELECT owner_id FROM hit WHERE kind = 'person'))),
        o_ids AS (SELECT owner_id AS id FROM hit WHERE kind = 'organization'
                  UNION SELECT org_id FROM p WHERE org_id IS NOT NULL),
        o AS (SELECT id, name, updated_at FROM crm_organization WHERE id = ANY(ARRAY(SELECT id FROM o_ids))),
        d AS (SELECT id, title, person_id, org_id, updated_at FROM crm_deal
              WHERE person_id = ANY(ARRAY(SELECT id FROM p)) AND status = 'open'
              UNION SELECT id, title, person_id, org_id, updated_at FROM crm_deal
              WHERE org_id = ANY(ARRAY(SELECT id FROM o_ids)) AND status = 'open'),
        l AS (SELECT id, title, person_id, org_id, updated_at FROM crm_lead
              WHERE person_id = ANY(ARRAY(SELECT id FROM p)) AND NOT archived
              UNION SELECT id, title, person_id, org_id, updated_at FROM crm_lead
              WHERE org_id = ANY(ARRAY(SELECT id FROM o_ids)) AND NOT archived)
        SELECT 'person', id, NULL::text, name, org_id, owner_id, NULL::int8, \(SQL.ms("updated_at")),
               ARRAY(SELECT e164 FROM crm_phone WHERE kind = 'person' AND owner_id = p.id ORDER BY position)
        FROM p
        UNION ALL
        SELECT 'organization', id, NULL, name, NULL, NULL, NULL, \(SQL.ms("updated_at")),
               ARRAY(SELECT e164 FROM crm_phone WHERE kind = 'organization' AND owner_id = o.id ORDER BY position)
        FROM o
        UNION ALL
        SELECT 'deal', id, NULL, title, org_id, NULL, person_id, \(SQL.ms("updated_at")), NULL FROM d
        UNION ALL
        SELECT 'lead', NULL, id, title, org_id, NULL, person_id, \(SQL.ms("updated_at")), NULL FROM l
        """

    typealias Row = (String, Int64?, String?, String, Int64?, Int64?, Int64?, Int64?, [String]?)

    var e164: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(e164)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

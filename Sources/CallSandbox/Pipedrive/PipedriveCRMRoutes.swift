import Foundation
import HTTPTypes
import Hummingbird

/// The CRM as Pipedrive serves it: `GET /api/v2/persons|organizations|deals` (cursor pages),
/// `POST /api/v2/persons`, `GET /v1/leads` (offset pages) and `GET /v1/users`.
struct PipedriveCRMRoutes {
    let core: SandboxCore

    func register(on router: Router<SandboxRequestContext>) {
        router.get("/api/v2/persons") { request, _ in try await persons(request) }
        router.get("/api/v2/organizations") { request, _ in try await organizations(request) }
        router.get("/api/v2/deals") { request, _ in try await deals(request) }
        router.post("/api/v2/persons") { request, _ in try await createPerson(request) }
        for prefix in ["/v1", "/api/v1"] {
            router.get("\(prefix)/leads") { request, _ in try await leads(request) }
            router.get("\(prefix)/users") { _, _ in try await users() }
        }
    }

    private func persons(_ request: Request) async throws -> Response {
        let listing = try CRMListing.parse(queryItems(request.uri.query))
        let (rows, next) = await core.state.readCRM { $0.persons.page(listing) }
        return Self.cursorPage(rows.map(\.apiObject), next: next)
    }

    private func organizations(_ request: Request) async throws -> Response {
        let listing = try CRMListing.parse(queryItems(request.uri.query))
        let (rows, next) = await core.state.readCRM { $0.organizations.page(listing) }
        return Self.cursorPage(rows.map(\.apiObject), next: next)
    }

    /// `status` (comma separated; without it every deal but the deleted ones), `person_id`, `org_id`.
    private func deals(_ request: Request) async throws -> Response {
        let query = queryItems(request.uri.query)
        let listing = try CRMListing.parse(query)
        var statuses: Set<String> = ["open", "won", "lost"]
        if let text = query["status"] {
            let given = Set(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
            guard !given.isEmpty, given.isSubset(of: CRMDeal.statuses) else {
                throw APIError(.badRequest, "\"status\" must be one or more of [open, won, lost, deleted], comma separated.")
            }
            statuses = given
        }
        let person = try Self.identifier(query, "person_id"), organization = try Self.identifier(query, "org_id")
        let wanted = statuses
        let (rows, next) = await core.state.readCRM { crm in
            crm.deals.page(listing, candidates: crm.dealCandidates(person: person, organization: organization)) { wanted.contains($0.status ?? "open") }
        }
        return Self.cursorPage(rows.map(\.apiObject), next: next)
    }

    /// `{name, owner_id?, org_id?, phones?: [{value, primary, label}], emails?, custom_fields?}` →
    /// `{success, data: person}`.
    private func createPerson(_ request: Request) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        guard case .object(var fields)? = JSONValue.parse(Data(buffer.readableBytesView)) else {
            throw APIError(.badRequest, "Invalid JSON in the request body.")
        }
        guard case .string(let name)? = fields["name"], !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw APIError(.badRequest, "\"name\" is required and must be a non-empty string.")
        }
        for key in ["id", "add_time", "update_time"] { fields[key] = nil }
        let body = fields
        let person = try await core.state.changeCRM { crm, now in
            var person = body
            person["id"] = .int(Int64(crm.persons.maximumId + 1))
            crm.upsert(try CRMSeed.row("persons", person).get(), now: now)
            return crm.persons[crm.persons.maximumId]!
        }
        return .json(["success": true, "data": person.apiObject])
    }

    /// `start`, `limit` (≤ 500), `archived_status` (`not_archived` by default, `archived`, `all`),
    /// `person_id`, `organization_id`; v1 pagination.
    private func leads(_ request: Request) async throws -> Response {
        let query = queryItems(request.uri.query)
        var start = 0, limit = 100
        if let text = query["start"] {
            guard let value = Int(text), value >= 0 else { throw APIError(.badRequest, "\"start\" must be an integer greater than or equal to 0.") }
            start = value
        }
        if let text = query["limit"] {
            guard let value = Int(text), (1...CRMListing.maximumLimit).contains(value) else {
                throw APIError(.badRequest, "\"limit\" must be an integer from 1 to \(CRMListing.maximumLimit).")
            }
            limit = value
        }
        let archived: Bool?
        switch query["archived_status"] ?? "not_archived" {
        case "not_archived": archived = false
        case "archived": archived = true
        case "all": archived = nil
        default: throw APIError(.badRequest, "\"archived_status\" must be one of [archived, not_archived, all].")
        }
        let person = try Self.identifier(query, "person_id"), organization = try Self.identifier(query, "organization_id")
        let (first, count) = (start, limit)
        let (page, more) = await core.state.readCRM { crm in
            crm.leadPage(start: first, limit: count) { lead in
                (archived == nil || lead.isArchived == archived) && (person == nil || lead.personId == person)
                    && (organization == nil || lead.organizationId == organization)
            }
        }
        return .v1Page(page.map(\.apiObject), start: start, limit: limit, more: more)
    }

    private func users() async throws -> Response {
        let users = await core.state.readCRM { crm in crm.users.keys.sorted().map { crm.users[$0]!.apiObject } }
        return .json(["success": true, "data": .array(users)])
    }

    static func cursorPage(_ items: [JSONValue], next: CRMCursor?) -> Response {
        .json(["success": true, "data": .array(items), "additional_data": ["next_cursor": .orNull(next?.text)]])
    }

    /// A positive integer query parameter, or nil when absent.
    static func identifier(_ query: [String: String], _ name: String) throws(APIError) -> Int? {
        guard let text = query[name] else { return nil }
        guard let value = Int(text), value > 0 else { throw APIError(.badRequest, "\"\(name)\" must be a positive integer.") }
        return value
    }
}

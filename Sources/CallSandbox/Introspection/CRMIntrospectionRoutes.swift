import Foundation
import HTTPTypes
import Hummingbird

/// `/_sandbox/crm…`: seeding and changing the CRM the v2 listings serve (loopback clients only,
/// no credentials, no tokens). Times are RFC 3339; a change without `update_time` stamps the
/// sandbox's now.
///
/// - `POST /_sandbox/crm` ``CRMSeed`` `{persons, organizations, deals, leads, users}` → 200
///   `{upserted, counts}`: upserts each row by its id.
/// - `POST /_sandbox/crm/generate` ``CRMGeneration`` `{persons, organizations, deals,
///   closed_deals, leads, users, seed, region, now}` → 200 `{counts}`: replaces the CRM with a
///   generated account.
/// - `DELETE /_sandbox/crm` → 200 `{counts}`: empties it.
/// - `DELETE /_sandbox/crm/persons/{id}` → 200 `{deleted: id}` (404 when absent).
/// - `POST /_sandbox/crm/persons/{id}/merge` `{"into": id}` → 200 `{data: target person}`.
/// - `PATCH /_sandbox/crm/{persons|organizations|deals|leads|users}/{id}` `{field: value, …}` →
///   200 `{data: row}`: changes the fields (seed form; null clears), bumps `update_time`.
/// - `GET /_sandbox/crm/stats` → ``SandboxCRMCounts``.
struct CRMIntrospectionRoutes {
    let core: SandboxCore

    /// A seed of 50,000 persons is some 15 MB.
    static let maximumSeedBytes = 512 << 20

    func register(on router: Router<SandboxRequestContext>) {
        router.post("/_sandbox/crm") { request, _ in
            let buffer = try await request.body.collect(upTo: Self.maximumSeedBytes)
            let seed = try CRMSeed.read(Data(buffer.readableBytesView)).mapError { APIError(.badRequest, $0.message) }.get()
            let counts = await core.state.changeCRM { crm, now in
                crm.upsert(seed, now: now)
                return crm.counts
            }
            let upserted: JSONValue = [
                "persons": .int(Int64(seed.persons?.count ?? 0)), "organizations": .int(Int64(seed.organizations?.count ?? 0)),
                "deals": .int(Int64(seed.deals?.count ?? 0)), "leads": .int(Int64(seed.leads?.count ?? 0)), "users": .int(Int64(seed.users?.count ?? 0)),
            ]
            return Response.json(["upserted": upserted, "counts": try Self.json(counts)])
        }
        router.post("/_sandbox/crm/generate") { request, _ in
            let generation = try CRMGeneration.parse(try await IntrospectionRoutes.jsonBody(request))
            let counts = await core.state.changeCRM { crm, now in
                crm.removeAll()
                crm.upsert(generation.make(now: Date(timeIntervalSince1970: TimeInterval(now.seconds))), now: now)
                return crm.counts
            }
            return Response.json(["counts": try Self.json(counts)])
        }
        router.delete("/_sandbox/crm") { _, _ in
            let counts = await core.state.changeCRM { crm, _ in
                crm.removeAll()
                return crm.counts
            }
            return Response.json(["counts": try Self.json(counts)])
        }
        router.get("/_sandbox/crm/stats") { _, _ in
            Response.json(try Self.json(await core.state.readCRM { $0.counts }))
        }
        router.delete("/_sandbox/crm/persons/:id") { _, context in
            let id = try Self.number(context)
            try await core.state.changeCRM { crm, _ in try crm.deletePerson(id) }
            return Response.json(["deleted": .int(Int64(id))])
        }
        router.post("/_sandbox/crm/persons/:id/merge") { request, context in
            let id = try Self.number(context)
            guard case .int(let into)? = try await IntrospectionRoutes.jsonBody(request)["into"], into > 0 else {
                throw APIError(.badRequest, "into: the id of the person to merge into is required")
            }
            let target = try await core.state.changeCRM { crm, now in
                try crm.mergePerson(id, into: Int(into), now: now)
                return crm.persons[Int(into)]!.apiObject
            }
            return Response.json(["data": target])
        }
        for kind in CRMStore.Kind.allCases {
            router.patch("/_sandbox/crm/\(kind.rawValue)/:id") { request, context in try await patch(kind, request, context) }
        }
    }

    private func patch(_ kind: CRMStore.Kind, _ request: Request, _ context: SandboxRequestContext) async throws -> Response {
            let id = percentDecoded(context.parameters.get("id") ?? "")
            guard case .object(let patch) = try await IntrospectionRoutes.jsonBody(request) else {
                throw APIError(.badRequest, "the body must be a JSON object")
            }
            let row = try await core.state.changeCRM { crm, now in
                try crm.patch(kind, id: id, patch, now: now)
                return crm.apiObject(kind, id: id)
            }
            return Response.json(["data": row])
    }

    static func number(_ context: SandboxRequestContext) throws(APIError) -> Int {
        guard let text = context.parameters.get("id"), let id = Int(text), id > 0 else { throw APIError(.badRequest, "the id must be a positive integer") }
        return id
    }

    static func json(_ value: some Encodable) throws -> JSONValue {
        JSONValue.parse(try SnakeCaseJSON.encoder().encode(value)) ?? nil
    }
}

extension CRMStore {
    /// The row's API object (null when absent).
    func apiObject(_ kind: Kind, id: String) -> JSONValue {
        let number = Int(id) ?? -1
        return switch kind {
        case .persons: persons[number]?.apiObject ?? nil
        case .organizations: organizations[number]?.apiObject ?? nil
        case .deals: deals[number]?.apiObject ?? nil
        case .leads: leads[id.lowercased()]?.apiObject ?? nil
        case .users: users[number]?.apiObject ?? nil
        }
    }
}

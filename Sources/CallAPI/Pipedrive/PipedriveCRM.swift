public import Foundation
import NIOHTTP1

// The CRM listings the phone index is built from (issue 17; research/sources-and-matching.md §3):
// persons, organizations and deals through API v2 (cursor pages of up to 500, `updated_since`,
// 10 tokens a page), leads and users through v1 (20 tokens a page). Each goes through the same
// limiter, and so the same daily budget, as the call logs.

/// A phone or e-mail entry of a person as Pipedrive lists it.
public struct PipedriveContactValue: Sendable, Hashable {
    public var value: String
    public var primary: Bool
    public var label: String?

    public init(value: String, primary: Bool = false, label: String? = nil) {
        self.value = value
        self.primary = primary
        self.label = label
    }
}

/// A person of `GET /api/v2/persons`.
public struct PipedrivePerson: Sendable, Hashable {
    public var id: Int
    public var name: String
    public var orgID: Int?
    public var ownerID: Int?
    /// As the CRM holds them (any form): the primary first.
    public var phones: [PipedriveContactValue]
    public var updateTime: Date?
}

/// An organization of `GET /api/v2/organizations`, with its custom fields as text (a number kept
/// on the organization lives in one).
public struct PipedriveOrganization: Sendable, Hashable {
    public var id: Int
    public var name: String
    public var customFields: [String: String]
    public var updateTime: Date?
}

/// A deal of `GET /api/v2/deals`.
public struct PipedriveDeal: Sendable, Hashable {
    public var id: Int
    public var title: String
    public var personID: Int?
    public var orgID: Int?
    public var status: String
    public var updateTime: Date?
}

/// A lead of `GET /v1/leads`.
public struct PipedriveLead: Sendable, Hashable {
    public var id: String
    public var title: String
    public var personID: Int?
    public var orgID: Int?
    public var archived: Bool
    public var updateTime: Date?
}

/// A user of `GET /v1/users`.
public struct PipedriveUser: Sendable, Hashable {
    public var id: Int
    public var name: String
    public var email: String
    public var active: Bool
}

/// One page of a cursor listing: its items and the next page's cursor (nil: the last page).
public struct CursorPage<Item: Sendable>: Sendable {
    public var items: [Item]
    public var nextCursor: String?
    /// Items that were there but could not be read (each says which and why); the page's other
    /// items are kept.
    public var skipped: [String]
}

/// One page of an offset listing (v1).
public struct OffsetPage<Item: Sendable>: Sendable {
    public var items: [Item]
    /// The next page's `start`; nil: the last page.
    public var nextStart: Int?
    public var skipped: [String]
}

extension PipedriveClient {
    /// The largest page the listings ask for.
    public static let crmPageLimit = 500

    /// One page of `GET /api/v2/persons`, by id, or by update time when `updatedSince` is given
    /// (only persons updated at or after it).
    public func persons(cursor: String?, updatedSince: Date? = nil, limit: Int = crmPageLimit) async throws -> CursorPage<PipedrivePerson> {
        let object = try await listV2("/api/v2/persons", cursor: cursor, updatedSince: updatedSince, limit: limit, extra: [])
        return Self.cursorPage(object, what: "person", given: cursor) { item in
            guard let id = Self.int(item["id"]) else { return nil }
            let phones = (item["phones"] as? [Any] ?? []).compactMap { entry -> PipedriveContactValue? in
                guard let entry = entry as? [String: Any], let value = entry["value"] as? String,
                      !value.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
                return PipedriveContactValue(value: value, primary: entry["primary"] as? Bool ?? false, label: entry["label"] as? String)
            }
            return PipedrivePerson(id: id, name: item["name"] as? String ?? "", orgID: Self.int(item["org_id"]), ownerID: Self.int(item["owner_id"]),
                                   phones: phones.filter(\.primary) + phones.filter { !$0.primary }, updateTime: Self.time(item["update_time"]))
        }
    }

    /// One page of `GET /api/v2/organizations`.
    public func organizations(cursor: String?, updatedSince: Date? = nil, limit: Int = crmPageLimit) async throws -> CursorPage<PipedriveOrganization> {
        let object = try await listV2("/api/v2/organizations", cursor: cursor, updatedSince: updatedSince, limit: limit, extra: [])
        return Self.cursorPage(object, what: "organization", given: cursor) { item in
            guard let id = Self.int(item["id"]) else { return nil }
            var custom: [String: String] = [:]
            for (key, value) in item["custom_fields"] as? [String: Any] ?? [:] {
                switch value {
                case let text as String: custom[key] = text
                case let number as NSNumber: custom[key] = number.stringValue
                case let object as [String: Any]: if let text = object["value"] as? String { custom[key] = text }
                default: break
                }
            }
            return PipedriveOrganization(id: id, name: item["name"] as? String ?? "", customFields: custom, updateTime: Self.time(item["update_time"]))
        }
    }

    /// One page of `GET /api/v2/deals`; `status` one of open, won, lost, deleted (nil: open,
    /// won and lost, as the API lists by default).
    public func deals(status: String?, cursor: String?, updatedSince: Date? = nil, limit: Int = crmPageLimit) async throws -> CursorPage<PipedriveDeal> {
        let object = try await listV2("/api/v2/deals", cursor: cursor, updatedSince: updatedSince, limit: limit,
                                      extra: status.map { [URLQueryItem(name: "status", value: $0)] } ?? [])
        return Self.cursorPage(object, what: "deal", given: cursor) { item in
            guard let id = Self.int(item["id"]) else { return nil }
            return PipedriveDeal(id: id, title: item["title"] as? String ?? "", personID: Self.int(item["person_id"]), orgID: Self.int(item["org_id"]),
                                 status: item["status"] as? String ?? "open", updateTime: Self.time(item["update_time"]))
        }
    }

    /// One page of `GET /v1/leads` (not archived ones).
    public func leads(start: Int, limit: Int = crmPageLimit) async throws -> OffsetPage<PipedriveLead> {
        let limit = min(max(limit, 1), Self.crmPageLimit)
        let response = try await perform(.list, method: .GET, path: "/leads?start=\(max(start, 0))&limit=\(limit)&archived_status=not_archived",
                                         idempotent: true)
        let object = try Self.listing(response, "/v1/leads")
        var items: [PipedriveLead] = [], skipped: [String] = []
        for (n, entry) in (object["data"] as? [Any] ?? []).enumerated() {
            guard let item = entry as? [String: Any], let id = item["id"] as? String, !id.isEmpty else {
                skipped.append("lead \(start + n): no id")
                continue
            }
            items.append(PipedriveLead(id: id, title: item["title"] as? String ?? "", personID: Self.int(item["person_id"]),
                                       orgID: Self.int(item["organization_id"]), archived: item["is_archived"] as? Bool ?? false,
                                       updateTime: Self.time(item["update_time"])))
        }
        let pagination = ((object["additional_data"] as? [String: Any])?["pagination"] as? [String: Any]) ?? [:]
        let more = (pagination["more_items_in_collection"] as? Bool) ?? false
        let next = Self.int(pagination["next_start"]).flatMap { $0 > start ? $0 : nil } ?? start + items.count + skipped.count
        return OffsetPage(items: items, nextStart: more && next > start ? next : nil, skipped: skipped)
    }

    /// `GET /v1/users`: every user of the company (one page).
    public func users() async throws -> [PipedriveUser] {
        let response = try await perform(.list, method: .GET, path: "/users", idempotent: true)
        return (try Self.listing(response, "/v1/users")["data"] as? [Any] ?? []).compactMap { entry in
            guard let item = entry as? [String: Any], let id = Self.int(item["id"]) else { return nil }
            return PipedriveUser(id: id, name: item["name"] as? String ?? "", email: (item["email"] as? String ?? "").lowercased(),
                                 active: item["active_flag"] as? Bool ?? true)
        }
    }

    /// `POST /api/v2/persons`: a person for a number the CRM did not know (the option
    /// `matching.unknown: create_person`).
    public func createPerson(name: String, phone: String, ownerID: Int? = nil) async throws -> PipedrivePerson {
        var body: [String: Any] = ["name": name, "phones": [["value": phone, "primary": true, "label": "work"]]]
        if let ownerID { body["owner_id"] = ownerID }
        let json = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        let response = try await perform(.addV2, method: .POST, path: "/api/v2/persons", json: json, idempotent: false)
        guard let item = (response.json as? [String: Any])?["data"] as? [String: Any], let id = Self.int(item["id"]) else {
            throw APIError(.unknownOutcome, api: .pipedrive, status: response.status, "POST /api/v2/persons answered without a person id")
        }
        return PipedrivePerson(id: id, name: item["name"] as? String ?? name, orgID: Self.int(item["org_id"]), ownerID: Self.int(item["owner_id"]),
                               phones: [PipedriveContactValue(value: phone, primary: true, label: "work")], updateTime: Self.time(item["update_time"]))
    }

    // MARK: - Reading

    private func listV2(_ path: String, cursor: String?, updatedSince: Date?, limit: Int, extra: [URLQueryItem]) async throws -> [String: Any] {
        var query = [URLQueryItem(name: "limit", value: String(min(max(limit, 1), Self.crmPageLimit)))]
        if let cursor { query.append(URLQueryItem(name: "cursor", value: cursor)) }
        if let updatedSince {
            query.append(URLQueryItem(name: "updated_since", value: Self.rfc3339(updatedSince)))
            query.append(URLQueryItem(name: "sort_by", value: "update_time"))
        }
        query += extra
        var components = URLComponents()
        components.queryItems = query
        // `+` of a time zone must travel encoded.
        let encoded = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let response = try await perform(.listV2, method: .GET, path: path + "?" + encoded, idempotent: true)
        return try Self.listing(response, path)
    }

    /// A listing's answer: an object with a `data` array, else a transient error (a proxy's page,
    /// a cut body). Taken as an empty last page, it would end a full pass early and its sweep
    /// would remove every row not listed yet.
    static func listing(_ response: APIResponse, _ path: String) throws -> [String: Any] {
        guard let object = response.json as? [String: Any], object["data"] is [Any] || object["data"] is NSNull else {
            throw APIError(.transient, api: .pipedrive, status: response.status, "GET \(path): the answer is not a listing (no data array)")
        }
        return object
    }

    /// `given`: the cursor the page was asked with (a server that hands it back again ends the listing).
    private static func cursorPage<Item>(_ object: [String: Any], what: String, given: String?, _ read: ([String: Any]) -> Item?) -> CursorPage<Item> {
        var items: [Item] = [], skipped: [String] = []
        for (n, entry) in (object["data"] as? [Any] ?? []).enumerated() {
            if let item = entry as? [String: Any], let value = read(item) {
                items.append(value)
            } else {
                skipped.append("\(what) #\(n + 1) of the page: no numeric id")
            }
        }
        let next = (object["additional_data"] as? [String: Any])?["next_cursor"] as? String
        return CursorPage(items: items, nextCursor: next.flatMap { $0.isEmpty || $0 == given ? nil : $0 }, skipped: skipped)
    }

    /// An id as the API gives it: a number, or (v1 relations) an object with `value` or `id`.
    static func int(_ value: Any?) -> Int? {
        switch value {
        case let number as NSNumber: number.intValue
        case let text as String: Int(text)
        case let object as [String: Any]: int(object["value"] ?? object["id"])
        default: nil
        }
    }

    /// RFC 3339 (v2), or `YYYY-MM-DD HH:MM:SS` in UTC (v1).
    static func time(_ value: Any?) -> Date? {
        guard let text = value as? String, !text.isEmpty else { return nil }
        if let date = try? Date(text, strategy: .iso8601) { return date }
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? fractional.parse(text) { return date }
        return CallLogDraft.parseTime(text)
    }

    static func rfc3339(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!))
    }
}

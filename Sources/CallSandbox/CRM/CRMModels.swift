import CallSupport
public import Foundation
import HTTPTypes

/// A CRM time in whole seconds (Pipedrive keeps seconds): RFC 3339 `2026-12-07T10:00:00Z` in the
/// seed, the state file and the v2 answers. Reads RFC 3339 with or without fractional seconds and
/// with an offset, and `YYYY-MM-DD HH:MM:SS` (UTC, the v1 form).
struct CRMTime: Codable, Hashable, Comparable, Sendable {
    /// Seconds since 1970 (UTC).
    var seconds: Int64

    init(seconds: Int64) { self.seconds = seconds }

    /// `date`, truncated to its second.
    init(_ date: Date) { seconds = Int64(date.timeIntervalSince1970.rounded(.down)) }

    static func < (a: CRMTime, b: CRMTime) -> Bool { a.seconds < b.seconds }

    /// `2026-12-07T10:00:00Z`.
    var text: String {
        let (days, second) = CivilDays.split(seconds: Int(seconds))
        let (year, month, day) = CivilDays.date(days: days)
        return String(format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ldZ", year, month, day, second / 3600, second / 60 % 60, second % 60)
    }

    /// `2026-12-07T10:00:00.000Z` (the v1 answers' form).
    var textWithMilliseconds: String { String(text.dropLast()) + ".000Z" }

    /// Nil when `text` is none of the accepted forms.
    static func parse(_ text: String) -> CRMTime? {
        if let fast = parseUTC(text) { return fast }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return CRMTime(date) }
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return CRMTime(date) }
        return nil
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` and `YYYY-MM-DD HH:MM:SS` without a formatter (a 50,000-person state
    /// file holds 100,000 of them).
    private static func parseUTC(_ text: String) -> CRMTime? {
        let bytes = Array(text.utf8)
        guard bytes.count == 19 || (bytes.count == 20 && bytes[19] == UInt8(ascii: "Z")), bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
              let normalised = CallLogDraft.normaliseTime(String(decoding: bytes.prefix(19), as: UTF8.self))
        else { return nil }
        let n = Array(normalised.utf8)
        func number(_ range: Range<Int>) -> Int { range.reduce(0) { $0 * 10 + Int(n[$1] - UInt8(ascii: "0")) } }
        let days = CivilDays.days(year: number(0..<4), month: number(5..<7), day: number(8..<10))
        return CRMTime(seconds: Int64(days * 86_400 + number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19)))
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let time = Self.parse(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "\"\(text)\" is not an RFC 3339 time such as 2026-12-07T10:00:00Z")
        }
        self = time
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}

/// A phone number or an e-mail address of a person: `{value, primary, label}`. A seed may give a
/// plain string (primary when it is the first, label `work`).
struct CRMContactValue: Codable, Hashable, Sendable {
    var value: String
    var primary: Bool?
    var label: String?

    init(value: String, primary: Bool, label: String = "work") {
        self.value = value
        self.primary = primary
        self.label = label
    }

    init(from decoder: any Decoder) throws {
        if let text = try? decoder.singleValueContainer().decode(String.self) {
            value = text
            return
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        value = try container.decode(String.self, forKey: .value)
        primary = try container.decodeIfPresent(Bool.self, forKey: .primary)
        label = try container.decodeIfPresent(String.self, forKey: .label)
    }

    var apiObject: JSONValue { ["value": .string(value), "primary": .bool(primary ?? false), "label": .orNull(label)] }

    /// The first of `values` without a `primary` becomes primary when none is; labels default to `work`.
    static func normalised(_ values: [CRMContactValue]) -> [CRMContactValue] {
        var values = values
        let hasPrimary = values.contains { $0.primary == true }
        for index in values.indices {
            if values[index].primary == nil { values[index].primary = !hasPrimary && index == 0 }
            if values[index].label == nil { values[index].label = "work" }
        }
        return values
    }
}

/// A row with add and update times (set on every stored row: ``CRMStore`` fills missing ones).
protocol CRMTimed: Equatable {
    var updateTime: CRMTime? { get set }
    var addTime: CRMTime? { get set }
}

extension CRMTimed {
    /// Equal but for the update time.
    func same(as other: Self) -> Bool {
        var copy = self
        copy.updateTime = other.updateTime
        return copy == other
    }
}

/// A row of a cursor-paged table: an integer id and an update time.
protocol CRMRow: CRMTimed, Codable, Sendable {
    var id: Int { get }
    var apiObject: JSONValue { get }
}

struct CRMPerson: CRMRow, Equatable {
    var id: Int
    var name: String
    var ownerId: Int?
    var orgId: Int?
    var phones: [CRMContactValue]?
    var emails: [CRMContactValue]?
    var addTime: CRMTime?
    var updateTime: CRMTime?
    var customFields: [String: JSONValue]?

    enum CodingKeys: String, CodingKey {
        case id, name, phones, emails
        case ownerId = "owner_id", orgId = "org_id", addTime = "add_time", updateTime = "update_time", customFields = "custom_fields"
    }

    /// `GET /api/v2/persons`' item.
    var apiObject: JSONValue {
        [
            "id": .int(Int64(id)), "name": .string(name), "owner_id": .orNull(ownerId), "org_id": .orNull(orgId),
            "phones": .array((phones ?? []).map(\.apiObject)), "emails": .array((emails ?? []).map(\.apiObject)),
            "add_time": .orNull(addTime?.text), "update_time": .orNull(updateTime?.text),
            "custom_fields": .object(customFields ?? [:]), "is_deleted": false,
        ]
    }
}

struct CRMOrganization: CRMRow, Equatable {
    var id: Int
    var name: String
    var ownerId: Int?
    var addTime: CRMTime?
    var updateTime: CRMTime?
    var customFields: [String: JSONValue]?

    enum CodingKeys: String, CodingKey {
        case id, name
        case ownerId = "owner_id", addTime = "add_time", updateTime = "update_time", customFields = "custom_fields"
    }

    var apiObject: JSONValue {
        [
            "id": .int(Int64(id)), "name": .string(name), "owner_id": .orNull(ownerId),
            "add_time": .orNull(addTime?.text), "update_time": .orNull(updateTime?.text),
            "custom_fields": .object(customFields ?? [:]), "is_deleted": false,
        ]
    }
}

struct CRMDeal: CRMRow, Equatable {
    static let statuses = ["open", "won", "lost", "deleted"]

    var id: Int
    var title: String
    var personId: Int?
    var orgId: Int?
    var ownerId: Int?
    /// open, won, lost or deleted.
    var status: String?
    var addTime: CRMTime?
    var updateTime: CRMTime?

    enum CodingKeys: String, CodingKey {
        case id, title, status
        case personId = "person_id", orgId = "org_id", ownerId = "owner_id", addTime = "add_time", updateTime = "update_time"
    }

    var apiObject: JSONValue {
        [
            "id": .int(Int64(id)), "title": .string(title), "person_id": .orNull(personId), "org_id": .orNull(orgId),
            "owner_id": .orNull(ownerId), "status": .string(status ?? "open"), "is_deleted": .bool(status == "deleted"),
            "add_time": .orNull(addTime?.text), "update_time": .orNull(updateTime?.text),
        ]
    }
}

struct CRMLead: CRMTimed, Codable, Sendable {
    /// A lowercase UUID.
    var id: String
    var title: String
    var personId: Int?
    var organizationId: Int?
    var ownerId: Int?
    var isArchived: Bool?
    var addTime: CRMTime?
    var updateTime: CRMTime?

    enum CodingKeys: String, CodingKey {
        case id, title
        case personId = "person_id", organizationId = "organization_id", ownerId = "owner_id", isArchived = "is_archived"
        case addTime = "add_time", updateTime = "update_time"
    }

    /// `GET /v1/leads`' item (v1 times: `…T10:00:00.000Z`).
    var apiObject: JSONValue {
        [
            "id": .string(id), "title": .string(title), "person_id": .orNull(personId), "organization_id": .orNull(organizationId),
            "owner_id": .orNull(ownerId), "is_archived": .bool(isArchived ?? false),
            "add_time": .orNull(addTime?.textWithMilliseconds), "update_time": .orNull(updateTime?.textWithMilliseconds),
        ]
    }
}

struct CRMUser: Codable, Sendable, Equatable {
    var id: Int
    var name: String
    var email: String
    var activeFlag: Bool?

    enum CodingKeys: String, CodingKey {
        case id, name, email
        case activeFlag = "active_flag"
    }

    var apiObject: JSONValue {
        ["id": .int(Int64(id)), "name": .string(name), "email": .string(email), "active_flag": .bool(activeFlag ?? true)]
    }
}

/// The CRM rows of `POST /_sandbox/crm`, `callrec sandbox --seed FILE` and the state file:
/// `{"persons": […], "organizations": […], "deals": […], "leads": […], "users": […]}`, each
/// optional, each row upserted by its `id` (required; a UUID for leads). A row without
/// `update_time` gets the sandbox's now.
public struct CRMSeed: Codable, Sendable {
    var persons: [CRMPerson]?
    var organizations: [CRMOrganization]?
    var deals: [CRMDeal]?
    var leads: [CRMLead]?
    var users: [CRMUser]?

    init(persons: [CRMPerson]? = nil, organizations: [CRMOrganization]? = nil, deals: [CRMDeal]? = nil, leads: [CRMLead]? = nil,
         users: [CRMUser]? = nil) {
        self.persons = persons
        self.organizations = organizations
        self.deals = deals
        self.leads = leads
        self.users = users
    }

    /// Rows in the seed.
    public var count: Int {
        (persons?.count ?? 0) + (organizations?.count ?? 0) + (deals?.count ?? 0) + (leads?.count ?? 0) + (users?.count ?? 0)
    }

    /// Reads and checks a seed document.
    /// - Throws: ``SandboxError`` `.invalidSeed` whose message names the field and the reason
    ///   (`persons[3].phones[0].value: expected a string`).
    public static func decode(_ data: Data) throws(SandboxError) -> CRMSeed {
        try read(data).get()
    }

    /// ``decode(_:)`` without throwing.
    static func read(_ data: Data) -> Result<CRMSeed, SandboxError> {
        Result { () throws(SandboxError) -> CRMSeed in try parse(data) }
    }

    /// One row in the seed's form, e.g. `{"persons": [row]}`; a bad field is a 400 naming it
    /// without the `persons[0].` prefix.
    static func row(_ kind: String, _ fields: [String: JSONValue]) -> Result<CRMSeed, APIError> {
        read(JSONValue.object([kind: [.object(fields)]]).encoded()).mapError { error in
            APIError(.badRequest, error.message.replacingOccurrences(of: "\(kind)[0].", with: ""))
        }
    }

    private static func parse(_ data: Data) throws(SandboxError) -> CRMSeed {
        let seed: CRMSeed
        do {
            seed = try JSONDecoder().decode(CRMSeed.self, from: data)
        } catch let error as DecodingError {
            throw SandboxError(.invalidSeed, describe(error))
        } catch {
            throw SandboxError(.invalidSeed, "not a JSON object: \(error)")
        }
        try seed.validate()
        return seed
    }

    /// The checks JSON types cannot express: positive ids, UUIDs, names, deal statuses.
    func validate() throws(SandboxError) {
        func bad(_ field: String, _ reason: String) -> SandboxError { SandboxError(.invalidSeed, "\(field): \(reason)") }
        func check(_ kind: String, _ ids: [Int], names: [String]) throws(SandboxError) {
            var seen = Set<Int>()
            for (index, id) in ids.enumerated() {
                guard id > 0 else { throw bad("\(kind)[\(index)].id", "must be a positive integer") }
                guard seen.insert(id).inserted else { throw bad("\(kind)[\(index)].id", "\(id) appears twice") }
                guard !names[index].trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw bad("\(kind)[\(index)].\(kind == "deals" ? "title" : "name")", "must not be empty")
                }
            }
        }
        try check("persons", persons?.map(\.id) ?? [], names: persons?.map(\.name) ?? [])
        try check("organizations", organizations?.map(\.id) ?? [], names: organizations?.map(\.name) ?? [])
        try check("deals", deals?.map(\.id) ?? [], names: deals?.map(\.title) ?? [])
        try check("users", users?.map(\.id) ?? [], names: users?.map(\.name) ?? [])
        for (index, person) in (persons ?? []).enumerated() {
            for (field, values) in [("phones", person.phones), ("emails", person.emails)] {
                for (position, value) in (values ?? []).enumerated() where value.value.trimmingCharacters(in: .whitespaces).isEmpty {
                    throw bad("persons[\(index)].\(field)[\(position)].value", "must not be empty")
                }
            }
        }
        for (index, deal) in (deals ?? []).enumerated() {
            if let status = deal.status, !CRMDeal.statuses.contains(status) {
                throw bad("deals[\(index)].status", "must be one of \(CRMDeal.statuses.joined(separator: ", ")), not \"\(status)\"")
            }
        }
        var leadIds = Set<String>()
        for (index, lead) in (leads ?? []).enumerated() {
            guard UUID(uuidString: lead.id) != nil else { throw bad("leads[\(index)].id", "must be a UUID") }
            guard leadIds.insert(lead.id.lowercased()).inserted else { throw bad("leads[\(index)].id", "\(lead.id) appears twice") }
            guard !lead.title.trimmingCharacters(in: .whitespaces).isEmpty else { throw bad("leads[\(index)].title", "must not be empty") }
        }
    }

    /// `persons[3].phones[0].value: expected a string`.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "the document" : text
        }
        func typeName(_ type: Any.Type) -> String {
            switch type {
            case is String.Type: "a string"
            case is Int.Type, is Int64.Type: "an integer"
            case is Bool.Type: "true or false"
            case is [Any].Type: "an array"
            default: "an object"
            }
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(typeName(type)), not null"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): is required"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON: \(context.debugDescription)" : "\(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

public import Foundation
import HTTPTypes

/// A large, realistic account for benchmarks (`POST /_sandbox/crm/generate`): the same request
/// gives the same persons, numbers, deals and leads (times too when `now` is given).
///
/// Phones come in the mixed forms a real account holds (E.164, international with separators,
/// national with the trunk 0, `+49 (0)…`, `0049 …`, parentheses and dashes); about one person in
/// eight with an organization has the organization's switchboard number instead of an own one;
/// about one person in five has no organization; one in twenty has no phone. Every other number
/// is distinct. Organizations carry their switchboard in ``organizationPhoneField`` of
/// `custom_fields`.
public struct CRMGeneration: Sendable, Equatable {
    /// The `custom_fields` key of an organization's switchboard number.
    public static let organizationPhoneField = "0f4c1e2d3b5a69788796a5b4c3d2e1f00f1e2d3c"
    public static let regions = ["DE", "US", "GB"]

    public var persons = 0
    public var organizations = 0
    /// Open deals.
    public var deals = 0
    /// Won and lost deals besides the open ones.
    public var closedDeals = 0
    public var leads = 0
    public var users = 0
    public var seed: UInt64 = 1
    /// `DE`, `US` or `GB`: the numbers' country.
    public var region = "DE"
    /// The newest update time; nil: the sandbox's now.
    public var now: Date?

    public init(persons: Int = 0, organizations: Int = 0, deals: Int = 0, closedDeals: Int = 0, leads: Int = 0, users: Int = 0,
                seed: UInt64 = 1, region: String = "DE", now: Date? = nil) {
        self.persons = persons
        self.organizations = organizations
        self.deals = deals
        self.closedDeals = closedDeals
        self.leads = leads
        self.users = users
        self.seed = seed
        self.region = region
        self.now = now
    }

    /// Reads `{"persons":50000,"organizations":N,"deals":20000,"closed_deals":N,"leads":N,"users":N,
    /// "seed":S,"region":"DE","now":"2026-12-07T10:00:00Z"}` (every member optional).
    static func parse(_ body: JSONValue) throws(APIError) -> CRMGeneration {
        var generation = CRMGeneration()
        let counts: [(String, WritableKeyPath<CRMGeneration, Int>)] = [
            ("persons", \.persons), ("organizations", \.organizations), ("deals", \.deals), ("closed_deals", \.closedDeals),
            ("leads", \.leads), ("users", \.users),
        ]
        for (name, keyPath) in counts {
            switch body[name] {
            case nil, .null?: break
            case .int(let value)? where (0...1_000_000).contains(value): generation[keyPath: keyPath] = Int(value)
            default: throw APIError(.badRequest, "\(name): must be an integer from 0 to 1000000")
            }
        }
        switch body["seed"] {
        case nil, .null?: break
        case .int(let value)?: generation.seed = UInt64(bitPattern: value)
        default: throw APIError(.badRequest, "seed: must be an integer")
        }
        switch body["region"] {
        case nil, .null?: break
        case .string(let region)? where regions.contains(region.uppercased()): generation.region = region.uppercased()
        default: throw APIError(.badRequest, "region: must be one of \(regions.joined(separator: ", "))")
        }
        switch body["now"] {
        case nil, .null?: break
        case .string(let text)?:
            guard let time = CRMTime.parse(text) else { throw APIError(.badRequest, "now: must be an RFC 3339 time") }
            generation.now = Date(timeIntervalSince1970: TimeInterval(time.seconds))
        default: throw APIError(.badRequest, "now: must be an RFC 3339 time")
        }
        return generation
    }

    /// The account, as a seed.
    func make(now: Date) -> CRMSeed {
        var random = SeededRandom(seed: seed)
        let plan = NumberPlan.of(region)
        let newest = CRMTime(self.now ?? now).seconds
        var numbers = 0
        func nextNumber(mobile: Bool) -> PhoneParts {
            numbers += 1
            return plan.number(index: numbers, mobile: mobile, random: &random)
        }
        func times() -> (CRMTime, CRMTime) {
            let added = newest - Int64(random.below(365 * 86_400))
            return (CRMTime(seconds: added), CRMTime(seconds: added + Int64(random.below(Int(newest - added) + 1))))
        }
        func pick(_ names: [String]) -> String { names[random.below(names.count)] }

        let users: [CRMUser] = (0..<self.users).map { index in
            let first = pick(Names.first), last = pick(Names.last)
            return CRMUser(id: index + 1, name: "\(first) \(last)", email: Names.ascii("\(first).\(last)\(index + 1)@example.com"),
                           activeFlag: index % 10 != 9)
        }
        func owner() -> Int? { users.isEmpty ? nil : users[random.below(users.count)].id }

        var switchboards: [PhoneParts] = []
        let organizations: [CRMOrganization] = (0..<self.organizations).map { index in
            let (added, updated) = times()
            let switchboard = nextNumber(mobile: false)
            switchboards.append(switchboard)
            return CRMOrganization(id: index + 1, name: "\(pick(Names.last)) \(pick(plan.companySuffixes))", ownerId: owner(), addTime: added,
                                   updateTime: updated,
                                   customFields: [Self.organizationPhoneField: .string(switchboard.formatted(random.below(PhoneParts.formats)))])
        }

        let persons: [CRMPerson] = (0..<self.persons).map { index in
            let first = pick(Names.first), last = pick(Names.last)
            let orgId = organizations.isEmpty || random.below(5) == 0 ? nil : random.below(organizations.count) + 1
            var phones: [CRMContactValue] = []
            let shape = random.below(20)
            if shape > 0 {
                if let orgId, random.below(8) == 0 {
                    phones.append(CRMContactValue(value: switchboards[orgId - 1].formatted(random.below(PhoneParts.formats)), primary: true))
                } else {
                    phones.append(CRMContactValue(value: nextNumber(mobile: random.below(3) == 0).formatted(random.below(PhoneParts.formats)), primary: true))
                }
                if shape > 14 {
                    phones.append(CRMContactValue(value: nextNumber(mobile: true).formatted(random.below(PhoneParts.formats)), primary: false, label: "mobile"))
                }
            }
            let emails = random.below(10) < 7 ? [CRMContactValue(value: Names.ascii("\(first).\(last).\(index + 1)@example.org"), primary: true)] : []
            let (added, updated) = times()
            return CRMPerson(id: index + 1, name: "\(first) \(last)", ownerId: owner(), orgId: orgId, phones: phones, emails: emails,
                             addTime: added, updateTime: updated, customFields: [:])
        }

        let products = ["Renewal", "Upgrade", "New licence", "Support plan", "Pilot", "Expansion", "Hardware"]
        let deals: [CRMDeal] = (0..<(self.deals + closedDeals)).map { index in
            let person = persons.isEmpty || random.below(10) == 0 ? nil : persons[random.below(persons.count)]
            let orgId = person?.orgId ?? (organizations.isEmpty ? nil : random.below(organizations.count) + 1)
            let status = index < self.deals ? "open" : random.below(2) == 0 ? "won" : "lost"
            let (added, updated) = times()
            let name = person?.name ?? orgId.map { organizations[$0 - 1].name } ?? "Prospect"
            return CRMDeal(id: index + 1, title: "\(name) – \(pick(products))", personId: person?.id, orgId: orgId, ownerId: owner(),
                           status: status, addTime: added, updateTime: updated)
        }

        let leads: [CRMLead] = (0..<self.leads).map { _ in
            let person = persons.isEmpty ? nil : persons[random.below(persons.count)]
            let (added, updated) = times()
            return CRMLead(id: random.uuid(), title: "\(person?.name ?? "Unknown") lead", personId: person?.id, organizationId: person?.orgId,
                           ownerId: owner(), isArchived: random.below(10) == 0, addTime: added, updateTime: updated)
        }
        return CRMSeed(persons: persons, organizations: organizations, deals: deals, leads: leads, users: users)
    }
}

/// A number's parts, written in one of several forms people type.
struct PhoneParts {
    var countryCode: String
    /// `0` in most of Europe, empty in NANP.
    var trunk: String
    var area: String
    var subscriber: String

    static let formats = 9

    func formatted(_ form: Int) -> String {
        let head = subscriber.prefix(3), tail = subscriber.dropFirst(3)
        switch form {
        case 0: return "+\(countryCode)\(area)\(subscriber)"
        case 1: return "+\(countryCode) \(area) \(subscriber)"
        case 2: return "\(trunk)\(area) \(subscriber)"
        case 3: return "\(trunk)\(area)\(subscriber)"
        case 4: return "\(trunk)\(area)-\(head)-\(tail)"
        case 5: return trunk.isEmpty ? "+\(countryCode) (\(area)) \(head)-\(tail)" : "+\(countryCode) (\(trunk))\(area) \(subscriber)"
        case 6: return "00\(countryCode) \(area) \(head) \(tail)"
        case 7: return "(\(trunk)\(area)) \(head) \(tail)"
        default: return "+\(countryCode)-\(area)-\(subscriber)"
        }
    }
}

/// Area and mobile prefixes of a region, and how its subscriber numbers are made.
struct NumberPlan {
    var countryCode: String
    var trunk: String
    var areas: [String]
    var mobiles: [String]
    /// Digits of a subscriber number (after the area or mobile prefix).
    var subscriberDigits: Int
    var companySuffixes: [String]

    static func of(_ region: String) -> NumberPlan {
        switch region {
        case "US":
            NumberPlan(countryCode: "1", trunk: "", areas: ["212", "415", "312", "617", "206", "512", "303", "404"],
                       mobiles: ["646", "917", "347", "628"], subscriberDigits: 7, companySuffixes: ["Inc.", "LLC", "Corp.", "Group", "Partners"])
        case "GB":
            NumberPlan(countryCode: "44", trunk: "0", areas: ["20", "161", "121", "131", "141", "113"], mobiles: ["7700", "7911", "7400", "7520"],
                       subscriberDigits: 6, companySuffixes: ["Ltd", "plc", "Group", "& Sons", "Partners"])
        default:
            NumberPlan(countryCode: "49", trunk: "0", areas: ["30", "40", "89", "221", "69", "711", "211", "351", "341", "511"],
                       mobiles: ["151", "152", "160", "170", "171", "172", "175", "176", "177", "178", "179"], subscriberDigits: 7,
                       companySuffixes: ["GmbH", "AG", "KG", "GmbH & Co. KG", "Logistik GmbH", "Consulting", "Handel GmbH"])
        }
    }

    /// The `index`th number (distinct for every index below 8·10^(digits−1)): its subscriber part
    /// is `index` scattered over the range by a multiplier prime to it (odd, not a multiple of 5),
    /// first digit 2…9.
    func number(index: Int, mobile: Bool, random: inout SeededRandom) -> PhoneParts {
        let span = 8 * Int(pow(10.0, Double(subscriberDigits - 1)))
        let subscriber = 2 * span / 8 + (index * 3_141_593) % span
        let prefixes = mobile ? mobiles : areas
        return PhoneParts(countryCode: countryCode, trunk: trunk, area: prefixes[random.below(prefixes.count)], subscriber: String(subscriber))
    }
}

extension SeededRandom {
    /// 0 ..< bound (bound ≥ 1).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(1, bound))) }

    /// A version-4 UUID, lowercase.
    mutating func uuid() -> String {
        let a = next(), b = next()
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: a >> ($0 * 8)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> ($0 * 8)) }
        bytes[6] = bytes[6] & 0x0F | 0x40
        bytes[8] = bytes[8] & 0x3F | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let h = Array(hex)
        return "\(String(h[0..<8]))-\(String(h[8..<12]))-\(String(h[12..<16]))-\(String(h[16..<20]))-\(String(h[20..<32]))"
    }
}

enum Names {
    /// Lowercase, without diacritics (`Müller` → `muller`), for e-mail addresses.
    static func ascii(_ text: String) -> String {
        text.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
    }

    static let first = [
        "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hannah", "Jonas", "Julia", "Karl", "Lena", "Lukas", "Marie", "Max",
        "Mia", "Noah", "Paul", "Sophie", "Tim", "Alice", "James", "Olivia", "Liam", "Ava", "Ethan", "Grace", "Henry", "Isla", "Jack",
        "Chloe", "Oscar", "Amelia", "Leo", "Nora", "Samuel", "Zoe", "Emil", "Ida", "Mateo",
    ]
    static let last = [
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann", "Koch", "Richter",
        "Klein", "Wolf", "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Smith", "Johnson", "Brown", "Taylor",
        "Wilson", "Davies", "Evans", "Thomas", "Roberts", "Walker", "Wright", "Green", "Hall", "Wood", "Clarke", "Jackson", "Hughes",
        "Edwards", "Lewis", "Harris",
    ]
}

public import CallPhone
public import Foundation

/// How calls are matched to the CRM (the config's `matching` section and `company_numbers`):
/// which numbers are the company's own, the region numbers without a country code are read in,
/// how far a match may link, what an unknown number does, and how often the index is refreshed.
public struct MatchSettings: Sendable, Hashable, Codable {
    /// How far a match may link (`--link`, `matching.link`): each bound includes the ones before.
    public enum Link: String, Sendable, Hashable, CaseIterable, Codable, Comparable {
        /// Nothing: the call log stays unlinked.
        case none
        /// The person and their organization (or an organization alone), never a deal or lead.
        case person
        /// The person's open deal, else open lead, else the person (the default).
        case deal

        public static func < (a: Link, b: Link) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// What a number no person or organization has does (`matching.unknown_numbers`).
    public enum UnknownNumberPolicy: String, Sendable, Hashable, CaseIterable, Codable {
        /// The call log stays unlinked (the default).
        case leave
        /// A person is created with the number (`POST /api/v2/persons`), and the call log links it.
        case createPerson = "create_person"
    }

    /// The company's own numbers, in E.164: never the other party, never matched.
    public var companyNumbers: Set<String>
    /// ISO 3166 alpha-2 region for numbers written without a country code.
    public var region: String?
    public var link: Link
    public var unknownNumbers: UnknownNumberPolicy
    /// Between incremental refreshes of the index (persons and deals updated since the last).
    public var refresh: Duration
    /// At least this long between two refreshes a miss triggers.
    public var missRefresh: Duration
    /// Between full passes (deletions, merges, leads, users).
    public var fullPass: Duration
    /// Whether leads are indexed and linked (after open deals, before the person).
    public var leads: Bool
    /// The key of an organization custom field that holds a phone number, when the account keeps
    /// numbers on organizations.
    public var organizationPhoneField: String?

    public static let defaultRefresh: Duration = .seconds(15 * 60)
    public static let defaultMissRefresh: Duration = .seconds(60)
    public static let defaultFullPass: Duration = .seconds(24 * 3600)

    public init(companyNumbers: Set<String> = [], region: String? = nil, link: Link = .deal, unknownNumbers: UnknownNumberPolicy = .leave,
                refresh: Duration = MatchSettings.defaultRefresh, missRefresh: Duration = MatchSettings.defaultMissRefresh,
                fullPass: Duration = MatchSettings.defaultFullPass, leads: Bool = true, organizationPhoneField: String? = nil) {
        self.companyNumbers = companyNumbers
        self.region = region
        self.link = link
        self.unknownNumbers = unknownNumbers
        self.refresh = refresh
        self.missRefresh = missRefresh
        self.fullPass = fullPass
        self.leads = leads
        self.organizationPhoneField = organizationPhoneField
    }

    /// `raw` read by libphonenumber with ``region``: the index's key is its `e164`.
    public func normalize(_ raw: String) -> PhoneNumber {
        PhoneNumbers.normalize(raw, region: region)
    }

    /// Whether `e164` is one of the company's own numbers.
    public func isCompanyNumber(_ e164: String) -> Bool {
        companyNumbers.contains(e164)
    }

    /// The company numbers as written, each in E.164 with `region`; the first one libphonenumber
    /// does not call valid is returned as `invalid` (the config names it).
    public static func companyNumbers(_ raw: [String], region: String?) -> (numbers: Set<String>, invalid: String?) {
        var numbers: Set<String> = []
        for text in raw {
            guard let e164 = PhoneNumbers.normalize(text, region: region).e164 else { return (numbers, text) }
            numbers.insert(e164)
        }
        return (numbers, nil)
    }
}

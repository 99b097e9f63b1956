public import Foundation

/// Why a call log links what it links (or nothing): a stable code for reports and tests.
public enum MatchReason: String, Sendable, Hashable, CaseIterable, Codable {
    /// The person's open deal (the most recently updated if several).
    case deal
    /// The person's open lead (no open deal).
    case lead
    /// The person (and their organization): no open deal or lead, or `link` is `person`.
    case person
    /// Several persons have the number, all of one organization: that organization.
    case sharedNumberOrg = "shared_number_org"
    /// Several persons (or organizations) have the number, of different or no organizations: nothing.
    case sharedNumberAmbiguous = "shared_number_ambiguous"
    /// No person has the number, one organization does: that organization.
    case organizationNumber = "organization_number"
    /// No person or organization has the number: nothing.
    case unknownNumber = "unknown_number"
    /// No person or organization has the number, and `unknown_numbers` is `create_person`.
    case createPerson = "create_person"
    /// The number is one of the company's own (`company_numbers`): nothing.
    case companyNumber = "company_number"
    /// Not a phone number libphonenumber calls valid (an internal extension, a PBX's name): nothing.
    case notANumber = "not_a_number"
    /// The direction is unknown and both sides are outside numbers: nothing.
    case ambiguousDirection = "ambiguous_direction"
    /// `link` is `none`: nothing.
    case linkNone = "link_none"
    /// The sidecar names a person, organization, deal or lead: its ids, not matching.
    case sidecarIDs = "sidecar_ids"
}

/// What a call log links, and why: the ids to fill (deal or lead, never both), the number
/// matched, a reason code and one line for people naming the ids and names.
public struct MatchDecision: Sendable, Hashable, Codable {
    /// The number matched, in E.164 (nil when there was none).
    public var number: String?
    public var personID: Int?
    public var orgID: Int?
    public var dealID: Int?
    public var leadID: String?
    /// Whether a person is to be created with ``number`` (and linked): `unknown_numbers: create_person`.
    public var createPerson: Bool
    public var reason: MatchReason
    public var explanation: String

    public init(number: String?, personID: Int? = nil, orgID: Int? = nil, dealID: Int? = nil, leadID: String? = nil,
                createPerson: Bool = false, reason: MatchReason, explanation: String) {
        self.number = number
        self.personID = personID
        self.orgID = orgID
        self.dealID = dealID
        self.leadID = dealID == nil ? leadID : nil
        self.createPerson = createPerson
        self.reason = reason
        self.explanation = explanation
    }

    /// Whether the call log links anything (or a person will be created to link).
    public var linked: Bool { personID != nil || orgID != nil || dealID != nil || leadID != nil || createPerson }

    enum CodingKeys: String, CodingKey {
        case number, reason, explanation
        case personID = "person_id", orgID = "org_id", dealID = "deal_id", leadID = "lead_id", createPerson = "create_person"
    }

    public func encode(to encoder: any Encoder) throws {
        // Every key, null when absent: a report reads the same shape for every recording.
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(number, forKey: .number)
        try c.encode(personID, forKey: .personID)
        try c.encode(orgID, forKey: .orgID)
        try c.encode(dealID, forKey: .dealID)
        try c.encode(leadID, forKey: .leadID)
        try c.encode(createPerson, forKey: .createPerson)
        try c.encode(reason, forKey: .reason)
        try c.encode(explanation, forKey: .explanation)
    }
}

/// Who owns the call log (its `user_id`), and why.
public struct OwnerDecision: Sendable, Hashable, Codable {
    public enum Reason: String, Sendable, Hashable, CaseIterable, Codable {
        /// The config's `users` map names the extension (or the Telnyx number).
        case extensionMap = "extension_map"
        /// A Pipedrive user with the agent's e-mail.
        case email
        /// The agent's e-mail is no user's (or that user is not active).
        case emailUnknown = "email_unknown"
        /// Neither an extension in the map nor an e-mail: Pipedrive makes the API token's user the owner.
        case none
    }

    public var userID: Int?
    public var reason: Reason
    public var explanation: String

    public init(userID: Int?, reason: Reason, explanation: String) {
        self.userID = userID
        self.reason = reason
        self.explanation = explanation
    }

    enum CodingKeys: String, CodingKey {
        case userID = "user_id", reason, explanation
    }
}

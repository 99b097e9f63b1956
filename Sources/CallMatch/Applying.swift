public import CallAPI
public import CallStore
import Foundation

extension PhoneMatcher {
    /// The whole match of one call: its other party's number, that number's candidates from
    /// `lookup` (the index: `CRMIndexStore.phoneCandidates`), and the decision. No lookup for a
    /// call with no number to match.
    public static func match(from: String?, to: String?, direction: Direction, settings: MatchSettings,
                             lookup: (String) async throws -> PhoneCandidates) async rethrows -> MatchDecision {
        switch otherParty(from: from, to: to, direction: direction, settings: settings) {
        case .unmatched(let decision): return decision
        case .number(let e164): return decide(number: e164, candidates: try await lookup(e164), settings: settings)
        }
    }

    /// The call log's owner: `mapped` (the `users` map's user for the extension or number), else
    /// the active user with the agent's `email` (`lookup`: the index's `crmUser(email:)`), else none.
    public static func owner(mapped: Int?, email: String?, lookup: (String) async throws -> CRMUser?) async rethrows -> OwnerDecision {
        if let mapped { return OwnerDecision(userID: mapped, reason: .extensionMap, explanation: "user \(mapped) from the users map") }
        guard let email = email?.trimmingCharacters(in: .whitespaces).lowercased(), !email.isEmpty else {
            return OwnerDecision(userID: nil, reason: .none, explanation: "no extension in the users map and no agent e-mail: the API token's user owns the call log")
        }
        guard let user = try await lookup(email) else {
            return OwnerDecision(userID: nil, reason: .emailUnknown, explanation: "no Pipedrive user has the e-mail \(email): the API token's user owns the call log")
        }
        guard user.active else {
            return OwnerDecision(userID: nil, reason: .emailUnknown, explanation: "user \(user.id) \(user.name) (\(email)) is not active: the API token's user owns the call log")
        }
        return OwnerDecision(userID: user.id, reason: .email, explanation: "user \(user.id) \(user.name) by the e-mail \(email)")
    }
}

extension CallLogDraft {
    /// Whether the draft names a person, organization, deal or lead itself (a sidecar's ids).
    public var namesLinks: Bool { personId != nil || orgId != nil || dealId != nil || leadId != nil }

    /// The draft with `decision`'s ids filled in, and the decision that holds: a draft that
    /// names a person, organization, deal or lead keeps its own (a sidecar's explicit ids always
    /// win; reason `sidecar_ids`). A decision to create a person changes nothing here: the
    /// person's id comes from the request that creates it.
    public func applying(_ decision: MatchDecision) -> (draft: CallLogDraft, decision: MatchDecision) {
        if namesLinks {
            let named = [personId.map { "person \($0)" }, orgId.map { "organization \($0)" }, dealId.map { "deal \($0)" }, leadId.map { "lead \($0)" }]
                .compactMap { $0 }.joined(separator: ", ")
            let kept = MatchDecision(number: decision.number, personID: personId, orgID: orgId, dealID: dealId, leadID: leadId, reason: .sidecarIDs,
                                     explanation: "the sidecar names \(named): its ids win over matching")
            return (self, kept)
        }
        var draft = self
        draft.personId = decision.personID
        draft.orgId = decision.orgID
        draft.dealId = decision.dealID
        draft.leadId = decision.dealID == nil ? decision.leadID : nil
        return (draft, decision)
    }

    /// The draft with `owner`'s user when it names none itself.
    public func applying(_ owner: OwnerDecision) -> CallLogDraft {
        var draft = self
        if draft.userId == nil { draft.userId = owner.userID }
        return draft
    }
}

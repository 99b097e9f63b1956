public import CallAPI
public import CallMatch
import CallSources
public import CallStore
import Foundation
public import Logging

/// Links the call logs callrec creates to the CRM from the local index (issue 17): one indexed
/// read per recording and no request (unless `matching.unknown_numbers` is `create_person`).
/// The decision, and the owner's, go into the recording's audit trail (`match`), where the
/// report and `callrec status` read them.
public struct CallLinker: Sendable {
    public let settings: MatchSettings
    /// The refresh to bring forward when a number is unknown (a worker's); nil in one-shot runs
    /// that refreshed the index before they started.
    let index: CRMIndexService?

    public init(settings: MatchSettings, index: CRMIndexService? = nil) {
        self.settings = settings
        self.index = index
    }

    /// What one recording's call links: the draft with the ids filled (a sidecar's own ids
    /// win), the decision, and the owner's.
    public func link(_ draft: CallLogDraft, metadata: SourceMetadata?, agentEmail: String? = nil, store: any CallStore, client: PipedriveClient?,
                     logger: Logger) async throws -> (draft: CallLogDraft, decision: MatchDecision, owner: OwnerDecision?) {
        var decision: MatchDecision
        if settings.link == .none {
            decision = MatchDecision(number: nil, reason: .linkNone, explanation: "matching.link is none: nothing linked")
        } else {
            let direction: PhoneMatcher.Direction =
                switch metadata?.facts?.direction {
                case .inbound?: .inbound
                case .outbound?: .outbound
                case .internal?: .internal
                case nil: .unknown
                }
            decision = try await PhoneMatcher.match(from: draft.fromPhoneNumber, to: draft.toPhoneNumber, direction: direction, settings: settings) {
                try await store.phoneCandidates($0)
            }
        }
        if decision.reason == .unknownNumber || decision.reason == .createPerson, let number = decision.number { index?.noteMiss(number) }
        var (linked, applied) = draft.applying(decision)
        if applied.createPerson, let number = applied.number, let client, !draft.namesLinks {
            // The one request a match may make, and only when asked for.
            let person = try await client.createPerson(name: "Caller \(number)", phone: number, ownerID: draft.userId)
            linked.personId = person.id
            applied.personID = person.id
            applied.explanation = "\(number) → new person \(person.id) (no person or organization had the number; matching.unknown_numbers is create_person)"
            logger.info("created a person for an unknown number", metadata: ["person": "\(person.id)"])
            // Into the index at once: the caller's next call links this person, not another new one.
            if let state = try await store.crmSyncStates()[.person] {
                try await store.applyCRMPage(CRMPage(sync: state, persons: [
                    CRMPerson(id: person.id, name: person.name, orgID: person.orgID, ownerID: person.ownerID, phones: [number], updatedAt: person.updateTime),
                ]))
            }
        }
        // The owner: the draft's user_id (the users map's, or the sidecar's), else the user with
        // the agent's e-mail.
        var owner: OwnerDecision?
        if linked.userId == nil, let agentEmail {
            let decided = try await PhoneMatcher.owner(mapped: nil, email: agentEmail) { try await store.crmUser(email: $0) }
            linked = linked.applying(decided)
            owner = decided
        }
        return (linked, applied, owner)
    }

    /// The audit row that records a decision (`match`), its target the ids linked.
    public static func audit(_ decision: MatchDecision, owner: OwnerDecision?, key: String, actor: String) -> AuditEntry {
        let target = [decision.dealID.map { "deal:\($0)" }, decision.leadID.map { "lead:\($0)" }, decision.personID.map { "person:\($0)" },
                      decision.orgID.map { "organization:\($0)" }].compactMap { $0 }.joined(separator: ",")
        var detail = "\(decision.reason.rawValue): \(decision.explanation)"
        if let owner { detail += "; owner: \(owner.explanation)" }
        return AuditEntry(recordingKey: key, action: "match", target: target.isEmpty ? nil : target, detail: detail, actor: actor)
    }
}

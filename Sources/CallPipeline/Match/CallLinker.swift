public import CallAPI
import CallJobs
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
    /// `key` and `actor`: the recording and the worker, for the audit of a person created.
    public func link(_ draft: CallLogDraft, metadata: SourceMetadata?, agentEmail: String? = nil, key: String = "", actor: String = "",
                     store: any CallStore, client: PipedriveClient?,
                     logger: Logger) async throws -> (draft: CallLogDraft, decision: MatchDecision, owner: OwnerDecision?) {
        var decision: MatchDecision
        if draft.namesLinks {
            // A sidecar's own ids win: nothing to look up, and nothing to wait for.
            decision = draft.applying(MatchDecision(number: nil, reason: .sidecarIDs, explanation: "")).decision
        } else if settings.link == .none {
            decision = MatchDecision(number: nil, reason: .linkNone, explanation: "matching.link is none: nothing linked")
        } else {
            // No call log from an empty index: it would link nobody, for good (callrec does
            // not edit call logs).
            guard CRMIndexSync.isBuilt(try await store.crmSyncStates()) else {
                throw JobFailure(.snooze(.seconds(60)), code: "crm_index_building",
                                 "the CRM index is not built yet (its first full pass has not ended): the call log waits for it")
            }
            // The source's direction (CallSources and CallMatch spell them alike), else unknown.
            let direction = metadata?.facts.flatMap { PhoneMatcher.Direction(rawValue: $0.direction.rawValue) } ?? .unknown
            decision = try await PhoneMatcher.match(from: draft.fromPhoneNumber, to: draft.toPhoneNumber, direction: direction, settings: settings) {
                try await store.phoneCandidates($0)
            }
        }
        if decision.reason == .unknownNumber || decision.reason == .createPerson, let number = decision.number { index?.noteMiss(number) }
        var (linked, applied) = draft.applying(decision)
        if applied.createPerson, let number = applied.number, let client, !draft.namesLinks {
            let person: PipedrivePerson
            do {
                person = try await createPerson(number, owner: draft.userId, key: key, store: store, client: client, actor: actor, logger: logger)
            } catch let error as APIError where error.code == .permanent || error.code == .configuration {
                // Refused for good (no right to add persons, a rule of the account): the call log
                // is made unlinked, and the decision says why.
                logger.warning("a person for an unknown caller was refused; the call log is made unlinked", metadata: ["error": "\(error)"])
                applied.createPerson = false
                applied.explanation = "\(number) is unknown and creating a person for it was refused (\(error)): nothing linked"
                return (linked, applied, nil)
            }
            linked.personId = person.id
            applied.personID = person.id
            applied.explanation = "\(number) → new person \(person.id) (no person or organization had the number; matching.unknown_numbers is create_person)"
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

    /// A person for an unknown caller, exactly once: the intent is recorded (audit
    /// `create_person`) before the POST; an attempt after one whose answer was lost first looks
    /// for the person it may have made (persons updated since it was sent, one listing) before it
    /// creates again.
    func createPerson(_ number: String, owner: Int?, key: String, store: any CallStore, client: PipedriveClient, actor: String,
                      logger: Logger) async throws -> PipedrivePerson {
        let earlier = try await store.audit(key: key, limit: 200).filter { $0.action == "create_person" && $0.target == "phone:\(number)" }
        if let sent = earlier.map(\.at).min() {
            var cursor: String?
            repeat {
                let page = try await client.persons(cursor: cursor, updatedSince: sent.addingTimeInterval(-60))
                if let found = page.items.first(where: { $0.phones.contains { phoneIndexKey($0.value, region: settings.region) == number } }) {
                    logger.info("found the person an earlier attempt created", metadata: ["person": "\(found.id)"])
                    return found
                }
                cursor = page.nextCursor
            } while cursor != nil
        }
        try await store.commit([.audit(AuditEntry(recordingKey: key, action: "create_person", target: "phone:\(number)",
                                                   detail: "POST /api/v2/persons for an unknown caller", actor: actor))])
        let person = try await client.createPerson(name: "Caller \(number)", phone: number, ownerID: owner)
        logger.info("created a person for an unknown number", metadata: ["person": "\(person.id)"])
        return person
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

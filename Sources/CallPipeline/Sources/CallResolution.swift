import CallAPI
import CallSources
import CallStore
import CallTelnyx
import Foundation

/// A PBX recording's call log from its CDR rows and its file name, decided before any audio work
/// (the transcode job's first step): the rows found by the recording's keys, widened to their
/// `linkedid` groups, give the facts; while none has come and the CDR wait is not over, the
/// recording waits for them; after it, its file name's facts do (`cdr_missing`). The builder then
/// decides: a call log, or a documented reason not to log the call.
enum CallResolution {
    enum Outcome {
        /// The metadata with its call log and facts.
        case log(SourceMetadata)
        /// Not logged by the policy: the reason, its sentence, and the metadata with the facts.
        case skip(SkipReason, String, SourceMetadata)
        /// No CDR row yet: wait until then (a row's arrival wakes the job sooner).
        case wait(until: Date)
        /// Neither the CDR nor the name gives the call's facts.
        case unresolvable(String)
    }

    static func resolve(_ metadata: SourceMetadata, path: String, store: any CallStore, now: Date) async throws -> Outcome {
        let settings = metadata.source.settings.settings
        let name = metadata.source.nameFacts
        let rows = try await cdrRows(for: name, pbx: metadata.source.pbx, store: store)
        var facts = CallAssembly.fromCDR(name: name, rows: rows, settings: settings)
        if facts == nil {
            let deadline = Date(timeIntervalSince1970: metadata.source.cdrWaitUntil)
            // Without a CDR file there is nothing to wait for.
            if !settings.cdrFiles.isEmpty, now < deadline { return .wait(until: deadline) }
            facts = CallAssembly.fromName(name: name, settings: settings, fileModified: metadata.source.fileModified.map { Date(timeIntervalSince1970: $0) },
                                          audioSeconds: nil)
        }
        guard let facts else {
            return .unresolvable("\(path): neither a CDR row nor the file name gives the call's number and time")
        }
        var resolved = metadata
        resolved.facts = facts
        switch CallLogBuilder.decide(facts, settings: settings, audioSeconds: nil) {
        case .skip(let reason, let message):
            // The message names the file (as the report shows it, relative to the root).
            return .skip(reason, "\(metadata.source.relativePath): \(message)", resolved)
        case .log(let draft, let warnings):
            resolved.callLog = draft
            resolved.warnings = warnings
            return .log(resolved)
        }
    }

    /// The call log again once the audio's length is known, when it stands in for what no CDR
    /// said (no `billsec`; a name-only start): nil when nothing changes.
    static func withAudio(_ metadata: SourceMetadata, seconds: Double) -> SourceMetadata? {
        if metadata.telnyx != nil { return telnyxWithAudio(metadata, seconds: seconds) }
        guard let facts = metadata.facts, !facts.fromCDR || facts.billsec == nil else { return nil }
        let settings = metadata.source.settings.settings
        let refined = facts.fromCDR ? facts : CallAssembly.fromName(name: metadata.source.nameFacts, settings: settings,
                                                                    fileModified: metadata.source.fileModified.map { Date(timeIntervalSince1970: $0) },
                                                                    audioSeconds: seconds) ?? facts
        guard case .log(let draft, let warnings) = CallLogBuilder.decide(refined, settings: settings, audioSeconds: seconds) else { return nil }
        var resolved = metadata
        resolved.facts = refined
        resolved.callLog = draft
        resolved.warnings = warnings
        return resolved
    }

    /// A Telnyx call log again with the audio's length, when its events did not say how long the
    /// call was talked (no `billsec`): its facts are never re-derived from a file name, and the
    /// Pipedrive user its number was logged for is kept.
    static func telnyxWithAudio(_ metadata: SourceMetadata, seconds: Double) -> SourceMetadata? {
        guard let facts = metadata.facts, facts.billsec == nil else { return nil }
        let settings = TelnyxSettings(source: metadata.source.settings.settings)
        guard case .log(var draft, warnings: let warnings) = TelnyxFacts.decide(facts, settings: settings, audioSeconds: seconds) else { return nil }
        if draft.userId == nil { draft.userId = metadata.callLog?.userId }
        var resolved = metadata
        resolved.callLog = draft
        resolved.warnings = warnings + metadata.warnings.filter { $0.code == TelnyxFetchJobHandler.recordingIDUnknown }
        return resolved
    }

    /// The rows of the recording's call: those its keys find, and the rest of their `linkedid` groups.
    static func cdrRows(for name: NameFacts, pbx: String, store: any CallStore) async throws -> [CDRRow] {
        let keys = CallAssembly.keys(for: name)
        var found = try await store.cdrRows(CDRRowQuery(pbx: pbx, uniqueids: keys.uniqueids, stems: keys.stems))
        // Rows without a join key (Master.csv without loguniqueid) are stored by their local day
        // only; a day's worth is read only when the recording's own keys found nothing.
        if found.isEmpty, !keys.days.isEmpty { found = try await store.cdrRows(CDRRowQuery(pbx: pbx, days: keys.days)) }
        let linked = Set(found.compactMap(\.linkedid)).filter { !$0.isEmpty }.sorted()
        if !linked.isEmpty { found += try await store.cdrRows(CDRRowQuery(pbx: pbx, linkedids: linked)) }
        var seen = Set<String>()
        return found.filter { seen.insert($0.rowKey).inserted }.compactMap {
            try? SourceMetadata.decoder.decode(CDRRow.self, from: Data($0.document.utf8))
        }
    }

    /// The commit of a recording its source's policy does not log: its metadata with the facts,
    /// the state `skipped` with the reason, and the audit (PBX and Telnyx recordings alike).
    static func skipOps(key: String, metadata: SourceMetadata, reason: SkipReason, message: String, actor: String) -> [LedgerOp] {
        [
            .require(key: key, states: [.pending]),
            .setRecordingMetadata(key: key, metadata: metadata.text),
            .setRecordingState(key: key, state: .skipped, errorCode: reason.rawValue, errorMessage: message),
            .audit(AuditEntry(recordingKey: key, action: "skipped", detail: "\(reason.rawValue): \(message)", actor: actor)),
        ]
    }

    /// The job's failure while a recording waits for its CDR row.
    static let awaitingCDR = "awaiting_cdr"
}

public import CallAPI
import CallJobs
public import CallStore
public import Foundation

/// Why a delete could not be registered or run, with a machine-readable code.
public struct DeleteError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// No recording matches the call log, path or key given.
        public static let notFound = Code(rawValue: "not_found")
        /// The recording is in a state that is not deleted this way (changed meanwhile).
        public static let conflict = Code(rawValue: "conflict")
        /// A provider reference that cannot name exactly one thing to delete.
        public static let invalidReference = Code(rawValue: "invalid_reference")
        /// A step to skip that names no open step of the deletion (or more than one).
        public static let unknownStep = Code(rawValue: "unknown_step")
        public var description: String { rawValue }
    }

    public let code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Step targets of a deletion (``DeletionStep/target``).
public enum DeletionTarget: Sendable, Hashable {
    /// `pipedrive:<call log id>`: one part's call log (its audio goes with it).
    case pipedrive(String)
    /// `pipedrive-marker:<marker>`: a part whose create may have landed without its answer; the
    /// call logs carrying the marker are found by listing.
    case pipedriveMarker(String)
    /// `telnyx:<recording id>`.
    case telnyx(String)
    /// `voipnow:<reference JSON>` as the ledger holds it.
    case voipnow(String)
    /// `spool`: the local parts, moved to the trash.
    case spool
    case unknown(String)

    public init(_ target: String) {
        if target == "spool" { self = .spool; return }
        guard let colon = target.firstIndex(of: ":") else { self = .unknown(target); return }
        let value = String(target[target.index(after: colon)...])
        switch target[..<colon] {
        case "pipedrive": self = .pipedrive(value)
        case "pipedrive-marker": self = .pipedriveMarker(value)
        case "telnyx": self = .telnyx(value)
        case "voipnow": self = .voipnow(value)
        default: self = .unknown(target)
        }
    }

    public var target: String {
        switch self {
        case .pipedrive(let id): "pipedrive:\(id)"
        case .pipedriveMarker(let marker): "pipedrive-marker:\(marker)"
        case .telnyx(let id): "telnyx:\(id)"
        case .voipnow(let json): "voipnow:\(json)"
        case .spool: "spool"
        case .unknown(let text): text
        }
    }

    /// What `--skip-step` takes besides the whole target: `pipedrive`, `pipedrive-marker`,
    /// `telnyx`, `voipnow`, `spool`.
    public var kind: String {
        switch self {
        case .pipedrive: "pipedrive"
        case .pipedriveMarker: "pipedrive-marker"
        case .telnyx: "telnyx"
        case .voipnow: "voipnow"
        case .spool: "spool"
        case .unknown: "unknown"
        }
    }

    /// Pipedrive is where deletion flows from: while one of these steps has failed, the
    /// provider and spool steps wait.
    public var isPipedrive: Bool {
        switch self {
        case .pipedrive, .pipedriveMarker: true
        default: false
        }
    }
}

/// A VoipNow provider reference (`{"event_id","event_type","extension","user_id"}`) turned into a
/// complete address, or refused: there is no way to get a type-less or id-less address out of it
/// (research/api-contract.md §3.2: that DELETE removes every event on the extension).
public enum VoipNowReference {
    /// Why a step for this reference is never sent (`not sent: …`), or nil when it can be.
    public static func unsendable(_ reference: String) -> String? {
        do {
            _ = try address(reference)
            return nil
        } catch {
            return "not sent: \((error as? DeleteError)?.message ?? "\(error)")"
        }
    }

    public static func address(_ reference: String) throws -> VoipNowEventAddress {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(reference.utf8))) as? [String: Any] else {
            throw DeleteError(.invalidReference, "the VoipNow reference is not a JSON object")
        }
        func text(_ key: String) throws -> String {
            switch object[key] {
            case let s as String: return s
            case let n as NSNumber where !n.isBoolean && n.doubleValue == n.doubleValue.rounded():
                return n.stringValue
            default:
                throw DeleteError(.invalidReference, "the VoipNow reference has no usable \(key) (a delete without both event type and id would remove every event on the extension)")
            }
        }
        let typeText = try text("event_type").trimmingCharacters(in: .whitespaces)
        guard let type = Int(typeText) else {
            throw DeleteError(.invalidReference, "the VoipNow reference's event_type \"\(typeText)\" is not a number")
        }
        do {
            return try VoipNowEventAddress(userId: try text("user_id"), extension: try text("extension"), eventType: type,
                                           eventId: try text("event_id"))
        } catch let error as APIError {
            throw DeleteError(.invalidReference, error.message)
        }
    }
}

/// Registers a cascade delete: the recording found by key, path or any part's call log becomes
/// `deleting`, and a durable ``Deletion`` with one step per target plus its `delete` job go in,
/// all in one commit (DESIGN §4). ``DeleteJobHandler`` runs the steps.
public struct DeletionPlanner: Sendable {
    /// How a recording is named.
    public enum Selector: Sendable, Hashable, CustomStringConvertible {
        /// The SHA-256 of the source.
        case key(String)
        /// The source path (as registered, or a file whose bytes are the recording).
        case path(String)
        /// The call log of any of its parts.
        case callLog(String)

        public var description: String {
            switch self {
            case .key(let key): "recording \(key)"
            case .path(let path): "recording \(path)"
            case .callLog(let id): "call log \(id)"
            }
        }
    }

    /// What ``register(key:reason:requiring:gone:)`` did.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// A new deletion and its job.
        case registered
        /// The recording's open deletion was found; its job is queued again (or still is).
        case resumed
        /// The recording is deleted already: nothing to do.
        case alreadyDeleted = "already_deleted"
    }

    public struct Registration: Sendable, Hashable {
        public var outcome: Outcome
        public var key: String
        public var path: String
        /// Nil for ``Outcome/alreadyDeleted``.
        public var deletionID: String?
        public var steps: [DeletionStep]
    }

    /// The states a recording may be deleted from.
    public static let deletableStates: Set<RecordingState> = [.uploaded, .transcoded, .failed, .pending]

    public let store: any CallStore
    /// Written to the audit table (`host:pid` of the CLI or worker).
    public let actor: String

    public init(store: any CallStore, actor: String) {
        self.store = store
        self.actor = actor
    }

    /// The recording a selector names (the oldest, when a path names several: see
    /// ``resolveAll(_:)``).
    public func resolve(_ selector: Selector) async throws -> Recording {
        try await resolveAll(selector)[0]
    }

    /// Every recording a selector names, oldest first. A key or a call log names one. A path
    /// names every version callrec registered from it (the file may have been replaced with
    /// other bytes after an upload: each version is its own recording), looked up as given,
    /// made absolute and with symlinks resolved, and the recording whose bytes the file at that
    /// path holds now (the same bytes are the same recording, wherever they were registered).
    /// Throws ``DeleteError/Code/notFound`` when it names none.
    public func resolveAll(_ selector: Selector) async throws -> [Recording] {
        var found: [Recording] = []
        switch selector {
        case .key(let key):
            if let recording = try await store.recording(key: key.lowercased()) { found.append(recording) }
        case .callLog(let id):
            if let part = try await store.part(callLogID: id), let recording = try await store.recording(key: part.recordingKey) {
                found.append(recording)
            }
        case .path(let path):
            // The scan registers `standardizedFileURL.resolvingSymlinksInPath()` of its root.
            let url = URL(fileURLWithPath: path).standardizedFileURL
            let absolute = url.path
            var candidates = [path]
            for candidate in [absolute, url.resolvingSymlinksInPath().path] where !candidates.contains(candidate) {
                candidates.append(candidate)
            }
            for candidate in candidates {
                var after: String?
                while true {
                    let page = try await store.recordings(RecordingQuery(path: candidate, afterKey: after, limit: 1000))
                    found += page.filter { recording in !found.contains { $0.key == recording.key } }
                    guard page.count == 1000, let last = page.last else { break }
                    after = last.key
                }
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), !isDirectory.boolValue,
               let key = try? Fingerprint.sha256(ofFile: absolute), !found.contains(where: { $0.key == key }),
               let recording = try await store.recording(key: key) {
                found.append(recording)
            }
        }
        guard !found.isEmpty else { throw DeleteError(.notFound, "no recording in the ledger for \(selector)") }
        return found.sorted { ($0.createdAt, $0.key) < ($1.createdAt, $1.key) }
    }

    /// The detail of a step that leaves a call log callrec did not create.
    public static let foreignCallLogNote = "left: callrec did not create this call log"

    static func foreignDetail(_ part: Part) -> String {
        let origin = part.callLogOrigin == .given ? "the sidecar's call_log_id named it" : "the ledger does not say who made it"
        return "\(foreignCallLogNote) (\(origin)); Pipedrive removes a recording only with its call log, so the audio stays attached there (--include-foreign-call-logs deletes it with everything it holds)"
    }

    /// The steps deleting a recording takes, in order: every part's call log (remote and
    /// irreversible first), the Telnyx recording and the VoipNow event when the ledger has a live
    /// reference, the spool last. `gone` marks call logs already confirmed gone (a reconcile's
    /// `GET` answered 404/410) done with that status, without another request.
    ///
    /// A call log callrec did not create (the sidecar's `call_log_id`, or of unknown origin) gets
    /// a step that is `skipped` from the start, saying why, unless `includeForeign`: it may hold
    /// what someone else wrote, and deleting it is not callrec's call.
    ///
    /// A VoipNow reference that cannot form a complete address gets a step that is `failed` from
    /// the start (with the reason) and is never sent.
    public static func steps(parts: [Part], refs: [ProviderRef], gone: [String: Int] = [:], includeForeign: Bool = false,
                             now: Date = Date()) -> [DeletionStep] {
        var steps: [DeletionStep] = []
        var targets = Set<String>()
        func add(_ target: DeletionTarget, state: DeletionStepState = .pending, httpStatus: Int? = nil, detail: String? = nil) {
            guard targets.insert(target.target).inserted else { return }
            steps.append(DeletionStep(position: steps.count + 1, target: target.target, state: state, httpStatus: httpStatus,
                                      detail: detail, updatedAt: now))
        }
        for part in parts.sorted(by: { $0.index < $1.index }) {
            if let id = part.callLogID, !id.isEmpty {
                if let status = gone[id] {
                    add(.pipedrive(id), state: .done, httpStatus: status, detail: "confirmed gone by reconcile (GET answered \(status))")
                } else if part.callLogOrigin != .created, !includeForeign {
                    add(.pipedrive(id), state: .skipped, detail: foreignDetail(part))
                } else {
                    add(.pipedrive(id))
                }
            } else if part.state == .creating, let marker = part.marker, !marker.isEmpty {
                add(.pipedriveMarker(marker))
            }
        }
        for ref in refs.sorted(by: { $0.provider < $1.provider }) where ref.state == "live" {
            switch ref.provider {
            case ProviderRef.telnyx:
                add(.telnyx(ref.reference))
            case ProviderRef.voipnow:
                if let unsendable = VoipNowReference.unsendable(ref.reference) {
                    add(.voipnow(ref.reference), state: .failed, detail: unsendable)
                } else {
                    add(.voipnow(ref.reference))
                }
            default:
                add(.unknown("\(ref.provider):\(ref.reference)"), state: .failed, detail: "unknown provider \(ref.provider)")
            }
        }
        add(.spool)
        return steps
    }

    /// Registers the deletion of `key` (see the type's documentation). A recording that is
    /// `deleting` already gets its open deletion's job queued again; a `deleted` one is left.
    /// - Parameters:
    ///   - requiring: the states the recording must still be in when the commit lands (a
    ///     reconcile asks for `uploaded` only); otherwise ``DeleteError/Code/conflict``.
    ///   - gone: call logs already confirmed gone, with the status seen.
    ///   - includeForeign: delete call logs callrec did not create too (see
    ///     ``steps(parts:refs:gone:includeForeign:now:)``); an open deletion's steps that left
    ///     them become pending again.
    ///   - skipping: steps to give up, each named by its target or its kind (``match(_:in:)``),
    ///     in the same commit; `askedBy` says who asked, for the audit table.
    public func register(key: String, reason: String, requiring: Set<RecordingState> = DeletionPlanner.deletableStates,
                         gone: [String: Int] = [:], includeForeign: Bool = false, skipping: [String] = [],
                         askedBy: String? = nil) async throws -> Registration {
        guard let recording = try await store.recording(key: key) else {
            throw DeleteError(.notFound, "no recording \(key) in the ledger")
        }
        switch recording.state {
        case .deleted:
            return Registration(outcome: .alreadyDeleted, key: key, path: recording.path, deletionID: nil, steps: [])
        case .deleting:
            if let open = try await store.openDeletions().first(where: { $0.recordingKey == key }) {
                var steps = open.steps
                var ops: [LedgerOp] = [
                    .require(key: key, states: [.deleting]),
                    .audit(AuditEntry(recordingKey: key, action: "delete_resumed", detail: "deletion \(open.id): \(reason)", actor: actor)),
                ]
                if includeForeign {
                    for index in steps.indices where steps[index].state == .skipped && (steps[index].detail ?? "").hasPrefix(Self.foreignCallLogNote) {
                        steps[index].state = .pending
                        steps[index].detail = nil
                        ops.append(.updateDeletionStep(deletionID: open.id, target: steps[index].target, state: .pending, httpStatus: nil, detail: nil))
                        ops.append(.audit(AuditEntry(recordingKey: key, action: "delete_step", target: steps[index].target,
                                                     detail: "pending: a call log callrec did not create, included as asked (\(reason))", actor: actor)))
                    }
                }
                ops += try skip(skipping, in: &steps, deletionID: open.id, key: key, askedBy: askedBy).ops
                ops.append(.enqueue(try DeleteJobHandler.job(key: key, deletionID: open.id)))
                try await commit(ops, key: key)
                return Registration(outcome: .resumed, key: key, path: recording.path, deletionID: open.id, steps: steps)
            }
        default:
            guard requiring.contains(recording.state) else {
                throw DeleteError(.conflict, "\(recording.path) is \(recording.state.rawValue); not deleted now")
            }
        }
        let parts = try await store.parts(key: key)
        let refs = try await store.providerRefs(key: key)
        var steps = Self.steps(parts: parts, refs: refs, gone: gone, includeForeign: includeForeign)
        // Skips are audited after the registration: they change steps it planned.
        let skips = try skip(skipping, in: &steps, deletionID: nil, key: key, askedBy: askedBy)
        let deletion = Deletion(id: UUID().uuidString.lowercased(), recordingKey: key, reason: reason, steps: steps)
        var ops: [LedgerOp] = [
            .require(key: key, states: recording.state == .deleting ? [.deleting] : requiring),
            .setRecordingState(key: key, state: .deleting),
            .insertDeletion(deletion),
            .audit(AuditEntry(recordingKey: key, action: "delete_registered", target: nil,
                              detail: "deletion \(deletion.id): \(reason); steps: \(steps.map(\.target).joined(separator: ", "))", actor: actor)),
        ]
        for step in steps where step.state != .pending && !skips.targets.contains(step.target) {
            ops.append(.audit(AuditEntry(recordingKey: key, action: "delete_step", target: step.target, httpStatus: step.httpStatus,
                                         detail: "\(step.state.rawValue): \(step.detail ?? "")", actor: actor)))
        }
        ops += skips.ops
        ops.append(.enqueue(try DeleteJobHandler.job(key: key, deletionID: deletion.id)))
        try await commit(ops, key: key)
        return Registration(outcome: .registered, key: key, path: recording.path, deletionID: deletion.id, steps: steps)
    }

    /// The step `name` names among `steps`: its whole target (`voipnow:{…}`, `pipedrive:123`), or
    /// its kind (`voipnow`, `telnyx`, `pipedrive`, `spool`) when exactly one step still to do has
    /// that kind. Throws ``DeleteError/Code/unknownStep``, listing the steps still to do, when
    /// it names none of them (or a step already done or skipped), or several.
    public static func match(_ name: String, in steps: [DeletionStep]) throws -> DeletionStep {
        let open = steps.filter { !$0.state.isSettled }
        let listing = open.isEmpty ? "none" : open.map { "\($0.target) (\($0.state.rawValue))" }.joined(separator: ", ")
        if let exact = steps.first(where: { $0.target == name }) {
            guard !exact.state.isSettled else {
                throw DeleteError(.unknownStep, "step \(name) is \(exact.state.rawValue) already; steps still to do: \(listing)")
            }
            return exact
        }
        let ofKind = open.filter { DeletionTarget($0.target).kind == name }
        if ofKind.count == 1 { return ofKind[0] }
        if ofKind.count > 1 {
            throw DeleteError(.unknownStep, "\(ofKind.count) steps still to do are \(name) steps; name one by its target: \(ofKind.map(\.target).joined(separator: ", "))")
        }
        throw DeleteError(.unknownStep, "no step still to do is \(name); steps still to do: \(listing)")
    }

    /// Marks the steps `names` names skipped in `steps`. Returns their targets and the ops that
    /// record it: for an open deletion (`deletionID`) the step changes, and per step an audit line
    /// saying who asked.
    private func skip(_ names: [String], in steps: inout [DeletionStep], deletionID: String?, key: String,
                      askedBy: String?) throws -> (targets: Set<String>, ops: [LedgerOp]) {
        var targets = Set<String>(), ops: [LedgerOp] = []
        let who = askedBy ?? actor
        for name in names {
            let step = try Self.match(name, in: steps)
            guard let index = steps.firstIndex(where: { $0.target == step.target }) else { continue }
            let was = "it was \(step.state.rawValue)\(step.detail.map { ": \($0)" } ?? "")"
            steps[index].state = .skipped
            steps[index].detail = "skipped at the request of \(who); \(was)"
            targets.insert(step.target)
            if let deletionID {
                ops.append(.updateDeletionStep(deletionID: deletionID, target: step.target, state: .skipped, httpStatus: step.httpStatus,
                                               detail: steps[index].detail))
            }
            ops.append(.audit(AuditEntry(recordingKey: key, action: "delete_step_skipped", target: step.target, httpStatus: step.httpStatus,
                                         detail: "asked by \(who): given up without deleting it; \(was)", actor: actor)))
        }
        return (targets, ops)
    }

    private func commit(_ ops: [LedgerOp], key: String) async throws {
        do {
            try await store.commit(ops)
        } catch let error as StoreError where error.code == .conflict {
            throw DeleteError(.conflict, "\(key) changed meanwhile: \(error.message)")
        }
    }
}

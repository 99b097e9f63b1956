import CallAPI
import CallStore
import Foundation

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
    public static func address(_ reference: String) throws -> VoipNowEventAddress {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(reference.utf8))) as? [String: Any] else {
            throw DeleteError(.invalidReference, "the VoipNow reference is not a JSON object")
        }
        func text(_ key: String) throws -> String {
            switch object[key] {
            case let s as String: return s
            case let n as NSNumber where !n.isBoolean && n.doubleValue == n.doubleValue.rounded():
                return n.stringValue
            default: throw DeleteError(.invalidReference, "the VoipNow reference has no usable \(key)")
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

    /// The recording a selector names. A path is looked up as registered (also made absolute);
    /// failing that, a file at that path is fingerprinted (the same bytes are the same recording).
    public func resolve(_ selector: Selector) async throws -> Recording {
        switch selector {
        case .key(let key):
            if let recording = try await store.recording(key: key.lowercased()) { return recording }
        case .callLog(let id):
            if let part = try await store.part(callLogID: id), let recording = try await store.recording(key: part.recordingKey) {
                return recording
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
                if let recording = try await store.recordings(RecordingQuery(path: candidate, limit: 1)).first { return recording }
            }
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), !isDirectory.boolValue,
               let key = try? Fingerprint.sha256(ofFile: absolute), let recording = try await store.recording(key: key) {
                return recording
            }
        }
        throw DeleteError(.notFound, "no recording in the ledger for \(selector)")
    }

    /// The steps deleting a recording takes, in order: every part's call log (remote and
    /// irreversible first), the Telnyx recording and the VoipNow event when the ledger has a live
    /// reference, the spool last. `gone` marks call logs already confirmed gone (a reconcile's
    /// `GET` answered 404/410) done with that status, without another request.
    ///
    /// A VoipNow reference that cannot form a complete address gets a step that is `failed` from
    /// the start (with the reason) and is never sent.
    public static func steps(parts: [Part], refs: [ProviderRef], gone: [String: Int] = [:], now: Date = Date()) -> [DeletionStep] {
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
                do {
                    _ = try VoipNowReference.address(ref.reference)
                    add(.voipnow(ref.reference))
                } catch {
                    add(.voipnow(ref.reference), state: .failed,
                        detail: "not sent: \((error as? DeleteError)?.message ?? "\(error)") (a VoipNow delete without both event type and id would remove every event on the extension)")
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
    public func register(key: String, reason: String, requiring: Set<RecordingState> = DeletionPlanner.deletableStates,
                         gone: [String: Int] = [:]) async throws -> Registration {
        guard let recording = try await store.recording(key: key) else {
            throw DeleteError(.notFound, "no recording \(key) in the ledger")
        }
        switch recording.state {
        case .deleted:
            return Registration(outcome: .alreadyDeleted, key: key, path: recording.path, deletionID: nil, steps: [])
        case .deleting:
            if let open = try await store.openDeletions().first(where: { $0.recordingKey == key }) {
                try await commit([
                    .require(key: key, states: [.deleting]),
                    .audit(AuditEntry(recordingKey: key, action: "delete_resumed", detail: "deletion \(open.id): \(reason)", actor: actor)),
                    .enqueue(try DeleteJobHandler.job(key: key, deletionID: open.id)),
                ], key: key)
                return Registration(outcome: .resumed, key: key, path: recording.path, deletionID: open.id, steps: open.steps)
            }
        default:
            guard requiring.contains(recording.state) else {
                throw DeleteError(.conflict, "\(recording.path) is \(recording.state.rawValue); not deleted now")
            }
        }
        let parts = try await store.parts(key: key)
        let refs = try await store.providerRefs(key: key)
        let steps = Self.steps(parts: parts, refs: refs, gone: gone)
        let deletion = Deletion(id: UUID().uuidString.lowercased(), recordingKey: key, reason: reason, steps: steps)
        var ops: [LedgerOp] = [
            .require(key: key, states: recording.state == .deleting ? [.deleting] : requiring),
            .setRecordingState(key: key, state: .deleting),
            .insertDeletion(deletion),
            .audit(AuditEntry(recordingKey: key, action: "delete_registered", target: nil,
                              detail: "deletion \(deletion.id): \(reason); steps: \(steps.map(\.target).joined(separator: ", "))", actor: actor)),
        ]
        for step in steps where step.state != .pending {
            ops.append(.audit(AuditEntry(recordingKey: key, action: "delete_step", target: step.target, httpStatus: step.httpStatus,
                                         detail: "\(step.state.rawValue): \(step.detail ?? "")", actor: actor)))
        }
        ops.append(.enqueue(try DeleteJobHandler.job(key: key, deletionID: deletion.id)))
        try await commit(ops, key: key)
        return Registration(outcome: .registered, key: key, path: recording.path, deletionID: deletion.id, steps: steps)
    }

    private func commit(_ ops: [LedgerOp], key: String) async throws {
        do {
            try await store.commit(ops)
        } catch let error as StoreError where error.code == .conflict {
            throw DeleteError(.conflict, "\(key) changed meanwhile: \(error.message)")
        }
    }
}

public import Foundation

/// Where a recording is in its life. The ledger is where exactly-once lives: every queue is
/// at-least-once, so each step checks the ledger before it acts.
public enum RecordingState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Registered by a scan or an enqueue; its transcode is to come.
    case pending
    /// Validated and split into parts in the spool; the uploads are to come.
    case transcoded
    /// Every part is attached to its call log.
    case uploaded
    /// Cannot succeed as it is (bad audio, bad sidecar, a permanent API refusal): see its error.
    case failed
    /// Not logged, on purpose (an internal or missed call the source's `--log` leaves out): the
    /// error code says why. Looked at again when the policy changes.
    case skipped
    /// A deletion intent is running.
    case deleting
    /// Deleted everywhere; the tombstone keeps it from coming back.
    case deleted
}

/// A recording: one source file, keyed by the SHA-256 of its bytes.
public struct Recording: Sendable, Hashable {
    /// SHA-256 of the source bytes, lowercase hex.
    public var key: String
    /// The source path as given (absolute, or relative to where the scan ran).
    public var path: String
    /// The sidecar document as it was read (JSON text), or nil.
    public var metadata: String?
    public var state: RecordingState
    public var errorCode: String?
    public var errorMessage: String?
    /// How many parts the transcode made (0 before it).
    public var partCount: Int
    /// Seconds of audio, once decoded.
    public var seconds: Double?
    public var createdAt: Date
    public var updatedAt: Date

    public init(key: String, path: String, metadata: String? = nil, state: RecordingState = .pending,
                errorCode: String? = nil, errorMessage: String? = nil, partCount: Int = 0, seconds: Double? = nil,
                createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.key = key
        self.path = path
        self.metadata = metadata
        self.state = state
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.partCount = partCount
        self.seconds = seconds
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Where one part is towards the CRM.
public enum PartState: String, Sendable, Hashable, CaseIterable, Codable {
    /// Encoded into the spool; nothing sent.
    case pending
    /// The intent to create its call log is recorded (with ``Part/marker``); the POST may have
    /// happened. Before posting again, look for the marker.
    case creating
    /// Its call log exists (``Part/callLogID``); the upload is to come or may have landed.
    case created
    /// The audio is attached to the call log.
    case attached
}

/// Who made a part's call log: what decides whether a delete may remove it.
public enum CallLogOrigin: String, Sendable, Hashable, CaseIterable, Codable {
    /// callrec created it (its note carries the part's marker).
    case created
    /// The sidecar's `call_log_id` named it: someone else made it, with whatever else it holds.
    /// Pipedrive removes a recording only with its call log, so a delete leaves it unless told.
    case given
}

/// One MP3 part of a recording in the spool, and its call log.
public struct Part: Sendable, Hashable {
    public var recordingKey: String
    /// 1-based.
    public var index: Int
    public var spoolPath: String
    public var bytes: Int64
    public var seconds: Double
    /// SHA-256 of the MP3, lowercase hex.
    public var sha256: String
    public var state: PartState
    /// Pipedrive's call-log id, once created or given by the sidecar.
    public var callLogID: String?
    /// Who made ``callLogID``'s call log. Nil for a call log of unknown origin, which a delete
    /// treats as one callrec did not create.
    public var callLogOrigin: CallLogOrigin?
    /// The marker written into the call log (note) so that a POST whose answer was lost can be
    /// found again.
    public var marker: String?
    public var createStartedAt: Date?
    public var attachedAt: Date?

    public init(recordingKey: String, index: Int, spoolPath: String, bytes: Int64, seconds: Double, sha256: String,
                state: PartState = .pending, callLogID: String? = nil, callLogOrigin: CallLogOrigin? = nil, marker: String? = nil,
                createStartedAt: Date? = nil, attachedAt: Date? = nil) {
        self.recordingKey = recordingKey
        self.index = index
        self.spoolPath = spoolPath
        self.bytes = bytes
        self.seconds = seconds
        self.sha256 = sha256
        self.state = state
        self.callLogID = callLogID
        self.callLogOrigin = callLogOrigin
        self.marker = marker
        self.createStartedAt = createStartedAt
        self.attachedAt = attachedAt
    }
}

/// What a recording is known as at a telephony provider; deleted together with its call logs.
public struct ProviderRef: Sendable, Hashable {
    /// `telnyx` or `voipnow`.
    public var provider: String
    public var recordingKey: String
    /// The provider's reference: a Telnyx recording id, or the VoipNow event as JSON text
    /// (`{"user_id","extension","event_type","event_id"}`).
    public var reference: String
    /// `live`, `deleted`.
    public var state: String

    public init(provider: String, recordingKey: String, reference: String, state: String = "live") {
        self.provider = provider
        self.recordingKey = recordingKey
        self.reference = reference
        self.state = state
    }

    public static let telnyx = "telnyx"
    public static let voipnow = "voipnow"
}

public enum DeletionStepState: String, Sendable, Hashable, CaseIterable, Codable {
    case pending, done, failed
    /// Not done, on purpose, and final: a call log callrec did not create (left unless asked),
    /// or a step a user told callrec to give up (`callrec delete --skip-step`). The detail says
    /// why; a deletion whose steps are all done or skipped finishes.
    case skipped

    /// Done or skipped: nothing left to do for this step.
    public var isSettled: Bool { self == .done || self == .skipped }
}

/// One target of a deletion: a call log, a provider recording, the spool.
public struct DeletionStep: Sendable, Hashable {
    /// Order of execution (remote and irreversible first, local last).
    public var position: Int
    /// `pipedrive:<call log id>`, `telnyx:<recording id>`, `voipnow:<event json>`, `spool`.
    public var target: String
    public var state: DeletionStepState
    public var httpStatus: Int?
    public var detail: String?
    public var updatedAt: Date

    public init(position: Int, target: String, state: DeletionStepState = .pending, httpStatus: Int? = nil,
                detail: String? = nil, updatedAt: Date = Date()) {
        self.position = position
        self.target = target
        self.state = state
        self.httpStatus = httpStatus
        self.detail = detail
        self.updatedAt = updatedAt
    }
}

/// A durable intent to delete one recording everywhere.
public struct Deletion: Sendable, Hashable {
    /// Chosen by the caller (a UUID), so that it can be named in the same commit that creates it.
    public var id: String
    public var recordingKey: String
    /// `cli`, `reconcile: call log 123 answered 404`, …
    public var reason: String
    public var steps: [DeletionStep]
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: String, recordingKey: String, reason: String, steps: [DeletionStep], createdAt: Date = Date(),
                finishedAt: Date? = nil) {
        self.id = id
        self.recordingKey = recordingKey
        self.reason = reason
        self.steps = steps
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

/// One line of the append-only audit table.
public struct AuditEntry: Sendable, Hashable {
    /// Assigned by the store (0 before insertion).
    public var id: Int64
    public var at: Date
    public var recordingKey: String?
    /// `create_call_log`, `upload`, `delete_step`, `tombstone`, `reconcile_plan`, …
    public var action: String
    public var target: String?
    public var httpStatus: Int?
    public var detail: String?
    /// Who acted: `host:pid` of the worker or CLI.
    public var actor: String

    public init(id: Int64 = 0, at: Date = Date(), recordingKey: String?, action: String, target: String? = nil,
                httpStatus: Int? = nil, detail: String? = nil, actor: String) {
        self.id = id
        self.at = at
        self.recordingKey = recordingKey
        self.action = action
        self.target = target
        self.httpStatus = httpStatus
        self.detail = detail
        self.actor = actor
    }
}

/// Outlives the deletion of a recording: a scan that meets the same bytes again skips them.
public struct Tombstone: Sendable, Hashable {
    public var key: String
    public var path: String
    public var reason: String
    public var deletedAt: Date

    public init(key: String, path: String, reason: String, deletedAt: Date = Date()) {
        self.key = key
        self.path = path
        self.reason = reason
        self.deletedAt = deletedAt
    }
}

/// One change in a ``CallStore/commit(_:)``: all the ops of a commit apply in one transaction,
/// or none does.
public enum LedgerOp: Sendable, Hashable {
    /// Aborts the commit with ``StoreError/Code/conflict`` unless the recording exists and is in
    /// one of `states`.
    case require(key: String, states: Set<RecordingState>)
    /// Inserts the recording; does nothing when the key exists already.
    case insertRecording(Recording)
    /// Inserts the recording; aborts the commit with ``StoreError/Code/conflict`` when the key
    /// exists already (registration: the same bytes registered by another file or run meanwhile
    /// must not have their sidecar's references overwritten by this one's).
    case registerRecording(Recording)
    /// Replaces the sidecar document stored with the recording (a sidecar mended after its
    /// registration), and updates `updated_at`.
    case setRecordingMetadata(key: String, metadata: String?)
    /// Sets the state and error (nil clears it), and updates `updated_at`.
    case setRecordingState(key: String, state: RecordingState, errorCode: String? = nil, errorMessage: String? = nil)
    /// Sets the part count and seconds after a transcode.
    case setRecordingAudio(key: String, partCount: Int, seconds: Double)
    /// Replaces every part of the recording with these.
    case replaceParts(key: String, parts: [Part])
    /// Writes every field of one existing part (matched by key and index).
    case updatePart(Part)
    /// Inserts or replaces a provider reference (matched by key and provider).
    case putProviderRef(ProviderRef)
    /// Replaces every provider reference of the recording with these (a mended sidecar that
    /// names other references, or none).
    case replaceProviderRefs(key: String, refs: [ProviderRef])
    /// Inserts a deletion with its steps.
    case insertDeletion(Deletion)
    /// Updates one step (matched by deletion id and target).
    case updateDeletionStep(deletionID: String, target: String, state: DeletionStepState, httpStatus: Int?, detail: String?)
    /// Marks the deletion finished.
    case finishDeletion(id: String)
    /// Appends to the audit table.
    case audit(AuditEntry)
    /// Inserts the tombstone; keeps the first when the key has one already.
    case tombstone(Tombstone)
    /// Enqueues a job in the same transaction (its result comes back from ``CallStore/commit(_:)``).
    case enqueue(NewJob)
    /// Makes a discarded or cancelled job available again with its attempts reset, as
    /// ``CallStore/retry(ids:)`` does, in the same transaction as the ledger change that lets it
    /// work (a failed recording made ready again). Aborts the commit with
    /// ``StoreError/Code/conflict`` when the job does not exist, is in another state, or its
    /// unique key is live in another job.
    case retryJob(id: Int64)
    /// Aborts the commit with ``StoreError/Code/conflict`` when a job with this unique key is
    /// available or running (a recording's spool is not pruned while a job may still use it).
    case requireNoLiveJob(uniqueKey: String)
    /// Inserts or replaces what the ledger knows of a source file (matched by path).
    case putSourceFile(SourceFile)
    /// Moves a recording to another source file (a PBX's script converted `x.wav` to `x.mp3`).
    case setRecordingPath(key: String, path: String)
    /// Inserts CDR rows; a row whose (pbx, rowKey) is known already is left as it is.
    case insertCDRRows([StoredCDRRow])
    /// Writes the cursor of a CDR file; aborts the commit with ``StoreError/Code/conflict`` when
    /// the stored offset is not `expectedOffset` (nil: no cursor stored), so that two readers of
    /// one file never both commit the same bytes.
    case putCDRCursor(CDRCursor, expectedOffset: Int64?)
    /// Makes these jobs (by unique key) due now if they are available and waiting, keeping their
    /// attempts (a CDR row arrived for a recording that waits for it).
    case wakeJobs(uniqueKeys: [String])
    /// Inserts verified Telnyx events; an event whose id is known already is left as it is
    /// (a second delivery).
    case insertTelnyxEvents([TelnyxEventRow])
    /// Applies `ops` unless the ledger knows `key` (a recording or a tombstone): a registration
    /// decided inside the commit, with no read before it (the webhook's hot path). Enqueues
    /// inside it return no result.
    indirect case unlessKnown(key: String, ops: [LedgerOp])
    /// Inserts or replaces the recording's waveform (the console draws it).
    case putWaveform(key: String, waveform: Waveform)
    /// Replaces the recording's warning codes (`one_way_audio`, `clipping` …: what its transcode
    /// found; the console's list filters on them).
    case putWarnings(key: String, codes: [String])
    /// Adds `tokens` (negative: given back) to what the processes sharing one Pipedrive account
    /// spent in one budget day, and records that day's budget and reset (the console shows them).
    case addPipedriveSpend(budgetDay: Int64, tokens: Int, dailyTokens: Int, resetsAt: Date)
    /// Makes due now the waiting jobs of the recordings the stored `call.recording.saved` events
    /// of these call sessions announced (unique key: `uniqueKeyPrefix` + recording key), keeping
    /// their attempts: a call event wakes the recordings that wait for it.
    case wakeTelnyxSessions(_ sessions: [String], uniqueKeyPrefix: String)
}

/// Which recordings ``CallStore/recordings(_:)`` lists, in key order.
public struct RecordingQuery: Sendable, Hashable {
    public var states: Set<RecordingState>?
    public var path: String?
    /// Keys strictly greater than this (for paging).
    public var afterKey: String?
    public var limit: Int

    public init(states: Set<RecordingState>? = nil, path: String? = nil, afterKey: String? = nil, limit: Int = 1000) {
        self.states = states
        self.path = path
        self.afterKey = afterKey
        self.limit = limit
    }
}

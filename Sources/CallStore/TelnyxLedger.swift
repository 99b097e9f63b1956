public import Foundation

// The Telnyx ledger's logical schema (migration v4 of both backends):
//
// - `telnyx_event` (event_id PK, event_type, call_session_id, call_leg_id, occurred_at,
//   received_at, document, recording_key), indexed on (call_session_id, occurred_at): a verified webhook is
//   stored once, whatever number of times it is delivered; a call's facts are read back by its
//   session. An empty session or leg id is stored as none (as the CDR rows' join keys).

/// One verified Telnyx webhook event as the ledger keeps it (CallTelnyx's `TelnyxEvent`; the
/// store does not read the document).
public struct TelnyxEventRow: Sendable, Hashable {
    /// The event's id (`data.id`): unique; a second delivery is left as the first was stored.
    public var id: String
    public var type: String
    public var callSessionID: String?
    public var callLegID: String?
    public var occurredAt: Date?
    public var receivedAt: Date
    /// The event's `data` object, JSON text.
    public var document: String
    /// The recording a `call.recording.saved` event announced (its key in the ledger): what
    /// ``LedgerOp/wakeTelnyxSessions(_:uniqueKeyPrefix:)`` wakes the jobs of.
    public var recordingKey: String?

    public init(id: String, type: String, callSessionID: String?, callLegID: String?, occurredAt: Date?, receivedAt: Date = Date(),
                document: String, recordingKey: String? = nil) {
        self.id = id
        self.type = type
        self.callSessionID = callSessionID
        self.callLegID = callLegID
        self.occurredAt = occurredAt
        self.receivedAt = receivedAt
        self.document = document
        self.recordingKey = recordingKey
    }
}

extension TelnyxEventRow {
    /// The order of ``CallStore/telnyxEvents(sessions:)``: by `occurredAt` (events without one
    /// last), then by id in byte order (as both backends compare text keys).
    public static func precedes(_ a: TelnyxEventRow, _ b: TelnyxEventRow) -> Bool {
        switch (a.occurredAt, b.occurredAt) {
        case (let x?, let y?) where x != y: x < y
        case (nil, _?): false
        case (_?, nil): true
        default: a.id.utf8.lexicographicallyPrecedes(b.id.utf8)
        }
    }
}

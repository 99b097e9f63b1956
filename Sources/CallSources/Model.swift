public import CallAPI
public import CallPhone
public import Foundation

/// Where recordings come from (`--source`).
public enum SourceKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// A `<stem>.json` sidecar beside each recording (DESIGN §2): the behaviour before PBX sources.
    case sidecar
    /// FreePBX/Asterisk MixMonitor: `YYYY/MM/DD/<kind>-<to>-<from>-YYYYMMDD-HHMMSS-<uniqueid>.<ext>`.
    case freepbx
    /// 3CX v16/v18: `Recordings/<ext>/[<name>]_<from>-<to>_<YYYYMMDDHHMMSS>(<callid>).wav`.
    case threeCX = "3cx"
    /// FusionPBX: `archive/YYYY/Mon/DD/<uuid>.<ext>`.
    case fusionpbx
}

/// Which way a call went, seen from the company.
public enum CallDirection: String, Sendable, Hashable, CaseIterable, Codable {
    case inbound, outbound, `internal`
}

/// A wall-clock time as a PBX wrote it, in its own time zone (no offset known yet).
public struct LocalDateTime: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    public var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int

    public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    public static func < (a: LocalDateTime, b: LocalDateTime) -> Bool {
        (a.year, a.month, a.day, a.hour, a.minute, a.second) < (b.year, b.month, b.day, b.hour, b.minute, b.second)
    }

    /// `YYYY-MM-DD HH:MM:SS`.
    public var description: String {
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(hour)):\(two(minute)):\(two(second))"
    }
}

/// A time in a CDR: a local wall-clock time, or an instant (epoch columns, `usegmtime`).
public enum CDRTime: Sendable, Hashable, Codable {
    case local(LocalDateTime)
    case instant(Date)
}

/// A warning about one recording's facts: a machine code and a sentence naming the file and field.
public struct SourceWarning: Sendable, Hashable, Codable {
    public var code: String
    public var message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    /// A number libphonenumber cannot make valid: kept as the PBX wrote it.
    public static let numberInvalid = "number_invalid"
    /// No CDR row arrived within the wait: the file name's facts were used.
    public static let cdrMissing = "cdr_missing"
    /// Several CDR calls fit the recording (Master.csv without uniqueid): none was used.
    public static let cdrAmbiguous = "cdr_ambiguous"
    /// A local time in the hour a DST change repeats, with nothing to tell which: the earlier.
    public static let ambiguousLocalTime = "ambiguous_local_time"
    /// A local time in the hour a DST change skips: read with the offset before the change.
    public static let nonexistentLocalTime = "nonexistent_local_time"
    /// The extension has no Pipedrive user in the config's `users` map.
    public static let noUser = "no_user"
    /// No number for Pipedrive's required `to_phone_number`: the extension (or the PBX's name) was used.
    public static let numberMissing = "number_missing"
}

/// Why a recording's call is not logged (the report's reason codes; nothing disappears silently).
public enum SkipReason: String, Sendable, Hashable, Codable {
    /// Extension to extension (`--log internal` logs it).
    case internalCall = "internal_call"
    /// Not answered (`--log missed` logs it).
    case missedCall = "missed_call"
    /// The file name fits no layout of the source.
    case unrecognisedName = "unrecognised_name"
}

/// What a recording's file name (and path) says about its call, per layout.
public struct NameFacts: Sendable, Hashable, Codable {
    /// The PBX's id of the call: FreePBX uniqueid, 3CX `<ext>/<stamp>(<callid>)`, FusionPBX uuid.
    public var callID: String
    /// FreePBX's recording kind (`in`, `out`, `exten`, `internal`, `rg`, `q`, …).
    public var kind: String?
    /// The calling side as written (caller id, extension).
    public var from: String?
    /// The called side as written (dialled number, DID, extension).
    public var to: String?
    /// The call's start in the PBX's local time (FusionPBX: the folder's day only, at midnight).
    public var localStart: LocalDateTime?
    /// Whether ``localStart`` has a time of day (false: the date alone).
    public var hasTimeOfDay: Bool
    /// The agent's extension, when the layout says (3CX: the folder).
    public var `extension`: String?
    /// An instant the name carries (the uniqueid's epoch), to tell a repeated local hour apart.
    public var anchor: Date?
    /// Direction when the layout says it (FreePBX `in`/`out`), else nil (decided by extensions).
    public var directionHint: CallDirection?
    /// A display name (3CX's `[name]`).
    public var displayName: String?
    /// The file's stem (its name without the extension): what a CDR's `recordingfile` names.
    public var stem: String

    public init(callID: String, kind: String? = nil, from: String? = nil, to: String? = nil, localStart: LocalDateTime? = nil,
                hasTimeOfDay: Bool = true, extension: String? = nil, anchor: Date? = nil, directionHint: CallDirection? = nil,
                displayName: String? = nil, stem: String) {
        self.callID = callID
        self.kind = kind
        self.from = from
        self.to = to
        self.localStart = localStart
        self.hasTimeOfDay = hasTimeOfDay
        self.extension = `extension`
        self.anchor = anchor
        self.directionHint = directionHint
        self.displayName = displayName
        self.stem = stem
    }
}

/// The kinds of CDR export callrec reads, recognised from their columns.
public enum CDRKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// Asterisk cdr_csv `Master.csv`: no header; 16 columns, plus uniqueid, userfield and the
    /// three `newcdrcolumns` when enabled.
    case asteriskMaster = "asterisk_master"
    /// A CSV export of FreePBX's `asteriskcdrdb.cdr` (header row).
    case freepbxCDR = "freepbx_cdr"
    /// FusionPBX's CDR CSV export (header row).
    case fusionpbxCDR = "fusionpbx_cdr"
}

/// One CDR row in the vocabulary callrec uses for all kinds (Asterisk's), with the columns it
/// came from kept in ``fields``.
public struct CDRRow: Sendable, Hashable, Codable {
    public var kind: CDRKind
    /// Unique per row and stable across re-reads (a hash of the row's text): what dedups a CDR
    /// file read twice.
    public var rowKey: String
    public var uniqueid: String?
    public var linkedid: String?
    /// The stem of the recording file the row names (`recordingfile`, `record_name`).
    public var recordingStem: String?
    /// Asterisk `src` / FusionPBX `caller_id_number`.
    public var source: String?
    /// Asterisk `dst` / FusionPBX `destination_number`.
    public var destination: String?
    public var did: String?
    public var callerNumber: String?
    public var callerName: String?
    public var channel: String?
    public var destinationChannel: String?
    public var lastApplication: String?
    public var start: CDRTime?
    public var answer: CDRTime?
    public var end: CDRTime?
    public var duration: Int?
    public var billsec: Int?
    /// `ANSWERED`, `NO ANSWER`, `BUSY`, `FAILED`, `CONGESTION`, `CANCEL`, `VOICEMAIL`.
    public var disposition: String
    /// FusionPBX's `direction` (`inbound`, `outbound`, `local`).
    public var direction: CallDirection?
    /// Every column by name, as read.
    public var fields: [String: String]

    public init(kind: CDRKind, rowKey: String, disposition: String, fields: [String: String] = [:]) {
        self.kind = kind
        self.rowKey = rowKey
        self.disposition = disposition
        self.fields = fields
    }
}

/// Everything known about one call, from its CDR leg and its file name: what its call log is
/// built from.
public struct CallFacts: Sendable, Hashable, Codable {
    public var pbx: String
    public var callID: String
    public var direction: CallDirection
    /// The other party (never an extension of the company for an external call).
    public var other: PhoneNumber
    /// The company's side: the DID dialled, or the caller id sent out.
    public var company: PhoneNumber?
    /// The agent's extension.
    public var `extension`: String?
    /// The other party's extension, for an internal call.
    public var otherExtension: String?
    public var otherName: String?
    public var start: Date
    public var answer: Date?
    public var end: Date?
    /// Seconds talked (CDR `billsec`), when a CDR said.
    public var billsec: Int?
    /// Asterisk's vocabulary plus `VOICEMAIL`.
    public var disposition: String
    /// Whether a CDR row gave these facts (false: the file name alone).
    public var fromCDR: Bool
    public var warnings: [SourceWarning]

    public init(pbx: String, callID: String, direction: CallDirection, other: PhoneNumber, company: PhoneNumber? = nil,
                extension: String? = nil, otherExtension: String? = nil, otherName: String? = nil, start: Date, answer: Date? = nil,
                end: Date? = nil, billsec: Int? = nil, disposition: String, fromCDR: Bool, warnings: [SourceWarning] = []) {
        self.pbx = pbx
        self.callID = callID
        self.direction = direction
        self.other = other
        self.company = company
        self.extension = `extension`
        self.otherExtension = otherExtension
        self.otherName = otherName
        self.start = start
        self.answer = answer
        self.end = end
        self.billsec = billsec
        self.disposition = disposition
        self.fromCDR = fromCDR
        self.warnings = warnings
    }
}

/// What becomes of one call: a call log to create, or a documented reason not to.
public enum CallDecision: Sendable {
    case log(CallLogDraft, warnings: [SourceWarning])
    case skip(SkipReason, message: String)
}

/// Links a call log to the CRM's person, organization, deal or lead before it is created
/// (issue 17). Called with the facts and the draft the builder made.
public protocol CallLinker: Sendable {
    func link(_ facts: CallFacts, draft: inout CallLogDraft) async -> [SourceWarning]
}

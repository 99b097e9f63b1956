public import CallAPI
public import CallSources
import CallSupport
import CallTelnyx
import Crypto
import Foundation

/// The identity of a PBX recording (D6): the call, not the bytes. A WAV converted to MP3, a
/// `touch`, or the same call under a second root keep one key, so one call log.
public enum SourceIdentity {
    /// Lowercase hex SHA-256 of `"callrec-call\0" + pbx + "\0" + callID`: 64 hex digits like a
    /// byte key, so spool paths, markers and `delete --recording KEY` work unchanged.
    public static func key(pbx: String, callID: String) -> String {
        lowercaseHex(SHA256.hash(data: Data("callrec-call\u{0}\(pbx)\u{0}\(callID)".utf8)))
    }
}

/// The resolved settings of a source, as a recording's metadata keeps them: what the call-log
/// builder reads, so a worker without the config file still builds the same call log.
public struct SourceSettingsSnapshot: Codable, Sendable, Hashable {
    public var name: String
    public var kind: String
    public var root: String
    public var pbx: String
    public var timeZone: String
    public var region: String?
    /// nil: the default (2 to 5 digits).
    public var extensions: String?
    public var log: [String]
    public var outcomes: [String: String]
    public var users: [String: Int]
    public var cdrWaitSeconds: Double
    public var cdrFiles: [String]
    public var subject: String
    public var note: String

    enum CodingKeys: String, CodingKey {
        case name, kind, root, pbx, region, extensions, log, outcomes, users, subject, note
        case timeZone = "timezone", cdrWaitSeconds = "cdr_wait_seconds", cdrFiles = "cdr_files"
    }

    public init(_ settings: SourceSettings) {
        name = settings.name
        kind = settings.kind.rawValue
        root = settings.root
        pbx = settings.pbx
        timeZone = settings.timeZone.identifier
        region = settings.region
        extensions = settings.extensions.ranges == nil ? nil : settings.extensions.description
        log = settings.log.map(\.rawValue).sorted()
        outcomes = settings.outcomes
        users = settings.users
        cdrWaitSeconds = settings.cdrWait.seconds
        cdrFiles = settings.cdrFiles
        subject = settings.subjectTemplate
        note = settings.noteTemplate
    }

    /// The settings again (what cannot be read back falls back to the default).
    public var settings: SourceSettings {
        SourceSettings(name: name, kind: SourceKind(rawValue: kind) ?? .freepbx, root: root, pbx: pbx, cdrFiles: cdrFiles,
                       timeZone: TimeZone(identifier: timeZone) ?? .current, region: region,
                       extensions: extensions.flatMap { try? ExtensionSet.parse($0) } ?? .default,
                       log: Set(log.compactMap(LoggedKind.init(rawValue:))), outcomes: outcomes, users: users,
                       cdrWait: .milliseconds(Int64((cdrWaitSeconds * 1000).rounded())), subjectTemplate: subject, noteTemplate: note)
    }
}

/// The metadata of a PBX recording (the `recording.metadata` JSON text, D7): where its file is
/// and what its name says, until when it waits for its CDR row, and — once resolved, committed
/// before the first create — its call log and the facts it was built from.
public struct SourceMetadata: Codable, Sendable {
    public struct Source: Codable, Sendable {
        public var kind: String
        public var pbx: String
        public var name: String
        public var root: String
        public var relativePath: String
        public var callID: String
        public var nameFacts: NameFacts
        /// Epoch seconds: the file's close (mtime) + the CDR wait.
        public var cdrWaitUntil: Double
        /// Epoch seconds: the file's mtime when it was taken (stands in for times a name lacks).
        public var fileModified: Double?
        public var settings: SourceSettingsSnapshot

        enum CodingKeys: String, CodingKey {
            case kind, pbx, name, root, settings
            case relativePath = "relative_path", callID = "call_id", nameFacts = "name_facts", cdrWaitUntil = "cdr_wait_until"
            case fileModified = "file_modified"
        }
    }

    public var source: Source
    /// The call log to create; nil until the recording's facts are resolved.
    public var callLog: CallLogDraft?
    public var facts: CallFacts?
    /// What resolving the facts warned of (`cdr_missing`, `number_invalid`, …).
    public var warnings: [SourceWarning]
    /// A Telnyx recording (`source.kind` `telnyx`): what its webhook or the listing said, the
    /// recording id once known, and the downloaded file's hash (``TelnyxDownload``).
    public var telnyx: TelnyxSourceState?

    enum CodingKeys: String, CodingKey {
        case source, facts, warnings, telnyx
        case callLog = "call_log"
    }

    public init(source: Source, callLog: CallLogDraft? = nil, facts: CallFacts? = nil, warnings: [SourceWarning] = [],
                telnyx: TelnyxSourceState? = nil) {
        self.source = source
        self.callLog = callLog
        self.facts = facts
        self.warnings = warnings
        self.telnyx = telnyx
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        source = try c.decode(Source.self, forKey: .source)
        callLog = try c.decodeIfPresent(CallLogDraft.self, forKey: .callLog)
        facts = try c.decodeIfPresent(CallFacts.self, forKey: .facts)
        warnings = try c.decodeIfPresent([SourceWarning].self, forKey: .warnings) ?? []
        telnyx = try c.decodeIfPresent(TelnyxSourceState.self, forKey: .telnyx)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(callLog, forKey: .callLog)  // null until resolved
        try c.encode(facts, forKey: .facts)
        try c.encode(warnings, forKey: .warnings)
        try c.encodeIfPresent(telnyx, forKey: .telnyx)
    }

    /// The call's length from its call log (end − start, or `duration`), when a CDR said how long
    /// the call was talked (else the call log's length is the audio's).
    public var declaredCallSeconds: Double? {
        guard let facts, facts.billsec != nil, facts.disposition.uppercased() == "ANSWERED" else { return nil }
        return Sidecar(callLog: callLog).declaredCallSeconds
    }

    /// The metadata of a PBX recording; nil for a sidecar recording (its metadata is the
    /// sidecar, which has no `source`) or none.
    public static func parse(_ text: String?) -> SourceMetadata? {
        guard let text, text.contains("\"source\"") else { return nil }
        return try? decoder.decode(SourceMetadata.self, from: Data(text.utf8))
    }

    /// The JSON text stored as the recording's metadata.
    public var text: String {
        String(decoding: (try? Self.encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
    }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .secondsSince1970
        return encoder
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return decoder
    }
}

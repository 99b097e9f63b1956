public import Foundation

/// One source's settings, after the config file's `defaults`, its `sources` entry and the flags
/// are merged (flags win): what the layouts, the CDR join and the call-log builder read.
public struct SourceSettings: Sendable, Hashable {
    /// The name the config gives the source (`hq`); the ad-hoc source of the flags is named by its kind.
    public var name: String
    public var kind: SourceKind
    /// The directory the layout's paths are relative to.
    public var root: String
    /// Part of every call's identity: two PBXs of the same kind need different names.
    public var pbx: String
    /// CDR exports to join (`--cdr`).
    public var cdrFiles: [String]
    /// The PBX's local time zone (`--timezone`); the file names and local CDR columns are in it.
    public var timeZone: TimeZone
    /// Default country for numbers without one (`--region`, ISO 3166 alpha-2), or nil.
    public var region: String?
    /// Internal numbers (`--extensions`).
    public var extensions: ExtensionSet
    /// Call kinds logged besides external answered ones (`--log`).
    public var log: Set<LoggedKind>
    /// Disposition → call-log outcome overrides (`--outcome`), keys in Asterisk's vocabulary
    /// (`NO ANSWER`, `VOICEMAIL`).
    public var outcomes: [String: String]
    /// Extension → Pipedrive user id (the config's `users`).
    public var users: [String: Int]
    /// How long a recording waits for its CDR row before it goes on with its file name's facts.
    public var cdrWait: Duration
    /// Call-log subject and note templates (`{placeholder}`s; see ``CallLogTemplates``).
    public var subjectTemplate: String
    public var noteTemplate: String
    /// How a watching worker learns of new files.
    public var watchMode: WatchMode
    public var pollInterval: Duration
    /// How long a file must have been still before it is taken (the config's `settle`); nil:
    /// the command's `--settle`.
    public var settle: Duration?

    public init(name: String? = nil, kind: SourceKind, root: String, pbx: String? = nil, cdrFiles: [String] = [],
                timeZone: TimeZone = .current, region: String? = nil, extensions: ExtensionSet = .default, log: Set<LoggedKind> = [],
                outcomes: [String: String] = [:], users: [String: Int] = [:], cdrWait: Duration = .seconds(600),
                subjectTemplate: String = SourceSettings.defaultSubject, noteTemplate: String = SourceSettings.defaultNote,
                watchMode: WatchMode = .auto, pollInterval: Duration = .seconds(2)) {
        self.name = name ?? kind.rawValue
        self.kind = kind
        self.root = root
        self.pbx = pbx ?? name ?? kind.rawValue
        self.cdrFiles = cdrFiles
        self.timeZone = timeZone
        self.region = region
        self.extensions = extensions
        self.log = log
        self.outcomes = outcomes
        self.users = users
        self.cdrWait = cdrWait
        self.subjectTemplate = subjectTemplate
        self.noteTemplate = noteTemplate
        self.watchMode = watchMode
        self.pollInterval = pollInterval
    }

    /// `Inbound call from +1 212-555-0123 · ext 101`.
    public static let defaultSubject = "{direction_title} call {with_other}{ext_suffix}"
    /// HTML (the values are escaped; the upload's marker follows it):
    /// `<p>Inbound call from +1 212-555-0123 · ext 101: answered, 2:05.</p><p>Started 2026-03-08 09:15:00 -04:00 (2026-03-08 13:15:00 UTC). PBX hq, call 1772975700.12.</p>`
    public static let defaultNote = "<p>{direction_title} call {with_other}{ext_suffix}: {outcome_text}, {duration}.</p><p>Started {start_local} ({start_utc}). PBX {pbx}, call {call_id}.</p>"

    /// A digest of what decides whether a call is logged: a skipped call is looked at again when
    /// it changes (`--log` edited).
    public var policyDigest: String {
        "log=" + log.map(\.rawValue).sorted().joined(separator: ",") + ";ext=" + extensions.description
    }
}

/// Call kinds `--log` adds to the external answered calls that are always logged.
public enum LoggedKind: String, Sendable, Hashable, CaseIterable, Codable {
    case `internal`, missed
}

/// How a watching worker learns of new files (`--watch-mode`).
public enum WatchMode: String, Sendable, Hashable, CaseIterable, Codable {
    /// inotify, unless the directory is on a network file system (NFS, SMB, FUSE) or inotify fails.
    case auto
    case inotify
    /// Lists directories every poll interval (network mounts deliver no events).
    case poll
}

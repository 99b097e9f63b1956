public import Foundation

// The source ledger's logical schema (migration v3 of both backends):
//
// - `source_file` (path PK, directory, pbx, device, inode, size, modified_ns, changed_ns,
//   recording_key, audio_sha256, verdict, reason, policy_digest, seen_at), indexed on
//   (directory, path) — a scan reads one directory with one indexed query — and recording_key;
// - `cdr_row` (id in ingestion order, pbx, row_key, uniqueid, linkedid, stem, day, document,
//   ingested_at), UNIQUE (pbx, row_key), indexed on (pbx, uniqueid), (pbx, linkedid),
//   (pbx, stem) and (pbx, day); an empty key is stored as NULL and matches nothing;
// - `cdr_cursor` (pbx + path PK, device, inode, byte_offset, kind, header).
//
// Device and inode numbers are stored as the signed 64-bit integers with the same bits.

/// What the ledger remembers of one file under a PBX source's root: its stamp (so that a rescan
/// of a tree already done opens no file) and what became of it.
public struct SourceFile: Sendable, Hashable {
    /// Absolute path.
    public var path: String
    /// The directory holding it (absolute): what a scan loads at once.
    public var directory: String
    /// The source's PBX name (part of the call's identity).
    public var pbx: String
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    /// Modification and status-change times, nanoseconds since 1970.
    public var modifiedNanos: Int64
    public var changedNanos: Int64
    /// The recording (call) the file belongs to, when it has one.
    public var recordingKey: String?
    /// SHA-256 of the file's bytes when they were read (nil when never read).
    public var audioSHA256: String?
    /// `registered`, `skipped`, `converted`, `same_call`, `changed_after_upload`, `failed`, `waiting`.
    public var verdict: String
    /// The reason code that goes with the verdict (`internal_call`, `unrecognised_name`, …).
    public var reason: String?
    /// ``SourceSettings/policyDigest`` when the verdict was taken: a skip is looked at again when
    /// the policy changes.
    public var policyDigest: String?
    public var seenAt: Date

    public init(path: String, directory: String, pbx: String, device: UInt64, inode: UInt64, size: Int64, modifiedNanos: Int64,
                changedNanos: Int64, recordingKey: String? = nil, audioSHA256: String? = nil, verdict: String, reason: String? = nil,
                policyDigest: String? = nil, seenAt: Date = Date()) {
        self.path = path
        self.directory = directory
        self.pbx = pbx
        self.device = device
        self.inode = inode
        self.size = size
        self.modifiedNanos = modifiedNanos
        self.changedNanos = changedNanos
        self.recordingKey = recordingKey
        self.audioSHA256 = audioSHA256
        self.verdict = verdict
        self.reason = reason
        self.policyDigest = policyDigest
        self.seenAt = seenAt
    }
}

/// One CDR row as the ledger keeps it: the keys it is found by, and the row itself as JSON
/// (CallSources' `CDRRow`; the store does not read it).
public struct StoredCDRRow: Sendable, Hashable {
    public var pbx: String
    /// Unique per PBX: a row ingested twice (a file re-read after rotation) is kept once.
    public var rowKey: String
    public var uniqueid: String?
    public var linkedid: String?
    /// The stem of the recording file the row names.
    public var stem: String?
    /// The local day of the call's start, `YYYY-MM-DD` (rows without a join key are matched
    /// within their day).
    public var day: String?
    public var document: String
    public var ingestedAt: Date

    public init(pbx: String, rowKey: String, uniqueid: String?, linkedid: String?, stem: String?, day: String?, document: String,
                ingestedAt: Date = Date()) {
        self.pbx = pbx
        self.rowKey = rowKey
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.stem = stem
        self.day = day
        self.document = document
        self.ingestedAt = ingestedAt
    }
}

/// How far a CDR file has been read: resumed while the file is the same (device and inode) and
/// no shorter; read again from the start otherwise (rotated, replaced, truncated).
public struct CDRCursor: Sendable, Hashable {
    public var pbx: String
    public var path: String
    public var device: UInt64
    public var inode: UInt64
    /// Bytes read (always at the end of a complete line).
    public var offset: Int64
    /// CallSources' `CDRKind` raw value.
    public var kind: String
    /// The header row's columns (comma-joined) for kinds with one.
    public var header: String?

    public init(pbx: String, path: String, device: UInt64, inode: UInt64, offset: Int64, kind: String, header: String? = nil) {
        self.pbx = pbx
        self.path = path
        self.device = device
        self.inode = inode
        self.offset = offset
        self.kind = kind
        self.header = header
    }

    /// The error of a failed compare-and-set of this cursor (``LedgerOp/putCDRCursor(_:expectedOffset:)``):
    /// the stored offset (nil: no cursor) was not the one expected.
    public func conflict(expected: Int64?, stored: Int64?) -> StoreError {
        let was = stored.map { "is at \($0)" } ?? "has no cursor"
        let thought = expected.map { "at \($0)" } ?? "without one"
        return StoreError(.conflict, "the cursor of the CDR file \(path) of \(pbx) \(was), not \(thought): another reader committed meanwhile")
    }
}

/// Which CDR rows ``CallStore/cdrRows(_:)`` returns: those of `pbx` matching any of the keys.
public struct CDRRowQuery: Sendable, Hashable {
    public var pbx: String
    public var uniqueids: [String]
    public var linkedids: [String]
    public var stems: [String]
    public var days: [String]

    public init(pbx: String, uniqueids: [String] = [], linkedids: [String] = [], stems: [String] = [], days: [String] = []) {
        self.pbx = pbx
        self.uniqueids = uniqueids
        self.linkedids = linkedids
        self.stems = stems
        self.days = days
    }
}

public import CallAudio
public import CallStore
public import Foundation

/// The `--json` document of DESIGN §7: one entry per file, then the summary.
public struct BatchReport: Sendable, Encodable {
    public var files: [FileReport]
    public var summary: Summary

    public struct Summary: Sendable, Encodable {
        public var ok = 0
        public var failed = 0
        public var skipped = 0
        /// Not finished, and nothing is wrong with them: their jobs wait (a spent daily budget, a
        /// long rate-limit pause) until ``resumeAfter``; a later run goes on.
        public var waiting = 0
        public var resumeAfter: Date?
        /// Why the run stopped before its work was done (`disk_full`): the recordings not
        /// finished wait, intact, for a run after the cause is mended. Absent from the JSON when
        /// the run did not stop.
        public var stopped: FileReport.ErrorReport?
        public var audioSeconds = 0.0
        public var wallSeconds = 0.0

        public init() {}

        /// The counts of `files`.
        public init(files: [FileReport], wallSeconds: Double) {
            for file in files {
                switch file.status {
                case .ok: ok += 1
                case .failed: failed += 1
                case .skipped: skipped += 1
                case .waiting: waiting += 1
                }
                if let until = file.waitsUntil { resumeAfter = min(resumeAfter ?? until, until) }
                audioSeconds += file.parts.reduce(0) { $0 + $1.seconds }
            }
            self.wallSeconds = wallSeconds
        }

        enum CodingKeys: String, CodingKey {
            case ok, failed, skipped, waiting, resumeAfter = "resume_after", stopped, audioSeconds = "audio_seconds", wallSeconds = "wall_seconds"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(ok, forKey: .ok)
            try c.encode(failed, forKey: .failed)
            try c.encode(skipped, forKey: .skipped)
            try c.encode(waiting, forKey: .waiting)
            try c.encode(resumeAfter.map { ISO8601DateFormatter().string(from: $0) }, forKey: .resumeAfter)
            try c.encodeIfPresent(stopped, forKey: .stopped)
            try c.encode(audioSeconds, forKey: .audioSeconds)
            try c.encode(wallSeconds, forKey: .wallSeconds)
        }
    }
}

public struct FileReport: Sendable, Codable {
    /// `waiting`: not finished and nothing wrong; a later run goes on (upload only).
    public enum Status: String, Sendable, Codable { case ok, failed, skipped, waiting }

    public struct ErrorReport: Sendable, Codable, Equatable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public struct Part: Sendable, Codable, Equatable {
        public var path: String
        public var bytes: Int64
        public var seconds: Double
        public var frames: Int64
        public var sampleRate: Int
        public var channels: Int
        public var sha256: String
        public var cut: String
        public var callLogId: String?

        enum CodingKeys: String, CodingKey {
            case path, bytes, seconds, frames, sampleRate = "sample_rate", channels, sha256, cut
            case callLogId = "call_log_id"
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(path, forKey: .path)
            try c.encode(bytes, forKey: .bytes)
            try c.encode(seconds, forKey: .seconds)
            try c.encode(frames, forKey: .frames)
            try c.encode(sampleRate, forKey: .sampleRate)
            try c.encode(channels, forKey: .channels)
            try c.encode(sha256, forKey: .sha256)
            try c.encode(cut, forKey: .cut)
            try c.encode(callLogId, forKey: .callLogId)  // null until uploaded
        }
    }

    public var path: String
    public var key: String?
    public var status: Status
    public var error: ErrorReport?
    public var warnings: [AudioWarning]
    public var input: AudioInfo?
    public var stats: SignalStats?
    public var parts: [Part]
    /// For a file that waits: when a run may take it (in the summary's `resume_after`).
    public var waitsUntil: Date?
    /// What the call log was linked to from the CRM index, and why (absent without matching).
    public var match: MatchReport?
    /// The recording's loudness over its length, from the decode pass's envelope (a transcoded
    /// file only; the ledger keeps it, reports do not print it).
    public var waveform: Waveform?

    /// A recording's match as its audit trail holds it (`match`).
    public struct MatchReport: Sendable, Codable, Equatable {
        public var reason: String
        public var explanation: String
        /// `deal:12,person:7,organization:1`; empty when nothing was linked.
        public var linked: String

        public init(reason: String, explanation: String, linked: String) {
            self.reason = reason
            self.explanation = explanation
            self.linked = linked
        }

        /// From a `match` audit entry (its detail `reason: explanation`).
        public init?(_ entry: AuditEntry) {
            guard entry.action == "match", let detail = entry.detail, let colon = detail.firstIndex(of: ":") else { return nil }
            reason = String(detail[..<colon])
            explanation = detail[detail.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            linked = entry.target ?? ""
        }
    }

    enum CodingKeys: String, CodingKey { case path, key, status, error, warnings, input, stats, parts, match }

    public init(path: String, key: String?, status: Status, error: ErrorReport?, warnings: [AudioWarning], input: AudioInfo?,
                stats: SignalStats?, parts: [Part], waitsUntil: Date? = nil) {
        self.waitsUntil = waitsUntil
        self.path = path
        self.key = key
        self.status = status
        self.error = error
        self.warnings = warnings
        self.input = input
        self.stats = stats
        self.parts = parts
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        key = try c.decodeIfPresent(String.self, forKey: .key)
        status = try c.decode(Status.self, forKey: .status)
        error = try c.decodeIfPresent(ErrorReport.self, forKey: .error)
        warnings = try c.decode([AudioWarning].self, forKey: .warnings)
        input = try c.decodeIfPresent(AudioInfo.self, forKey: .input)
        stats = try c.decodeIfPresent(SignalStats.self, forKey: .stats)
        parts = try c.decode([Part].self, forKey: .parts)
        match = try c.decodeIfPresent(MatchReport.self, forKey: .match)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(key, forKey: .key)
        try c.encode(status, forKey: .status)
        try c.encode(error, forKey: .error)  // null when the file succeeded
        try c.encode(warnings, forKey: .warnings)
        try c.encode(input, forKey: .input)
        try c.encodeIfPresent(stats, forKey: .stats)
        try c.encode(parts, forKey: .parts)
        try c.encodeIfPresent(match, forKey: .match)
    }

    static func failed(_ path: String, code: String, _ message: String, key: String? = nil,
                       warnings: [AudioWarning] = [], input: AudioInfo? = nil) -> FileReport {
        FileReport(path: path, key: key, status: .failed, error: ErrorReport(code: code, message: message),
                   warnings: warnings, input: input, stats: nil, parts: [])
    }
}

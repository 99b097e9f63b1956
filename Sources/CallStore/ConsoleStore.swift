public import Foundation

/// What the operator's console reads beyond ``CallStore``: the recordings list with its filters
/// and keyset pagination, failures by code, and throughput. Both backends conform; the indexes
/// that keep these fast at a million recordings come with schema version 6.
public protocol ConsoleStore: CallStore {
    /// Recordings newest first (`created_at`, then key, both descending), strictly after
    /// ``RecordingPageQuery/after``: a page costs the same at the millionth row as at the first.
    func recordingPage(_ query: RecordingPageQuery) async throws -> [Recording]
    /// Failed and skipped recordings per error code, most first (at most `limit` codes).
    func failureCounts(limit: Int) async throws -> [FailureCount]
    /// Recordings now in `state` whose last change came at or after `since` (`uploaded` since an
    /// hour ago: the last hour's throughput).
    func recordingCount(state: RecordingState, changedSince since: Date) async throws -> Int
    /// When each source last delivered: every PBX kind whose files a scan registered (the last
    /// file seen), and `telnyx` (the last webhook stored); by name.
    func sourceActivity() async throws -> [SourceActivity]
    /// The waveform the transcode kept (``LedgerOp/putWaveform(key:waveform:)``), or nil.
    func waveform(key: String) async throws -> Waveform?
    /// The recording's warning codes (``LedgerOp/putWarnings(key:codes:)``), sorted.
    func warnings(key: String) async throws -> [String]
    /// The Pipedrive spend of the latest budget day any process recorded
    /// (``LedgerOp/addPipedriveSpend(budgetDay:tokens:dailyTokens:resetsAt:)``), or nil: none yet.
    func pipedriveSpend() async throws -> PipedriveSpend?
}

/// What the processes sharing one Pipedrive account spent in one budget day (table
/// `pipedrive_spend`, migration v7): each adds the tokens its limiter booked, a few seconds at a
/// time, so the console shows today's spend of every worker together.
public struct PipedriveSpend: Sendable, Hashable {
    /// Days since the epoch, each starting at the budget's reset (`PIPEDRIVE_BUDGET_RESET`).
    public var budgetDay: Int64
    public var tokens: Int
    /// The daily budget (`PIPEDRIVE_DAILY_TOKENS`) of the process that recorded last.
    public var dailyTokens: Int
    /// When this budget day ends and the budget renews.
    public var resetsAt: Date
    /// When a process last added to it.
    public var updatedAt: Date

    public init(budgetDay: Int64, tokens: Int, dailyTokens: Int, resetsAt: Date, updatedAt: Date) {
        self.budgetDay = budgetDay
        self.tokens = tokens
        self.dailyTokens = dailyTokens
        self.resetsAt = resetsAt
        self.updatedAt = updatedAt
    }
}

/// A recording's loudness over its whole length, small enough for a page (at most
/// ``Waveform/maximumPoints`` points): each point the loudest 20 ms window of its span, as a
/// level 0…255 over ``Waveform/floordB``…0 dBFS. Drawn from the envelope the decode pass computes
/// (no second decode); kept in the ledger (table `recording_waveform`, migration v6), so it
/// outlives the spool.
public struct Waveform: Sendable, Hashable {
    public static let maximumPoints = 1000
    /// The level 0 stands for this and anything quieter.
    public static let floordB: Float = -96

    /// Seconds of audio each point covers.
    public var secondsPerPoint: Double
    public var levels: [UInt8]

    public init(secondsPerPoint: Double, levels: [UInt8]) {
        self.secondsPerPoint = secondsPerPoint
        self.levels = levels
    }

    /// From windows of `windowSeconds` each, their energy in dBFS: at most ``maximumPoints``
    /// points, each the loudest window of its span.
    public init(windowSeconds: Double, decibels: [Float]) {
        let perPoint = max(1, (decibels.count + Self.maximumPoints - 1) / Self.maximumPoints)
        secondsPerPoint = windowSeconds * Double(perPoint)
        levels = stride(from: 0, to: decibels.count, by: perPoint).map { start in
            let loudest = decibels[start..<min(start + perPoint, decibels.count)].max() ?? Self.floordB
            let scaled = (max(Self.floordB, min(0, loudest.isFinite ? loudest : Self.floordB)) - Self.floordB) / -Self.floordB * 255
            return UInt8(scaled.rounded())
        }
    }

    /// The levels as base64 (how the stores keep them).
    public var encodedLevels: String { Data(levels).base64EncodedString() }

    public init?(secondsPerPoint: Double, encodedLevels: String) {
        guard let data = Data(base64Encoded: encodedLevels) else { return nil }
        self.init(secondsPerPoint: secondsPerPoint, levels: Array(data))
    }
}

/// Where a page of the recordings list starts: the last row of the previous page.
public struct RecordingCursor: Sendable, Hashable, CustomStringConvertible {
    public var createdAt: Date
    public var key: String

    public init(createdAt: Date, key: String) {
        self.createdAt = createdAt
        self.key = key
    }

    /// The cursor after `recording`.
    public init(after recording: Recording) { self.init(createdAt: recording.createdAt, key: recording.key) }

    /// `MILLIS.KEY`, as it goes into a link (``init(_:)`` reads it back).
    public var description: String { "\(Int64((createdAt.timeIntervalSince1970 * 1000).rounded())).\(key)" }

    /// Reads ``description``; nil for anything else.
    public init?(_ text: String) {
        guard let dot = text.firstIndex(of: "."), let ms = Int64(text[..<dot]) else { return nil }
        let key = String(text[text.index(after: dot)...])
        guard !key.isEmpty, key.utf8.allSatisfy({ $0 < 0x80 && $0 != 0x20 }) else { return nil }
        self.init(createdAt: Date(timeIntervalSince1970: Double(ms) / 1000), key: key)
    }
}

/// Which recordings ``ConsoleStore/recordingPage(_:)`` lists. Every filter given must hold.
public struct RecordingPageQuery: Sendable, Hashable {
    public var states: Set<RecordingState>?
    /// The recording's error code, exactly (`silence`, `one_way_audio`, `http_422` …).
    public var errorCode: String?
    /// Recordings whose transcode warned with this code (``LedgerOp/putWarnings(key:codes:)``).
    public var warningCode: String?
    /// Recordings whose source path starts with this (a source's directory).
    public var pathPrefix: String?
    /// Registered at or after this instant.
    public var createdFrom: Date?
    /// Registered before this instant.
    public var createdBefore: Date?
    /// Digits that must appear in the source path or the sidecar (a phone number as typed,
    /// reduced to its digits by the caller).
    public var digits: String?
    /// Recordings with a part attached (or being attached) to this call log.
    public var callLogID: String?
    public var after: RecordingCursor?
    public var limit: Int

    public init(states: Set<RecordingState>? = nil, errorCode: String? = nil, warningCode: String? = nil, pathPrefix: String? = nil,
                createdFrom: Date? = nil, createdBefore: Date? = nil, digits: String? = nil, callLogID: String? = nil, after: RecordingCursor? = nil,
                limit: Int = 50) {
        self.states = states
        self.errorCode = errorCode
        self.warningCode = warningCode
        self.pathPrefix = pathPrefix
        self.createdFrom = createdFrom
        self.createdBefore = createdBefore
        self.digits = digits
        self.callLogID = callLogID
        self.after = after
        self.limit = limit
    }
}

/// When a source last delivered.
public struct SourceActivity: Sendable, Hashable {
    /// `freepbx`, `3cx`, `fusionpbx`, `telnyx`.
    public var source: String
    public var lastSeen: Date

    public init(source: String, lastSeen: Date) {
        self.source = source
        self.lastSeen = lastSeen
    }
}

/// How many recordings ended with one error code.
public struct FailureCount: Sendable, Hashable {
    public var code: String
    public var count: Int

    public init(code: String, count: Int) {
        self.code = code
        self.count = count
    }
}

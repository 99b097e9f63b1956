public import CallAPI
public import CallPipeline
public import CallStore
import CallTelnyx
public import Foundation

/// `callrec telnyx backfill`: the account's recordings created in a time range (`GET
/// /v2/recordings`, `filter[created_at][gte|lte]`, 250 a page until `page_number >=
/// total_pages`), each compared with the ledger by its identity (``TelnyxRecordingInfo/key``:
/// the one a webhook registers it under, so neither comes twice; tombstones count as known). The
/// ones callrec does not know are planned; with `apply`, registered with the webhook's own ops
/// (``TelnyxIntake/registration(of:origin:now:)``), and a worker fetches and uploads them.
public enum TelnyxBackfill {
    public struct Options: Sendable {
        public var since: Date
        /// The end of the range, included (nil: now).
        public var until: Date?
        public var apply = false
        public var pageSize = 250
        /// A listing that never ends (a server that always says there is more) stops here.
        public var maxPages = 10_000

        public init(since: Date, until: Date?, apply: Bool) {
            self.since = since
            self.until = until
            self.apply = apply
        }
    }

    /// Lists, compares and (with `options.apply`) registers. Listing first, registering after:
    /// a listing that fails registers nothing. An item without its session or leg is
    /// `unreadable` (reported with the reason), never registered.
    public static func run(client: TelnyxClient, store: any CallStore, intake: TelnyxIntake, options: Options,
                           now: @Sendable () -> Date = Date.init) async throws -> TelnyxBackfillReport {
        var filters = ["created_at][gte": TelnyxBackfillReport.text(options.since)]
        if let until = options.until { filters["created_at][lte"] = TelnyxBackfillReport.text(until) }
        var report = TelnyxBackfillReport(since: filters["created_at][gte"]!, until: filters["created_at][lte"], apply: options.apply)
        var listed: [TelnyxRecording] = [], ids = Set<String>()
        var page = 1
        while page <= options.maxPages {
            let result = try await client.recordings(page: page, size: options.pageSize, filters: filters)
            report.pages += 1
            // A recording made while the listing is paged pushes the older ones down a page: the
            // same one can come twice.
            for item in result.recordings where ids.insert(item.id.lowercased()).inserted && inRange(item, options) { listed.append(item) }
            if result.recordings.isEmpty || result.pageNumber >= result.totalPages { break }
            page += 1
        }
        var keys = Set<String>()
        for item in listed {
            var line = TelnyxBackfillReport.Item(item)
            guard let info = TelnyxRecordingInfo(listing: item) else {
                line.status = .unreadable
                let missing = [("call_session_id", item.callSessionId), ("call_leg_id", item.callLegId)].filter { ($0.1 ?? "").isEmpty }.map(\.0)
                line.reason = "the listing gives no \(missing.joined(separator: " and ")): callrec cannot tell its call"
                report.recordings.append(line)
                continue
            }
            line.key = info.key
            if let known = try await knownState(info.key, store: store) {
                line.status = .known
                line.state = known
            } else if !keys.insert(info.key).inserted {
                line.status = .known
                line.state = "listed twice"
            } else if options.apply {
                let ops = try await intake.registration(of: info, origin: "backfill", now: now())
                if ops.isEmpty {
                    // Registered meanwhile (a webhook of the same recording).
                    line.status = .known
                    line.state = try await knownState(info.key, store: store) ?? "registered meanwhile"
                } else {
                    try await store.commit(ops)
                    line.status = .registered
                }
            }
            report.recordings.append(line)
        }
        return report
    }

    /// The ledger's word on `key`: its state, `deleted (tombstone)`, or nil when unknown.
    static func knownState(_ key: String, store: any CallStore) async throws -> String? {
        if let recording = try await store.recording(key: key) { return recording.state.rawValue }
        if try await store.tombstone(key: key) != nil { return "deleted (tombstone)" }
        return nil
    }

    /// Whether the item's `created_at` is in the range (an item without one is the listing's
    /// word): the server's filter is checked, not trusted.
    static func inRange(_ item: TelnyxRecording, _ options: Options) -> Bool {
        guard let created = item.createdAt.flatMap(TelnyxTime.parse) else { return true }
        return created >= options.since && created <= (options.until ?? .distantFuture)
    }

    /// `--since`/`--until` DATE: `YYYY-MM-DD` (UTC; the start of the day, or with `endOfDay` its
    /// last second) or an ISO 8601 time with its zone. A usage error naming `option` otherwise.
    public static func date(_ text: String, endOfDay: Bool, option: String) throws -> Date {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }), parts[0].count == 4 {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let components = DateComponents(year: Int(parts[0]), month: Int(parts[1]), day: Int(parts[2]))
            if components.isValidDate(in: calendar), let day = calendar.date(from: components) {
                return endOfDay ? day.addingTimeInterval(86_400 - 1) : day
            }
        } else if let date = TelnyxTime.parse(text) {
            return date
        }
        throw AppError(.usage, "\(option) \(text): not a date (YYYY-MM-DD, in UTC) or an ISO 8601 time (2026-03-08T09:15:00Z)")
    }
}

/// What `telnyx backfill` listed and did; `--json` prints it whole.
public struct TelnyxBackfillReport: Encodable, Sendable {
    public enum Status: String, Encodable, Sendable {
        /// Not in the ledger: planned (plan only).
        case new
        /// Not in the ledger: registered now (`--apply`).
        case registered
        /// In the ledger already (``Item/state`` says how), or listed twice.
        case known
        /// No session or leg: callrec cannot tell the call (``Item/reason``).
        case unreadable
    }

    public struct Item: Encodable, Sendable {
        public var recordingID: String
        public var key: String?
        public var status: Status = .new
        public var state: String?
        public var reason: String?
        public var createdAt: String?
        public var callSessionID: String?
        public var callLegID: String?
        public var seconds: Double?

        init(_ item: TelnyxRecording) {
            recordingID = item.id
            createdAt = item.createdAt
            callSessionID = item.callSessionId
            callLegID = item.callLegId
            seconds = item.durationMillis.map { Double($0) / 1000 }
        }

        enum CodingKeys: String, CodingKey {
            case recordingID = "recording_id", key, status, state, reason, createdAt = "created_at"
            case callSessionID = "call_session_id", callLegID = "call_leg_id", seconds
        }
    }

    /// The range as sent to Telnyx.
    public var since: String
    public var until: String?
    public var apply: Bool
    public var pages = 0
    public var recordings: [Item] = []

    public func count(_ status: Status) -> Int { recordings.count { $0.status == status } }

    static func text(_ date: Date) -> String { date.formatted(.iso8601) }

    enum CodingKeys: String, CodingKey { case since, until, apply, pages, totals, recordings }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(since, forKey: .since)
        try c.encodeIfPresent(until, forKey: .until)
        try c.encode(apply, forKey: .apply)
        try c.encode(pages, forKey: .pages)
        let totals = ["listed": recordings.count, "known": count(.known), "new": count(.new), "registered": count(.registered),
                      "unreadable": count(.unreadable)]
        try c.encode(totals, forKey: .totals)
        try c.encode(recordings, forKey: .recordings)
    }
}

import CallSupport
import Foundation
import HTTPTypes
import Logging
import Synchronization

/// The x-ratelimit-* values of one Pipedrive answer.
struct RateLimitHeaders: Sendable, Equatable {
    var limit: Int
    var remaining: Int
    /// Whole seconds until the window frees a slot (≥ 1).
    var reset: Int

    func apply(to fields: inout HTTPFields) {
        fields[.rateLimitLimit] = String(limit)
        fields[.rateLimitRemaining] = String(remaining)
        fields[.rateLimitReset] = String(reset)
    }
}

/// The instants of the requests admitted in a rolling window, oldest first (as times since the
/// sandbox's clock was read first: ``SandboxClock``).
struct RollingWindow: Sendable {
    let limit: Int
    let length: Duration
    private var admitted: [Duration] = []

    init(limit: Int, length: Duration) {
        self.limit = limit
        self.length = length
    }

    /// Takes a slot at `now`; false when the window is full.
    mutating func admit(_ now: Duration) -> Bool {
        prune(now)
        guard admitted.count < limit else { return false }
        admitted.append(now)
        return true
    }

    /// The x-ratelimit-* values at `now` (after ``admit(_:)``: what is left to others).
    mutating func headers(_ now: Duration, exhausted: Bool = false) -> RateLimitHeaders {
        prune(now)
        return RateLimitHeaders(limit: limit, remaining: exhausted ? 0 : max(0, limit - admitted.count), reset: resetSeconds(now))
    }

    mutating func clear() { admitted.removeAll() }

    private mutating func prune(_ now: Duration) {
        let horizon = now - length
        if let firstKept = admitted.firstIndex(where: { $0 > horizon }) {
            admitted.removeFirst(firstKept)
        } else {
            admitted.removeAll()
        }
    }

    /// Whole seconds until the oldest slot frees (≥ 1).
    private func resetSeconds(_ now: Duration) -> Int {
        let remaining = (admitted.first.map { $0 + length } ?? now + length) - now
        let seconds = Double(remaining.components.seconds) + Double(remaining.components.attoseconds) / 1e18
        return max(1, Int(seconds.rounded(.up)))
    }
}

/// The sandbox's clock (``SandboxConfiguration/clock``), its readings as times since it was
/// first read: the rate windows compare them, the `slow` fault sleeps on it.
struct SandboxClock: Sendable {
    let elapsed: @Sendable () -> Duration
    let sleep: @Sendable (Duration) async throws -> Void

    init(_ clock: any Clock<Duration>) {
        self.init(opened: clock)
    }

    private init<C: Clock<Duration>>(opened clock: C) {
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleep = { duration in try await clock.sleep(for: duration) }
    }
}

/// The rate limiter's verdict on one Pipedrive request.
enum Admission: Sendable, Equatable {
    case admitted(RateLimitHeaders)
    /// The rolling window is full.
    case burstLimited(RateLimitHeaders, retryAfter: Int)
    /// The daily token budget cannot pay for the request.
    case budgetExhausted(RateLimitHeaders, retryAfter: Int)
}

/// Everything the sandbox knows, behind one actor: call logs, Telnyx recordings, VoipNow events,
/// the Pipedrive rate limiter and the counters. Every change to the entities is written to the
/// snapshot at once (atomically) when the sandbox has a state directory.
actor SandboxState {
    private let configuration: SandboxConfiguration
    /// The clock of the rate windows and of the `slow` fault (``SandboxConfiguration/clock``).
    let clock: SandboxClock
    let files: SandboxFiles
    private let logger: Logger

    private var state = PersistedState()
    private var callLogIndex: [String: Int] = [:]
    /// The CRM (written into the snapshot's `crm` as a ``CRMSeed``).
    private var crm = CRMStore()
    /// The CRM as last exported for a snapshot (nil once it changed).
    private var crmExport: CRMSeed?
    /// The wall time, by the sandbox's clock (``SandboxConfiguration/now``).
    private let now: @Sendable () -> Date
    private var counters = SandboxCounters()
    /// The Pipedrive requests in the current rolling window.
    private var window: RollingWindow
    /// The Telnyx requests in its rolling window.
    private var telnyxWindow: RollingWindow
    /// Tokens were spent since the last snapshot (written with the next change or at shutdown).
    private var tokensDirty = false
    /// A change waits for the pending write.
    private var changed = false
    private var writer: Task<Void, Never>?
    /// How long the last snapshot took to encode and write.
    private var lastWriteCost: Duration = .zero
    /// The number of the last snapshot taken.
    private var generation = 0
    private let snapshots = SnapshotWriter()
    /// Changes within this long of each other share one write of the snapshot: it is the whole
    /// state as JSON, and writing it per change made the sandbox's cost grow with the square of
    /// the call logs. A sandbox killed with SIGKILL loses at most this much; a stopped one
    /// writes at once (``flush()``).
    static let writeDelay: Duration = .milliseconds(250)

    static let companyId = 66_660_666
    static let voipNowUserId = "1"

    init(configuration: SandboxConfiguration, files: SandboxFiles, logger: Logger) {
        self.configuration = configuration
        clock = SandboxClock(configuration.clock)
        if let now = configuration.now {
            self.now = now
        } else {
            let started = Date(), clock = self.clock
            _ = clock.elapsed()
            self.now = { started.addingTimeInterval(clock.elapsed().seconds) }
        }
        self.files = files
        self.logger = logger
        counters.dailyTokens = configuration.dailyTokens
        window = RollingWindow(limit: configuration.burstPerTwoSeconds, length: configuration.burstWindow)
        telnyxWindow = RollingWindow(limit: configuration.telnyxRequestsPerWindow, length: configuration.telnyxWindow)
    }

    // MARK: Persistence

    /// Prepares the directories and loads the snapshot, if there is one.
    func load() throws {
        try files.prepare()
        guard files.persistent, FileManager.default.fileExists(atPath: files.stateFile) else { return }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: files.stateFile))
            state = try SnakeCaseJSON.decoder().decode(PersistedState.self, from: data)
        } catch {
            throw SandboxError(.stateUnreadable, "\(files.stateFile) is not a sandbox state snapshot: \(error)")
        }
        callLogIndex = Dictionary(uniqueKeysWithValues: state.callLogs.enumerated().map { ($1.id, $0) })
        if let seed = state.crm {
            crm.upsert(seed, now: CRMTime(now()))
            crmExport = seed
            state.crm = nil
        }
        logger.info("sandbox state loaded", metadata: [
            "call_logs": "\(state.callLogs.count)", "telnyx_recordings": "\(state.telnyxRecordings.count)",
            "voipnow_events": "\(state.voipnowEvents.count)", "crm_persons": "\(crm.persons.count)", "path": "\(files.stateFile)",
        ])
    }

    /// Schedules a write of the snapshot (see ``writeDelay``).
    func persist() {
        guard files.persistent else {
            tokensDirty = false
            return
        }
        changed = true
        guard writer == nil else { return }
        // The snapshot's cost grows with the state: the delay grows with it (at least 20 times
        // the last write), so writing takes at most a twentieth of a core however long the run.
        let delay = max(Self.writeDelay, lastWriteCost * 20)
        writer = Task.detached { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.writePending()
        }
    }

    /// Takes a snapshot in the actor and encodes and writes it off the actor: the API requests
    /// are not held up while megabytes of JSON are written (they were, and the uploads' times
    /// with them).
    private func writePending() async {
        guard changed else {
            writer = nil
            return
        }
        let (snapshot, generation) = takeSnapshot()
        let started = ContinuousClock.now
        let files = self.files, logger = self.logger, snapshots = self.snapshots
        await Task.detached { snapshots.write(snapshot, generation: generation, to: files.stateFile, logger: logger) }.value
        lastWriteCost = ContinuousClock.now - started
        writer = nil
        if changed { persist() }
    }

    private func takeSnapshot() -> (PersistedState, Int) {
        changed = false
        tokensDirty = false
        generation += 1
        var snapshot = state
        if !crm.isEmpty {
            if crmExport == nil { crmExport = crm.exported }
            snapshot.crm = crmExport
        }
        return (snapshot, generation)
    }

    /// Writes the snapshot now if anything changed since the last one (at shutdown). A write
    /// still under way with an older snapshot does not replace this one (generations).
    func flush() {
        writer?.cancel()
        writer = nil
        // Also when a snapshot taken before is still being written (off the actor): the process
        // may end as soon as this returns, before that write lands.
        guard files.persistent, changed || tokensDirty || snapshots.lastWritten < generation else { return }
        let (snapshot, generation) = takeSnapshot()
        snapshots.write(snapshot, generation: generation, to: files.stateFile, logger: logger)
    }

    // MARK: Counters

    func countRequest(route: String) {
        counters.requests += 1
        counters.requestsPerRoute[route, default: 0] += 1
    }

    func countFault(_ kind: FaultPlan.Kind) {
        counters.faultsInjected[kind.rawValue, default: 0] += 1
        if kind == .tooManyRequests { counters.rateLimited += 1 }
    }

    func countUnauthorized() {
        counters.unauthorized += 1
    }

    func currentCounters() -> SandboxCounters {
        rollBudgetDay()
        var copy = counters
        copy.tokensSpent = state.tokensSpent
        return copy
    }

    func snapshot() -> SandboxSnapshot {
        SandboxSnapshot(callLogs: state.callLogs, telnyxRecordings: state.telnyxRecordings,
                        voipnowEvents: state.voipnowEvents, counters: currentCounters())
    }

    // MARK: Pipedrive rate limiting

    /// Admits a Pipedrive request of `cost` tokens, or says why not. An admitted request takes a
    /// slot in the rolling window and pays its cost; a burst 429 takes nothing; a budget 429 takes
    /// a slot (the server saw it) but no tokens.
    func admit(cost: Int) -> Admission {
        let now = clock.elapsed()
        rollBudgetDay()
        guard window.admit(now) else {
            counters.rateLimited += 1
            counters.burstLimited += 1
            let headers = window.headers(now, exhausted: true)
            return .burstLimited(headers, retryAfter: headers.reset)
        }
        let headers = window.headers(now)
        if state.tokensSpent >= configuration.dailyTokens || state.tokensSpent + cost > configuration.dailyTokens {
            counters.rateLimited += 1
            counters.budgetLimited += 1
            return .budgetExhausted(headers, retryAfter: Self.secondsUntilUTCMidnight())
        }
        if cost > 0 {
            state.tokensSpent += cost
            tokensDirty = true
        }
        return .admitted(headers)
    }

    /// The x-ratelimit-* values now, without taking a slot (for 401s and injected 429s).
    func peekRateLimit(exhausted: Bool = false) -> RateLimitHeaders {
        window.headers(clock.elapsed(), exhausted: exhausted)
    }

    /// Admits a Telnyx request into its rolling window (``SandboxConfiguration/telnyxRequestsPerWindow``):
    /// the x-ratelimit-* values, and whether it was admitted. A 429 takes no slot.
    func admitTelnyx() -> (headers: RateLimitHeaders, admitted: Bool) {
        let now = clock.elapsed()
        guard telnyxWindow.admit(now) else {
            counters.rateLimited += 1
            return (telnyxWindow.headers(now, exhausted: true), false)
        }
        return (telnyxWindow.headers(now), true)
    }

    /// The Telnyx x-ratelimit-* values now, without taking a slot.
    func peekTelnyxRateLimit(exhausted: Bool = false) -> RateLimitHeaders {
        telnyxWindow.headers(clock.elapsed(), exhausted: exhausted)
    }

    /// Starts a new budget day now (`POST /_sandbox/pipedrive/budget/reset`).
    func resetBudget() {
        state.tokensSpent = 0
        state.budgetDay = Self.utcDay()
        window.clear()
        persist()
    }

    private func rollBudgetDay() {
        let today = Self.utcDay()
        if state.budgetDay != today {
            state.budgetDay = today
            state.tokensSpent = 0
            tokensDirty = true
        }
    }

    static func utcDay(_ date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
    }

    static func secondsUntilUTCMidnight(_ date: Date = Date()) -> Int {
        let seconds = date.timeIntervalSince1970
        let next = (seconds / 86_400).rounded(.down) * 86_400 + 86_400
        return max(1, Int((next - seconds).rounded(.up)))
    }

    // MARK: CRM

    /// Reads the CRM.
    func readCRM<T: Sendable>(_ body: @Sendable (CRMStore) throws -> T) rethrows -> T {
        try body(crm)
    }

    /// Changes the CRM (`body` hears the time to stamp changes with) and schedules a snapshot.
    func changeCRM<T: Sendable>(_ body: @Sendable (inout CRMStore, CRMTime) throws -> T) rethrows -> T {
        let result = try body(&crm, CRMTime(now()))
        crmExport = nil
        persist()
        return result
    }

    // MARK: Pipedrive call logs

    /// Why the CRM refuses the ids `draft` links (nil: it does not).
    func crmRefusal(_ draft: CallLogDraft) -> String? {
        crm.refusal(person: draft.personId, organization: draft.orgId, deal: draft.dealId, lead: draft.leadId)
    }

    func createCallLog(_ draft: CallLogDraft) -> SandboxCallLog {
        let activityId: Int
        if let given = draft.activityId {
            activityId = given
        } else {
            activityId = state.nextActivityId
            state.nextActivityId += 1
        }
        let log = SandboxCallLog(
            id: "CA" + randomHex(32), outcome: draft.outcome, toPhoneNumber: draft.toPhoneNumber,
            fromPhoneNumber: draft.fromPhoneNumber, startTime: draft.startTime, endTime: draft.endTime,
            duration: draft.duration, subject: draft.subject, note: draft.note, userId: draft.userId,
            activityId: activityId, personId: draft.personId, orgId: draft.orgId, dealId: draft.dealId,
            leadId: draft.leadId, companyId: Self.companyId, hasRecording: false, deleted: false,
            createdAt: Date(), deletedAt: nil, recording: nil
        )
        callLogIndex[log.id] = state.callLogs.count
        state.callLogs.append(log)
        persist()
        return log
    }

    /// A call log that exists before the run (what a sidecar's `call_log_id` names in a real
    /// account); nothing happens when `id` exists already.
    func seedCallLog(id: String, startTime: String) -> SandboxCallLog {
        if let existing = callLogIndex[id] { return state.callLogs[existing] }
        let activityId = state.nextActivityId
        state.nextActivityId += 1
        let log = SandboxCallLog(
            id: id, outcome: "connected", toPhoneNumber: "+15550000000", fromPhoneNumber: nil, startTime: startTime, endTime: startTime,
            duration: "0", subject: "Seeded call log", note: nil, userId: nil, activityId: activityId, personId: nil, orgId: nil,
            dealId: nil, leadId: nil, companyId: Self.companyId, hasRecording: false, deleted: false, createdAt: Date(), deletedAt: nil,
            recording: nil)
        callLogIndex[log.id] = state.callLogs.count
        state.callLogs.append(log)
        persist()
        return log
    }

    /// The live call log `id`.
    /// - Throws: 404 when it never existed, 410 when it was deleted.
    func liveCallLog(_ id: String) throws(APIError) -> SandboxCallLog {
        guard let index = callLogIndex[id] else {
            throw APIError(.notFound, "A resource required for this operation was not found.")
        }
        let log = state.callLogs[index]
        guard !log.deleted else { throw APIError(.gone, "The callLog you are trying to access is no longer available") }
        return log
    }

    /// A page of live call logs in creation order, and whether more follow.
    func listCallLogs(start: Int, limit: Int) -> (page: [SandboxCallLog], more: Bool) {
        let live = state.callLogs.lazy.filter { !$0.deleted }
        let page = Array(live.dropFirst(start).prefix(limit + 1))
        return (Array(page.prefix(limit)), page.count > limit)
    }

    /// Deletes the call log and the audio attached to it.
    func deleteCallLog(_ id: String) throws(APIError) {
        var log = try liveCallLog(id)
        log.deleted = true
        log.deletedAt = Date()
        if log.recording != nil {
            log.recording?.stored = false
            try? FileManager.default.removeItem(atPath: files.recordingPath(id))
        }
        state.callLogs[callLogIndex[id]!] = log
        persist()
    }

    /// Whether a recording may be attached to `id`.
    /// - Throws: 404, 410, or 409 when it already has one.
    func checkRecordable(_ id: String) throws(APIError) {
        let log = try liveCallLog(id)
        guard !log.hasRecording else { throw APIError(.conflict, "A recording for this call already exists") }
    }

    /// Attaches the uploaded file (moved into `recordings/`), checking again that the call log is
    /// live and has no recording (another upload may have won meanwhile).
    func attachRecording(_ id: String, file: ReceivedFile) throws(APIError) {
        try checkRecordable(id)
        let destination = files.recordingPath(id)
        do {
            try? FileManager.default.removeItem(atPath: destination)
            try FileManager.default.moveItem(atPath: file.path, toPath: destination)
        } catch {
            logger.error("cannot store an uploaded recording", metadata: ["error": "\(error)"])
            throw APIError(.internalServerError, "An internal server error occurred")
        }
        let index = callLogIndex[id]!
        state.callLogs[index].hasRecording = true
        state.callLogs[index].recording = SandboxRecording(
            bytes: file.bytes, sha256: file.sha256, contentType: file.contentType, filename: file.filename,
            uploadedAt: Date(), stored: true)
        persist()
    }

    func callLogs() -> [SandboxCallLog] { state.callLogs }

    func callLog(_ id: String) -> SandboxCallLog? { callLogIndex[id].map { state.callLogs[$0] } }

    /// The stored audio of `id`, if it has some that was not deleted.
    func recordingPath(_ id: String) -> String? {
        guard let log = callLog(id), log.recording?.stored == true else { return nil }
        return files.recordingPath(id)
    }

    // MARK: Telnyx

    /// Adds a completed recording. Fields left out get plausible values.
    func seedTelnyxRecording(id: String?, overrides: JSONValue = .object([:])) -> SandboxTelnyxRecording {
        func text(_ key: String, _ fallback: @autoclosure () -> String) -> String {
            if case .string(let value)? = overrides[key] { return value }
            return fallback()
        }
        var duration = Int.random(in: 10_000...600_000)
        if case .int(let value)? = overrides["duration_millis"] { duration = Int(value) }
        let ended = Date()
        let started = ended.addingTimeInterval(-Double(duration) / 1000)
        let recording = SandboxTelnyxRecording(
            id: (id ?? text("id", UUID().uuidString)).lowercased(),
            callControlId: text("call_control_id", "v3:" + randomAlphanumeric(22)),
            callLegId: text("call_leg_id", UUID().uuidString.lowercased()),
            callSessionId: text("call_session_id", UUID().uuidString.lowercased()),
            connectionId: text("connection_id", String(Int.random(in: 1_000_000_000_000_000_000...1_999_999_999_999_999_999))),
            from: text("from", "+15551230000"), to: text("to", "+15559870000"),
            channels: text("channels", "single"), source: text("source", "call"), durationMillis: duration,
            initiatedBy: text("initiated_by", "StartCallRecordingAPI"),
            recordingStartedAt: Self.iso(started), recordingEndedAt: Self.iso(ended),
            createdAt: Self.iso(ended), updatedAt: Self.iso(ended), deleted: false
        )
        if let index = state.telnyxRecordings.firstIndex(where: { $0.id == recording.id }) {
            state.telnyxRecordings[index] = recording
        } else {
            state.telnyxRecordings.append(recording)
        }
        persist()
        return recording
    }

    /// Adds the recordings of simulated calls.
    func addTelnyxRecordings(_ recordings: [SandboxTelnyxRecording]) {
        guard !recordings.isEmpty else { return }
        state.telnyxRecordings.append(contentsOf: recordings)
        persist()
    }

    /// Live recordings, newest first, that match `filter`.
    func telnyxRecordings(filter: TelnyxRecordingFilter) -> [SandboxTelnyxRecording] {
        state.telnyxRecordings.reversed().filter { !$0.deleted && filter.matches($0) }
    }

    func allTelnyxRecordings() -> [SandboxTelnyxRecording] { state.telnyxRecordings }

    func telnyxRecording(_ id: String) -> SandboxTelnyxRecording? {
        let id = id.lowercased()
        return state.telnyxRecordings.last { $0.id == id && !$0.deleted }
    }

    /// Deletes a recording; nil when there is no live recording with that id.
    func deleteTelnyxRecording(_ id: String) -> SandboxTelnyxRecording? {
        let id = id.lowercased()
        guard let index = state.telnyxRecordings.lastIndex(where: { $0.id == id && !$0.deleted }) else { return nil }
        state.telnyxRecordings[index].deleted = true
        state.telnyxRecordings[index].updatedAt = Self.iso(Date())
        persist()
        return state.telnyxRecordings[index]
    }

    static func iso(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    // MARK: VoipNow

    /// Registers an event on `extension`, which becomes known (owned by `userId`).
    func seedVoipNowEvent(userId: String, extension number: String, type: Int, url: String?, method: String?, note: String?) -> SandboxVoipNowEvent {
        let owner = Self.resolveSeedUser(userId)
        if state.voipnowExtensions[number] == nil { state.voipnowExtensions[number] = owner }
        let event = SandboxVoipNowEvent(
            id: randomAlphanumeric(24), userId: state.voipnowExtensions[number] ?? owner, extension: number,
            eventType: type, method: method ?? "POST", url: url ?? "https://crm.example.com/hooks/voipnow",
            status: "enabled", note: note ?? "", deleted: false)
        state.voipnowEvents.append(event)
        persist()
        return event
    }

    func voipNowEvents(extension number: String?) -> [SandboxVoipNowEvent] {
        state.voipnowEvents.filter { !$0.deleted && (number == nil || $0.extension == number) }
    }

    func allVoipNowEvents() -> [SandboxVoipNowEvent] { state.voipnowEvents }

    /// `DELETE /uapi/extensions/{userId}/{extension}/phoneCallEvents[/{type}[/{id}]]`: the ids
    /// deleted (empty: nothing to delete). No type and no id deletes every event on the extension.
    func deleteVoipNowEvents(userId: String, extension number: String, type: String?, id: String?) throws(APIError) -> [String] {
        guard let user = Self.resolvePathUser(userId) else {
            throw APIError(.badRequest, code: "user_invalid", "The user id in the request is invalid.")
        }
        guard number != "@self", let owner = state.voipnowExtensions[number],
              user == "@owner" || user == owner
        else {
            throw APIError(.badRequest, code: "extension_invalid", "The extension in the request does not exist or is not allowed for this operation.")
        }
        var eventType: Int?
        if let type {
            guard let value = Int(type), (0...2).contains(value), String(value) == type else {
                throw APIError(.badRequest, code: "pce_type_invalid", "The phone call event type is invalid. Allowed values: 0 (DialIn), 1 (DialOut), 2 (Hangup).")
            }
            eventType = value
        }
        let matches = state.voipnowEvents.indices.filter { index in
            let event = state.voipnowEvents[index]
            return !event.deleted && event.extension == number
                && (eventType == nil || event.eventType == eventType)
                && (id == nil || event.id == id)
        }
        if id != nil, matches.isEmpty {
            throw APIError(.badRequest, code: "pce_id_invalid", "The phone call event id in the request is invalid.")
        }
        for index in matches { state.voipnowEvents[index].deleted = true }
        if !matches.isEmpty { persist() }
        return matches.map { state.voipnowEvents[$0].id }
    }

    /// `@me`/`@viewer`/`@owner` in a seed mean the authenticated user.
    private static func resolveSeedUser(_ user: String) -> String {
        user.hasPrefix("@") ? voipNowUserId : user
    }

    /// `@me`/`@viewer` → the authenticated user; `@owner` stays (the extension's owner); digits
    /// stay; anything else is invalid.
    private static func resolvePathUser(_ user: String) -> String? {
        switch user {
        case "@me", "@viewer": voipNowUserId
        case "@owner": "@owner"
        default: !user.isEmpty && user.allSatisfy(\.isASCII) && user.allSatisfy(\.isNumber) ? user : nil
        }
    }
}

/// Encodes and writes state snapshots (atomically: a temporary file renamed over the old one),
/// never an older one over a newer one.
final class SnapshotWriter: Sendable {
    private let written = Mutex(0)

    /// The generation of the snapshot on disk.
    var lastWritten: Int { written.withLock { $0 } }

    func write(_ state: PersistedState, generation: Int, to path: String, logger: Logger) {
        do {
            let data = try SnakeCaseJSON.encoder(pretty: true).encode(state)
            try written.withLock { written in
                guard generation > written else { return }
                try data.write(to: URL(fileURLWithPath: path), options: .atomic)
                written = generation
            }
        } catch {
            logger.error("cannot write the sandbox state", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

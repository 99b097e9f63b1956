import AsyncHTTPClient
import CallAPI
import CallAudio
import CallJobs
import CallPipeline
import CallSandbox
import CallStore
import CallStoreSQLite
import CallTesting
import Crypto
import Foundation
import Logging
import Testing

/// The whole pipeline in process against the sandbox over loopback: exactly once towards the CRM
/// under every fault class, zero requests on a re-run, bad inputs failing alone.
@Suite struct UploadRunTests {
    static func makeDirectory(_ dir: String, count: Int) throws {
        try UploadFixtures.makeDirectory(dir, count: count)
    }

    struct Outcome {
        var report: BatchReport
        var counters: PipedriveLimiter.Counters
    }

    /// - Parameter clientBudget: the daily budget callrec is told (default: the sandbox's).
    static func run(_ dir: String, url: URL, configuration: SandboxConfiguration, store: any CallStore, clientBudget: Int? = nil,
                    scanGrid: Duration? = nil, spoolAhead: Int? = nil, requestTimeout: Duration? = nil, logger: Logger = Logger(label: "test"),
                    limiter: PipedriveLimiter? = nil, onEvent: (@Sendable (WorkerEvent<ContinuousClock.Instant>) -> Void)? = nil) async throws -> Outcome {
        let http = HTTPClient.makeForAPIs()
        let limiter = limiter ?? PipedriveLimiter(burst: configuration.burstPerTwoSeconds, dailyTokens: clientBudget ?? configuration.dailyTokens)
        var client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(configuration.pipedriveToken), limiter: limiter,
                                     httpClient: http, logger: Logger(label: "test"))
        // A lost create is looked for once its request has settled (its timeout and 2 s):
        // a short timeout keeps fault-heavy tests short.
        if let requestTimeout { client.requestTimeout = requestTimeout }
        var options = UploadRun.Options()
        options.jobs = 2
        options.settings.partMaximumSeconds = 60
        if let scanGrid { options.scanGrid = scanGrid }
        options.spoolAhead = spoolAhead
        // The fixtures were just written: take them as they are (the settle rule has its own tests).
        options.settle = .immediate
        let run = UploadRun(root: "\(dir)/in", store: store, spool: Spool(root: "\(dir)/state/spool"), client: client, options: options,
                            logger: logger)
        let pool = CPUPool(threads: 2)
        defer { pool.shutdown() }
        let registration = try await run.register(excluding: [])
        let worker = run.worker(pool: pool)
        let events = worker.events()
        let observer = Task {
            for await event in events { onEvent?(event) }
        }
        try await worker.run()
        await observer.value
        let report = try await run.report(registration: registration, wallSeconds: 0)
        let counters = await client.counters
        try await http.shutdown()
        return Outcome(report: report, counters: counters)
    }

    /// Runs with the scan grid an hour wide; returns the log messages and the worker's job
    /// outcomes (`outcome KIND ID OUTCOME`), in the order they happened.
    static func runTimeline(_ dir: String, url: URL, configuration: SandboxConfiguration, store: any CallStore) async throws -> [String] {
        let stamped = StampedLines()
        var logger = Logger(label: "test") { _ in StampedCapture(lines: stamped) }
        logger.logLevel = .info
        let onEvent: @Sendable (WorkerEvent<ContinuousClock.Instant>) -> Void = { event in
            stamped.append("outcome \(event.job.kind) \(event.job.id) \(event.outcome.rawValue)", at: event.at)
        }
        _ = try await run(dir, url: url, configuration: configuration, store: store, scanGrid: .seconds(3600),
                          spoolAhead: 100, requestTimeout: .seconds(8), logger: logger, onEvent: onEvent)
        return stamped.inOrder
    }

    /// The scans of `timeline` (``runTimeline(_:url:configuration:store:)``) came once the
    /// run had nothing else to do.
    static func checkScans(_ timeline: [String]) {
        let unknown = timeline.filter { $0.contains("create outcome unknown") }.count
        let scans = timeline.indices.filter { timeline[$0].contains("scanning GET /callLogs") }
        #expect(unknown > 0, "the fault plan left no create unsettled; nothing was tested")
        #expect(!scans.isEmpty)
        // When the first scan starts, everything else is done: after it, only jobs put off
        // before it (their creates unsettled) finish.
        let first = scans.first ?? timeline.count
        let putOff = Set(timeline[..<first].filter { $0.hasSuffix(" snoozed") }.map { $0.split(separator: " ")[2] })
        let finishedLater = timeline[first...].filter { $0.hasPrefix("outcome") && $0.hasSuffix(" completed") }
        #expect(finishedLater.allSatisfy { putOff.contains($0.split(separator: " ")[2]) && $0.contains(" upload ") },
                "work other than the put-off uploads ran after the scan: \(finishedLater)")
        // Another scan only for creates left unsettled by the first scan's round.
        let unknownAfter = timeline[first...].filter { $0.contains("create outcome unknown") }.count
        #expect(scans.count <= 1 + unknownAfter, "\(scans.count) scans for \(unknown) unsettled creates")
    }

    /// A store under `dir/state` and a sandbox (`configure`d) that holds the call log the
    /// `attached` sidecar names, for `body`; the store is closed afterwards.
    static func withStoreAndSandbox(_ dir: String, configure: (inout SandboxConfiguration) throws -> Void,
                                    _ body: (URL, Sandbox, SandboxConfiguration, SQLiteStore) async throws -> Void) async throws {
        var configuration = SandboxConfiguration.random()
        try configure(&configuration)
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
        try await store.migrate()
        try await withSandbox(configuration) { url, sandbox in
            await sandbox.seedCallLog(id: UploadFixtures.existingCallLog)
            try await body(url, sandbox, configuration, store)
        }
        try await store.close()
    }

    static func sha256(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Every part attached exactly once (one call log per marker), the bytes that arrived are the
    /// spool's, nothing lost or half-done.
    static func checkExactlyOnce(_ dir: String, store: any CallStore, sandbox: Sandbox, expectedOK: Int) async throws {
        let logs = await sandbox.callLogs().filter { !$0.deleted }
        var byMarker: [String: [SandboxCallLog]] = [:]
        for log in logs {
            if let range = log.note?.range(of: #"callrec:[0-9a-f]+:p[0-9]+"#, options: .regularExpression) {
                byMarker[String(log.note![range]), default: []].append(log)
            }
        }
        let recordings = try await store.recordings(RecordingQuery(limit: 10_000))
        let uploaded = recordings.filter { $0.state == .uploaded }
        #expect(uploaded.count == expectedOK)
        #expect(recordings.allSatisfy { $0.state == .uploaded || $0.state == .failed }, "a recording was left half-done: \(recordings.filter { $0.state != .uploaded && $0.state != .failed }.map(\.path))")
        for recording in uploaded {
            for part in try await store.parts(key: recording.key) {
                #expect(part.state == .attached)
                let id = try #require(part.callLogID)
                if recording.path.hasSuffix("attached.wav") {
                    #expect(id == UploadFixtures.existingCallLog)
                } else {
                    let marker = UploadJobHandler.marker(key: recording.key, index: part.index)
                    #expect(byMarker[marker]?.count == 1, "\(recording.path) part \(part.index): \(byMarker[marker]?.count ?? 0) call logs carry its marker")
                    #expect(byMarker[marker]?.first?.id == id)
                }
                let log = try #require(logs.first { $0.id == id })
                #expect(log.recording?.sha256 == (try sha256(part.spoolPath)), "\(recording.path) part \(part.index): the bytes that arrived are not the spool's")
            }
        }
        let stats = try await store.queueStats()
        #expect(stats[.available] == 0 && stats[.running] == 0)
    }

    @Test func happyPathAttachesEveryPartOnceWithTwentyTokensPerCallAndARerunSendsNothing() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeDirectory(dir, count: 12)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 200
            }) { url, sandbox, configuration, store in
                let first = try await Self.run(dir, url: url, configuration: configuration, store: store)
                let byPath = Dictionary(uniqueKeysWithValues: first.report.files.map { ($0.path, $0) })
                #expect(byPath["silent.wav"]?.error?.code == "silent_recording")
                #expect(byPath["orphan.wav"]?.error?.code == "missing_sidecar")
                #expect(byPath["badmeta.wav"]?.error?.code == "invalid_sidecar")
                #expect(byPath["badmeta.wav"]?.error?.message.contains("call_log.outcome") == true)
                #expect(first.report.summary.ok == 15 && first.report.summary.failed == 3)
                #expect(byPath["long-0.wav"]?.parts.count == 3)
                #expect(byPath["long-0.wav"]?.parts.allSatisfy { $0.callLogId != nil } == true)
                // 12 short calls + 1 attached + 2 × 3 parts: 18 uploads and 18 − 1 creates;
                // the long calls' subjects say which part they are.
                #expect(first.counters.byOperation["add"] == 18 && first.counters.byOperation["recording"] == 19,
                        "\(first.counters.byOperation)")
                #expect(first.counters.tokensSpent == 20 * 18 + 10)
                #expect(first.counters.rateLimited == 0)
                let subjects = await sandbox.callLogs().compactMap(\.subject).filter { $0.contains("(part ") }
                #expect(subjects.filter { $0.hasSuffix("(part 2 of 3)") }.count == 2)
                // Derived from the audio: end time and duration of a short call.
                let log = try #require(await sandbox.callLogs().first { $0.subject == "Call 4" })
                #expect(log.duration == "6")
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: 15)

                let again = try await Self.run(dir, url: url, configuration: configuration, store: store)
                #expect(again.counters.requests == 0, "a re-run must make no API request")
                #expect(again.report.summary.skipped == 15)
            }
        }
    }

    @Test(.timeLimit(.minutes(10)))
    func soakWithEveryFaultClassAttachesEveryPartExactlyOnce() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeDirectory(dir, count: 100)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 100
                configuration.faults = try FaultPlan(specification: "429=0.04,500=0.03,503=0.03,slow=0.03,cut=0.03,lost=0.03,delay=0.3")
            }) { url, sandbox, configuration, store in
                let outcome = try await Self.run(dir, url: url, configuration: configuration, store: store, requestTimeout: .seconds(8))
                #expect(outcome.report.summary.ok == 103, "\(outcome.report.files.filter { $0.status == .failed }.map { "\($0.path): \($0.error?.message ?? "")" })")
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: 103)
                let jobs = try await store.jobs(JobQuery(states: [.discarded], limit: 100))
                #expect(jobs.count == 1, "only the silent recording's transcode is dead-lettered: \(jobs.map { $0.lastError ?? "" })")
                let sandboxCounters = await sandbox.counters()
                print("soak: \(outcome.counters.requests) requests, \(outcome.counters.tokensSpent) tokens spent by the client, \(outcome.counters.rateLimited) answered 429; sandbox counted \(sandboxCounters.tokensSpent) tokens; per uploaded part: \(Double(outcome.counters.tokensSpent) / 109)")
            }
        }
    }

    /// Creates whose answer was lost or unclear (lost, 500, 503) are looked for together, once
    /// the run has nothing else to do: one scan of the account at the end of the run, not one per
    /// create or per minute (each scan reads every page at 20 tokens). The grid is set beyond the
    /// run, so without that the lost creates would wait past its end. (The spool bound is set
    /// wide: a spool full of recordings whose creates are unsettled would rightly make the run
    /// look for them early, to go on transcoding.)
    @Test(.timeLimit(.minutes(5)))
    func unsettledCreatesAreLookedForTogetherOnceNothingElseIsLeft() async throws {
        try await withTemporaryDirectory { dir in
            try Self.makeDirectory(dir, count: 30)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 200
                configuration.faults = try FaultPlan(specification: "lost=0.15,500=0.1")
            }) { url, sandbox, configuration, store in
                // One timeline: job outcomes and the scans, in the order they happened (the
                // outcomes come through the worker's event stream, stamped when recorded).
                let timeline = try await Self.runTimeline(dir, url: url, configuration: configuration, store: store)
                Self.checkScans(timeline)
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: 33)
            }
        }
    }

    /// The next midnight UTC: the sandbox's (and by default callrec's) budget reset.
    static func nextUTCMidnight() -> Date {
        Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 / 86_400).rounded(.down) + 1) * 86_400)
    }

    /// The daily budget runs out mid-run (callrec's own count): the run stops cleanly — it
    /// returns, transcodes only what the spool bound allows, provokes no 429, leaves no call log
    /// without its audio, and reports every unfinished recording as waiting until the reset. The
    /// upload jobs are snoozed until then (the worker's behaviour: the same jobs and handler).
    /// After a top-up (`queue retry --all-waiting`) the next run finishes everything exactly once.
    @Test(.timeLimit(.minutes(5)))
    func aSpentDailyBudgetStopsTheRunCleanlyAndTheNextRunGoesOn() async throws {
        try await withTemporaryDirectory { dir in
            let expected = try UploadFixtures.makeDirectory(dir, count: 12)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 200
            }) { url, sandbox, configuration, store in
                let first = try await Self.run(dir, url: url, configuration: configuration, store: store, clientBudget: 70)
                let summary = first.report.summary
                // Only bad inputs fail (one may not have been read yet: back-pressure held it).
                for file in first.report.files where file.status == .failed {
                    #expect(UploadFixtures.failing[(file.path as NSString).lastPathComponent] == file.error?.code, "\(file.path): \(String(describing: file.error))")
                }
                #expect(summary.waiting > 0 && summary.ok + summary.waiting + summary.failed == expected + 3, "\(summary)")
                let reset = Self.nextUTCMidnight()
                #expect(summary.resumeAfter.map { abs($0.timeIntervalSince(reset)) < 0.002 } == true, "\(String(describing: summary.resumeAfter))")
                for file in first.report.files where file.status == .waiting {
                    #expect(file.error?.code == "budget_spent" || file.error?.code == "not_finished", "\(file.path): \(String(describing: file.error))")
                }
                #expect(first.report.files.contains { $0.status == .waiting && $0.error?.code == "budget_spent" && $0.error?.message.contains("renews at") == true })
                #expect(first.counters.tokensSpent <= 70)
                let sandboxLimited = await sandbox.counters().rateLimited
                #expect(first.counters.rateLimited == 0 && sandboxLimited == 0, "the run provoked a 429")
                // No call log waits without its audio: a create goes out only when the budget
                // also covers its upload.
                let bare = await sandbox.callLogs().filter { !$0.deleted && $0.recording == nil && $0.id != UploadFixtures.existingCallLog }
                #expect(bare.isEmpty, "call logs without audio: \(bare.map(\.id))")
                // Back-pressure held the rest: the spool holds at most jobs × 2 + upload slots
                // recordings waiting for their upload; the others were not transcoded yet.
                let counts = try await store.recordingCounts()
                #expect((counts[.transcoded] ?? 0) <= 2 * 2 + 4 + 2, "\(counts)")
                #expect((counts[.pending] ?? 0) > 0, "\(counts)")
                let waitingUploads = try await store.jobs(JobQuery(states: [.available], kind: UploadJobHandler.kind, limit: 100))
                #expect(!waitingUploads.isEmpty)
                for job in waitingUploads {
                    // At the reset itself, however long the refusal took to reach the queue.
                    #expect(abs(job.runAt.timeIntervalSince(reset)) < 0.002, "job \(job.id) runs at \(job.runAt)")
                    #expect(job.lastError?.hasPrefix("budget_spent") == true)
                    #expect(job.attempt <= 1, "waiting for the budget used up attempts")
                }

                // More tokens bought: wake the waiting jobs, run again with the new budget.
                let waiting = try await store.jobs(JobQuery(states: [.available], limit: 1000)).filter { $0.runAt > Date() }
                #expect(try await store.retry(ids: waiting.map(\.id)).count == waiting.count)
                let second = try await Self.run(dir, url: url, configuration: configuration, store: store, clientBudget: 1_000_000)
                #expect(second.report.summary.waiting == 0 && second.report.summary.failed == 3)
                #expect(second.report.summary.ok + second.report.summary.skipped == expected)
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: expected)
            }
        }
    }

    /// The server's budget runs out first (another integration spent it): its 429 says to wait
    /// until the reset. The run does not sleep it out or hammer the API: it stops cleanly with
    /// the recordings waiting, and goes on once the budget is back.
    @Test(.timeLimit(.minutes(5)))
    func aBudgetSpentAtTheServerStopsTheRunWithoutHammering() async throws {
        try await withTemporaryDirectory { dir in
            let expected = try UploadFixtures.makeDirectory(dir, count: 12, longCalls: 0)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 200
                configuration.dailyTokens = 150
            }) { url, sandbox, configuration, store in
                let first = try await Self.run(dir, url: url, configuration: configuration, store: store, clientBudget: 1_000_000)
                let summary = first.report.summary
                #expect(summary.failed <= 3 && summary.waiting > 0 && summary.ok + summary.waiting + summary.failed == expected + 3, "\(summary)")
                // The server's Retry-After (whole seconds, rounded up) counted from its answer: at
                // the reset or within the second after it, never before.
                #expect(summary.resumeAfter.map { (-0.01..<2).contains($0.timeIntervalSince(Self.nextUTCMidnight())) } == true,
                        "\(String(describing: summary.resumeAfter)): \(first.report.files.filter { $0.status == .waiting }.map { $0.error?.message ?? "" })")
                let counters = await sandbox.counters()
                #expect(counters.budgetLimited >= 1)
                // One 429 per request in flight when the budget ran out, not a retry loop.
                #expect(counters.rateLimited <= 4 + 2, "\(counters.rateLimited) answers 429")

                // Day after day (the sandbox's budget renewed, the waiting jobs woken) until done.
                var days = 1
                var summaryOfDay = summary
                while summaryOfDay.waiting > 0 && days < 10 {
                    await sandbox.resetBudget()
                    let waiting = try await store.jobs(JobQuery(states: [.available], limit: 1000)).filter { $0.runAt > Date() }
                    _ = try await store.retry(ids: waiting.map(\.id))
                    summaryOfDay = try await Self.run(dir, url: url, configuration: configuration, store: store, clientBudget: 1_000_000).report.summary
                    #expect(summaryOfDay.failed <= 3, "\(summaryOfDay)")
                    days += 1
                }
                #expect(summaryOfDay.waiting == 0 && summaryOfDay.failed == 3, "not done after \(days) days: \(summaryOfDay)")
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: expected)
            }
        }
    }

    /// The server's budget runs out and its 429s carry no `Retry-After` (the real Pipedrive
    /// documents none): after a few growing waits the run takes it as the budget spent, and
    /// every upload job waits until PIPEDRIVE_BUDGET_RESET (no attempt used), not for 2 s again
    /// and again. The limiter's first wait is 10 ms here (2 s in callrec).
    @Test(.timeLimit(.minutes(5)))
    func repeated429sWithoutRetryAfterAreTheBudgetSpentUntilTheReset() async throws {
        try await withTemporaryDirectory { dir in
            try UploadFixtures.makeDirectory(dir, count: 4, longCalls: 0)
            try await Self.withStoreAndSandbox(dir, configure: { configuration in
                configuration.burstPerTwoSeconds = 200
                configuration.faults = try FaultPlan(specification: "budget=1")
            }) { url, sandbox, configuration, store in
                let reset = Duration.seconds(5 * 3600 + 30 * 60)
                let limiter = PipedriveLimiter(burst: 200, dailyTokens: 1_000_000, budgetReset: reset, rateLimitWait: .milliseconds(10), budgetSignal: 4)
                let first = try await Self.run(dir, url: url, configuration: configuration, store: store, limiter: limiter)
                let summary = first.report.summary
                #expect(summary.ok == 0 && summary.failed == 3 && summary.waiting == 5, "\(summary)")
                let at = await limiter.nextBudgetReset
                #expect(summary.resumeAfter.map { abs($0.timeIntervalSince(at)) < 0.002 } == true, "\(String(describing: summary.resumeAfter)) ≠ \(at)")
                for file in first.report.files where file.status == .waiting {
                    #expect(file.error?.code == "budget_spent", "\(file.path): \(String(describing: file.error))")
                }
                let uploads = try await store.jobs(JobQuery(states: [.available], kind: UploadJobHandler.kind, limit: 100))
                #expect(uploads.count == 5)
                for job in uploads {
                    #expect(abs(job.runAt.timeIntervalSince(at)) < 0.002, "job \(job.id) runs at \(job.runAt)")
                    #expect(job.attempt == 0 && job.lastError?.hasPrefix("budget_spent") == true, "\(job.attempt) \(job.lastError ?? "")")
                }
                // A few rounds, not 20 tries per request.
                let requests = await sandbox.requestCount()
                #expect(requests < 4 * 5, "\(requests) requests")
            }
        }
    }

    /// A refused token: the upload jobs are released (available, no attempt used), not failed or
    /// put off for an hour, and the run stops at once (``Worker/halted`` says why).
    @Test(.timeLimit(.minutes(5)))
    func aRefusedTokenHaltsTheRunAndLeavesTheJobsAvailable() async throws {
        try await withTemporaryDirectory { dir in
            try UploadFixtures.makeDirectory(dir, count: 4, longCalls: 0)
            try await Self.withStoreAndSandbox(dir, configure: { $0.burstPerTwoSeconds = 200 }) { url, sandbox, configuration, store in
                var wrong = configuration
                wrong.pipedriveToken = "0000000000000000000000000000000000000000"
                let first = try await Self.run(dir, url: url, configuration: wrong, store: store)
                #expect(first.report.summary.ok == 0 && first.report.summary.failed == 3, "\(first.report.summary)")
                // Waiting for a mended token, or not transcoded yet when the run stopped.
                let waiting = first.report.files.filter { $0.status == .waiting }
                #expect(waiting.count == 5 && waiting.contains { $0.error?.code == "credentials_refused" }
                        && waiting.allSatisfy { ["credentials_refused", "not_finished"].contains($0.error?.code) },
                        "\(first.report.files.map { "\($0.path): \($0.error?.code ?? "-")" })")
                let discarded = try await store.jobs(JobQuery(states: [.discarded], limit: 100))
                #expect(discarded.allSatisfy { $0.jobKind == TranscodeJobHandler.kind }, "only bad inputs are discarded")
                let uploads = try await store.jobs(JobQuery(kind: UploadJobHandler.kind, limit: 100))
                #expect(!uploads.isEmpty && uploads.allSatisfy { $0.state == .available && $0.attempt == 0 && $0.runAt <= Date() },
                        "\(uploads.map { "\($0.state) \($0.attempt) \($0.runAt)" })")
                #expect(await sandbox.counters().unauthorized <= 4)
                let second = try await Self.run(dir, url: url, configuration: configuration, store: store)
                #expect(second.report.summary.failed == 3 && second.report.summary.waiting == 0, "\(second.report.summary)")
                try await Self.checkExactlyOnce(dir, store: store, sandbox: sandbox, expectedOK: 5)
            }
        }
    }
}

/// Lines with the instant each happened, read back in the order they happened.
final class StampedLines: Sendable {
    private let lines = Locked<[Line]>([])

    struct Line: Sendable {
        var at: ContinuousClock.Instant
        var line: String
    }

    func append(_ line: String, at instant: ContinuousClock.Instant) {
        lines.withLock { $0.append(Line(at: instant, line: line)) }
    }

    var inOrder: [String] {
        let all = lines.withLock { $0 }
        return all.sorted { $0.at < $1.at }.map(\.line)
    }
}

/// Keeps every log message with the instant it was logged, to merge with stamped worker events.
struct StampedCapture: LogHandler {
    let lines: StampedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append("\(event.level) \(event.message) \(event.metadata ?? [:])", at: .now)
    }
}

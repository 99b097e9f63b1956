import AsyncHTTPClient
import CallSandbox
import CallSupport
import CallTesting
import Crypto
import Foundation
import Logging
import Synchronization
import Testing

@testable import CallAPI

/// The Pipedrive client against the sandbox over loopback: every status of the contract.
@Suite struct PipedriveSandboxTests {
    static func draft(_ i: Int = 0) -> CallLogDraft {
        var d = CallLogDraft(outcome: "connected", toPhoneNumber: "+1555000\(i)", startTime: "2026-11-20 10:00:00")
        d.endTime = "2026-11-20 10:01:00"
        d.subject = "call \(i)"
        d.note = "<p>marker-\(i)</p>"
        return d
    }

    func withClient<T>(_ configure: (inout SandboxConfiguration) -> Void = { _ in },
                       limiter: PipedriveLimiter = PipedriveLimiter(burst: 1000, dailyTokens: 1_000_000),
                       logger: Logger = Logger(label: "test"),
                       _ body: (PipedriveClient, Sandbox) async throws -> T) async throws -> T {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 1000
        configure(&configuration)
        let token = configuration.pipedriveToken
        return try await withSandbox(configuration) { url, sandbox in
            let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(token), limiter: limiter,
                                         httpClient: .shared, logger: logger)
            return try await body(client, sandbox)
        }
    }

    @Test func createGetListDelete() async throws {
        try await withClient { client, sandbox in
            let created = try await client.createCallLog(Self.draft(1))
            #expect(!created.id.isEmpty)
            #expect(created.hasRecording == false)
            let fetched = try await client.callLog(id: created.id)
            #expect(fetched.id == created.id)
            #expect(fetched.note?.contains("marker-1") == true)
            for i in 2...120 { _ = try await client.createCallLog(Self.draft(i)) }
            var pages = 0
            let all = try await client.allCallLogs { _ in pages += 1 }
            #expect(all.count == 120)
            #expect(pages == 3)  // 50 + 50 + 20
            #expect(try await client.deleteCallLog(id: created.id) == .deleted)
            #expect(try await client.deleteCallLog(id: created.id) == .alreadyGone)  // 410
            #expect(try await client.deleteCallLog(id: "CAunknown") == .alreadyGone)  // 404
            await #expect { try await client.callLog(id: created.id) } throws: { ($0 as? APIError)?.code == .notFound }
            #expect(await sandbox.callLogs().filter { !$0.deleted }.count == 119)
            let counters = await client.counters
            #expect(counters.tokensSpent == 120 * 10 + 2 + 3 * 20 + 3 * 6 + 2)  // creates, get, 3 pages, 3 deletes, the get that found 410
            #expect(await sandbox.tokensSpent() == counters.tokensSpent)
        }
    }

    @Test func invalidCreateIsPermanentAndNotSent() async throws {
        try await withClient { client, sandbox in
            var bad = Self.draft()
            bad.dealId = 1
            bad.leadId = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
            await #expect { try await client.createCallLog(bad) } throws: { ($0 as? APIError)?.code == .permanent }
            #expect(await sandbox.requestCount() == 0)
        }
    }

    @Test func uploadIsStreamedByteExactAndASecondUploadIsAlreadyThere() async throws {
        try await withTemporaryDirectory { dir in
            let mp3 = "\(dir)/call.mp3"
            try SyntheticAudio.write(.speech(), seconds: 20, format: .mp3, to: mp3)
            let bytes = try Data(contentsOf: URL(fileURLWithPath: mp3))
            let sha = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            try await withClient { client, sandbox in
                let log = try await client.createCallLog(Self.draft())
                #expect(try await client.uploadRecording(callLogId: log.id, path: mp3, filename: "call.mp3") == .uploaded)
                let stored = try #require(await sandbox.callLog(id: log.id)?.recording)
                #expect(stored.bytes == Int64(bytes.count))
                #expect(stored.sha256 == sha)
                #expect(try await client.callLog(id: log.id).hasRecording)
                #expect(try await client.uploadRecording(callLogId: log.id, path: mp3, filename: "call.mp3") == .alreadyExists)
                await #expect { try await client.uploadRecording(callLogId: "CAnope", path: mp3, filename: "x.mp3") } throws: {
                    ($0 as? APIError)?.code == .notFound
                }
            }
        }
    }

    @Test func wrongTokenStopsAllTrafficAndNeverLeaksTheToken() async throws {
        let lines = Locked<[String]>([])
        let logger = Logger(label: "capture") { _ in CaptureHandler(lines: lines) }
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 1000
        try await withSandbox(configuration) { url, _ in
            var logger = logger
            logger.logLevel = .trace
            let limiter = PipedriveLimiter()
            let secret = "wrong-token-\(UUID().uuidString)"
            let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(secret), limiter: limiter, httpClient: .shared, logger: logger)
            var caught: APIError?
            do { _ = try await client.createCallLog(Self.draft()) } catch let e as APIError { caught = e }
            #expect(caught?.code == .credentialsRefused)
            #expect(caught?.status == 401)
            #expect(await limiter.isStopped)
            await #expect(throws: APIError.self) { try await client.callLog(id: "x") }  // no more traffic
            let everything = lines.withLock { $0.joined(separator: "\n") } + "\(String(describing: caught))" + "\(client)"
            #expect(!everything.contains(secret))
            #expect(!everything.contains(configuration.pipedriveToken))
        }
    }

    /// A refused token stops all traffic with `credentials_refused`, and its message names the
    /// variable to fix (a cron job must not take it for a wait).
    @Test func aRefusedTokenIsCredentialsRefusedNamingTheVariable() async throws {
        try await withSandbox(SandboxConfiguration.random()) { url, sandbox in
            let limiter = PipedriveLimiter()
            let client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret("wrong"), limiter: limiter, httpClient: .shared,
                                         logger: Logger(label: "test"))
            for _ in 0..<2 {
                do {
                    _ = try await client.callLog(id: "CA1")
                    Issue.record("a refused token answered")
                } catch let error as APIError {
                    #expect(error.code.rawValue == "credentials_refused")
                    #expect(error.message.contains("PIPEDRIVE_API_TOKEN"), "\(error.message)")
                }
            }
            #expect(await sandbox.requestCount() == 1, "the second request must not be sent")
            let (ours, theirs) = (await limiter.counters.tokensSpent, await sandbox.tokensSpent())
            #expect(ours == 0 && theirs == 0, "a refused token is charged nothing")
        }
    }

    /// A request that never left this machine — a URL the HTTP client refuses, a port nothing
    /// listens on — costs no token and is no request; a refused connection fails each try at
    /// once (not after the connect timeout) and is given up after a few as `unreachable`.
    @Test(.timeLimit(.minutes(2)))
    func aRequestThatNeverLeftCostsNothingAndARefusedConnectionIsGivenUpQuickly() async throws {
        let http = HTTPClient.makeForAPIs()
        let limiter = PipedriveLimiter(burst: 100, dailyTokens: 1000)
        for base in ["not a url", "http://127.0.0.1:\(try refusedLoopbackPort())/v1"] {
            var quick = PipedriveClient(baseURL: base, token: Secret("t"), limiter: limiter, httpClient: http, logger: Logger(label: "test"))
            quick.backoff = Backoff(base: .milliseconds(2), cap: .milliseconds(10))  // the tries, not their waits
            let client = quick
            let clock = ContinuousClock(), started = clock.now
            for request in [{ _ = try await client.createCallLog(Self.draft()) }, { _ = try await client.callLog(id: "CA1") }] as [@Sendable () async throws -> Void] {
                do {
                    try await request()
                    Issue.record("\(base): answered")
                } catch let error as APIError {
                    #expect(error.code.rawValue == "unreachable", "\(base): \(error)")
                    #expect(error.message.contains("nothing was sent"), "\(error.message)")
                }
            }
            // Quick, not timed to the second: a loaded CI machine took 9 s here; the old client
            // retried for 109 s. (Each try is refused at once; the few retries' backoff is the rest.)
            #expect(clock.now - started < .seconds(45), "\(base): \(clock.now - started)")
        }
        let counters = await limiter.counters
        #expect(counters.tokensSpent == 0 && counters.requests == 0, "\(counters)")
        try await http.shutdown()
    }

    @Test func faultsAreClassified() async throws {
        // The retries' waits are on the limiter's clock, moved to each one's end.
        let clock = ManualClock()
        try await withClient(limiter: PipedriveLimiter(burst: 1000, dailyTokens: 1_000_000, clock: clock)) { client, sandbox in
            try await clock.driving { try await faults(client, sandbox) }
        }
    }

    func faults(_ client: PipedriveClient, _ sandbox: Sandbox) async throws {
        func aimed(_ fault: String, at target: String) -> PipedriveClient {
            var c = client
            c.decorate = { name in name.hasPrefix(target) ? [("x-sandbox-fault", fault)] : [] }
            return c
        }
        // A lost create answer: unknown outcome, and the call log does exist.
        let before = await sandbox.callLogs().count
        await #expect { try await aimed("lost", at: "POST /callLogs").createCallLog(Self.draft(7)) } throws: {
            ($0 as? APIError)?.code == .unknownOutcome
        }
        #expect(await sandbox.callLogs().count == before + 1)
        // 500 on a create: unknown outcome (never blindly re-posted); 503 on a get: retried, then transient.
        await #expect { try await aimed("500", at: "POST /callLogs").createCallLog(Self.draft(8)) } throws: {
            ($0 as? APIError)?.code == .unknownOutcome
        }
        let log = try await client.createCallLog(Self.draft(9))
        await #expect { try await aimed("503", at: "GET /callLogs").callLog(id: log.id) } throws: {
            ($0 as? APIError)?.code == .transient
        }
        // The HTML 403 abuse block stops all traffic.
        let blocked = aimed("abuse", at: "GET /callLogs")
        await #expect { try await blocked.callLog(id: log.id) } throws: { ($0 as? APIError)?.code == .stopEverything }
        await #expect { try await client.createCallLog(Self.draft(10)) } throws: { ($0 as? APIError)?.code == .stopEverything }
    }

    @Test func aSlowAnswerIsAnUnknownOutcomeForACreateAndRetriedForAGet() async throws {
        // The sandbox's `slow` fault sleeps on this clock: an answer is held until the test lets it go.
        let clock = ManualClock()
        try await withClient({ $0.clock = clock }) { client, sandbox in
            var slow = client
            slow.requestTimeout = .milliseconds(300)
            slow.decorate = { name in name == "POST /callLogs" ? [("x-sandbox-fault", "slow"), ("x-sandbox-delay", "1")] : [] }
            await #expect { try await slow.createCallLog(Self.draft(1)) } throws: { ($0 as? APIError)?.code == .unknownOutcome }
            // The server does create it (the answer was only late): the caller must look before
            // re-creating.
            #expect(await sandbox.callLogs().isEmpty)
            #expect(await clock.waitForSleepers(1))
            clock.advance(by: .seconds(1))
            let deadline = ContinuousClock.now + .seconds(30)
            while await sandbox.callLogs().isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(await sandbox.callLogs().count == 1)
            let log = try #require(await sandbox.callLogs().first)
            let once = Locked(true)
            var slowGet = client
            slowGet.requestTimeout = .seconds(2)  // room for the retry's answer on a busy machine
            slowGet.decorate = { name in
                name.hasPrefix("GET") && once.withLock { f in defer { f = false }; return f } ? [("x-sandbox-fault", "slow"), ("x-sandbox-delay", "5")] : []
            }
            #expect(try await slowGet.callLog(id: log.id).id == log.id)  // timed out once, retried
            clock.advance(by: .seconds(5))  // the held answer's handler ends
        }
    }

    /// The sandbox cuts the connection when half of the body has arrived: a file larger than
    /// the connection's buffers is still being sent then, so callrec knows nothing was stored
    /// and sends it again at once, without looking first.
    @Test func anUploadCutBeforeItsEndIsSentAgainWithoutALook() async throws {
        try await withTemporaryDirectory { dir in
            let mp3 = "\(dir)/c.mp3"
            try SyntheticAudio.write(.speech(), seconds: 30, format: .mp3, to: mp3)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: mp3))
            try handle.truncate(atOffset: 64 << 20)  // sparse: an MP3, then zeros up to 64 MiB
            try handle.close()
            try await withClient { client, sandbox in
                let log = try await client.createCallLog(Self.draft())
                let attempts = Locked(0)
                var c = client
                c.decorate = { name in
                    guard name.hasSuffix("/recordings") else { return [] }
                    return attempts.withLock { n in n += 1; return n == 1 } ? [("x-sandbox-fault", "cut")] : []
                }
                #expect(try await c.uploadRecording(callLogId: log.id, path: mp3, filename: "c.mp3") == .uploaded)
                #expect(attempts.withLock { $0 } == 2)
                #expect(await sandbox.requestCount(route: "GET /v1/callLogs/{id}") == 0)
                #expect(await sandbox.callLog(id: log.id)?.recording?.bytes == 64 << 20)
            }
        }
    }

    /// The whole file went out and the answer was lost (it landed): one `GET` (2 tokens) finds
    /// `has_recording`, and the file is not sent again (10 tokens and its bytes).
    @Test func anUploadWhoseAnswerWasLostIsLookedAtNotSentAgain() async throws {
        try await withTemporaryDirectory { dir in
            let mp3 = "\(dir)/c.mp3"
            try SyntheticAudio.write(.speech(), seconds: 30, format: .mp3, to: mp3)
            try await withClient { client, sandbox in
                let log = try await client.createCallLog(Self.draft())
                var c = client
                c.decorate = { name in name.hasSuffix("/recordings") ? [("x-sandbox-fault", "lost")] : [] }
                let before = await c.counters.tokensSpent
                #expect(try await c.uploadRecording(callLogId: log.id, path: mp3, filename: "c.mp3") == .landedEarlier)
                #expect(await sandbox.requestCount(route: "POST /v1/callLogs/{id}/recordings") == 1)
                #expect(await sandbox.requestCount(route: "GET /v1/callLogs/{id}") == 1)
                #expect(await c.counters.tokensSpent - before == 12)
                let sha = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: mp3))).map { String(format: "%02x", $0) }.joined()
                #expect(await sandbox.callLog(id: log.id)?.recording?.sha256 == sha)
            }
        }
    }

    @Test func aRateLimitedRequestWaitsAndSucceedsWithoutUsingAnAttempt() async throws {
        let clock = ManualClock()
        try await withClient(limiter: PipedriveLimiter(burst: 1000, dailyTokens: 1_000_000, clock: clock)) { client, sandbox in
            let first = Locked(true)
            var c = client
            c.decorate = { _ in first.withLock { f in defer { f = false }; return f } ? [("x-sandbox-fault", "429")] : [] }
            let start = clock.now
            _ = try await clock.driving { try await c.createCallLog(Self.draft()) }
            // Retry-After: 1, and the sandbox's x-ratelimit-* said its 2 s window was spent: the longer.
            #expect(start.duration(to: clock.now) == .seconds(2))
            #expect(await c.counters.rateLimited == 1)
            #expect(await sandbox.callLogs().count == 1)
        }
    }

    /// The limiter and the sandbox share a clock the test moves to each wait's end (the windows
    /// and the 429s' pauses take no real time; a request in flight takes none on the clock).
    @Test func theLimiterKeepsUnderTheSandboxBurstLimit() async throws {
        // The sandbox allows 10 per 0.5 s; a limiter configured the same sends 60 creates with no 429.
        let clock = ManualClock()
        try await withClient({ $0.burstPerTwoSeconds = 10; $0.burstWindow = .milliseconds(500); $0.clock = clock },
                             limiter: PipedriveLimiter(burst: 10, window: .milliseconds(500), dailyTokens: 100_000, clock: clock)) { client, sandbox in
            let start = clock.now
            try await clock.driving {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<60 { group.addTask { _ = try await client.createCallLog(Self.draft(i)) } }
                    try await group.waitForAll()
                }
            }
            #expect(await sandbox.rateLimitedCount() == 0)
            #expect(await sandbox.callLogs().count == 60)
            #expect(start.duration(to: clock.now) >= .milliseconds(2500), "six windows of ten: five waits")
        }
        // Misconfigured (believes 40 per window): the sandbox answers 429s, the client waits them out,
        // adapts to x-ratelimit-limit, and every create still lands exactly once.
        let later = ManualClock()
        try await withClient({ $0.burstPerTwoSeconds = 10; $0.burstWindow = .seconds(2); $0.clock = later },
                             limiter: PipedriveLimiter(burst: 40, window: .seconds(2), dailyTokens: 100_000, clock: later)) { client, sandbox in
            try await later.driving {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for i in 0..<40 { group.addTask { _ = try await client.createCallLog(Self.draft(i)) } }
                    try await group.waitForAll()
                }
            }
            #expect(await sandbox.rateLimitedCount() > 0)
            #expect(await sandbox.callLogs().count == 40)
            #expect(await client.limiter.burst == 10)
        }
    }
}

import AsyncHTTPClient
import CallTesting
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import CallAPI

@Suite struct ClientUnitTests {
    @Test func secretsNeverPrint() throws {
        let s = Secret("pd-token-123456")
        #expect("\(s)" == "<redacted>")
        #expect(String(reflecting: s) == "<redacted>")
        let env = try APIEnvironment.load(environment: ["PIPEDRIVE_API_TOKEN": "pd-token-123456", "TELNYX_API_KEY": "KEYabc"])
        #expect(!"\(env)".contains("pd-token-123456"))
        #expect(!"\(env)".contains("KEYabc"))
        #expect(env.pipedriveToken?.reveal() == "pd-token-123456")
    }

    @Test func environmentFileFillsWhatTheEnvironmentLeavesUnset() throws {
        let path = NSTemporaryDirectory() + "callrec-env-\(UUID().uuidString)"
        try "# secrets\nPIPEDRIVE_API_TOKEN=\"fromfile\"\nPIPEDRIVE_BURST=40\nTELNYX_API_KEY=filekey\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let env = try APIEnvironment.load(environment: ["TELNYX_API_KEY": "envkey"], file: path)
        #expect(env.pipedriveToken?.reveal() == "fromfile")
        #expect(env.telnyxKey?.reveal() == "envkey")
        #expect(env.pipedriveBurst == 40)
        #expect(env.pipedriveURL == "https://api.pipedrive.com/v1")
        #expect(throws: APIError.self) { try APIEnvironment.load(environment: ["PIPEDRIVE_BURST": "many"]) }
    }

    /// Every `*_API_URL` must be http(s) with a host (an empty one is unset); the error names
    /// the variable, never the value.
    @Test func apiURLsAreCheckedWhenLoaded() throws {
        for (key, value) in [("PIPEDRIVE_API_URL", "not a url"), ("PIPEDRIVE_API_URL", "ftp://api.pipedrive.com/v1"), ("TELNYX_API_URL", "https://"),
                             ("VOIPNOW_API_URL", "voip.example.com"), ("PIPEDRIVE_API_URL", "https://u:hunter2@/v1"),
                             ("PIPEDRIVE_API_URL", "https://api.pipedrive.com/v1?api_token=x")] {
            do {
                _ = try APIEnvironment.load(environment: [key: value])
                Issue.record("\(key)=\(value) was accepted")
            } catch let error as APIError {
                #expect(error.code == .configuration)
                #expect(error.message.contains(key), "\(error.message)")
                #expect(!error.message.contains("hunter2"))
            }
        }
        let env = try APIEnvironment.load(environment: ["PIPEDRIVE_API_URL": "", "VOIPNOW_API_URL": "http://127.0.0.1:8080", "TELNYX_API_URL": "HTTPS://api.telnyx.com/v2"])
        #expect(env.pipedriveURL == "https://api.pipedrive.com/v1")
        #expect(env.voipnowURL == "http://127.0.0.1:8080")
    }

    /// A `--config` file: comments, blank lines, `export` and quotes are fine; anything else is
    /// an error with the file and the line number, never the line's text.
    @Test func configFileLinesAreCheckedWithTheirNumbers() throws {
        let path = NSTemporaryDirectory() + "callrec-env-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "# settings\n\n  export PIPEDRIVE_API_TOKEN='tok en'\nPIPEDRIVE_BURST = 40\n".write(toFile: path, atomically: true, encoding: .utf8)
        let env = try APIEnvironment.load(environment: [:], file: path)
        #expect(env.pipedriveToken?.reveal() == "tok en")
        #expect(env.pipedriveBurst == 40)
        for (text, line, reason) in [("PIPEDRIVE_BURST=40\nTELNYX_KEY=abc\n", 2, "unknown setting TELNYX_KEY"),
                                     ("\n\nsupersecretvalue\n", 3, "not KEY=VALUE"),
                                     ("CALLREC_DATABASE=postgres://x/y\n", 1, "CALLREC_DATABASE"),
                                     ("TELNYX_API_KEY=a\n# again\nTELNYX_API_KEY=b\n", 3, "first on line 1"),
                                     ("1KEY=x\n", 1, "not KEY=VALUE")] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try APIEnvironment.load(environment: [:], file: path)
                Issue.record("accepted: \(text)")
            } catch let error as APIError {
                #expect(error.message.hasPrefix("\(path):\(line): "), "\(error.message)")
                #expect(error.message.contains(reason), "\(error.message)")
                #expect(!error.message.contains("supersecretvalue"))
            }
        }
    }

    @Test func voipNowDeleteAllURLCannotBeBuilt() throws {
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "@me", extension: "0003*210", eventType: 2, eventId: "") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "@me", extension: "0003*210", eventType: 2, eventId: "   ") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "@me", extension: "", eventType: 2, eventId: "x") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "@me", extension: "@self", eventType: 2, eventId: "x") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "", extension: "1", eventType: 2, eventId: "x") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "@me", extension: "1", eventType: -1, eventId: "x") }
        let a = try VoipNowEventAddress(userId: "@me", extension: "0003*210", eventType: 2, eventId: "Nq/ey 1")
        #expect(a.path == "/uapi/extensions/@me/0003*210/phoneCallEvents/2/Nq%2Fey%201")
        #expect(a.path.split(separator: "/").count == 7)  // uapi, extensions, user, extension, phoneCallEvents, type, id
    }

    @Test func multipartLengthIsExact() {
        let body = MultipartFileBody(filename: "call-17-part01.mp3", fileSize: 12345, boundary: "b0undary")
        #expect(body.preamble == "--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"call-17-part01.mp3\"\r\nContent-Type: audio/mpeg\r\n\r\n")
        #expect(body.epilogue == "\r\n--b0undary--\r\n")
        #expect(body.length == Int64(body.preamble.utf8.count + body.epilogue.utf8.count) + 12345)
        #expect(body.contentType == "multipart/form-data; boundary=b0undary")
        #expect(MultipartFileBody(filename: "a\"b\r\n.mp3", fileSize: 0).preamble.contains("filename=\"a_b.mp3\""))
    }

    func response(_ status: Int, _ body: String, contentType: String = "application/json", headers: [(String, String)] = []) -> APIResponse {
        var h = HTTPHeaders([("content-type", contentType)])
        for (k, v) in headers { h.add(name: k, value: v) }
        return APIResponse(status: status, headers: h, body: ByteBuffer(string: body))
    }

    @Test func pipedriveStatusesAreClassifiedPerTheContract() async {
        let client = PipedriveClient(baseURL: "http://127.0.0.1:1/v1", token: Secret("t"), limiter: PipedriveLimiter(),
                                     httpClient: .shared, logger: .init(label: "t"))
        let err = #"{"success":false,"error":"boom","error_info":"…"}"#
        func code(_ r: APIResponse, _ op: PipedriveLimiter.Operation = .get, idempotent: Bool = true) -> APIError.Code? {
            client.classify(r, operation: op, name: "x", idempotent: idempotent)?.code
        }
        #expect(code(response(200, #"{"success":true,"data":{"id":"CA1"}}"#)) == nil)
        #expect(code(response(200, #"{"success":false}"#)) == .permanent)
        #expect(code(response(400, err), .add, idempotent: false) == .permanent)
        #expect(code(response(401, err)) == .credentialsRefused)
        #expect(code(response(402, err)) == .credentialsRefused)
        #expect(code(response(403, err)) == .permanent)
        let blocked = client.classify(response(403, "<html>Cloudflare</html>", contentType: "text/html"), operation: .get, name: "x", idempotent: true)
        #expect(blocked?.code == .stopEverything)
        #expect(blocked?.retryAt.map { $0.timeIntervalSinceNow > 3500 } == true, "the abuse block's cool-down")
        #expect(code(response(404, err), .add, idempotent: false) == .permanent)
        #expect(code(response(404, err), .delete) == .notFound)
        #expect(code(response(410, err), .delete) == .notFound)
        #expect(code(response(409, err), .recording, idempotent: false) == .doneAlready)
        let limited = client.classify(response(429, err, headers: [("retry-after", "3")]), operation: .add, name: "x", idempotent: false)
        #expect(limited?.code == .rateLimited)
        #expect(limited?.retryAfter == .seconds(3))
        #expect(code(response(503, err)) == .transient)
        #expect(code(response(500, err), .add, idempotent: false) == .unknownOutcome)
    }

    @Test func limiterSpacesRequestsToTheBurstWindow() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 5, window: .milliseconds(200), dailyTokens: 1000, margin: .zero, clock: clock)
        let start = clock.now
        try await clock.driving {
            for _ in 0..<15 { await limiter.finished(try await limiter.acquire(.get)) }
        }
        #expect(start.duration(to: clock.now) == .milliseconds(400))  // 3 windows of 5: two waits
        #expect(await limiter.counters.tokensSpent == 30)
        #expect(await limiter.counters.requests == 15)
    }

    @Test func aSlotIsHeldUntilItsAnswerArrives() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 2, window: .milliseconds(100), dailyTokens: 1000, margin: .zero, clock: clock)
        let a = try await limiter.acquire(.get)
        let b = try await limiter.acquire(.get)
        // Both slots in flight for 300 ms: a third request looks again and again, and waits.
        let third = Task { try await limiter.acquire(.get) }
        while clock.now.offset < .milliseconds(300) {
            #expect(await clock.waitForSleepers(1))
            clock.advanceToNextDeadline()
        }
        #expect(await limiter.counters.requests == 2)
        // The answers arrive: it goes out a window after them.
        let answered = clock.now
        await limiter.finished(a)
        await limiter.finished(b)
        let sentAt = try await clock.driving {
            _ = try await third.value
            return clock.now
        }
        #expect(answered.duration(to: sentAt) == .milliseconds(100))
    }

    @Test func limiterRefusesBeyondTheDailyBudgetAndAfterAStop() async throws {
        let limiter = PipedriveLimiter(burst: 100, dailyTokens: 25)
        await limiter.finished(try await limiter.acquire(.add))
        await limiter.finished(try await limiter.acquire(.add))
        await #expect(throws: APIError.self) { try await limiter.acquire(.recording) }
        await limiter.rateLimited(.add, retryAfter: .milliseconds(1))
        #expect(await limiter.counters.tokensSpent == 10)
        await limiter.stop(APIError(.stopEverything, api: .pipedrive, "abuse"))
        await #expect(throws: APIError.self) { try await limiter.acquire(.get) }
    }

    /// A refused token stops the limiter for good; the abuse block only for its cool-down.
    @Test func theAbuseBlockStopsTrafficForItsCoolDownAndARefusedTokenForGood() async throws {
        let clock = ManualWallClock(Date(timeIntervalSince1970: 1_700_000_000))
        let limiter = PipedriveLimiter(burst: 100, dailyTokens: 1000, now: { clock.now })
        await limiter.stop(APIError(.stopEverything, api: .pipedrive, "abuse", retryAt: clock.now.addingTimeInterval(3600)))
        await #expect { try await limiter.acquire(.get) } throws: { ($0 as? APIError)?.code == .stopEverything }
        #expect(await limiter.stoppedBy?.code == .stopEverything)
        clock.now = clock.now.addingTimeInterval(3600)
        #expect(await limiter.stoppedBy == nil)
        await limiter.finished(try await limiter.acquire(.get))
        await limiter.stop(APIError(.credentialsRefused, api: .pipedrive, "401"))
        clock.now = clock.now.addingTimeInterval(86_400 * 30)
        await #expect { try await limiter.acquire(.get) } throws: { ($0 as? APIError)?.code == .credentialsRefused }
    }

    /// The budget is counted per budget day (from `PIPEDRIVE_BUDGET_RESET` after midnight UTC):
    /// spent, it refuses with the time of the reset; the next day it has its tokens again. A
    /// create goes out only when the budget also covers its upload.
    @Test func theDailyBudgetRenewsAtItsResetAndACreateReservesItsUpload() async throws {
        let clock = ManualWallClock(Date(timeIntervalSince1970: 1_700_000_000))  // 2023-11-14 22:13:20 UTC
        let limiter = PipedriveLimiter(burst: 100, dailyTokens: 48, budgetReset: .seconds(23 * 3600), now: { clock.now })
        // Two creates, each with its upload set aside: 40 of 48 promised.
        try await limiter.reserve(10, alongWith: .add)
        await limiter.finished(try await limiter.acquire(.add))
        await limiter.keepReservation(10, for: "A")
        try await limiter.reserve(10, alongWith: .add)
        await limiter.finished(try await limiter.acquire(.add))
        await limiter.keepReservation(10, for: "B")
        // A third create and its upload would not fit; nor an upload without a reservation.
        do {
            try await limiter.reserve(10, alongWith: .add)
            Issue.record("a create went out that its upload could not follow")
        } catch let error as APIError {
            #expect(error.code == .budgetSpent)
            #expect(error.retryAfter == .seconds(2800))  // until 23:00 UTC
            #expect(error.message.contains("2023-11-14T23:00:00Z"), "\(error.message)")
        }
        await #expect(throws: APIError.self) { try await limiter.acquire(.recording, for: "C") }
        // The two reserved uploads go out whatever else was spent in between.
        await limiter.finished(try await limiter.acquire(.get))
        await limiter.finished(try await limiter.acquire(.get))
        await limiter.finished(try await limiter.acquire(.recording, for: "B"))
        await limiter.finished(try await limiter.acquire(.recording, for: "A"))
        #expect(await limiter.counters.tokensSpent == 44)
        clock.now = clock.now.addingTimeInterval(2800)  // the reset
        #expect(await limiter.nextBudgetReset == Date(timeIntervalSince1970: 1_700_002_800 + 86_400))
        await limiter.finished(try await limiter.acquire(.recording, for: "C"))
        #expect(await limiter.counters.tokensSpent == 54, "the run's count goes on across days")
    }

    @Test func theBudgetResetComesFromTheEnvironment() throws {
        let environment = try APIEnvironment.load(environment: ["PIPEDRIVE_BUDGET_RESET": "07:30"])
        #expect(environment.pipedriveBudgetReset == .seconds(7 * 3600 + 30 * 60))
        #expect(throws: APIError.self) { try APIEnvironment.load(environment: ["PIPEDRIVE_BUDGET_RESET": "25:00"]) }
    }
}

/// A wall clock a test moves by hand.
final class ManualWallClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Date
    init(_ start: Date) { value = start }
    var now: Date {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

@Suite struct HostileHeaderTests {
    @Test func nonFiniteAndHugeRetryHeadersAreClamped() {
        for (name, value) in [("retry-after", "inf"), ("retry-after", "nan"), ("retry-after-ms", "nan"), ("x-ratelimit-reset", "1e300"), ("retry-after", "-5")] {
            let headers = HTTPHeaders([(name, value)])
            let wait = headers.retryAfter
            #expect(wait == nil || (wait! >= .zero && wait! <= .seconds(86_400)), "\(name): \(value) → \(String(describing: wait))")
        }
    }

    @Test func dotSegmentsAreRefused() throws {
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "1", extension: "0003*210", eventType: 1, eventId: "..") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "1", extension: "0003*210", eventType: 1, eventId: ".") }
        #expect(throws: APIError.self) { try VoipNowEventAddress(userId: "1", extension: "..", eventType: 1, eventId: "x") }
        #expect(try VoipNowEventAddress(userId: "@me", extension: "1", eventType: 1, eventId: "a.b").path.hasSuffix("/1/a%2Eb"))
        #expect(throws: APIError.self) { try PipedriveClient.pathComponent("..") }
    }

    @Test func observeIgnoresANaNReset() async throws {
        let limiter = PipedriveLimiter(burst: 5, dailyTokens: 100)
        await limiter.observe(limit: 5, remaining: 0, reset: .nan)
        await limiter.observe(limit: 5, remaining: 0, reset: .infinity)
        let start = ContinuousClock.now
        try await limiter.acquire(.get)
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}

import AsyncHTTPClient
import CallSandbox
import CallTesting
import Foundation
import Logging
import Synchronization
import Testing

@testable import CallAPI

/// 429s without `Retry-After` (Pipedrive documents none for its daily budget), against the
/// sandbox's `budget` fault over loopback: the waits grow, and a run of them with no other answer
/// between is the budget spent until the reset. The limiter waits callrec's own waits (2 s,
/// doubling) on a clock the test moves to each wait's end, so no test sleeps out a backoff.
@Suite struct RateLimitBudgetTests {

    func withClient<T>(limiter: PipedriveLimiter, fault: @escaping @Sendable (Int) -> Bool,
                       _ body: (PipedriveClient, Sandbox) async throws -> T) async throws -> T {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 1000
        let token = configuration.pipedriveToken
        let sent = Mutex(0)
        return try await withSandbox(configuration) { url, sandbox in
            var client = PipedriveClient(baseURL: url.absoluteString + "/v1", token: Secret(token), limiter: limiter, httpClient: .shared,
                                         logger: Logger(label: "test"))
            client.decorate = { _ in
                let n = sent.withLock { n in
                    n += 1
                    return n
                }
                return fault(n) ? [("x-sandbox-fault", "budget")] : [("x-sandbox-fault", "none")]
            }
            return try await body(client, sandbox)
        }
    }

    @Test func aRunOf429sWithoutRetryAfterIsTheBudgetSpentUntilTheReset() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 1000, dailyTokens: 100_000, budgetReset: .seconds(7 * 3600), budgetSignal: 4, clock: clock)
        try await withClient(limiter: limiter, fault: { _ in true }) { client, sandbox in
            let started = clock.now
            do {
                _ = try await clock.driving { try await client.createCallLog(PipedriveSandboxTests.draft()) }
                Issue.record("created through a spent budget")
            } catch let error as APIError {
                #expect(error.code == .budgetSpent, "\(error)")
                #expect(error.retryAt == (await limiter.nextBudgetReset), "\(error)")
                #expect(error.message.contains("429") && error.message.contains("PIPEDRIVE_BUDGET_RESET"), "\(error.message)")
            }
            // Four tries, the waits between them growing: at least 1 + 2 + 4 s (jitter halves
            // them at most) and at most 2 + 4 + 8 s, not a fixed 2 s, nor 20 tries.
            #expect(await sandbox.requestCount(route: "POST /v1/callLogs") == 4)
            let waited = started.duration(to: clock.now)
            #expect(waited >= .seconds(7) && waited <= .seconds(14), "\(waited)")
            #expect(await limiter.counters.tokensSpent == 0, "refused requests cost nothing")
            // The rest of the budget day sends nothing at all.
            await #expect { try await client.callLog(id: "CA1") } throws: { ($0 as? APIError)?.code == .budgetSpent }
            #expect(await sandbox.requestCount() == 4)
        }
    }

    @Test func a429WithoutRetryAfterThatAnAnswerFollowsIsNoBudget() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 1000, dailyTokens: 100_000, budgetSignal: 3, clock: clock)
        // Two refusals, an answer, two refusals, an answer: never three in a row.
        try await withClient(limiter: limiter, fault: { n in n % 3 != 0 }) { client, sandbox in
            try await clock.driving {
                for i in 0..<2 { _ = try await client.createCallLog(PipedriveSandboxTests.draft(i)) }
            }
            #expect(await sandbox.callLogs().count == 2)
            #expect(await limiter.counters.rateLimited == 4)
        }
    }

    /// Requests in flight together meet one refusal: they count as one round, not one each.
    @Test func concurrentRefusalsCountAsOneRound() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 1000, dailyTokens: 100_000, budgetSignal: 3, clock: clock)
        try await withClient(limiter: limiter, fault: { _ in true }) { client, sandbox in
            try await clock.driving {
                await withTaskGroup(of: Void.self) { group in
                    for i in 0..<4 { group.addTask { _ = try? await client.callLog(id: "CA\(i)") } }
                }
            }
            // Three rounds of (up to) four requests each; one round per request would have
            // concluded after the first.
            #expect(await sandbox.requestCount() > 3)
            await #expect { try await client.callLog(id: "CA9") } throws: { ($0 as? APIError)?.code == .budgetSpent }
        }
    }

    /// A 429 with `Retry-After` is that wait, and never counts toward the budget.
    @Test func a429WithRetryAfterIsNotTheBudget() async throws {
        let clock = ManualClock()
        let limiter = PipedriveLimiter(burst: 1000, dailyTokens: 100_000, budgetSignal: 1, clock: clock)
        try await clock.driving {
            for _ in 0..<3 {
                let ticket = try await limiter.acquire(.get)
                await limiter.finished(ticket)
                #expect(try await limiter.rateLimited(ticket, .get, retryAfter: .seconds(3)) == .seconds(3))
            }
            await limiter.finished(try await limiter.acquire(.get))
        }
        #expect(clock.now.offset == .seconds(9), "three waits of Retry-After: 3")
    }
}

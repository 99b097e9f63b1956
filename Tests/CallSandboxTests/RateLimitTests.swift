import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Testing

@Suite struct RateLimitTests {
    @Test func burstOverTheWindowGets429WithHeaders() async throws {
        let clock = ManualClock()  // stands still: however slow the machine, no request slips out of the window
        let configuration = testConfiguration {
            $0.burstPerTwoSeconds = 3
            $0.clock = clock
        }
        try await withTestSandbox(configuration) { client, sandbox in
            var remaining: [String] = []
            for _ in 0..<3 {
                let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
                #expect(result.status == 200)
                #expect(result.header("x-ratelimit-limit") == "3")
                remaining.append(result.header("x-ratelimit-remaining") ?? "?")
                #expect(result.header("x-ratelimit-reset") == "2")
            }
            #expect(remaining == ["2", "1", "0"])
            let limited = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
            #expect(limited.status == 429)
            #expect(limited.header("x-ratelimit-limit") == "3")
            #expect(limited.header("x-ratelimit-remaining") == "0")
            #expect(limited.header("x-ratelimit-reset") == "2")
            #expect(limited.header("retry-after") == "2")
            // Half the window later its oldest request is a second from leaving it.
            clock.advance(by: .seconds(1))
            let later = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
            #expect(later.status == 429 && later.header("retry-after") == "1")
            let json = try limited.json
            #expect(json["success"] as? Bool == false)
            #expect(json["error"] as? String == "request over limit")
            #expect(await sandbox.rateLimitedCount() == 2)
            #expect(await sandbox.counters().burstLimited == 2)
            #expect(await sandbox.tokensSpent() == 60)  // the 429 cost nothing
        }
    }

    @Test func pacedRequestsAreNeverLimited() async throws {
        let clock = ManualClock()
        let configuration = testConfiguration {
            $0.burstPerTwoSeconds = 3
            $0.burstWindow = .milliseconds(300)
            $0.clock = clock
        }
        try await withTestSandbox(configuration) { client, sandbox in
            for _ in 0..<3 {
                for _ in 0..<3 {
                    let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
                    #expect(result.status == 200)
                }
                clock.advance(by: .milliseconds(400))
            }
            #expect(await sandbox.rateLimitedCount() == 0)
            #expect(await sandbox.tokensSpent() == 9 * 20)
        }
    }

    @Test func anExhaustedDailyBudgetLimitsEverything() async throws {
        try await withTestSandbox(testConfiguration { $0.dailyTokens = 25 }) { client, sandbox in
            let id = try await client.newCallLog()  // 10
            _ = try await client.newCallLog()  // 20
            let get = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)  // 22
            #expect(get.status == 200)
            let list = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)  // 42 > 25
            #expect(list.status == 429)
            #expect(try list.json["error"] as? String == "request over limit")
            // The burst window still has room: that is how a client tells the budget from the burst.
            #expect(Int(list.header("x-ratelimit-remaining") ?? "0")! > 0)
            let retryAfter = try #require(list.header("retry-after").flatMap(Int.init))
            #expect(retryAfter >= 1 && retryAfter <= 86_400)
            let another = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)  // 24
            #expect(another.status == 200)
            _ = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)  // 26 > 25
            let create = try await client.createCallLog()
            #expect(create.status == 429)
            #expect(await sandbox.tokensSpent() == 24)
            #expect(await sandbox.counters().budgetLimited == 3)
            #expect(await sandbox.callLogs().count == 2)

            // A new budget day.
            let reset = try await client.send(.POST, "/_sandbox/pipedrive/budget/reset")
            #expect(reset.status == 200)
            #expect(try await client.createCallLog().status == 200)
        }
    }
}

import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Testing

@Suite struct FaultTests {
    @Test func injected429HasRetryAfterAndCostsNothing() async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.createCallLog(headers: ["x-sandbox-fault": "429"])
            #expect(result.status == 429)
            #expect(result.header("retry-after") == "1")
            #expect(result.header("x-ratelimit-remaining") == "0")
            #expect(try result.json["error"] as? String == "request over limit")
            #expect(await sandbox.callLogs().isEmpty)
            #expect(await sandbox.tokensSpent() == 0)
            #expect(await sandbox.rateLimitedCount() == 1)
            #expect(await sandbox.counters().faultsInjected["429"] == 1)
        }
    }

    @Test(arguments: [("500", 500), ("503", 503)])
    func serverErrorsUseTheEnvelope(fault: String, status: Int) async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.createCallLog(headers: ["x-sandbox-fault": fault])
            #expect(result.status == status)
            let json = try result.json
            #expect(json["success"] as? Bool == false)
            #expect(json["error"] is String)
            #expect(json["data"] is NSNull)
            #expect(result.header("x-ratelimit-limit") != nil)
            #expect(await sandbox.callLogs().isEmpty)
            #expect(await sandbox.tokensSpent() == 0)
        }
    }

    /// The `slow` fault holds the answer for its delay on the sandbox's clock: nothing comes back
    /// before the test moves it on.
    @Test func slowAnswersLate() async throws {
        let clock = ManualClock()
        try await withTestSandbox(testConfiguration { $0.clock = clock }) { client, sandbox in
            let answer = Task {
                try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "slow", "x-sandbox-delay": "0.4"]) { $1 })
            }
            #expect(await clock.waitForSleepers(1))
            #expect(clock.nextDeadline?.offset == .milliseconds(400))
            clock.advance(by: .milliseconds(399))
            #expect(clock.sleepers == 1, "answered before its delay")
            clock.advance(by: .milliseconds(1))
            let status = try await answer.value.status
            #expect(status == 200)
            #expect(await sandbox.counters().faultsInjected["slow"] == 1)
        }
    }

    @Test func slowUsesTheConfiguredDelay() async throws {
        let clock = ManualClock()
        let configuration = testConfiguration {
            $0.faults.slowDelay = .milliseconds(300)
            $0.clock = clock
        }
        try await withTestSandbox(configuration) { client, _ in
            let answer = Task { try await client.createCallLog(headers: ["x-sandbox-fault": "slow"]) }
            #expect(await clock.waitForSleepers(1))
            #expect(clock.nextDeadline?.offset == .milliseconds(300))
            clock.advance(by: .milliseconds(300))
            let status = try await answer.value.status
            #expect(status == 200)
        }
    }

    @Test func abuseIsAnHTMLForbiddenPage() async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "abuse"]) { $1 })
            #expect(result.status == 403)
            #expect(result.header("content-type")?.hasPrefix("text/html") == true)
            #expect(result.text.contains("Cloudflare"))
            #expect((try? JSONSerialization.jsonObject(with: result.body)) == nil)
        }
    }

    /// The spent daily budget as Pipedrive answers it: 429 with no `Retry-After`, the burst
    /// window showing room, nothing charged.
    @Test func budgetIsA429WithoutRetryAfterAndRoomInTheWindow() async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "budget"]) { $1 })
            #expect(result.status == 429)
            #expect(result.header("retry-after") == nil)
            #expect((Int(result.header("x-ratelimit-remaining") ?? "") ?? 0) > 0)
            #expect(await sandbox.tokensSpent() == 0)
        }
    }

    @Test func lostCreateExistsButIsNeverAnswered() async throws {
        try await withTestSandbox { client, sandbox in
            await #expect(throws: (any Error).self) {
                _ = try await client.createCallLog(["note": "<p>marker pl:42</p>"], headers: ["x-sandbox-fault": "lost"])
            }
            let logs = await sandbox.callLogs()
            #expect(logs.count == 1)
            #expect(logs.first?.note == "<p>marker pl:42</p>")
            // The client can find it again (api-contract §4.2).
            let list = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
            let page = try #require(try list.json["data"] as? [[String: Any]])
            #expect(page.first?["note"] as? String == "<p>marker pl:42</p>")
            #expect(await sandbox.counters().faultsInjected["lost"] == 1)
        }
    }

    @Test func lostDeleteIsDone() async throws {
        try await withTestSandbox { client, _ in
            let id = try await client.newCallLog()
            await #expect(throws: (any Error).self) {
                _ = try await client.send(.DELETE, "/v1/callLogs/\(id)", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "lost"]) { $1 })
            }
            let again = try await client.send(.DELETE, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect(again.status == 410)
        }
    }

    @Test func cutUploadStoresNothing() async throws {
        let mp3 = try makeMP3(seconds: 30, sampleRate: 16000)
        let directory = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = testConfiguration { $0.stateDirectory = directory }
        try await withTestSandbox(configuration) { client, sandbox in
            let id = try await client.newCallLog()
            await #expect(throws: (any Error).self) {
                _ = try await client.upload(id, data: mp3, headers: ["x-sandbox-fault": "cut"], streamChunk: 8192)
            }
            #expect(await sandbox.callLog(id: id)?.hasRecording == false)
            #expect(await sandbox.recordingPath(callLogId: id) == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/uploads").isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/recordings").isEmpty)
            #expect(await sandbox.counters().faultsInjected["cut"] == 1)
            // The server is fine, and the retry goes through.
            let retry = try await client.upload(id, data: mp3)
            #expect(retry.status == 200)
            #expect(await sandbox.callLog(id: id)?.recording?.sha256 == sha256Hex(mp3))
        }
    }

    @Test func cutCreateCreatesNothing() async throws {
        try await withTestSandbox { client, sandbox in
            await #expect(throws: (any Error).self) {
                _ = try await client.createCallLog(headers: ["x-sandbox-fault": "cut"])
            }
            #expect(await sandbox.callLogs().isEmpty)
            #expect(await sandbox.tokensSpent() == 0)
        }
    }

    @Test func faultsApplyToTelnyxAndVoipNowInTheirFormats() async throws {
        try await withTestSandbox { client, sandbox in
            let id = await sandbox.seedTelnyxRecording()
            let telnyx = try await client.send(.DELETE, "/v2/recordings/\(id)", headers: client.telnyxAuth.merging(["x-sandbox-fault": "500"]) { $1 })
            #expect(telnyx.status == 500)
            let errors = try #require(try telnyx.json["errors"] as? [[String: Any]])
            #expect(errors.first?["code"] as? String == "10007")
            #expect(await sandbox.telnyxRecordingExists(id))

            let limited = try await client.send(.GET, "/v2/recordings", headers: client.telnyxAuth.merging(["x-sandbox-fault": "429"]) { $1 })
            #expect(limited.status == 429)
            #expect(limited.header("retry-after") == "1")
            #expect((try limited.json["errors"] as? [[String: Any]])?.first?["code"] as? String == "10011")

            let eventId = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let voipnow = try await client.send(.DELETE, "/uapi/extensions/@me/0003*210/phoneCallEvents/2/\(eventId)",
                                                headers: client.voipnowAuth.merging(["x-sandbox-fault": "503"]) { $1 })
            #expect(voipnow.status == 503)
            #expect((try voipnow.json["error"] as? [String: Any])?["code"] as? String == "service_unavailable")

            await #expect(throws: (any Error).self) {
                _ = try await client.send(.DELETE, "/uapi/extensions/@me/0003*210/phoneCallEvents/2/\(eventId)",
                                          headers: client.voipnowAuth.merging(["x-sandbox-fault": "lost"]) { $1 })
            }
            #expect(await sandbox.voipNowEvents().isEmpty)
        }
    }

    @Test func anUnknownFaultHeaderIsABadRequest() async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "explode"]) { $1 })
            #expect(result.status == 400)
        }
    }

    @Test func aPlanInjectsFaultsAndNoneOptsOut() async throws {
        let configuration = testConfiguration { $0.faults = try! FaultPlan(specification: "500=1") }
        try await withTestSandbox(configuration) { client, sandbox in
            for _ in 0..<3 {
                let result = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth)
                #expect(result.status == 500)
            }
            let spared = try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth.merging(["x-sandbox-fault": "none"]) { $1 })
            #expect(spared.status == 200)
            let state = try await client.send(.GET, "/_sandbox/state")
            #expect(state.status == 200)  // never a fault on introspection
            #expect(await sandbox.counters().faultsInjected["500"] == 3)
        }
    }
}

@Suite struct FaultPlanTests {
    @Test func parsesASpecification() throws {
        let plan = try FaultPlan(specification: "429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02,delay=1.5,retry-after=3")
        #expect(plan.probabilities[.tooManyRequests] == 0.05)
        #expect(plan.probabilities[.lost] == 0.02)
        #expect(plan.probabilities[.abuse] == nil)
        #expect(plan.slowDelay == .milliseconds(1500))
        #expect(plan.retryAfterSeconds == 3)
        #expect(!plan.isEmpty)
        #expect(try FaultPlan(specification: "").isEmpty)
        #expect(try FaultPlan(specification: plan.specification) == plan)
    }

    @Test(arguments: ["429", "boom=0.1", "500=2", "429=0.6,500=0.6", "slow=-1", "lost=x"])
    func rejectsABadSpecification(_ specification: String) {
        #expect(throws: SandboxError.self) { try FaultPlan(specification: specification) }
    }
}

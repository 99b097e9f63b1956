import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Testing

@Suite struct StateTests {
    @Test func survivesARestart() async throws {
        let directory = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = testConfiguration { $0.stateDirectory = directory }
        let mp3 = try makeMP3(seconds: 3)

        let (id, deletedId, telnyxId, eventId) = try await withTestSandbox(configuration) { client, sandbox in
            let id = try await client.newCallLog(["subject": "kept"])
            let upload = try await client.upload(id, data: mp3)
            #expect(upload.status == 200)
            let deletedId = try await client.newCallLog()
            _ = try await client.send(.DELETE, "/v1/callLogs/\(deletedId)", headers: client.pipedriveAuth)
            let telnyxId = await sandbox.seedTelnyxRecording()
            let eventId = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            return (id, deletedId, telnyxId, eventId)
        }

        try await withTestSandbox(configuration) { client, sandbox in
            let logs = await sandbox.callLogs()
            #expect(logs.map(\.id) == [id, deletedId])
            #expect(logs.last?.deleted == true)
            #expect(logs.first?.recording?.sha256 == sha256Hex(mp3))
            let path = try #require(await sandbox.recordingPath(callLogId: id))
            #expect(FileManager.default.contents(atPath: path) == mp3)
            #expect(await sandbox.telnyxRecordingExists(telnyxId))
            #expect(await sandbox.voipNowEvents().map(\.id) == [eventId])
            #expect(await sandbox.tokensSpent() == 10 + 10 + 10 + 6)  // the budget day carries over

            let got = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect((try got.json["data"] as? [String: Any])?["has_recording"] as? Bool == true)
            let gone = try await client.send(.GET, "/v1/callLogs/\(deletedId)", headers: client.pipedriveAuth)
            #expect(gone.status == 410)
            let conflict = try await client.upload(id, data: mp3)
            #expect(conflict.status == 409)
            let event = try await client.send(.DELETE, "/uapi/extensions/@me/0003*210/phoneCallEvents/2/\(eventId)", headers: client.voipnowAuth)
            #expect(event.status == 200)
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/sandbox-state.json"))
    }

    @Test func memoryModeLeavesNothingBehind() async throws {
        let mp3 = try makeMP3(seconds: 2)
        var stored: String?
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            #expect(try await client.upload(id, data: mp3).status == 200)
            stored = await sandbox.recordingPath(callLogId: id)
            #expect(stored.map { FileManager.default.fileExists(atPath: $0) } == true)
        }
        // The sandbox is gone with the closure; its temporary directory with it.
        let root = try #require(stored).components(separatedBy: "/recordings/")[0]
        #expect(!FileManager.default.fileExists(atPath: root))
    }

    @Test func introspectionShowsEverything() async throws {
        let mp3 = try makeMP3(seconds: 2)
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            _ = try await client.upload(id, data: mp3)
            _ = await sandbox.seedTelnyxRecording()
            _ = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 0)
            _ = try await client.send(.GET, "/v1/callLogs", headers: [:])

            let result = try await client.send(.GET, "/_sandbox/state")
            #expect(result.status == 200)
            let json = try result.json
            let logs = try #require(json["call_logs"] as? [[String: Any]])
            #expect(logs.first?["id"] as? String == id)
            #expect(logs.first?["has_recording"] as? Bool == true)
            #expect(logs.first?["deleted"] as? Bool == false)
            let recording = try #require(logs.first?["recording"] as? [String: Any])
            #expect(recording["sha256"] as? String == sha256Hex(mp3))
            #expect(recording["bytes"] as? Int == mp3.count)
            #expect(recording["content_type"] as? String == "audio/mpeg")
            #expect(recording["filename"] as? String == "call.mp3")
            // Dated to the millisecond (benchmarks time uploads by it): 2026-12-06T18:43:23.123Z.
            let uploaded = try #require(recording["uploaded_at"] as? String)
            #expect(uploaded.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(uploaded)")
            #expect((json["telnyx_recordings"] as? [Any])?.count == 1)
            #expect((json["voipnow_events"] as? [[String: Any]])?.first?["extension"] as? String == "0003*210")
            let counters = try #require(json["counters"] as? [String: Any])
            #expect(counters["tokens_spent"] as? Int == 20)
            #expect(counters["unauthorized"] as? Int == 1)
            let routes = try #require(counters["requests_per_route"] as? [String: Int])
            #expect(routes["POST /v1/callLogs"] == 1)
            #expect(routes["POST /v1/callLogs/{id}/recordings"] == 1)
            #expect(routes["GET /v1/callLogs"] == 1)
            #expect(counters["rate_limited"] as? Int == 0)
            #expect(await sandbox.requestCount() == 3)
            #expect(await sandbox.requestCount(route: "POST /v1/callLogs") == 1)
        }
    }

    /// Two sandboxes on one state directory would each write their own state over the other's
    /// (the last write wins, call logs vanish). The one serving it holds it and publishes its
    /// address there (owner-only: it holds the credentials); a second one fails to start, and
    /// says who serves it; once the first stops, the directory is free again.
    @Test func aStateDirectoryIsServedByOneSandboxAtATime() async throws {
        let directory = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = testConfiguration { $0.stateDirectory = directory }
        try await withSandbox(configuration) { base, _ in
            let address = try #require(SandboxAddress.serving(directory))
            #expect(address.url == base.absoluteString)
            #expect(address.pid == ProcessInfo.processInfo.processIdentifier)
            #expect(address.pipedriveToken == configuration.pipedriveToken)
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/serving.json")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            var second = testConfiguration()
            second.stateDirectory = directory
            do {
                _ = try await withSandbox(second) { _, _ in Issue.record("a second sandbox served the same state") }
                Issue.record("a second sandbox on the same state started")
            } catch let error as SandboxError {
                #expect(error.code == .stateInUse)
                #expect(error.message.contains("\(directory) is in use: process \(address.pid) serves it at \(base.absoluteString)"), "\(error.message)")
            }
            // The first one still serves.
            #expect(SandboxAddress.serving(directory) == address)
        }
        #expect(SandboxAddress.serving(directory) == nil)
        #expect(!FileManager.default.fileExists(atPath: directory + "/serving.json"))
        try await withSandbox(configuration) { _, _ in
            #expect(SandboxAddress.serving(directory) != nil)
        }
    }

    /// The run serving a state directory's sandbox (`upload --sandbox`) keeps it up while other
    /// runs use it: it is alone only once they all ended, and from then on a newcomer waits for
    /// it to stop instead of joining a sandbox that is going away.
    @Test func theServingRunWaitsUntilTheOthersEnded() async throws {
        let directory = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let host = try await SandboxUse(directory: directory)
        let guest = try await SandboxUse(directory: directory)
        let waiting = Locked(false), alone = Locked(false)
        let task = Task {
            try await host.waitUntilAlone(interval: .milliseconds(5)) { waiting.withLock { $0 = true } }
            alone.withLock { $0 = true }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while !waiting.withLock({ $0 }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(waiting.withLock { $0 })
        #expect(!alone.withLock { $0 }, "alone while another run uses the sandbox")
        guest.end()
        try await task.value
        #expect(alone.withLock { $0 })
        await #expect(throws: SandboxError.self) { _ = try await SandboxUse(directory: directory, timeout: .milliseconds(50)) }
        host.end()
        let next = try await SandboxUse(directory: directory, timeout: .seconds(10))
        next.end()
    }

    @Test func aTakenPortFailsTheStart() async throws {
        try await withTestSandbox { base, _ in
            let taken = testConfiguration { $0.port = base.base.port! }
            await #expect(throws: (any Error).self) {
                try await withSandbox(taken) { _, _ in }
            }
        }
    }
}

@Suite struct ConfigurationTests {
    @Test func makesUpMissingCredentials() {
        let (configuration, generated) = SandboxConfiguration.fromEnvironment(["PIPEDRIVE_API_TOKEN": "given", "TELNYX_API_KEY": "", "PIPEDRIVE_BURST": "40"])
        #expect(configuration.pipedriveToken == "given")
        #expect(generated == ["TELNYX_API_KEY", "VOIPNOW_ACCESS_TOKEN"])
        #expect(configuration.telnyxKey.count > 20)
        #expect(configuration.voipnowToken.count > 20)
        #expect(configuration.burstPerTwoSeconds == 40)
        #expect(configuration.dailyTokens == 30_000)
        #expect(configuration.port == 0)
        #expect(configuration.host == "127.0.0.1")
    }

    @Test func validatesRanges() {
        var configuration = SandboxConfiguration.random()
        configuration.burstPerTwoSeconds = 0
        #expect(throws: SandboxError.self) { try configuration.validate() }
    }
}

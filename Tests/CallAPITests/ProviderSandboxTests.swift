import AsyncHTTPClient
import CallSandbox
import CallTesting
import Foundation
import Logging
import Testing

@testable import CallAPI

/// Telnyx recordings and VoipNow phone-call events against the sandbox.
@Suite struct ProviderSandboxTests {
    @Test func telnyxListGetDelete() async throws {
        let configuration = SandboxConfiguration.random()
        try await withSandbox(configuration) { url, sandbox in
            let client = TelnyxClient(baseURL: url.absoluteString + "/v2", key: Secret(configuration.telnyxKey),
                                      httpClient: .shared, logger: Logger(label: "t"))
            var ids: [String] = []
            for _ in 0..<7 { ids.append(await sandbox.seedTelnyxRecording()) }
            let page = try await client.recordings(page: 1, size: 3)
            #expect(page.recordings.count == 3)
            #expect(page.totalPages == 3)
            let all = try await client.allRecordings()
            #expect(Set(all.map(\.id)) == Set(ids))
            #expect(try await client.recording(id: ids[0]).id == ids[0])
            #expect(try await client.deleteRecording(id: ids[0]) == .deleted)
            #expect(try await client.deleteRecording(id: ids[0]) == .alreadyGone)
            #expect(await sandbox.telnyxRecordingExists(ids[0]) == false)
            #expect(await sandbox.telnyxRecordingExists(ids[1]))
            await #expect { try await client.recording(id: ids[0]) } throws: { ($0 as? APIError)?.code == .notFound }
            await #expect { try await client.deleteRecording(id: "not-a-uuid") } throws: { ($0 as? APIError)?.code == .configuration }
            let wrong = TelnyxClient(baseURL: url.absoluteString + "/v2", key: Secret("nope"), httpClient: .shared, logger: Logger(label: "t"))
            // A refused key names the variable to fix.
            await #expect { try await wrong.recordings() } throws: {
                ($0 as? APIError)?.code == .credentialsRefused && ($0 as? APIError)?.message.contains("TELNYX_API_KEY") == true
            }
        }
    }

    @Test func voipNowDeletesExactlyOneEvent() async throws {
        let configuration = SandboxConfiguration.random()
        try await withSandbox(configuration) { url, sandbox in
            let client = VoipNowClient(baseURL: url.absoluteString, token: Secret(configuration.voipnowToken),
                                       httpClient: .shared, logger: Logger(label: "t"))
            let keep1 = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let target = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let keep2 = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 0)
            let address = try VoipNowEventAddress(userId: "@me", extension: "0003*210", eventType: 2, eventId: target)
            #expect(try await client.deleteEvent(address) == .deleted(ids: [target]))
            let left = await sandbox.voipNowEvents(extension: "0003*210").map(\.id)
            #expect(Set(left) == [keep1, keep2])
            // Deleting it again finds nothing: already gone, and nothing else is touched.
            #expect(try await client.deleteEvent(address) == .alreadyGone)
            #expect(await sandbox.voipNowEvents(extension: "0003*210").count == 2)
            let unknownExtension = try VoipNowEventAddress(userId: "@me", extension: "9999*999", eventType: 2, eventId: "x")
            await #expect { try await client.deleteEvent(unknownExtension) } throws: {
                ($0 as? APIError)?.serverCode == "extension_invalid" && ($0 as? APIError)?.code == .permanent
            }
            let wrong = VoipNowClient(baseURL: url.absoluteString, token: Secret("nope"), httpClient: .shared, logger: Logger(label: "t"))
            await #expect { try await wrong.deleteEvent(address) } throws: {
                ($0 as? APIError)?.code == .credentialsRefused && ($0 as? APIError)?.message.contains("VOIPNOW_ACCESS_TOKEN") == true
            }
        }
    }

    /// The waits between tries are slept on the client's clock: an API that refuses every
    /// connection is tried five times with four growing waits between (250 ms doubling, jitter
    /// halves each at most: 1.875 to 3.75 s in all), and the test waits for none of them.
    @Test func theWaitsBetweenTriesAreOnTheClientsClock() async throws {
        let base = "http://127.0.0.1:\(try refusedLoopbackPort())"
        let http = HTTPClient.makeForAPIs()
        let telnyxClock = ManualClock(), voipnowClock = ManualClock()
        let telnyx = TelnyxClient(baseURL: base + "/v2", key: Secret("k"), httpClient: http, logger: Logger(label: "t"), clock: telnyxClock)
        let voipnow = VoipNowClient(baseURL: base, token: Secret("t"), httpClient: http, logger: Logger(label: "t"), clock: voipnowClock)
        let address = try VoipNowEventAddress(userId: "@me", extension: "0003*210", eventType: 2, eventId: "x")
        await #expect { try await telnyxClock.driving { try await telnyx.recordings() } } throws: { ($0 as? APIError)?.code == .unreachable }
        await #expect { try await voipnowClock.driving { try await voipnow.deleteEvent(address) } } throws: { ($0 as? APIError)?.code == .unreachable }
        for (api, clock) in [("telnyx", telnyxClock), ("voipnow", voipnowClock)] {
            #expect(clock.now.offset >= .milliseconds(1875) && clock.now.offset <= .milliseconds(3750), "\(api): \(clock.now)")
        }
        try await http.shutdown()
    }
}

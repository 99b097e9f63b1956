import CallSandbox
import CallTesting
import Foundation
import NIOHTTP1
import Testing

@Suite struct TelnyxRecordingTests {
    @Test func rejectsAMissingOrWrongKey() async throws {
        try await withTestSandbox { client, _ in
            for headers in [[:], ["Authorization": "Bearer nope"], ["Authorization": client.configuration.telnyxKey]] {
                let result = try await client.send(.GET, "/v2/recordings", headers: headers)
                #expect(result.status == 401)
                let error = try #require((try result.json["errors"] as? [[String: Any]])?.first)
                #expect(error["code"] as? String == "10009")
                #expect(error["title"] as? String == "Authentication failed")
                #expect(error["detail"] is String)
            }
        }
    }

    @Test func pagesThroughRecordings() async throws {
        try await withTestSandbox { client, sandbox in
            var ids: [String] = []
            for _ in 0..<5 { ids.append(await sandbox.seedTelnyxRecording()) }
            var seen: [String] = []
            for number in 1...3 {
                let result = try await client.send(.GET, "/v2/recordings?page[number]=\(number)&page[size]=2", headers: client.telnyxAuth)
                #expect(result.status == 200)
                let json = try result.json
                let meta = try #require(json["meta"] as? [String: Any])
                #expect(meta["total_pages"] as? Int == 3)
                #expect(meta["total_results"] as? Int == 5)
                #expect(meta["page_number"] as? Int == number)
                #expect(meta["page_size"] as? Int == 2)
                let data = try #require(json["data"] as? [[String: Any]])
                #expect(data.count == (number == 3 ? 1 : 2))
                seen += data.compactMap { $0["id"] as? String }
            }
            #expect(Set(seen) == Set(ids))
            #expect(seen == ids.reversed())  // newest first

            let encoded = try await client.send(.GET, "/v2/recordings?page%5Bsize%5D=250", headers: client.telnyxAuth)
            #expect((try encoded.json["data"] as? [Any])?.count == 5)
            let defaults = try await client.send(.GET, "/v2/recordings", headers: client.telnyxAuth)
            #expect((try defaults.json["meta"] as? [String: Any])?["page_size"] as? Int == 20)
            for bad in ["page[size]=251", "page[size]=0", "page[number]=0", "page[size]=x"] {
                let result = try await client.send(.GET, "/v2/recordings?\(bad)", headers: client.telnyxAuth)
                #expect(result.status == 400, "\(bad)")
                #expect((try result.json["errors"] as? [[String: Any]])?.first?["code"] as? String == "10015")
            }
        }
    }

    @Test func getsAndDeletesARecording() async throws {
        try await withTestSandbox { client, sandbox in
            let id = await sandbox.seedTelnyxRecording(id: "3FA85F64-5717-4562-B3FC-2C963F66AFA6")
            #expect(id == "3fa85f64-5717-4562-b3fc-2c963f66afa6")
            let got = try await client.send(.GET, "/v2/recordings/\(id)", headers: client.telnyxAuth)
            #expect(got.status == 200)
            let data = try #require(try got.json["data"] as? [String: Any])
            #expect(data["id"] as? String == id)
            #expect(data["record_type"] as? String == "recording")
            #expect(data["status"] as? String == "completed")
            #expect(data["duration_millis"] is Int)
            #expect(data["call_leg_id"] is String)
            #expect(data["download_urls"] is [String: Any])

            let deleted = try await client.send(.DELETE, "/v2/recordings/\(id)", headers: client.telnyxAuth)
            #expect(deleted.status == 200)
            #expect((try deleted.json["data"] as? [String: Any])?["id"] as? String == id)
            #expect(await !sandbox.telnyxRecordingExists(id))

            for method: HTTPMethod in [.GET, .DELETE] {
                let again = try await client.send(method, "/v2/recordings/\(id)", headers: client.telnyxAuth)
                #expect(again.status == 404)
                let error = try #require((try again.json["errors"] as? [[String: Any]])?.first)
                #expect(error["code"] as? String == "10005")
                #expect(error["title"] as? String == "Resource not found")
            }
            #expect(await sandbox.telnyxRecordings().first?.deleted == true)
        }
    }

    /// A route Telnyx does not have (or a method it does not take) answers 404 in Telnyx's
    /// JSON:API error format (api-contract §2.5), not in another API's words.
    @Test(arguments: [(HTTPMethod.GET, "/v2/calls"), (.POST, "/v2/recordings"), (.GET, "/v2/recordings/x/actions"), (.PATCH, "/v2/recordings/x")])
    func answersUnknownRoutesInTelnyxFormat(method: HTTPMethod, path: String) async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.send(method, path, headers: client.telnyxAuth)
            #expect(result.status == 404)
            #expect(result.header("content-type")?.hasPrefix("application/json") == true)
            let errors = try #require(try result.json["errors"] as? [[String: Any]])
            #expect(errors.count == 1)
            #expect(errors.first?["code"] as? String == "10005")
            #expect(errors.first?["title"] as? String == "Resource not found")
            #expect(errors.first?["detail"] as? String == "The requested resource or URL could not be found.")
            #expect(result.header("x-ratelimit-limit") != nil)
        }
    }

    /// Every Telnyx answer carries `x-ratelimit-limit`, `x-ratelimit-remaining` and
    /// `x-ratelimit-reset` (seconds until the window resets), as the real API does.
    @Test func answersCarryRateLimitHeaders() async throws {
        try await withTestSandbox { client, sandbox in
            let id = await sandbox.seedTelnyxRecording()
            for path in ["/v2/recordings", "/v2/recordings/\(id)", "/v2/recordings/\(UUID().uuidString)"] {
                let result = try await client.send(.GET, path, headers: client.telnyxAuth)
                let limit = try #require(result.header("x-ratelimit-limit").flatMap(Int.init), "\(path)")
                let left = try #require(result.header("x-ratelimit-remaining").flatMap(Int.init))
                let reset = try #require(result.header("x-ratelimit-reset").flatMap(Int.init))
                #expect(left >= 0 && left < limit, "this request took one")
                #expect(reset >= 1)
            }
            let unauthorized = try await client.send(.GET, "/v2/recordings", headers: ["Authorization": "Bearer nope"])
            #expect(unauthorized.status == 401)
            #expect(unauthorized.header("x-ratelimit-limit") != nil)
        }
    }

    /// Over the configured limit Telnyx answers 429 `10011` with `Retry-After` and the headers
    /// (remaining 0); a 429 takes no slot, and the window frees again.
    @Test func overTheLimitIs429InTelnyxFormat() async throws {
        let clock = ManualClock()  // stands still: however slow the machine, no request slips out of the window
        let configuration = testConfiguration {
            $0.telnyxRequestsPerWindow = 3
            $0.telnyxWindow = .seconds(30)
            $0.clock = clock
        }
        try await withTestSandbox(configuration) { client, sandbox in
            var remaining: [String] = []
            for _ in 0..<3 {
                let result = try await client.send(.GET, "/v2/recordings", headers: client.telnyxAuth)
                #expect(result.status == 200)
                #expect(result.header("x-ratelimit-limit") == "3")
                remaining.append(result.header("x-ratelimit-remaining") ?? "?")
            }
            #expect(remaining == ["2", "1", "0"])
            let limited = try await client.send(.DELETE, "/v2/recordings/\(UUID().uuidString)", headers: client.telnyxAuth)
            #expect(limited.status == 429)
            let error = try #require((try limited.json["errors"] as? [[String: Any]])?.first)
            #expect(error["code"] as? String == "10011")
            #expect(error["title"] as? String == "Too many requests")
            #expect(limited.header("x-ratelimit-remaining") == "0")
            #expect(limited.header("x-ratelimit-reset") == "30")
            #expect(limited.header("retry-after") == "30")
            #expect(await sandbox.rateLimitedCount() == 1)
            // Pipedrive keeps its own window.
            #expect(try await client.send(.GET, "/v1/callLogs", headers: client.pipedriveAuth).status == 200)
            // The window frees once its oldest request has left it.
            clock.advance(by: .seconds(29))
            #expect(try await client.send(.GET, "/v2/recordings", headers: client.telnyxAuth).status == 429)
            clock.advance(by: .seconds(1))
            #expect(try await client.send(.GET, "/v2/recordings", headers: client.telnyxAuth).status == 200)
        }
    }

    @Test func filtersByCallLeg() async throws {
        try await withTestSandbox { client, _ in
            let seeded = try await client.send(.POST, "/_sandbox/telnyx/recordings",
                                               body: Data(#"{"call_leg_id":"428c31b6-7af4-4bcb-b7f5-5013ef9657c1","from":"+15550001111"}"#.utf8))
            #expect(seeded.status == 201)
            let id = try #require(try seeded.json["id"] as? String)
            _ = try await client.send(.POST, "/_sandbox/telnyx/recordings")
            let result = try await client.send(.GET, "/v2/recordings?filter[call_leg_id]=428c31b6-7af4-4bcb-b7f5-5013ef9657c1", headers: client.telnyxAuth)
            let data = try #require(try result.json["data"] as? [[String: Any]])
            #expect(data.compactMap { $0["id"] as? String } == [id])
            #expect(data.first?["from"] as? String == "+15550001111")
        }
    }
}

import CallSandbox
import CallTesting
import Foundation
import Logging
import NIOHTTP1
import Testing

@Suite struct PipedriveCallLogTests {
    @Test func rejectsAMissingOrWrongToken() async throws {
        try await withTestSandbox { client, sandbox in
            for headers in [[:], ["x-api-token": "wrong"]] {
                let result = try await client.send(.GET, "/v1/callLogs", headers: headers)
                #expect(result.status == 401)
                let json = try result.json
                #expect(json["success"] as? Bool == false)
                #expect(json["error"] as? String == "unauthorized access")
                #expect(json["error_info"] is String)
                #expect(json["data"] is NSNull)
                #expect(json["additional_data"] is NSNull)
                #expect(result.header("x-ratelimit-limit") != nil)
                #expect(result.header("x-ratelimit-remaining") != nil)
                #expect(result.header("x-ratelimit-reset") != nil)
            }
            #expect(await sandbox.tokensSpent() == 0)
            #expect(await sandbox.counters().unauthorized == 2)
        }
    }

    @Test func createsACallLogWithAnOpaqueStringId() async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.createCallLog(["note": "<p>hi</p>", "deal_id": 3, "person_id": 1, "duration": "250"])
            #expect(result.status == 200)  // not 201
            let json = try result.json
            #expect(json["success"] as? Bool == true)
            let data = try #require(json["data"] as? [String: Any])
            let id = try #require(data["id"] as? String)
            #expect(id.hasPrefix("CA") && id.count == 34)
            #expect(data["has_recording"] as? Bool == false)
            #expect(data["company_id"] is Int)
            #expect(data["activity_id"] is Int)
            #expect(data["outcome"] as? String == "connected")
            #expect(data["duration"] as? String == "250")
            #expect(data["deal_id"] as? Int == 3)
            #expect(data["lead_id"] is NSNull)
            #expect(data["note"] as? String == "<p>hi</p>")
            // The answer uses ISO-8601 with milliseconds, not the request format (api-contract §1.3).
            #expect(data["start_time"] as? String == "2026-11-20T10:00:00.000Z")
            #expect(data["end_time"] as? String == "2026-11-20T10:04:10.000Z")
            #expect(result.header("x-ratelimit-limit") != nil)

            let logs = await sandbox.callLogs()
            #expect(logs.map(\.id) == [id])
            #expect(logs.first?.startTime == "2026-11-20 10:00:00")
            #expect(await sandbox.tokensSpent() == 10)
        }
    }

    @Test func acceptsTheTFormAndALead() async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.createCallLog([
                "start_time": "2026-11-20T10:00:00", "end_time": "2026-11-20T10:00:00",
                "lead_id": "3FA85F64-5717-4562-B3FC-2C963F66AFA6", "deal_id": NSNull(), "outcome": "no_answer",
            ])
            #expect(result.status == 200, "\(result.text)")
            let data = try #require(try result.json["data"] as? [String: Any])
            #expect(data["lead_id"] as? String == "3fa85f64-5717-4562-b3fc-2c963f66afa6")
        }
    }

    @Test(arguments: [
        (["outcome": NSNull()], "\"outcome\" is required."),
        (["outcome": "answered"], "\"outcome\" must be one of [connected, no_answer, left_message, left_voicemail, wrong_number, busy]."),
        (["to_phone_number": NSNull()], "\"to_phone_number\" is required."),
        (["to_phone_number": 15_551_230_000], "\"to_phone_number\" must be a string."),
        (["start_time": NSNull()], "\"start_time\" is required."),
        (["end_time": "2026-11-20 10:04"], "\"end_time\" must be a UTC date and time in the format YYYY-MM-DD HH:MM:SS."),
        (["start_time": "2026-02-30 10:00:00"], "\"start_time\" must be a UTC date and time in the format YYYY-MM-DD HH:MM:SS."),
        (["start_time": "2026-11-20T10:00:00.000Z"], "\"start_time\" must be a UTC date and time in the format YYYY-MM-DD HH:MM:SS."),
        (["end_time": "2026-11-20 09:59:59"], "\"end_time\" must not be earlier than \"start_time\"."),
        (["deal_id": 3, "lead_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6"], "\"deal_id\" and \"lead_id\" are mutually exclusive: a call log links to a deal or to a lead, not both."),
        (["lead_id": "not-a-uuid"], "\"lead_id\" must be a valid GUID."),
        (["user_id": "7"], "\"user_id\" must be an integer."),
        (["person_id": 1.5], "\"person_id\" must be an integer."),
        (["duration": 250], "\"duration\" must be a string."),
    ] as [([String: any Sendable], String)])
    func validationErrors(fields: [String: any Sendable], message: String) async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.createCallLog(fields)
            #expect(result.status == 400)
            let json = try result.json
            #expect(json["success"] as? Bool == false)
            #expect(json["error"] as? String == message)
            #expect(await sandbox.callLogs().isEmpty)
        }
    }

    @Test func rejectsABodyThatIsNotJSON() async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.send(.POST, "/v1/callLogs", headers: client.pipedriveAuth, body: Data("outcome=connected".utf8))
            #expect(result.status == 400)
            #expect(try result.json["error"] as? String == "Invalid JSON in the request body.")
        }
    }

    @Test func listsInCreationOrderWithPaginationCappedAtFifty() async throws {
        try await withTestSandbox { client, _ in
            var ids: [String] = []
            for i in 0..<56 { ids.append(try await client.newCallLog(["subject": "call \(i)"])) }
            let deleted = try await client.send(.DELETE, "/v1/callLogs/\(ids[1])", headers: client.pipedriveAuth)
            #expect(deleted.status == 200)
            let live = ids.enumerated().filter { $0.offset != 1 }.map(\.element)

            let first = try await client.send(.GET, "/v1/callLogs?start=0&limit=500", headers: client.pipedriveAuth)
            #expect(first.status == 200)
            let firstJSON = try first.json
            let firstPage = try #require(firstJSON["data"] as? [[String: Any]])
            #expect(firstPage.count == 50)
            #expect(firstPage.compactMap { $0["id"] as? String } == Array(live.prefix(50)))
            let pagination = try #require((firstJSON["additional_data"] as? [String: Any])?["pagination"] as? [String: Any])
            #expect(pagination["start"] as? Int == 0)
            #expect(pagination["limit"] as? Int == 50)
            #expect(pagination["more_items_in_collection"] as? Bool == true)
            #expect(pagination["next_start"] as? Int == 50)

            let second = try await client.send(.GET, "/v1/callLogs?start=50&limit=50", headers: client.pipedriveAuth)
            let secondJSON = try second.json
            let secondPage = try #require(secondJSON["data"] as? [[String: Any]])
            #expect(secondPage.compactMap { $0["id"] as? String } == Array(live.suffix(5)))
            let secondPagination = try #require((secondJSON["additional_data"] as? [String: Any])?["pagination"] as? [String: Any])
            #expect(secondPagination["more_items_in_collection"] as? Bool == false)
            #expect(secondPagination["next_start"] == nil)

            let small = try await client.send(.GET, "/v1/callLogs?limit=2&start=3", headers: client.pipedriveAuth)
            let smallJSON = try small.json
            #expect((smallJSON["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == Array(live[3..<5]))
            #expect(((smallJSON["additional_data"] as? [String: Any])?["pagination"] as? [String: Any])?["next_start"] as? Int == 5)

            let bad = try await client.send(.GET, "/v1/callLogs?limit=0", headers: client.pipedriveAuth)
            #expect(bad.status == 400)
        }
    }

    @Test func getsDeletesAndThenAnswersGone() async throws {
        try await withTestSandbox { client, sandbox in
            let id = try await client.newCallLog()
            let got = try await client.send(.GET, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect(got.status == 200)
            #expect((try got.json["data"] as? [String: Any])?["id"] as? String == id)

            let deleted = try await client.send(.DELETE, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
            #expect(deleted.status == 200)
            #expect(try deleted.json["success"] as? Bool == true)

            for method: HTTPMethod in [.DELETE, .GET] {
                let again = try await client.send(method, "/v1/callLogs/\(id)", headers: client.pipedriveAuth)
                #expect(again.status == 410)
                #expect(try again.json["error"] as? String == "The callLog you are trying to access is no longer available")
            }
            let unknown = try await client.send(.GET, "/v1/callLogs/CAdoesnotexist", headers: client.pipedriveAuth)
            #expect(unknown.status == 404)
            #expect(try unknown.json["success"] as? Bool == false)
            let unknownDelete = try await client.send(.DELETE, "/v1/callLogs/CAdoesnotexist", headers: client.pipedriveAuth)
            #expect(unknownDelete.status == 404)

            let log = try #require(await sandbox.callLog(id: id))
            #expect(log.deleted)
            // create 10 + get 2 + delete 6 + (delete 6 + get 2 + get 2 + delete 6: errors cost too)
            #expect(await sandbox.tokensSpent() == 34)
        }
    }

    /// The legacy query form (`?api_token=`), which popular clients still send, is accepted like
    /// the header, and the token never reaches the sandbox's log.
    @Test func acceptsTheTokenAsAQueryParameter() async throws {
        let configuration = testConfiguration()
        let lines = Locked<[String]>([])
        let logger = Logger(label: "test.sandbox", factory: { _ in CaptureHandler(lines: lines) })
        try await withSandbox(configuration, logger: logger) { base, sandbox in
            let client = SandboxClient(base: base, configuration: configuration)
            let token = configuration.pipedriveToken
            let json = ["Content-Type": "application/json"]
            let body = try JSONSerialization.data(withJSONObject: [
                "outcome": "connected", "to_phone_number": "+15551230000", "start_time": "2026-11-20 10:00:00", "end_time": "2026-11-20 10:04:10",
            ])
            let created = try await client.send(.POST, "/v1/callLogs?api_token=\(token)", headers: json, body: body)
            #expect(created.status == 200, "\(created.text)")
            let id = try #require((try created.json["data"] as? [String: Any])?["id"] as? String)
            let listed = try await client.send(.GET, "/v1/callLogs?start=0&api_token=\(token)&limit=5")
            #expect(listed.status == 200)
            #expect((try listed.json["data"] as? [[String: Any]])?.count == 1)
            #expect(listed.header("x-ratelimit-remaining") != nil)
            let got = try await client.send(.GET, "/api/v1/callLogs/\(id)?api_token=\(token)")
            #expect(got.status == 200)

            let wrong = try await client.send(.GET, "/v1/callLogs?api_token=wrong\(token)")
            #expect(wrong.status == 401)
            #expect(try wrong.json["error"] as? String == "unauthorized access")
            let empty = try await client.send(.GET, "/v1/callLogs?api_token=")
            #expect(empty.status == 401)
            #expect(await sandbox.counters().unauthorized == 2)
        }
        let logged = lines.withLock { $0 }
        #expect(!logged.isEmpty)
        #expect(!logged.contains { $0.contains(configuration.pipedriveToken) }, "\(logged)")
    }

    @Test func answersUnknownRoutesWithTheEnvelope() async throws {
        try await withTestSandbox { client, _ in
            let result = try await client.send(.GET, "/v1/deals", headers: client.pipedriveAuth)
            #expect(result.status == 404)
            #expect(try result.json["success"] as? Bool == false)
            #expect(result.header("x-ratelimit-remaining") != nil)
            let apiV1 = try await client.send(.GET, "/api/v1/callLogs", headers: client.pipedriveAuth)
            #expect(apiV1.status == 200)
        }
    }
}

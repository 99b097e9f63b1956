import CallSandbox
import Foundation
import NIOHTTP1
import Testing

@Suite struct VoipNowEventTests {
    private let base = "/uapi/extensions/@me/0003*210/phoneCallEvents"

    @Test func rejectsAMissingOrWrongToken() async throws {
        try await withTestSandbox { client, sandbox in
            for headers in [[:], ["Authorization": "Bearer nope"]] {
                let result = try await client.send(.DELETE, base + "/2/x", headers: headers)
                #expect(result.status == 401)
                let error = try #require(try result.json["error"] as? [String: Any])
                #expect(error["code"] as? String == "access_denied")
                #expect(error["message"] is String)
            }
            #expect(await sandbox.voipNowEvents().isEmpty)
            // The query form the UAPI also accepts.
            let id = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 0)
            let query = try await client.send(.DELETE, base + "/0/\(id)?accessRequestToken=Bearer%20\(client.configuration.voipnowToken)")
            #expect(query.status == 200)
        }
    }

    @Test func deletesOneEvent() async throws {
        try await withTestSandbox { client, sandbox in
            let keep = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let target = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let result = try await client.send(.DELETE, base + "/2/\(target)", headers: client.voipnowAuth)
            #expect(result.status == 200)
            let ids = try result.jsonArray.compactMap { ($0 as? [String: Any])?["id"] as? String }
            #expect(ids == [target])
            #expect(await sandbox.voipNowEvents(extension: "0003*210").map(\.id) == [keep])
        }
    }

    @Test func deletesByTypeAndThenEverythingOnTheExtension() async throws {
        try await withTestSandbox { client, sandbox in
            let hangups = [await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2), await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)]
            let dialIn = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 0)
            let dialOut = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 1)
            let elsewhere = await sandbox.seedVoipNowEvent(extension: "0003*211", type: 2)

            let byType = try await client.send(.DELETE, base + "/2", headers: client.voipnowAuth)
            #expect(byType.status == 200)
            #expect(Set(try byType.jsonArray.compactMap { ($0 as? [String: Any])?["id"] as? String }) == Set(hangups))

            // The trap: no type and no id deletes every event on the extension, whatever its type.
            let all = try await client.send(.DELETE, base, headers: client.voipnowAuth)
            #expect(all.status == 200)
            #expect(Set(try all.jsonArray.compactMap { ($0 as? [String: Any])?["id"] as? String }) == [dialIn, dialOut])
            #expect(await sandbox.voipNowEvents(extension: "0003*210").isEmpty)
            #expect(await sandbox.voipNowEvents().map(\.id) == [elsewhere])

            let nothing = try await client.send(.DELETE, base, headers: client.voipnowAuth)
            #expect(nothing.status == 204)
            #expect(nothing.body.isEmpty)
            let nothingOfType = try await client.send(.DELETE, base + "/1", headers: client.voipnowAuth)
            #expect(nothingOfType.status == 204)
        }
    }

    @Test func anEmptyIdWidensTheDelete() async throws {
        try await withTestSandbox { client, sandbox in
            _ = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            _ = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            // A URL builder that leaves the id empty: `…/phoneCallEvents/2/` deletes every Hangup event.
            let result = try await client.send(.DELETE, base + "/2/", headers: client.voipnowAuth)
            #expect(result.status == 200)
            #expect(try result.jsonArray.count == 2)
        }
    }

    @Test func acceptsThePercentEncodedStar() async throws {
        try await withTestSandbox { client, sandbox in
            let id = await sandbox.seedVoipNowEvent(userId: "17", extension: "0003*210", type: 1)
            let result = try await client.send(.DELETE, "/uapi/extensions/17/0003%2A210/phoneCallEvents/1/\(id)", headers: client.voipnowAuth)
            #expect(result.status == 200)
            let owner = await sandbox.seedVoipNowEvent(userId: "17", extension: "0003*210", type: 0)
            let byOwner = try await client.send(.DELETE, "/uapi/extensions/%40owner/0003%2a210/phoneCallEvents/0/\(owner)", headers: client.voipnowAuth)
            #expect(byOwner.status == 200)
        }
    }

    @Test(arguments: [
        ("/uapi/extensions/@me/0003*999/phoneCallEvents/2/ID", "extension_invalid"),
        ("/uapi/extensions/@me/@self/phoneCallEvents/2/ID", "extension_invalid"),
        ("/uapi/extensions/@me/0003*210/phoneCallEvents/5/ID", "pce_type_invalid"),
        ("/uapi/extensions/@me/0003*210/phoneCallEvents/x", "pce_type_invalid"),
        ("/uapi/extensions/@me/0003*210/phoneCallEvents/2/unknownid", "pce_id_invalid"),
        ("/uapi/extensions/@me/0003*210/phoneCallEvents/0/ID", "pce_id_invalid"),
        ("/uapi/extensions/bob/0003*210/phoneCallEvents/2/ID", "user_invalid"),
        ("/uapi/extensions/99/0003*210/phoneCallEvents/2/ID", "extension_invalid"),
    ])
    func errorCodes(path: String, code: String) async throws {
        try await withTestSandbox { client, sandbox in
            let id = await sandbox.seedVoipNowEvent(extension: "0003*210", type: 2)
            let result = try await client.send(.DELETE, path.replacingOccurrences(of: "ID", with: id), headers: client.voipnowAuth)
            #expect(result.status == 400)
            #expect((try result.json["error"] as? [String: Any])?["code"] as? String == code)
            #expect(await sandbox.voipNowEvents().map(\.id) == [id])
        }
    }

    @Test func seedsOverHTTP() async throws {
        try await withTestSandbox { client, sandbox in
            let result = try await client.send(.POST, "/_sandbox/voipnow/events",
                                               body: Data(#"{"user_id":"@me","extension":"0003*210","event_type":2,"url":"https://hooks.example/x"}"#.utf8))
            #expect(result.status == 201)
            let id = try #require(try result.json["id"] as? String)
            #expect(await sandbox.voipNowEvents(extension: "0003*210").first?.url == "https://hooks.example/x")
            #expect(await sandbox.voipNowEvents().map(\.id) == [id])
            let bad = try await client.send(.POST, "/_sandbox/voipnow/events", body: Data(#"{"extension":"0003*210","event_type":7}"#.utf8))
            #expect(bad.status == 400)
        }
    }
}

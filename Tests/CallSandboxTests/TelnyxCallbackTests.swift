import AsyncHTTPClient
import CallAudio
import CallPhone
import CallSandbox
import CallTesting
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

/// The sandbox as a Telnyx that calls back: simulated calls, their recordings behind expiring
/// links, and their signed webhooks, checked by a receiver of the test's own on loopback.
@Suite struct TelnyxCallbackTests {
    // MARK: Calls and recordings

    @Test func placedCallsAreListedWithAudioBehindFreshLinks() async throws {
        try await withTestSandbox { client, _ in
            let placed = try await client.placeCalls(["count": 2, "seconds": 12, "seed": 7])
            #expect(placed.status == 201, "\(placed.text)")
            let calls = try #require(try placed.json["calls"] as? [[String: Any]])
            #expect(calls.count == 2)
            let numbers = Set(calls.compactMap { $0["from"] as? String })
            #expect(numbers.count == 2, "each call has its own other party")
            #expect(calls.allSatisfy { ($0["to"] as? String) == "+442071838750" })
            for call in calls {
                let leg = try #require(call["call_leg_id"] as? String)
                let listed = try await client.send(.GET, "/v2/recordings?filter[call_leg_id]=\(leg)", headers: client.telnyxAuth)
                let items = try #require(try listed.json["data"] as? [[String: Any]])
                #expect(items.count == 1)
                let item = try #require(items.first)
                #expect(item["id"] as? String == call["recording_id"] as? String)
                #expect(item["call_session_id"] as? String == call["call_session_id"] as? String)
                #expect(item["duration_millis"] as? Int == 12_000)
                let link = try #require((item["download_urls"] as? [String: String])?["wav"])
                let audio = try await client.get(link)
                #expect(audio.status == 200)
                #expect(audio.header("content-type") == "audio/wav")
                let expectedBytes = 44 + 2 * 8000 * 12
                #expect(audio.body.count == expectedBytes)
                #expect(audio.body.prefix(4) == Data("RIFF".utf8))
                // The same recording, the same bytes; another recording, other bytes.
                #expect(try await client.get(link).body == audio.body)
            }
        }
    }

    @Test func theDefaultNumbersAreValidAndUnique() async throws {
        try await withTestSandbox { client, _ in
            let placed = try await client.placeCalls(["count": 50, "seconds": 1, "direction": "outgoing"])
            let calls = try #require(try placed.json["calls"] as? [[String: Any]])
            let others = calls.compactMap { $0["to"] as? String }
            #expect(Set(others).count == 50)
            for number in others + ["+442071838750"] {
                #expect(PhoneNumbers.normalize(number, region: nil).e164 == number, "\(number)")
            }
        }
    }

    @Test func theAudioPassesCallrecsValidation() async throws {
        try await withTestSandbox { client, _ in
            let placed = try await client.placeCalls(["count": 1, "seconds": 40])
            let call = try #require((try placed.json["calls"] as? [[String: Any]])?.first)
            let recording = try #require(call["recording"] as? [String: Any])
            let link = try #require((recording["download_urls"] as? [String: String])?["wav"])
            let audio = try await client.get(link)
            try await withTemporaryDirectory { directory in
                let path = directory + "/call.wav"
                try audio.body.write(to: URL(fileURLWithPath: path))
                let analysis = AudioAnalyzer.analyze(path: path)
                #expect(analysis.isAccepted, "\(String(describing: analysis.error))")
                #expect(analysis.info?.sampleRate == 8000)
                #expect(analysis.info?.channels == 1)
            }
        }
    }

    @Test func linksExpireAndTheListingRenewsThem() async throws {
        try await withReceiver { receiver, url in
            try await withTestSandbox(testConfiguration { $0.telnyxWebhook = url }) { client, _ in
                let placed = try await client.placeCalls(["seconds": 3, "link_ttl": 0])
                let call = try #require((try placed.json["calls"] as? [[String: Any]])?.first)
                let saved = try await receiver.waitFor(1) { $0.type == "call.recording.saved" }[0]
                let payload = saved.payload
                let expired = try #require((payload["recording_urls"] as? [String: String])?["wav"])
                #expect(payload["public_recording_urls"] as? [String: String] == [:])
                let refused = try await client.get(expired)
                #expect(refused.status == 403)
                #expect(refused.text.contains("<Code>AccessDenied</Code>"))
                #expect(refused.text.contains("<Message>Request has expired</Message>"))

                let leg = try #require(payload["call_leg_id"] as? String)
                let listed = try await client.send(.GET, "/v2/recordings?filter%5Bcall_leg_id%5D=\(leg)", headers: client.telnyxAuth)
                let fresh = try #require(((try listed.json["data"] as? [[String: Any]])?.first?["download_urls"] as? [String: String])?["wav"])
                let audio = try await client.get(fresh)
                #expect(audio.status == 200)
                let expectedBytes = 44 + 2 * 8000 * 3
                #expect(audio.body.count == expectedBytes)

                // A link someone changed does not verify; a deleted recording is gone.
                let forged = fresh.replacingOccurrences(of: "expires=", with: "expires=9")
                #expect(try await client.get(forged).status == 403)
                let id = try #require(call["recording_id"] as? String)
                #expect(try await client.send(.DELETE, "/v2/recordings/\(id)", headers: client.telnyxAuth).status == 200)
                let gone = try await client.get(fresh)
                #expect(gone.status == 404)
                #expect(gone.text.contains("<Code>NoSuchKey</Code>"))
            }
        }
    }

    @Test func listingFilters() async throws {
        try await withTestSandbox { client, _ in
            let before = Date().addingTimeInterval(-5)
            let placed = try await client.placeCalls(["count": 3, "seconds": [5, 9]])
            let calls = try #require(try placed.json["calls"] as? [[String: Any]])
            let session = try #require(calls[1]["call_session_id"] as? String)
            func ids(_ query: String) async throws -> [String] {
                let result = try await client.send(.GET, "/v2/recordings?\(query)", headers: client.telnyxAuth)
                #expect(result.status == 200, "\(query): \(result.text)")
                return (try result.json["data"] as? [[String: Any]])?.compactMap { $0["id"] as? String } ?? []
            }
            #expect(try await ids("filter[call_session_id]=\(session)") == [calls[1]["recording_id"] as? String].compactMap(\.self))
            let stamp = { (date: Date) in date.formatted(Date.ISO8601FormatStyle()) }
            #expect(try await ids("filter[created_at][gte]=\(stamp(before))").count == 3)
            #expect(try await ids("filter[created_at][lte]=\(stamp(before))").isEmpty)
            #expect(try await ids("filter[created_at][gte]=\(stamp(Date().addingTimeInterval(60)))").isEmpty)
            #expect(try await ids("filter[created_at][lte]=\(stamp(Date().addingTimeInterval(60)))&filter[created_at][gte]=\(stamp(before))").count == 3)
            let bad = try await client.send(.GET, "/v2/recordings?filter[created_at][gte]=yesterday", headers: client.telnyxAuth)
            #expect(bad.status == 400)
            #expect((try bad.json["errors"] as? [[String: Any]])?.first?["code"] as? String == "10015")
        }
    }

    @Test func aBadOrderIsRefusedNamingTheField() async throws {
        try await withTestSandbox { client, _ in
            for (body, field) in [
                (["count": 0], "count"), (["seconds": [9, 3]], "seconds"), (["direction": "sideways"], "direction"),
                (["from": "0207"], "from"), (["format": "ogg"], "format"), (["colour": "red"], "colour"),
                (["format": "mp3"], "format"),
            ] as [([String: Any], String)] {
                let result = try await client.placeCalls(body)
                #expect(result.status == 400, "\(body)")
                #expect((try result.json["error"] as? String)?.hasPrefix(field) == true, "\(result.text)")
            }
        }
    }

    // MARK: Webhooks

    @Test func webhooksAreSignedAndACallsEventsArriveInOrder() async throws {
        try await withReceiver { receiver, url in
            try await withTestSandbox(testConfiguration { $0.telnyxWebhook = url }) { client, sandbox in
                let key = try await client.send(.GET, "/_sandbox/telnyx/public-key")
                #expect(try key.json["public_key"] as? String == sandbox.telnyxPublicKey)
                let publicKey = try Curve25519.Signing.PublicKey(rawRepresentation: try #require(Data(base64Encoded: sandbox.telnyxPublicKey)))

                _ = try await client.placeCalls(["count": 3, "seconds": 4, "direction": "outgoing"])
                let deliveries = try await receiver.waitFor(12)
                for delivery in deliveries {
                    let signature = try #require(Data(base64Encoded: delivery.signature))
                    #expect(publicKey.isValidSignature(signature, for: Data("\(delivery.timestamp)|".utf8) + delivery.body))
                    #expect(abs(Double(delivery.timestamp)! - Date().timeIntervalSince1970) < 60)
                    #expect(delivery.contentType == "application/json")
                    let envelope = try #require(try JSONSerialization.jsonObject(with: delivery.body) as? [String: Any])
                    let data = try #require(envelope["data"] as? [String: Any])
                    #expect(data["record_type"] as? String == "event")
                    #expect(UUID(uuidString: data["id"] as? String ?? "") != nil)
                    #expect(data["occurred_at"] is String)
                    let meta = try #require(envelope["meta"] as? [String: Any])
                    #expect(meta["attempt"] as? Int == 1)
                    #expect(meta["delivered_to"] as? String == url)
                }
                let bySession = Dictionary(grouping: deliveries, by: \.session)
                #expect(bySession.count == 3)
                for (_, events) in bySession {
                    #expect(events.map(\.type) == ["call.initiated", "call.answered", "call.hangup", "call.recording.saved"])
                    let initiated = events[0].payload
                    #expect(initiated["direction"] as? String == "outgoing")
                    #expect(initiated["state"] as? String == "bridging")
                    #expect(initiated["from"] as? String == "+442071838750")
                    #expect(events[2].payload["hangup_cause"] as? String == "normal_clearing")
                    #expect(events[2].payload["end_time"] is String)
                    let saved = events[3].payload
                    #expect(saved["channels"] as? String == "single")
                    #expect(saved["format"] as? String == "wav")
                    #expect(saved["recording_id"] is String)
                    #expect(saved["to"] as? String == initiated["to"] as? String)
                }

                // Every delivery is on record, with the first recording.saved's time.
                let calls = await sandbox.telnyxCalls()
                #expect(calls.count == 3)
                for call in calls {
                    #expect(call.deliveries.count == 4)
                    #expect(call.deliveries.allSatisfy { $0.status == 200 && $0.attempt == 1 && !$0.duplicate })
                    #expect(call.recordingSentAt == call.deliveries.last?.sentAt)
                }
            }
        }
    }

    @Test func theDocumentedShapeAndNoCallEvents() async throws {
        try await withReceiver { receiver, url in
            try await withTestSandbox(testConfiguration { $0.telnyxWebhook = url }) { client, _ in
                _ = try await client.placeCalls(["recording_id_in_event": false, "call_events": false, "seconds": 2])
                let only = try await receiver.waitFor(1)[0]
                #expect(only.type == "call.recording.saved")
                for absent in ["recording_id", "format", "from", "to", "start_time", "end_time"] {
                    #expect(only.payload[absent] == nil, "\(absent)")
                }
                for present in ["call_leg_id", "call_session_id", "connection_id", "recording_started_at", "recording_ended_at"] {
                    #expect(only.payload[present] is String, "\(present)")
                }
                _ = try await client.placeCalls(["answered": false, "seconds": 2])
                let missed = try await receiver.waitFor(4)
                #expect(missed.dropFirst().map(\.type) == ["call.initiated", "call.hangup", "call.recording.saved"])
                #expect(missed[2].payload["hangup_cause"] as? String == "timeout")
            }
        }
    }

    @Test func reorderedEventsAllArrive() async throws {
        try await withReceiver { receiver, url in
            let configuration = testConfiguration {
                $0.telnyxWebhook = url
                $0.faults.telnyxReorder = true
            }
            try await withTestSandbox(configuration) { client, _ in
                _ = try await client.placeCalls(["count": 5, "seconds": 2, "seed": 11])
                let deliveries = try await receiver.waitFor(20)
                let bySession = Dictionary(grouping: deliveries, by: \.session)
                #expect(bySession.count == 5)
                let inOrder = ["call.initiated", "call.answered", "call.hangup", "call.recording.saved"]
                #expect(bySession.values.allSatisfy { $0.map(\.type).sorted() == inOrder.sorted() })
                #expect(bySession.values.contains { $0.map(\.type) != inOrder }, "seed 11 shuffles some call")
            }
        }
    }

    @Test func duplicatesAreSeeded() async throws {
        func duplicates(seed: Int) async throws -> (count: Int, ids: Set<String>) {
            try await withReceiver { receiver, url in
                let configuration = testConfiguration {
                    $0.telnyxWebhook = url
                    $0.faults.telnyxDuplicate = 0.5
                }
                return try await withTestSandbox(configuration) { client, sandbox in
                    _ = try await client.placeCalls(["count": 4, "seconds": 2, "seed": seed])
                    // Wait for every delivery the sandbox made, then compare with what arrived.
                    let deadline = ContinuousClock.now + .seconds(30)
                    var made = 0
                    repeat {
                        let calls = await sandbox.telnyxCalls()
                        made = calls.reduce(0) { $0 + $1.deliveries.count }
                        let finished = calls.allSatisfy { call in Set(call.deliveries.map(\.eventId)).count == 4 }
                        if finished, await receiver.count == made, made > 0 {
                            try await Task.sleep(for: .milliseconds(50))
                            if await receiver.count == made { break }
                        }
                        try await Task.sleep(for: .milliseconds(20))
                    } while ContinuousClock.now < deadline
                    let received = await receiver.deliveries
                    #expect(Set(received.map(\.id)).count == 16, "every event arrives")
                    let twice = Dictionary(grouping: received, by: \.id).filter { $0.value.count == 2 }
                    let calls = await sandbox.telnyxCalls()
                    #expect(calls.flatMap(\.deliveries).filter(\.duplicate).count == twice.count)
                    return (twice.count, Set(twice.keys))
                }
            }
        }
        let first = try await duplicates(seed: 3)
        let again = try await duplicates(seed: 3)
        #expect(first.count > 0 && first.count < 16)
        #expect(first.count == again.count, "the same seed, the same number of duplicates")
    }

    @Test func aFailedDeliveryIsRetried() async throws {
        try await withReceiver(failFirst: 2) { receiver, url in
            let configuration = testConfiguration {
                $0.telnyxWebhook = url
                $0.telnyxRetryDelay = .milliseconds(5)
            }
            try await withTestSandbox(configuration) { client, sandbox in
                _ = try await client.placeCalls(["call_events": false, "seconds": 2])
                let delivered = try await receiver.waitFor(3)
                #expect(delivered.map(\.attempt) == [1, 2, 3])
                #expect(Set(delivered.map(\.id)).count == 1)
                let deliveries = try #require(await sandbox.telnyxCalls().first?.deliveries)
                #expect(deliveries.map(\.status) == [500, 500, 200])
            }
        }
    }

    @Test func theWebhookTargetCanBeSetLater() async throws {
        try await withReceiver { receiver, url in
            try await withTestSandbox { client, _ in
                let bad = try await client.send(.POST, "/_sandbox/telnyx/webhook", body: Data(#"{"url": "ftp://x"}"#.utf8))
                #expect(bad.status == 400)
                let set = try await client.send(.POST, "/_sandbox/telnyx/webhook", body: try JSONSerialization.data(withJSONObject: ["url": url]))
                #expect(set.status == 200)
                #expect(try set.json["url"] as? String == url)
                _ = try await client.placeCalls(["call_events": false, "seconds": 1])
                #expect(try await receiver.waitFor(1)[0].type == "call.recording.saved")
            }
        }
    }

    // MARK: Keys, load, matching

    @Test func thePublicKeyPersistsAcrossARestart() async throws {
        try await withTemporaryDirectory { directory in
            let configuration = testConfiguration { $0.stateDirectory = directory }
            let first = try await withSandbox(configuration) { _, sandbox in sandbox.telnyxPublicKey }
            let second = try await withSandbox(configuration) { _, sandbox in sandbox.telnyxPublicKey }
            #expect(first == second)
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/telnyx-ed25519.key")
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            let other = try await withSandbox(testConfiguration()) { _, sandbox in sandbox.telnyxPublicKey }
            #expect(other != first)
        }
    }

    @Test func continuousLoadMakesCallsAtItsRate() async throws {
        try await withReceiver { receiver, url in
            let configuration = testConfiguration {
                $0.telnyxWebhook = url
                $0.telnyxLoad = TelnyxLoad(rate: 40, seconds: 1...3, duration: .milliseconds(250))
            }
            try await withTestSandbox(configuration) { _, sandbox in
                let saved = try await receiver.waitFor(10) { $0.type == "call.recording.saved" }
                #expect(Set(saved.map(\.session)).count == 10)
                let calls = await sandbox.telnyxCalls()
                #expect(calls.count == 10, "due at 0, 25, … 225 ms")
                #expect(calls.allSatisfy { (1...3).contains($0.seconds) })
                // Backdated: each call ended a second before its recording was saved.
                #expect(calls.allSatisfy { abs($0.endTime.timeIntervalSinceNow) < 30 })
            }
        }
    }

    @Test func aCallIsMatchedToTheCallLogItsAudioWentTo() async throws {
        try await withTestSandbox { client, sandbox in
            let placed = try await client.placeCalls(["seconds": 5])
            let call = try #require((try placed.json["calls"] as? [[String: Any]])?.first)
            let from = try #require(call["from"] as? String)
            let start = try #require((call["start_time"] as? String).flatMap { try? Date($0, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) })
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "UTC")
            formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
            let log = try await client.newCallLog(["from_phone_number": from, "to_phone_number": "+442071838750",
                                                   "start_time": formatter.string(from: start), "end_time": formatter.string(from: start.addingTimeInterval(9))])
            #expect(await sandbox.telnyxCalls().first?.audioAt == nil)
            #expect(try await client.upload(log, data: try makeMP3(seconds: 2)).status == 200)
            let listed = try await client.send(.GET, "/_sandbox/telnyx/calls")
            let matched = try #require((try listed.json["calls"] as? [[String: Any]])?.first)
            #expect(matched["call_log_id"] as? String == log)
            #expect((matched["audio_at"] as? Int ?? 0) > 0)
        }
    }
}

// MARK: - Helpers

extension SandboxClient {
    /// `POST /_sandbox/telnyx/calls`.
    func placeCalls(_ body: [String: Any]) async throws -> HTTPResult {
        try await send(.POST, "/_sandbox/telnyx/calls", headers: ["Content-Type": "application/json"],
                       body: try JSONSerialization.data(withJSONObject: body))
    }

    /// GET of a full URL (a media link).
    func get(_ url: String) async throws -> HTTPResult {
        let path = try #require(url.range(of: base.absoluteString).map { String(url[$0.upperBound...]) }, "\(url) is not on \(base)")
        return try await send(.GET, path)
    }
}

/// One webhook as the test's receiver got it.
struct ReceivedWebhook: Sendable {
    var body: Data
    var signature: String
    var timestamp: String
    var contentType: String?

    private var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    private var data: [String: Any] { json["data"] as? [String: Any] ?? [:] }
    var id: String { data["id"] as? String ?? "" }
    var type: String { data["event_type"] as? String ?? "" }
    var payload: [String: Any] { data["payload"] as? [String: Any] ?? [:] }
    var session: String { payload["call_session_id"] as? String ?? "" }
    var attempt: Int { (json["meta"] as? [String: Any])?["attempt"] as? Int ?? 0 }
}

/// What the receiver got, in arrival order.
actor WebhookInbox {
    private(set) var deliveries: [ReceivedWebhook] = []
    private var failuresLeft: Int

    init(failFirst: Int) { failuresLeft = failFirst }

    var count: Int { deliveries.count }

    /// Records a delivery; false when it is to be answered 500.
    func take(_ delivery: ReceivedWebhook) -> Bool {
        deliveries.append(delivery)
        guard failuresLeft > 0 else { return true }
        failuresLeft -= 1
        return false
    }

    /// Waits (up to 30 s) until `count` deliveries that pass `filter` have arrived; returns them.
    func waitFor(_ count: Int, _ filter: @Sendable (ReceivedWebhook) -> Bool = { _ in true }) async throws -> [ReceivedWebhook] {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let matching = deliveries.filter(filter)
            if matching.count >= count { return matching }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("only \(deliveries.filter(filter).count) of \(count) webhooks arrived within 30 s")
        throw CancellationError()
    }
}

/// Runs a webhook receiver on a free loopback port for the duration of `body` (its URL ends in
/// `/webhooks/telnyx`); the first `failFirst` deliveries are answered 500.
func withReceiver<T: Sendable>(failFirst: Int = 0, _ body: (WebhookInbox, String) async throws -> T) async throws -> T {
    let inbox = WebhookInbox(failFirst: failFirst)
    let router = Router()
    router.post("/webhooks/telnyx") { request, _ -> Response in
        let bytes = try await request.body.collect(upTo: 1 << 20)
        let delivery = ReceivedWebhook(
            body: Data(bytes.readableBytesView), signature: request.headers[HTTPField.Name("telnyx-signature-ed25519")!] ?? "",
            timestamp: request.headers[HTTPField.Name("telnyx-timestamp")!] ?? "", contentType: request.headers[.contentType])
        return Response(status: await inbox.take(delivery) ? .ok : .internalServerError)
    }
    let port = Mutex<Int?>(nil)
    let logger = Logger(label: "receiver", factory: { _ in SwiftLogNoOpLogHandler() })
    let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                          onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }, logger: logger)
    let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
    return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
        group.addTask { try await services.run() }
        defer { group.cancelAll() }
        let deadline = ContinuousClock.now + .seconds(30)
        while port.withLock({ $0 }) == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let bound = try #require(port.withLock { $0 }, "the receiver did not start")
        let result: T
        do {
            result = try await body(inbox, "http://127.0.0.1:\(bound)/webhooks/telnyx")
        } catch {
            await services.triggerGracefulShutdown()
            throw error
        }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
        return result
    }
}

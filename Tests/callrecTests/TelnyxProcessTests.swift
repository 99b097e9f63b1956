import CallStore
import CallStoreSQLite
import CallTesting
import Crypto
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Telnyx as a source, from the outside (issue 16's Tests): a `callrec sandbox` process is the
/// Telnyx that calls back a `callrec worker --listen` process over loopback, or the test signs
/// webhooks itself; what counts is what the sandbox's Pipedrive holds, what the worker answers,
/// and what its database keeps.
@Suite(.serialized) struct TelnyxProcessTests {
    let callrec = callrecExecutable()

    static let pipedriveToken = ClientEnvironment.pipedriveToken
    static let telnyxKey = ClientEnvironment.telnyxKey
    static let voipnowToken = ClientEnvironment.voipnowToken

    func environment(base: String? = nil) -> [String: String] { ClientEnvironment.make(base: base) }

    // MARK: - Processes

    /// A `callrec worker --listen 127.0.0.1:0` process and its webhook URL (from its log line).
    struct Worker {
        let process: ChildProcess
        let log: String
        /// `http://127.0.0.1:PORT/webhooks/telnyx`
        let url: String

        func logText() -> String { String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self) }
        func stop() { if process.isRunning { process.terminate() } }
    }

    func startWorker(_ dir: String, _ environment: [String: String], publicKey: String, name: String = "worker", _ extra: [String] = []) async throws -> Worker {
        var environment = environment
        environment["TELNYX_PUBLIC_KEY"] = publicKey
        let log = "\(dir)/\(name).log"
        let process = try startProcess(callrec, ["worker", "--listen", "127.0.0.1:0", "--state", "\(dir)/state", "--log-level", "info", "--poll-interval", "0.2"] + extra,
                                       environment: environment, log: log)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            if let range = text.range(of: #"webhooks served at http://127\.0\.0\.1:[0-9]+/webhooks/telnyx"#, options: .regularExpression) {
                return Worker(process: process, log: log, url: String(text[range].dropFirst("webhooks served at ".count)))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning { process.terminate() }
        let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        throw TestAudioError("the worker never said where it serves webhooks (exit \(process.isRunning ? "-" : "\(process.terminationStatus)")): \(text.suffix(2000))")
    }

    /// A sandbox whose Telnyx calls back, and the public key its webhooks are signed with.
    func startSandbox(_ dir: String, faults: String? = nil) async throws -> (SandboxProcess, publicKey: String) {
        let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment(), faults: faults)
        let (status, body) = try await sandbox.request("GET", "/_sandbox/telnyx/public-key")
        guard status == 200, let key = body["public_key"] as? String else {
            sandbox.terminate()
            throw TestAudioError("GET /_sandbox/telnyx/public-key: HTTP \(status) \(body)")
        }
        return (sandbox, key)
    }

    /// Points the sandbox's webhooks at `url`.
    func pointWebhooks(_ sandbox: SandboxProcess, at url: String) async throws {
        let (status, body) = try await sandbox.request("POST", "/_sandbox/telnyx/webhook", json: #"{"url": "\#(url)"}"#)
        guard status == 200 else { throw TestAudioError("POST /_sandbox/telnyx/webhook: HTTP \(status) \(body)") }
    }

    /// `POST /_sandbox/telnyx/calls`: the calls the sandbox simulates (their webhooks go out).
    func placeCalls(_ sandbox: SandboxProcess, _ order: String) async throws -> [[String: Any]] {
        let (status, body) = try await sandbox.request("POST", "/_sandbox/telnyx/calls", json: order)
        guard status == 201, let calls = body["calls"] as? [[String: Any]] else {
            throw TestAudioError("POST /_sandbox/telnyx/calls \(order): HTTP \(status) \(body)")
        }
        return calls
    }

    /// `GET /_sandbox/telnyx/calls`: every call with its deliveries and `audio_at`.
    func telnyxCalls(_ sandbox: SandboxProcess) async throws -> [[String: Any]] {
        try await sandbox.request("GET", "/_sandbox/telnyx/calls").1["calls"] as? [[String: Any]] ?? []
    }

    /// The call logs (not deleted) in the sandbox's Pipedrive.
    func callLogs(_ state: [String: Any]) -> [[String: Any]] {
        (state["call_logs"] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }
    }

    func routeCount(_ state: [String: Any], _ route: String) -> Int {
        ((state["counters"] as? [String: Any])?["requests_per_route"] as? [String: Any])?[route] as? Int ?? 0
    }

    /// Waits, for at most `timeout`, until `condition` holds (an observable event: sandbox state,
    /// the queue); whether it did.
    func waitUntil(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    /// `callrec status --json` of the test's state.
    func status(_ dir: String) async throws -> [String: Any] {
        let result = try await runProcess(callrec, ["status", "--json", "--state", "\(dir)/state"], environment: environment())
        return try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.stderr)")
    }

    /// No job due, snoozed or running: the worker has done all it will do.
    func queueIdle(_ dir: String) async throws -> Bool {
        let jobs = try await status(dir)["jobs"] as? [String: Int] ?? [:]
        return jobs["available"] == 0 && jobs["running"] == 0
    }

    /// Every delivery the sandbox started has been answered (or failed for good).
    func deliveriesSettled(_ calls: [[String: Any]]) -> Bool {
        calls.allSatisfy { call in (call["deliveries"] as? [[String: Any]] ?? []).allSatisfy { $0["status"] is Int || $0["error"] is String } }
    }

    static func date(_ text: String?) -> Date? {
        guard let text else { return nil }
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return date }
        if let date = try? Date.ISO8601FormatStyle().parse(text) { return date }
        // A call log's `YYYY-MM-DD HH:MM:SS` (UTC).
        return try? Date.ISO8601FormatStyle().parse(text.replacingOccurrences(of: " ", with: "T") + "Z")
    }

    /// The one call log of a simulated call: found by its numbers, which the sandbox makes
    /// unique per call (inbound: from the caller to the company number; outbound: the reverse,
    /// so in both directions the call log's from/to are the call's).
    func expectOneCallLog(for call: [String: Any], in logs: [[String: Any]], outcome: String = "connected",
                          sourceLocation: SourceLocation = #_sourceLocation) -> [String: Any]? {
        let matches = logs.filter { $0["from_phone_number"] as? String == call["from"] as? String && $0["to_phone_number"] as? String == call["to"] as? String }
        #expect(matches.count == 1, "call \(call["call_session_id"] ?? "?") (\(call["direction"] ?? "?") \(call["from"] ?? "?") → \(call["to"] ?? "?")): \(matches.count) call logs",
                sourceLocation: sourceLocation)
        guard let log = matches.first else { return nil }
        #expect(log["outcome"] as? String == outcome, "\(log)", sourceLocation: sourceLocation)
        #expect(log["recording"] is [String: Any], "call log \(log["id"] ?? "?") has no audio", sourceLocation: sourceLocation)
        if let start = Self.date(call["start_time"] as? String), let logged = Self.date(log["start_time"] as? String) {
            #expect(abs(start.timeIntervalSince(logged)) <= 1, "start \(call["start_time"] ?? "?") logged as \(log["start_time"] ?? "?")", sourceLocation: sourceLocation)
        } else {
            Issue.record("no start time to compare: call \(call["start_time"] ?? "nil"), call log \(log["start_time"] ?? "nil")", sourceLocation: sourceLocation)
        }
        return log
    }

    // MARK: - a. duplicates and reordering

    /// 20 calls (both directions, answered, busy, unanswered, rejected) whose webhooks come twice
    /// (half of the second ones at once), shuffled and delayed, from a seed the test prints:
    /// exactly one call log per recording, each with its audio, the call's numbers (so its
    /// direction), start and outcome. The worker logs missed calls too (`telnyx.log` in its config).
    @Test(.timeLimit(.minutes(6)))
    func duplicatesAndReorderingGiveExactlyOneCallLogPerRecording() async throws {
        var random = TestSeed("duplicatesAndReorderingGiveExactlyOneCallLogPerRecording")
        let seed = random.next() % 1_000_000_000
        try await withTemporaryDirectory { dir in
            let (sandbox, publicKey) = try await startSandbox(dir, faults: "telnyx_duplicate=0.5,telnyx_reorder=1,telnyx_delay=0.5,telnyx_seed=\(seed)")
            defer { sandbox.terminate() }
            _ = FileManager.default.createFile(atPath: "\(dir)/callrec.json", contents: Data(#"{ "telnyx": { "log": ["missed"] } }"#.utf8))
            let worker = try await startWorker(dir, environment(base: sandbox.base), publicKey: publicKey, ["--config", "\(dir)/callrec.json"])
            defer { worker.stop() }
            try await pointWebhooks(sandbox, at: worker.url)
            // (order, the outcome its call logs get: answered → connected, user_busy → busy,
            // timeout → no_answer, anything else → the documented default, no_answer)
            let orders = [
                (#""count": 8, "direction": "incoming""#, "connected"),
                (#""count": 7, "direction": "outgoing""#, "connected"),
                (#""count": 2, "direction": "incoming", "answered": false, "hangup_cause": "user_busy""#, "busy"),
                (#""count": 2, "direction": "outgoing", "answered": false, "hangup_cause": "timeout""#, "no_answer"),
                (#""count": 1, "direction": "incoming", "answered": false, "hangup_cause": "call_rejected""#, "no_answer"),
            ]
            var calls: [(call: [String: Any], outcome: String)] = []
            for (n, (order, outcome)) in orders.enumerated() {
                let placed = try await placeCalls(sandbox, #"{\#(order), "seconds": [5, 20], "format": "wav", "seed": \#(seed + UInt64(n))}"#)
                calls += placed.map { ($0, outcome) }
            }
            #expect(calls.count == 20)

            let arrived = try await waitUntil(timeout: .seconds(240)) {
                callLogs(try await sandbox.state()).filter { $0["recording"] is [String: Any] }.count >= calls.count
            }
            #expect(arrived, "not every call got its audio: \(worker.logText().suffix(3000))")
            // Then nothing more is on its way: every delivery answered, no job left to run.
            let settled = try await waitUntil(timeout: .seconds(60)) {
                guard deliveriesSettled(try await telnyxCalls(sandbox)) else { return false }
                return try await queueIdle(dir)
            }
            #expect(settled, "deliveries or jobs still pending")

            let simulated = try await telnyxCalls(sandbox)
            let deliveries = simulated.flatMap { $0["deliveries"] as? [[String: Any]] ?? [] }
            #expect(deliveries.contains { $0["duplicate"] as? Bool == true }, "the seed \(seed) delivered nothing twice: the test tested nothing")
            #expect(deliveries.allSatisfy { $0["status"] as? Int == 200 }, "\(deliveries.filter { $0["status"] as? Int != 200 }.prefix(5))")
            let logs = callLogs(try await sandbox.state())
            #expect(logs.count == calls.count, "\(logs.count) call logs for \(calls.count) calls")
            for (call, outcome) in calls { _ = expectOneCallLog(for: call, in: logs, outcome: outcome) }
            // Every recording once in the ledger, each uploaded.
            let recordings = try await status(dir)["recordings"] as? [String: Int] ?? [:]
            #expect(recordings.values.reduce(0, +) == calls.count, "\(recordings)")
            #expect(recordings["uploaded"] == calls.count, "\(recordings)")
        }
    }

    // MARK: - b. bad, missing and stale signatures

    /// A body as Telnyx sends it: `{"data": {...}, "meta": {...}}`.
    static func eventBody(type: String, id: String, session: String, leg: String, from: String = "+442079460123", to: String = "+442079460999",
                          now: Date = Date()) -> String {
        let time = now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        var payload = #""call_control_id": "v3:\#(leg)", "call_leg_id": "\#(leg)", "call_session_id": "\#(session)", "connection_id": "1494404757140276705", "from": "\#(from)", "to": "\#(to)", "start_time": "\#(time)""#
        switch type {
        case "call.initiated": payload += #", "direction": "incoming", "state": "parked""#
        case "call.hangup": payload += #", "hangup_cause": "normal_clearing", "hangup_source": "caller", "end_time": "\#(time)""#
        case "call.recording.saved":
            payload += #", "channels": "single", "recording_id": "\#(id)-rec", "recording_started_at": "\#(time)", "recording_ended_at": "\#(time)", "#
                + #""recording_urls": {"mp3": "http://127.0.0.1:9/\#(id).mp3"}, "public_recording_urls": {}"#
        default: break
        }
        return #"{"data": {"record_type": "event", "event_type": "\#(type)", "id": "\#(id)", "occurred_at": "\#(time)", "payload": {\#(payload)}}, "meta": {"attempt": 1}}"#
    }

    /// The headers Telnyx signs a body with: Ed25519 over `"{timestamp}|{body}"`.
    static func signed(_ body: String, key: Curve25519.Signing.PrivateKey, timestamp: Int = Int(Date().timeIntervalSince1970)) throws -> [String: String] {
        let signature = try key.signature(for: Data("\(timestamp)|\(body)".utf8))
        return ["telnyx-signature-ed25519": signature.base64EncodedString(), "telnyx-timestamp": String(timestamp)]
    }

    /// One POST of `body`: the status, the answer, how long it took.
    static func post(_ url: String, _ body: String, headers: [String: String], session: URLSession = .shared) async throws -> (Int, String, Duration) {
        var request = URLRequest(url: URL(string: url)!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = Data(body.utf8)
        let clock = ContinuousClock(), start = clock.now
        let (data, response) = try await session.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self), clock.now - start)
    }

    /// The events the worker's database holds, by id (read with the store, beside the worker).
    func storedEvents(_ dir: String, _ ids: [String]) async throws -> Set<String> {
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
        var found: Set<String> = []
        for id in ids where try await store.telnyxEvent(id: id) != nil { found.insert(id) }
        try await store.close()
        return found
    }

    /// Bad, missing and stale signatures from the test's own signer: 401, 401, 403, and nothing
    /// stored (no event, no recording, no job); the same events signed right are then stored.
    @Test(.timeLimit(.minutes(3)))
    func badMissingAndStaleSignaturesStoreNothing() async throws {
        try await withTemporaryDirectory { dir in
            let key = Curve25519.Signing.PrivateKey(), stranger = Curve25519.Signing.PrivateKey()
            let worker = try await startWorker(dir, environment(), publicKey: key.publicKey.rawRepresentation.base64EncodedString(), ["--fetch-slots", "0"])
            defer { worker.stop() }
            let session = UUID().uuidString.lowercased(), leg = UUID().uuidString.lowercased()
            let bodies = ["call.initiated", "call.hangup", "call.recording.saved"].map { type in
                (id: UUID().uuidString.lowercased(), type: type)
            }.map { ($0.id, Self.eventBody(type: $0.type, id: $0.id, session: session, leg: leg)) }
            for (id, body) in bodies {
                // 330 s, not 301: the worker's clock reads later than this one (a loaded machine
                // takes seconds between the signing and the check). WebhookVerifierTests hold
                // the exact boundary with an injected time.
                let now = Int(Date().timeIntervalSince1970)
                var cases: [(String, [String: String], Int)] = []
                cases.append(("signed by another key", try Self.signed(body, key: stranger), 401))
                var garbage = try Self.signed(body, key: key)
                garbage["telnyx-signature-ed25519"] = "bm90IGEgc2lnbmF0dXJl"
                cases.append(("a signature that is not 64 bytes", garbage, 401))
                cases.append(("a signature over another body", try Self.signed(body.replacingOccurrences(of: id, with: id + "x"), key: key), 401))
                var missing = try Self.signed(body, key: key)
                missing["telnyx-signature-ed25519"] = nil
                cases.append(("no signature", missing, 401))
                cases.append(("no headers", [:], 401))
                cases.append(("stale by 330 s", try Self.signed(body, key: key, timestamp: now - 330), 403))
                cases.append(("330 s in the future", try Self.signed(body, key: key, timestamp: now + 330), 403))
                var another = try Self.signed(body, key: key)
                another["telnyx-timestamp"] = String(now - 1)
                cases.append(("signed for another timestamp", another, 401))
                for (name, headers, expected) in cases {
                    let (status, answer, _) = try await Self.post(worker.url, body, headers: headers)
                    #expect(status == expected, "\(name): HTTP \(status) \(answer)")
                    #expect(!answer.contains("stored\":true"), "\(name): \(answer)")
                }
            }
            #expect(try await storedEvents(dir, bodies.map(\.0)).isEmpty, "a refused event was stored")
            var doc = try await status(dir)
            #expect((doc["recordings"] as? [String: Int] ?? [:]).values.reduce(0, +) == 0, "\(doc)")
            #expect((doc["jobs"] as? [String: Int] ?? [:]).values.reduce(0, +) == 0, "\(doc)")
            let list = try await runProcess(callrec, ["queue", "ls", "--json", "--state", "\(dir)/state"], environment: environment())
            #expect((try JSONSerialization.jsonObject(with: list.stdout) as? [Any])?.isEmpty == true, "\(String(decoding: list.stdout, as: UTF8.self))")
            #expect(!worker.logText().contains(bodies[0].1), "the worker logged a refused body")

            // The control: the same events signed right are stored (so the checks above can fail).
            for (_, body) in bodies {
                let (status, answer, _) = try await Self.post(worker.url, body, headers: try Self.signed(body, key: key))
                #expect(status == 200 && answer.contains(#""stored":true"#), "HTTP \(status) \(answer)")
            }
            #expect(try await storedEvents(dir, bodies.map(\.0)) == Set(bodies.map(\.0)))
            doc = try await status(dir)
            #expect((doc["recordings"] as? [String: Int] ?? [:]).values.reduce(0, +) == 1, "\(doc)")
        }
    }

    // MARK: - the endpoint's other answers, its configuration, its shutdown

    /// `--listen` without a key: health and metrics only, said at start. With a key that is not
    /// one, or at an address that is not one: exit 2 naming the variable or the flag, before
    /// anything listens. A running endpoint: a
    /// body over the limit 413, a verified body that is not an event 400 naming the field, both
    /// storing nothing; `/healthz` 200, `/metrics` counts the answers; SIGTERM stops it (exit 0).
    @Test(.timeLimit(.minutes(3)))
    func theEndpointRefusesWhatItCannotTakeAndStopsCleanly() async throws {
        try await withTemporaryDirectory { dir in
            let state = ["--state", "\(dir)/state"]
            let noKey = try await runProcess(callrec, ["worker", "--listen", "127.0.0.1:0", "--until-idle"] + state, environment: environment())
            #expect(noKey.status == 0 && noKey.stderr.contains("TELNYX_PUBLIC_KEY is not set: --listen serves /healthz and /metrics"),
                    "\(noKey.status) \(noKey.stderr)")
            var badKey = environment()
            badKey["TELNYX_PUBLIC_KEY"] = "bm90IGEga2V5"
            let bad = try await runProcess(callrec, ["worker", "--listen", "127.0.0.1:0", "--until-idle"] + state, environment: badKey)
            #expect(bad.status == 2 && bad.stderr.contains("TELNYX_PUBLIC_KEY"), "\(bad.status) \(bad.stderr)")
            let key = Curve25519.Signing.PrivateKey()
            var good = environment()
            good["TELNYX_PUBLIC_KEY"] = key.publicKey.rawRepresentation.base64EncodedString()
            let address = try await runProcess(callrec, ["worker", "--listen", "127.0.0.1:http", "--until-idle"] + state, environment: good)
            #expect(address.status == 2 && address.stderr.contains("--listen"), "\(address.status) \(address.stderr)")

            let worker = try await startWorker(dir, environment(), publicKey: key.publicKey.rawRepresentation.base64EncodedString(), ["--fetch-slots", "0"])
            defer { worker.stop() }
            let origin = String(worker.url.dropLast("/webhooks/telnyx".count))
            let id = UUID().uuidString.lowercased()
            // 300 KiB of padding in a field nobody reads: over the default 256 KiB limit.
            let large = Self.eventBody(type: "call.initiated", id: id, session: id, leg: id)
                .replacingOccurrences(of: #""meta": {"#, with: #""meta": {"padding": "\#(String(repeating: "x", count: 300 * 1024))", "#)
            let (tooLarge, tooLargeAnswer, _) = try await Self.post(worker.url, large, headers: try Self.signed(large, key: key))
            #expect(tooLarge == 413, "\(tooLarge) \(tooLargeAnswer.prefix(300))")
            let notAnEvent = #"{"data": {"record_type": "event", "event_type": "call.initiated", "payload": {}}, "meta": {}}"#
            let (malformed, malformedAnswer, _) = try await Self.post(worker.url, notAnEvent, headers: try Self.signed(notAnEvent, key: key))
            #expect(malformed == 400 && malformedAnswer.contains("data.id"), "\(malformed) \(malformedAnswer)")
            #expect(try await storedEvents(dir, [id]).isEmpty)
            let jobs = try await status(dir)["jobs"] as? [String: Int] ?? [:]
            #expect(jobs.values.reduce(0, +) == 0, "\(jobs)")

            let (health, healthBody) = try await waitForHealthy(origin + "/healthz")
            #expect(health == 200, "\(healthBody)")
            let (metrics, _) = try await URLSession.shared.data(from: URL(string: origin + "/metrics")!)
            let text = String(decoding: metrics, as: UTF8.self)
            #expect(text.contains("callrec_webhook_requests_total"), "\(text.prefix(2000))")

            kill(worker.process.processIdentifier, SIGTERM)
            #expect(try await waitForExit(worker.process, upTo: 30), "the worker did not stop on SIGTERM")
            #expect(worker.process.terminationStatus == 0, "\(worker.logText().suffix(2000))")
        }
    }

    // MARK: - c. an expired link

    /// The webhook's links expired at once (link_ttl 0): the worker gets fresh ones from
    /// `GET /v2/recordings` and every call still gets its audio.
    @Test(.timeLimit(.minutes(4)))
    func anExpiredLinkIsRenewedFromTheListing() async throws {
        try await withTemporaryDirectory { dir in
            let (sandbox, publicKey) = try await startSandbox(dir)
            defer { sandbox.terminate() }
            let worker = try await startWorker(dir, environment(base: sandbox.base), publicKey: publicKey)
            defer { worker.stop() }
            try await pointWebhooks(sandbox, at: worker.url)
            let calls = try await placeCalls(sandbox, #"{"count": 2, "seconds": 8, "format": "wav", "link_ttl": 0}"#)
            let arrived = try await waitUntil(timeout: .seconds(120)) {
                callLogs(try await sandbox.state()).filter { $0["recording"] is [String: Any] }.count >= calls.count
            }
            #expect(arrived, "\(worker.logText().suffix(3000))")
            let state = try await sandbox.state()
            for call in calls { _ = expectOneCallLog(for: call, in: callLogs(state)) }
            #expect(routeCount(state, "GET /v2/recordings") >= 1, "the listing was never asked: \(state["counters"] ?? "")")
        }
    }

    // MARK: - d. the recording id from the listing; delete reaches Telnyx

    /// The recording event lacks `recording_id`: the worker learns it from the listing, so
    /// `callrec delete` of the call log removes the Telnyx recording too.
    @Test(.timeLimit(.minutes(4)))
    func theRecordingIDIsLearntFromTheListingAndDeleteRemovesTheTelnyxRecording() async throws {
        try await withTemporaryDirectory { dir in
            let (sandbox, publicKey) = try await startSandbox(dir)
            defer { sandbox.terminate() }
            let env = environment(base: sandbox.base)
            let worker = try await startWorker(dir, env, publicKey: publicKey)
            defer { worker.stop() }
            try await pointWebhooks(sandbox, at: worker.url)
            let calls = try await placeCalls(sandbox, #"{"count": 1, "seconds": 8, "format": "wav", "recording_id_in_event": false}"#)
            let call = try #require(calls.first)
            let recordingID = try #require(call["recording_id"] as? String)
            let arrived = try await waitUntil(timeout: .seconds(120)) {
                callLogs(try await sandbox.state()).contains { $0["recording"] is [String: Any] }
            }
            #expect(arrived, "\(worker.logText().suffix(3000))")
            let log = try #require(expectOneCallLog(for: call, in: callLogs(try await sandbox.state())))
            let callLogID = try #require(log["id"] as? String)
            #expect(liveIDs("telnyx_recordings", try await sandbox.state()).contains(recordingID))
            let idle = try await waitUntil(timeout: .seconds(30)) { try await queueIdle(dir) }
            #expect(idle, "jobs still pending after the upload")
            worker.stop()
            _ = try await waitForExit(worker.process, upTo: 30)

            let delete = try await runProcess(callrec, ["delete", "--call-log", callLogID, "--state", "\(dir)/state", "--json"], environment: env)
            #expect(delete.status == 0, "\(delete.stderr)")
            let doc = try #require(try JSONSerialization.jsonObject(with: delete.stdout) as? [String: Any], "\(delete.stderr)")
            let steps = (doc["deletion"] as? [String: Any])?["steps"] as? [[String: Any]] ?? []
            #expect(steps.contains { $0["target"] as? String == "telnyx:\(recordingID)" && $0["state"] as? String == "done" }, "\(steps)")
            let state = try await sandbox.state()
            #expect(!liveIDs("telnyx_recordings", state).contains(recordingID), "the Telnyx recording is still there")
            #expect(!liveIDs("call_logs", state).contains(callLogID))
        }
    }

    // MARK: - e. kill -9 between the answer and the job

    /// The worker answered every webhook 200 and ran no job (no fetch, transcode or upload
    /// slots), then died by `kill -9`: a fresh worker uploads every recording, once.
    @Test(.timeLimit(.minutes(5)))
    func killNineBetweenTheAnswerAndTheJobLosesNothing() async throws {
        try await withTemporaryDirectory { dir in
            let (sandbox, publicKey) = try await startSandbox(dir)
            defer { sandbox.terminate() }
            var env = environment(base: sandbox.base)
            let victim = try await startWorker(dir, env, publicKey: publicKey, name: "victim", ["--fetch-slots", "0", "--concurrency", "0", "--upload-slots", "0"])
            defer { victim.stop() }
            try await pointWebhooks(sandbox, at: victim.url)
            let calls = try await placeCalls(sandbox, #"{"count": 5, "seconds": 6, "format": "wav"}"#)
            // Every event of every call answered 200 (the call's four: initiated, answered, hangup, recording.saved).
            let answered = try await waitUntil(timeout: .seconds(60)) {
                try await telnyxCalls(sandbox).allSatisfy { call in
                    let ok = Set((call["deliveries"] as? [[String: Any]] ?? []).filter { $0["status"] as? Int == 200 }.compactMap { $0["event_type"] as? String })
                    return ok.isSuperset(of: ["call.initiated", "call.answered", "call.hangup", "call.recording.saved"])
                }
            }
            #expect(answered, "not every webhook was answered 200: \(victim.logText().suffix(3000))")
            kill(victim.process.processIdentifier, SIGKILL)
            #expect(try await waitForExit(victim.process, upTo: 10))
            #expect(callLogs(try await sandbox.state()).isEmpty, "the victim ran jobs: it had no slots for them")
            #expect((try await status(dir)["recordings"] as? [String: Int] ?? [:])["pending"] == calls.count)

            // A fresh worker (no --listen: it only runs the queue) finishes everything.
            env["TELNYX_PUBLIC_KEY"] = publicKey
            let fresh = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--log-level", "warning", "--rescue-interval", "0.5", "--lease-ttl", "2"],
                                             environment: env)
            #expect(fresh.status == 0, "\(fresh.stderr.suffix(3000))")
            let logs = callLogs(try await sandbox.state())
            #expect(logs.count == calls.count, "\(logs.count) call logs for \(calls.count) calls")
            for call in calls { _ = expectOneCallLog(for: call, in: logs) }
        }
    }

    // MARK: - f. 200 concurrent deliveries

    /// 200 distinct signed events at once (50 calls × 4): every one answered 200 and stored, none
    /// slower than a generous bound (the answer within 1 s is a goal bench/webhooks.sh measures).
    @Test(.timeLimit(.minutes(3)))
    func twoHundredConcurrentDeliveriesAreAllAnsweredAndStored() async throws {
        try await withTemporaryDirectory { dir in
            let key = Curve25519.Signing.PrivateKey()
            let worker = try await startWorker(dir, environment(), publicKey: key.publicKey.rawRepresentation.base64EncodedString(), ["--fetch-slots", "0"])
            defer { worker.stop() }
            var events: [(id: String, body: String)] = []
            for call in 0..<50 {
                let session = UUID().uuidString.lowercased(), leg = UUID().uuidString.lowercased()
                for type in ["call.initiated", "call.answered", "call.hangup", "call.recording.saved"] {
                    let id = UUID().uuidString.lowercased()
                    events.append((id, Self.eventBody(type: type, id: id, session: session, leg: leg, from: "+4420794\(String(format: "%05d", call))")))
                }
            }
            // One warm-up request (the first connection, the first commit), not counted.
            let warm = UUID().uuidString.lowercased(), warmBody = Self.eventBody(type: "call.initiated", id: warm, session: warm, leg: warm)
            #expect(try await Self.post(worker.url, warmBody, headers: try Self.signed(warmBody, key: key)).0 == 200)

            let configuration = URLSessionConfiguration.ephemeral
            configuration.httpMaximumConnectionsPerHost = 200
            configuration.timeoutIntervalForRequest = 30
            let session = URLSession(configuration: configuration)
            let signed = try events.map { ($0.body, try Self.signed($0.body, key: key)) }
            let url = worker.url
            let answers = try await withThrowingTaskGroup(of: (Int, String, Duration).self, returning: [(Int, String, Duration)].self) { group in
                for (body, headers) in signed { group.addTask { try await Self.post(url, body, headers: headers, session: session) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 200)
            #expect(answers.allSatisfy { $0.0 == 200 }, "\(answers.filter { $0.0 != 200 }.prefix(5).map { "\($0.0) \($0.1)" })")
            // A correctness bound only (a loaded CI machine is slow): the 1 s answer is a
            // performance goal, measured by bench/webhooks.sh.
            let slowest = answers.map(\.2).max() ?? .zero
            print("200 concurrent deliveries: the slowest answer took \(slowest)")
            #expect(slowest < .seconds(15), "the slowest answer took \(slowest)")
            #expect(try await storedEvents(dir, events.map(\.id)).count == events.count)
        }
    }
}

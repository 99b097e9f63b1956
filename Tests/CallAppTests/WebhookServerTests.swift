import AsyncHTTPClient
import CallPipeline
import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallTelnyx
import CallTesting
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import CallApp

/// The webhook endpoint over real HTTP on loopback (AsyncHTTPClient → Hummingbird), with a real
/// store (SQLite, and PostgreSQL when available) and a test's own Ed25519 signer: what is
/// verified is stored once before its 200, what is not verified (or too big, or not an event)
/// stores nothing.
@Suite struct WebhookServerTests {
    /// A Telnyx account's signing key, as the test's own signer holds it.
    struct Signer {
        let key = Curve25519.Signing.PrivateKey()
        var publicKey: String { key.publicKey.rawRepresentation.base64EncodedString() }

        func headers(_ body: String, at date: Date = Date()) -> [(String, String)] {
            let timestamp = String(Int(date.timeIntervalSince1970))
            return [("telnyx-timestamp", timestamp), ("telnyx-signature-ed25519", signature(body, timestamp: timestamp))]
        }

        func signature(_ body: String, timestamp: String) -> String {
            try! key.signature(for: Array("\(timestamp)|\(body)".utf8)).base64EncodedString()
        }
    }

    struct Fixture {
        let store: any CallStore
        let signer: Signer
        let http: HTTPClient
        let base: String
        let lines: Locked<[String]>

        /// POSTs `body` to the webhook path with `headers` (signed now when nil).
        func post(_ body: String, headers: [(String, String)]? = nil, path: String = WebhookServer.webhookPath) async throws -> (Int, String) {
            var request = HTTPClientRequest(url: base + path)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            for (name, value) in headers ?? signer.headers(body) { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(string: body))
            return try await send(request)
        }

        func get(_ path: String) async throws -> (Int, String) {
            try await send(HTTPClientRequest(url: base + path))
        }

        func send(_ request: HTTPClientRequest) async throws -> (Int, String) {
            let response = try await http.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 4 << 20)
            return (Int(response.status.code), String(buffer: body))
        }

        func fetchJobs() async throws -> [Job] {
            try await store.jobs(JobQuery(queue: "fetch", limit: 1000))
        }

        /// Nothing at all in the ledger: no event, no recording, no job.
        func expectNothingStored(_ sessions: [String], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            #expect(try await store.telnyxEvents(sessions: sessions).isEmpty, comment, sourceLocation: sourceLocation)
            #expect(try await store.recordings(RecordingQuery(limit: 10)).isEmpty, comment, sourceLocation: sourceLocation)
            #expect(try await store.jobs(JobQuery(limit: 10)).isEmpty, comment, sourceLocation: sourceLocation)
        }
    }

    /// The server on 127.0.0.1:0 over each backend; stopped (cancelled) after `body`.
    func withServer(bodyLimit: Int = 256 * 1024, postgres: Bool = true, _ body: (Fixture) async throws -> Void) async throws {
        var backends = ["sqlite"]
        if postgres, TestPostgres.available { backends.append(try #require(try TestPostgres.freshDatabase(prefix: "webhooks"))) }
        for backend in backends {
            try await withTemporaryDirectory { dir in
                try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
                let store: any CallStore = backend == "sqlite" ? try SQLiteStore(path: "\(dir)/state/callrec.sqlite") : try PostgresStore(url: backend)
                try await store.migrate()
                let lines = Locked<[String]>([])
                let logger = Logger(label: "test") { _ in CaptureHandler(lines: lines) }
                let signer = Signer()
                var settings = TelnyxSettings(publicKey: signer.publicKey)
                settings.bodyLimit = bodyLimit
                let intake = TelnyxIntake(store: store, settings: settings, spool: Spool(root: "\(dir)/state/spool"), logger: logger)
                let ports = AsyncStream<Int>.makeStream()
                let server = WebhookServer(intake: intake, verifier: try WebhookVerifier(publicKey: signer.publicKey), address: ListenAddress(host: "127.0.0.1", port: 0),
                                           // /healthz's second is for a load balancer; on a loaded CI machine a
                                           // healthy store's read took longer (the answer was 503).
                                           logger: logger, healthTimeout: .seconds(120), onRunning: { ports.continuation.yield($0) })
                var configuration = HTTPClient.Configuration()
                configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
                // A request waits for a pooled connection at most this long (AHC: the connect
                // timeout, 10 s by default): 300 at once on a loaded two-core machine waited longer.
                configuration.timeout.connect = .seconds(120)
                let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                try await withRunningStore(store) { store in
                    let running = Task { try await server.run() }
                    do {
                        var iterator = ports.stream.makeAsyncIterator()
                        let port = try #require(await iterator.next())
                        try await body(Fixture(store: store, signer: signer, http: http, base: "http://127.0.0.1:\(port)", lines: lines))
                    } catch {
                        running.cancel()
                        try? await http.shutdown()
                        throw error
                    }
                    running.cancel()
                    _ = try? await running.value
                    try await http.shutdown()
                }
            }
        }
    }

    @Test func aSignedWebhookIsStoredBeforeItsAnswer() async throws {
        try await withServer { fixture in
            let call = TelnyxWebhooks()
            let body = call.recordingSaved(id: "saved-1", recordingID: "rec-1")
            let (status, answer) = try await fixture.post(body)
            #expect(status == 200)
            #expect(answer == #"{"stored":true}"#)
            // Committed before the answer: no waiting here.
            #expect(try await fixture.store.telnyxEvent(id: "saved-1")?.callSessionID == call.session)
            #expect(try await fixture.store.recordings(RecordingQuery(limit: 10)).count == 1)
            #expect(try await fixture.fetchJobs().count == 1)
            // Delivered again: 200, nothing more.
            #expect(try await fixture.post(body).0 == 200)
            #expect(try await fixture.fetchJobs().count == 1)
        }
    }

    @Test func theSameEventFiveTimesAtOnceIsStoredOnce() async throws {
        try await withServer { fixture in
            let call = TelnyxWebhooks()
            let body = call.recordingSaved(id: "saved-1")
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<5 { group.addTask { try await fixture.post(body).0 } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses == [200, 200, 200, 200, 200])
            #expect(try await fixture.store.telnyxEvents(sessions: [call.session]).count == 1)
            #expect(try await fixture.store.recordings(RecordingQuery(limit: 10)).count == 1)
            #expect(try await fixture.fetchJobs().count == 1)
        }
    }

    @Test func aBadMissingOrStaleSignatureStoresNothing() async throws {
        try await withServer { fixture in
            let call = TelnyxWebhooks()
            let body = call.recordingSaved()
            let now = String(Int(Date().timeIntervalSince1970)), stale = String(Int(Date().timeIntervalSince1970) - 301)
            let other = Signer()
            let cases: [(String, [(String, String)], Int, String)] = [
                ("no headers", [], 401, "missing_signature"),
                ("no signature", [("telnyx-timestamp", now)], 401, "missing_signature"),
                ("another key", [("telnyx-timestamp", now), ("telnyx-signature-ed25519", other.signature(body, timestamp: now))], 401, "bad_signature"),
                ("not base64", [("telnyx-timestamp", now), ("telnyx-signature-ed25519", "!!!")], 401, "bad_signature"),
                ("another body", [("telnyx-timestamp", now), ("telnyx-signature-ed25519", fixture.signer.signature(body + " ", timestamp: now))], 401, "bad_signature"),
                ("stale", [("telnyx-timestamp", stale), ("telnyx-signature-ed25519", fixture.signer.signature(body, timestamp: stale))], 403, "stale_timestamp"),
            ]
            for (name, headers, expected, code) in cases {
                let (status, answer) = try await fixture.post(body, headers: headers)
                #expect(status == expected, "\(name): \(answer)")
                #expect(answer.contains(code), "\(name): \(answer)")
            }
            try await fixture.expectNothingStored([call.session])
            // Logged with the code and the peer, never the body.
            let warnings = fixture.lines.withLock { $0 }.filter { $0.hasPrefix("warning") && $0.contains("webhook refused") }
            #expect(warnings.count == cases.count)
            #expect(warnings.allSatisfy { $0.contains("127.0.0.1") && !$0.contains(call.session) }, "\(warnings)")
        }
    }

    @Test func aBodyOverTheLimitIsRefusedBeforeItIsReadAndStoresNothing() async throws {
        try await withServer(bodyLimit: 2048) { fixture in
            let call = TelnyxWebhooks()
            var big = call.recordingSaved()
            big.insert(contentsOf: "\"padding\": \"\(String(repeating: "x", count: 8192))\", ", at: big.index(after: big.startIndex))
            // Declared length over the limit.
            let (declared, answer) = try await fixture.post(big)
            #expect(declared == 413, "\(answer)")
            // Chunked, no length: counted while it streams.
            var request = HTTPClientRequest(url: fixture.base + WebhookServer.webhookPath)
            request.method = .POST
            for (name, value) in fixture.signer.headers(big) { request.headers.add(name: name, value: value) }
            let chunks = Array(big.utf8).chunks(ofCount: 1024).map { ByteBuffer(bytes: $0) }
            let stream = AsyncStream<ByteBuffer> { continuation in
                for chunk in chunks { continuation.yield(chunk) }
                continuation.finish()
            }
            request.body = .stream(stream, length: .unknown)
            let (streamed, _) = try await fixture.send(request)
            #expect(streamed == 413)
            try await fixture.expectNothingStored([call.session])
            // A body within the limit still goes in.
            #expect(try await fixture.post(call.hangup()).0 == 200)
        }
    }

    @Test func aVerifiedBodyThatIsNotAnEventIsA400NamingTheField() async throws {
        try await withServer(postgres: false) { fixture in
            let body = #"{"data": {"event_type": "call.hangup", "payload": {"call_session_id": "s-1"}}}"#
            let (status, answer) = try await fixture.post(body)
            #expect(status == 400)
            #expect(answer.contains("data.id"), "\(answer)")
            try await fixture.expectNothingStored(["s-1"])
        }
    }

    @Test func manyEventsAtOnceAreAllStoredInFewerCommits() async throws {
        try await withServer { fixture in
            let calls = (0..<100).map { _ in TelnyxWebhooks() }
            let bodies = calls.flatMap { [$0.initiated(), $0.recordingSaved(), $0.hangup()] }
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for body in bodies { group.addTask { try await fixture.post(body).0 } }
                return try await group.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(statuses == [200: bodies.count])
            #expect(try await fixture.store.telnyxEvents(sessions: calls.map(\.session)).count == bodies.count)
            #expect(try await fixture.store.recordings(RecordingQuery(limit: 1000)).count == calls.count)
            #expect(try await fixture.fetchJobs().count == calls.count)
            // Group commit: fewer commits than events.
            let (status, metrics) = try await fixture.get("/metrics")
            #expect(status == 200)
            let count = try #require(Self.sample("callrec_webhook_batch_size_count", in: metrics))
            let sum = try #require(Self.sample("callrec_webhook_batch_size_sum", in: metrics))
            #expect(sum == Double(bodies.count))
            #expect(count < sum, "\(Int(count)) commits for \(Int(sum)) events")
            // Each commit is timed: as many commit times as batches.
            #expect(Self.sample("callrec_webhook_commit_seconds_count", in: metrics) == count)
            #expect(metrics.contains(#"callrec_webhook_requests_total{result="stored"} \#(bodies.count)"#), "\(metrics)")
            #expect(metrics.contains("callrec_webhook_answer_seconds_bucket"))
        }
    }

    /// The value of an unlabelled sample in Prometheus text.
    static func sample(_ name: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    @Test func healthzAnswersWhileTheStoreDoesAndA503WhenItDoesNot() async throws {
        try await withServer(postgres: false) { fixture in
            let (status, answer) = try await fixture.get("/healthz")
            #expect(status == 200 && answer == #"{"status":"ok"}"#)
            // The store gone: /healthz says so, and a webhook is answered 503 (Telnyx retries).
            try await fixture.store.close()
            #expect(try await fixture.get("/healthz").0 == 503)
            let call = TelnyxWebhooks()
            let (refused, body) = try await fixture.post(call.hangup())
            #expect(refused == 503, "\(body)")
        }
    }

    @Test func aCallEventAfterTheRecordingEventWakesItsFetchJob() async throws {
        try await withServer { fixture in
            let call = TelnyxWebhooks()
            #expect(try await fixture.post(call.recordingSaved()).0 == 200)
            let claimed = try await fixture.store.claim(queue: "fetch", limit: 1, owner: "test", leaseTTL: .seconds(60))
            _ = try await fixture.store.snooze(try #require(claimed.first?.lease), delay: .seconds(3600), reason: "waits for the call's events", maxSnoozes: 10)
            #expect(try await fixture.fetchJobs().first.map { $0.runAt > Date().addingTimeInterval(1800) } == true)
            #expect(try await fixture.post(call.hangup()).0 == 200)
            let job = try #require(try await fixture.fetchJobs().first)
            #expect(job.runAt <= (try await fixture.store.now()).addingTimeInterval(5), "woken: due now")
        }
    }

    @Test func theWriterCommitsWhatWaitsTogetherRefusesOverItsBacklogAndDrainsWhenClosed() async throws {
        let commits = Locked<[[String]]>([])
        let (started, starting) = AsyncStream<Void>.makeStream()
        let (release, releasing) = AsyncStream<Void>.makeStream()
        let batcher = WebhookBatcher(backlog: 2, batchLimit: 500) { events in
            let first = commits.withLock { commits in
                commits.append(events.map(\.id))
                return commits.count == 1
            }
            if first {
                starting.yield()
                for await _ in release { break }
            }
        }
        func event(_ id: String) -> TelnyxEvent {
            TelnyxEvent(id: id, type: TelnyxEvent.hangup, occurredAt: nil, callSessionID: "s", callLegID: "l", callControlID: nil, document: "{}")
        }
        let writer = Task { await batcher.run() }
        let one = Task { try await batcher.submit(event("1")) }
        for await _ in started { break }
        // While the first commit runs, two more wait (the backlog), a third is refused; after
        // close(), a fourth too. (Tasks, so that a batcher that took them would fail here, not hang.)
        let two = Task { try await batcher.submit(event("2")) }, three = Task { try await batcher.submit(event("3")) }
        let deadline = ContinuousClock.now + .seconds(30)
        while batcher.waiting < 2, ContinuousClock.now < deadline { await Task.yield() }
        let done = Locked(0)
        let four = Task {
            defer { done.withLock { $0 += 1 } }
            try await batcher.submit(event("4"))
        }
        while done.withLock({ $0 }) < 1, batcher.waiting < 3, ContinuousClock.now < deadline { await Task.yield() }
        batcher.close()
        let five = Task { try await batcher.submit(event("5")) }
        while done.withLock({ $0 }) < 1 || batcher.waiting > 2, ContinuousClock.now < deadline { await Task.yield() }
        releasing.yield()
        for task in [one, two, three] { try await task.value }
        await #expect { try await four.value } throws: { ($0 as? WebhookBatcher.Refusal)?.code == .full }
        await #expect { try await five.value } throws: { ($0 as? WebhookBatcher.Refusal)?.code == .closed }
        await writer.value
        let batches = commits.withLock { $0 }
        #expect(batches.count == 2 && batches[0] == ["1"] && Set(batches[1]) == ["2", "3"], "\(batches)")
    }

    /// An environment without the developer's API variables.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "LANG", "TMPDIR"].contains($0.key) }
        return inherited.merging(extra) { _, new in new }
    }

    @Test func theWorkerRefusesABadListenOrABadKeyWithExit2AndServesHealthWithoutAKey() async throws {
        try await withTemporaryDirectory { dir in
            let callrec = callrecExecutable()
            let worker = ["worker", "--until-idle", "--state", "\(dir)/state"]
            let bad = try await runProcess(callrec, worker + ["--listen", "[::1:80"], environment: Self.environment(["TELNYX_PUBLIC_KEY": Signer().publicKey]))
            #expect(bad.status == 2 && bad.stderr.contains("--listen [::1:80"), "\(bad.stderr)")
            let wrong = try await runProcess(callrec, worker + ["--listen", "0"], environment: Self.environment(["TELNYX_PUBLIC_KEY": "c2hvcnQ="]))
            #expect(wrong.status == 2 && wrong.stderr.contains("TELNYX_PUBLIC_KEY"), "\(wrong.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"), "nothing made before the refusal")
            // No key at all is not an error: /healthz and /metrics are served, and the webhook
            // endpoint answers 503 (Telnyx delivers again) until a key is set.
            let missing = try await runProcess(callrec, worker + ["--listen", "0"], environment: Self.environment())
            #expect(missing.status == 0 && missing.stderr.contains("TELNYX_PUBLIC_KEY is not set: --listen serves /healthz and /metrics"), "\(missing.stderr)")
        }
    }

    /// A port another process listens on: exit 2 naming the address and why, not NIO's
    /// `bind(descriptor:ptr:bytes:)` message.
    @Test func aListenAddressInUseIsAUsageErrorNamingIt() async throws {
        try await withTemporaryDirectory { dir in
            let holder = try loopbackSocket(listening: true)
            defer { close(holder.fd) }
            let worker = ["worker", "--until-idle", "--state", "\(dir)/state", "--listen", "127.0.0.1:\(holder.port)"]
            let taken = try await runProcess(callrecExecutable(), worker, environment: Self.environment(["TELNYX_PUBLIC_KEY": Signer().publicKey]))
            #expect(taken.status == 2, "\(taken.stderr)")
            #expect(taken.stderr.contains("--listen 127.0.0.1:\(holder.port): cannot listen: the address is in use"), "\(taken.stderr)")
            #expect(!taken.stderr.contains("bind(descriptor"), "\(taken.stderr)")
        }
    }

    @Test func aWorkerWithListenServesSignedWebhooksAndStoresThem() async throws {
        try await withTemporaryDirectory { dir in
            let signer = Signer()
            let log = "\(dir)/worker.log"
            let process = try startProcess(callrecExecutable(), ["worker", "--listen", ":0", "--concurrency", "0", "--upload-slots", "0", "--delete-slots", "0", "--fetch-slots", "0", "--state", "\(dir)/state"],
                                           environment: Self.environment(["TELNYX_PUBLIC_KEY": signer.publicKey]), log: log)
            defer { if process.isRunning { process.interrupt() } }
            #expect(try await waitForText("webhooks served at http://127.0.0.1:", inFile: log, timeout: .seconds(60)), "\(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self))")
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            let port = try #require(text.firstMatch(of: /webhooks served at http:\/\/127\.0\.0\.1:(\d+)\/webhooks\/telnyx/).map { String($0.1) })
            let call = TelnyxWebhooks()
            let body = call.recordingSaved()
            let headers = Dictionary(uniqueKeysWithValues: signer.headers(body))
            let (status, answer) = try await httpJSON("POST", "http://127.0.0.1:\(port)/webhooks/telnyx", json: body, headers: headers)
            #expect(status == 200 && answer["stored"] as? Bool == true)
            #expect(try await waitForHealthy("http://127.0.0.1:\(port)/healthz").0 == 200)
            process.interrupt()
            #expect(try await waitForExit(process, upTo: 60))
            let jobs = try await runProcess(callrecExecutable(), ["queue", "ls", "--json", "--state", "\(dir)/state"], environment: Self.environment())
            #expect(String(decoding: jobs.stdout, as: UTF8.self).contains("telnyx-fetch"), "\(jobs.stderr)")
        }
    }

    @Test func listenTakesAPortAHostAndPortOrABracketedIPv6Address() {
        func parsed(_ text: String) -> String? { try? ListenAddress.parse(text).get().description }
        #expect(parsed("8080") == "127.0.0.1:8080")
        #expect(parsed(":8080") == "127.0.0.1:8080")
        #expect(parsed("0.0.0.0:8080") == "0.0.0.0:8080")
        #expect(parsed("[::1]:8080") == "[::1]:8080")
        #expect(parsed("localhost:0") == "localhost:0")
        for bad in ["", "host", "host:", ":70000", "::1:8080", "[::1]", "[::1:8080", "1.2.3.4:http"] {
            #expect(parsed(bad) == nil, "\(bad)")
        }
    }
}

extension Array {
    /// The array cut into pieces of at most `count`.
    fileprivate func chunks(ofCount count: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: self.count, by: count).map { self[$0..<Swift.min($0 + count, self.count)] }
    }
}

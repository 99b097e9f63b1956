import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// The operator's console (issue 19) from the outside: a `callrec console` process over a SQLite
/// state the test seeded, asked over loopback as a browser or curl would; what counts is the
/// status, the bytes and what the database holds afterwards.
@Suite(.serialized) struct ConsoleProcessTests {
    let callrec = callrecExecutable()
    static let password = "s3cret console pass"

    /// A running `callrec console --listen 127.0.0.1:0`.
    struct Console {
        let process: ChildProcess
        let log: String
        let port: Int

        func stop() { if process.isRunning { process.terminate() } }

        /// A request as `user` with the password (nil user: none sent; `password`: another one).
        func request(_ path: String, method: String = "GET", user: String? = "alice", password: String = ConsoleProcessTests.password,
                     headers: [String: String] = [:], form: [String: String]? = nil) throws -> LoopbackResponse {
            var headers = headers
            if let user { headers["Authorization"] = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString() }
            var body = Data()
            if let form {
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                body = Data(form.map { "\($0)=\($1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $1)" }.joined(separator: "&").utf8)
            }
            return try #require(blockingLoopbackRequest(port: port, method, path, headers: headers, body: body), "\(method) \(path): no answer")
        }
    }

    /// `environment`: the process's (default: this one's), with the password added.
    func start(_ dir: String, _ extra: [String] = [], name: String = "console", environment: [String: String] = ProcessInfo.processInfo.environment) async throws -> Console {
        let log = "\(dir)/\(name).log"
        var environment = environment
        environment["CALLREC_CONSOLE_PASSWORD"] = Self.password
        let process = try startProcess(callrec, ["console", "--listen", "127.0.0.1:0", "--state", "\(dir)/state"] + extra, environment: environment, log: log)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, process.isRunning {
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            if let range = text.range(of: #"console served at http://127\.0\.0\.1:[0-9]+/console/"#, options: .regularExpression),
               let port = Int(text[range].split(separator: ":").last?.split(separator: "/").first ?? "") {
                return Console(process: process, log: log, port: port)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning { process.terminate() }
        let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
        throw TestAudioError("the console never said where it serves: \(text.suffix(2000))")
    }

    // MARK: - The state

    static func key(_ n: Int) -> String { String(format: "%064x", n) }

    /// `count` uploaded recordings (every third failed with `silence`), one part of `audio` for
    /// recording 1, a failed recording 1000 whose transcode job was discarded, and recording
    /// 1001 whose upload job waits. Returns the two jobs' ids.
    @discardableResult
    static func seed(_ dir: String, count: Int = 3, audio: Data = Data()) async throws -> (discarded: Int64, waiting: Int64) {
        try FileManager.default.createDirectory(atPath: "\(dir)/state/spool", withIntermediateDirectories: true)
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
        try await store.migrate()
        let base = Date(timeIntervalSince1970: 1_780_000_000)
        var ops: [LedgerOp] = (1...count).map { n in
            .insertRecording(Recording(key: key(n), path: "/pbx/hq/call-\(n).wav", state: n % 3 == 0 ? .failed : .uploaded,
                                       errorCode: n % 3 == 0 ? "silence" : nil, errorMessage: n % 3 == 0 ? "no speech at all" : nil,
                                       seconds: 61, createdAt: base.addingTimeInterval(Double(n)), updatedAt: base))
        }
        let spool = "\(dir)/state/spool/part-1.mp3"
        _ = FileManager.default.createFile(atPath: spool, contents: audio)
        ops.append(.replaceParts(key: key(1), parts: [Part(recordingKey: key(1), index: 1, spoolPath: spool, bytes: Int64(audio.count), seconds: 61,
                                                          sha256: String(repeating: "ab", count: 32), state: .attached, callLogID: "cl-1", callLogOrigin: .created)]))
        ops.append(.insertRecording(Recording(key: key(1000), path: "/pbx/hq/broken.wav", state: .failed, errorCode: "decode_failed",
                                              errorMessage: "the decoder gave up", createdAt: base, updatedAt: base)))
        ops.append(.insertRecording(Recording(key: key(1001), path: "/pbx/hq/waiting.wav", state: .transcoded, createdAt: base, updatedAt: base)))
        ops.append(.putWaveform(key: key(1), waveform: Waveform(secondsPerPoint: 0.5, levels: [0, 255, 128])))
        try await store.commit(ops)
        // The report the transcode leaves beside the parts.
        try Data(#"{"path":"call-1.wav","status":"ok","warnings":[{"code":"one_way_audio","message":"leg 2 is silent for 97 % of the call"}],"stats":{"peak_dbfs":-3.5,"active_level_dbfs":-21,"noise_floor_dbfs":-62.5,"active_ratio":0.41,"channel_active_ratios":[0.8,0.03],"longest_silence_seconds":12.4,"clipped_samples":0,"nonfinite_samples":0,"dc_offset":0},"parts":[]}"#.utf8)
            .write(to: URL(fileURLWithPath: "\(dir)/state/spool/report.json"))
        guard case .inserted(let transcode) = try await store.enqueue(NewJob(queue: "transcode", kind: "transcode", args: #"{"key":"\#(key(1000))"}"#,
                                                                             uniqueKey: "transcode:\(key(1000))", maxAttempts: 1)),
              case .inserted(let upload) = try await store.enqueue(NewJob(queue: "upload", kind: "upload", args: #"{"key":"\#(key(1001))"}"#,
                                                                          uniqueKey: "upload:\(key(1001))", delay: .seconds(3600))) else {
            throw TestAudioError("the seed's jobs were not inserted")
        }
        let lease = try #require(try await store.claim(queue: "transcode", limit: 1, owner: "seed", leaseTTL: .seconds(60)).first?.lease)
        _ = try await store.fail(lease, error: "decode_failed: the decoder gave up", permanent: true, retryIn: .zero)
        try await store.close()
        return (transcode, upload)
    }

    /// Reads the state once, beside the console.
    static func read<T: Sendable>(_ dir: String, _ body: (SQLiteStore) async throws -> T) async throws -> T {
        let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
        let value = try await body(store)
        try await store.close()
        return value
    }

    /// The keys a list page links to, in order.
    static func linkedKeys(_ html: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: #"href="/console/recordings/([0-9a-f]{64})""#)
        return regex.matches(in: html, range: NSRange(html.startIndex..., in: html)).compactMap { Range($0.range(at: 1), in: html).map { String(html[$0]) } }
    }

    static func field(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    // MARK: - Tests

    @Test(.timeLimit(.minutes(2)))
    func theConsoleDoesNotStartWithoutAPassword() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.seed(dir)
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_CONSOLE_PASSWORD"] = nil
            let result = try await runProcess(callrec, ["console", "--listen", "127.0.0.1:0", "--state", "\(dir)/state"], environment: environment)
            #expect(result.status == 2, "\(result.stderr)")
            #expect(result.stderr.contains("CALLREC_CONSOLE_PASSWORD") && result.stderr.contains("console.password_file"), "\(result.stderr)")

            // The password from the file the config names.
            try Data("\(Self.password)\n".utf8).write(to: URL(fileURLWithPath: "\(dir)/console.pass"))
            try Data(#"{ "state": "state", "console": { "password_file": "console.pass" } }"#.utf8).write(to: URL(fileURLWithPath: "\(dir)/callrec.json"))
            let log = "\(dir)/from-config.log"
            let process = try startProcess(callrec, ["console", "--listen", "127.0.0.1:0", "--config", "\(dir)/callrec.json"], environment: environment, log: log)
            defer { process.terminate() }
            #expect(try await waitForText("console served at http://127.0.0.1:", inFile: log, timeout: .seconds(60)))
            let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
            let port = try #require(text.range(of: #"127\.0\.0\.1:[0-9]+"#, options: .regularExpression).flatMap { Int(text[$0].split(separator: ":")[1]) })
            let console = Console(process: process, log: log, port: port)
            #expect(try console.request("/console/").status == 200)
            #expect(try console.request("/console/", password: "wrong").status == 401)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func everyPageAndTheAudioNeedThePassword() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.seed(dir, audio: Data(repeating: 7, count: 100))
            let console = try await start(dir)
            defer { console.stop() }
            for path in ["/console/", "/console/recordings", "/console/recordings/\(Self.key(1))", "/console/recordings/\(Self.key(1))/parts/1/audio",
                         "/console/style.css"] {
                let anonymous = try console.request(path, user: nil)
                #expect(anonymous.status == 401, "\(path)")
                #expect(anonymous.headers["www-authenticate"]?.hasPrefix("Basic ") == true, "\(path)")
                #expect(!anonymous.text.contains("call-1.wav"))
                #expect(try console.request(path, password: "not it").status == 401, "\(path)")
                #expect(try console.request(path, user: "").status == 200, "\(path): any user name, even none")
            }
            // The root leads to the console; the overview counts what the ledger holds.
            #expect(try console.request("/", user: nil).headers["location"] == "/console/")
            let overview = try console.request("/console/")
            #expect(overview.headers["content-security-policy"]?.contains("default-src 'self'") == true)
            #expect(overview.text.contains(#"<a href="/console/recordings?code=silence">silence</a></td><td class="n">1</td>"#), "\(overview.text)")
            #expect(!overview.text.contains("http://") && !overview.text.contains("https://"), "no external asset")
        }
    }

    /// `worker --listen` serves the console beside /healthz when a password is configured, with
    /// the same password rule; without one it serves no console.
    @Test(.timeLimit(.minutes(2)))
    func theWorkersListenerServesTheConsoleWhenAPasswordIsSet() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.seed(dir)
            for withPassword in [true, false] {
                let log = "\(dir)/worker-\(withPassword).log"
                var environment = ProcessInfo.processInfo.environment
                environment["CALLREC_CONSOLE_PASSWORD"] = withPassword ? Self.password : nil
                environment["TELNYX_PUBLIC_KEY"] = nil
                let worker = try startProcess(callrec, ["worker", "--state", "\(dir)/state", "--listen", "127.0.0.1:0", "--concurrency", "1"],
                                              environment: environment, log: log)
                defer { worker.terminate() }
                #expect(try await waitForText("webhooks served at http://127.0.0.1:", inFile: log))
                let text = String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self)
                let port = try #require(text.firstMatch(of: /webhooks served at http:\/\/127\.0\.0\.1:([0-9]+)/).flatMap { Int($0.1) })
                let console = Console(process: worker, log: log, port: port)
                #expect(try await waitForHealthy("http://127.0.0.1:\(port)/healthz").0 == 200)
                if withPassword {
                    #expect(try console.request("/console/", user: nil).status == 401)
                    let overview = try console.request("/console/")
                    #expect(overview.status == 200 && overview.text.contains("silence"), "\(overview.status) \(overview.text.prefix(500))")
                } else {
                    #expect(try console.request("/console/").status == 404)
                }
            }
        }
    }

    @Test(.timeLimit(.minutes(3)))
    func theListPagesThroughEveryRecordingOnceAndFilters() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.seed(dir, count: 120)
            let console = try await start(dir)
            defer { console.stop() }
            var seen: [String] = []
            var path: String? = "/console/recordings"
            var pages = 0
            while let next = path, pages < 10 {
                let page = try console.request(next)
                #expect(page.status == 200)
                seen += Self.linkedKeys(page.text)
                pages += 1
                path = page.text.range(of: #"<a rel="next" href="([^"]+)""#, options: .regularExpression).map {
                    String(page.text[$0].dropFirst(#"<a rel="next" href=""#.count).dropLast()).replacingOccurrences(of: "&amp;", with: "&")
                }
            }
            // 122 recordings (120 + the two with jobs), 50 a page, newest first.
            #expect(pages == 3)
            #expect(seen.count == 122 && Set(seen).count == 122)
            #expect(Array(seen.prefix(3)) == [Self.key(120), Self.key(119), Self.key(118)])

            // Filters: the failed with `silence`, a source path, a call log; the filter stays in the next link.
            let silence = try console.request("/console/recordings?state=failed&code=silence")
            #expect(Set(Self.linkedKeys(silence.text)) == Set((1...120).filter { $0 % 3 == 0 }.map(Self.key)))
            #expect(Self.linkedKeys(silence.text).count == 40)
            #expect(try console.request("/console/recordings?call_log=cl-1").text.contains(Self.key(1)))
            #expect(Self.linkedKeys(try console.request("/console/recordings?source=%2Fpbx%2Fhq%2Fbroken").text) == [Self.key(1000)])
            let bad = try console.request("/console/recordings?state=lost")
            #expect(bad.status == 200 && bad.text.contains("not a recording state") && Self.linkedKeys(bad.text).isEmpty)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func theAudioAnswersRangeRequestsWithTheRightBytes() async throws {
        try await withTemporaryDirectory { dir in
            let audio = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 256) })
            try await Self.seed(dir, audio: audio)
            let console = try await start(dir)
            defer { console.stop() }
            let path = "/console/recordings/\(Self.key(1))/parts/1/audio"
            let whole = try console.request(path)
            #expect(whole.status == 200 && whole.body == audio)
            #expect(whole.headers["accept-ranges"] == "bytes" && whole.headers["content-type"] == "audio/mpeg")

            let middle = try console.request(path, headers: ["Range": "bytes=100-199"])
            #expect(middle.status == 206 && middle.headers["content-range"] == "bytes 100-199/10000")
            #expect(middle.body == audio.subdata(in: 100..<200))
            let open = try console.request(path, headers: ["Range": "bytes=9990-"])
            #expect(open.status == 206 && open.body == audio.subdata(in: 9990..<10_000))
            let tail = try console.request(path, headers: ["Range": "bytes=-16"])
            #expect(tail.status == 206 && tail.headers["content-range"] == "bytes 9984-9999/10000" && tail.body == audio.suffix(16))
            let past = try console.request(path, headers: ["Range": "bytes=10000-"])
            #expect(past.status == 416 && past.headers["content-range"] == "bytes */10000")

            // The page draws the kept waveform and says what the transcode found.
            let page = try console.request("/console/recordings/\(Self.key(1))").text
            #expect(page.contains(#"<svg class="wave" viewBox="0 0 3 100""#) && page.contains(#"d="M0 49.5V50.5M1 0.0V100.0M2 24.9V75.1""#), "\(page)")
            #expect(page.contains("<strong>one_way_audio</strong> leg 2 is silent for 97 % of the call"))
            #expect(page.contains("<th>speech-active per leg</th><td>80 % / 3 %</td>") && page.contains("<th>longest silence</th><td>12.4 s</td>"))

            // The page plays it; a part that is not there is a 404.
            #expect(try console.request("/console/recordings/\(Self.key(1))").text.contains(#"<audio controls preload="metadata" src="\#(path)">"#))
            #expect(try console.request("/console/recordings/\(Self.key(1))/parts/2/audio").status == 404)
            #expect(try console.request("/console/recordings/\(Self.key(77))").status == 404)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func retryAndCancelNeedTheTokenChangeTheJobAndAreAuditedWithWho() async throws {
        try await withTemporaryDirectory { dir in
            let jobs = try await Self.seed(dir)
            let console = try await start(dir)
            defer { console.stop() }
            let page = try console.request("/console/recordings/\(Self.key(1000))", user: "alice")
            let token = try #require(Self.field("csrf", in: page.text), "\(page.text)")
            let retry = "/console/jobs/\(jobs.discarded)/retry"

            // Refused: no token, another user's token, a page of another site, no password.
            #expect(try console.request(retry, method: "POST", form: ["back": "/console/"]).status == 403)
            #expect(try console.request(retry, method: "POST", user: "mallory", form: ["csrf": token]).status == 403)
            #expect(try console.request(retry, method: "POST", headers: ["Origin": "http://evil.example"], form: ["csrf": token]).status == 403)
            #expect(try console.request(retry, method: "POST", user: nil, form: ["csrf": token]).status == 401)
            #expect(try await Self.read(dir) { try await $0.job(id: jobs.discarded)?.state } == .discarded)

            // With the page's token: the job runs again, its recording is ready for it, and the
            // audit says alice did it.
            let done = try console.request(retry, method: "POST", form: ["csrf": token, "back": "/console/recordings/\(Self.key(1000))"])
            #expect(done.status == 303, "\(done.text)")
            #expect(done.headers["location"]?.hasPrefix("/console/recordings/\(Self.key(1000))?notice=") == true)
            let (job, recording, audit) = try await Self.read(dir) { store in
                (try await store.job(id: jobs.discarded), try await store.recording(key: Self.key(1000)), try await store.audit(key: Self.key(1000), limit: 10))
            }
            #expect(job?.state == .available && job?.attempt == 0)
            #expect(recording?.state == .pending)
            #expect(audit.contains { $0.action == "console_retry" && $0.actor == "console:alice" && $0.target == "job:\(jobs.discarded)" }, "\(audit)")
            #expect(try console.request("/console/recordings/\(Self.key(1000))").text.contains("console:alice"))

            // Cancel the upload that waits.
            let cancel = try console.request("/console/jobs/\(jobs.waiting)/cancel", method: "POST", user: "alice", form: ["csrf": token])
            #expect(cancel.status == 303)
            let cancelled = try await Self.read(dir) { store in
                (try await store.job(id: jobs.waiting)?.state, try await store.audit(key: Self.key(1001), limit: 10))
            }
            #expect(cancelled.0 == .cancelled)
            #expect(cancelled.1.contains { $0.action == "console_cancel" && $0.actor == "console:alice" })
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func deleteEverywhereListsWhatGoesThenRegistersTheDeletionAuditedWithWho() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.seed(dir, audio: Data(repeating: 1, count: 10))
            let console = try await start(dir)
            defer { console.stop() }
            let key = Self.key(1)
            #expect(try console.request("/console/recordings/\(key)").text.contains(#"href="/console/recordings/\#(key)/delete""#))
            let confirm = try console.request("/console/recordings/\(key)/delete", user: "bob")
            #expect(confirm.status == 200)
            #expect(confirm.text.contains("<code>pipedrive:cl-1</code></td><td><strong>deleted</strong>") && confirm.text.contains("<code>spool</code>"), "\(confirm.text)")
            let token = try #require(Self.field("csrf", in: confirm.text))
            let path = "/console/recordings/\(key)/delete"

            #expect(try console.request(path, method: "POST", user: "bob", form: ["confirm": "yes"]).status == 403)
            #expect(try console.request(path, method: "POST", user: "bob", form: ["csrf": token]).status == 400, "the confirmation's button says yes")
            #expect(try await Self.read(dir) { try await $0.recording(key: key)?.state } == .uploaded)

            let done = try console.request(path, method: "POST", user: "bob", form: ["csrf": token, "confirm": "yes"])
            #expect(done.status == 303 && done.headers["location"]?.hasPrefix("/console/recordings/\(key)?notice=Deletion%20registered") == true, "\(done.headers)")
            let (recording, deletions, jobs, audit) = try await Self.read(dir) { store in
                (try await store.recording(key: key), try await store.openDeletions(), try await store.jobs(JobQuery(uniqueKey: "delete:\(key)")),
                 try await store.audit(key: key, limit: 10))
            }
            #expect(recording?.state == .deleting)
            #expect(deletions.map(\.recordingKey) == [key] && deletions.first?.steps.map(\.target) == ["pipedrive:cl-1", "spool"])
            #expect(jobs.map(\.state) == [.available], "a worker carries it out")
            #expect(audit.contains { $0.action == "delete_registered" && $0.actor == "console:bob" }, "\(audit)")
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aReadOnlyConsoleShowsNoActionAndRefusesThem() async throws {
        try await withTemporaryDirectory { dir in
            let jobs = try await Self.seed(dir)
            let console = try await start(dir, ["--read-only"])
            defer { console.stop() }
            let page = try console.request("/console/recordings/\(Self.key(1000))")
            #expect(page.status == 200 && page.text.contains("read-only"))
            #expect(!page.text.contains(#"method="post""#) && !page.text.contains("/delete"))
            #expect(try console.request("/console/recordings/\(Self.key(1))/delete").status == 403)
            #expect(try console.request("/console/recordings/\(Self.key(1))/delete", method: "POST", form: ["csrf": "x", "confirm": "yes"]).status == 403)
            let refused = try console.request("/console/jobs/\(jobs.discarded)/retry", method: "POST", form: ["csrf": "anything"])
            #expect(refused.status == 403 && refused.text.contains("read-only"))
            #expect(try await Self.read(dir) { try await $0.job(id: jobs.discarded)?.state } == .discarded)
            // No reconcile either.
            let reconcile = try console.request("/console/reconcile")
            #expect(reconcile.status == 200 && !reconcile.text.contains(#"method="post""#))
            #expect(try console.request("/console/reconcile/plan", method: "POST", form: ["csrf": "x"]).status == 403)
        }
    }

    // MARK: - In a real browser

    /// Headless Chromium and its driver (Debian's chromium, chromium-driver) and Selenium (PyPI):
    /// the browser test runs where they are installed, and shows as skipped elsewhere.
    static let browserAvailable = FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
        && (try? runProcessBlocking("/usr/bin/env", ["python3", "-c", "import selenium"]).status) == 0

    /// scripts/console-browser.py against a console over a recording the worker really
    /// transcoded: pages without console errors, the audio loads and seeks, a retry without its
    /// token refused and then done from its button; screenshots under .build/console-screenshots.
    @Test(.timeLimit(.minutes(3)), .enabled(if: browserAvailable, "chromium, chromium-driver and selenium are not installed"))
    func theConsoleWorksInARealBrowser() async throws {
        try await withTemporaryDirectory { dir in
            let jobs = try await Self.seed(dir)
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 30, to: "\(dir)/in/call.wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/in/call.json", contents: Data(UploadFixtures.sidecar(index: 1).utf8))
            let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--state", "\(dir)/state", "--settle", "0"])
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            _ = try await runProcess(callrec, ["worker", "--until-idle", "--state", "\(dir)/state", "--upload-slots", "0", "--delete-slots", "0", "--fetch-slots", "0"])
            let transcoded = try #require(try await Self.read(dir) { try await $0.recordingPage(RecordingPageQuery(states: [.transcoded])) }.first)

            let console = try await start(dir)
            defer { console.stop() }
            let shots = URL(fileURLWithPath: callrec).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("console-screenshots").path
            try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/console-browser.py").path
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_CONSOLE_PASSWORD"] = Self.password
            let browser = try await runProcess("/usr/bin/env", ["python3", script, "http://127.0.0.1:\(console.port)", transcoded.key, Self.key(1000), shots],
                                               environment: environment)
            #expect(browser.status == 0, "\(browser.stderr)")
            #expect(try await Self.read(dir) { try await $0.job(id: jobs.discarded)?.state } == .available, "the browser's retry reached the database")
            #expect(FileManager.default.fileExists(atPath: "\(shots)/overview.png") && FileManager.default.fileExists(atPath: "\(shots)/recording.png"))
        }
    }
}

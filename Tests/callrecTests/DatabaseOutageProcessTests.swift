import CallStore
import CallStorePostgres
import CallTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Two `callrec worker` processes on one PostgreSQL server of the test's own, while the server
/// restarts (`pg_ctl stop -m fast` and `-m immediate`) and while one worker's path to it is cut
/// (a network namespace): the workers stay up, nothing is lost, and no call log is doubled.
@Suite(.serialized) struct DatabaseOutageProcessTests {
    let callrec = callrecExecutable()

    static func flags(ttl: Double, rescue: Double = 0.5) -> [String] {
        ["worker", "--concurrency", "1", "--upload-slots", "2", "--until-idle", "--lease-ttl", "\(ttl)", "--rescue-interval", "\(rescue)",
         "--poll-interval", "0.2", "--log-level", "info"]
    }

    /// Waits (up to `timeout`) until the sandbox holds `count` call logs with their audio: an
    /// event of the work, not a moment.
    static func waitForAttached(_ sandbox: SandboxProcess, _ count: Int, timeout: Duration = .seconds(180)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let logs = try await sandbox.state()["call_logs"] as? [[String: Any]] ?? []
            if logs.filter({ $0["has_recording"] as? Bool == true }).count >= count { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// `GET /healthz` on `port`; the status (0 when nothing answers within 5 s).
    static func health(_ port: Int) async -> Int {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/healthz")!)
        request.timeoutInterval = 5
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return 0 }
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    /// Polls `/healthz` until it answers `status` (at most `timeout`).
    static func waitForHealth(_ port: Int, _ status: Int, timeout: Duration = .seconds(60)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await health(port) == status { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// `count` calls (and the fixture's bad inputs) under `dir/in`, a sandbox whose requests all
    /// take `delay` s (so that the faults fall in the middle of the work), and the calls enqueued
    /// on `database`; the environment the workers take and how many recordings should upload.
    func setUp(_ dir: String, database: String, count: Int, delay: Double, sandboxArguments: [String] = []) async throws
        -> (environment: [String: String], sandbox: SandboxProcess, expected: Int) {
        let expected = try UploadFixtures.makeDirectory(dir, count: count, longCalls: 0)
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = database
        environment["PIPEDRIVE_API_TOKEN"] = "0123456789abcdef0123456789abcdef01234567"
        environment["PIPEDRIVE_BURST"] = "500"
        environment["TELNYX_PUBLIC_KEY"] = nil
        let sandbox = try await SandboxProcess.start(callrec, dir: dir, environment: environment, faults: "slow=1,delay=\(delay)",
                                                     arguments: sandboxArguments)
        environment["PIPEDRIVE_API_URL"] = sandbox.base + "/v1"
        try await sandbox.seedCallLog(UploadFixtures.existingCallLog)
        let enqueue = try await runProcess(callrec, ["enqueue", "\(dir)/in", "--settle", "0", "--state", "\(dir)/e"], environment: environment)
        #expect(enqueue.status == 1, "three bad inputs: \(enqueue.stderr)")
        return (environment, sandbox, expected)
    }

    static func text(_ path: String) -> String {
        String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
    }

    @Test(.timeLimit(.minutes(10)), .enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func twoWorkersRideOutAFastAndAnImmediateRestartOfPostgreSQL() async throws {
        let server = try PrivatePostgres()
        defer { server.close() }
        try await withTemporaryDirectory { dir in
            let (environment, sandbox, expected) = try await setUp(dir, database: server.url, count: 40, delay: 0.2)
            defer { sandbox.terminate() }
            let flags = Self.flags(ttl: 20)
            let a = try startProcess(callrec, flags + ["--state", "\(dir)/a", "--listen", "127.0.0.1:0"], environment: environment, log: "\(dir)/a.log")
            let b = try startProcess(callrec, flags + ["--state", "\(dir)/b"], environment: environment, log: "\(dir)/b.log")
            defer { a.terminate(); b.terminate() }
            #expect(try await waitForText("webhooks served at http://127.0.0.1:", inFile: "\(dir)/a.log"))
            let served = Self.text("\(dir)/a.log")
            let port = try #require(served.firstMatch(of: /webhooks served at http:\/\/127\.0\.0\.1:([0-9]+)/).flatMap { Int($0.1) })

            // A fast shutdown while uploads run; /healthz says so while the server is away.
            #expect(try await Self.waitForAttached(sandbox, 8))
            try server.down(.fast)
            #expect(try await Self.waitForHealth(port, 503), "healthz did not turn unhealthy")
            try server.up()
            #expect(try await Self.waitForHealth(port, 200), "healthz did not recover")
            // A crash of the server (no shutdown checkpoint; recovery from the WAL on start).
            #expect(try await Self.waitForAttached(sandbox, 20))
            try server.down(.immediate)
            try server.up()

            for (name, worker) in [("a", a), ("b", b)] {
                let finished = try await waitForExit(worker, upTo: 300)
                if !finished { worker.terminate() }
                #expect(finished, "worker \(name) did not finish: \(Self.text("\(dir)/\(name).log").suffix(3000))")
                // 1: the fixture's bad inputs failed (in whichever worker ran them).
                #expect([0, 1].contains(worker.terminationStatus), "worker \(name): \(Self.text("\(dir)/\(name).log").suffix(3000))")
                let log = Self.text("\(dir)/\(name).log")
                // What the outage cost (a statement that went unanswered, a create whose answer was lost).
                for line in log.split(separator: "\n") where line.contains("no answer within") || line.contains("create_unsettled") {
                    print("worker \(name): \(line.prefix(300))")
                }
                #expect(log.contains("the database does not answer"), "worker \(name) did not say the database went away")
                #expect(log.contains("the database answers again, after"), "worker \(name) did not say the database came back")
            }
            let store = try PostgresStore(url: server.url)
            try await withRunningStore(store) { store in
                try await UploadProcessTests().checkExactlyOnce(sandbox, store: store, expectedOK: expected)
                let jobs = try await store.jobs(JobQuery(limit: 10_000))
                #expect(jobs.allSatisfy { $0.state == .completed || $0.state == .discarded }, "\(jobs.filter { $0.state != .completed }.map { "\($0.id) \($0.kind) \($0.state)" })")
            }
        }
    }

    @Test(.timeLimit(.minutes(10)), .enabled(if: TestPostgres.available && TestHost.isAvailable, "needs PostgreSQL, root and iproute2 (network namespaces)"))
    func aPartitionedWorkersJobsFinishElsewhereAndItsLateWritesAreRefused() async throws {
        let host = try TestHost()
        defer { host.close() }
        let server = try PrivatePostgres(listen: [host.databaseAddress])
        defer { server.close() }
        try await withTemporaryDirectory { dir in
            let (environment, sandbox, expected) = try await setUp(dir, database: server.url, count: 24, delay: 0.3,
                                                                   sandboxArguments: ["--host", "0.0.0.0"])
            defer { sandbox.terminate() }
            let sandboxPort = try #require(URLComponents(string: sandbox.base)?.port)

            // Worker b lives on the test host: the database and the sandbox by their addresses there.
            let flags = Self.flags(ttl: 6)
            var remote = environment
            remote["CALLREC_DATABASE"] = server.url(host: host.databaseAddress)
            remote["PIPEDRIVE_API_URL"] = "http://\(host.hostAddress):\(sandboxPort)/v1"
            let b = try host.start(callrec, flags + ["--state", "\(dir)/b"], environment: remote, log: "\(dir)/b.log")
            defer { b.terminate() }
            #expect(try await Self.waitForAttached(sandbox, 3), "worker b never uploaded: \(Self.text("\(dir)/b.log").suffix(3000))")

            // The cut, while b holds jobs; a joins and must finish them once their leases run out.
            try host.cut()
            let cutAt = Date()
            let a = try startProcess(callrec, flags + ["--state", "\(dir)/a"], environment: environment, log: "\(dir)/a.log")
            defer { a.terminate() }
            let finished = try await waitForExit(a, upTo: 300)
            if !finished { a.terminate() }
            #expect(finished && [0, 1].contains(a.terminationStatus), "worker a: \(Self.text("\(dir)/a.log").suffix(3000))")
            #expect(b.isRunning, "the partitioned worker exited: \(Self.text("\(dir)/b.log").suffix(3000))")
            #expect(Self.text("\(dir)/b.log").contains("stopped them before it runs out"), "worker b did not stop its unrenewed jobs: \(Self.text("\(dir)/b.log").suffix(3000))")

            let store = try PostgresStore(url: server.url)
            try await withRunningStore(store) { store in
                let jobs = try await store.jobs(JobQuery(limit: 10_000))
                #expect(jobs.allSatisfy { $0.state == .completed || $0.state == .discarded }, "\(jobs.filter { $0.state != .completed }.map { "\($0.id) \($0.kind) \($0.state)" })")
                // b's jobs went back to the queue when their leases ran out, and a finished them.
                let rescued = jobs.filter { $0.rescueCount > 0 }
                #expect(!rescued.isEmpty, "no job of the partitioned worker was rescued")
                for job in rescued {
                    let after = (job.finalizedAt ?? .distantFuture).timeIntervalSince(cutAt)
                    print("partition: job \(job.id) (\(job.kind)) finished elsewhere \(String(format: "%.1f", after)) s after the cut")
                }
            }

            // The path comes back: b's late writes are refused by the fencing token, and it goes
            // on (here: finds the queue idle and ends) without a duplicate.
            try host.restore()
            let ended = try await waitForExit(b, upTo: 300)
            if !ended { b.terminate() }
            #expect(ended && [0, 1].contains(b.terminationStatus), "worker b after the partition: \(Self.text("\(dir)/b.log").suffix(3000))")
            try await withRunningStore(try PostgresStore(url: server.url)) { store in
                try await UploadProcessTests().checkExactlyOnce(sandbox, store: store, expectedOK: expected)
            }
        }
    }
}

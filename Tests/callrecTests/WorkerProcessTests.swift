import CallStore
import CallStorePostgres
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `callrec worker` as real processes: signals, `kill -9`, two workers on one PostgreSQL queue.
@Suite struct WorkerProcessTests {
    let callrec = callrecExecutable()
    /// The bench queue's enqueue and worker (`callrec-bench`: not in the product).
    let bench = callrecBenchExecutable()

    struct Event {
        var kind: Substring
        var job: Int64
        var attempt: Int
        var pid: Int32
        var nanos: Int64
        var token: Int64
    }

    func readTrace(_ path: String) -> [Event] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count == 6, let job = Int64(f[1]), let attempt = Int(f[2]), let pid = Int32(f[3]), let nanos = Int64(f[4]), let token = Int64(f[5]) else { return nil }
            return Event(kind: f[0], job: job, attempt: attempt, pid: pid, nanos: nanos, token: token)
        }
    }

    static func wallNanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    static let workerFlags = ["worker"]

    @Test func sigtermReleasesTheRunningJobWithoutUsingAnAttemptAndASecondSignalDoesNotWait() async throws {
        try await withTemporaryDirectory { dir in
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            let state = ["--state", "\(dir)/state"]
            let enqueue = try await runProcess(bench, ["bench-enqueue", "--count", "1", "--sleep-ms", "60000", "--trace", "\(dir)/trace"] + state, environment: environment)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")

            for (signals, grace) in [(1, "1"), (2, "120")] {
                let worker = try startProcess(bench, Self.workerFlags + ["--bench-slots", "2", "--shutdown-grace", grace, "--poll-interval", "0.2"] + state,
                                       environment: environment, log: "\(dir)/worker-\(signals).log")
                let startedBefore = readTrace("\(dir)/trace").count
                let deadline = ContinuousClock.now + .seconds(30)
                while readTrace("\(dir)/trace").count == startedBefore, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let clock = ContinuousClock(), sent = clock.now
                kill(worker.processIdentifier, SIGTERM)
                if signals == 2 {
                    // The second signal once the first was taken (two pending at once would be one).
                    let taken = try await waitForText("finishing running jobs", inFile: "\(dir)/worker-\(signals).log", timeout: .seconds(30))
                    #expect(taken, "the worker never logged the first signal")
                    kill(worker.processIdentifier, SIGTERM)
                }
                let exited = try await waitForExit(worker, upTo: 20)
                if !exited { worker.terminate() }
                #expect(exited, "worker did not stop after \(signals) signal(s)")
                #expect(worker.terminationStatus == 0)
                // One signal waits out the grace (1 s); two release at once, well before the 120 s grace.
                #expect(clock.now - sent < .seconds(60))

                let status = try await runProcess(callrec, ["status", "--json"] + state, environment: environment)
                let doc = try #require(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
                let jobs = try #require(doc["jobs"] as? [String: Int])
                #expect(jobs["available"] == 1 && jobs["running"] == 0, "\(jobs)")
                let list = try await runProcess(callrec, ["queue", "ls", "--json"] + state, environment: environment)
                let rows = try #require(try JSONSerialization.jsonObject(with: list.stdout) as? [[String: Any]])
                #expect(rows.first?["attempt"] as? Int == 0, "a released job keeps its attempts")
            }
        }
    }

    @Test func statusPrintsTheDocumentedShape() async throws {
        try await withTemporaryDirectory { dir in
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            let state = ["--state", "\(dir)/state"]
            _ = try await runProcess(bench, ["bench-enqueue", "--count", "3"] + state, environment: environment)
            let worker = try await runProcess(bench, Self.workerFlags + ["--bench-slots", "2", "--until-idle"] + state, environment: environment)
            #expect(worker.status == 0, "\(worker.stderr)")
            _ = try await runProcess(bench, ["bench-enqueue", "--count", "2"] + state, environment: environment)
            let status = try await runProcess(callrec, ["status", "--json"] + state, environment: environment)
            #expect(status.status == 0)
            let doc = try #require(try JSONSerialization.jsonObject(with: status.stdout) as? [String: Any])
            let recordings = try #require(doc["recordings"] as? [String: Int])
            #expect(Set(recordings.keys) == Set(RecordingState.allCases.map(\.rawValue)))
            let jobs = try #require(doc["jobs"] as? [String: Int])
            #expect(jobs == ["available": 2, "running": 0, "completed": 3, "discarded": 0, "cancelled": 0])
            #expect(doc["oldest_available_seconds"] is Double || doc["oldest_available_seconds"] is Int)
        }
    }

    /// `--metrics-port 0` serves the swift-metrics instruments in the Prometheus text format:
    /// the job counters by outcome, the duration and wait histograms, the queue gauges.
    @Test func metricsPortServesPrometheusText() async throws {
        try await withTemporaryDirectory { dir in
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = nil
            let state = ["--state", "\(dir)/state"]
            _ = try await runProcess(bench, ["bench-enqueue", "--count", "5"] + state, environment: environment)
            let log = "\(dir)/worker.log"
            let worker = try startProcess(bench, Self.workerFlags + ["--bench-slots", "2", "--metrics-port", "0", "--log-level", "info"] + state,
                                          environment: environment, log: log)
            defer { if worker.isRunning { worker.terminate() } }
            var url: String?
            var text = ""
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if url == nil, let logged = try? String(contentsOfFile: log, encoding: .utf8),
                   let range = logged.range(of: #"metrics served at http://[0-9.]+:[0-9]+/metrics"#, options: .regularExpression) {
                    url = String(logged[range].dropFirst("metrics served at ".count))
                }
                if let url, let (data, response) = try? await URLSession.shared.data(from: URL(string: url)!) {
                    #expect((response as? HTTPURLResponse)?.value(forHTTPHeaderField: "content-type")?.hasPrefix("text/plain") == true)
                    text = String(decoding: data, as: UTF8.self)
                    if text.contains(#"callrec_jobs_total{queue="bench",kind="noop",outcome="completed"} 5"#) { break }
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(url != nil, "no metrics address in the log: \(String(decoding: FileManager.default.contents(atPath: log) ?? Data(), as: UTF8.self).suffix(2000))")
            let lines = text.split(separator: "\n").map(String.init)
            func value(_ prefix: String) -> Double? {
                lines.first { $0.hasPrefix(prefix + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            #expect(value(#"callrec_jobs_total{queue="bench",kind="noop",outcome="completed"}"#) == 5, "\(text)")
            #expect(text.contains("# TYPE callrec_job_duration_seconds histogram"))
            #expect(value(#"callrec_job_duration_seconds_count{queue="bench",kind="noop"}"#) == 5)
            #expect(value(#"callrec_job_wait_seconds_count{queue="bench",kind="noop"}"#) == 5)
            #expect(lines.contains { $0.hasPrefix(#"callrec_job_duration_seconds_bucket{queue="bench",kind="noop",le="+Inf"} 5"#) })
            #expect(text.contains("# TYPE callrec_jobs gauge"))
            #expect(value(#"callrec_jobs{state="available"}"#) != nil)
            #expect(value("callrec_oldest_available_age_seconds") != nil)
            kill(worker.processIdentifier, SIGTERM)
            #expect(try await waitForExit(worker, upTo: 30))
        }
    }

    @Test func passwordsAreRefusedOnTheCommandLine() async throws {
        let result = try await runProcess(callrec, ["status", "--database", "postgres://u:hunter2@127.0.0.1:1/db"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("CALLREC_DATABASE"))
        #expect(!result.stderr.contains("hunter2"))
    }

    /// Two workers on one PostgreSQL queue; one is `kill -9`ed while it runs jobs. Every job
    /// completes, and no job ever ran concurrently with itself (the trace has the intervals).
    @Test(.enabled(if: TestPostgres.available, "PostgreSQL is not available"))
    func killNineOneOfTwoWorkersOnPostgres() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "chaos"))
        try await withTemporaryDirectory { dir in
            var environment = ProcessInfo.processInfo.environment
            environment["CALLREC_DATABASE"] = url
            let trace = "\(dir)/trace"
            let count = 40
            let enqueue = try await runProcess(bench, ["bench-enqueue", "--count", "\(count)", "--sleep-ms", "600", "--trace", trace, "--state", "\(dir)/s"], environment: environment)
            #expect(enqueue.status == 0, "\(enqueue.stderr)")
            let flags = Self.workerFlags + ["--bench-slots", "3", "--lease-ttl", "20", "--rescue-interval", "0.5", "--poll-interval", "0.2", "--until-idle"]
            // The victim starts first (on a busy machine a late starter could find the queue
            // drained); the survivor joins once the victim runs jobs; the victim dies holding one.
            let victim = try startProcess(bench, flags + ["--state", "\(dir)/a"], environment: environment, log: "\(dir)/a.log")
            let deadline = ContinuousClock.now + .seconds(120)
            var killedAt: Int64 = 0
            var joined: ChildProcess?
            while ContinuousClock.now < deadline {
                let events = readTrace(trace).filter { $0.pid == victim.processIdentifier }
                let open = Set(events.filter { $0.kind == "start" }.map(\.token)).subtracting(events.filter { $0.kind == "end" }.map(\.token))
                if !open.isEmpty {
                    if joined == nil {
                        joined = try startProcess(bench, flags + ["--state", "\(dir)/b"], environment: environment, log: "\(dir)/b.log")
                    } else if events.filter({ $0.kind == "end" }).count >= 1 || readTrace(trace).contains(where: { $0.pid != victim.processIdentifier }) {
                        kill(victim.processIdentifier, SIGKILL)
                        killedAt = Self.wallNanos()
                        break
                    }
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let survivorProcess = try #require(joined, "the victim never ran a job: \(String(decoding: FileManager.default.contents(atPath: "\(dir)/a.log") ?? Data(), as: UTF8.self).suffix(3000))")
            #expect(killedAt > 0, "the victim never held a job")
            _ = try await waitForExit(victim, upTo: 10)
            let survivor = survivorProcess
            let finished = try await waitForExit(survivor, upTo: 120)
            if !finished { survivor.terminate() }
            #expect(finished, "the surviving worker did not finish: \(String(decoding: FileManager.default.contents(atPath: "\(dir)/b.log") ?? Data(), as: UTF8.self).suffix(2000))")
            #expect(survivor.terminationStatus == 0)

            let store = try PostgresStore(url: url)
            let jobs = try await withRunningStore(store) { try await $0.jobs(JobQuery(queue: "bench", limit: 10_000)) }
            #expect(jobs.count == count)
            #expect(jobs.allSatisfy { $0.state == .completed }, "\(jobs.filter { $0.state != .completed }.map { "\($0.id) \($0.state)" })")
            #expect(jobs.contains { $0.rescueCount >= 1 }, "no job was held by the killed worker")

            // No job ran concurrently with itself: per job, every run ends before the next starts.
            let events = readTrace(trace)
            for (job, runs) in Dictionary(grouping: events, by: \.job) {
                let starts = runs.filter { $0.kind == "start" }.sorted { $0.nanos < $1.nanos }
                let ends = Dictionary(runs.filter { $0.kind == "end" }.map { ($0.token, $0.nanos) }, uniquingKeysWith: min)
                #expect(!ends.isEmpty, "job \(job) never finished")
                var previousEnd: Int64 = 0
                for start in starts {
                    #expect(start.nanos >= previousEnd, "job \(job) started again while it was still running")
                    // A run with no end was cut short by the kill.
                    let end = ends[start.token] ?? (start.pid == victim.processIdentifier ? killedAt : Int64.max)
                    #expect(end != Int64.max, "job \(job): a run of the surviving worker never ended")
                    previousEnd = end
                }
            }
        }
    }
}

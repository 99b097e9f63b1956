import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallPipeline
import CallStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

extension CallRecCommand {
    struct Reconcile: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find call logs deleted in Pipedrive and delete their recordings everywhere (plan only, unless --apply).",
            discussion: """
                Lists Pipedrive's call logs (20 tokens per 50) to find the call logs of uploaded \
                recordings that are missing, and confirms each with a GET (2 tokens): only a definite \
                404/410 counts. A listing gap, a 401/403, a timeout or a 5xx is never evidence, and a \
                pass that saw any API error deletes nothing. Before acting it checks that a known call \
                log is still listed and still answers 200 (the same account as before). More planned \
                deletions than --max-delete (default: 20 recordings or 5 % of the uploaded ones, \
                whichever is smaller, at least 1) are listed, then refused: the pass deletes nothing \
                and says the cap and how to go on (--max-delete N, or --force). Missing local files \
                and missing provider recordings are reported, never deleted. --apply runs the same \
                cascade as `callrec delete` for every planned recording; a call log callrec did not \
                create (the sidecar's call_log_id) is left and reported unless \
                --include-foreign-call-logs. Exit codes: 0 clean or done, 1 the pass was aborted or \
                refused or a deletion did not finish (an API that cannot be reached included), 2 usage \
                or configuration, including a credential an API refused (the message names the variable).
                """
        )

        @Flag(help: "Delete what the pass finds (otherwise only print the plan).")
        var apply = false

        @Option(help: "Abort when more recordings than this would be deleted (default: min(20, 5 % of the uploaded recordings), at least 1).")
        var maxDelete: Int?

        @Flag(help: "Go on beyond --max-delete, and when the listing shows none of the known call logs.")
        var force = false

        @Flag(help: "Delete call logs callrec did not create too (attached with the sidecar's call_log_id), with everything they hold.")
        var includeForeignCallLogs = false

        @Option(help: "Read the API variables from this file (KEY=VALUE lines) instead of the environment.")
        var config: String?

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if let maxDelete, maxDelete < 0 { throw ValidationError("--max-delete must not be negative") }
        }

        func run() async throws {
            let logger = global.makeLogger()
            let environment = try loadEnvironment(config: config)
            guard environment.pipedriveToken != nil else {
                throw ValidationError("PIPEDRIVE_API_TOKEN is not set: reconcile compares the ledger with Pipedrive")
            }
            let wiring = DeleteWiring(environment: environment, logger: logger)
            let store: any CallStore
            do {
                store = try await self.store.open(logger: logger)
            } catch {
                await wiring.shutdown()
                throw error
            }
            do {
                var options = Reconciler.Options()
                options.apply = apply
                options.maxDelete = maxDelete
                options.force = force
                options.includeForeignCallLogs = includeForeignCallLogs
                let refused = Mutex<APIError?>(nil)
                var report = try await Self.pass(store: store, wiring: wiring, options: options, logger: logger) { error in
                    refused.withLock { $0 = $0 ?? error }
                }
                var unfinished = 0
                var halted: JobFailure?
                if apply, report.abort == nil {
                    let due = try await store.queueStats().dueByQueue[JobQueue.delete] ?? 0
                    if due > 0 || report.totals.registered + report.totals.resumed > 0 {
                        halted = try await runDeleteQueue(store: store, handler: wiring.handler(store: self.store), logger: logger)
                    }
                    for index in report.recordings.indices {
                        guard let id = report.recordings[index].deletionID, report.recordings[index].action != "none",
                              let deletion = try await store.deletion(id: id) else { continue }
                        if deletion.finishedAt != nil {
                            report.recordings[index].result = "deleted"
                        } else {
                            unfinished += 1
                            let open = deletion.steps.filter { !$0.state.isSettled }
                            report.recordings[index].result = "not finished: " + open.map { "\($0.target) \($0.state.rawValue)\($0.detail.map { " (\($0))" } ?? "")" }.joined(separator: "; ")
                        }
                    }
                }
                let counters = await wiring.apis.pipedrive?.counters
                let pipedriveStop = await wiring.apis.pipedrive?.stoppedBy
                try? await store.close()
                await wiring.shutdown()
                try Self.print(report, counters: counters, json: global.json)
                // A refused credential (listing, confirming, the Telnyx inventory, a delete
                // step): exit 2, naming the variable; nothing is deleted on a pass that saw it.
                if let halted { try stopped(by: halted, left: "The deletions stay open: a later run goes on from the step each stopped at.") }
                if let refusal = pipedriveStop.flatMap({ $0.code == .credentialsRefused ? $0 : nil }) ?? refused.withLock({ $0 }) {
                    try stopped(by: JobFailure(.halt, code: refusal.code.rawValue, refusal.message), left: "Fix it and run reconcile again.")
                }
                if report.abort != nil || unfinished > 0 { throw ExitCode(ExitStatus.someFailed) }
            } catch {
                try? await store.close()
                await wiring.shutdown()
                throw error
            }
        }

        /// One pass with the clients of `wiring` (also what `worker --reconcile-every` runs).
        /// `refused` hears of a credential the Telnyx inventory met refused (a warning in the
        /// report; the Pipedrive client keeps its own).
        static func pass(store: any CallStore, wiring: DeleteWiring, options: Reconciler.Options, logger: Logger,
                         refused: (@Sendable (APIError) -> Void)? = nil) async throws -> ReconcileReport {
            var reconciler = Reconciler(store: store, directory: wiring.apis, planner: DeletionPlanner(store: store, actor: CallPipeline.Worker.defaultOwner()),
                                        options: options, logger: logger)
            if let telnyx = wiring.apis.telnyx {
                reconciler.providerInventory = {
                    do {
                        return Set(try await telnyx.allRecordings().map { $0.id.lowercased() })
                    } catch let error as APIError where error.code == .credentialsRefused {
                        refused?(error)
                        throw error
                    }
                }
            }
            return try await reconciler.run()
        }

        struct Document: Encodable {
            var report: ReconcileReport
            var apiRequests: Int?
            var pipedriveTokensCharged: Int?
            var rateLimited: Int?

            enum CodingKeys: String, CodingKey {
                case report, apiRequests = "api_requests", pipedriveTokensCharged = "pipedrive_tokens_charged", rateLimited = "rate_limited"
            }
        }

        static func print(_ report: ReconcileReport, counters: PipedriveLimiter.Counters?, json: Bool) throws {
            if json {
                try writeJSON(Document(report: report, apiRequests: counters?.requests, pipedriveTokensCharged: counters?.tokensSpent,
                                       rateLimited: counters?.rateLimited))
                return
            }
            let t = report.totals
            for line in report.recordings where !line.evidence.isEmpty || line.action != "none" || line.findings.contains(where: { $0.code == "listing_gap" || $0.code == "deletion_open" }) {
                Swift.print("\(line.action.padding(toLength: 12, withPad: " ", startingAt: 0)) \(line.path) (\(line.key.prefix(12))…)")
                for finding in line.findings { Swift.print("    \(finding.code): \(finding.detail)") }
                if !line.targets.isEmpty { Swift.print("    targets: \(line.targets.joined(separator: ", "))") }
                if let result = line.result { Swift.print("    result: \(result)") }
            }
            var local: [String: Int] = [:]
            for line in report.recordings {
                for finding in line.findings where ["local_file_missing", "spool_missing", "provider_recording_missing"].contains(finding.code) {
                    local[finding.code, default: 0] += 1
                }
            }
            for (code, count) in local.sorted(by: { $0.key < $1.key }) {
                Swift.print("reported only: \(count) recording(s) with \(code) (--json lists them)")
            }
            for warning in report.warnings { Swift.print("warning: \(warning)") }
            if let abort = report.abort {
                Swift.print("aborted (\(abort.code)): \(abort.message)")
            }
            Swift.print("\(report.outcome.rawValue): \(t.uploadedRecordings) uploaded recording(s), \(t.knownCallLogs) call log(s) known, \(t.listedCallLogs) listed in \(t.pages) page(s); \(t.candidates) missing from the listing, \(t.confirmedGone) confirmed gone, \(t.listingGaps) listing gap(s); \(t.plannedRecordings) recording(s) to delete (cap \(t.cap)); \(t.tokensSpent) Pipedrive tokens for the pass\(counters.map { ", \($0.tokensSpent) charged in all" } ?? "") in \(String(format: "%.1f", t.wallSeconds)) s")
        }
    }
}

extension CallRecCommand {
    /// Plumbing for bench/reconcile.sh: seeds a ledger of uploaded recordings and their call logs
    /// in a sandbox (through its seeding route: no tokens), then deletes some of those call logs
    /// through the API, behind callrec's back.
    struct BenchReconcileSeed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bench-reconcile-seed",
            abstract: "Seed a sandbox and a ledger for the reconcile benchmark.",
            shouldDisplay: false
        )

        @Option(help: "The sandbox's base URL (http://127.0.0.1:PORT).")
        var sandboxURL: String
        @Option(help: "Uploaded recordings (one call log each).")
        var recordings = 10_000
        @Option(help: "Of which this many call logs are deleted in the CRM.")
        var deleted = 100

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let logger = global.makeLogger()
            guard let token = ProcessInfo.processInfo.environment["PIPEDRIVE_API_TOKEN"] else { throw ValidationError("PIPEDRIVE_API_TOKEN is not set") }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(60))
            configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 8)
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                try await seed(token: token, http: http, logger: logger)
                try await http.shutdown()
            } catch {
                try? await http.shutdown()
                throw error
            }
        }

        func seed(token: String, http: HTTPClient, logger: Logger) async throws {
            let base = sandboxURL.hasSuffix("/") ? String(sandboxURL.dropLast()) : sandboxURL
            let keys = (0..<recordings).map { i in
                String(format: "%016llx%016llx%016llx%016llx", UInt64.random(in: 0...UInt64.max), UInt64.random(in: 0...UInt64.max),
                       UInt64.random(in: 0...UInt64.max), UInt64(i))
            }
            func callLog(_ key: String) -> String { "CA" + key.prefix(30) }
            func send(_ method: String, _ path: String, body: String?) async throws {
                var request = HTTPClientRequest(url: base + path)
                request.method = method == "DELETE" ? .DELETE : .POST
                request.headers.add(name: "x-api-token", value: token)
                request.headers.add(name: "x-sandbox-fault", value: "none")
                if let body {
                    request.headers.add(name: "content-type", value: "application/json")
                    request.body = .bytes(ByteBuffer(string: body))
                }
                while true {
                    let response = try await http.execute(request, timeout: .seconds(30))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    if response.status.code == 429 {  // the burst limit: wait for the window
                        try await Task.sleep(for: .seconds(Double(response.headers.first(name: "retry-after") ?? "") ?? 2))
                        continue
                    }
                    guard (200..<300).contains(Int(response.status.code)) else {
                        throw ValidationError("\(method) \(path): HTTP \(response.status.code)")
                    }
                    return
                }
            }
            // Call logs, 8 requests in flight (one per pooled connection).
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let key = keys[next]
                    next += 1
                    group.addTask { try await send("POST", "/_sandbox/pipedrive/callLogs", body: #"{"id": "\#(callLog(key))"}"#) }
                }
                while next < min(8, keys.count) { add() }
                while try await group.next() != nil {
                    if next < keys.count { add() }
                }
            }
            // The ledger: the source and one spool part per recording, in commits of 500.
            let fm = FileManager.default
            let sources = (self.store.state as NSString).appendingPathComponent("bench-sources")
            try fm.createDirectory(atPath: sources, withIntermediateDirectories: true)
            try await withStore(self.store, logger: logger, creating: true) { store in
                let spool = Spool(root: self.store.spoolDirectory)
                var ops: [LedgerOp] = []
                for (i, key) in keys.enumerated() {
                    let source = (sources as NSString).appendingPathComponent("call-\(i).wav")
                    _ = fm.createFile(atPath: source, contents: Data(key.utf8))
                    try fm.createDirectory(atPath: spool.directory(key: key), withIntermediateDirectories: true)
                    let part = spool.partPaths(key: key, count: 1)[0]
                    _ = fm.createFile(atPath: part, contents: Data(count: 16))
                    ops.append(.insertRecording(Recording(key: key, path: source, state: .uploaded, partCount: 1, seconds: 60)))
                    ops.append(.replaceParts(key: key, parts: [Part(recordingKey: key, index: 1, spoolPath: part, bytes: 16, seconds: 60, sha256: key,
                                                                    state: .attached, callLogID: callLog(key), callLogOrigin: .created,
                                                                    marker: "callrec:\(key.prefix(32)):p1", attachedAt: Date())]))
                    if ops.count >= 1000 {
                        try await store.commit(ops)
                        ops.removeAll()
                    }
                }
                if !ops.isEmpty { try await store.commit(ops) }
            }
            // Deleted in the CRM, behind callrec's back: evenly spread.
            let step = max(1, recordings / max(1, deleted))
            for i in stride(from: 0, to: recordings, by: step).prefix(deleted) {
                try await send("DELETE", "/v1/callLogs/\(callLog(keys[i]))", body: nil)
            }
            standardError("seeded \(recordings) uploaded recordings and call logs; deleted \(min(deleted, recordings)) call logs in the CRM")
        }
    }
}

import ArgumentParser
import AsyncHTTPClient
import CallApp
import CallJobs
import CallPipeline
import CallStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

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

    @OptionGroup var options: BenchOptions

    func run() async throws {
        let logger = options.makeLogger()
        guard let token = ProcessInfo.processInfo.environment["PIPEDRIVE_API_TOKEN"] else { throw ValidationError("PIPEDRIVE_API_TOKEN is not set") }
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(60))
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 8)
        try await withHTTPClient(HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)) { http in
            try await seed(token: token, http: http, logger: logger)
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
        let sources = (options.state as NSString).appendingPathComponent("bench-sources")
        try fm.createDirectory(atPath: sources, withIntermediateDirectories: true)
        try await options.settings.withStore(creating: true, logger: logger) { store in
            let spool = Spool(root: options.settings.spoolDirectory)
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

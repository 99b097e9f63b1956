import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallApp
import CallJobs
import Foundation
import Logging

/// Plumbing for bench/api.sh: drives the Pipedrive client alone (no audio, no store) so its
/// memory and pacing can be measured. Credentials and URLs come from the environment.
struct BenchAPI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-api",
        abstract: "Measure the API client against a (sandbox) server: upload one file, or N creates.",
        shouldDisplay: false
    )

    @Argument(help: "upload | creates")
    var mode: String

    @Argument(help: "The file to upload (upload mode).")
    var file: String?

    @Option(help: "The call log to attach the file to (upload mode).")
    var callLog: String?

    @Option(help: "How many call logs to create (creates mode).")
    var count = 1000

    @Option(help: "Concurrent requests (creates mode).")
    var concurrency = 4

    func run() async throws {
        let env = try APIClients.environment(config: nil)
        guard env.pipedriveToken != nil else { throw ValidationError("PIPEDRIVE_API_TOKEN is not set") }
        guard ["upload", "creates"].contains(mode) else { throw ValidationError("mode is upload or creates") }
        try await APIClients.with(environment: env, logger: Logger(label: "callrec.bench")) { clients in
            guard let client = clients.pipedrive else { throw ValidationError("PIPEDRIVE_API_TOKEN is not set") }
            try await measure(client)
        }
    }

    func measure(_ client: PipedriveClient) async throws {
        let clock = ContinuousClock(), start = clock.now
        switch mode {
        case "upload":
            guard let file, let callLog else { throw ValidationError("upload needs FILE and --call-log") }
            let outcome = try await client.uploadRecording(callLogId: callLog, path: file, filename: (file as NSString).lastPathComponent)
            let elapsed = clock.now - start
            let bytes = (try FileManager.default.attributesOfItem(atPath: file)[.size] as? NSNumber)?.doubleValue ?? 0
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("upload \(outcome) \(Int(bytes)) bytes in \(String(format: "%.3f", seconds)) s (\(String(format: "%.1f", bytes / seconds / 1_048_576)) MiB/s)")
        case "creates":
            let n = count
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = 0
                func add() {
                    let i = next
                    next += 1
                    group.addTask {
                        var draft = CallLogDraft(outcome: "connected", toPhoneNumber: "+1555000\(i)", startTime: "2026-11-20 10:00:00")
                        draft.endTime = "2026-11-20 10:01:00"
                        draft.subject = "bench \(i)"
                        _ = try await client.createCallLog(draft)
                    }
                }
                for _ in 0..<min(concurrency, n) { add() }
                while try await group.next() != nil { if next < n { add() } }
            }
            let elapsed = clock.now - start
            let counters = await client.counters
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("creates \(n) in \(String(format: "%.2f", seconds)) s; requests \(counters.requests); 429s \(counters.rateLimited); tokens \(counters.tokensSpent)")
        default:
            throw ValidationError("mode is upload or creates")
        }
    }
}

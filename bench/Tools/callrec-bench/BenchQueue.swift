import ArgumentParser
import CallApp
import CallJobs
import CallPipeline
import CallStore
import CallSupport
import Foundation

/// Hidden: fills the `bench` queue with no-op jobs for bench/queue.sh and the chaos tests
/// (`callrec-bench worker --bench-slots N` runs them).
struct BenchQueue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-enqueue",
        abstract: "Enqueue no-op jobs on the bench queue (benchmarks and tests).",
        shouldDisplay: false
    )

    @Option(help: "How many jobs.")
    var count: Int = 1000
    @Option(help: "Jobs per transaction.")
    var batch: Int = 500
    @Option(help: "Each job sleeps this long (milliseconds).")
    var sleepMs: Int = 0
    @Option(help: "Each job appends start/end lines to this file.")
    var trace: String?

    @OptionGroup var options: BenchOptions

    func run() async throws {
        let logger = options.makeLogger()
        let arguments = NoopJobHandler.Arguments(sleepMs: sleepMs > 0 ? sleepMs : nil, trace: trace)
        let job = try NewJob(queue: QueueName.bench, kind: NoopJobHandler.kind, arguments: arguments, maxAttempts: 5)
        let plain = sleepMs == 0 && trace == nil ? NewJob(queue: QueueName.bench, kind: NoopJobHandler.kind) : job
        let clock = ContinuousClock(), started = clock.now
        try await options.settings.withStore(creating: true, logger: logger) { store in
            var left = count
            while left > 0 {
                let n = min(batch, left)
                _ = try await store.enqueue(Array(repeating: plain, count: n))
                left -= n
            }
        }
        let seconds = (clock.now - started).seconds
        let line = String(format: "enqueued %d jobs in %.3f s (%.0f jobs/s)", count, seconds, Double(count) / seconds)
        if options.json {
            let document = ["count": Double(count), "seconds": seconds, "per_second": Double(count) / seconds]
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            FileHandle.standardOutput.write(try encoder.encode(document) + Data("\n".utf8))
        } else {
            print(line)
        }
    }
}

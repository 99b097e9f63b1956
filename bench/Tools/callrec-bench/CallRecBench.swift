import ArgumentParser
import CallApp
import CallJobs
import CallPipeline
import CallStore
import Foundation
import Logging

/// The benchmarks' plumbing (bench/api.sh, bench/queue.sh, bench/reconcile.sh) and the worker
/// process tests' no-op jobs: kept out of the `callrec` binary.
@main
struct CallRecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec-bench",
        abstract: "Benchmark plumbing for callrec (not for production use).",
        subcommands: [BenchAPI.self, BenchIndexDay.self, BenchMatch.self, BenchQueue.self, BenchReconcileSeed.self, BenchWorker.self, SeedSource.self, WatchOpens.self]
    )
}

/// `--state`, `--database`, `--log-level`, `--json`: as `callrec`'s.
struct BenchOptions: ParsableArguments {
    @Option(help: "State directory (as callrec's --state).")
    var state: String = ".callrec"
    @Option(help: "PostgreSQL URL (as callrec's --database; default CALLREC_DATABASE).")
    var database: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"
    @Flag(help: "Print one JSON document on stdout.")
    var json = false

    var settings: StoreSettings { StoreSettings(state: state, database: database) }

    func makeLogger() -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "callrec-bench")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

func standardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// `worker`: the queue `bench` served with no-op jobs (``NoopJobHandler``), by the same worker
/// service as `callrec worker` (signals, metrics, lease, rescue).
struct BenchWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run the bench queue's no-op jobs (SIGTERM/SIGINT drain; a second signal releases at once).")

    @Option(help: "Slots for the no-op jobs.")
    var benchSlots: Int = 1
    @Flag(help: "Exit once no job is due or running.")
    var untilIdle = false
    @Option(help: "Serve Prometheus metrics on this port (/metrics); 0 picks a free one and logs it.")
    var metricsPort: Int?
    @Option(help: "Address for --metrics-port.")
    var metricsAddress: String = "127.0.0.1"
    @Option(help: "Seconds a job's lease lasts without a heartbeat.")
    var leaseTtl: Double = 60
    @Option(help: "Seconds between rescues of jobs whose lease expired.")
    var rescueInterval: Double = 15
    @Option(help: "Seconds running jobs get to finish after SIGTERM before they are released.")
    var shutdownGrace: Double = 25
    @Option(help: "Seconds between looks for new work when no notification came.")
    var pollInterval: Double = 1

    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard benchSlots >= 1 else { throw ValidationError("--bench-slots must be at least 1") }
        guard leaseTtl >= 0.3, rescueInterval > 0, shutdownGrace >= 0, pollInterval > 0 else {
            throw ValidationError("--lease-ttl, --rescue-interval and --poll-interval must be positive")
        }
    }

    func run() async throws {
        let logger = options.makeLogger()
        var service = WorkerService(concurrency: 0, uploadSlots: 0, deleteSlots: 0)
        service.extraSlots = [QueueName.bench: benchSlots]
        service.extraHandlers = [NoopJobHandler()]
        service.leaseTTL = .seconds(leaseTtl)
        service.rescueInterval = .seconds(rescueInterval)
        service.shutdownGrace = .seconds(shutdownGrace)
        service.pollInterval = .seconds(pollInterval)
        service.untilIdle = untilIdle
        service.metrics = metricsPort.map { (address: metricsAddress, port: $0) }
        // No API: the bench queue needs none (and no spool prune).
        let environment = try APIClients.environment(config: nil, environment: [:])
        let outcome = try await service.run(store: options.settings, environment: environment, logger: logger,
            first: { logger.notice("\($0): finishing running jobs (send it again to release them at once)") },
            again: { logger.notice("\($0) again: releasing running jobs now") })
        let line = outcome.summary.outcomeNames.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        standardError("worker: \(line.isEmpty ? "no jobs run" : line)")
    }
}

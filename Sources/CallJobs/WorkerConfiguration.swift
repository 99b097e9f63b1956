import CallStore
public import CallSupport
import Foundation

/// How a ``Worker`` runs: which queues with how many slots, its leases, its maintenance
/// intervals, its retry policy, and whether it ends when idle. Its durations are measured on the
/// worker's clock.
public struct WorkerConfiguration: Sendable {
    /// Concurrency per queue; only these queues are served.
    public var slots: [QueueName: Int]
    /// Admission per queue: a queue named here claims only while its downstream queue holds
    /// fewer than the limit's live jobs (see ``Backpressure``).
    public var backpressure: [QueueName: Backpressure] = [:]
    public var leaseTTL: Duration = .seconds(60)
    /// Defaults to a third of the lease TTL.
    public var heartbeatInterval: Duration?
    public var rescueInterval: Duration = .seconds(15)
    public var pruneInterval: Duration = .seconds(300)
    public var completedRetention: Duration = .seconds(24 * 3600)
    public var finalRetention: Duration = .seconds(30 * 24 * 3600)
    public var shutdownGrace: Duration = .seconds(25)
    /// How often to look for work when no notification came (other processes' inserts on
    /// SQLite, jobs whose `run_at` came).
    public var pollInterval: Duration = .seconds(1)
    public var statsInterval: Duration = .seconds(15)
    /// Return once no job is due or running in the served queues (and no ``Worker/holdOpen()``
    /// hold is held).
    public var untilIdle = false
    /// With ``untilIdle``: a job that becomes due within this much time still counts (the CLI
    /// waits out short retry backoffs rather than leave work behind).
    public var idleHorizon: Duration = .zero
    public var backoff = Backoff()
    public var maxSnoozes = 50
    /// Lost leases after which a job is discarded as poison.
    public var poisonRescues = 3
    /// How long a queue stops claiming after a failed claim, or after one of its jobs met a
    /// full disk, by how many times in a row that happened.
    public var pauseBackoff = Backoff(base: .milliseconds(250), cap: .seconds(60))
    /// `host:pid:random:space` (``defaultOwner()``), written as `lease_owner`.
    public var owner = WorkerConfiguration.defaultOwner()

    public init(slots: [QueueName: Int]) {
        self.slots = slots
    }

    /// `host:pid:random:space`. `space` names the pid namespace of this boot (a hash of the boot
    /// id and the namespace's inode): only a worker in the same space may tell from the pid that
    /// the owner is gone — two containers or machines may share a hostname, never a space.
    public static func defaultOwner() -> String {
        let host = ProcessInfo.processInfo.hostName.replacingOccurrences(of: ":", with: "_")
        let random = UUID().uuidString.prefix(8).lowercased()
        return "\(host):\(getpid()):\(random):\(pidSpace)"
    }

    /// This process's pid namespace on this boot, as 8 hex digits ("-" when /proc cannot say).
    static let pidSpace: String = {
        guard let boot = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8),
              let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid") else { return "-" }
        // FNV-1a: stable across processes and runs (Hasher is seeded per process).
        var hash: UInt32 = 2_166_136_261
        for byte in (boot.trimmingCharacters(in: .whitespacesAndNewlines) + namespace).utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return String(format: "%08x", hash)
    }()
}

/// Admission for a queue that feeds another: claim only while the downstream queue holds fewer
/// than ``limit`` live jobs (available or running, due or not). This bounds what waits between
/// two stages — `callrec upload` keeps transcodes from running too far ahead of the uploads,
/// which bounds the spool. Due jobs it holds back do not keep a run that ends when idle going:
/// they cannot run until the downstream queue drains, and wait for the next run.
public struct Backpressure: Sendable, Hashable {
    public var downstream: QueueName
    public var limit: Int

    public init(downstream: QueueName, limit: Int) {
        self.downstream = downstream
        self.limit = limit
    }

    /// How many more jobs of the upstream queue may be claimed now.
    func admits(_ stats: QueueStats) -> Int {
        let live = stats.byQueue[downstream.rawValue].map { ($0[.available] ?? 0) + ($0[.running] ?? 0) } ?? 0
        return limit - live
    }
}

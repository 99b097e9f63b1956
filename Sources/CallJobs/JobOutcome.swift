public import CallStore

/// What became of a job a worker ran (the raw values are the names the CLI prints and the
/// `outcome` label of `callrec_jobs_total`).
public enum JobOutcome: String, Sendable, Hashable, CaseIterable, Codable, CodingKeyRepresentable {
    /// Done; the job is `completed`.
    case completed
    /// Failed; available again after the backoff (an attempt used).
    case retried
    /// Put off without using an attempt (a rate limit, a budget, a full disk).
    case snoozed
    /// Failed for good (permanent, out of attempts or snoozes, or poison after lost leases).
    case discarded
    /// Given back unfinished at a shutdown; available at once, no attempt used.
    case released
    /// Given back because this process cannot run it (``JobFailure/Disposition/halt``, or an
    /// unreachable service in a run that ends when idle); the worker stops (``WorkerStop``).
    case halted
    /// Its lease was lost (another worker owns the job now): nothing was recorded.
    case leaseLost = "lease_lost"
    /// The store could not record the outcome; the lease runs out and the rescuer returns it.
    case unrecorded
}

/// One job finished by a worker (``Worker/events()``), and when on the worker's clock.
public struct WorkerEvent<Instant: InstantProtocol>: Sendable {
    public var job: Job
    public var outcome: JobOutcome
    /// When the outcome was recorded.
    public var at: Instant

    public init(job: Job, outcome: JobOutcome, at: Instant) {
        self.job = job
        self.outcome = outcome
        self.at = at
    }
}

/// Why a worker stopped claiming before it was told to: the one stop record callers switch over
/// (the first one met is kept; the jobs wait, intact, for the next run).
public enum WorkerStop: Sendable, CustomStringConvertible {
    /// A job this process cannot run as configured (``JobFailure/Disposition/halt``: its
    /// credentials were refused). The CLI exits 2.
    case halted(JobFailure)
    /// A run that ends when idle could not reach a service a job needs
    /// (``JobFailure/Disposition/unavailable``). The CLI exits 3: the jobs wait.
    case unavailable(JobFailure)
    /// A run that ends when idle met a full disk (a job's, or the store's). The CLI exits 4.
    case diskFull(JobFailure)

    /// The failure that stopped the worker.
    public var failure: JobFailure {
        switch self {
        case .halted(let failure), .unavailable(let failure), .diskFull(let failure): failure
        }
    }

    public var description: String {
        switch self {
        case .halted(let failure): "halted (\(failure))"
        case .unavailable(let failure): "unavailable (\(failure))"
        case .diskFull(let failure): "disk full (\(failure))"
        }
    }
}

/// What a worker did.
public struct WorkerSummary: Sendable, CustomStringConvertible {
    public var outcomes: [JobOutcome: Int] = [:]
    /// Jobs returned (or discarded as poison) by the rescuer.
    public var rescued = 0
    /// Why the worker stopped before it was told to, if it did.
    public var stop: WorkerStop?
    /// Claims that failed (the store could not be read or written).
    public var claimFailures = 0

    public init() {}

    public subscript(outcome: JobOutcome) -> Int { outcomes[outcome] ?? 0 }

    /// The outcomes by their printed names (`completed`, `lease_lost`, …).
    public var outcomeNames: [String: Int] {
        Dictionary(uniqueKeysWithValues: outcomes.map { ($0.key.rawValue, $0.value) })
    }

    public var description: String {
        let counts = outcomes.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue)=\($0.value)" }.joined(separator: ",")
        return "outcomes [\(counts)], rescued \(rescued), claim failures \(claimFailures)\(stop.map { ", stopped: \($0)" } ?? "")"
    }
}

extension WorkerSummary {
    /// The failure of a stop that leaves the work for a run with a mended setting or a
    /// reachable service (``WorkerStop/halted(_:)``, ``WorkerStop/unavailable(_:)``); nil for
    /// none, or for a full disk (``WorkerStop/diskFull(_:)``).
    public var halted: JobFailure? {
        switch stop {
        case .halted(let failure), .unavailable(let failure): failure
        case .diskFull, nil: nil
        }
    }
}

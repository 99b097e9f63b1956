import CallStore
import CallSupport
import Metrics

/// The worker's swift-metrics instruments (served in Prometheus text by `--metrics-port`).
struct WorkerMetrics: Sendable {
    func outcome(queue: String, kind: String, outcome: String) {
        Counter(label: "callrec_jobs_total", dimensions: [("queue", queue), ("kind", kind), ("outcome", outcome)]).increment()
    }

    func ran(queue: String, kind: String, duration: Duration) {
        Metrics.Timer(label: "callrec_job_duration_seconds", dimensions: [("queue", queue), ("kind", kind)])
            .recordNanoseconds(Int64(duration.seconds * 1e9))
    }

    func waited(queue: String, kind: String, seconds: Double) {
        Metrics.Timer(label: "callrec_job_wait_seconds", dimensions: [("queue", queue), ("kind", kind)])
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    func rescued(requeued: Int, discarded: Int) {
        Counter(label: "callrec_jobs_rescued_total", dimensions: [("result", "requeued")]).increment(by: requeued)
        Counter(label: "callrec_jobs_rescued_total", dimensions: [("result", "discarded")]).increment(by: discarded)
    }

    func sample(_ stats: QueueStats) {
        for state in JobState.allCases {
            Gauge(label: "callrec_jobs", dimensions: [("state", state.rawValue)]).record(stats[state])
        }
        for queue in Set(stats.byQueue.keys).union(stats.dueByQueue.keys) {
            Gauge(label: "callrec_queue_depth", dimensions: [("queue", queue)]).record(stats.dueByQueue[queue] ?? 0)
        }
        Gauge(label: "callrec_oldest_available_age_seconds").record(stats.oldestDueSeconds ?? 0)
    }
}

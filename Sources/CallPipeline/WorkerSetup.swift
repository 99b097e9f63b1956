public import CallJobs
public import CallStore
import CallSupport

extension WorkerConfiguration {
    /// A run a person waits for (`upload`, `delete`, `reconcile --apply`): it ends once nothing
    /// is due, retries come sooner than in `callrec worker` (backoff from 1 s up to `retryCap`),
    /// a retry due within five minutes is waited for rather than left for the next run, and new
    /// work is looked for four times a second. `callrec worker` uses the plain defaults and its flags.
    public static func attended(slots: [QueueName: Int], retryCap: Duration) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(slots: slots)
        configuration.untilIdle = true
        configuration.backoff = Backoff(base: .seconds(1), cap: retryCap)
        configuration.idleHorizon = .seconds(300)
        configuration.pollInterval = .milliseconds(250)
        return configuration
    }
}

extension UploadJobHandler {
    /// A transcode's follow-up: its recording's upload job (what ``TranscodeJobHandler``'s
    /// `followUp` takes wherever transcodes and uploads run together).
    public static let followUp: @Sendable (String) -> [NewJob] = { key in (try? job(key: key)).map { [$0] } ?? [] }
}

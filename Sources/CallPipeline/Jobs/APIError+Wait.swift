import CallAPI
import CallJobs

extension APIError {
    /// A 429's or a spent budget's wait as a snooze: until the instant the error names, or
    /// `otherwise` when it names none.
    func wait(otherwise: Duration) -> JobFailure.Disposition {
        retryAt.map { .snoozeUntil($0) } ?? .snooze(otherwise)
    }

    /// How a job ends when the failure is about the API or this run's settings, not about the
    /// job (nil for the job's own failures). None of them uses up an attempt:
    /// - a 429 waits for its `Retry-After` (else a minute); a spent daily budget until its
    ///   reset; the abuse block for its cool-down;
    /// - a refused credential halts the run (exit 2): the job is available at once for a run
    ///   with the variable this error names mended;
    /// - an unreachable API halts a run that ends when idle (the job stays available) and is
    ///   retried after the backoff by a long-running worker.
    var runFailure: JobFailure? {
        switch code {
        case .rateLimited:
            JobFailure(wait(otherwise: .seconds(60)), code: code.rawValue, description)
        case .budgetSpent, .stopEverything:
            JobFailure(wait(otherwise: .seconds(3600)), code: code.rawValue, description)
        case .credentialsRefused:
            JobFailure(.halt, code: code.rawValue, message)
        case .unreachable:
            JobFailure(.unavailable, code: code.rawValue,
                       "\(api.title) cannot be reached at \(api.urlVariable ?? "its URL"): \(message); check the URL and the network, then run again")
        default:
            nil
        }
    }
}

import CallAPI

extension APIError {
    /// A 429's or a spent budget's wait as a snooze: until the instant the error names, or
    /// `otherwise` when it names none.
    func wait(otherwise: Duration) -> JobFailure.Disposition {
        retryAt.map { .snoozeUntil($0) } ?? .snooze(otherwise)
    }
}

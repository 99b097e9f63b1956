public import CallJobs

/// The queues callrec runs; each has its own slots in the worker so that CPU-bound work never
/// starves uploads or deletions.
extension QueueName {
    public static let transcode: QueueName = "transcode"
    public static let upload: QueueName = "upload"
    public static let delete: QueueName = "delete"
    public static let reconcile: QueueName = "reconcile"
    /// The no-op jobs of the benchmarks and tests.
    public static let bench: QueueName = "bench"
}

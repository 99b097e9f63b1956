public import CallAudio
import CallPipeline

/// `callrec probe`: one recording's facts and verdicts.
public struct ProbeEntry: Encodable, Sendable {
    public let path: String
    public let status: String
    public let error: Failure?
    public let warnings: [AudioWarning]
    public let input: AudioInfo?
    public let stats: SignalStats?

    public struct Failure: Encodable, Sendable {
        public let code: String
        public let message: String
    }

    public func encode(to encoder: any Encoder) throws {
        enum K: String, CodingKey { case path, status, error, warnings, input, stats }
        var c = encoder.container(keyedBy: K.self)
        try c.encode(path, forKey: .path)
        try c.encode(status, forKey: .status)
        try c.encode(error, forKey: .error)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(input, forKey: .input)
        try c.encode(stats, forKey: .stats)
    }

    /// Decodes and validates `files`, `jobs` at a time (order kept).
    public static func analyze(_ files: [String], jobs: Int, configuration: ValidationConfiguration) async -> [ProbeEntry] {
        let analyses = await CPUPoolShim(jobs: jobs).map(files) { AudioAnalyzer.analyze(path: $0, configuration: configuration) }
        return analyses.map { a in
            ProbeEntry(path: a.path, status: a.isAccepted ? "ok" : "failed",
                       error: a.error.map { .init(code: $0.code.description, message: $0.message) },
                       warnings: a.warnings, input: a.info, stats: a.stats)
        }
    }
}

/// Parallel map over blocking work for `probe` (order kept).
struct CPUPoolShim {
    let jobs: Int
    init(jobs: Int) { self.jobs = jobs }

    func map<T: Sendable>(_ items: [String], _ body: @escaping @Sendable (String) -> T) async -> [T] {
        let pool = CPUPool(threads: jobs)
        defer { pool.shutdown() }
        return await withTaskGroup(of: (Int, T).self) { group in
            for (i, item) in items.enumerated() {
                group.addTask { (i, (try? await pool.run { body(item) }) ?? body(item)) }
            }
            var out = [T?](repeating: nil, count: items.count)
            for await (i, value) in group { out[i] = value }
            return out.map { $0! }
        }
    }
}

public import CallPipeline
public import CallSandbox
public import CallStore
public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `20MiB`, `10MB`, `1048576`: a size in bytes (KiB/MiB/GiB, KB/MB/GB, B), or nil.
public func parseByteSize(_ text: String) -> Int? {
    let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
        return Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)).map { Int($0 * Double(scale)) }
    }
    return Int(trimmed)
}

extension JobState {
    /// `available,running`: the states named (comma-separated), or a usage error naming the one
    /// that is no state; nil for no text.
    public static func parseList(_ text: String?) throws -> Set<JobState>? {
        guard let text else { return nil }
        var states: Set<JobState> = []
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !name.isEmpty {
            guard let state = JobState(rawValue: name) else {
                throw AppError(.usage, "\(name) is not a job state (\(JobState.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            states.insert(state)
        }
        return states
    }
}

extension SandboxConfiguration {
    /// The environment's sandbox (``fromEnvironment()``) with the command line's settings, and the
    /// credentials made up for it; an impossible setting is a usage error.
    public static func serving(host: String, port: Int, state: String?, faults: String, burst: Int?, dailyTokens: Int?) throws
        -> (SandboxConfiguration, generated: [String]) {
        var (configuration, generated) = fromEnvironment()
        configuration.host = host
        configuration.port = port
        configuration.stateDirectory = state
        if let burst { configuration.burstPerTwoSeconds = burst }
        if let dailyTokens { configuration.dailyTokens = dailyTokens }
        do {
            configuration.faults = try FaultPlan(specification: faults)
            try configuration.validate()
        } catch let error as SandboxError {
            throw AppError(.usage, error.message)
        }
        return (configuration, generated)
    }
}

/// glibc gives each thread that allocates its own arena (up to 8 per core), and memory freed
/// in one is not reused by the others: with the CPU pool, the event loops and the
/// cooperative pool that held 6–7 MiB more at peak (bench/upload.sh: 66 → 59 MiB) for no
/// speed. Two arenas, unless MALLOC_ARENA_MAX says otherwise.
public func limitMallocArenas() {
    #if canImport(Glibc)
    // mallopt is not in Swift's Glibc module (malloc.h); M_ARENA_MAX is -8 in malloc.h.
    guard ProcessInfo.processInfo.environment["MALLOC_ARENA_MAX"] == nil,
          let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(symbol, to: Mallopt.self)(-8, 2)
    #endif
}

extension SpoolPrune {
    /// How long `upload` and `worker` keep an uploaded recording's MP3s: `flag`
    /// (`--spool-retention`), else CALLREC_SPOOL_RETENTION, else ``defaultRetention``; `keep` or
    /// `forever` is nil (keep them). Text that is no age is a usage error naming where it came from.
    public static func retention(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Duration? {
        let variable = environment["CALLREC_SPOOL_RETENTION"].flatMap { $0.isEmpty ? nil : $0 }
        guard let (text, name) = flag.map({ ($0, "--spool-retention") }) ?? variable.map({ ($0, "CALLREC_SPOOL_RETENTION") }) else {
            return defaultRetention
        }
        if ["keep", "forever"].contains(text.lowercased()) { return nil }
        guard let age = parseAge(text), age >= .zero else {
            throw AppError(.usage, "\(name) \(text) is not an age (30d, 36h, 90m, 30s or plain seconds) or keep")
        }
        return age
    }
}

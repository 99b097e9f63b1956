public import Foundation

/// A fresh temporary directory, removed after `body`.
public func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let path = NSTemporaryDirectory() + "callrec-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { removeTemporaryDirectory(path) }
    return try await body(path)
}

/// Removes a test's directory. A process the test has just stopped may still be writing into it
/// (a worker's last log lines, a sandbox's state), and the removal then fails on a directory that
/// is no longer empty: it is tried again in the background until it goes (for a minute at most).
private func removeTemporaryDirectory(_ path: String) {
    let files = FileManager.default
    if (try? files.removeItem(atPath: path)) != nil, !files.fileExists(atPath: path) { return }
    Task.detached {
        let deadline = ContinuousClock.now + .seconds(60)
        while FileManager.default.fileExists(atPath: path), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(200))
            try? FileManager.default.removeItem(atPath: path)
        }
    }
}

/// Result of running a program.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: Data
    public let stderr: String
}

/// Runs `executable` with `arguments`, collecting its output. The wait happens on a thread of its
/// own: a test that waited on a cooperative thread for a run of a minute took one of the two this
/// machine has from every other test (a run's poller starved until the run it watched had ended).
/// At most ``ProcessSlots/limit`` run at once (the others wait their turn without holding a
/// thread): with every test of the suite starting its run at the same moment, thirty `callrec`
/// processes shared two cores and the whole suite stalled for half a minute.
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> ProcessResult {
    await ProcessSlots.shared.acquire()
    let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<ProcessResult, any Error>, Never>) in
        Thread { continuation.resume(returning: Result { try runProcessBlocking(executable, arguments, environment: environment) }) }.start()
    }
    await ProcessSlots.shared.release()
    return try result.get()
}

/// The turns of ``runProcess(_:_:environment:)``: a counting semaphore whose waiters suspend.
public actor ProcessSlots {
    public static let shared = ProcessSlots(limit: max(3, ProcessInfo.processInfo.activeProcessorCount + 1))

    public nonisolated let limit: Int
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(limit: Int) {
        self.limit = limit
        free = limit
    }

    public func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    public func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}

/// `runProcess` for synchronous callers (short probes only: it blocks the calling thread).
public func runProcessBlocking(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    let process = try ChildProcess(executable, arguments, environment: environment, stdout: .pipe, stderr: .pipe)
    // Read both pipes concurrently so a chatty child cannot block on a full pipe.
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = process.standardError!.readDataToEndOfFile() }
    reader.start()
    let outData = process.standardOutput!.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return ProcessResult(status: process.terminationStatus, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
}

/// The path of a program on PATH, if installed (ffmpeg, mp3val …).
public func which(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// Frames an independent decoder (ffmpeg) gets out of an audio file: decoded to s16le and
/// counted. Nil when ffmpeg is not installed.
public func ffmpegDecodedFrames(_ path: String, channels: Int) throws -> Int64? {
    guard let ffmpeg = which("ffmpeg") else {
        // On a developer machine without ffmpeg the independent check is skipped; CI installs it
        // (scripts/setup.sh --test), so there a missing ffmpeg is an error, not a silent pass.
        if ProcessInfo.processInfo.environment["CI"] != nil { throw TestAudioError("ffmpeg is required under CI") }
        return nil
    }
    let result = try runProcessBlocking(ffmpeg, ["-v", "error", "-i", path, "-f", "s16le", "-acodec", "pcm_s16le", "-"])
    guard result.status == 0 else { throw TestAudioError("ffmpeg failed on \(path): \(result.stderr)") }
    return Int64(result.stdout.count / 2 / channels)
}

/// The repository root (the directory holding Package.swift), found from this file's path.
public func repositoryRoot(_ file: String = #filePath) -> String {
    var url = URL(fileURLWithPath: file).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        url.deleteLastPathComponent()
    }
    return FileManager.default.currentDirectoryPath
}

/// The built `callrec` executable, next to the test bundle.
public func callrecExecutable() -> String { builtExecutable("callrec") }

/// The built `callrec-bench` executable (bench/Tools/callrec-bench: the benchmarks' plumbing, the
/// `bench` queue's no-op jobs), next to the test bundle.
public func callrecBenchExecutable() -> String { builtExecutable("callrec-bench") }

/// The built `callrec-pbx-sim` executable (bench/Tools/pbx-sim: PBX recording trees and CDRs
/// written from a ground truth it prints as a manifest), next to the test bundle.
public func pbxSimExecutable() -> String { builtExecutable("callrec-pbx-sim") }

/// The built product `name`, next to the test bundle (else under .build/debug).
func builtExecutable(_ name: String) -> String {
    let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [here, here.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent(name).path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return repositoryRoot() + "/.build/debug/" + name
}

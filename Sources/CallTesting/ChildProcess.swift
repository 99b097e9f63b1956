public import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process started with `posix_spawn`, for the tests that run the built binary.
///
/// Not Foundation's `Process`: on Linux its `run()` copies each `/proc/self/fd` entry's whole
/// 256-byte `d_name` and reads past the end of glibc's readdir buffer, so a test process with
/// many descriptors open crashed with SIGSEGV now and then (swift-corelibs-foundation PR 5472;
/// project CI died of it). This one closes the inherited descriptors with
/// `posix_spawn_file_actions_addclosefrom_np` and makes its own pipes close-on-exec, so a
/// child never holds another test's pipe open.
///
/// The members a test uses keep `Process`'s names.
public final class ChildProcess: @unchecked Sendable {
    /// Where the child's standard input comes from.
    public enum Input: Sendable {
        case null
        /// A pipe; the test writes to ``standardInput`` (closing it is the child's end of file).
        case pipe
    }

    /// Where one of the child's output streams goes.
    public enum Output: Sendable {
        case null
        /// A pipe; the test reads ``standardOutput`` / ``standardError``.
        case pipe
        /// Appended to the file at this path (created when missing).
        case append(String)
        /// Standard error only: wherever standard output goes.
        case standardOutput
    }

    public enum TerminationReason: Sendable { case exit, uncaughtSignal }

    public let processIdentifier: Int32
    /// The write end of the child's standard input, with `.pipe`.
    public let standardInput: FileHandle?
    /// The read end of the child's standard output, with `.pipe`.
    public let standardOutput: FileHandle?
    /// The read end of the child's standard error, with `.pipe`.
    public let standardError: FileHandle?

    private let lock = NSLock()
    private var waitStatus: Int32?

    /// Starts `executable` (a path) with `arguments`; `environment` nil inherits the test's.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                stdin: Input = .null, stdout: Output = .null, stderr: Output = .null) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var parentEnds: [Int32] = [], childEnds: [Int32] = []
        defer { for fd in childEnds { Glibc.close(fd) } }
        func pipe() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard Glibc.pipe(&fds) == 0 else {
                for fd in parentEnds { Glibc.close(fd) }
                throw TestAudioError("pipe: \(String(cString: strerror(errno)))")
            }
            // (pipe2 is not in Swift's Glibc module; the spawns here close what they inherit.)
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return (fds[0], fds[1])
        }

        var input: FileHandle?
        switch stdin {
        case .null: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .pipe:
            let ends = try pipe()
            posix_spawn_file_actions_adddup2(&actions, ends.read, 0)
            childEnds.append(ends.read); parentEnds.append(ends.write)
            input = FileHandle(fileDescriptor: ends.write, closeOnDealloc: true)
        }
        func route(_ output: Output, to target: Int32) throws -> FileHandle? {
            switch output {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case let .append(path): posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .standardOutput: posix_spawn_file_actions_adddup2(&actions, 1, target)
            case .pipe:
                let ends = try pipe()
                posix_spawn_file_actions_adddup2(&actions, ends.write, target)
                childEnds.append(ends.write); parentEnds.append(ends.read)
                return FileHandle(fileDescriptor: ends.read, closeOnDealloc: true)
            }
            return nil
        }
        let output = try route(stdout, to: 1)
        let error = try route(stderr, to: 2)
        if let closeFrom = ChildProcess.addCloseFrom { _ = closeFrom(&actions, 3) }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group, as Process did: a ^C at the test's terminal is the test's.
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))

        let environment = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, &argv, &envp)
        guard status == 0 else {
            for fd in parentEnds { Glibc.close(fd) }
            throw TestAudioError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        processIdentifier = pid
        standardInput = input
        standardOutput = output
        standardError = error
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module
    /// does not declare.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// The raw `waitpid` status once the child has ended (reaping it), nil while it runs.
    private func poll() -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let waitStatus { return waitStatus }
        var status: Int32 = 0
        let result = waitpid(processIdentifier, &status, WNOHANG)
        if result == processIdentifier { waitStatus = status }
        return waitStatus
    }

    public var isRunning: Bool { poll() == nil }

    /// Blocks the calling thread until the child ends (call it from a thread of its own, or
    /// where the child is known to be ending).
    public func waitUntilExit() {
        while poll() == nil { usleep(2000) }
    }

    /// The exit status, or the signal that ended it (as Process had it). Waits for the end.
    public var terminationStatus: Int32 {
        waitUntilExit()
        let status = poll()!
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : status & 0x7F
    }

    public var terminationReason: TerminationReason {
        waitUntilExit()
        return poll()! & 0x7F == 0 ? .exit : .uncaughtSignal
    }

    /// SIGTERM.
    public func terminate() { signal(SIGTERM) }
    /// SIGINT.
    public func interrupt() { signal(SIGINT) }
    /// SIGKILL.
    public func kill() { signal(SIGKILL) }

    /// Sends `number` unless the child has been reaped (its pid may be another process's now).
    public func signal(_ number: Int32) {
        lock.lock()
        defer { lock.unlock() }
        if waitStatus == nil { Glibc.kill(processIdentifier, number) }
    }
}

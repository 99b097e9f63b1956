import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a running sandbox can be reached, as it publishes it in its state directory
/// (`serving.json`, readable by its owner only: it holds the credentials).
public struct SandboxAddress: Sendable, Codable, Equatable {
    /// `http://127.0.0.1:PORT` (append `/v1`, `/v2`, or nothing for VoipNow).
    public var url: String
    /// The process that serves it.
    public var pid: Int32
    public var pipedriveToken: String
    public var telnyxKey: String
    public var voipnowToken: String

    public init(url: String, pid: Int32, pipedriveToken: String, telnyxKey: String, voipnowToken: String) {
        self.url = url
        self.pid = pid
        self.pipedriveToken = pipedriveToken
        self.telnyxKey = telnyxKey
        self.voipnowToken = voipnowToken
    }

    enum CodingKeys: String, CodingKey {
        case url, pid
        case pipedriveToken = "pipedrive_token"
        case telnyxKey = "telnyx_key"
        case voipnowToken = "voipnow_token"
    }

    /// The address of the sandbox that serves `directory` now, or nil when none does (no lock
    /// held on it, or its address not published yet, or left behind by a process that died).
    public static func serving(_ directory: String) -> SandboxAddress? {
        let files = SandboxFiles(root: directory, persistent: true)
        guard SandboxLock.isHeld(files.serveLock), let data = FileManager.default.contents(atPath: files.addressFile),
              let address = try? JSONDecoder().decode(SandboxAddress.self, from: data), processExists(address.pid)
        else { return nil }
        return address
    }
}

/// A sandbox with a state directory holds it alone: two of them on one snapshot would each write
/// their own state over the other's (the last write wins and call logs vanish). The claim is an
/// exclusive `flock` on `serve.lock`, which the kernel releases when the process ends however it
/// ends; while it serves, the sandbox publishes its ``SandboxAddress`` next to it.
final class SandboxClaim: Sendable {
    private let files: SandboxFiles
    private let lock: SandboxLock

    /// Takes the directory.
    /// - Throws: ``SandboxError`` `.stateInUse` naming the process that serves it (and where),
    ///   or `.stateUnreadable` when the lock file cannot be made.
    init(files: SandboxFiles) throws {
        self.files = files
        do {
            try FileManager.default.createDirectory(atPath: files.root, withIntermediateDirectories: true)
        } catch {
            throw SandboxError(.stateUnreadable, "cannot create the sandbox state directory \(files.root): \(error.localizedDescription)")
        }
        // A run checking whether a sandbox serves here holds the lock shared for an instant.
        var lock = try SandboxLock(files.serveLock, exclusive: true)
        for _ in 0..<10 where lock == nil {
            usleep(10_000)
            lock = try SandboxLock(files.serveLock, exclusive: true)
        }
        guard let lock else { throw Self.inUse(files.root) }
        self.lock = lock
    }

    /// The error for a directory another sandbox serves.
    static func inUse(_ root: String) -> SandboxError {
        // Its address appears once it listens; a moment's wait names it in the message.
        let deadline = ContinuousClock.now + .seconds(2)
        var address = SandboxAddress.serving(root)
        while address == nil, ContinuousClock.now < deadline {
            usleep(20_000)
            address = SandboxAddress.serving(root)
        }
        let who = address.map { "process \($0.pid) serves it at \($0.url)" } ?? "another sandbox serves it"
        return SandboxError(.stateInUse, "the sandbox state \(root) is in use: \(who). Use that sandbox, stop it first, or give another --state.")
    }

    /// Writes the address (owner-only: it holds the credentials), replacing any left behind.
    func publish(_ address: SandboxAddress) throws {
        let data = try JSONEncoder().encode(address)
        let temporary = files.addressFile + ".\(getpid()).tmp"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SandboxError(.stateUnreadable, "cannot write \(files.addressFile): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count, rename(temporary, files.addressFile) == 0 else {
            unlink(temporary)
            throw SandboxError(.stateUnreadable, "cannot write \(files.addressFile)")
        }
    }

    /// Removes the address and lets the directory go.
    func release() {
        unlink(files.addressFile)
        lock.release()
    }
}

/// The runs that use the sandbox of one state directory (`upload --sandbox`): each holds a shared
/// `flock` on `use.lock` while it runs. The run that serves the sandbox waits, once its own work
/// is done, until it can take that lock exclusively, that is until no other run uses it, and
/// stops only then.
public final class SandboxUse: Sendable {
    public let directory: String
    private let lock: Mutex<SandboxLock?>

    /// Joins the users of `directory` (created when missing).
    /// - Throws: ``SandboxError`` `.stateUnreadable` when the lock file cannot be made, or
    ///   `.stateInUse` when a sandbox stopping there does not let go within `timeout`.
    public init(directory: String, timeout: Duration = .seconds(30)) async throws {
        self.directory = directory
        let files = SandboxFiles(root: directory, persistent: true)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SandboxError(.stateUnreadable, "cannot create the sandbox state directory \(directory): \(error.localizedDescription)")
        }
        // A sandbox that is stopping holds the lock exclusively for a moment.
        let deadline = ContinuousClock.now + timeout
        while true {
            if let held = try SandboxLock(files.useLock, exclusive: false) {
                lock = Mutex(held)
                return
            }
            guard ContinuousClock.now < deadline else {
                throw SandboxError(.stateInUse, "the sandbox state \(directory) is held by a sandbox that does not stop")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until this is the only run using the sandbox (checking every `interval`); calls
    /// `waiting` once when it has to wait. Holds the lock exclusively from then on, until
    /// ``end()``: a run that comes meanwhile waits for the sandbox to stop and serves its own.
    /// - Throws: `CancellationError` when the task is cancelled (the lock is then given up).
    public func waitUntilAlone(interval: Duration = .milliseconds(100), waiting: () -> Void) async throws {
        let path = SandboxFiles(root: directory, persistent: true).useLock
        var told = false
        while true {
            // Converting the shared lock is not atomic (flock(2)): give it up and ask for the
            // exclusive one instead; others joining meanwhile keep it from being granted.
            let exclusive: SandboxLock? = try lock.withLock { held in
                held?.release()
                held = nil
                return try SandboxLock(path, exclusive: true)
            }
            if let exclusive {
                lock.withLock { $0 = exclusive }
                return
            }
            if !told {
                told = true
                waiting()
            }
            try await Task.sleep(for: interval)
        }
    }

    /// Leaves (releases the lock). Ending twice is harmless.
    public func end() {
        lock.withLock { held in
            held?.release()
            held = nil
        }
    }

    deinit { end() }
}

/// One `flock(2)` on a file, taken without waiting.
final class SandboxLock: Sendable {
    private let descriptor: Mutex<Int32>

    /// Nil when another open file holds a conflicting lock.
    init?(_ path: String, exclusive: Bool) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SandboxError(.stateUnreadable, "cannot open \(path): \(String(cString: strerror(errno)))") }
        var result: Int32
        repeat { result = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) } while result != 0 && errno == EINTR
        guard result == 0 else {
            let failure = errno
            close(fd)
            if failure == EAGAIN { return nil }  // EWOULDBLOCK: held elsewhere
            throw SandboxError(.stateUnreadable, "cannot lock \(path): \(String(cString: strerror(failure)))")
        }
        descriptor = Mutex(fd)
    }

    /// Whether some process holds an exclusive lock on `path` now.
    static func isHeld(_ path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        guard let probe = try? SandboxLock(path, exclusive: false) else { return true }
        probe.release()
        return false
    }

    func release() {
        descriptor.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    deinit { release() }
}

/// Whether a process with this id exists (signal 0 checks without sending anything).
func processExists(_ pid: Int32) -> Bool {
    pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
}

import Foundation

/// Small tmpfs file systems for full-disk tests, mounted in a private mount namespace so that
/// nothing outside the test sees them and nothing is left mounted when the test (or the test
/// process) ends.
///
/// A holder process (`unshare --mount`) mounts each tmpfs and then waits on its stdin; commands
/// run inside its namespace through `nsenter`, and the test reaches the files through
/// `/proc/<holder>/root` (``outside(_:)``). Needs root (CAP_SYS_ADMIN), `unshare` and `nsenter`:
/// check ``isAvailable`` and skip visibly (`.enabled(if: SmallDisk.isAvailable)`) where they are
/// missing.
public final class SmallDisk: @unchecked Sendable {
    private let holder: ChildProcess
    /// The mount points (paths inside the namespace), with their sizes in bytes.
    public let mounts: [String: Int]

    /// Whether tmpfs can be mounted in a private namespace here (root, util-linux).
    public static let isAvailable: Bool = {
        guard getuid() == 0, let unshare = which("unshare"), which("nsenter") != nil else { return false }
        let dir = NSTemporaryDirectory() + "callrec-smalldisk-probe-" + UUID().uuidString
        guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { return false }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let probe = try? runProcessBlocking(unshare, ["--mount", "--propagation", "private", "--", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir])
        return probe?.status == 0
    }()

    /// Mounts a tmpfs of `bytes` at each path (directories that exist, or are made first), the
    /// shorter paths first: a mount may lie inside another (the spool on a disk of its own
    /// inside the state's).
    public init(_ mounts: [String: Int]) throws {
        guard let unshare = which("unshare") else { throw TestAudioError("unshare is not installed") }
        for path in mounts.keys { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        self.mounts = mounts
        let script = mounts.sorted { $0.key < $1.key }
            .map { "mkdir -p '\($0.key)' && mount -t tmpfs -o size=\($0.value) tmpfs '\($0.key)'" }
            .joined(separator: " && ") + " && echo ready && exec cat >/dev/null"
        holder = try ChildProcess(unshare, ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script],
                                  stdin: .pipe, stdout: .pipe, stderr: .standardOutput)
        let line = holder.standardOutput!.availableData
        guard String(decoding: line, as: UTF8.self).hasPrefix("ready") else {
            holder.terminate()
            throw TestAudioError("cannot mount tmpfs: \(String(decoding: line, as: UTF8.self))")
        }
    }

    deinit { close() }

    /// Ends the holder: the mounts go with its namespace.
    public func close() {
        guard holder.isRunning else { return }
        try? holder.standardInput!.close()
        holder.waitUntilExit()
    }

    /// `path` (inside the namespace) as the test process reaches it. (SQLite resolves the
    /// `/proc/<pid>/root` link to the test's own root: open a copy of a database instead.)
    public func outside(_ path: String) -> String { "/proc/\(holder.processIdentifier)/root" + path }

    /// Runs `executable` inside the namespace, collecting its output.
    public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        try runProcessBlocking(which("nsenter") ?? "/usr/bin/nsenter",
                       ["--target", "\(holder.processIdentifier)", "--mount", "--", executable] + arguments, environment: environment)
    }

    /// Starts `executable` inside the namespace in the background, its output appended to `log`
    /// (a path outside).
    public func start(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws -> ChildProcess {
        try startProcess(which("nsenter") ?? "/usr/bin/nsenter",
                         ["--target", "\(holder.processIdentifier)", "--mount", "--", executable] + arguments,
                         environment: environment, log: log)
    }

    /// Bytes still free on the file system holding `path` (inside the namespace).
    public func available(_ path: String) -> Int64 {
        var info = statvfs()
        guard statvfs(outside(path), &info) == 0 else { return -1 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    /// Fills the file system holding `path` with a ballast file until at most `bytes` are free
    /// (rounded down to the file system's 4 KiB pages). Returns the ballast's path (inside).
    @discardableResult
    public func fill(_ path: String, leaving bytes: Int64 = 0) throws -> String {
        let ballast = path + "/ballast-" + UUID().uuidString.prefix(8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outside(ballast)).creatingFile())
        defer { try? handle.close() }
        let page = Data(repeating: 0x55, count: 4096)
        while available(path) > bytes {
            do { try handle.write(contentsOf: page) } catch { break }
        }
        return ballast
    }

    /// Removes a ballast file made by ``fill(_:leaving:)``.
    public func free(_ ballast: String) throws {
        try FileManager.default.removeItem(atPath: outside(ballast))
    }
}

extension URL {
    /// The URL, after making an empty file there.
    fileprivate func creatingFile() throws -> URL {
        guard FileManager.default.createFile(atPath: path, contents: nil) else { throw TestAudioError("cannot create \(path)") }
        return self
    }
}

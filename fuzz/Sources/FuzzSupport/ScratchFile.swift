#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one file a harness whose parser reads a path writes each input to: made once per process
/// (in /dev/shm when there is one, so no disk is touched), rewritten for every input, removed
/// when the process exits.
public enum ScratchFile {
    nonisolated(unsafe) private static var made: String?

    /// The file's path, holding `bytes` (and nothing else).
    public static func holding(_ bytes: UnsafeRawBufferPointer) -> String {
        let path = made ?? make()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        check(fd >= 0, "cannot write the scratch file \(path)")
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0, errno == EINTR { continue }
            check(n > 0, "cannot write the scratch file \(path)")
            done += n
        }
        close(fd)
        return path
    }

    private static func make() -> String {
        var directory = "/dev/shm"
        if access(directory, W_OK) != 0 { directory = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp" }
        let path = "\(directory)/callrec-fuzz-\(getpid())"
        made = path
        atexit { if let path = ScratchFile.made { unlink(path) } }
        return path
    }
}

/// An input split into the pieces a harness needs (a leading selector byte, the rest).
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer

    public init(_ data: UnsafePointer<UInt8>?, _ size: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    }

    /// The first byte (0 for an empty input), and the bytes after it.
    public var selector: (UInt8, UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return (0, bytes) }
        return (first, UnsafeRawBufferPointer(rebasing: bytes[1...]))
    }
}

/// Stops the harness with `message` when `condition` fails: libFuzzer keeps the input as a crash.
/// (`precondition` drops its message in an optimised build.)
public func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

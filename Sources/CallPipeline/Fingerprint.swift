import CallSupport
import Crypto
public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
// On Linux the clang importer may attribute `stat` and its fields to Dispatch's C module, which
// read <sys/stat.h> first; MemberImportVisibility then wants that module imported by name.
#if canImport(CDispatch)
import CDispatch
#endif

/// The recording key: SHA-256 of the source file's bytes (DESIGN §3), lowercase hex.
public enum Fingerprint {
    public static func sha256(ofFile path: String) throws -> String {
        try stamped(ofFile: path).key
    }

    /// The key, and the file's ``FileStamp`` when the bytes hashed are the bytes the stamp
    /// stands for: unchanged while they were read, and last changed well before (a file still
    /// being written gets no stamp).
    public static func stamped(ofFile path: String, now: Date = Date()) throws -> (key: String, stamp: FileStamp?) {
        let read = try hashOnce(path, now: now)
        return (read.key, read.trusted)
    }

    /// One read of the file: its key, the stamp it had when the read began, whether that stamp
    /// still held at the end (else the file changed while it was read), and the stamp when it
    /// can be trusted for a later read (held, and the file had settled by `now`, when the read
    /// began: timestamps are coarse, so a write in the same tick as the stamp would not show).
    static func hashOnce(_ path: String, now started: Date) throws -> (key: String, held: Bool, trusted: FileStamp?) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ScanError(path: path, reason: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let before = FileStamp(fd: fd)
        var hash = SHA256()
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw ScanError(path: path, reason: "cannot read: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            hash.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
        }
        let held = before != nil && before == FileStamp(fd: fd)
        let settled = before.map { started.timeIntervalSince1970 - $0.changedAt >= FileStamp.settleSeconds } ?? false
        return (lowercaseHex(hash.finalize()), held, held && settled ? before : nil)
    }

}

/// Which file, and which version of it: device, inode, size and the change times. Any write
/// moves the inode's change time (`ctime`), which no one can set back, so an equal stamp means
/// the same bytes — what git and rsync rely on — provided the file had settled when stamped
/// (timestamps are coarse: a write in the same tick as the stamp would not show).
public struct FileStamp: Sendable, Hashable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64
    var changed: Int64

    /// How long before the stamp the file must have stopped changing.
    static let settleSeconds = 2.0

    var changedAt: Double { Double(changed) / 1e9 }
    var modifiedAt: Double { Double(modified) / 1e9 }

    init?(fd: Int32) {
        var s = stat()
        guard fstat(fd, &s) == 0 else { return nil }
        self.init(s)
    }

    /// The stamp of the file at `path` now (nil when it cannot be read).
    public init?(path: String) {
        var s = stat()
        guard stat(path, &s) == 0 else { return nil }
        self.init(s)
    }

    private init(_ s: stat) {
        device = UInt64(s.st_dev)
        inode = UInt64(s.st_ino)
        size = Int64(s.st_size)
        modified = Int64(s.st_mtim.tv_sec) * 1_000_000_000 + Int64(s.st_mtim.tv_nsec)
        changed = Int64(s.st_ctim.tv_sec) * 1_000_000_000 + Int64(s.st_ctim.tv_nsec)
    }
}

/// Fingerprints taken by this process (registration), so that its transcode of the same file
/// moments later need not read and hash it all again: the key is trusted while the file's stamp
/// is unchanged. A worker in another process has none and hashes again.
public final class Fingerprints: Sendable {
    private let known = Mutex<[String: (path: String, stamp: FileStamp)]>([:])

    public init() {}

    func remember(key: String, path: String, stamp: FileStamp?) {
        guard let stamp else { return }
        known.withLock { $0[key] = (path, stamp) }
    }

    /// `key` when `path` was fingerprinted as `key` here and has not changed since; else nil.
    func key(_ key: String, ifUnchanged path: String) -> String? {
        guard let entry = known.withLock({ $0[key] }), entry.path == path, FileStamp(path: path) == entry.stamp else { return nil }
        return key
    }
}

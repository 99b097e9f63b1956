#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only view of a file for libsndfile's virtual I/O, with optional byte patches laid over
/// it. The patches are how a WAV whose recorder died before writing the `data`/`RIFF` sizes is
/// salvaged (research/audio.md S6): the header is re-served with the real sizes while the audio
/// bytes come straight from disk, so memory stays flat whatever the file size. With a `limit`,
/// the file seems to end after that many bytes (a check of a large file's beginning).
final class FileBytes {
    let fd: Int32
    let length: Int64
    var position: Int64 = 0
    /// Byte ranges replaced on read: (offset, bytes). Small and few (two 4-byte size fields).
    let patches: [(offset: Int64, bytes: [UInt8])]

    init(path: String, patches: [(offset: Int64, bytes: [UInt8])] = [], limit: Int64? = nil) throws(AudioError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw AudioError(.unreadable, path: path, "cannot open: \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw AudioError(.unreadable, path: path, "cannot stat: \(reason)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw AudioError(.unreadable, path: path, "not a regular file")
        }
        self.fd = fd
        self.length = min(Int64(st.st_size), limit ?? .max)
        self.patches = patches
    }

    deinit { close(fd) }

    /// Reads up to `count` bytes at `offset` (patches applied). Returns the bytes read.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int64) -> Int {
        guard count > 0, offset < length else { return 0 }
        var done = 0
        let count = Int(min(Int64(count), length - offset))
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(offset + Int64(done)))
            if n < 0 {
                if errno == EINTR { continue }
                return done > 0 ? done : -1
            }
            if n == 0 { break }
            done += n
        }
        for patch in patches {
            let start = max(patch.offset, offset)
            let end = min(patch.offset + Int64(patch.bytes.count), offset + Int64(done))
            guard start < end else { continue }
            for i in start..<end {
                buffer.storeBytes(of: patch.bytes[Int(i - patch.offset)], toByteOffset: Int(i - offset), as: UInt8.self)
            }
        }
        return done
    }

    /// The first `count` bytes (for sniffing), patches applied.
    func head(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = bytes.withUnsafeMutableBytes { read(into: $0.baseAddress!, count: count, at: 0) }
        return Array(bytes.prefix(max(n, 0)))
    }
}

@available(*, unavailable)
extension FileBytes: Sendable {}

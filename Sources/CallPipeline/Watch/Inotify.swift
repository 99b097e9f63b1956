import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif
#if canImport(CDispatch)
import CDispatch
#endif

/// One inotify instance for the whole worker, read on a dedicated thread (`poll()` on its
/// descriptor and on a pipe that stops it): each watching source subscribes, adds watches, and
/// hears the events of its own watches (and every queue overflow). Linux only; the C types stay
/// inside this file.
public final class Inotify: Sendable {
    /// One `inotify_event` record.
    struct Event: Sendable, Equatable {
        var wd: Int32
        var mask: UInt32
        var cookie: UInt32
        /// The entry's name inside the watched directory ("" for an event of the watched object itself).
        var name: String

        func has(_ bits: UInt32) -> Bool { mask & bits != 0 }
    }

    /// The event bits (linux/inotify.h), as plain values so no C macro's type leaks.
    enum Mask {
        static let modify: UInt32 = 0x0000_0002
        static let closeWrite: UInt32 = 0x0000_0008
        static let movedTo: UInt32 = 0x0000_0080
        static let create: UInt32 = 0x0000_0100
        static let deleteSelf: UInt32 = 0x0000_0400
        static let moveSelf: UInt32 = 0x0000_0800
        static let overflow: UInt32 = 0x0000_4000
        static let ignored: UInt32 = 0x0000_8000
        static let onlyDir: UInt32 = 0x0100_0000
        static let maskAdd: UInt32 = 0x2000_0000
        static let isDir: UInt32 = 0x4000_0000

        /// What a recording directory is watched for.
        static let directory = closeWrite | movedTo | create | deleteSelf | moveSelf | onlyDir
        /// What a CDR file is watched for.
        static let cdrFile = modify | closeWrite | deleteSelf | moveSelf
    }

    struct Failure: Error, CustomStringConvertible {
        enum Code: Sendable { case unavailable, noSpace, failed }
        var code: Code
        var path: String?
        var errno: Int32

        var description: String {
            let reason = String(cString: strerror(errno))
            switch code {
            case .unavailable: return "inotify is not available: \(reason)"
            case .noSpace: return "\(path ?? ""): no inotify watch left (fs.inotify.max_user_watches): \(reason)"
            case .failed: return "\(path ?? ""): cannot watch: \(reason)"
            }
        }
    }

    typealias Deliver = @Sendable ([Event]) -> Void

    private struct State {
        var subscribers: [Int: Deliver] = [:]
        var owners: [Int32: Set<Int>] = [:]
        var nextID = 0
        var stopped = false
    }

    private let fd: Int32
    private let stopRead: Int32
    private let stopWrite: Int32
    private let state = Mutex(State())
    private let finished = DispatchSemaphore(value: 0)

    /// Tests: adding a watch beyond this many fails as the kernel does when
    /// `fs.inotify.max_user_watches` is reached (ENOSPC).
    private let watchLimit: Int?

    public convenience init() throws {
        try self.init(watchLimit: nil)
    }

    init(watchLimit: Int?) throws {
        self.watchLimit = watchLimit
        let fd = inotify_init1(Int32(0x800 | 0x80000))  // IN_NONBLOCK | IN_CLOEXEC
        guard fd >= 0 else { throw Failure(code: .unavailable, errno: errno) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            let error = errno
            close(fd)
            throw Failure(code: .unavailable, errno: error)
        }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        self.fd = fd
        stopRead = ends[0]
        stopWrite = ends[1]
        let thread = Thread { [self] in readLoop() }
        thread.name = "callrec-inotify"
        thread.start()
    }

    /// A new subscriber: `deliver` is called on the reading thread with each batch of its events.
    func subscribe(_ deliver: @escaping Deliver) -> Int {
        state.withLock { state in
            state.nextID += 1
            state.subscribers[state.nextID] = deliver
            return state.nextID
        }
    }

    func unsubscribe(_ id: Int) {
        state.withLock { state in
            state.subscribers[id] = nil
            for (wd, owners) in state.owners where owners.contains(id) { state.owners[wd]?.remove(id) }
        }
    }

    /// Watches `path` for `subscriber` (the same inode gives the same descriptor; its mask grows).
    @discardableResult
    func add(_ path: String, mask: UInt32, for subscriber: Int) throws(Failure) -> Int32 {
        if let watchLimit, state.withLock({ $0.owners.count }) >= watchLimit {
            throw Failure(code: .noSpace, path: path, errno: ENOSPC)
        }
        let wd = inotify_add_watch(fd, path, mask | Mask.maskAdd)
        guard wd >= 0 else {
            let error = errno
            throw Failure(code: error == ENOSPC ? .noSpace : .failed, path: path, errno: error)
        }
        _ = state.withLock { $0.owners[wd, default: []].insert(subscriber) }
        return wd
    }

    /// Delivers `events` as if the kernel had sent them (tests: an overflow).
    func inject(_ events: [Event]) { dispatch(events) }

    /// Stops the reading thread and closes the descriptors (waits for the thread).
    public func stop() {
        let first = state.withLock { state -> Bool in
            defer { state.stopped = true }
            return !state.stopped
        }
        guard first else { return }
        var byte: UInt8 = 1
        _ = write(stopWrite, &byte, 1)
        finished.wait()
        close(fd)
        close(stopRead)
        close(stopWrite)
    }

    private func readLoop() {
        defer { finished.signal() }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: stopRead, events: Int16(POLLIN), revents: 0)]
        while true {
            fds[0].revents = 0
            fds[1].revents = 0
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            var events: [Event] = []
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                events += buffer.withUnsafeBytes { Self.parse(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
            if !events.isEmpty { dispatch(events) }
        }
    }

    private func dispatch(_ events: [Event]) {
        let batches = state.withLock { state -> [(Deliver, [Event])] in
            var byOwner: [Int: [Event]] = [:]
            for event in events {
                if event.has(Mask.overflow) {
                    for id in state.subscribers.keys { byOwner[id, default: []].append(event) }
                    continue
                }
                for id in state.owners[event.wd] ?? [] { byOwner[id, default: []].append(event) }
                if event.has(Mask.ignored) { state.owners[event.wd] = nil }
            }
            return byOwner.compactMap { id, events in state.subscribers[id].map { ($0, events) } }
        }
        for (deliver, events) in batches { deliver(events) }
    }

    /// The records of one read: a 16-byte header (wd, mask, cookie, len) and `len` bytes of
    /// NUL-padded name.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let wd = bytes.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            let start = offset + 16, end = min(bytes.count, start + length)
            let nameBytes = bytes[start..<end].prefix { $0 != 0 }
            events.append(Event(wd: wd, mask: mask, cookie: cookie, name: String(decoding: nameBytes, as: UTF8.self)))
            offset = start + length
        }
        return events
    }
}

/// The kind of file system a directory is on: network and FUSE mounts deliver no inotify events
/// for changes made elsewhere, so they are polled. Read from /proc/self/mountinfo (the mount with
/// the longest mount point containing the path): Glibc's Swift module does not bring `statfs`'s
/// header, and the type names there say the same as statfs's magic numbers (NFS 0x6969, SMB
/// 0x517B, CIFS 0xFF534D42, SMB2 0xFE534D42, FUSE 0x65735546).
enum FileSystemKind {
    /// The name of the network or FUSE file system `path` (absolute, resolved) is on; nil for a
    /// local one, or when unknown.
    static func polledName(of path: String) -> String? {
        guard let table = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        return polledName(of: path, mountinfo: table)
    }

    static func polledName(of path: String, mountinfo: String) -> String? {
        var best: (point: String, type: String)?
        for line in mountinfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            guard fields.count > 5, let dash = fields.firstIndex(of: "-"), dash + 1 < fields.count else { continue }
            let point = unescape(String(fields[4]))
            let inside = point == "/" || path == point || path.hasPrefix(point + "/")
            if inside, point.count >= (best?.point.count ?? -1) { best = (point, String(fields[dash + 1])) }
        }
        guard let type = best?.type else { return nil }
        return polledName(type: type)
    }

    /// NFS, SMB, CIFS and FUSE types as mountinfo names them.
    static func polledName(type: String) -> String? {
        switch type {
        case "nfs", "nfs4": "NFS"
        case "cifs": "CIFS"
        case "smb3", "smbfs", "smb": "SMB"
        case let fuse where fuse == "fuse" || fuse.hasPrefix("fuse."): "FUSE"
        default: nil
        }
    }

    /// mountinfo writes a space, tab, newline and backslash in a path as octal escapes.
    private static func unescape(_ field: String) -> String {
        field.replacingOccurrences(of: "\\040", with: " ").replacingOccurrences(of: "\\011", with: "\t")
            .replacingOccurrences(of: "\\012", with: "\n").replacingOccurrences(of: "\\134", with: "\\")
    }
}

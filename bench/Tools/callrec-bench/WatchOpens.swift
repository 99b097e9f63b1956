import ArgumentParser
import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGTERM/SIGINT: `watch-opens` stops and prints what it counted.
private let stopWatching = Atomic<Bool>(false)

/// `watch-opens ROOT` (bench/rescan.sh): counts who opens or reads what under ROOT while it runs,
/// with inotify `IN_OPEN|IN_ACCESS` on every directory. A directory's own events (listing it) are
/// fine; a rescan of recordings already done must cause no event on a file. Prints
/// `watching N directories` on stderr once every watch is in place, and on SIGTERM/SIGINT one
/// JSON line on stdout: `{"directories", "directory_events", "file_events", "files" (the first 20), "overflow"}`.
struct WatchOpens: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch-opens", abstract: "Count files opened or read under a tree (inotify) until SIGTERM.", shouldDisplay: false)

    @Argument(help: "The tree to watch (every directory under it).")
    var root: String

    func run() throws {
        let fd = inotify_init1(Int32(IN_CLOEXEC))
        guard fd >= 0 else { throw ValidationError("inotify_init1: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let mask = UInt32(truncatingIfNeeded: IN_OPEN) | UInt32(truncatingIfNeeded: IN_ACCESS)
        var directories: [Int32: String] = [:]
        var pending = [root]
        while let dir = pending.popLast() {
            let wd = inotify_add_watch(fd, dir, mask)
            guard wd >= 0 else { throw ValidationError("inotify_add_watch \(dir): \(String(cString: strerror(errno))) (fs.inotify.max_user_watches?)") }
            directories[wd] = dir
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                var st = stat()
                let path = dir + "/" + name
                if lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { pending.append(path) }
            }
        }
        for sig in [SIGTERM, SIGINT] { signal(sig, SIG_IGN) }
        let sources = [SIGTERM, SIGINT].map { sig in
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { stopWatching.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        FileHandle.standardError.write(Data("watching \(directories.count) directories\n".utf8))

        var directoryEvents = 0, fileEvents = 0, overflow = false, files: [String] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let isDirectory = UInt32(truncatingIfNeeded: IN_ISDIR), overflowed = UInt32(truncatingIfNeeded: IN_Q_OVERFLOW)
        func drain() {
            while true {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 0) > 0 else { return }
                let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                guard n > 0 else { return }
                var at = 0
                while at + 16 <= n {
                    let (wd, eventMask, length, name) = buffer.withUnsafeBytes { raw -> (Int32, UInt32, Int, String) in
                        let wd = raw.loadUnaligned(fromByteOffset: at, as: Int32.self)
                        let eventMask = raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)
                        let length = Int(raw.loadUnaligned(fromByteOffset: at + 12, as: UInt32.self))
                        let bytes = raw[(at + 16)..<(at + 16 + length)].prefix { $0 != 0 }
                        return (wd, eventMask, length, String(decoding: bytes, as: UTF8.self))
                    }
                    at += 16 + length
                    if eventMask & overflowed != 0 {
                        overflow = true
                    } else if eventMask & isDirectory != 0 || name.isEmpty {
                        directoryEvents += 1
                    } else {
                        fileEvents += 1
                        if files.count < 20 { files.append((directories[wd] ?? "?") + "/" + name) }
                    }
                }
            }
        }
        while !stopWatching.load(ordering: .relaxed) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&poller, 1, 100)
            drain()
        }
        drain()
        let document: [String: Any] = ["directories": directories.count, "directory_events": directoryEvents, "file_events": fileEvents,
                                       "files": files, "overflow": overflow]
        let data = try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }
}

import CallSources
import CallTesting
import Foundation
import Logging
import Synchronization
import Testing

@testable import CallPipeline

/// `worker --watch` (R12, decision D1) in real temporary directories: inotify and polling feed a
/// recording sink instead of the source intake, and time is a ManualClock the tests move (no
/// sleep lets time pass; waits for the watcher's own work have real-time deadlines).
@Suite struct WatchTests {
    /// What the watcher asked for, in order.
    final class Sink: WatchActions {
        enum Call: Equatable, Sendable {
            case ingest, scan
            case scanDirectory(String)
            /// A file a directory scan listed (it was there before the directory's watch).
            case found(String)
            case take(String)
        }

        let calls = Mutex<[Call]>([])

        var recorded: [Call] { calls.withLock { $0 } }
        var taken: [String] { recorded.compactMap { if case .take(let path) = $0 { path } else { nil } } }
        func count(_ call: Call) -> Int { recorded.filter { $0 == call }.count }

        func ingestCDRs() async throws -> Int {
            calls.withLock { $0.append(.ingest) }
            return 0
        }

        func scan(reportKnown: Bool) async throws -> [FileReport] {
            calls.withLock { $0.append(.scan) }
            return []
        }

        func scan(directory: String, reportKnown: Bool) async throws -> [FileReport] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory).sorted()) ?? []
            var reports: [FileReport] = []
            calls.withLock { $0.append(.scanDirectory(directory)) }
            for name in names {
                var isDirectory: ObjCBool = false
                let path = directory + "/" + name
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
                calls.withLock { $0.append(.found(path)) }
                reports.append(Self.ok(path))
            }
            return reports
        }

        func take(path: String) async -> FileReport {
            calls.withLock { $0.append(.take(path)) }
            return Self.ok(path)
        }

        static func ok(_ path: String) -> FileReport {
            FileReport(path: path, key: nil, status: .ok, error: nil, warnings: [], input: nil, stats: nil, parts: [])
        }
    }

    /// A running watcher of `dir/root` and what the test needs to drive it.
    struct Running {
        var root: String
        var sink: Sink
        var clock: ManualClock
        var inotify: Inotify?
    }

    /// Runs a watcher of `dir/root` (created) while `body` runs, once its startup scan is done.
    static func watching(_ dir: String, mode: WatchMode, cdr: [String] = [], settle: Duration = .seconds(2), interval: Duration = .seconds(1),
                         watchLimit: Int? = nil, _ body: (Running) async throws -> Void) async throws {
        try FileManager.default.createDirectory(atPath: dir + "/root", withIntermediateDirectories: true)
        let root = URL(fileURLWithPath: dir + "/root").resolvingSymlinksInPath().path
        let sink = Sink(), clock = ManualClock()
        let inotify = mode == .poll ? nil : try Inotify(watchLimit: watchLimit)
        defer { inotify?.stop() }
        var configuration = WatchService.Configuration(name: "test", root: root, cdrFiles: cdr, mode: mode, pollInterval: interval, settle: settle)
        configuration.cdrDebounce = .milliseconds(200)
        let service = WatchService(configuration: configuration, actions: sink, inotify: inotify, clock: AnyClock(clock), logger: Logger(label: "test"))
        let task = Task { try await service.run() }
        defer { task.cancel() }
        try #require(await eventually { sink.count(.scan) == 1 }, "the startup scan did not run")
        if mode == .poll { try #require(await clock.waitForSleepers(1, timeout: .seconds(120))) }
        try await body(Running(root: root, sink: sink, clock: clock, inotify: inotify))
        task.cancel()
        _ = await task.result
    }

    /// Waits (real time, with a deadline) until `condition` holds.
    static func eventually(timeout: Duration = .seconds(120), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return true
    }

    /// Writes `bytes` to `path` as a recorder does: open, write, close (no rename).
    static func write(_ path: String, _ bytes: Int = 1000) throws {
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: path))
    }

    static func append(_ path: String, _ bytes: Int = 1000) throws {
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: 8, count: bytes))
        try handle.close()
    }

    // MARK: - Settle timers (pure)

    @Test func aCloseIsDueAfterSettleAndEveryFurtherEventStartsTheWaitAgainWhileAMoveIsDueAtOnce() {
        var timers = SettleTimers<ElapsedInstant>(settle: .seconds(2))
        let t0 = ElapsedInstant(offset: .zero)
        timers.closed("a", at: t0)
        timers.touched("b", at: t0)  // an event on a file nothing waits for arms nothing
        #expect(timers.due(at: t0 + .milliseconds(1999)).isEmpty)
        timers.closed("a", at: t0 + .seconds(1))  // written and closed again: the wait starts again
        #expect(timers.due(at: t0 + .milliseconds(2999)).isEmpty)
        timers.movedIn("c", at: t0 + .seconds(1))
        #expect(timers.due(at: t0 + .seconds(1)) == ["c"])
        timers.touched("a", at: t0 + .milliseconds(2500))
        #expect(timers.next == t0 + .milliseconds(4500))
        #expect(timers.due(at: t0 + .milliseconds(4499)).isEmpty)
        #expect(timers.due(at: t0 + .milliseconds(4500)) == ["a"])
        #expect(timers.isEmpty)
    }

    // MARK: - inotify

    @Test func aFileClosedAfterWritingIsTakenOnceSettleHasPassedAndNotBefore() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.watching(dir, mode: .inotify) { run in
                try Self.write(run.root + "/in-2125550123-101-20261206-101500-1765016100.12.wav")
                // Its close is heard: a timer is armed for close + 2 s on the watcher's clock.
                try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                run.clock.advance(by: .milliseconds(1900))
                #expect(run.sink.taken.isEmpty)
                run.clock.advance(by: .milliseconds(200))
                #expect(await Self.eventually { run.sink.taken.count == 1 })
                #expect(run.sink.taken == [run.root + "/in-2125550123-101-20261206-101500-1765016100.12.wav"])
            }
        }
    }

    @Test func aFileRenamedIntoTheTreeIsTakenAtOnceAndHiddenFilesAreNot() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.watching(dir, mode: .inotify) { run in
                // Written under a hidden name in the tree, then renamed: the hidden file is not
                // taken, the rename is taken without the clock moving.
                try Self.write(run.root + "/.out-101-2125550123.wav.part")
                try FileManager.default.moveItem(atPath: run.root + "/.out-101-2125550123.wav.part", toPath: run.root + "/out-101-2125550123.wav")
                // And one written outside the tree, moved in.
                try Self.write(dir + "/elsewhere.wav")
                try FileManager.default.moveItem(atPath: dir + "/elsewhere.wav", toPath: run.root + "/moved.wav")
                #expect(await Self.eventually { run.sink.taken.count == 2 })
                #expect(Set(run.sink.taken) == [run.root + "/out-101-2125550123.wav", run.root + "/moved.wav"])
                #expect(run.clock.now == ElapsedInstant(offset: .zero))
            }
        }
    }

    @Test func aNewDayFolderIsWatchedThenScannedSoAFileWrittenBeforeItsWatchIsFoundAndLaterFilesAreTaken() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.watching(dir, mode: .inotify) { run in
                // A year/month/day tree that already holds a recording when it appears (made
                // elsewhere and moved in whole): no event is ever sent for that file.
                try FileManager.default.createDirectory(atPath: dir + "/staging/2026/12/06", withIntermediateDirectories: true)
                try Self.write(dir + "/staging/2026/12/06/early.wav")
                try FileManager.default.moveItem(atPath: dir + "/staging/2026", toPath: run.root + "/2026")
                #expect(await Self.eventually { run.sink.recorded.contains(.found(run.root + "/2026/12/06/early.wav")) })
                let scanned = run.sink.recorded.compactMap { if case .scanDirectory(let path) = $0 { path } else { nil } }
                #expect(scanned == [run.root + "/2026", run.root + "/2026/12", run.root + "/2026/12/06"])
                // A day folder made while watching: once it is scanned, its watch exists, so a
                // file written into it is heard.
                try FileManager.default.createDirectory(atPath: run.root + "/2026/12/07", withIntermediateDirectories: false)
                #expect(await Self.eventually { run.sink.recorded.contains(.scanDirectory(run.root + "/2026/12/07")) })
                try Self.write(run.root + "/2026/12/07/late.wav")
                try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                run.clock.advance(by: .seconds(2))
                #expect(await Self.eventually { run.sink.taken == [run.root + "/2026/12/07/late.wav"] })
            }
        }
    }

    @Test func anOverflowedEventQueueRescansTheTree() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.watching(dir, mode: .inotify) { run in
                let inotify = try #require(run.inotify)
                inotify.inject([Inotify.Event(wd: -1, mask: Inotify.Mask.overflow, cookie: 0, name: "")])
                #expect(await Self.eventually { run.sink.count(.scan) == 2 })
                // Still watching after the rescan.
                try Self.write(dir + "/x.wav")
                try FileManager.default.moveItem(atPath: dir + "/x.wav", toPath: run.root + "/x.wav")
                #expect(await Self.eventually { run.sink.taken == [run.root + "/x.wav"] })
            }
        }
    }

    @Test func aChangedCDRFileIsReadOnceShortlyAfterItsFirstChange() async throws {
        try await withTemporaryDirectory { dir in
            try Self.write(dir + "/Master.csv", 10)
            try await Self.watching(dir, mode: .inotify, cdr: [dir + "/Master.csv"]) { run in
                #expect(run.sink.count(.ingest) == 1)  // at start
                try Self.append(dir + "/Master.csv", 10)
                try Self.append(dir + "/Master.csv", 10)
                try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                run.clock.advance(by: .milliseconds(199))
                #expect(run.sink.count(.ingest) == 1)
                run.clock.advance(by: .milliseconds(1))
                #expect(await Self.eventually { run.sink.count(.ingest) == 2 })
                #expect(run.sink.taken.isEmpty)
            }
        }
    }

    @Test func runningOutOfInotifyWatchesFallsBackToPollingAndScansOnce() async throws {
        try await withTemporaryDirectory { dir in
            // Room for the root's watch only: the first day folder cannot be watched.
            try await Self.watching(dir, mode: .inotify, settle: .seconds(1), interval: .seconds(1), watchLimit: 1) { run in
                try FileManager.default.createDirectory(atPath: run.root + "/2026", withIntermediateDirectories: false)
                #expect(await Self.eventually { run.sink.count(.scan) == 2 }, "no scan after the fallback")
                try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                try Self.write(run.root + "/2026/x.wav")
                for _ in 0..<2 {
                    run.clock.advance(by: .seconds(1))
                    try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                }
                #expect(run.sink.taken == [run.root + "/2026/x.wav"])
            }
        }
    }

    // MARK: - Polling

    @Test func pollingTakesANewFileOnceItsSizeAndTimeStayedTheSameForSettleNotWhileItIsAppendedTo() async throws {
        try await withTemporaryDirectory { dir in
            try await Self.watching(dir, mode: .poll, settle: .seconds(2), interval: .seconds(1)) { run in
                let path = run.root + "/in-2125550123-101-20261206-101500-1765016100.12.wav"
                /// One poll: the clock moves an interval on, and the watcher is back asleep.
                func poll() async throws {
                    run.clock.advance(by: .seconds(1))
                    try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                }
                try Self.write(path)
                try await poll()  // t=1: seen
                try Self.append(path)
                try await poll()  // t=2: grew: seen again
                try Self.append(path)
                try await poll()  // t=3: grew again
                try await poll()  // t=4: still for 1 s
                #expect(run.sink.taken.isEmpty)
                try await poll()  // t=5: still for 2 s
                #expect(run.sink.taken == [path])
                try await poll()
                #expect(run.sink.taken == [path])  // once
            }
        }
    }

    @Test func pollingFindsAFileWhoseOnlyTraceIsItsDirectorysTimeAndNewDayFolders() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: dir + "/root/2026/12/06", withIntermediateDirectories: true)
            try Self.write(dir + "/root/2026/12/06/known.wav")  // there at start: the startup scan's
            try await Self.watching(dir, mode: .poll, settle: .seconds(1), interval: .seconds(1)) { run in
                func poll() async throws {
                    run.clock.advance(by: .seconds(1))
                    try #require(await run.clock.waitForSleepers(1, timeout: .seconds(120)))
                }
                // An old file (its times years back) renamed in: only the directory's time moves.
                try Self.write(dir + "/old.wav")
                let old = Date(timeIntervalSince1970: 1_600_000_000)
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: dir + "/old.wav")
                try FileManager.default.moveItem(atPath: dir + "/old.wav", toPath: run.root + "/2026/12/06/old.wav")
                // A new day folder with a file in it.
                try FileManager.default.createDirectory(atPath: run.root + "/2026/12/07", withIntermediateDirectories: false)
                try Self.write(run.root + "/2026/12/07/new.wav")
                try await poll()  // seen
                #expect(run.sink.taken.isEmpty)
                try await poll()  // still for settle
                #expect(Set(run.sink.taken) == [run.root + "/2026/12/06/old.wav", run.root + "/2026/12/07/new.wav"])
                #expect(!run.sink.taken.contains(run.root + "/2026/12/06/known.wav"))
            }
        }
    }

    @Test func networkAndFUSEMountsArePolled() {
        let mountinfo = """
            22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
            40 22 0:40 / /mnt/pbx rw,relatime shared:20 - nfs4 pbx:/var/spool/asterisk rw,vers=4.2
            41 22 0:41 / /mnt/3cx\\040rec rw,relatime shared:21 - cifs //3cx/rec rw
            42 22 0:42 / /mnt/sshfs rw,relatime shared:22 - fuse.sshfs pbx: rw
            """
        #expect(FileSystemKind.polledName(of: "/mnt/pbx/monitor/2026", mountinfo: mountinfo) == "NFS")
        #expect(FileSystemKind.polledName(of: "/mnt/3cx rec/Recordings", mountinfo: mountinfo) == "CIFS")
        #expect(FileSystemKind.polledName(of: "/mnt/sshfs", mountinfo: mountinfo) == "FUSE")
        #expect(FileSystemKind.polledName(of: "/mnt/pbxother", mountinfo: mountinfo) == nil)
        #expect(FileSystemKind.polledName(of: "/var/spool/asterisk/monitor", mountinfo: mountinfo) == nil)
    }
}

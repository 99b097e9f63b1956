public import CallSources
public import CallSupport
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif
#if canImport(CDispatch)
import CDispatch
#endif

/// What a watcher does with what it finds: ``SourceIntake`` in the worker (tests give a sink
/// that records what it was asked).
public protocol WatchActions: Sendable {
    /// Reads the CDR files' new rows; returns how many were new.
    func ingestCDRs() async throws -> Int
    /// Every file under the root the ledger does not know as it is.
    func scan(reportKnown: Bool) async throws -> [FileReport]
    /// The files of one directory (absolute) the ledger does not know as they are.
    func scan(directory: String, reportKnown: Bool) async throws -> [FileReport]
    /// One file (absolute path), as the watcher saw it close or arrive.
    func take(path: String) async -> FileReport
}

extension SourceIntake: WatchActions {}

/// `callrec worker --watch DIR`: one PBX source watched while the worker runs (R12). At start it
/// sets up its watches, reads the CDR files and scans the tree (what arrived while callrec was
/// down); then it takes each file as it is finished:
/// - with inotify, a file closed after writing once `settle` has passed without a further event on
///   it, a file renamed into the tree at once (decision D1); a new directory is watched, then
///   scanned (files may have landed in it before its watch); a queue overflow rescans the tree; a
///   CDR file that changes is read again (after a short debounce);
/// - with polling (``WatchMode/poll``, network mounts, or when inotify fails or runs out of
///   watches), what ``Poller`` finds settled, plus the CDR files every poll and the whole tree
///   hourly.
///
/// Each file taken is logged (info: path, verdict; a failure at error level), and a failure costs
/// only that file. A file not settled yet when taken is tried again when it may be.
public struct WatchService: Service {
    public struct Configuration: Sendable {
        /// The source's name (log lines).
        public var name: String
        public var root: String
        public var cdrFiles: [String]
        public var mode: WatchMode
        public var pollInterval: Duration
        /// How long a closed file waits for a further event, and how long a polled file's size
        /// and time must have stayed the same.
        public var settle: Duration
        /// With polling: the whole tree is scanned this often.
        public var fullScanInterval: Duration = .seconds(3600)
        /// A CDR file that changed is read this long after its first change.
        public var cdrDebounce: Duration = .milliseconds(200)

        public init(name: String, root: String, cdrFiles: [String] = [], mode: WatchMode = .auto, pollInterval: Duration = .seconds(2),
                    settle: Duration = .seconds(2)) {
            self.name = name
            self.root = root
            self.cdrFiles = cdrFiles
            self.mode = mode
            self.pollInterval = pollInterval
            self.settle = settle
        }

        /// The watch of one source's settings, files settled after `settle`.
        public init(settings: SourceSettings, settle: Duration) {
            self.init(name: settings.name, root: settings.root, cdrFiles: settings.cdrFiles, mode: settings.watchMode,
                      pollInterval: settings.pollInterval, settle: settle)
        }
    }

    public let configuration: Configuration
    public let actions: any WatchActions
    let inotify: Inotify?
    let clock: AnyClock
    public let logger: Logger
    /// The root with its symbolic links resolved (the paths events and listings give).
    let root: String

    /// `inotify` is the worker's one instance (nil: polling only).
    public init(configuration: Configuration, actions: any WatchActions, inotify: Inotify?, clock: AnyClock = .continuous, logger: Logger) {
        self.configuration = configuration
        self.actions = actions
        self.inotify = inotify
        self.clock = clock
        root = URL(fileURLWithPath: configuration.root).standardizedFileURL.resolvingSymlinksInPath().path
        var logger = logger
        logger[metadataKey: "source"] = "\(configuration.name)"
        self.logger = logger
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await watch() }
        } catch is CancellationError {
            return
        }
    }

    /// What one look (``once(horizon:)``) left.
    public struct Look: Sendable {
        /// Files that failed (each logged).
        public var failed = 0
        /// Files still being written when the look ended (each logged).
        public var waiting: [FileReport] = []

        public init() {}
    }

    /// The one look of `worker --watch DIR --until-idle`: the CDR files read, then the tree
    /// scanned (every file not known as it is taken). A file still being written is taken again
    /// once it may be settled, when that is within `horizon`; otherwise it is left waiting for the
    /// next run.
    public func once(horizon: Duration) async -> Look {
        await ingest()
        var look = Look()
        var reports: [FileReport]
        do {
            reports = try await actions.scan(reportKnown: false)
        } catch {
            logger.error("scanning \(configuration.root) failed: \(error)")
            look.failed += 1
            return look
        }
        let end = clock.now.advanced(by: horizon)
        var waiting: [(path: String, at: ElapsedInstant)] = []
        while true {
            for report in reports {
                log(report)
                if report.status == .failed { look.failed += 1 }
                guard report.status == .waiting, report.error?.code == Settle.code else { continue }
                let at = clock.now.advanced(by: retryDelay(report))
                if at <= end { waiting.append((Self.absolute(report.path, under: root), at)) } else { look.waiting.append(report) }
            }
            guard let next = waiting.indices.min(by: { waiting[$0].at < waiting[$1].at }) else { return look }
            let (path, at) = waiting.remove(at: next)
            do {
                try await clock.sleep(until: at, tolerance: nil)
            } catch {
                return look
            }
            reports = [await actions.take(path: path)]
        }
    }

    // MARK: - The loop

    /// What the inotify thread hands the loop.
    private final class Inbox: Sendable {
        let events = Mutex<[Inotify.Event]>([])
        let wake = WakeUp()

        func deliver(_ batch: [Inotify.Event]) {
            events.withLock { $0 += batch }
            wake.signal()
        }

        func drain() -> [Inotify.Event] { events.withLock { events in defer { events = [] }; return events } }
        var isEmpty: Bool { events.withLock { $0.isEmpty } }
    }

    private struct Loop {
        var timers: SettleTimers<ElapsedInstant>
        var poller: Poller<ElapsedInstant>?
        var nextPoll: ElapsedInstant?
        var nextFullScan: ElapsedInstant?
        var cdrDue: ElapsedInstant?
        var subscription: Int?
        /// Watched directories of the tree (and the CDR files' watches).
        var directories: [Int32: String] = [:]
        var cdrWatches: [Int32: String] = [:]
    }


    private func watch() async throws {
        let inbox = Inbox()
        var loop = Loop(timers: SettleTimers(settle: configuration.settle))
        defer { if let id = loop.subscription { inotify?.unsubscribe(id) } }
        switch chooseMode() {
        case .inotify(let inotify):
            loop.subscription = inotify.subscribe { inbox.deliver($0) }
            do {
                try watchTree(root, loop: &loop)
                watchCDRFiles(loop: &loop)
            } catch {
                fallBackToPolling(error.description, loop: &loop)
            }
        case .poll:
            startPolling(loop: &loop)
        }
        // The startup look, after the watches exist: nothing lands between the two unseen.
        await ingest()
        await scanAll(loop: &loop)

        while !Task.isCancelled {
            let events = inbox.drain()
            if !events.isEmpty { await handle(events, loop: &loop) }
            let now = clock.now
            if let next = loop.nextPoll, next <= now { await poll(at: now, loop: &loop) }
            if let due = loop.cdrDue, due <= now {
                loop.cdrDue = nil
                await ingest()
            }
            for path in loop.timers.due(at: now) { await take(path, loop: &loop) }
            guard inbox.isEmpty else { continue }
            let deadline = [loop.timers.next, loop.nextPoll, loop.cdrDue].compactMap(\.self).min()
            if let deadline {
                let timeout = clock.now.duration(to: deadline)
                if timeout > .zero { await inbox.wake.wait(timeout: timeout, clock: clock) }
            } else {
                await inbox.wake.wait()
            }
        }
    }

    private enum Mode { case inotify(Inotify), poll }

    private func chooseMode() -> Mode {
        let interval = configuration.pollInterval.seconds
        switch configuration.mode {
        case .poll:
            logger.info("watching \(configuration.root) by polling every \(interval) s")
            return .poll
        case .auto:
            if let kind = FileSystemKind.polledName(of: root) {
                logger.notice("\(configuration.root) is on \(kind), which delivers no inotify events for other machines' writes: polling every \(interval) s")
                return .poll
            }
            fallthrough
        case .inotify:
            guard let inotify else {
                logger.warning("inotify is not available: watching \(configuration.root) by polling every \(interval) s")
                return .poll
            }
            logger.info("watching \(configuration.root) with inotify")
            return .inotify(inotify)
        }
    }

    private func startPolling(loop: inout Loop) {
        let cdr = Set(configuration.cdrFiles.map(Self.absolute))
        var poller = Poller<ElapsedInstant>(root: root, settle: configuration.settle) { Self.ignored($0, cdr: cdr) }
        poller.baseline()
        loop.poller = poller
        loop.nextPoll = clock.now.advanced(by: configuration.pollInterval)
        loop.nextFullScan = clock.now.advanced(by: configuration.fullScanInterval)
    }

    /// Out of inotify watches (or inotify failed): this source is polled from now on, and its
    /// tree scanned once so that nothing that came meanwhile is missed.
    private func fallBackToPolling(_ reason: String, loop: inout Loop) {
        logger.warning("\(reason): watching \(configuration.root) by polling every \(configuration.pollInterval.seconds) s instead")
        if let id = loop.subscription { inotify?.unsubscribe(id) }
        loop.subscription = nil
        loop.directories = [:]
        loop.cdrWatches = [:]
        startPolling(loop: &loop)
    }

    /// Watches `path` and every directory under it. Returns the directories watched. Only
    /// running out of watches throws; a directory that cannot be watched otherwise is logged.
    @discardableResult
    private func watchTree(_ path: String, loop: inout Loop) throws(Inotify.Failure) -> [String] {
        guard let inotify, let id = loop.subscription else { return [] }
        let wd: Int32
        do {
            wd = try inotify.add(path, mask: Inotify.Mask.directory, for: id)
        } catch {
            if error.code == .noSpace { throw error }
            logger.warning("\(error)")
            return []
        }
        loop.directories[wd] = path
        var watched = [path]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        for name in names.sorted() where !name.hasPrefix(".") {
            let child = path + "/" + name
            var s = stat()
            guard lstat(child, &s) == 0, s.st_mode & S_IFMT == S_IFDIR else { continue }
            watched += try watchTree(child, loop: &loop)
        }
        return watched
    }

    /// Watches each CDR file for changes (and, when it lies outside the tree, its directory,
    /// for a file rotated or created anew).
    private func watchCDRFiles(loop: inout Loop) {
        guard let inotify, let id = loop.subscription else { return }
        for file in configuration.cdrFiles.map(Self.absolute) {
            if let wd = try? inotify.add(file, mask: Inotify.Mask.cdrFile, for: id) { loop.cdrWatches[wd] = file }
            let parent = (file as NSString).deletingLastPathComponent
            if !loop.directories.values.contains(parent), let wd = try? inotify.add(parent, mask: Inotify.Mask.directory, for: id),
               loop.directories[wd] == nil {
                loop.cdrWatches[wd] = parent
            }
        }
    }

    private func handle(_ events: [Inotify.Event], loop: inout Loop) async {
        let cdr = Set(configuration.cdrFiles.map(Self.absolute))
        var rescan = false
        for event in events {
            let now = clock.now
            if event.has(Inotify.Mask.overflow) {
                rescan = true
                continue
            }
            if let file = loop.cdrWatches[event.wd] {
                if cdr.contains(file) {
                    // The file itself: changed, or rotated away (watch it again when it is back).
                    if event.has(Inotify.Mask.deleteSelf | Inotify.Mask.moveSelf | Inotify.Mask.ignored) {
                        loop.cdrWatches[event.wd] = nil
                        rewatchCDR(file, loop: &loop)
                    }
                    scheduleIngest(at: now, loop: &loop)
                } else if cdr.contains(file + "/" + event.name) {
                    rewatchCDR(file + "/" + event.name, loop: &loop)
                    scheduleIngest(at: now, loop: &loop)
                }
                continue
            }
            guard let directory = loop.directories[event.wd] else { continue }
            if event.has(Inotify.Mask.ignored) {
                loop.directories[event.wd] = nil
                if directory == root { logger.warning("\(configuration.root) is gone: nothing more is watched there") }
                continue
            }
            guard !event.name.isEmpty, !event.name.hasPrefix(".") else { continue }
            let path = directory + "/" + event.name
            if cdr.contains(path) {
                rewatchCDR(path, loop: &loop)
                scheduleIngest(at: now, loop: &loop)
            } else if event.has(Inotify.Mask.isDir) {
                if event.has(Inotify.Mask.create | Inotify.Mask.movedTo) { await newDirectory(path, loop: &loop) }
            } else if event.has(Inotify.Mask.movedTo) {
                loop.timers.movedIn(path, at: now)
            } else if event.has(Inotify.Mask.closeWrite) {
                loop.timers.closed(path, at: now)
            } else {
                loop.timers.touched(path, at: now)
            }
            if loop.subscription == nil { return }  // fell back to polling
        }
        if rescan {
            logger.warning("the inotify queue overflowed: rescanning \(configuration.root)")
            do {
                try watchTree(root, loop: &loop)
            } catch {
                fallBackToPolling(error.description, loop: &loop)
            }
            await ingest()
            await scanAll(loop: &loop)
        }
    }

    /// A directory appeared: watch it (and what is under it), THEN scan it, since files may
    /// have landed in it before its watch existed.
    private func newDirectory(_ path: String, loop: inout Loop) async {
        let watched: [String]
        do {
            watched = try watchTree(path, loop: &loop)
        } catch {
            fallBackToPolling(error.description, loop: &loop)
            await scanAll(loop: &loop)
            return
        }
        for directory in watched {
            do {
                logScan(try await actions.scan(directory: directory, reportKnown: false), loop: &loop)
            } catch {
                logger.error("scanning \(directory) failed: \(error)")
            }
        }
    }

    private func rewatchCDR(_ file: String, loop: inout Loop) {
        guard let inotify, let id = loop.subscription, !loop.cdrWatches.values.contains(file) else { return }
        if let wd = try? inotify.add(file, mask: Inotify.Mask.cdrFile, for: id) { loop.cdrWatches[wd] = file }
    }

    private func scheduleIngest(at now: ElapsedInstant, loop: inout Loop) {
        // Debounced: read once shortly after the first change, not on every write.
        if loop.cdrDue == nil { loop.cdrDue = now.advanced(by: configuration.cdrDebounce) }
    }

    private func poll(at now: ElapsedInstant, loop: inout Loop) async {
        guard var poller = loop.poller else { return }
        let found = poller.poll(at: now)
        loop.poller = poller
        loop.nextPoll = now.advanced(by: configuration.pollInterval)
        if !configuration.cdrFiles.isEmpty { await ingest() }
        for path in found.due { loop.timers.movedIn(path, at: now) }
        if let full = loop.nextFullScan, full <= now {
            loop.nextFullScan = now.advanced(by: configuration.fullScanInterval)
            await scanAll(loop: &loop)
        }
    }

    // MARK: - Actions, logged

    private func take(_ path: String, loop: inout Loop) async {
        let report = await actions.take(path: path)
        log(report)
        retryIfWaiting(report, path: path, loop: &loop)
    }

    private func scanAll(loop: inout Loop) async {
        do {
            logScan(try await actions.scan(reportKnown: false), loop: &loop)
        } catch {
            logger.error("scanning \(configuration.root) failed: \(error)")
        }
    }

    private func logScan(_ reports: [FileReport], loop: inout Loop) {
        for report in reports {
            log(report)
            retryIfWaiting(report, path: Self.absolute(report.path, under: root), loop: &loop)
        }
    }

    private func ingest() async {
        guard !configuration.cdrFiles.isEmpty else { return }
        do {
            let rows = try await actions.ingestCDRs()
            if rows > 0 { logger.info("read \(rows) new CDR row(s)") }
        } catch {
            logger.error("reading the CDR files failed: \(error)")
        }
    }

    /// A file not settled yet is tried again when it may be.
    private func retryIfWaiting(_ report: FileReport, path: String, loop: inout Loop) {
        guard report.status == .waiting, report.error?.code == Settle.code else { return }
        loop.timers.retry(path, at: clock.now.advanced(by: retryDelay(report)))
    }

    /// How long until a file reported not settled may be: until the time its report names, and
    /// at least `settle` (and 100 ms) from now.
    private func retryDelay(_ report: FileReport) -> Duration {
        let wait = max(configuration.settle, .seconds(max(0, (report.waitsUntil ?? Date()).timeIntervalSinceNow)))
        return max(wait, .milliseconds(100))
    }

    private func log(_ report: FileReport) {
        var verdict = report.status.rawValue
        if let code = report.error?.code { verdict += " (\(code))" }
        let metadata: Logger.Metadata = ["path": "\(report.path)", "verdict": "\(report.status.rawValue)"]
        if report.status == .failed {
            logger.error("\(report.path): \(verdict): \(report.error?.message ?? "")", metadata: metadata)
        } else {
            logger.info("\(report.path): \(verdict)", metadata: metadata)
        }
    }

    // MARK: - Paths

    static func absolute(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// A report's path (relative to the root, or absolute) as an absolute path.
    static func absolute(_ path: String, under root: String) -> String {
        path.hasPrefix("/") ? path : root + "/" + path
    }

    /// Hidden names (temporary files of writers that rename when done) and the CDR files.
    static func ignored(_ path: String, cdr: Set<String>) -> Bool {
        (path as NSString).lastPathComponent.hasPrefix(".") || cdr.contains(path)
    }
}

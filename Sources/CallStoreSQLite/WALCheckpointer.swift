import Foundation
import GRDB
import Logging

/// Checkpoints the WAL from a connection and a thread of their own, so the writer never does.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses its threshold (1,000
/// pages): that commit copies the WAL into the database file and fsyncs it before it returns, and
/// every write queued behind it waits. Under a stream of webhooks that was a stall of a few hundred
/// milliseconds every few seconds (the endpoint's p99 answer went from 20 ms to 360 ms). Here the
/// pool's writer keeps only a far threshold as a backstop (``backstopPages``), and this thread runs
/// PASSIVE checkpoints, which never block a writer or a reader, soon after writes: at most every
/// ``interval`` while writes come, never while none do.
final class WALCheckpointer: @unchecked Sendable {
    /// The pool writer's own automatic checkpoint: only if this thread falls far behind (80 MB of
    /// WAL at 4 KiB pages).
    static let backstopPages = 20_000
    /// The most often a checkpoint runs while writes come.
    static let interval: TimeInterval = 0.25

    private let path: String
    private let logger: Logger
    private let condition = NSCondition()
    private var dirty = false
    private var stopped = false
    private var thread: Thread?
    private var finished = false

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// A write committed: a checkpoint is due within ``interval``. The first one starts the
    /// thread (a process that only reads never has one).
    func wrote() {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped, !dirty else { return }
        dirty = true
        if thread == nil {
            let thread = Thread { [self] in run() }
            thread.name = "callrec.sqlite.checkpoint"
            self.thread = thread
            thread.start()
        } else {
            condition.signal()
        }
    }

    /// Stops the thread, after the checkpoint under way (if any); returns when it has ended.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while thread != nil, !finished { condition.wait() }
        condition.unlock()
    }

    private func run() {
        var queue: DatabaseQueue?
        checkpoints(&queue)
        // Closed before `stop()` returns: the store's close then closes the last connection, which
        // deletes the WAL (a process that exits right after its close leaves no WAL behind).
        try? queue?.close()
        queue = nil
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Checkpoints whenever writes came, until stopped.
    private func checkpoints(_ queue: inout DatabaseQueue?) {
        while true {
            condition.lock()
            while !dirty, !stopped { condition.wait() }
            let stop = stopped
            dirty = false
            condition.unlock()
            if stop { return }
            do {
                if queue == nil {
                    var config = Configuration()
                    config.label = "callrec.store.checkpoint"
                    config.busyMode = .timeout(SQLiteStore.busyTimeout)
                    queue = try DatabaseQueue(path: path, configuration: config)
                }
                try queue?.writeWithoutTransaction { try $0.checkpoint(.passive) }
            } catch {
                // Not fatal: the writer's backstop checkpoints if this never succeeds again.
                logger.debug("WAL checkpoint failed", metadata: ["error": "\(SQLiteStore.describe(error))"])
            }
            // At most one checkpoint per interval; writes in the meantime set `dirty` again.
            let next = Date().addingTimeInterval(Self.interval)
            condition.lock()
            while !stopped, Date() < next { _ = condition.wait(until: next) }
            condition.unlock()
        }
    }
}

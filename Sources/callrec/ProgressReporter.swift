import CallApp
import CallPipeline
import CallStore
import Foundation
import Logging
import Synchronization

/// A progress bar on a terminal; a log line every few seconds otherwise (DESIGN §7). Always on
/// stderr, so `--json` keeps stdout to itself.
final class ProgressReporter: Sendable {
    private struct State {
        var count = ProgressCount()
        var lastDraw = ContinuousClock.now
        var drawn = false
    }

    private let state = Mutex(State())
    private let logger: Logger
    private let terminal: Bool
    /// Whether finished files come with their audio's length (transcode); the upload run counts
    /// jobs as they end and shows files per second instead.
    private let countsAudio: Bool
    private let started = ContinuousClock.now

    init(logger: Logger, quiet: Bool, countsAudio: Bool = true) {
        self.logger = logger
        self.countsAudio = countsAudio
        terminal = !quiet && isatty(STDERR_FILENO) == 1
    }

    func handle(_ event: TranscodeBatch.Event) {
        let line: String? = state.withLock { s in
            s.count.record(event)
            let now = ContinuousClock.now
            let interval: Duration = terminal ? .milliseconds(100) : .seconds(5)
            guard now - s.lastDraw >= interval || s.count.done == s.count.total else { return nil }
            s.lastDraw = now
            s.drawn = true
            return s.count.text(seconds: (now - started).seconds, bar: terminal, countsAudio: countsAudio)
        }
        guard let line else { return }
        if terminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            logger.info("\(line)")
        }
    }

    func finish() {
        if terminal, state.withLock({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

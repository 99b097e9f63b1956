import CallPipeline
import Foundation
import Logging
import Synchronization

/// A progress bar on a terminal; a log line every few seconds otherwise (DESIGN §7). Always on
/// stderr, so `--json` keeps stdout to itself.
final class ProgressReporter: Sendable {
    private struct State {
        var total = 0
        var done = 0
        var failed = 0
        var audio = 0.0
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
            switch event {
            case .started(let files): s.total = files
            case .finished(let report, let audio):
                s.done += 1
                s.audio += audio
                if report.status == .failed { s.failed += 1 }
            }
            let now = ContinuousClock.now
            let interval: Duration = terminal ? .milliseconds(100) : .seconds(5)
            guard now - s.lastDraw >= interval || s.done == s.total else { return nil }
            s.lastDraw = now
            s.drawn = true
            return render(s, elapsed: now - started)
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

    private func render(_ s: State, elapsed: Duration) -> String {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        // Clamped: jobs left by an earlier run can finish in this one, beyond its own count.
        let fraction = s.total > 0 ? min(1, Double(s.done) / Double(s.total)) : 1
        let speed = seconds > 0 ? s.audio / seconds : 0
        let eta = fraction > 0 && fraction < 1 ? seconds / fraction - seconds : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        // The upload run learns its total once registration ends; until then, no "/0".
        let count = s.total > 0 || s.done == 0 ? "\(s.done)/\(s.total)" : "\(s.done)"
        var text = "\(terminal ? "[\(bar)] " : "")\(count) files"
        if s.failed > 0 { text += " (\(s.failed) failed)" }
        if countsAudio {
            text += String(format: ", %.2f h audio, %.0f× realtime", s.audio / 3600, speed)
        } else {
            text += String(format: ", %.1f files/s", seconds > 0 ? Double(s.done) / seconds : 0)
        }
        if eta > 0 { text += ", ETA \(formatDuration(eta))" }
        return text
    }
}

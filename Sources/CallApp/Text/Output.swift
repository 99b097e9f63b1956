public import CallPipeline
import CallStore
import CallSupport
import Foundation

/// One line of what a command prints without `--json`: on stdout, or on stderr (the failed and
/// waiting files, what was left alone). The renderers below return them in the order printed;
/// the CLI writes them.
public enum OutputLine: Hashable, Sendable {
    case out(String)
    case err(String)

    /// The text, wherever it goes.
    public var text: String {
        switch self {
        case .out(let text), .err(let text): text
        }
    }
}

/// `3:25` or `1:02:03`.
public func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}

extension BatchReport {
    /// The failed (and, with `waiting`, the waiting) files, and those not logged on purpose
    /// (skipped with a reason: `internal_call`, `missed_call`, `unrecognised_name`), one stderr
    /// line each.
    public func problemLines(waiting: Bool = true) -> [OutputLine] {
        files.filter { $0.status == .failed || (waiting && $0.status == .waiting) || $0.isNotLogged }.map { file in
            let label = switch file.status {
            case .failed: "failed "
            case .waiting: "waiting"
            default: "skipped"
            }
            return .err("\(label) \(file.error?.code ?? "?"): \(file.error?.message ?? "")")
        }
    }

    /// How many files were skipped with a reason (not logged by the source's policy, or a name
    /// no layout knows), rather than done before.
    public var notLogged: Int { files.count(where: \.isNotLogged) }

    /// `, 2 not logged` when some were.
    var notLoggedSuffix: String { notLogged > 0 ? ", \(notLogged) not logged" : "" }

    private var waitingSuffix: String { summary.waiting > 0 ? ", \(summary.waiting) waiting" : "" }

    /// `callrec enqueue`: the problems, then one summary line.
    public var enqueueLines: [OutputLine] {
        problemLines() + [.out("\(summary.ok) enqueued, \(summary.skipped - notLogged) known already\(notLoggedSuffix), \(summary.failed) failed\(waitingSuffix)")]
    }

    /// `callrec transcode` into `output`: the problems, then one summary line.
    public func transcodeLines(output: String) -> [OutputLine] {
        let s = summary
        let speed = s.wallSeconds > 0 ? s.audioSeconds / s.wallSeconds : 0
        return problemLines() + [.out("\(s.ok) ok, \(s.failed) failed, \(s.skipped) skipped\(waitingSuffix); \(formatDuration(s.audioSeconds)) of audio in \(String(format: "%.1f", s.wallSeconds)) s (\(Int(speed))× realtime) → \(output)")]
    }
}

/// What a progress display shows: files done of the total, failed, hours of audio, drawn at
/// most every `interval` (and when the last file ends). Time is a parameter: `now` is the
/// caller's clock.
public struct ProgressDisplay: Sendable {
    public private(set) var total = 0
    public private(set) var done = 0
    public private(set) var failed = 0
    public private(set) var audio = 0.0
    /// Whether a line was drawn (a terminal then needs its last newline).
    public private(set) var drawn = false
    /// A bar of 24 characters in front (a terminal).
    let bar: Bool
    /// The audio's hours and speed (transcode), else files per second (the upload run, whose
    /// finished jobs come without their audio's length).
    let countsAudio: Bool
    let interval: Duration
    let started: ContinuousClock.Instant
    var lastDraw: ContinuousClock.Instant

    /// A terminal (`bar`) redraws every 100 ms, a log every 5 s.
    public init(bar: Bool, countsAudio: Bool, now: ContinuousClock.Instant) {
        self.bar = bar
        self.countsAudio = countsAudio
        interval = bar ? .milliseconds(100) : .seconds(5)
        started = now
        lastDraw = now
    }

    /// Counts `event`; the line to draw at `now`, when one is due.
    public mutating func line(after event: TranscodeBatch.Event, now: ContinuousClock.Instant) -> String? {
        switch event {
        case .started(let files): total = files
        case .finished(let report, let audio):
            done += 1
            self.audio += audio
            if report.status == .failed { failed += 1 }
        }
        guard now - lastDraw >= interval || done == total else { return nil }
        lastDraw = now
        drawn = true
        return text(seconds: (now - started).seconds)
    }

    func text(seconds: Double) -> String {
        // Clamped: jobs left by an earlier run can finish in this one, beyond its own count.
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let speed = seconds > 0 ? audio / seconds : 0
        let eta = fraction > 0 && fraction < 1 ? seconds / fraction - seconds : 0
        let width = 24
        let filled = Int(fraction * Double(width))
        let drawn = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        // The upload run learns its total once registration ends; until then, no "/0".
        let count = total > 0 || done == 0 ? "\(done)/\(total)" : "\(done)"
        var text = "\(bar ? "[\(drawn)] " : "")\(count) files"
        if failed > 0 { text += " (\(failed) failed)" }
        if countsAudio {
            text += String(format: ", %.2f h audio, %.0f× realtime", audio / 3600, speed)
        } else {
            text += String(format: ", %.1f files/s", seconds > 0 ? Double(done) / seconds : 0)
        }
        if eta > 0 { text += ", ETA \(formatDuration(eta))" }
        return text
    }
}

extension FileReport {
    /// Skipped with a reason (a call the policy does not log, a name no layout knows).
    var isNotLogged: Bool { status == .skipped && error != nil }
}

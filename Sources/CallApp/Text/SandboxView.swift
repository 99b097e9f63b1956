public import CallPipeline
public import CallSandbox
import Foundation

/// What `upload --sandbox` prints of the sandbox above the run's summary: how many call logs it
/// holds, whether the audio of this directory's parts arrived as the spool holds it, and the
/// newest few (it may hold thousands; they are all in its state file).
public struct SandboxView: Sendable {
    /// The call logs listed.
    public static let newest = 10

    let snapshot: SandboxSnapshot
    let report: BatchReport
    /// The sandbox's state directory.
    let directory: String

    public init(snapshot: SandboxSnapshot, report: BatchReport, directory: String) {
        self.snapshot = snapshot
        self.report = report
        self.directory = directory
    }

    public var text: String {
        let live = snapshot.callLogs.filter { !$0.deleted }
        let deleted = snapshot.callLogs.count - live.count
        // The SHA-256 of each part of this directory, by the call log it went to.
        let spool = Dictionary(report.files.flatMap(\.parts).compactMap { part in part.callLogId.map { ($0, part.sha256) } },
                               uniquingKeysWith: { first, _ in first })
        let arrived = live.filter { spool[$0.id] != nil }
        let differ = arrived.filter { $0.recording?.sha256 != spool[$0.id] }
        var head = "The sandbox holds \(count(live.count, "call log")) (\(live.filter { $0.recording != nil }.count) with a recording"
        head += deleted > 0 ? "; \(deleted) deleted). " : "). "
        head += arrived.isEmpty ? "None of them is this directory's."
            : differ.isEmpty ? "The audio of this directory's \(count(arrived.count, "part")) arrived as the spool holds it (SHA-256)."
            : "\(differ.count) of this directory's \(count(arrived.count, "part")) arrived with other bytes than the spool holds!"
        var lines = ["", head]
        let ordered = live  // in creation order (the snapshot's; `created_at` keeps whole seconds only)
        let shown = ordered.suffix(Self.newest)
        if ordered.count > shown.count { lines.append("The newest \(shown.count):") }
        lines += shown.map { row($0, spool: spool) }
        let unshown = differ.filter { log in !shown.contains { $0.id == log.id } }
        if !unshown.isEmpty {
            lines.append("Also arrived with other bytes:")
            lines += unshown.map { row($0, spool: spool) }
        }
        if ordered.count > shown.count {
            lines.append("All \(ordered.count) are in \((directory as NSString).appendingPathComponent("sandbox-state.json")) "
                + "(or GET /_sandbox/state of `callrec sandbox --state \(directory)`).")
        }
        return (lines + [""]).joined(separator: "\n")
    }

    private func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    private func row(_ log: SandboxCallLog, spool: [String: String]) -> String {
        var line = "  \(log.id)  \((log.subject ?? "-").padding(toLength: 28, withPad: " ", startingAt: 0))"
        if let recording = log.recording {
            line += "  \(recording.bytes) bytes  sha256 \(recording.sha256.prefix(16))…"
            if let expected = spool[log.id] { line += expected == recording.sha256 ? "  = spool" : "  ≠ spool!" }
        } else {
            line += "  (no recording)"
        }
        return line
    }
}

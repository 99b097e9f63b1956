import CallAudio
public import Foundation

/// When a recording counts as written to its end (issue 13, item 2): nothing about the file —
/// its size, modification time or change time — moved within ``seconds`` before now, it did not
/// change while it was read, and a WAV whose header its recorder has not finalised yet (data size
/// 0, a RIFF size that disagrees with the file) has been still for longer
/// (``unfinishedHeaderSeconds``). A file that is not settled is not taken: the run reports it
/// `waiting` (`not_settled`, with the time to run again) and a later run takes it, once.
///
/// Age is counted from the file's own times against ``now``, so the check costs a `stat` and no
/// waiting; tests set ``now`` instead of sleeping.
public struct Settle: Sendable {
    /// How long a file must have been still. 0 takes every file as it is (and turns the header
    /// check off too).
    public var seconds: Double
    /// The clock the file's times are compared with.
    public var now: @Sendable () -> Date

    public init(seconds: Double = 2, now: @escaping @Sendable () -> Date = { Date() }) {
        self.seconds = seconds
        self.now = now
    }

    /// Every file is taken as it is.
    public static let immediate = Settle(seconds: 0)

    /// How long a WAV with an unfinished header must have been still: a recorder that writes in
    /// bursts is not caught between two, and a file whose recorder died before finishing its
    /// header is taken as it is (its data size salvaged) after this.
    public var unfinishedHeaderSeconds: Double { seconds > 0 ? max(seconds, 60) : 0 }

    /// Why the recording at `path` (shown as `shown`) is not settled, and when it may be; nil
    /// when it is. `file` names the file the stamp is of (the recording, or its sidecar).
    func check(path: String, shown: String, stamp: FileStamp, file: String? = nil) -> FileReport? {
        guard seconds > 0 else { return nil }
        let last = max(stamp.modifiedAt, stamp.changedAt)
        let age = now().timeIntervalSince1970 - last
        if age < seconds {
            let moved = age < 0 ? "its times are \(Self.format(-age)) in the future (a clock out of step?)" : "it changed \(Self.format(age)) ago"
            return waiting(shown, until: last + seconds, "\(file ?? shown): still being written (\(moved); a file is taken once it has not changed for \(Self.format(seconds)))")
        }
        if file == nil, age < unfinishedHeaderSeconds, let header = WAVHeader.unfinished(path: path) {
            return waiting(shown, until: last + unfinishedHeaderSeconds,
                           "\(shown): \(header): a recorder is still writing it (or died before finishing it: then it is taken as it is once it has not changed for \(Self.format(unfinishedHeaderSeconds)))")
        }
        return nil
    }

    /// The report of a file that changed while it was read.
    func changedWhileRead(shown: String) -> FileReport {
        waiting(shown, until: now().timeIntervalSince1970 + seconds, "\(shown): changed while it was read (still being written)")
    }

    private func waiting(_ shown: String, until: Double, _ reason: String) -> FileReport {
        let until = Date(timeIntervalSince1970: until.rounded(.up))
        return FileReport(path: shown, key: nil, status: .waiting,
                          error: .init(code: Self.code, message: "\(reason); run again after \(ISO8601DateFormatter().string(from: until))"),
                          warnings: [], input: nil, stats: nil, parts: [], waitsUntil: until)
    }

    /// The code of a file reported `waiting` because it is not settled.
    public static let code = "not_settled"

    static func format(_ seconds: Double) -> String {
        seconds >= 10 || seconds == seconds.rounded() ? "\(Int(seconds.rounded())) s" : String(format: "%.1f s", seconds)
    }
}

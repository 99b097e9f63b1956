import ArgumentParser
import CallPipeline
import Foundation

/// `--settle SECONDS` (upload, enqueue, transcode): how long a recording must have been still
/// before it is taken.
struct SettleOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "A file whose size or times moved within this many seconds (or a WAV whose header is unfinished, for at least a minute) is still being written: it waits for a later run. 0 takes every file as it is.",
        valueName: "seconds"))
    var settle: Double = 2

    func validate() throws {
        guard settle.isFinite, settle >= 0 else { throw ValidationError("--settle must be a number of seconds, 0 or more") }
    }

    var value: Settle { Settle(seconds: settle) }
}

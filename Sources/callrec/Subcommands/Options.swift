import ArgumentParser
import CallAudio
import Foundation
import Logging

/// `--json`, `--jobs`, `--log-level`: shared by every subcommand.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Print one JSON document on stdout (progress and logs go to stderr).")
    var json = false

    @Option(help: "Recordings (and parts of one long recording) processed in parallel. Default: the number of cores.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard jobs >= 1, jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a level") }
    }

    func makeLogger() -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "callrec")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// One flag per transcode and chunk setting (DESIGN §3).
struct TranscodeOptions: ParsableArguments {
    @Option(help: "Rates above this are resampled down to it; lower rates are never upsampled.")
    var maxSampleRate: Int = 16000

    @Option(help: "CBR bitrate per channel in kbps. Default: the lowest that keeps the LAME tag (24 at 8 kHz, 40 at 16 kHz).")
    var bitrate: Int?

    @Option(help: "LAME quality, 0 (best, slowest) to 9 (fastest).")
    var quality: Int = 5

    @Flag(help: "Mix two-channel recordings (call legs) down to mono instead of keeping them as stereo.")
    var downmix = false

    @Option(help: "libsoxr quality when resampling: quick, low, medium, high, very-high.")
    var resampleQuality: String = "high"

    @Option(help: "A part holds at most this many minutes of audio.")
    var partMaxMinutes: Double = 60

    @Option(help: "A part's MP3 is at most this size (bytes, or with KiB/MiB/KB/MB).")
    var partMaxBytes: String = "20MiB"

    @Option(help: "The shortest pause (milliseconds) a part may be cut in.")
    var minSilenceMs: Int = 400

    /// Every setting is checked when the command line is parsed, before any file is read.
    func validate() throws { _ = try settings() }

    func settings() throws -> TranscodeSettings {
        var s = TranscodeSettings()
        s.maximumSampleRate = maxSampleRate
        s.bitratePerChannel = bitrate
        s.quality = quality
        s.downmix = downmix
        guard let rq = TranscodeSettings.ResampleQuality(rawValue: resampleQuality) else {
            throw ValidationError("--resample-quality must be one of \(TranscodeSettings.ResampleQuality.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        s.resampleQuality = rq
        s.partMaximumSeconds = partMaxMinutes * 60
        guard let bytes = Self.parseBytes(partMaxBytes) else {
            throw ValidationError("--part-max-bytes \(partMaxBytes) is not a size (e.g. 20MiB, 10MB, 1048576)")
        }
        s.partMaximumBytes = bytes
        s.minimumSilenceSeconds = Double(minSilenceMs) / 1000
        do { try s.validate() } catch { throw ValidationError(Self.flagged(error.reason)) }
        // Most call recordings are mono: a bitrate no mono part can have at any rate would fail
        // nearly every file, so it is refused here rather than file by file.
        if let bitrate, !s.reachableFormats(bitratePerChannel: bitrate).contains(where: { $0.channels == 1 }) {
            throw ValidationError("--bitrate \(bitrate) fits no mono output rate up to --max-sample-rate \(maxSampleRate) (it is no MP3 bitrate there, or the LAME tag, which makes parts decode to their exact length, does not fit its frames); use at least \(s.lowestUsableBitrate()) kbps, or leave --bitrate out")
        }
        return s
    }

    /// The settings' own words, with the flag a user typed.
    static func flagged(_ reason: String) -> String {
        let flags = [("maximum sample rate", "--max-sample-rate"), ("LAME quality", "--quality"), ("bitrate", "--bitrate"),
                     ("part limit of", "--part-max-minutes / --part-max-bytes"), ("minimum silence", "--min-silence-ms")]
        guard let flag = flags.first(where: { reason.hasPrefix($0.0) })?.1 else { return reason }
        return "\(flag): \(reason)"
    }

    static func parseBytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("KiB", 1024), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("B", 1)]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            return Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)).map { Int($0 * Double(scale)) }
        }
        return Int(trimmed)
    }
}

/// Validation thresholds (research/audio.md §7.2) as flags.
struct ValidationOptions: ParsableArguments {
    @Option(help: "Recordings shorter than this many seconds are rejected.")
    var minDuration: Double = 1.0

    @Option(help: "Recordings longer than this many hours are rejected as implausible.")
    var maxDurationHours: Double = 12

    @Option(help: "Reject when more than this share of samples is NaN/Inf.")
    var maxNonfiniteRatio: Double = 0.001

    @Option(help: "Silent when every 20 ms window is below this RMS level (dBFS) …")
    var silenceRmsDb: Float = -60

    @Option(help: "… and the peak below this level (dBFS).")
    var silencePeakDb: Float = -50

    @Option(help: "Accepted sample-rate range, lowest.")
    var minSampleRate: Int = 8000

    @Option(help: "Accepted sample-rate range, highest.")
    var maxInputSampleRate: Int = 384_000

    /// Impossible thresholds are refused when the command line is parsed, before any file is read.
    func validate() throws {
        guard minDuration.isFinite, minDuration >= 0 else { throw ValidationError("--min-duration \(minDuration) must be 0 or more seconds") }
        guard maxDurationHours.isFinite, maxDurationHours > 0, maxDurationHours * 3600 > minDuration else {
            throw ValidationError("--max-duration-hours \(maxDurationHours) must be positive and longer than --min-duration")
        }
        guard maxNonfiniteRatio.isFinite, (0...1).contains(maxNonfiniteRatio) else {
            throw ValidationError("--max-nonfinite-ratio \(maxNonfiniteRatio) is a share of the samples: between 0 and 1")
        }
        guard silenceRmsDb.isFinite, silencePeakDb.isFinite, silenceRmsDb <= 0, silencePeakDb <= 0 else {
            throw ValidationError("--silence-rms-db and --silence-peak-db are levels in dBFS: 0 or below")
        }
        guard minSampleRate >= 8000 else {
            throw ValidationError("--min-sample-rate \(minSampleRate): below 8000 Hz there is no MP3 rate (callrec never upsamples)")
        }
        guard maxInputSampleRate >= minSampleRate, maxInputSampleRate <= 10_000_000 else {
            throw ValidationError("--max-input-sample-rate \(maxInputSampleRate) must be at least --min-sample-rate (\(minSampleRate)) and a real rate")
        }
    }

    func configuration() -> ValidationConfiguration {
        var c = ValidationConfiguration()
        c.minimumSeconds = minDuration
        c.maximumSeconds = maxDurationHours * 3600
        c.maximumNonFiniteRatio = maxNonfiniteRatio
        c.silenceRMSdB = silenceRmsDb
        c.silencePeakdB = silencePeakDb
        c.minimumSampleRate = minSampleRate
        c.maximumSampleRate = maxInputSampleRate
        return c
    }
}

func writeJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}

func standardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

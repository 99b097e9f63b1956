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
        do { try s.validate() } catch { throw ValidationError(error.reason) }
        return s
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
    var maxInputSampleRate: Int = 48000

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

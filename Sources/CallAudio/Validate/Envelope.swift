/// The 20 ms energy envelope of a recording, kept from the validation pass for the chunk planner:
/// a few hundred KB for hours of audio.
public struct Envelope: Sendable, Equatable {
    /// Frames per window (sample rate / 50).
    public let windowFrames: Int
    /// Energy of each window in dBFS, the loudest channel's (a cut must be quiet on every leg).
    public let values: [Float]
    /// 10th percentile of the window energies: the noise floor.
    public let floor: Float

    public init(windowFrames: Int, values: [Float], floor: Float) {
        self.windowFrames = windowFrames
        self.values = values
        self.floor = floor
    }
}

/// What the validation pass measured, for reports and `probe`.
public struct SignalStats: Sendable, Equatable, Codable {
    public var peakdBFS: Float
    /// Power mean of the speech-active windows, dBFS.
    public var activeLeveldBFS: Float?
    public var noiseFloordBFS: Float
    /// Share of 20 ms windows that are speech-active, overall and per channel (≤ 2 channels).
    public var activeRatio: Double
    public var channelActiveRatios: [Double]
    public var longestSilenceSeconds: Double
    public var clippedSamples: Int64
    public var nonFiniteSamples: Int64
    public var dcOffset: Float

    enum CodingKeys: String, CodingKey {
        case peakdBFS = "peak_dbfs", activeLeveldBFS = "active_level_dbfs", noiseFloordBFS = "noise_floor_dbfs"
        case activeRatio = "active_ratio", channelActiveRatios = "channel_active_ratios"
        case longestSilenceSeconds = "longest_silence_seconds", clippedSamples = "clipped_samples"
        case nonFiniteSamples = "nonfinite_samples", dcOffset = "dc_offset"
    }
}

/// Level in dBFS of a mean square (power) value.
@inline(__always)
func decibels(power: Double) -> Float {
    Float(10 * log10(max(power, 1e-20)))
}

/// Level in dBFS of an amplitude.
@inline(__always)
func decibels(amplitude: Float) -> Float {
    Float(20 * log10(max(Double(amplitude), 1e-10)))
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

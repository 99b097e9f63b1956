/// Thresholds of the validation rules (research/audio.md §7.2). Every one is configuration: the
/// defaults are the research's, and each has a CLI flag.
public struct ValidationConfiguration: Sendable, Equatable, Codable {
    /// Shorter than this is rejected (`too_short`).
    public var minimumSeconds: Double = 1.0
    /// Shorter than this is flagged (`short_recording`).
    public var shortSeconds: Double = 3.0
    /// Longer than this is implausible for a call (`implausible_header`).
    public var maximumSeconds: Double = 12 * 3600
    /// Accepted sample rates: what the resampler (libsoxr) takes down to an MP3 rate. Hardware
    /// recorders and softphones record at 96 or 192 kHz; 384 kHz is the highest PCM rate in use.
    /// Below 8 kHz there is no MP3 rate to keep without upsampling, which callrec never does.
    public var minimumSampleRate: Int = 8000
    public var maximumSampleRate: Int = 384_000
    /// More channels than this are rejected; 3 up to this many are downmixed.
    public var maximumChannels: Int = 8
    /// NaN/Inf samples above this share of all samples reject the file (`corrupt_float`).
    public var maximumNonFiniteRatio: Double = 0.001
    /// A recording is silent when every 20 ms window is below `silenceRMSdB` and the peak below
    /// `silencePeakdB`.
    public var silenceRMSdB: Float = -60
    public var silencePeakdB: Float = -50
    /// A 20 ms window is speech-active above `max(activeMinimumdB, noiseFloor + activeAboveFloordB)`.
    public var activeMinimumdB: Float = -45
    public var activeAboveFloordB: Float = 10
    /// Dead air: less than this share active, or one silence longer than `deadAirSeconds`.
    public var deadAirActiveRatio: Double = 0.05
    public var deadAirSeconds: Double = 120
    /// One-way audio (two channels): one side active less than `oneWayQuietRatio` while the other
    /// is active more than `oneWayActiveRatio`.
    public var oneWayQuietRatio: Double = 0.01
    public var oneWayActiveRatio: Double = 0.10
    /// Clipping: runs of at least `clipRun` samples at or above `clipLevel` × the codec's full
    /// scale, making up more than `clipRatio` of the active samples.
    public var clipLevel: Float = 0.99
    public var clipRun: Int = 3
    public var clipRatio: Double = 0.001
    /// Active speech quieter than this is flagged (`low_level`).
    public var lowLeveldB: Float = -40
    /// |mean| above this share of full scale is flagged (`dc_offset`).
    public var dcOffset: Float = 0.01
    /// Decoded frames short of the header's by more than this share (or one codec block) mean the
    /// file is truncated.
    public var truncationTolerance: Double = 0.005

    public init() {}
}

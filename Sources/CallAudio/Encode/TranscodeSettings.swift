/// How recordings become MP3 parts. The defaults are research/audio.md §7.1's choices for speech
/// and exact length; every field has a CLI flag.
public struct TranscodeSettings: Sendable, Equatable, Codable {
    /// Rates above this are resampled down to it (libsoxr); lower rates are never upsampled.
    public var maximumSampleRate: Int = 16000
    /// CBR bitrate per channel in kbps; nil picks the lowest rate whose frames still carry the
    /// LAME tag (24 at 8 kHz, 32 at 11.025/12 kHz, 40 at 16 kHz, 56 at 22.05 kHz, 64 above).
    public var bitratePerChannel: Int? = nil
    /// LAME algorithm quality, 0 (best, slowest) to 9.
    public var quality: Int = 5
    /// Mix two channels (call legs) down to mono instead of keeping them as STEREO.
    public var downmix: Bool = false
    /// libsoxr quality recipe.
    public var resampleQuality: ResampleQuality = .high
    /// A part holds at most this much audio …
    public var partMaximumSeconds: Double = 3600
    /// … and at most this many bytes of MP3 (the CRM's upload limit), whichever comes first.
    public var partMaximumBytes: Int = 20 * 1024 * 1024
    /// The shortest pause a cut may be placed in.
    public var minimumSilenceSeconds: Double = 0.4

    public init() {}

    public enum ResampleQuality: String, Sendable, Codable, CaseIterable {
        case quick, low, medium, high, veryHigh = "very-high"
    }
}

/// The MP3 stream one recording becomes.
public struct OutputFormat: Sendable, Equatable, Codable {
    public var sampleRate: Int
    public var channels: Int
    /// Total CBR bitrate in kbps (both channels together).
    public var bitrateKbps: Int
    public var quality: Int

    /// Samples per MPEG frame: 1152 for MPEG-1 (32 kHz and up), 576 below.
    public var samplesPerFrame: Int { sampleRate >= 32000 ? 1152 : 576 }
    /// Bytes per MPEG frame without padding.
    public var frameBytes: Double { Double(samplesPerFrame / 8) * Double(bitrateKbps) * 1000 / Double(sampleRate) }

    enum CodingKeys: String, CodingKey {
        case sampleRate = "sample_rate", channels, bitrateKbps = "bitrate_kbps", quality
    }
}

extension TranscodeSettings {
    static let lameRates = [8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000]

    private static func allowedBitrates(forRate rate: Int) -> [Int] {
        switch rate {
        case ..<16000: [8, 16, 24, 32, 40, 48, 56, 64]
        case ..<32000: [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160]
        default: [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]
        }
    }

    /// Lowest total CBR bitrate whose frame can hold the LAME tag (research/audio.md §2.5).
    private static func minimumTaggedBitrate(rate: Int, channels: Int) -> Int {
        switch rate {
        case 8000: 24
        case 11025, 12000: 32
        case 16000: 40
        case 22050: 56
        case 24000: 64
        case 32000: channels == 1 ? 40 : 48
        case 44100: channels == 1 ? 56 : 64
        default: 64
        }
    }

    private static func defaultBitratePerChannel(rate: Int) -> Int {
        switch rate {
        case ..<11025: 24
        case ..<16000: 32
        case ..<22050: 40
        case ..<24000: 56
        default: 64
        }
    }

    /// Checks the settings themselves, before any file is read: LAME aborts the process on some
    /// configurations (research/audio.md S2), so nothing unvalidated reaches it.
    public func validate() throws(AudioError) {
        guard Self.lameRates.contains(maximumSampleRate) else {
            throw AudioError(.invalidSettings, path: "", "maximum sample rate \(maximumSampleRate) Hz is not an MP3 rate (\(Self.lameRates.map(String.init).joined(separator: ", ")))")
        }
        guard (0...9).contains(quality) else {
            throw AudioError(.invalidSettings, path: "", "LAME quality \(quality) is outside 0…9")
        }
        if let b = bitratePerChannel, !(8...320).contains(b) {
            throw AudioError(.invalidSettings, path: "", "bitrate \(b) kbps per channel is outside 8…320")
        }
        guard partMaximumSeconds >= 10 else {
            throw AudioError(.invalidSettings, path: "", "part limit of \(partMaximumSeconds) s is below 10 s")
        }
        guard partMaximumBytes >= 256 * 1024 else {
            throw AudioError(.invalidSettings, path: "", "part limit of \(partMaximumBytes) bytes is below 256 KiB")
        }
        guard minimumSilenceSeconds > 0, minimumSilenceSeconds <= 10 else {
            throw AudioError(.invalidSettings, path: "", "minimum silence of \(minimumSilenceSeconds) s is outside (0, 10]")
        }
    }

    /// The output formats (rate, channels) a recording can get under these settings with
    /// `bitratePerChannel`: those whose MP3 frames take that bitrate and still carry the LAME tag.
    public func reachableFormats(bitratePerChannel: Int) -> [(rate: Int, channels: Int)] {
        var formats: [(rate: Int, channels: Int)] = []
        for rate in Self.lameRates where rate <= maximumSampleRate {
            for channels in downmix ? [1] : [1, 2] {
                let total = bitratePerChannel * channels
                if Self.allowedBitrates(forRate: rate).contains(total), total >= Self.minimumTaggedBitrate(rate: rate, channels: channels) {
                    formats.append((rate, channels))
                }
            }
        }
        return formats
    }

    /// The lowest per-channel bitrate a mono part can have at some reachable rate.
    public func lowestUsableBitrate() -> Int {
        (8...320).first { reachableFormats(bitratePerChannel: $0).contains { $0.channels == 1 } } ?? 24
    }

    /// The output for a recording with `info`: never upsampled, rates above the maximum brought
    /// down to it, one or two channels, a CBR bitrate that is valid for the MPEG version and
    /// still carries the LAME tag (so every part decodes to its exact length).
    public func outputFormat(for info: AudioInfo, path: String = "") throws(AudioError) -> OutputFormat {
        try validate()
        let ceiling = min(info.sampleRate, maximumSampleRate)
        guard let rate = Self.lameRates.last(where: { $0 <= ceiling }) else {
            throw AudioError(.unsupportedLayout, path: path, "sample rate \(info.sampleRate) Hz is below the lowest MP3 rate (8000 Hz)")
        }
        let channels = info.channels == 2 && !downmix ? 2 : 1
        let perChannel = bitratePerChannel ?? Self.defaultBitratePerChannel(rate: rate)
        let total = perChannel * channels
        let allowed = Self.allowedBitrates(forRate: rate)
        guard allowed.contains(total) else {
            throw AudioError(.invalidSettings, path: path, "\(total) kbps is not an MP3 bitrate at \(rate) Hz (allowed: \(allowed.map(String.init).joined(separator: ", ")))")
        }
        let minimum = Self.minimumTaggedBitrate(rate: rate, channels: channels)
        guard total >= minimum else {
            throw AudioError(.invalidSettings, path: path, "at \(total) kbps and \(rate) Hz the LAME tag does not fit in a frame, so parts would not decode to their exact length; use at least \(minimum) kbps")
        }
        return OutputFormat(sampleRate: rate, channels: channels, bitrateKbps: total, quality: quality)
    }
}

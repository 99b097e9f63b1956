/// What the container says about a recording, plus what decoding found.
public struct AudioInfo: Sendable, Equatable, Codable {
    /// Container, as libsndfile names its major formats: `WAV`, `WAVEX`, `W64`, `RF64`, `AIFF`, `AU`,
    /// `CAF`, `FLAC`, `OGG`, `MPEG`.
    public var format: String
    /// Codec: `PCM_16`, `ULAW`, `ALAW`, `GSM610`, `IMA_ADPCM`, `VORBIS`, `OPUS`, `MPEG_LAYER_III` …
    public var subtype: String
    public var sampleRate: Int
    public var channels: Int
    /// Frames that decoded (one frame = one sample per channel). The truth, unlike the header.
    public var frames: Int64
    /// Frames the header declared; `nil` when it does not know (truncated Ogg Opus).
    public var declaredFrames: Int64?

    public var seconds: Double { sampleRate > 0 ? Double(frames) / Double(sampleRate) : 0 }

    public init(format: String, subtype: String, sampleRate: Int, channels: Int, frames: Int64, declaredFrames: Int64?) {
        self.format = format
        self.subtype = subtype
        self.sampleRate = sampleRate
        self.channels = channels
        self.frames = frames
        self.declaredFrames = declaredFrames
    }

    enum CodingKeys: String, CodingKey {
        case format, subtype, sampleRate = "sample_rate", channels, frames, declaredFrames = "declared_frames", seconds
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        subtype = try c.decode(String.self, forKey: .subtype)
        sampleRate = try c.decode(Int.self, forKey: .sampleRate)
        channels = try c.decode(Int.self, forKey: .channels)
        frames = try c.decode(Int64.self, forKey: .frames)
        declaredFrames = try c.decodeIfPresent(Int64.self, forKey: .declaredFrames)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(subtype, forKey: .subtype)
        try c.encode(sampleRate, forKey: .sampleRate)
        try c.encode(channels, forKey: .channels)
        try c.encode(frames, forKey: .frames)
        try c.encode(declaredFrames, forKey: .declaredFrames)
        try c.encode(seconds, forKey: .seconds)
    }
}

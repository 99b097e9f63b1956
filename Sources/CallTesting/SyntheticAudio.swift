internal import CCallSndFile
import Foundation

/// Test audio, written with libsndfile in any format it writes (research/audio.md §7.5: generate
/// fixtures in the test instead of committing binaries).
public enum SyntheticAudio {
    /// Container + codec pairs libsndfile can write.
    public enum Format: String, Sendable, CaseIterable {
        case wavPCM16, wavPCM24, wavPCM32, wavPCMU8, wavFloat, wavDouble, wavULaw, wavALaw
        case wavIMAADPCM, wavMSADPCM, wavGSM, w64PCM16, rf64PCM16, aiffPCM16, auULaw, cafPCM16
        case flac16, oggVorbis, oggOpus, mp3

        var code: Int32 {
            let (major, minor): (Int, Int) = switch self {
            case .wavPCM16: (SF_FORMAT_WAV, SF_FORMAT_PCM_16)
            case .wavPCM24: (SF_FORMAT_WAV, SF_FORMAT_PCM_24)
            case .wavPCM32: (SF_FORMAT_WAV, SF_FORMAT_PCM_32)
            case .wavPCMU8: (SF_FORMAT_WAV, SF_FORMAT_PCM_U8)
            case .wavFloat: (SF_FORMAT_WAV, SF_FORMAT_FLOAT)
            case .wavDouble: (SF_FORMAT_WAV, SF_FORMAT_DOUBLE)
            case .wavULaw: (SF_FORMAT_WAV, SF_FORMAT_ULAW)
            case .wavALaw: (SF_FORMAT_WAV, SF_FORMAT_ALAW)
            case .wavIMAADPCM: (SF_FORMAT_WAV, SF_FORMAT_IMA_ADPCM)
            case .wavMSADPCM: (SF_FORMAT_WAV, SF_FORMAT_MS_ADPCM)
            case .wavGSM: (SF_FORMAT_WAV, SF_FORMAT_GSM610)
            case .w64PCM16: (SF_FORMAT_W64, SF_FORMAT_PCM_16)
            case .rf64PCM16: (SF_FORMAT_RF64, SF_FORMAT_PCM_16)
            case .aiffPCM16: (SF_FORMAT_AIFF, SF_FORMAT_PCM_16)
            case .auULaw: (SF_FORMAT_AU, SF_FORMAT_ULAW)
            case .cafPCM16: (SF_FORMAT_CAF, SF_FORMAT_PCM_16)
            case .flac16: (SF_FORMAT_FLAC, SF_FORMAT_PCM_16)
            case .oggVorbis: (SF_FORMAT_OGG, SF_FORMAT_VORBIS)
            case .oggOpus: (SF_FORMAT_OGG, SF_FORMAT_OPUS)
            case .mp3: (SF_FORMAT_MPEG, SF_FORMAT_MPEG_LAYER_III)
            }
            return Int32(major | minor)
        }

        /// Lossy codecs change the samples; compare against the decoded input, not the signal.
        public var isLossy: Bool { [.wavGSM, .wavIMAADPCM, .wavMSADPCM, .oggVorbis, .oggOpus, .mp3, .wavULaw, .wavALaw, .auULaw].contains(self) }
    }

    /// A deterministic test signal, generated block by block (hours of it cost no memory).
    public enum Signal: Sendable {
        /// Speech-like: a harmonic voice (≈150 Hz) with 4 Hz syllables, `talk` seconds on and
        /// `pause` off, over a faint noise floor. Two channels alternate like two call legs.
        case speech(talk: Double = 7, pause: Double = 3, level: Float = 0.3)
        /// Like `speech`, but the second channel stays silent (one-way audio).
        case oneWay(talk: Double = 7, pause: Double = 3)
        case sine(hz: Double, amplitude: Float)
        /// Digital zero.
        case silence
        /// White noise at `amplitude`.
        case noise(amplitude: Float)

        /// Whether second `t` falls in a pause of `.speech` (for checking cut points).
        public func isPause(at t: Double) -> Bool {
            switch self {
            case .speech(let talk, let pause, _), .oneWay(let talk, let pause):
                t.truncatingRemainder(dividingBy: talk + pause) >= talk
            default: false
            }
        }
    }

    /// Writes `seconds` of `signal` to `path`. For `.wavFloat` / `.wavDouble`, `poison` sets
    /// every `poison`-th sample to NaN (hostile-input tests).
    @discardableResult
    public static func write(_ signal: Signal, seconds: Double, sampleRate: Int = 8000, channels: Int = 1,
                             format: Format = .wavPCM16, to path: String, poison: Int? = nil) throws -> Int64 {
        let frames = Int64((seconds * Double(sampleRate)).rounded())
        try write(frames: frames, sampleRate: sampleRate, channels: channels, format: format, to: path) { buffer, start, count in
            fill(signal, buffer, start: start, frames: count, sampleRate: sampleRate, channels: channels)
            if format != .wavFloat, format != .wavDouble {
                // Integer codecs: clip like a real converter (libsndfile would wrap).
                for i in 0..<(count * channels) { buffer[i] = min(max(buffer[i], -1), 1) }
            }
            if let poison {
                for i in 0..<(count * channels) where (Int(start) * channels + i) % poison == 0 { buffer[i] = .nan }
            }
        }
        return frames
    }

    /// Writes `frames` frames produced by `generate(buffer, firstFrame, frameCount)`.
    public static func write(frames: Int64, sampleRate: Int, channels: Int, format: Format, to path: String,
                             generate: (UnsafeMutablePointer<Float>, Int64, Int) -> Void) throws {
        var info = SF_INFO()
        info.samplerate = Int32(sampleRate)
        info.channels = Int32(channels)
        info.format = format.code
        guard let file = sf_open(path, Int32(SFM_WRITE), &info) else {
            throw TestAudioError("cannot write \(format) at \(sampleRate) Hz × \(channels): \(String(cString: sf_strerror(nil)))")
        }
        defer { sf_close(file) }
        let block = 4096
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: block * channels)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while done < frames {
            let n = Int(min(Int64(block), frames - done))
            generate(buffer, done, n)
            let written = sf_writef_float(file, buffer, sf_count_t(n))
            guard written == n else { throw TestAudioError("short write to \(path)") }
            done += Int64(n)
        }
    }

    static func fill(_ signal: Signal, _ buffer: UnsafeMutablePointer<Float>, start: Int64, frames: Int,
                     sampleRate: Int, channels: Int) {
        let sr = Double(sampleRate)
        for f in 0..<frames {
            let index = start + Int64(f)
            let t = Double(index) / sr
            var noise = UInt64(bitPattern: index &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407)
            noise ^= noise >> 29
            let floor = Float(Int64(noise % 2001) - 1000) / 1000 * 0.00025  // ≈ −72 dBFS
            for c in 0..<channels {
                let value: Float
                switch signal {
                case .speech, .oneWay:
                    let (talk, pause, lvl): (Double, Double, Float) = switch signal {
                    case .speech(let t, let p, let l): (t, p, l)
                    case .oneWay(let t, let p): (t, p, 0.3)
                    default: (1, 0, 0)
                    }
                    let period = talk + pause
                    let turn = Int(t / period)
                    let inTalk = t.truncatingRemainder(dividingBy: period) < talk
                    var speaking = inTalk
                    if channels == 2 {
                        if case .oneWay = signal { speaking = inTalk && c == 0 } else { speaking = inTalk && turn % 2 == c }
                    }
                    if speaking {
                        let f0 = 150 + 20 * sin(2 * .pi * 0.5 * t) + Double(turn % 3) * 15
                        let syllable = Float(0.55 + 0.45 * sin(2 * .pi * 4 * t))
                        var v: Float = 0
                        for h in 1...6 { v += Float(sin(2 * .pi * f0 * Double(h) * t)) / Float(h) }
                        value = lvl * syllable * v / 2 + floor
                    } else {
                        value = floor
                    }
                case .sine(let hz, let amplitude):
                    value = amplitude * Float(sin(2 * .pi * hz * t))
                case .silence:
                    value = 0
                case .noise(let amplitude):
                    value = amplitude * Float(Int64(noise % 20001) - 10000) / 10000
                }
                buffer[f * channels + c] = value
            }
        }
    }

    /// Every sample of a file, decoded by libsndfile (no callrec code involved).
    public static func read(_ path: String) throws -> (sampleRate: Int, channels: Int, samples: [Float]) {
        var info = SF_INFO()
        guard let file = sf_open(path, Int32(SFM_READ), &info) else {
            throw TestAudioError("cannot read \(path): \(String(cString: sf_strerror(nil)))")
        }
        defer { sf_close(file) }
        var samples: [Float] = []
        let block = 8192 * Int(info.channels)
        var buffer = [Float](repeating: 0, count: block)
        while true {
            let n = buffer.withUnsafeMutableBufferPointer { sf_read_float(file, $0.baseAddress, sf_count_t(block)) }
            if n <= 0 { break }
            samples.append(contentsOf: buffer[0..<Int(n)])
        }
        return (Int(info.samplerate), Int(info.channels), samples)
    }
}

public struct TestAudioError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

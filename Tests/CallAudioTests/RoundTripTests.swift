import CallAudio
import CallTesting
import Foundation
import Testing

/// Every input format and layout → MP3 → decoded again by libsndfile and by ffmpeg: exactly the
/// input's frame count, the expected rate and channels, and a sane SNR.
@Suite struct RoundTripTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let format: SyntheticAudio.Format
        let rate: Int
        let channels: Int
        var testDescription: String { "\(format) \(rate) Hz × \(channels)" }
    }

    static let cases: [Case] = SyntheticAudio.Format.allCases.map { Case(format: $0, rate: 8000, channels: 1) } + [
        Case(format: .wavPCM16, rate: 16000, channels: 1),
        Case(format: .wavPCM16, rate: 8000, channels: 2),
        Case(format: .wavULaw, rate: 8000, channels: 2),
        Case(format: .wavPCM16, rate: 11025, channels: 1),
        Case(format: .wavPCM16, rate: 44100, channels: 2),
        Case(format: .wavFloat, rate: 48000, channels: 1),
        Case(format: .flac16, rate: 22050, channels: 1),
        Case(format: .wavPCM24, rate: 32000, channels: 2),
        Case(format: .oggOpus, rate: 16000, channels: 1),
    ]

    @Test(arguments: cases)
    func roundTrip(_ c: Case) async throws {
        try await withTemporaryDirectory { dir in
            let ext = switch c.format {
            case .flac16: "flac"
            case .oggOpus, .oggVorbis: "ogg"
            case .mp3: "mp3"
            default: "wav"
            }
            // A misleading extension on purpose: the content decides.
            let source = "\(dir)/in.\(ext == "wav" ? "dat" : ext)"
            let written = try SyntheticAudio.write(.speech(talk: 2, pause: 1), seconds: 6, sampleRate: c.rate,
                                                   channels: c.channels, format: c.format, to: source)
            let analysis = AudioAnalyzer.analyze(path: source)
            try #require(analysis.error == nil, "\(String(describing: analysis.error))")
            let info = try #require(analysis.info)
            #expect(info.sampleRate == c.rate)
            #expect(info.channels == c.channels)
            #expect(abs(Double(info.frames - written)) <= Double(written) * 0.02, "decoded \(info.frames) of \(written)")

            let settings = TranscodeSettings()
            let format = try settings.outputFormat(for: info)
            let expectedRate = [8000, 11025, 16000].contains(c.rate) ? c.rate : 16000
            #expect(format.sampleRate == expectedRate)
            #expect(format.channels == c.channels)
            let plan = ChunkPlanner.plan(frames: info.frames, inputRate: info.sampleRate, envelope: analysis.envelope!,
                                         format: format, settings: settings)
            #expect(plan.count == 1)
            let expectedFrames = (info.frames * Int64(expectedRate) + Int64(c.rate) / 2) / Int64(c.rate)
            #expect(plan[0].outputFrames == expectedFrames)

            let out = "\(dir)/out.mp3"
            let part = try Transcoder.encodePart(plan[0], of: analysis, format: format, settings: settings, to: out)
            #expect(part.frames == expectedFrames)

            // Independent decode 1: libsndfile (mpg123 underneath, LAME-tag aware).
            let decoded = try SyntheticAudio.read(out)
            #expect(decoded.sampleRate == expectedRate)
            #expect(decoded.channels == c.channels)
            #expect(Int64(decoded.samples.count / c.channels) == expectedFrames)
            // Independent decode 2: ffmpeg, where installed.
            if let frames = try ffmpegDecodedFrames(out, channels: c.channels) {
                #expect(frames == expectedFrames, "ffmpeg decoded \(frames)")
            }
            // Quality: aligned SNR against the decoded input when the rate is kept; level otherwise.
            let input = try SyntheticAudio.read(source)
            if expectedRate == c.rate {
                var signal = 0.0, noise = 0.0
                for (x, y) in zip(input.samples, decoded.samples) {
                    signal += Double(x * x)
                    noise += Double((x - y) * (x - y))
                }
                let snr = 10 * log10(signal / max(noise, 1e-12))
                #expect(snr > 8, "SNR \(snr) dB")
            } else {
                func rms(_ s: [Float]) -> Double { sqrt(s.reduce(0) { $0 + Double($1 * $1) } / Double(max(s.count, 1))) }
                let ratio = 20 * log10(rms(decoded.samples) / rms(input.samples))
                #expect(abs(ratio) < 2, "level changed by \(ratio) dB")
            }
        }
    }

    @Test func settingsThatLAMECannotTagAreRefused() throws {
        let info = AudioInfo(format: "WAV", subtype: "PCM_16", sampleRate: 8000, channels: 1, frames: 8000, declaredFrames: 8000)
        var s = TranscodeSettings()
        s.bitratePerChannel = 16  // no LAME tag at 8 kHz (S8)
        #expect(throws: AudioError.self) { try s.outputFormat(for: info) }
        s.bitratePerChannel = 40
        var stereo = info
        stereo.channels = 2
        #expect(throws: AudioError.self) { try s.outputFormat(for: stereo) }  // 80 kbps > MPEG-2.5 max
        s = TranscodeSettings()
        s.quality = 12
        #expect(throws: AudioError.self) { try s.validate() }
        s = TranscodeSettings()
        s.maximumSampleRate = 9000
        #expect(throws: AudioError.self) { try s.validate() }
        s = TranscodeSettings()
        s.downmix = true
        #expect(try s.outputFormat(for: stereo).channels == 1)
        #expect(try TranscodeSettings().outputFormat(for: stereo).bitrateKbps == 48)
    }
}

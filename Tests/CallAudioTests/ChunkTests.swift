import CallAudio
import CallTesting
import Foundation
import Testing

/// Chunking (research/audio.md §7.3): cuts in pauses, parts within the limit, exact sums.
@Suite struct ChunkTests {
    /// Encodes every part; returns (plan, decoded frame counts by libsndfile, by ffmpeg).
    func encodeAll(_ path: String, settings: TranscodeSettings, dir: String) throws -> ([PartPlan], [EncodedPart], AudioAnalysis) {
        let analysis = AudioAnalyzer.analyze(path: path)
        try #require(analysis.error == nil)
        let info = analysis.info!
        let format = try settings.outputFormat(for: info)
        let plan = ChunkPlanner.plan(frames: info.frames, inputRate: info.sampleRate, envelope: analysis.envelope!,
                                     format: format, settings: settings)
        let parts = try plan.map { try Transcoder.encodePart($0, of: analysis, format: format, settings: settings, to: "\(dir)/part\($0.index).mp3") }
        return (plan, parts, analysis)
    }

    @Test func cutsLandInPausesAndPartsAddUpExactly() async throws {
        try await withTemporaryDirectory { dir in
            let signal = SyntheticAudio.Signal.speech(talk: 7, pause: 3)
            let frames = try SyntheticAudio.write(signal, seconds: 305, format: .wavULaw, to: "\(dir)/long.wav")
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let (plan, parts, _) = try encodeAll("\(dir)/long.wav", settings: settings, dir: dir)
            #expect(plan.count >= 5 && plan.count <= 7, "\(plan.count) parts")
            for part in plan.dropLast() {
                #expect(part.cut == .silence)
                let t = Double(part.endFrame) / 8000
                #expect(signal.isPause(at: t), "cut at \(t) s is not in a pause")
                #expect(part.endFrame - part.startFrame <= 60 * 8000)
            }
            #expect(plan.last!.endFrame - plan.last!.startFrame >= 15 * 8000, "tail sliver")
            #expect(plan.reduce(0) { $0 + $1.outputFrames } == frames)
            var libsndfileTotal: Int64 = 0, ffmpegTotal: Int64 = 0
            for (p, part) in zip(plan, parts) {
                let decoded = Int64(try SyntheticAudio.read(part.path).samples.count)
                #expect(decoded == p.outputFrames, "part \(p.index) decodes to \(decoded), planned \(p.outputFrames)")
                libsndfileTotal += decoded
                if let f = try ffmpegDecodedFrames(part.path, channels: 1) {
                    #expect(f == p.outputFrames)
                    ffmpegTotal += f
                }
            }
            #expect(libsndfileTotal == frames)
            if which("ffmpeg") != nil { #expect(ffmpegTotal == frames) }
        }
    }

    @Test func byteLimitAndResamplingKeepExactSums() async throws {
        try await withTemporaryDirectory { dir in
            // 44.1 kHz stereo → 16 kHz stereo at 80 kbps: 10 kB/s, so a 1 MiB limit splits 4 minutes.
            let frames = try SyntheticAudio.write(.speech(talk: 5, pause: 2), seconds: 240, sampleRate: 44100,
                                                  channels: 2, to: "\(dir)/wide.wav")
            var settings = TranscodeSettings()
            settings.partMaximumBytes = 1 << 20
            let (plan, parts, _) = try encodeAll("\(dir)/wide.wav", settings: settings, dir: dir)
            #expect(plan.count >= 3)
            let expected = (frames * 16000 + 22050) / 44100
            #expect(plan.reduce(0) { $0 + $1.outputFrames } == expected)
            #expect(parts.reduce(0) { $0 + $1.frames } == expected)
            for part in parts {
                #expect(part.bytes <= 1 << 20)
                let decoded = try SyntheticAudio.read(part.path)
                #expect(Int64(decoded.samples.count / 2) == part.frames)
            }
        }
    }

    @Test func continuousSoundGetsAHardCutOnTheLimit() async throws {
        try await withTemporaryDirectory { dir in
            let frames = try SyntheticAudio.write(.noise(amplitude: 0.3), seconds: 130, to: "\(dir)/noise.wav")
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let (plan, parts, _) = try encodeAll("\(dir)/noise.wav", settings: settings, dir: dir)
            #expect(plan.count == 3)
            #expect(plan[0].cut == .hard && plan[0].endFrame == 60 * 8000)
            #expect(parts.reduce(0) { $0 + $1.frames } == frames)
        }
    }

    @Test func compressedInputPartsDecodeSequentiallyToTheSameSamples() async throws {
        try await withTemporaryDirectory { dir in
            // FLAC cannot seek sample-exactly in every case; parts after the first decode and skip.
            let frames = try SyntheticAudio.write(.speech(), seconds: 150, format: .flac16, to: "\(dir)/c.flac")
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let (plan, parts, _) = try encodeAll("\(dir)/c.flac", settings: settings, dir: dir)
            #expect(plan.count == 3)
            #expect(parts.reduce(0) { $0 + $1.frames } == frames)
            // The parts, decoded and joined, are the source (within MP3 error) and in the right order.
            let source = try SyntheticAudio.read("\(dir)/c.flac").samples
            var joined: [Float] = []
            for part in parts { joined += try SyntheticAudio.read(part.path).samples }
            var signal = 0.0, noise = 0.0
            for (x, y) in zip(source, joined) { signal += Double(x * x); noise += Double((x - y) * (x - y)) }
            #expect(10 * log10(signal / noise) > 8)
        }
    }
}

@Suite struct OnePassTests {
    @Test(arguments: [SyntheticAudio.Format.wavGSM, .wavPCM16, .flac16, .oggOpus])
    func onePassEqualsTwoPassByteForByte(_ format: SyntheticAudio.Format) async throws {
        try await withTemporaryDirectory { dir in
            let rate = format == .oggOpus ? 16000 : 8000
            try SyntheticAudio.write(.speech(), seconds: 20, sampleRate: rate, format: format, to: "\(dir)/in")
            let settings = TranscodeSettings()
            let one = Transcoder.transcodeInOnePass(path: "\(dir)/in", validation: .init(), settings: settings, destination: "\(dir)/one.mp3")
            let part = try #require(one.part)
            let analysis = AudioAnalyzer.analyze(path: "\(dir)/in")
            let outputFormat = try settings.outputFormat(for: analysis.info!)
            let plan = ChunkPlanner.plan(frames: analysis.info!.frames, inputRate: rate, envelope: analysis.envelope!, format: outputFormat, settings: settings)
            let two = try Transcoder.encodePart(plan[0], of: analysis, format: outputFormat, settings: settings, to: "\(dir)/two.mp3")
            #expect(part.sha256 == two.sha256)
            #expect(part.frames == analysis.info!.frames)
            #expect(one.analysis.stats == analysis.stats)
        }
    }

    @Test func rejectedRecordingLeavesNoOutput() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/quiet.wav")
            try SyntheticAudio.write(.speech(), seconds: 5, format: .wavFloat, to: "\(dir)/nan.wav", poison: 50)
            for name in ["quiet", "nan"] {
                let outcome = Transcoder.transcodeInOnePass(path: "\(dir)/\(name).wav", validation: .init(), settings: .init(), destination: "\(dir)/\(name).mp3")
                #expect(outcome.analysis.error != nil)
                #expect(outcome.part == nil)
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".mp3") || $0.hasSuffix(".tmp") }
                #expect(leftovers.isEmpty, "\(leftovers)")
            }
        }
    }

    @Test func recordingThatNeedsSplittingIsOnlyAnalysed() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 70, to: "\(dir)/long.wav")
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let outcome = Transcoder.transcodeInOnePass(path: "\(dir)/long.wav", validation: .init(), settings: settings, destination: "\(dir)/long.mp3")
            #expect(outcome.analysis.error == nil)
            #expect(outcome.part == nil)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/long.mp3"))
        }
    }
}

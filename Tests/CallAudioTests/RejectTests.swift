import CallAudio
import CallTesting
import Foundation
import Testing

/// Every reject code from a hostile input built here (research/audio.md §7.2, §7.5 item 4).
@Suite struct RejectTests {
    func analyze(_ path: String) -> AudioAnalysis { AudioAnalyzer.analyze(path: path, displayPath: (path as NSString).lastPathComponent) }

    @Test func emptyAndTinyFiles() async throws {
        await withTemporaryDirectory { dir in
            Hostile.write([], to: "\(dir)/empty.wav")
            Hostile.write(Array(repeating: 0x52, count: 10), to: "\(dir)/ten.wav")
            let empty = analyze("\(dir)/empty.wav")
            #expect(empty.error?.code == .emptyFile)
            #expect(empty.error?.message == "empty.wav: the file is empty (0 bytes)")
            #expect(analyze("\(dir)/ten.wav").error?.code == .emptyFile)
        }
    }

    @Test func randomBytesAndTextAreNotAudio() async throws {
        await withTemporaryDirectory { dir in
            Hostile.write(Hostile.randomBytes(4096), to: "\(dir)/random.wav")
            Hostile.write(Array("This is a meeting note, not a recording.\nSecond line of text here.\n".utf8), to: "\(dir)/notes.wav")
            let random = analyze("\(dir)/random.wav")
            #expect(random.error?.code == .unsupportedContainer)
            let text = analyze("\(dir)/notes.wav")
            #expect(text.error?.code == .unsupportedContainer)
            #expect(text.error?.message.contains("text") == true)
            #expect(text.error?.message.hasPrefix("notes.wav: ") == true)
        }
    }

    @Test func headerOnlyHasNoAudio() async throws {
        await withTemporaryDirectory { dir in
            Hostile.write(Hostile.wavHeader(dataBytes: 0), to: "\(dir)/header.wav")
            #expect(analyze("\(dir)/header.wav").error?.code == .noAudio)
        }
    }

    @Test func zeroChannelsAndZeroRateAreRejected() async throws {
        await withTemporaryDirectory { dir in
            let audio = [UInt8](repeating: 0x10, count: 16000)
            Hostile.write(Hostile.wavHeader(channels: 0, dataBytes: 16000) + audio, to: "\(dir)/zero-ch.wav")
            Hostile.write(Hostile.wavHeader(rate: 0, dataBytes: 16000) + audio, to: "\(dir)/zero-rate.wav")
            let ch = analyze("\(dir)/zero-ch.wav")
            let rate = analyze("\(dir)/zero-rate.wav")
            #expect(ch.error != nil)
            #expect(rate.error != nil)
            #expect(ch.error?.code == .unsupportedLayout)
            #expect(rate.error?.code == .unsupportedLayout)
            #expect(ch.error?.message.contains("channel") == true, "\(String(describing: ch.error))")
            #expect(rate.error?.message.lowercased().contains("rate") == true, "\(String(describing: rate.error))")
        }
    }

    @Test func nanFloatsRejectedBeyondLimitAndSanitisedBelowIt() async throws {
        try await withTemporaryDirectory { dir in
            // 1 % NaN: rejected.
            try SyntheticAudio.write(.speech(), seconds: 5, format: .wavFloat, to: "\(dir)/nan.wav", poison: 100)
            let bad = analyze("\(dir)/nan.wav")
            #expect(bad.error?.code == .corruptFloat)
            // A few NaN: accepted with a warning, and LAME (which aborts on NaN) survives the encode.
            try SyntheticAudio.write(.speech(), seconds: 5, format: .wavFloat, to: "\(dir)/few.wav", poison: 20_000)
            let few = analyze("\(dir)/few.wav")
            #expect(few.error == nil)
            #expect(few.warnings.contains { $0.code == .nonFiniteSamples })
            let settings = TranscodeSettings()
            let format = try settings.outputFormat(for: few.info!)
            let part = ChunkPlanner.plan(frames: few.info!.frames, inputRate: 8000, envelope: few.envelope!, format: format, settings: settings)[0]
            let encoded = try Transcoder.encodePart(part, of: few, format: format, settings: settings, to: "\(dir)/few.mp3")
            #expect(encoded.frames == 40000)
        }
    }

    @Test func digitalSilenceAndNearSilence() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/zero.wav")
            let zero = analyze("\(dir)/zero.wav")
            #expect(zero.error?.code == .silentRecording)
            #expect(zero.error?.message.contains("digital silence") == true)
            try SyntheticAudio.write(.silence, seconds: 5, format: .wavALaw, to: "\(dir)/alaw.wav")
            #expect(analyze("\(dir)/alaw.wav").error?.code == .silentRecording)
            try SyntheticAudio.write(.noise(amplitude: 0.0005), seconds: 5, to: "\(dir)/hiss.wav")
            #expect(analyze("\(dir)/hiss.wav").error?.code == .silentRecording)
        }
    }

    @Test func tenMillisecondsIsTooShort() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.sine(hz: 440, amplitude: 0.5), seconds: 0.01, to: "\(dir)/blip.wav")
            let blip = analyze("\(dir)/blip.wav")
            #expect(blip.error?.code == .tooShort)
            #expect(blip.info?.frames == 80)
        }
    }

    @Test func truncatedFilesKeepWhatDecodes() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 10, format: .wavULaw, to: "\(dir)/full.wav")
            let bytes = Hostile.bytes(of: "\(dir)/full.wav")
            Hostile.write(Array(bytes.prefix(bytes.count / 2)), to: "\(dir)/half.wav")
            let half = analyze("\(dir)/half.wav")
            #expect(half.error == nil)
            #expect(half.warnings.contains { $0.code == .truncated })
            let kept = try #require(half.info?.frames)
            #expect(abs(kept - 40000) < 100)

            try SyntheticAudio.write(.speech(), seconds: 10, format: .flac16, to: "\(dir)/full.flac")
            let flac = Hostile.bytes(of: "\(dir)/full.flac")
            Hostile.write(Array(flac.prefix(flac.count / 3)), to: "\(dir)/third.flac")
            let third = analyze("\(dir)/third.flac")
            #expect(third.error == nil)
            #expect(third.warnings.contains { $0.code == .truncated })
            #expect((third.info?.frames ?? 0) < 40000)
        }
    }

    @Test func corruptMiddleIsFlaggedAndKeepsWhatDecodes() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 20, format: .flac16, to: "\(dir)/clean.flac")
            var bytes = Hostile.bytes(of: "\(dir)/clean.flac")
            let garbage = Hostile.randomBytes(2000, seed: 7)
            bytes.replaceSubrange((bytes.count / 2)..<(bytes.count / 2 + 2000), with: garbage)
            Hostile.write(bytes, to: "\(dir)/corrupt.flac")
            let corrupt = analyze("\(dir)/corrupt.flac")
            // libsndfile stops early with no error (S4): callrec must notice and say so.
            #expect(corrupt.error == nil)
            #expect(corrupt.warnings.contains { $0.code == .truncated })
            let kept = try #require(corrupt.info?.frames)
            #expect(kept > 20_000 && kept < 160_000)
        }
    }

    @Test func dataSizeZeroWAVIsSalvaged() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/ok.wav")
            var bytes = Hostile.bytes(of: "\(dir)/ok.wav")
            // Zero the data chunk size (the recorder crashed before finalising the header).
            let data = Array("data".utf8)
            let at = (0..<(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == data }!
            bytes.replaceSubrange((at + 4)..<(at + 8), with: [0, 0, 0, 0])
            Hostile.write(bytes, to: "\(dir)/crashed.wav")
            let salvaged = analyze("\(dir)/crashed.wav")
            #expect(salvaged.error == nil)
            #expect(salvaged.info?.frames == 32000)
            #expect(salvaged.warnings.contains { $0.code == .salvagedHeader })
        }
    }

    @Test func unsupportedLayoutAndRate() async throws {
        try await withTemporaryDirectory { dir in
            // 96 kHz is accepted (resampled down); only what the resampler does not take is refused.
            try SyntheticAudio.write(.speech(), seconds: 2, sampleRate: 96000, to: "\(dir)/hires.wav")
            #expect(analyze("\(dir)/hires.wav").error == nil)
            try SyntheticAudio.write(.speech(), seconds: 2, sampleRate: 768_000, to: "\(dir)/absurd.wav")
            #expect(analyze("\(dir)/absurd.wav").error?.code == .unsupportedLayout)
            try SyntheticAudio.write(.speech(), seconds: 2, sampleRate: 6000, to: "\(dir)/low.wav")
            #expect(analyze("\(dir)/low.wav").error?.code == .unsupportedLayout)
            try SyntheticAudio.write(.speech(), seconds: 2, channels: 12, to: "\(dir)/many.wav")
            #expect(analyze("\(dir)/many.wav").error?.code == .unsupportedLayout)
        }
    }

    @Test func warningsForOneWayAudioAndClipping() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.oneWay(), seconds: 30, channels: 2, to: "\(dir)/oneway.wav")
            #expect(analyze("\(dir)/oneway.wav").warnings.contains { $0.code == .oneWayAudio })
            try SyntheticAudio.write(.sine(hz: 300, amplitude: 3), seconds: 5, format: .wavULaw, to: "\(dir)/hot.wav")
            let hot = analyze("\(dir)/hot.wav")
            #expect(hot.error == nil)
            #expect(hot.warnings.contains { $0.code == .clipped })
            try SyntheticAudio.write(.speech(), seconds: 12, channels: 4, to: "\(dir)/quad.wav")
            #expect(analyze("\(dir)/quad.wav").warnings.contains { $0.code == .downmixed })
        }
    }
}

@Suite struct MP3LengthTests {
    /// A VBR MP3 without a Xing header: libsndfile decodes only up to its estimate (S3). callrec
    /// cannot recover the rest through libsndfile, but it must say so instead of dropping it.
    @Test(.enabled(if: which("lame") != nil, "needs the lame CLI to write an MP3 without a Xing header"))
    func vbrWithoutXingIsFlagged() async throws {
        try await withTemporaryDirectory { dir in
            // Loud noise first (a high-bitrate first frame: libsndfile's estimate, size ÷ that
            // bitrate, comes out short), then a quiet tone that VBR encodes at a low bitrate.
            var seed: UInt64 = 1
            try SyntheticAudio.write(frames: 8000 * 60, sampleRate: 8000, channels: 1, format: .wavPCM16, to: "\(dir)/in.wav") { buffer, start, count in
                for i in 0..<count {
                    let t = Double(start + Int64(i)) / 8000
                    seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    let noise = Float(Int64(seed >> 40) % 2001 - 1000) / 1000
                    buffer[i] = t < 2 ? 0.8 * noise : Float(0.05 * sin(2 * .pi * 300 * t))
                }
            }
            let lame = try await runProcess(which("lame")!, ["--silent", "-V", "2", "-t", "\(dir)/in.wav", "\(dir)/vbr.mp3"])
            try #require(lame.status == 0, "\(lame.stderr)")
            let analysis = AudioAnalyzer.analyze(path: "\(dir)/vbr.mp3", displayPath: "vbr.mp3")
            let decoded = try #require(analysis.info?.frames)
            #expect(decoded < 8000 * 59, "libsndfile 1.2.0 stops at its estimate for this file (S3)")
            #expect(analysis.warnings.contains { $0.code == .lengthMismatch }, "decoded \(decoded) frames of 480000, no warning")
            // A LAME-tagged MP3 decodes fully and is not flagged.
            try SyntheticAudio.write(.speech(), seconds: 30, format: .mp3, to: "\(dir)/tagged.mp3")
            let tagged = AudioAnalyzer.analyze(path: "\(dir)/tagged.mp3")
            #expect(!tagged.warnings.contains { $0.code == .lengthMismatch })
            #expect(abs(Int(tagged.info?.frames ?? 0) - 240_000) < 1200)
        }
    }

    /// `readingAtMost` reads a file as though it ended there: an MP3's head still decodes as MPEG
    /// (the sandbox's check of an upload), and no byte past the limit is read.
    @Test func readingAtMostDecodesOnlyTheHead() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 60, format: .mp3, to: "\(dir)/call.mp3")
            let whole = AudioAnalyzer.analyze(path: "\(dir)/call.mp3")
            let head = AudioAnalyzer.analyze(path: "\(dir)/call.mp3", readingAtMost: 16 << 10)
            #expect(head.info?.format == "MPEG" && whole.info?.format == "MPEG")
            let wholeFrames = try #require(whole.info?.frames), headFrames = try #require(head.info?.frames)
            #expect(headFrames > 8000 && headFrames < wholeFrames / 4, "\(headFrames) of \(wholeFrames) frames")
            // Bytes past the limit are not read: garbage there changes nothing.
            let handle = try #require(FileHandle(forWritingAtPath: "\(dir)/call.mp3"))
            try handle.seek(toOffset: 20 << 10)
            handle.write(Data(repeating: 0xFF, count: 64 << 10))
            try handle.close()
            let again = AudioAnalyzer.analyze(path: "\(dir)/call.mp3", readingAtMost: 16 << 10)
            #expect(again.info?.frames == headFrames && again.error?.code == head.error?.code)
        }
    }
}

import CallAudio
import CallPipeline
import CallTesting
import Foundation
import Logging
import Testing

/// The committed sample calls (testdata/calls, rebuilt by testdata/make-testdata.sh) all
/// transcode, and every MP3 decodes — through libsndfile and through ffmpeg — to exactly the
/// source's frames (resampled ones to floor(frames × 16000 / rate + 0.5)).
@Suite struct TestdataTests {
    @Test func sampleCallsTranscodeExactly() async throws {
        let root = repositoryRoot() + "/testdata/calls"
        try #require(FileManager.default.fileExists(atPath: root), "testdata/calls is missing; run testdata/make-testdata.sh")
        try await withTemporaryDirectory { dir in
            var options = TranscodeBatch.Options()
            options.requireSidecar = true
            let report = try await TranscodeBatch(root: root, output: dir, options: options, logger: Logger(label: "test")).run()
            #expect(report.files.count == 8)
            #expect(report.summary.ok == 8, "\(report.files.compactMap(\.error))")
            for file in report.files {
                let input = try #require(file.input)
                let part = try #require(file.parts.first)
                let rate = Int64(part.sampleRate), inRate = Int64(input.sampleRate)
                #expect(part.frames == (input.frames * rate + inRate / 2) / inRate)
                #expect(Int64(try SyntheticAudio.read(part.path).samples.count / part.channels) == part.frames)
                if let frames = try ffmpegDecodedFrames(part.path, channels: part.channels) {
                    #expect(frames == part.frames, "\(file.path): ffmpeg decoded \(frames)")
                }
            }
            let legs = report.files.first { $0.path.hasSuffix("call-0005-support-legs.wav") }
            #expect(legs?.parts.first?.channels == 2)
        }
    }
}

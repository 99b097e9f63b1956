import CallAudio
import CallPipeline
import CallTesting
import Foundation
import Logging
import Testing

@Suite struct TranscodeBatchTests {
    static let sidecar = """
        { "call_log": { "outcome": "connected", "to_phone_number": "+15551230000", "start_time": "2026-11-20 10:00:00" } }
        """

    /// A folder of good and hostile recordings.
    func makeBatch(_ dir: String) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: "\(dir)/in/sub", withIntermediateDirectories: true)
        try SyntheticAudio.write(.speech(), seconds: 20, format: .wavULaw, to: "\(dir)/in/a.wav")
        try SyntheticAudio.write(.speech(), seconds: 12, sampleRate: 16000, format: .flac16, to: "\(dir)/in/sub/b.flac")
        try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150, channels: 2, format: .wavPCM16, to: "\(dir)/in/sub/long.wav")
        try SyntheticAudio.write(.speech(), seconds: 8, format: .wavGSM, to: "\(dir)/in/gsm.wav")
        _ = fm.createFile(atPath: "\(dir)/in/a.json", contents: Data(Self.sidecar.utf8))
        _ = fm.createFile(atPath: "\(dir)/in/sub/b.json", contents: Data(#"{"call_log": {"outcome": "maybe"}}"#.utf8))
        // Hostile: empty, text, silence, NaN, 10 ms.
        _ = fm.createFile(atPath: "\(dir)/in/empty.wav", contents: Data())
        _ = fm.createFile(atPath: "\(dir)/in/notes.wav", contents: Data("a text file pretending to be audio, long enough to pass the size check".utf8))
        try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/in/silent.wav")
        try SyntheticAudio.write(.speech(), seconds: 5, format: .wavFloat, to: "\(dir)/in/nan.wav", poison: 50)
        try SyntheticAudio.write(.speech(), seconds: 0.01, to: "\(dir)/in/blip.wav")
        try fm.createSymbolicLink(atPath: "\(dir)/in/link.wav", withDestinationPath: "\(dir)/in/a.wav")
        _ = fm.createFile(atPath: "\(dir)/in/.hidden.wav", contents: Data("x".utf8))
    }

    func run(_ dir: String, out: String, jobs: Int, partSeconds: Double = 60) async throws -> BatchReport {
        var options = TranscodeBatch.Options()
        options.jobs = jobs
        options.settings.partMaximumSeconds = partSeconds
        options.settle = .immediate
        return try await TranscodeBatch(root: "\(dir)/in", output: out, options: options, logger: Logger(label: "test")).run()
    }

    @Test func badFilesFailAloneWithTheirCodesAndGoodOnesFinish() async throws {
        try await withTemporaryDirectory { dir in
            try makeBatch(dir)
            let report = try await run(dir, out: "\(dir)/out", jobs: 2)
            let byPath = Dictionary(uniqueKeysWithValues: report.files.map { ($0.path, $0) })
            #expect(byPath[".hidden.wav"] == nil)
            #expect(byPath["a.wav"]?.status == .ok)
            #expect(byPath["gsm.wav"]?.status == .ok)
            #expect(byPath["gsm.wav"]?.warnings.contains { $0.code == .missingSidecar } == true)
            #expect(byPath["sub/long.wav"]?.status == .ok)
            #expect(byPath["sub/long.wav"]?.parts.count == 3)
            #expect(byPath["sub/long.wav"]?.parts.map { Paths_name($0.path) } == ["long-part01.mp3", "long-part02.mp3", "long-part03.mp3"])
            #expect(byPath["sub/b.flac"]?.error?.code == "invalid_sidecar")
            #expect(byPath["sub/b.flac"]?.error?.message.hasPrefix("sub/b.json: call_log.outcome: \"maybe\" is not one of") == true)
            #expect(byPath["empty.wav"]?.error?.code == "empty_file")
            #expect(byPath["notes.wav"]?.error?.code == "unsupported_container")
            #expect(byPath["silent.wav"]?.error?.code == "silent_recording")
            #expect(byPath["nan.wav"]?.error?.code == "corrupt_float")
            #expect(byPath["blip.wav"]?.error?.code == "too_short")
            #expect(byPath["link.wav"]?.error?.code == "refused")
            #expect(report.summary.ok == 3 && report.summary.failed == 7)
            // Outputs mirror the input tree; every part decodes to its share exactly.
            let long = try #require(byPath["sub/long.wav"])
            #expect(long.parts.reduce(0) { $0 + $1.frames } == 150 * 8000)
            for part in long.parts {
                #expect(part.path.hasPrefix("\(dir)/out/sub/"))
                #expect(Int64(try SyntheticAudio.read(part.path).samples.count / 2) == part.frames)
            }
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/a.mp3"))
            for name in ["empty", "notes", "silent", "nan", "blip", "link"] {
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/\(name).mp3"))
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(dir)/out").allSatisfy { !$0.hasSuffix(".tmp") })
        }
    }

    @Test func twoJobsGiveByteIdenticalOutputToOne() async throws {
        try await withTemporaryDirectory { dir in
            try makeBatch(dir)
            let one = try await run(dir, out: "\(dir)/out1", jobs: 1)
            let two = try await run(dir, out: "\(dir)/out2", jobs: 2)
            let hashes1 = one.files.flatMap { $0.parts.map(\.sha256) }
            let hashes2 = two.files.flatMap { $0.parts.map(\.sha256) }
            #expect(!hashes1.isEmpty)
            #expect(hashes1 == hashes2)
            #expect(one.files.map(\.status) == two.files.map(\.status))
            for (a, b) in zip(one.files.flatMap(\.parts), two.files.flatMap(\.parts)) {
                #expect(FileManager.default.contents(atPath: a.path) == FileManager.default.contents(atPath: b.path))
            }
        }
    }

    @Test func reRunSkipsCompleteOutputsAndRedoesChangedOnes() async throws {
        try await withTemporaryDirectory { dir in
            try makeBatch(dir)
            let first = try await run(dir, out: "\(dir)/out", jobs: 2)
            let second = try await run(dir, out: "\(dir)/out", jobs: 2)
            #expect(second.summary.skipped == first.summary.ok)
            let skippedHashes: [String] = second.files.filter { $0.status == .skipped }.flatMap { $0.parts.map(\.sha256) }
            let firstHashes: [String] = first.files.filter { $0.status == .ok }.flatMap { $0.parts.map(\.sha256) }
            #expect(skippedHashes == firstHashes)
            // A deleted part makes that recording run again; other settings re-run everything.
            try FileManager.default.removeItem(atPath: "\(dir)/out/a.mp3")
            let third = try await run(dir, out: "\(dir)/out", jobs: 2)
            #expect(third.files.first { $0.path == "a.wav" }?.status == .ok)
            #expect(third.summary.ok == 1)
            // A new part limit changes the split: stale parts from the earlier run are removed.
            let fourth = try await run(dir, out: "\(dir)/out", jobs: 2, partSeconds: 3600)
            #expect(fourth.files.first { $0.path == "sub/long.wav" }?.parts.count == 1)
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/sub/long.mp3"))
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/sub/long-part02.mp3"))
        }
    }
}

func Paths_name(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

@Suite struct OutputCollisionTests {
    @Test func aSplitRecordingNeverOverwritesAnotherRecordingsOutput() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 150, to: "\(dir)/in/a.wav")         // splits into a-part01…
            try SyntheticAudio.write(.speech(), seconds: 10, to: "\(dir)/in/a-part01.wav")   // becomes a-part01.mp3
            var options = TranscodeBatch.Options()
            options.settings.partMaximumSeconds = 60
            options.settle = .immediate
            let report = try await TranscodeBatch(root: "\(dir)/in", output: "\(dir)/out", options: options, logger: Logger(label: "t")).run()
            let byPath = Dictionary(uniqueKeysWithValues: report.files.map { ($0.path, $0) })
            #expect(byPath["a-part01.wav"]?.status == .ok)
            #expect(byPath["a.wav"]?.error?.code == "output_collision")
            let kept = try SyntheticAudio.read("\(dir)/out/a-part01.mp3")
            #expect(kept.samples.count == 80_000)  // a-part01.wav's audio, not a's first part
        }
    }
}

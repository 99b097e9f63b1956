import CallAudio
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Testing

@testable import CallPipeline

/// A recording still being written is not taken (issue 13, item 2): its age is counted from the
/// file's own times against an injected clock, so these tests set "now" instead of sleeping.
@Suite struct SettleTests {
    /// When the file last changed, as the check counts it (modification or change time).
    static func lastChange(_ path: String) throws -> Double {
        let stamp = try #require(FileStamp(path: path))
        return max(stamp.modifiedAt, stamp.changedAt)
    }

    /// `dir/in/call.wav`: the first half of a 20 s call with the header a recorder writes before
    /// it knows the length (data size 0), and its sidecar written before it.
    static func unfinishedRecording(_ dir: String) throws -> Double {
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: "\(dir)/in/call.json", contents: Data(TranscodeBatchTests.sidecar.utf8))
        try SyntheticAudio.write(.speech(), seconds: 20, to: "\(dir)/whole.wav")
        let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/whole.wav"))
        try RecorderFixtures.unfinishedWAV(whole, fraction: 0.5).write(to: URL(fileURLWithPath: "\(dir)/in/call.wav"))
        return try max(lastChange("\(dir)/in/call.wav"), lastChange("\(dir)/in/call.json"))
    }

    @Test func aYoungFileWaitsAndAWAVWithAnUnfinishedHeaderWaitsLongerThenIsTakenAsItIs() async throws {
        try await withTemporaryDirectory { dir in
            let changed = try Self.unfinishedRecording(dir)
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            func enqueue(after seconds: Double) async throws -> BatchReport {
                let settle = Settle(seconds: 2, now: { Date(timeIntervalSince1970: changed + seconds) })
                return try await EnqueueBatch(root: "\(dir)/in", store: store, jobs: 1, settle: settle, logger: Logger(label: "test")).run()
            }
            // Changed a second ago: still being written.
            let young = try await enqueue(after: 1)
            let file = try #require(young.files.first)
            #expect(file.status == .waiting && file.error?.code == "not_settled")
            #expect(file.error?.message.hasPrefix("call.wav: still being written (it changed ") == true, "\(String(describing: file.error))")
            #expect(file.error?.message.contains("run again after \(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: (changed + 2).rounded(.up))))") == true)
            #expect(young.summary.waiting == 1 && young.summary.resumeAfter == Date(timeIntervalSince1970: (changed + 2).rounded(.up)))
            // Still for 10 s, but the header says no audio yet: a recorder is still writing it.
            let unfinished = try await enqueue(after: 10)
            #expect(unfinished.files.first?.error?.code == "not_settled")
            #expect(unfinished.files.first?.error?.message.contains("its WAV header still declares no audio data") == true,
                    "\(String(describing: unfinished.files.first?.error))")
            #expect(unfinished.summary.resumeAfter == Date(timeIntervalSince1970: (changed + 60).rounded(.up)))
            #expect(try await store.recordings(RecordingQuery()).isEmpty)
            // Still for a minute: its recorder died; taken as it is (the transcode salvages it).
            let taken = try await enqueue(after: 61)
            #expect(taken.files.first?.status == .ok, "\(String(describing: taken.files.first))")
            #expect(try await store.recordings(RecordingQuery()).count == 1)
            try await store.close()
        }
    }

    /// A sidecar still being written (a recorder may write it last) holds its recording back too.
    @Test func aYoungSidecarHoldsItsRecordingBack() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/call.wav")
            // The audio is older than the sidecar by more than the settle time (50 ms of file
            // times, far above their granularity); "now" is just after the sidecar was written.
            try await Task.sleep(for: .milliseconds(50))
            _ = FileManager.default.createFile(atPath: "\(dir)/in/call.json", contents: Data(#"{"call_log": {"outc"#.utf8))
            let sidecar = try Self.lastChange("\(dir)/in/call.json")
            #expect(try sidecar - Self.lastChange("\(dir)/in/call.wav") >= 0.03)
            var options = TranscodeBatch.Options()
            options.settle = Settle(seconds: 0.02, now: { Date(timeIntervalSince1970: sidecar + 0.01) })
            let report = try await TranscodeBatch(root: "\(dir)/in", output: "\(dir)/out", options: options, logger: Logger(label: "test")).run()
            #expect(report.files.first?.error?.code == "not_settled")
            #expect(report.files.first?.error?.message.hasPrefix("call.json: still being written") == true, "\(String(describing: report.files.first?.error))")
        }
    }

    /// `transcode` takes the same view: a young file is not transcoded (nothing is written for
    /// it), and is once it has settled.
    @Test func transcodeTakesOnlySettledFiles() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            try SyntheticAudio.write(.speech(), seconds: 4, to: "\(dir)/in/call.wav")
            let changed = try Self.lastChange("\(dir)/in/call.wav")
            func transcode(after seconds: Double) async throws -> BatchReport {
                var options = TranscodeBatch.Options()
                options.settle = Settle(seconds: 2, now: { Date(timeIntervalSince1970: changed + seconds) })
                return try await TranscodeBatch(root: "\(dir)/in", output: "\(dir)/out", options: options, logger: Logger(label: "test")).run()
            }
            let young = try await transcode(after: 0.5)
            #expect(young.files.first?.status == .waiting && young.summary.waiting == 1)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/out/call.mp3"))
            let settled = try await transcode(after: 3)
            #expect(settled.files.first?.status == .ok)
            #expect(FileManager.default.fileExists(atPath: "\(dir)/out/call.mp3"))
        }
    }
}

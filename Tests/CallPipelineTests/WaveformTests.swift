import CallAudio
import CallJobs
import CallPipeline
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Testing

/// The transcode keeps the recording's waveform in the ledger, drawn from the decode pass's
/// envelope: the console shows it without decoding the recording again.
@Suite struct WaveformTests {
    @Test func theTranscodeJobKeepsAWaveformOfTheWholeCall() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            // 7 s of speech, 3 s of pause, three times.
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 30, to: "\(dir)/in/call.wav")
            _ = FileManager.default.createFile(atPath: "\(dir)/in/call.json", contents: Data(TranscodeBatchTests.sidecar.utf8))
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            #expect(try await EnqueueBatch(root: "\(dir)/in", store: store, jobs: 1, settle: .immediate, logger: Logger(label: "test")).run().summary.ok == 1)
            let pool = CPUPool(threads: 1)
            defer { pool.shutdown() }
            let handler = TranscodeJobHandler(spool: Spool(root: "\(dir)/state/spool"), settings: TranscodeSettings(), pool: pool)
            var configuration = WorkerConfiguration(slots: [.transcode: 1])
            configuration.untilIdle = true
            try await Worker(store: store, handlers: [handler], configuration: configuration, logger: Logger(label: "test")).run()

            let recording = try #require(try await store.recordings(RecordingQuery()).first)
            #expect(recording.state == .transcoded)
            let waveform = try #require(try await store.waveform(key: recording.key))
            // 1,500 windows of 20 ms → 750 points of 40 ms: the whole call.
            #expect(waveform.levels.count == 750)
            #expect(abs(waveform.secondsPerPoint * Double(waveform.levels.count) - 30) < 0.1)
            // Speech (1–6 s of each 10) is far louder than the pauses (7.5–9.5 s).
            // The loudest point within a quarter second (a syllable's trough is no pause).
            func level(at second: Double) -> Int {
                let from = Int((second - 0.25) / waveform.secondsPerPoint), to = Int((second + 0.25) / waveform.secondsPerPoint)
                return Int(waveform.levels[from...to].max() ?? 0)
            }
            for cycle in [0.0, 10, 20] {
                #expect(level(at: cycle + 3) > level(at: cycle + 8.5) + 60, "cycle at \(cycle) s: \(level(at: cycle + 3)) vs \(level(at: cycle + 8.5))")
            }
            try await store.close()
        }
    }
}

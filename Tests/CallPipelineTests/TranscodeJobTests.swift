import CallAudio
import CallJobs
import CallPipeline
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Testing

/// The transcode job end to end in the worker, over a real SQLite store (the worker's own tests
/// are in CallJobsTests).
@Suite struct TranscodeJobTests {
    @Test func transcodeJobsFillTheSpoolAndTheLedger() async throws {
        try await withTemporaryDirectory { dir in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            let frames = try SyntheticAudio.write(.speech(), seconds: 20, format: .wavULaw, to: "\(dir)/in/a.wav")
            try SyntheticAudio.write(.speech(talk: 7, pause: 3), seconds: 150, format: .wavPCM16, to: "\(dir)/in/long.wav")
            try SyntheticAudio.write(.silence, seconds: 5, to: "\(dir)/in/silent.wav")
            try SyntheticAudio.write(.speech(), seconds: 5, to: "\(dir)/in/nosidecar.wav")
            for name in ["a", "long", "silent"] {
                _ = fm.createFile(atPath: "\(dir)/in/\(name).json", contents: Data(TranscodeBatchTests.sidecar.utf8))
            }
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            let enqueue = EnqueueBatch(root: "\(dir)/in", store: store, jobs: 2, settle: .immediate, logger: Logger(label: "test"))
            let first = try await enqueue.run()
            #expect(first.summary.ok == 3)
            #expect(first.files.first { $0.path == "nosidecar.wav" }?.error?.code == "missing_sidecar")
            #expect(try await enqueue.run().summary.skipped == 3, "the same bytes are registered once")

            let pool = CPUPool(threads: 2)
            defer { pool.shutdown() }
            var settings = TranscodeSettings()
            settings.partMaximumSeconds = 60
            let spool = Spool(root: "\(dir)/state/spool")
            let handler = TranscodeJobHandler(spool: spool, settings: settings, pool: pool)
            var configuration = WorkerConfiguration(slots: [.transcode: 2])
            configuration.untilIdle = true
            let worker = Worker(store: store, handlers: [handler], configuration: configuration, logger: Logger(label: "test"))
            try await worker.run()

            let counts = try await store.recordingCounts()
            #expect(counts[.transcoded] == 2)
            #expect(counts[.failed] == 1)
            let recordings = try await store.recordings(RecordingQuery())
            let silent = try #require(recordings.first { $0.path.hasSuffix("silent.wav") })
            #expect(silent.errorCode == "silent_recording")
            let a = try #require(recordings.first { $0.path.hasSuffix("/a.wav") })
            let aParts = try await store.parts(key: a.key)
            #expect(aParts.count == 1)
            #expect(aParts[0].spoolPath == spool.partPaths(key: a.key, count: 1)[0])
            if let decoded = try ffmpegDecodedFrames(aParts[0].spoolPath, channels: 1) { #expect(decoded == frames) }
            let long = try #require(recordings.first { $0.path.hasSuffix("long.wav") })
            let longParts = try await store.parts(key: long.key)
            #expect(longParts.count == 3)
            #expect(long.partCount == 3)
            #expect(longParts.map(\.index) == [1, 2, 3])
            #expect(longParts.allSatisfy { $0.state == .pending && fm.fileExists(atPath: $0.spoolPath) })
            let jobs = try await store.jobs(JobQuery(queue: .transcode))
            #expect(jobs.filter { $0.state == .completed }.count == 2)
            #expect(jobs.filter { $0.state == .discarded }.count == 1, "a rejected recording's job is dead-lettered with its code")
            try await store.close()
        }
    }
}

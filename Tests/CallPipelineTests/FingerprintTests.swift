import CallAudio
import CallJobs
import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Logging
import Testing

@testable import CallPipeline

/// The recording key is the source's SHA-256; a transcode in the process that registered the
/// file trusts it while the file's stamp holds, and anything else hashes again.
@Suite(.timeLimit(.minutes(2)))
struct FingerprintTests {
    /// A moment after `paths` have settled, as the clock the stamps are judged by (no sleeping).
    static func settled(_ paths: String...) throws -> Date {
        let last = try paths.map { path in try #require(FileStamp(path: path)) }.map { max($0.modifiedAt, $0.changedAt) }.max() ?? 0
        return Date(timeIntervalSince1970: last + FileStamp.settleSeconds + 0.2)
    }

    @Test func aFileJustWrittenGetsNoStamp() async throws {
        try await withTemporaryDirectory { dir in
            try SyntheticAudio.write(.speech(), seconds: 2, to: "\(dir)/a.wav")
            let (key, stamp) = try Fingerprint.stamped(ofFile: "\(dir)/a.wav")
            #expect(key == (try Fingerprint.sha256(ofFile: "\(dir)/a.wav")))
            #expect(stamp == nil, "a file still being written must be hashed again")
        }
    }

    @Test func aSettledFileIsTrustedOnlyWhileItsStampHolds() async throws {
        try await withTemporaryDirectory { dir in
            let path = "\(dir)/a.wav"
            try SyntheticAudio.write(.speech(), seconds: 2, to: path)
            let (key, stamp) = try Fingerprint.stamped(ofFile: path, now: try Self.settled(path))
            #expect(stamp != nil)
            let fingerprints = Fingerprints()
            fingerprints.remember(key: key, path: path, stamp: stamp)
            #expect(fingerprints.key(key, ifUnchanged: path) == key)
            #expect(fingerprints.key(key, ifUnchanged: "\(dir)/b.wav") == nil, "another path")
            #expect(fingerprints.key(String(repeating: "0", count: 64), ifUnchanged: path) == nil, "another key")
            // Rewritten with bytes of the same length and its modification time put back: the
            // change time still moves.
            let modified = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
            try SyntheticAudio.write(.speech(talk: 2, pause: 1), seconds: 2, to: path)
            try FileManager.default.setAttributes([.modificationDate: modified as Any], ofItemAtPath: path)
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == Int(stamp?.size ?? -1))
            #expect(fingerprints.key(key, ifUnchanged: path) == nil)
            // Replaced by another file under the same name.
            let again = try Fingerprint.stamped(ofFile: path, now: try Self.settled(path))
            fingerprints.remember(key: again.key, path: path, stamp: again.stamp)
            try SyntheticAudio.write(.speech(), seconds: 2, to: "\(dir)/c.wav")
            #expect(rename("\(dir)/c.wav", path) == 0)
            #expect(fingerprints.key(again.key, ifUnchanged: path) == nil)
        }
    }

    /// A recording whose bytes change between its registration and its transcode fails with
    /// `source_changed`, whether the transcode runs in a worker (no fingerprints: it hashes) or
    /// in the run that registered it (fingerprints: the stamp no longer holds, so it hashes).
    /// An unchanged one is transcoded under its key.
    @Test(arguments: [false, true])
    func aRecordingChangedAfterItsRegistrationFailsAsSourceChanged(inTheSameProcess: Bool) async throws {
        try await withTemporaryDirectory { dir in
            let fm = FileManager.default
            try fm.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
            for (name, talk) in [("changed", 7.0), ("kept", 5.0)] {
                try SyntheticAudio.write(.speech(talk: talk), seconds: 6, to: "\(dir)/in/\(name).wav")
                _ = fm.createFile(atPath: "\(dir)/in/\(name).json", contents: Data(TranscodeBatchTests.sidecar.utf8))
            }
            let now = try Self.settled("\(dir)/in/changed.wav", "\(dir)/in/changed.json", "\(dir)/in/kept.wav", "\(dir)/in/kept.json")
            let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
            try await store.migrate()
            let fingerprints = inTheSameProcess ? Fingerprints() : nil
            let registered = try await EnqueueBatch(root: "\(dir)/in", store: store, jobs: 2, settle: Settle(seconds: 2, now: { now }),
                                                    fingerprints: fingerprints, logger: Logger(label: "test")).run()
            #expect(registered.summary.ok == 2)
            try SyntheticAudio.write(.speech(talk: 3, pause: 1), seconds: 6, to: "\(dir)/in/changed.wav")

            let pool = CPUPool(threads: 2)
            defer { pool.shutdown() }
            let handler = TranscodeJobHandler(spool: Spool(root: "\(dir)/state/spool"), pool: pool, fingerprints: fingerprints)
            var configuration = WorkerConfiguration(slots: [.transcode: 2])
            configuration.untilIdle = true
            configuration.pollInterval = .milliseconds(100)
            try await Worker(store: store, handlers: [handler], configuration: configuration, logger: Logger(label: "test")).run()

            let recordings = try await store.recordings(RecordingQuery())
            let changed = try #require(recordings.first { $0.path.hasSuffix("changed.wav") })
            #expect(changed.state == .failed)
            #expect(changed.errorCode == AudioError.Code.sourceChanged.rawValue, "\(String(describing: changed.errorMessage))")
            #expect(changed.errorMessage?.contains("changed.wav") == true)
            let kept = try #require(recordings.first { $0.path.hasSuffix("kept.wav") })
            #expect(kept.state == .transcoded)
            #expect(kept.key == (try Fingerprint.sha256(ofFile: "\(dir)/in/kept.wav")))
            try await store.close()
        }
    }
}

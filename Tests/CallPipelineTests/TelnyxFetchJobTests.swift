import AsyncHTTPClient
import CallAPI
import CallJobs
import CallPipeline
import CallSandbox
import CallSources
import CallStore
import CallStoreSQLite
import CallTelnyx
import CallTesting
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

/// The Telnyx fetch job (``TelnyxFetchJobHandler``) over loopback: the sandbox's Telnyx makes
/// the calls and serves their audio behind expiring links and `GET /v2/recordings`; the events
/// go through the real intake into a SQLite ledger; the job decides the call log, downloads the
/// audio (renewing a link that failed), learns the recording id, and hands the file to the
/// transcode job.
@Suite struct TelnyxFetchJobTests {
    /// One call the sandbox simulated: its ids, numbers, times, and the audio's fresh link.
    struct SandboxCall {
        var session: String
        var leg: String
        var recordingID: String
        var from: String
        var to: String
        var seconds: Int
        var recordingStartedAt: Date
        var link: String
    }

    final class Fixture: Sendable {
        let dir: String
        let base: URL
        let store: any CallStore
        let intake: TelnyxIntake
        let settings: TelnyxSettings
        let spool: Spool
        let configuration: SandboxConfiguration
        let clock = Locked(Date())

        init(dir: String, base: URL, store: any CallStore, settings: TelnyxSettings, configuration: SandboxConfiguration) {
            self.dir = dir
            self.base = base
            self.store = store
            self.settings = settings
            self.configuration = configuration
            spool = Spool(root: "\(dir)/state/spool")
            intake = TelnyxIntake(store: store, settings: settings, spool: spool, logger: Logger(label: "test"))
        }

        var client: TelnyxClient {
            TelnyxClient(baseURL: base.absoluteString + "/v2", key: Secret(configuration.telnyxKey), httpClient: .shared, logger: Logger(label: "test"))
        }

        /// The fetch handler (with the listing unless `listing` is false), the transcode as its follow-up.
        func handler(listing: Bool = true, spool: Spool? = nil) -> TelnyxFetchJobHandler {
            var handler = TelnyxFetchJobHandler(settings: settings, client: listing ? client : nil, http: .shared, spool: spool ?? self.spool,
                                                followUp: { [try! TranscodeJobHandler.job(key: $0)] })
            let clock = self.clock
            handler.now = { clock.withLock { $0 } }
            return handler
        }

        /// Simulates one call in the sandbox (no webhook URL: the test sends the events itself).
        func call(seconds: Int = 12) async throws -> SandboxCall {
            var request = HTTPClientRequest(url: base.absoluteString + "/_sandbox/telnyx/calls")
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(Data(#"{"count": 1, "seconds": \#(seconds), "format": "wav"}"#.utf8))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 1 << 20)
            #expect(response.status.code == 201, "\(String(buffer: body))")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any])
            let call = try #require((object["calls"] as? [[String: Any]])?.first)
            let recording = try #require(call["recording"] as? [String: Any])
            return SandboxCall(
                session: try #require(call["call_session_id"] as? String), leg: try #require(call["call_leg_id"] as? String),
                recordingID: try #require(call["recording_id"] as? String), from: try #require(call["from"] as? String),
                to: try #require(call["to"] as? String), seconds: seconds,
                recordingStartedAt: try #require((recording["recording_started_at"] as? String).flatMap(TelnyxTime.parse)),
                link: try #require((recording["download_urls"] as? [String: String])?["wav"]))
        }

        /// The call's webhooks as Telnyx sends them (the recording starts 7 s into the call).
        func webhooks(_ call: SandboxCall) -> TelnyxWebhooks {
            var hooks = TelnyxWebhooks(session: call.session, leg: call.leg, start: call.recordingStartedAt - 7)
            hooks.caller = call.from
            hooks.company = call.to
            hooks.seconds = Double(call.seconds)
            return hooks
        }

        /// Stores these webhook bodies through the intake (the recording registered, its fetch job enqueued).
        func deliver(_ bodies: [String], spool: Spool? = nil) async throws {
            let intake = spool.map { TelnyxIntake(store: store, settings: settings, spool: $0, logger: Logger(label: "test")) } ?? self.intake
            try await intake.accept(try bodies.map { try TelnyxEvent.parse(Array($0.utf8)) }, receivedAt: clock.withLock { $0 })
        }

        /// The one fetch job, claimed.
        func claimFetch() async throws -> Job {
            try #require(try await store.claim(queue: QueueName.fetch.rawValue, limit: 1, owner: "test", leaseTTL: .seconds(300)).first)
        }

        func run(_ handler: TelnyxFetchJobHandler, _ job: Job) async throws {
            try await handler.run(job, context: JobContext(logger: Logger(label: "test"), store: store, owner: "test"))
        }

        func recording(_ call: SandboxCall) async throws -> Recording {
            try #require(try await store.recordings(RecordingQuery()).first { SourceMetadata.parse($0.metadata)?.source.callID == call.session })
        }

        /// The bytes the sandbox serves for the call (fetched here on a fresh link).
        func sandboxSHA256(_ call: SandboxCall) async throws -> String {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: call.link), timeout: .seconds(30))
            let body = try await response.body.collect(upTo: 64 << 20)
            return SHA256.hash(data: Data(body.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        }
    }

    func withFixture(_ body: (Fixture) async throws -> Void) async throws {
        let configuration = SandboxConfiguration.random()
        try await withSandbox(configuration) { base, _ in
            try await withTemporaryDirectory { dir in
                try FileManager.default.createDirectory(atPath: "\(dir)/state", withIntermediateDirectories: true)
                let store = try SQLiteStore(path: "\(dir)/state/callrec.sqlite")
                try await store.migrate()
                var settings = TelnyxSettings()
                settings.format = "wav"
                try await withRunningStore(store) { store in
                    try await body(Fixture(dir: dir, base: base, store: store, settings: settings, configuration: configuration))
                }
            }
        }
    }

    /// A link the download host refuses (its signature no longer matches), as an expired one is.
    static func refused(_ link: String) -> String {
        link.replacingOccurrences(of: "expires=", with: "expires=1")
    }

    @Test func completeEventsMakeTheCallLogThenTheAudioIsDownloadedAndTranscoded() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])])
            let job = try await fixture.claimFetch()
            try await fixture.run(fixture.handler(), job)

            let recording = try await fixture.recording(call)
            #expect(recording.state == .pending)
            let metadata = try #require(SourceMetadata.parse(recording.metadata))
            let log = try #require(metadata.callLog)
            #expect(log.fromPhoneNumber == call.from && log.toPhoneNumber == call.to && log.outcome == "connected", "an answered incoming call")
            #expect(metadata.facts?.direction == .inbound)
            #expect(metadata.facts?.start == hooks.start)
            #expect(metadata.facts?.end == hooks.start + 7 + hooks.seconds)
            #expect(!metadata.warnings.contains { $0.code == TelnyxFacts.eventsMissing })
            let expected = try await fixture.sandboxSHA256(call)
            #expect(metadata.telnyx?.audioSHA256 == expected)
            #expect(TelnyxDownloadProbe.sha256(recording.path) == expected, "the file is the sandbox's bytes")
            #expect(!FileManager.default.fileExists(atPath: recording.path + ".part"))
            #expect(try await fixture.store.providerRefs(key: recording.key).map(\.reference) == [call.recordingID])
            let audit = try await fixture.store.audit(key: recording.key, limit: 10)
            #expect(audit.contains { $0.action == TelnyxFetchJobHandler.downloadedAction && !($0.detail ?? "").contains("renewed") })

            // The transcode checks the file against the download's hash.
            let pool = CPUPool(threads: 1)
            defer { pool.shutdown() }
            let transcode = TranscodeJobHandler(spool: fixture.spool, pool: pool)
            var configuration = WorkerConfiguration(slots: [.transcode: 1])
            configuration.untilIdle = true
            try await Worker(store: fixture.store, handlers: [transcode], configuration: configuration, logger: Logger(label: "test")).run()
            let transcoded = try #require(try await fixture.store.recording(key: recording.key))
            #expect(transcoded.state == .transcoded, "\(transcoded.errorCode ?? "") \(transcoded.errorMessage ?? "")")
            #expect(transcoded.partCount == 1)
        }
    }

    @Test func aRecordingFirstWaitsForItsEventsThenGoesOnWithTheRecordingEvent() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])])
            let job = try await fixture.claimFetch()
            let handler = fixture.handler()
            let waitUntil = fixture.clock.withLock { $0 } + Double(fixture.settings.eventsWait.components.seconds)
            await #expect {
                try await fixture.run(handler, job)
            } throws: { error in
                guard let failure = error as? JobFailure, case .snoozeUntil(let until) = failure.disposition else { return false }
                return failure.code == TelnyxFetchJobHandler.awaitingEvents && abs(until.timeIntervalSince(waitUntil)) < 1
                    && failure.message.contains(call.session)
            }
            #expect(SourceMetadata.parse(try await fixture.recording(call).metadata)?.callLog == nil, "nothing decided while it waits")

            fixture.clock.withLock { $0 += Double(fixture.settings.eventsWait.components.seconds) + 1 }
            try await fixture.run(handler, job)
            let metadata = try #require(SourceMetadata.parse(try await fixture.recording(call).metadata))
            #expect(metadata.callLog?.fromPhoneNumber == call.from && metadata.callLog?.toPhoneNumber == call.to)
            #expect(metadata.warnings.contains { $0.code == TelnyxFacts.eventsMissing })
            #expect(metadata.telnyx?.audioSHA256 == (try await fixture.sandboxSHA256(call)))
        }
    }

    @Test func aLinkThatFailsIsRenewedFromTheListing() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": Self.refused(call.link)])])
            try await fixture.run(fixture.handler(), try await fixture.claimFetch())
            let recording = try await fixture.recording(call)
            let expected = try await fixture.sandboxSHA256(call)
            #expect(SourceMetadata.parse(recording.metadata)?.telnyx?.audioSHA256 == expected)
            #expect(TelnyxDownloadProbe.sha256(recording.path) == expected)
            let audit = try await fixture.store.audit(key: recording.key, limit: 10)
            #expect(audit.contains { $0.action == TelnyxFetchJobHandler.downloadedAction && ($0.detail ?? "").contains("renewed") })
        }
    }

    @Test func aRecordingIDTheEventLacksIsLearntFromTheListing() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: nil, urls: ["wav": call.link])])
            #expect(try await fixture.store.providerRefs(key: try await fixture.recording(call).key).isEmpty)
            try await fixture.run(fixture.handler(), try await fixture.claimFetch())
            let recording = try await fixture.recording(call)
            #expect(SourceMetadata.parse(recording.metadata)?.telnyx?.recording.recordingID == call.recordingID)
            #expect(try await fixture.store.providerRefs(key: recording.key).map(\.reference) == [call.recordingID])
        }
    }

    @Test func withoutTheAPIKeyAFailedLinkWaitsAndSaysWhyAndAnUnknownIDIsAWarning() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: nil, urls: ["wav": Self.refused(call.link)])])
            let job = try await fixture.claimFetch()
            await #expect {
                try await fixture.run(fixture.handler(listing: false), job)
            } throws: { error in
                guard let failure = error as? JobFailure else { return false }
                return failure.disposition == .transient && failure.message.contains("TELNYX_API_KEY is not set")
            }
            #expect(try await fixture.recording(call).state == .pending, "it waits for a retry")

            // A link that works, still without the key: downloaded, the id unknown and said so.
            let key = try await fixture.recording(call).key
            var metadata = try #require(SourceMetadata.parse(try await fixture.recording(call).metadata))
            metadata.telnyx?.recording.urls = ["wav": call.link]
            try await fixture.store.commit([.setRecordingMetadata(key: key, metadata: metadata.text)])
            try await fixture.run(fixture.handler(listing: false), job)
            let done = try #require(SourceMetadata.parse(try await fixture.recording(call).metadata))
            #expect(done.telnyx?.audioSHA256 != nil)
            #expect(done.warnings.contains { $0.code == TelnyxFetchJobHandler.recordingIDUnknown })
            #expect(try await fixture.store.providerRefs(key: key).isEmpty)
        }
    }

    @Test func aRerunDownloadsAtMostOnceMoreAndRegistersOnce() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])])
            let job = try await fixture.claimFetch()
            let handler = fixture.handler()
            try await fixture.run(handler, job)
            let recording = try await fixture.recording(call)
            let first = try Self.inode(recording.path)

            // A lost lease after the commit: the job runs again and finds its work done.
            try await fixture.run(handler, job)
            #expect(try Self.inode(recording.path) == first, "not downloaded again")

            // A crash between the download and its commit: the ledger has no hash yet.
            var metadata = try #require(SourceMetadata.parse(recording.metadata))
            metadata.telnyx?.audioSHA256 = nil
            try await fixture.store.commit([.setRecordingMetadata(key: recording.key, metadata: metadata.text)])
            try await fixture.run(handler, job)
            #expect(try Self.inode(recording.path) != first, "downloaded once more")
            #expect(try await fixture.store.providerRefs(key: recording.key).count == 1)
            let transcodes = try await fixture.store.jobs(JobQuery(queue: QueueName.transcode.rawValue, limit: 10))
            #expect(transcodes.count == 1, "one transcode job")
            let downloads = try await fixture.store.audit(key: recording.key, limit: 20).filter { $0.action == TelnyxFetchJobHandler.downloadedAction }
            #expect(downloads.count == 2)
        }
    }

    @Test func aRecordingOverTheSizeCapFailsAndLeavesNoFile() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])])
            var handler = fixture.handler()
            handler.maxBytes = 4096
            let job = try await fixture.claimFetch()
            await #expect {
                try await fixture.run(handler, job)
            } throws: { ($0 as? JobFailure)?.disposition == .permanent && ($0 as? JobFailure)?.code == "recording_too_large" }
            let recording = try await fixture.recording(call)
            #expect(recording.state == .failed && recording.errorCode == "recording_too_large")
            #expect(!FileManager.default.fileExists(atPath: recording.path) && !FileManager.default.fileExists(atPath: recording.path + ".part"))
        }
    }

    @Test func aTelnyxRecordingIsNotTranscodedBeforeItsFetch() async throws {
        try await withFixture { fixture in
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])])
            let key = try await fixture.recording(call).key
            try await fixture.store.commit([.enqueue(try TranscodeJobHandler.job(key: key))])
            let pool = CPUPool(threads: 1)
            defer { pool.shutdown() }
            var configuration = WorkerConfiguration(slots: [.transcode: 1])
            configuration.untilIdle = true
            try await Worker(store: fixture.store, handlers: [TranscodeJobHandler(spool: fixture.spool, pool: pool)],
                             configuration: configuration, logger: Logger(label: "test")).run()
            let recording = try await fixture.recording(call)
            #expect(recording.state == .failed && recording.errorCode == "no_call_log", "never a call log from a file name")
        }
    }

    @Test(.enabled(if: SmallDisk.isAvailable, "needs root to mount tmpfs in a private mount namespace"))
    func aFullSpoolIsAWaitNotAFailureAndLeavesNoPart() async throws {
        try await withFixture { fixture in
            let mount = "\(fixture.dir)/small"
            let disk = try SmallDisk([mount: 64 << 10])
            defer { disk.close() }
            let spool = Spool(root: disk.outside(mount))
            let call = try await fixture.call()
            let hooks = fixture.webhooks(call)
            try await fixture.deliver([hooks.initiated(), hooks.answered(), hooks.hangup(),
                                       hooks.recordingSaved(recordingID: call.recordingID, urls: ["wav": call.link])], spool: spool)
            let job = try await fixture.claimFetch()
            await #expect {
                try await fixture.run(fixture.handler(spool: spool), job)
            } throws: { ($0 as? JobFailure)?.disposition == .diskFull }
            let recording = try await fixture.recording(call)
            #expect(recording.state == .pending, "it waits for space")
            #expect(!FileManager.default.fileExists(atPath: recording.path + ".part"), "no part left to fill the disk")
        }
    }

    static func inode(_ path: String) throws -> UInt64 {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.systemFileNumber] as? UInt64)
    }
}

/// The SHA-256 of a file, for the expectations.
enum TelnyxDownloadProbe {
    static func sha256(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}

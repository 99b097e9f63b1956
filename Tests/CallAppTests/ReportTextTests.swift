import CallPipeline
import CallSandbox
import CallStore
import Foundation
import Testing

@testable import CallApp

/// What the commands print without `--json`, rendered by CallApp as values: the exact lines,
/// on the stream each goes to, without running the binary.
@Suite struct ReportTextTests {
    @Test func progressDrawsOnItsIntervalAndWhenTheLastFileEnds() {
        let start = ContinuousClock.now
        let file = FileReport(path: "a.wav", key: nil, status: .ok, error: nil, warnings: [], input: nil, stats: nil, parts: [])
        var failed = file
        failed.status = .failed
        var log = ProgressDisplay(bar: false, countsAudio: true, now: start)
        #expect(log.line(after: .started(files: 3), now: start + .seconds(1)) == nil)
        // A log line every 5 s: the first file at 4 s is not drawn, the second at 6 s is.
        #expect(log.line(after: .finished(file, audioSeconds: 3600), now: start + .seconds(4)) == nil)
        #expect(log.line(after: .finished(failed, audioSeconds: 3600), now: start + .seconds(6))
            == "2/3 files (1 failed), 2.00 h audio, 1200× realtime, ETA 0:03")
        #expect(log.drawn)
        // The last file is drawn at once.
        #expect(log.line(after: .finished(file, audioSeconds: 0), now: start + .seconds(7))
            == "3/3 files (1 failed), 2.00 h audio, 1029× realtime")

        // A terminal: a bar, every 100 ms; the upload run counts files per second, and shows no
        // "/0" before registration has told its total.
        var bar = ProgressDisplay(bar: true, countsAudio: false, now: start)
        #expect(!bar.drawn)
        #expect(bar.line(after: .finished(file, audioSeconds: 0), now: start + .seconds(2)) == "[########################] 1 files, 0.5 files/s")
        #expect(bar.line(after: .started(files: 4), now: start + .milliseconds(2050)) == nil)
        #expect(bar.line(after: .finished(file, audioSeconds: 0), now: start + .seconds(4))
            == "[############------------] 2/4 files, 0.5 files/s, ETA 0:04")
        #expect(bar.drawn)
    }

    @Test func durationsReadAsMinutesOrHours() {
        #expect(formatDuration(59.6) == "1:00")
        #expect(formatDuration(3723) == "1:02:03")
    }

    @Test func queueTablesAndChanges() throws {
        let row = JobRow(id: 7, queue: "upload", kind: "upload", state: "discarded", attempt: 3, maxAttempts: 3, rescues: 0,
                         runAt: "2026-01-02T03:04:05Z", uniqueKey: nil, args: "{}", lastError: "http_500: boom")
        #expect(JobRow.table([row]) == [.out("ID\tQUEUE\tKIND\tSTATE\tATTEMPT\tRUN AT\tLAST ERROR"),
                                        .out("7\tupload\tupload\tdiscarded\t3/3\t2026-01-02T03:04:05Z\thttp_500: boom")])
        let change = QueueChange(action: "cancelled", asked: [3, 1, 2], done: [1])
        #expect(change.lines == [.out("cancelled 1 job(s): 1"),
                                 .err("left alone (not in a state that allows it, or its recording has another live job): 2 3")])
        #expect(QueueChange(action: "cancelled", asked: [], done: []).lines == [.out("cancelled 0 job(s)")])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(String(decoding: try encoder.encode(change), as: UTF8.self) == #"{"cancelled":[1],"skipped":[2,3]}"#)
    }

    @Test func statusListsCountsQueuesAndStuckDeletions() {
        let status = StoreStatus(store: "sqlite:/s/callrec.sqlite", recordings: ["uploaded": 2], jobs: ["completed": 4],
                                 queues: ["upload": ["completed": 4, "available": 0]], due: 1, oldestAvailableSeconds: 2.34,
                                 nextRunAt: "2026-01-02T03:04:05Z",
                                 stuckDeletions: [StuckDeletion(key: "k", path: "a.wav", deletionID: "d1", reason: "asked", steps: [],
                                                                next: ["callrec delete --recording k"])],
                                 crmIndex: nil, matches: [])
        let lines = status.lines.map(\.text)
        #expect(lines.first == "store: sqlite:/s/callrec.sqlite")
        #expect(lines[1].hasPrefix("recordings: ") && lines[1].contains("uploaded 2"))
        #expect(lines[2].hasPrefix("jobs: ") && lines[2].contains("completed 4"))
        #expect(Array(lines.dropFirst(3)) == ["  upload: completed 4", "oldest due job has waited 2.3 s", "next scheduled job: 2026-01-02T03:04:05Z",
                                              "deletions stuck: 1", "  a.wav (k), deletion d1:", "    callrec delete --recording k"])
        #expect(status.lines.allSatisfy { if case .out = $0 { true } else { false } })
    }

    @Test func probeSaysTheVerdictAndTheSummaryCountsIt() {
        let rejected = ProbeEntry(path: "a.wav", status: "failed", error: .init(code: "silent", message: "all silence"),
                                  warnings: [], input: nil, stats: nil)
        let ok = ProbeEntry(path: "b.wav", status: "ok", error: nil, warnings: [], input: nil, stats: nil)
        let document = ProbeDocument([rejected, ok])
        #expect(document.lines == [.out("a.wav\n  REJECTED silent: all silence"), .out("b.wav\n  ok")])
        #expect(document.summary == ["ok": 1, "failed": 1] && !document.succeeded)
        #expect(ProbeDocument([ok]).succeeded)
    }

    @Test func deleteWithNothingFoundSaysWhy() {
        #expect(DeleteDocument(status: "not_found", message: "no such recording").lines == [.out("no such recording")])
    }

    @Test func sandboxAnnouncesURLsAndOnlyTheCredentialsItMadeUp() {
        var configuration = SandboxConfiguration(pipedriveToken: "p", telnyxKey: "t", voipnowToken: "v")
        configuration.host = "127.0.0.1"
        let announcement = SandboxAnnouncement(configuration, port: 7654, generated: ["TELNYX_API_KEY"])
        #expect(announcement.lines == [
            "callrec sandbox listening on http://127.0.0.1:7654  (state: memory; faults: none)",
            "export PIPEDRIVE_API_URL=http://127.0.0.1:7654/v1", "export TELNYX_API_URL=http://127.0.0.1:7654/v2",
            "export VOIPNOW_API_URL=http://127.0.0.1:7654", "export TELNYX_API_KEY=t",
            "# taken from the environment: PIPEDRIVE_API_TOKEN, VOIPNOW_ACCESS_TOKEN",
            "# state: curl http://127.0.0.1:7654/_sandbox/state   stop: Ctrl-C",
        ])
        #expect(announcement.document["TELNYX_API_KEY"] == "t" && announcement.document["PIPEDRIVE_API_TOKEN"] == nil
            && announcement.document["state"] == "memory")
        #expect(throws: AppError.self) {
            try SandboxConfiguration.serving(host: "127.0.0.1", port: 0, state: nil, faults: "bogus=0.1", burst: nil, dailyTokens: nil)
        }
    }

    @Test func valuesTheCommandLineTakes() throws {
        #expect(parseByteSize("20MiB") == 20 << 20 && parseByteSize(" 1.5 KB ") == 1500 && parseByteSize("7") == 7 && parseByteSize("lots") == nil)
        #expect(try JobState.parseList("available, running") == [.available, .running])
        #expect(try JobState.parseList(nil) == nil)
        #expect { try JobState.parseList("available,done") } throws: { "\($0)".hasPrefix("done is not a job state (available") }
        #expect(try SpoolPrune.retention(flag: nil, environment: [:]) == SpoolPrune.defaultRetention)
        #expect(try SpoolPrune.retention(flag: nil, environment: ["CALLREC_SPOOL_RETENTION": "12h"]) == .seconds(12 * 3600))
        #expect(try SpoolPrune.retention(flag: "keep", environment: ["CALLREC_SPOOL_RETENTION": "12h"]) == nil)
        #expect { try SpoolPrune.retention(flag: nil, environment: ["CALLREC_SPOOL_RETENTION": "soon"]) } throws: {
            "\($0)" == "CALLREC_SPOOL_RETENTION soon is not an age (30d, 36h, 90m, 30s or plain seconds) or keep"
        }
    }
}

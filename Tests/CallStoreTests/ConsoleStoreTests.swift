import CallStore
import CallStorePostgres
import CallTesting
import Foundation
import Testing

/// The console's reads (ConsoleStore), on every backend: the list newest first with keyset
/// pagination and its filters, failures by code, throughput.
@Suite(.timeLimit(.minutes(2)))
struct ConsoleStoreTests {
    static func key(_ n: Int) -> String { String(format: "%064x", n) }

    /// Recording `n`, registered at fixture(n / 2) (so that pairs share a millisecond and the
    /// key breaks the tie), the even ones failed.
    static func recording(_ n: Int) -> Recording {
        Recording(key: key(n), path: "/pbx/\(n % 3 == 0 ? "hq" : "branch")/2026/out-+4420794601\(String(format: "%02d", n)).wav",
                  metadata: n == 7 ? #"{"call_log":{"to_phone_number":"+15550107777"}}"# : nil,
                  state: n % 2 == 0 ? .failed : .uploaded, errorCode: n % 2 == 0 ? (n % 4 == 0 ? "silence" : "one_way_audio") : nil,
                  createdAt: .fixture(Double(n / 2)), updatedAt: .fixture(Double(n)))
    }

    static func store(_ backend: Backend, count: Int, _ body: (any ConsoleStore) async throws -> Void) async throws {
        try await withStore(backend) { store in
            let console = try #require(store as? any ConsoleStore)
            try await store.commit((1...count).map { .insertRecording(recording($0)) })
            try await body(console)
        }
    }

    /// Every page of `query`, following the cursor of each page's last row.
    static func allPages(_ store: any ConsoleStore, _ query: RecordingPageQuery) async throws -> [[String]] {
        var pages: [[String]] = []
        var query = query
        while pages.count < 100 {
            let page = try await store.recordingPage(query)
            if page.isEmpty { break }
            pages.append(page.map(\.key))
            query.after = RecordingCursor(after: page[page.count - 1])
        }
        return pages
    }

    @Test(arguments: backends)
    func pagesWalkEveryRecordingOnceNewestFirstThroughTiesOfTheSameMillisecond(_ backend: Backend) async throws {
        try await Self.store(backend, count: 25) { store async throws in
            let pages = try await Self.allPages(store, RecordingPageQuery(limit: 4))
            #expect(pages.count == 7)
            #expect(pages.dropLast().allSatisfy { $0.count == 4 })
            // Newest first; among equal times (2 and 3 share one) the greater key first.
            let expected = (1...25).sorted { (a: Int, b: Int) in a / 2 != b / 2 ? a / 2 > b / 2 : a > b }.map(Self.key)
            #expect(pages.flatMap { $0 } == expected)
        }
    }

    @Test(arguments: backends)
    func filtersNarrowTheListAndKeepPaging(_ backend: Backend) async throws {
        try await Self.store(backend, count: 25) { store async throws in
            let keys = { (query: RecordingPageQuery) async throws -> Set<String> in
                Set(try await Self.allPages(store, query).flatMap { $0 })
            }
            #expect(try await keys(RecordingPageQuery(states: [.failed], limit: 3)) == Set((1...25).filter { $0 % 2 == 0 }.map(Self.key)))
            #expect(try await keys(RecordingPageQuery(errorCode: "silence", limit: 2)) == Set([4, 8, 12, 16, 20, 24].map(Self.key)))
            #expect(try await keys(RecordingPageQuery(pathPrefix: "/pbx/hq/", limit: 2)) == Set([3, 6, 9, 12, 15, 18, 21, 24].map(Self.key)))
            // Registered within [fixture(3), fixture(5)): recordings 6…9.
            #expect(try await keys(RecordingPageQuery(createdFrom: .fixture(3), createdBefore: .fixture(5))) == Set((6...9).map(Self.key)))
            // Digits of the number in the path, and in the sidecar.
            #expect(try await keys(RecordingPageQuery(digits: "079460113")) == [Self.key(13)])
            #expect(try await keys(RecordingPageQuery(digits: "5550107777")) == [Self.key(7)])
            #expect(try await keys(RecordingPageQuery(states: [.uploaded], errorCode: "silence")).isEmpty)
            #expect(try await store.recordingPage(RecordingPageQuery(states: [])).isEmpty)
        }
    }

    /// The phone filter finds the recordings with a number that ends with the digits given
    /// (RecordingNumbers): in the path or the sidecar, typed with or without a country or trunk
    /// prefix, and a short local number that the digits end with; never a number of a recording's
    /// old path or sidecar.
    @Test(arguments: backends)
    func aPhoneNumberFindsTheRecordingsWithANumberEndingWithIt(_ backend: Backend) async throws {
        try await withStore(backend) { store in
            let console = try #require(store as? any ConsoleStore)
            let recordings = [
                Recording(key: Self.key(1), path: "/pbx/2026/03/04/in-442079460123-101-20260304-101530-1772637330.12.wav"),
                Recording(key: Self.key(2), path: "/pbx/2026/03/04/out-02079460123-102.wav"),
                Recording(key: Self.key(3), path: "/pbx/in-5550123-103.wav"),
                Recording(key: Self.key(4), path: "/sidecars/call-4.wav", metadata: #"{"call_log":{"to_phone_number":"+16175551000"}}"#),
                // Too long to be a number (21 digits), and digits that are not ASCII.
                Recording(key: Self.key(5), path: "/pbx/x-207946012300000000000-\u{0662}\u{0660}\u{0667}\u{0669}\u{0664}\u{0666}\u{0660}.wav"),
            ]
            try await store.commit(recordings.map { .registerRecording($0) })
            let found = { (digits: String) async throws -> Set<String> in
                Set(try await console.recordingPage(RecordingPageQuery(digits: digits, limit: 10)).map(\.key))
            }
            #expect(try await found("079460123") == [Self.key(1), Self.key(2)])
            #expect(try await found("2079460123") == [Self.key(1), Self.key(2)])
            #expect(try await found("442079460123") == [Self.key(1)])
            #expect(try await found("75550123") == [Self.key(3)])  // a local number within the digits
            #expect(try await found("6175551000") == [Self.key(4)])
            #expect(try await found("0794601") == [])  // not the end of a number
            #expect(try await found("20794601230000") == [])

            // A mended sidecar and a converted file take their old numbers with them.
            try await store.commit([.setRecordingMetadata(key: Self.key(4), metadata: #"{"call_log":{"to_phone_number":"+16175552000"}}"#),
                                    .setRecordingPath(key: Self.key(3), path: "/pbx/in-5559999-103.mp3")])
            #expect(try await found("6175551000").isEmpty)
            #expect(try await found("6175552000") == [Self.key(4)])
            #expect(try await found("5550123").isEmpty)
            #expect(try await found("5559999") == [Self.key(3)])
        }
    }

    /// PostgreSQL's migration v7 gives the recordings it finds the numbers a commit would have
    /// given them (its SQL reads the digit runs as RecordingNumbers does in Swift).
    @Test func postgresBackfillReadsTheNumbersAsACommitDoes() async throws {
        let url = try #require(try TestPostgres.freshDatabase(prefix: "numbers"), "PostgreSQL is not installed (scripts/setup.sh --test installs it)")
        let store = try PostgresStore(url: url)
        try await store.migrate()
        try await withRunningStore(store) { store in
            let texts = ["/pbx/in-442079460123-101-20260304-101530-1772637330.12.wav", "/x/1234567-123456-123456789012345-1234567890123456.wav",
                         "/x/\u{0662}\u{0660}\u{0667}\u{0669}\u{0664}\u{0666}\u{0660}1234567.wav", "/x/a9876543b.wav", "/x/0000000"]
            try await store.commit(texts.enumerated().map { n, path in
                .registerRecording(Recording(key: Self.key(n), path: path, metadata: n == 1 ? #"{"to":"+15550107777","n":12345678}"# : nil))
            })
            let table = "SELECT recording_key || ' ' || reversed FROM recording_number ORDER BY 1"
            let committed = try TestPostgres.psql(url, table)
            #expect(committed.split(separator: "\n").count == 10)
            _ = try TestPostgres.psql(url, "DELETE FROM recording_number")
            _ = try TestPostgres.psql(url, RecordingNumbers.backfillPostgresSQL)
            #expect(try TestPostgres.psql(url, table) == committed)
        }
    }

    @Test(arguments: backends)
    func aCallLogIDFindsItsRecording(_ backend: Backend) async throws {
        try await Self.store(backend, count: 5) { store async throws in
            let part = Part(recordingKey: Self.key(3), index: 1, spoolPath: "/spool/3/1.mp3", bytes: 10, seconds: 1, sha256: String(repeating: "ab", count: 32),
                            state: .attached, callLogID: "cl-42", callLogOrigin: .created)
            try await store.commit([.replaceParts(key: Self.key(3), parts: [part])])
            #expect(try await store.recordingPage(RecordingPageQuery(callLogID: "cl-42")).map(\.key) == [Self.key(3)])
            #expect(try await store.recordingPage(RecordingPageQuery(callLogID: "cl-43")).isEmpty)
        }
    }

    @Test(arguments: backends)
    func failuresByCodeAndThroughput(_ backend: Backend) async throws {
        try await Self.store(backend, count: 10) { store async throws in
            // Failed: 2, 4, 6, 8, 10 → silence 4, 8; one_way_audio 2, 6, 10.
            #expect(try await store.failureCounts(limit: 10) == [FailureCount(code: "one_way_audio", count: 3), FailureCount(code: "silence", count: 2)])
            #expect(try await store.failureCounts(limit: 1).count == 1)
            // Uploaded (odd) and changed at fixture(n): since fixture(5) → 5, 7, 9.
            #expect(try await store.recordingCount(state: .uploaded, changedSince: .fixture(5)) == 3)
            #expect(try await store.recordingCount(state: .uploaded, changedSince: .fixture(100)) == 0)
        }
    }

    @Test(arguments: backends)
    func aWaveformIsKeptAndReplaced(_ backend: Backend) async throws {
        try await Self.store(backend, count: 2) { store async throws in
            #expect(try await store.waveform(key: Self.key(1)) == nil)
            let first = Waveform(secondsPerPoint: 0.04, levels: [0, 17, 255, 128])
            try await store.commit([.putWaveform(key: Self.key(1), waveform: first)])
            #expect(try await store.waveform(key: Self.key(1)) == first)
            let second = Waveform(secondsPerPoint: 0.5, levels: Array(repeating: 9, count: 1000))
            try await store.commit([.putWaveform(key: Self.key(1), waveform: second)])
            #expect(try await store.waveform(key: Self.key(1)) == second)
            #expect(try await store.waveform(key: Self.key(2)) == nil)
        }
    }

    @Test func aWaveformKeepsTheLoudestWindowOfEachSpanInAtMostAThousandPoints() {
        // 2,500 windows of 20 ms: 3 per point → 834 points of 60 ms.
        let decibels = (0..<2500).map { i -> Float in i == 1234 ? 0 : (i < 1500 ? -20 : -200) }
        let waveform = Waveform(windowSeconds: 0.02, decibels: decibels)
        #expect(waveform.levels.count == 834)
        #expect(abs(waveform.secondsPerPoint - 0.06) < 1e-9)
        #expect(waveform.levels[411] == 255, "the one loud window wins its span")
        #expect(waveform.levels[0] == UInt8(((76.0 / 96) * 255).rounded()))
        #expect(waveform.levels[833] == 0, "below the floor is 0")
        #expect(Waveform(windowSeconds: 0.02, decibels: [-10, .nan]).levels == [UInt8(((86.0 / 96) * 255).rounded()), 0])
        #expect(Waveform(secondsPerPoint: 1, encodedLevels: waveform.encodedLevels) == Waveform(secondsPerPoint: 1, levels: waveform.levels))
    }

    @Test(arguments: backends)
    func eachSourceSaysWhenItLastDelivered(_ backend: Backend) async throws {
        try await Self.store(backend, count: 1) { store async throws in
            #expect(try await store.sourceActivity().isEmpty)
            func file(_ path: String, _ pbx: String, _ seen: Double) -> SourceFile {
                SourceFile(path: path, directory: "/pbx", pbx: pbx, device: 1, inode: 2, size: 3, modifiedNanos: 4, changedNanos: 5, verdict: "registered",
                           seenAt: .fixture(seen))
            }
            try await store.commit([.putSourceFile(file("/pbx/a.wav", "freepbx", 10)), .putSourceFile(file("/pbx/b.wav", "freepbx", 30)),
                                    .putSourceFile(file("/pbx/c.wav", "3cx", 20))])
            #expect(try await store.sourceActivity() == [SourceActivity(source: "3cx", lastSeen: .fixture(20)),
                                                         SourceActivity(source: "freepbx", lastSeen: .fixture(30))])
            try await store.commit([.insertTelnyxEvents([TelnyxEventRow(id: "ev-1", type: "call.initiated", callSessionID: "s", callLegID: "l",
                                                                        occurredAt: .fixture(1), receivedAt: .fixture(40), document: "{}")])])
            #expect(try await store.sourceActivity().last == SourceActivity(source: "telnyx", lastSeen: .fixture(40)))
        }
    }

    @Test(arguments: backends)
    func theWarningFilterListsTheRecordingsWhoseTranscodeWarnedSoPageByPage(_ backend: Backend) async throws {
        try await Self.store(backend, count: 25) { store async throws in
            // Every third recording warned of one-way audio; 5 and 10 of clipping too.
            var ops: [LedgerOp] = stride(from: 3, through: 25, by: 3).map { .putWarnings(key: Self.key($0), codes: ["one_way_audio"]) }
            ops += [.putWarnings(key: Self.key(5), codes: ["clipping", "clipping"]), .putWarnings(key: Self.key(10), codes: ["clipping", "silence_gap"])]
            try await store.commit(ops)
            let keys = { (query: RecordingPageQuery) async throws -> [String] in try await Self.allPages(store, query).flatMap { $0 } }
            let oneWay = try await keys(RecordingPageQuery(warningCode: "one_way_audio", limit: 2))
            #expect(oneWay == stride(from: 3, through: 25, by: 3).map(Self.key).reversed())
            #expect(Set(try await keys(RecordingPageQuery(warningCode: "clipping", limit: 1))) == [Self.key(5), Self.key(10)])
            #expect(try await keys(RecordingPageQuery(states: [.failed], warningCode: "clipping")) == [Self.key(10)])
            #expect(try await keys(RecordingPageQuery(warningCode: "hard_cut")).isEmpty)
            #expect(try await store.warnings(key: Self.key(10)) == ["clipping", "silence_gap"])
            #expect(try await store.warnings(key: Self.key(5)) == ["clipping"])
            // A second transcode's findings replace the first's.
            try await store.commit([.putWarnings(key: Self.key(10), codes: [])])
            #expect(try await store.warnings(key: Self.key(10)).isEmpty)
            #expect(try await keys(RecordingPageQuery(warningCode: "clipping")) == [Self.key(5)])
        }
    }

    @Test(arguments: backends)
    func thePipedriveSpendAddsUpWhatEveryProcessBookedPerBudgetDay(_ backend: Backend) async throws {
        try await Self.store(backend, count: 1) { store async throws in
            #expect(try await store.pipedriveSpend() == nil)
            let reset = Date.fixture(86400)
            // Two workers add to day 100; a 429 gives tokens back.
            try await store.commit([.addPipedriveSpend(budgetDay: 100, tokens: 30, dailyTokens: 30000, resetsAt: reset)])
            try await store.commit([.addPipedriveSpend(budgetDay: 100, tokens: 20, dailyTokens: 30000, resetsAt: reset),
                                    .addPipedriveSpend(budgetDay: 100, tokens: -10, dailyTokens: 30000, resetsAt: reset)])
            let today = try #require(try await store.pipedriveSpend())
            #expect(today.budgetDay == 100 && today.tokens == 40 && today.dailyTokens == 30000 && today.resetsAt == reset)
            // The next day is the latest: its own count.
            try await store.commit([.addPipedriveSpend(budgetDay: 101, tokens: 12, dailyTokens: 60000, resetsAt: reset.addingTimeInterval(86400))])
            let next = try #require(try await store.pipedriveSpend())
            #expect(next.budgetDay == 101 && next.tokens == 12 && next.dailyTokens == 60000 && next.resetsAt == reset.addingTimeInterval(86400))
            // Never below zero (a refund after the day's first record).
            try await store.commit([.addPipedriveSpend(budgetDay: 101, tokens: -50, dailyTokens: 60000, resetsAt: reset.addingTimeInterval(86400))])
            #expect(try await store.pipedriveSpend()?.tokens == 0)
        }
    }

    @Test func aCursorReadsBackWhatItWrites() {
        let cursor = RecordingCursor(createdAt: .fixture(12.5), key: Self.key(9))
        #expect(RecordingCursor(cursor.description) == cursor)
        #expect(RecordingCursor("nonsense") == nil)
        #expect(RecordingCursor("12.") == nil)
        #expect(RecordingCursor("12.a b") == nil)
    }
}

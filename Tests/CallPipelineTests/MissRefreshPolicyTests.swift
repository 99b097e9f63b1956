import CallPipeline
import Testing

/// When a number the index does not know may bring the persons refresh forward (issue 17): at
/// most once per `miss_refresh`, backing off while the misses stay unknown, sooner again when a
/// refresh finds one.
@Suite struct MissRefreshPolicyTests {
    let settings = CRMIndexSettings(refresh: .seconds(15 * 60), missRefresh: .seconds(60))

    @Test func nothingIsDueWithoutAMissAndNothingSoonerThanTheInterval() {
        var policy = MissRefreshPolicy(settings: settings)
        #expect(!policy.due(elapsed: .seconds(3600)))
        #expect(policy.wait(elapsed: .seconds(10)) == nil)
        policy.noteMiss("+4930111")
        #expect(!policy.due(elapsed: .seconds(59)))
        #expect(policy.wait(elapsed: .seconds(20)) == .seconds(40))
        #expect(policy.due(elapsed: .seconds(60)))
    }

    @Test func unknownMissesDoubleTheWaitUpToTheScheduleAndAFoundOneHalvesIt() {
        var policy = MissRefreshPolicy(settings: settings)
        var intervals: [Duration] = []
        for _ in 0..<6 {
            policy.noteMiss("+4930111")
            policy.listed(found: 0, missRefresh: true)
            intervals.append(policy.interval)
        }
        #expect(intervals == [.seconds(120), .seconds(240), .seconds(480), .seconds(900), .seconds(900), .seconds(900)])
        #expect(policy.pending.isEmpty, "a listing settles the misses before it")
        policy.noteMiss("+4930222")
        policy.listed(found: 1, missRefresh: true)
        #expect(policy.interval == .seconds(450))
        // A scheduled listing settles the misses without changing the wait.
        policy.noteMiss("+4930333")
        policy.listed(found: 0, missRefresh: false)
        #expect(policy.interval == .seconds(450) && policy.pending.isEmpty)
        for _ in 0..<5 { policy.listed(found: 1, missRefresh: true) }
        #expect(policy.interval == .seconds(60), "never sooner than miss_refresh")
    }
}

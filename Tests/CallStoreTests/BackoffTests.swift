import CallStore
import CallSupport
import Foundation
import Testing

@Suite struct BackoffTests {
    @Test func doublesFromTheBaseWithJitterAroundIt() {
        let low = Backoff(base: .seconds(30), cap: .seconds(3600), random: { 0 })
        let mid = Backoff(base: .seconds(30), cap: .seconds(3600), random: { 0.5 })
        let high = Backoff(base: .seconds(30), cap: .seconds(3600), random: { 0.999_999 })
        #expect(mid.delay(afterAttempt: 1) == .seconds(30))
        #expect(mid.delay(afterAttempt: 2) == .seconds(60))
        #expect(mid.delay(afterAttempt: 4) == .seconds(240))
        #expect(mid.delay(afterAttempt: 0) == .seconds(30), "attempt 0 is treated as the first")
        #expect(low.delay(afterAttempt: 1) == .seconds(22.5))
        #expect(abs(high.delay(afterAttempt: 1).seconds - 37.5) < 0.001)
        #expect(low.delay(afterAttempt: 3) == .seconds(90))
    }

    @Test func isCappedBeforeTheJitter() {
        let mid = Backoff(base: .seconds(30), cap: .seconds(3600), random: { 0.5 })
        #expect(mid.delay(afterAttempt: 8) == .seconds(3600)) // 30·2^7 = 3840 > cap
        #expect(mid.delay(afterAttempt: 1000) == .seconds(3600))
        let high = Backoff(base: .seconds(30), cap: .seconds(3600), random: { 0.999_999 })
        #expect(abs(high.delay(afterAttempt: 50).seconds - 4500) < 0.01)
    }

    @Test func staysWithinThreeQuartersAndFiveQuartersOfTheCappedValue() {
        let backoff = Backoff(base: .seconds(30), cap: .seconds(3600))
        for attempt in 1...20 {
            let nominal = min(30 * pow(2, Double(attempt - 1)), 3600)
            for _ in 0..<50 {
                let delay = backoff.delay(afterAttempt: attempt).seconds
                #expect(delay >= nominal * 0.75 - 1e-9 && delay <= nominal * 1.25 + 1e-9, "attempt \(attempt): \(delay)")
            }
        }
    }

    @Test func durationMilliseconds() {
        #expect(Duration.milliseconds(1500).milliseconds == 1500)
        #expect(Duration.seconds(2.0005).milliseconds == 2000)
        #expect(Duration.seconds(90).seconds == 90)
    }
}

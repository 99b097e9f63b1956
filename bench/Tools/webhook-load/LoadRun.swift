import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// One open-loop run: event i is due at start + i / rate; each is sent by a task of its own
/// when due, and its latency is measured from that instant to the end of the answer.
struct LoadRun: Sendable {
    let url: String
    let rate: Double
    let seconds: Double
    let warmup: Double
    let timeout: Double
    let key: Curve25519.Signing.PrivateKey

    /// One event's fate: when it was due (nanoseconds from the start), how long its answer took
    /// from then, and the HTTP status (nil: no answer, `error` says why).
    struct Outcome: Sendable {
        var due: Int64
        var latency: Int64
        var status: Int?
        var error: String?
    }

    func run(_ http: HTTPClient) async -> LoadReport {
        let total = Int((rate * (warmup + seconds)).rounded())
        let calls = CallFactory(deliveredTo: url)
        let clock = ContinuousClock()
        // A short lead so the first events are not already late when the loop starts.
        let start = clock.now + .milliseconds(100)
        let rate = rate
        func due(_ i: Int) -> Int64 { Int64((Double(i) / rate * 1e9).rounded()) }
        let outcomes = await withTaskGroup(of: Outcome.self, returning: [Outcome].self) { group in
            var next = 0
            while next < total {
                let instant = start + .nanoseconds(due(next))
                if clock.now < instant { try? await clock.sleep(until: instant, tolerance: .microseconds(50)) }
                // Everything due by now goes out now (a late wake-up sends a burst, as a real client would).
                let now = clock.now
                while next < total, start + .nanoseconds(due(next)) <= now {
                    let i = next, scheduled = start + .nanoseconds(due(i))
                    group.addTask { await send(calls.event(i), due: due(i), scheduled: scheduled, http: http, clock: clock) }
                    next += 1
                }
            }
            var all: [Outcome] = []
            all.reserveCapacity(total)
            for await outcome in group { all.append(outcome) }
            return all
        }
        return LoadReport(outcomes: outcomes, measuredFrom: Int64((warmup * 1e9).rounded()), rate: rate, seconds: seconds, warmup: warmup)
    }

    func send(_ body: String, due: Int64, scheduled: ContinuousClock.Instant, http: HTTPClient, clock: ContinuousClock) async -> Outcome {
        // Signed when sent, as Telnyx does: the timestamp is the sending second.
        let timestamp = String(Int(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "telnyx-timestamp", value: timestamp)
        do {
            let signature = try key.signature(for: Data("\(timestamp)|\(body)".utf8))
            request.headers.add(name: "telnyx-signature-ed25519", value: signature.base64EncodedString())
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await http.execute(request, timeout: .nanoseconds(Int64(timeout * 1e9)))
            _ = try await response.body.collect(upTo: 1 << 20)
            return Outcome(due: due, latency: (clock.now - scheduled).nanoseconds, status: Int(response.status.code))
        } catch {
            return Outcome(due: due, latency: (clock.now - scheduled).nanoseconds, status: nil, error: String(describing: error))
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// The figures of a run, over the events due after the warm-up.
struct LoadReport {
    var sent = 0, ok = 0, non2xx = 0, errors = 0
    var warmupSent = 0
    var statuses: [String: Int] = [:]
    var p50 = Double.nan, p99 = Double.nan, max = Double.nan
    var achievedRate = 0.0
    var firstError: String?
    let rate: Double, seconds: Double, warmup: Double

    init(outcomes: [LoadRun.Outcome], measuredFrom: Int64, rate: Double, seconds: Double, warmup: Double) {
        self.rate = rate
        self.seconds = seconds
        self.warmup = warmup
        var latencies: [Int64] = []
        var lastAnswer = measuredFrom
        for outcome in outcomes {
            guard outcome.due >= measuredFrom else {
                warmupSent += 1
                continue
            }
            sent += 1
            latencies.append(outcome.latency)
            lastAnswer = Swift.max(lastAnswer, outcome.due + outcome.latency)
            switch outcome.status {
            case let status? where (200..<300).contains(status): ok += 1
            case let status?:
                non2xx += 1
                statuses[String(status), default: 0] += 1
                if firstError == nil { firstError = "HTTP \(status)" }
            case nil:
                errors += 1
                if firstError == nil { firstError = outcome.error }
            }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double {
            guard !latencies.isEmpty else { return .nan }
            return Double(latencies[Swift.min(latencies.count - 1, Int((p / 100 * Double(latencies.count - 1)).rounded()))]) / 1e6
        }
        p50 = percentile(50)
        p99 = percentile(99)
        max = latencies.last.map { Double($0) / 1e6 } ?? .nan
        // Answers (any status) per second, from the first measured instant to the last answer.
        let span = Double(lastAnswer - measuredFrom) / 1e9
        achievedRate = span > 0 ? Double(ok + non2xx) / span : 0
    }

    var document: [String: Any] {
        func ms(_ value: Double) -> Any { value.isNaN ? NSNull() : (value * 1000).rounded() / 1000 }
        return [
            "sent": sent, "ok": ok, "non_2xx": non2xx, "errors": errors, "statuses": statuses, "warmup_sent": warmupSent,
            "p50_ms": ms(p50), "p99_ms": ms(p99), "max_ms": ms(max), "achieved_rate": (achievedRate * 10).rounded() / 10,
            "rate": rate, "seconds": seconds, "warmup_seconds": warmup,
        ]
    }
}

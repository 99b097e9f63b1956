import Crypto
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One open-loop run: event i is due at start + i / rate. A dispatcher hands each event to the
/// queue of due events at its instant, whatever the answers before it did; `connections`
/// threads, each with one keep-alive HTTP/1.1 connection, send the queue's events in order.
/// Latency counts from the scheduled instant to the end of the answer, so time waiting for a free
/// connection is the server's (no coordinated omission).
///
/// Every request is built and signed before the clock starts (its timestamp is the build's second,
/// well inside the 300 s tolerance for a run of minutes): the generator shares the machine's two
/// cores with the worker, and signing and an HTTP client's bookkeeping at send time cost as much
/// CPU as the endpoint it measures (AsyncHTTPClient took most of a core at 2,000 requests/s).
struct LoadRun: Sendable {
    let url: String
    let rate: Double
    let seconds: Double
    let warmup: Double
    let timeout: Double
    let connections: Int
    let key: Curve25519.Signing.PrivateKey

    /// One event's fate: when it was due (nanoseconds from the start), how long its answer took
    /// from then, and the HTTP status (nil: no answer, `error` says why).
    struct Outcome: Sendable {
        var due: Int64
        var latency: Int64
        var status: Int?
        var error: String?
    }

    func run() throws -> LoadReport {
        guard let parsed = URL(string: url), let host = parsed.host, let port = parsed.port ?? 80 as Int? else {
            throw LoadError("--url \(url): not an http URL with a host")
        }
        let path = parsed.path.isEmpty ? "/" : parsed.path
        let total = Int((rate * (warmup + seconds)).rounded())
        let calls = CallFactory(deliveredTo: url)
        let timestamp = String(Int(Date().timeIntervalSince1970))
        var requests: [[UInt8]] = []
        requests.reserveCapacity(total)
        for i in 0..<total {
            let body = calls.event(i)
            let signature = try key.signature(for: Data("\(timestamp)|\(body)".utf8)).base64EncodedString()
            let head = "POST \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\n"
                + "telnyx-timestamp: \(timestamp)\r\ntelnyx-signature-ed25519: \(signature)\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            requests.append(Array((head + body).utf8))
        }
        let shared = Shared(requests: requests)
        let rate = rate
        @Sendable func due(_ i: Int) -> Int64 { Int64((Double(i) / rate * 1e9).rounded()) }
        let start = DispatchTime.now().uptimeNanoseconds + 100_000_000
        let startWall = Date().addingTimeInterval(0.1)
        var threads: [Thread] = []
        for _ in 0..<connections {
            let thread = Thread {
                var connection: Int32 = -1
                while let i = shared.next() {
                    let scheduled = start + UInt64(due(i))
                    var status: Int?
                    var error: String?
                    for attempt in 0..<2 {
                        if connection < 0 {
                            do { connection = try Self.connect(host: host, port: port, timeout: timeout) } catch {
                                break
                            }
                        }
                        do {
                            status = try Self.exchange(connection, request: shared.requests[i])
                            error = nil
                            break
                        } catch let failure {
                            // A kept-alive connection the server closed: once more on a new one.
                            close(connection)
                            connection = -1
                            error = "\(failure)"
                            if attempt == 1 { break }
                        }
                    }
                    if status == nil, error == nil { error = "cannot connect to \(host):\(port)" }
                    let latency = Int64(DispatchTime.now().uptimeNanoseconds) - Int64(scheduled)
                    shared.record(Outcome(due: due(i), latency: latency, status: status, error: error))
                }
                if connection >= 0 { close(connection) }
                shared.threadDone()
            }
            thread.stackSize = 256 << 10
            threads.append(thread)
            thread.start()
        }
        // The dispatcher: everything due by now goes into the queue now.
        var next = 0
        while next < total {
            let now = DispatchTime.now().uptimeNanoseconds
            var ready = next
            while ready < total, start + UInt64(due(ready)) <= now { ready += 1 }
            if ready > next {
                shared.release(upTo: ready)
                next = ready
            } else {
                let wait = start + UInt64(due(next)) - now
                usleep(useconds_t(max(1, wait / 1000)))
            }
        }
        shared.finish()
        shared.waitForThreads(connections)
        return LoadReport(outcomes: shared.outcomes(), measuredFrom: Int64((warmup * 1e9).rounded()), rate: rate, seconds: seconds, warmup: warmup,
                          startedAt: startWall)
    }

    /// A blocking TCP connection with `timeout` for each send and receive.
    static func connect(host: String, port: Int, timeout: Double) throws -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let info = result else { throw LoadError("cannot resolve \(host)") }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw LoadError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // struct timeval {seconds, microseconds} (two longs on Linux).
        var limit: (Int, Int) = (Int(timeout), Int((timeout - timeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<(Int, Int)>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<(Int, Int)>.size))
        guard Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw LoadError("connect: \(message)")
        }
        return fd
    }

    /// Sends one request and reads its whole answer (headers, then Content-Length bytes);
    /// returns the status.
    static func exchange(_ fd: Int32, request: [UInt8]) throws -> Int {
        var sent = 0
        while sent < request.count {
            let n = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, request.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw LoadError("send: \(n < 0 ? String(cString: strerror(errno)) : "closed")") }
            sent += n
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var have = 0
        var headerEnd: Int?
        var bodyLength = 0
        while true {
            if have == buffer.count { buffer += [UInt8](repeating: 0, count: buffer.count) }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + have, $0.count - have, 0) }
            guard n > 0 else { throw LoadError("recv: \(n < 0 ? String(cString: strerror(errno)) : "closed")") }
            have += n
            if headerEnd == nil, let end = Self.find([13, 10, 13, 10], in: buffer, upTo: have) {
                headerEnd = end + 4
                let head = String(decoding: buffer[0..<end], as: UTF8.self).lowercased()
                for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
                    bodyLength = Int(line.dropFirst(15).trimmingCharacters(in: .whitespaces)) ?? 0
                }
            }
            if let headerEnd, have >= headerEnd + bodyLength {
                let statusLine = String(decoding: buffer[0..<min(have, 16)], as: UTF8.self)
                let fields = statusLine.split(separator: " ")
                guard fields.count >= 2, let status = Int(fields[1]) else { throw LoadError("not an HTTP answer") }
                return status
            }
        }
    }

    static func find(_ needle: [UInt8], in buffer: [UInt8], upTo count: Int) -> Int? {
        guard count >= needle.count else { return nil }
        for i in 0...(count - needle.count) where buffer[i] == needle[0] && Array(buffer[i..<(i + needle.count)]) == needle {
            return i
        }
        return nil
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The queue of due events, the outcomes, and the threads' end.
final class Shared: Sendable {
    let requests: [[UInt8]]
    private struct State {
        var released = 0
        var taken = 0
        var finished = false
        var outcomes: [LoadRun.Outcome] = []
        var done = 0
    }
    private let state: Mutex<State>
    private let condition = NSCondition()

    init(requests: [[UInt8]]) {
        self.requests = requests
        var initial = State()
        initial.outcomes.reserveCapacity(requests.count)
        state = Mutex(initial)
    }

    /// The next due event, waiting for one; nil once all are taken and the dispatcher finished.
    func next() -> Int? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            let taken: Int?? = state.withLock { s in
                if s.taken < s.released {
                    s.taken += 1
                    return .some(s.taken - 1)
                }
                return s.finished ? .some(nil) : .none
            }
            if let taken { return taken }
            condition.wait()
        }
    }

    /// Wakes one sender per event released, not all of them: a broadcast woke every idle sender
    /// (up to --connections) 2,000 times a second, and the load generator took 0.7 of the
    /// machine's 2 cores from the server it measured.
    func release(upTo count: Int) {
        condition.lock()
        let added = state.withLock { s in
            defer { s.released = count }
            return count - s.released
        }
        for _ in 0..<max(0, added) { condition.signal() }
        condition.unlock()
    }

    func finish() {
        condition.lock()
        state.withLock { $0.finished = true }
        condition.broadcast()
        condition.unlock()
    }

    func record(_ outcome: LoadRun.Outcome) { state.withLock { $0.outcomes.append(outcome) } }

    func threadDone() {
        condition.lock()
        state.withLock { $0.done += 1 }
        condition.broadcast()
        condition.unlock()
    }

    func waitForThreads(_ count: Int) {
        condition.lock()
        while state.withLock({ $0.done }) < count { condition.wait() }
        condition.unlock()
    }

    func outcomes() -> [LoadRun.Outcome] { state.withLock { $0.outcomes } }
}

/// The figures of a run, over the events due after the warm-up.
struct LoadReport {
    var sent = 0, ok = 0, non2xx = 0, errors = 0
    var warmupSent = 0
    var statuses: [String: Int] = [:]
    var p50 = Double.nan, p99 = Double.nan, max = Double.nan
    var achievedRate = 0.0
    var firstError: String?
    /// The measured seconds with the slowest answers (the worst 5 by their slowest answer): when
    /// (UTC, to set beside a server's log), how many events were due, their p99 and max.
    var worstSeconds: [[String: Any]] = []
    var tailMax: [Int] = []
    let rate: Double, seconds: Double, warmup: Double

    init(outcomes: [LoadRun.Outcome], measuredFrom: Int64, rate: Double, seconds: Double, warmup: Double, startedAt: Date) {
        self.rate = rate
        self.seconds = seconds
        self.warmup = warmup
        var latencies: [Int64] = []
        var lastAnswer = measuredFrom
        var bySecond: [Int64: [Int64]] = [:]
        for outcome in outcomes {
            guard outcome.due >= measuredFrom else {
                warmupSent += 1
                continue
            }
            sent += 1
            latencies.append(outcome.latency)
            bySecond[outcome.due / 1_000_000_000, default: []].append(outcome.latency)
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
        let clock = ISO8601DateFormatter()
        clock.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let perSecond: [(second: Int64, sorted: [Int64])] = bySecond.map { (second: $0.key, sorted: $0.value.sorted()) }
        let worst = perSecond.sorted { ($0.sorted.last ?? 0) > ($1.sorted.last ?? 0) }.prefix(5)
        for (second, sorted) in worst {
            let p99 = sorted[Swift.min(sorted.count - 1, Int(0.99 * Double(sorted.count - 1)))]
            let entry: [String: Any] = [
                "at": clock.string(from: startedAt.addingTimeInterval(Double(second))), "due": sorted.count,
                "p99_ms": Double(p99) / 1e6, "max_ms": Double(sorted.last ?? 0) / 1e6,
            ]
            worstSeconds.append(entry)
        }
        // Diagnostic: the slowest answer per 100 ms over the last 3 s.
        var tail: [Int64: Int64] = [:]
        let end = outcomes.map(\.due).max() ?? 0
        for outcome in outcomes where outcome.due >= end - 3_000_000_000 {
            tail[outcome.due / 100_000_000, default: 0] = Swift.max(tail[outcome.due / 100_000_000] ?? 0, outcome.latency)
        }
        tailMax = tail.sorted { $0.key < $1.key }.map { Int($0.value / 1_000_000) }
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
            "rate": rate, "seconds": seconds, "warmup_seconds": warmup, "worst_seconds": worstSeconds, "tail_max_ms": tailMax,
        ]
    }
}

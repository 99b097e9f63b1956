/// One limiter per Pipedrive credential (research/api-contract.md §1.6, §4.4): the burst window
/// (requests per rolling 2 s, adapted from `x-ratelimit-*`), the daily token budget (costs per
/// operation), pauses after a 429 (`Retry-After` or the reset header), and a stop switch for
/// answers that mean "no more traffic" (401, 402, the HTML 403 abuse block). Every client sharing
/// the credential must share the limiter.
public actor PipedriveLimiter {
    /// Token costs of the CallLogs operations (confirmed: list 20, get 2, add 10, recording 10,
    /// delete 6).
    public enum Operation: String, Sendable {
        case list, get, add, recording, delete

        public var cost: Int {
            switch self {
            case .list: 20
            case .get: 2
            case .add: 10
            case .recording: 10
            case .delete: 6
            }
        }
    }

    /// What has been spent and seen, for reports.
    public struct Counters: Sendable, Equatable {
        public var requests = 0
        public var tokensSpent = 0
        public var rateLimited = 0
        public var byOperation: [String: Int] = [:]
    }

    /// A booked request: give it back to ``finished(_:)`` when its answer (or failure) arrives.
    public struct Ticket: Sendable, Hashable { let id: Int }

    public private(set) var counters = Counters()
    public private(set) var burst: Int
    public let window: Duration
    public let dailyTokens: Int
    /// The requests of the current window. A slot is dated by when its answer arrived — after
    /// the server counted the request — so however latency varies, a new request cannot reach the
    /// server inside the old one's window. Until the answer arrives the slot cannot expire.
    private var slots: [(ticket: Int, at: ContinuousClock.Instant, inFlight: Bool)] = []
    private var nextTicket = 0
    private var pausedUntil: ContinuousClock.Instant?
    private var stopped: APIError?
    private let margin: Duration
    /// A slot whose answer never came back is released after this long (a caller that forgot).
    private let inFlightLimit: Duration = .seconds(300)

    /// - Parameters:
    ///   - burst: requests per `window` (Lite with an API token: 20 per 2 s).
    ///   - dailyTokens: the company's daily token budget (30,000 × plan multiplier × seats).
    public init(burst: Int = 20, window: Duration = .seconds(2), dailyTokens: Int = 30_000, margin: Duration = .milliseconds(5)) {
        self.burst = max(1, burst)
        self.window = window
        self.dailyTokens = dailyTokens
        self.margin = margin
    }

    /// Waits until a request may go out, and books its tokens. Throws `stop_everything` when the
    /// API was stopped or the daily budget cannot cover the request.
    @discardableResult
    public func acquire(_ operation: Operation) async throws -> Ticket {
        while true {
            if let stopped { throw stopped }
            guard counters.tokensSpent + operation.cost <= dailyTokens else {
                throw APIError(.stopEverything, api: .pipedrive, "the daily token budget is spent (\(counters.tokensSpent) of \(dailyTokens)); it renews at the server's midnight")
            }
            let now = ContinuousClock.now
            if let until = pausedUntil, until > now {
                try await Task.sleep(until: until, clock: .continuous)
                continue
            }
            slots.removeAll { slot in
                slot.inFlight ? now - slot.at >= inFlightLimit : now - slot.at >= window + margin
            }
            if slots.count < burst {
                nextTicket += 1
                slots.append((nextTicket, now, true))
                counters.requests += 1
                counters.tokensSpent += operation.cost
                counters.byOperation[operation.rawValue, default: 0] += 1
                return Ticket(id: nextTicket)
            }
            // Wait for the oldest answered slot to leave the window; if every slot is still in
            // flight, look again shortly (answers on loopback take milliseconds).
            let answered = slots.filter { !$0.inFlight }.map(\.at).min()
            try await Task.sleep(until: answered.map { $0 + window + margin } ?? now + .milliseconds(5), clock: .continuous)
        }
    }

    /// The answer to `ticket` arrived (or the request failed): its slot is dated now.
    public func finished(_ ticket: Ticket) {
        if let i = slots.firstIndex(where: { $0.ticket == ticket.id }) {
            slots[i].at = ContinuousClock.now
            slots[i].inFlight = false
        }
    }

    /// Reads the `x-ratelimit-*` headers of an answer: the limit adapts the burst size; a window
    /// reported exhausted pauses until it resets.
    public func observe(limit: Int?, remaining: Int?, reset: Double?) {
        if let limit, limit > 0, limit != burst { burst = limit }
        if let remaining, remaining <= 0, let reset, reset.isFinite {
            pause(for: .milliseconds(Int64(min(max(reset, 0.05), 3600) * 1000)))
        }
    }

    /// A 429: no request goes out before `duration` has passed; the request's tokens are given
    /// back (a rejected request costs nothing).
    public func rateLimited(_ operation: Operation, retryAfter duration: Duration) {
        counters.rateLimited += 1
        counters.tokensSpent -= operation.cost
        pause(for: duration)
    }

    /// A request that never reached the server costs nothing.
    public func refund(_ operation: Operation) {
        counters.tokensSpent -= operation.cost
    }

    /// Stops all traffic through this limiter (401, 402, abuse block).
    public func stop(_ error: APIError) { stopped = error }

    public var isStopped: Bool { stopped != nil }

    private func pause(for duration: Duration) {
        let until = ContinuousClock.now + duration
        if pausedUntil.map({ $0 < until }) ?? true { pausedUntil = until }
    }
}

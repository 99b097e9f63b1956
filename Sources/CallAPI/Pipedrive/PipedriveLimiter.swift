import Foundation

/// One limiter per Pipedrive credential (research/api-contract.md §1.6, §4.4): the burst window
/// (requests per rolling 2 s, adapted from `x-ratelimit-*`), the daily token budget (costs per
/// operation), pauses after a 429 (`Retry-After` or the reset header), and a stop switch for
/// answers that mean "no more traffic" (a refused token: for good; the HTML 403 abuse block: for
/// its cool-down). Every client sharing the credential must share the limiter.
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
    /// The budget day starts this long after midnight UTC (Pipedrive resets at the server's
    /// midnight, in a time zone it does not name: `PIPEDRIVE_BUDGET_RESET`).
    public let budgetReset: Duration
    /// A pause longer than this (a 429 whose `Retry-After` runs to the budget's reset) is not
    /// waited out in-process: ``acquire(_:)`` throws `rate_limited` with the time left, and the
    /// job snoozes.
    public let maxWait: Duration
    private let now: @Sendable () -> Date
    /// Tokens booked in the current budget day (``Counters/tokensSpent`` counts this limiter's life).
    private var dayTokens = 0
    /// Tokens set aside for uploads that must follow creates; by call log once it is known.
    private var reserved = 0
    private var reservations: [String: Int] = [:]
    private var budgetDay: Int64?
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
    ///   - budgetReset: when the budget day starts, after midnight UTC.
    ///   - now: the wall clock (tests move it across a budget day).
    public init(burst: Int = 20, window: Duration = .seconds(2), dailyTokens: Int = 30_000, budgetReset: Duration = .zero,
                maxWait: Duration = .seconds(60), margin: Duration = .milliseconds(5), now: @escaping @Sendable () -> Date = { Date() }) {
        self.burst = max(1, burst)
        self.window = window
        self.dailyTokens = dailyTokens
        self.budgetReset = budgetReset
        self.maxWait = maxWait
        self.margin = margin
        self.now = now
    }

    /// The limits of `PIPEDRIVE_BURST`, `PIPEDRIVE_DAILY_TOKENS` and `PIPEDRIVE_BUDGET_RESET`.
    public init(environment: APIEnvironment) {
        self.init(burst: environment.pipedriveBurst, dailyTokens: environment.pipedriveDailyTokens, budgetReset: environment.pipedriveBudgetReset)
    }

    /// The number of the budget day now (days since the epoch, each starting at `budgetReset`).
    private var budgetDayNow: Int64 {
        Int64(((now().timeIntervalSince1970 - budgetReset.seconds) / 86_400).rounded(.down))
    }

    /// When the current budget day ends and the daily budget renews.
    public var nextBudgetReset: Date {
        Date(timeIntervalSince1970: Double(budgetDayNow + 1) * 86_400 + budgetReset.seconds)
    }

    /// Starts a new budget day's count when the day has changed.
    private func rollBudgetDay() {
        let day = budgetDayNow
        if budgetDay != day {
            budgetDay = day
            dayTokens = 0
        }
    }

    private func book(_ cost: Int) {
        counters.tokensSpent += cost
        dayTokens = max(0, dayTokens + cost)
    }

    /// Sets `tokens` of today's budget aside for a request that must follow `operation` (a
    /// create's upload: a call log is only made when its audio can follow the same day). Throws
    /// `budget_spent` when the budget cannot cover both. Give the reservation to the call log
    /// with ``keepReservation(_:for:)``, or back with ``releaseReservation(_:)``.
    public func reserve(_ tokens: Int, alongWith operation: Operation) throws {
        rollBudgetDay()
        guard dayTokens + reserved + operation.cost + tokens <= dailyTokens else { throw budgetSpent() }
        reserved += tokens
    }

    /// The reservation is for the upload to `callLog`.
    public func keepReservation(_ tokens: Int, for callLog: String) {
        reservations[callLog, default: 0] += tokens
    }

    /// The reservation is not needed (the create failed).
    public func releaseReservation(_ tokens: Int) {
        reserved = max(0, reserved - tokens)
    }

    private func budgetSpent() -> APIError {
        let reset = nextBudgetReset
        return APIError(.budgetSpent, api: .pipedrive,
                        "the daily token budget is spent (\(dayTokens) of \(dailyTokens) tokens used, \(reserved) set aside for uploads); it renews at \(ISO8601DateFormatter().string(from: reset))",
                        retryAfter: .seconds(max(1, reset.timeIntervalSince(now()).rounded(.up))), retryAt: reset)
    }

    /// Waits until a request may go out, and books its tokens. Throws `stop_everything` when the
    /// API was stopped, `budget_spent` when the day's budget, less what is set aside for uploads,
    /// cannot cover the request. A request for `callLog` uses that call log's reservation.
    @discardableResult
    public func acquire(_ operation: Operation, for callLog: String? = nil) async throws -> Ticket {
        while true {
            if let stopped {
                // The abuse block's cool-down ends; a refused credential stays refused.
                guard let until = stopped.retryAt, until <= self.now() else { throw stopped }
                self.stopped = nil
            }
            rollBudgetDay()
            let held = callLog.flatMap { reservations[$0] }.map { min($0, operation.cost) } ?? 0
            guard dayTokens + reserved - held + operation.cost <= dailyTokens else { throw budgetSpent() }
            let now = ContinuousClock.now
            if let until = pausedUntil, until > now {
                if until - now > maxWait {
                    let left = until - now
                    let at = self.now().addingTimeInterval(left.seconds)
                    throw APIError(.rateLimited, api: .pipedrive,
                                   "Pipedrive asked for a pause until \(ISO8601DateFormatter().string(from: at)) (a 429 with a long Retry-After: the daily budget, or another integration on the account, is spent)",
                                   retryAfter: left, retryAt: at)
                }
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
                book(operation.cost)
                if held > 0, let callLog {
                    reserved -= held
                    reservations[callLog] = reservations[callLog].map { $0 - held }.flatMap { $0 > 0 ? $0 : nil }
                }
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
        book(-operation.cost)
        pause(for: duration)
    }

    /// A request that never left this machine costs nothing: its tokens go back, it is not
    /// counted as a request, and it frees its slot of the window.
    public func refund(_ ticket: Ticket, _ operation: Operation) {
        book(-operation.cost)
        counters.requests -= 1
        counters.byOperation[operation.rawValue, default: 1] -= 1
        if counters.byOperation[operation.rawValue] == 0 { counters.byOperation[operation.rawValue] = nil }
        slots.removeAll { $0.ticket == ticket.id }
    }

    /// Stops all traffic through this limiter: for good (a refused token), or until the error's
    /// ``APIError/retryAt`` (the abuse block's cool-down).
    public func stop(_ error: APIError) { stopped = error }

    /// What stopped the traffic, while it is stopped.
    public var stoppedBy: APIError? {
        guard let stopped, stopped.retryAt.map({ $0 > now() }) ?? true else { return nil }
        return stopped
    }

    public var isStopped: Bool { stoppedBy != nil }

    private func pause(for duration: Duration) {
        let until = ContinuousClock.now + duration
        if pausedUntil.map({ $0 < until }) ?? true { pausedUntil = until }
    }
}

public import CallSupport
public import Foundation

/// One limiter per Pipedrive credential (research/api-contract.md §1.6, §4.4): the burst window
/// (requests per rolling 2 s, adapted from `x-ratelimit-*`), the daily token budget (costs per
/// operation), pauses after a 429 (`Retry-After`, else growing waits; a run of 429s without it is
/// taken as the daily budget spent until its reset), and a stop switch for answers that mean "no
/// more traffic" (a refused token: for good; the HTML 403 abuse block: for its cool-down). Every
/// client sharing the credential must share the limiter.
public actor PipedriveLimiter {
    /// Token costs of the CallLogs operations (confirmed: list 20, get 2, add 10, recording 10,
    /// delete 6).
    public enum Operation: String, Sendable {
        case list, get, add, recording, delete
        /// API v2 (the CRM index's listings, and a person created): half the v1 price.
        case listV2 = "list_v2", addV2 = "add_v2"

        public var cost: Int {
            switch self {
            case .list: 20
            case .listV2: 10
            case .addV2: 5
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
    public struct Ticket: Sendable, Hashable {
        let id: Int
        /// When the request was let out.
        let sentAt: AnyClock.Instant
    }

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
    /// The wall clock: budget days, and the dates errors name.
    let now: @Sendable () -> Date
    /// The clock of the burst window, the pauses after 429s and every wait of a request through
    /// this credential (the client's retries too).
    public nonisolated let clock: AnyClock
    /// Tokens booked in the current budget day (``Counters/tokensSpent`` counts this limiter's life).
    private var dayTokens = 0
    /// Tokens set aside for uploads that must follow creates; by call log once it is known.
    private var reserved = 0
    private var reservations: [String: Int] = [:]
    private var budgetDay: Int64?
    /// Booked tokens by budget day, not yet handed to ``takeUnrecordedSpend()``.
    private var unrecorded: [Int64: Int] = [:]
    /// Booked tokens by budget day handed out (recorded in the shared count).
    private var recorded: [Int64: Int] = [:]
    /// What the other processes sharing the account booked in budget day `othersDay`, as the
    /// shared count last said (``shared(budgetDay:total:)``).
    private var othersTokens = 0
    private var othersDay: Int64?
    /// The requests of the current window. A slot is dated by when its answer arrived — after
    /// the server counted the request — so however latency varies, a new request cannot reach the
    /// server inside the old one's window. Until the answer arrives the slot cannot expire.
    private var slots: [(ticket: Int, at: AnyClock.Instant, inFlight: Bool)] = []
    private var nextTicket = 0
    private var pausedUntil: AnyClock.Instant?
    private var stopped: APIError?
    private let margin: Duration
    /// Waits after 429s that name none: `base` doubling per round, capped, with jitter.
    private let rateLimitBackoff: Backoff
    /// Rounds of 429s without `Retry-After`, with no other answer between, after which the
    /// daily budget is taken as spent.
    public let budgetSignal: Int
    /// Rounds counted so far, and when the last counted 429 arrived: a 429 to a request sent
    /// before that belongs to the same round (requests in flight together meet one refusal).
    private var limitedRounds = 0
    private var lastRoundAt: AnyClock.Instant?
    /// The budget day the 429s showed spent, and what they were.
    private var spentDay: Int64?
    private var spentReason: String?
    /// A slot whose answer never came back is released after this long (a caller that forgot).
    private let inFlightLimit: Duration = .seconds(300)

    /// - Parameters:
    ///   - burst: requests per `window` (Lite with an API token: 20 per 2 s).
    ///   - dailyTokens: the company's daily token budget (30,000 × plan multiplier × seats).
    ///   - budgetReset: when the budget day starts, after midnight UTC.
    ///   - now: the wall clock (tests move it across a budget day).
    ///   - rateLimitWait: the first wait after a 429 without `Retry-After`; each further round
    ///     doubles it, up to `rateLimitWaitCap` (jittered down to half).
    ///   - budgetSignal: that many rounds of such 429s with no other answer between mean the
    ///     daily budget is spent (Pipedrive documents no header for it).
    ///   - clock: the clock of the windows and the waits (tests move a `ManualClock` by hand;
    ///     give `now` the same time as a date when a test crosses a budget day).
    public init(burst: Int = 20, window: Duration = .seconds(2), dailyTokens: Int = 30_000, budgetReset: Duration = .zero,
                maxWait: Duration = .seconds(60), margin: Duration = .milliseconds(5), now: @escaping @Sendable () -> Date = { Date() },
                rateLimitWait: Duration = .seconds(2), rateLimitWaitCap: Duration = .seconds(60), budgetSignal: Int = 5,
                clock: some Clock<Duration> = ContinuousClock()) {
        self.clock = AnyClock(clock)
        self.rateLimitBackoff = Backoff(base: rateLimitWait, cap: rateLimitWaitCap, jitter: 0.5...1.0)
        self.budgetSignal = max(1, budgetSignal)
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
        unrecorded[budgetDay ?? budgetDayNow, default: 0] += cost
    }

    /// Tokens booked (less those given back) in one budget day that ``takeUnrecordedSpend()``
    /// has not handed out yet.
    public struct DaySpend: Sendable, Hashable {
        /// Days since the epoch, each starting at ``budgetReset``.
        public var budgetDay: Int64
        public var tokens: Int
        /// When that budget day ends.
        public var resetsAt: Date
        /// The daily budget this limiter keeps to.
        public var dailyTokens: Int
    }

    /// What was booked since the last call, by budget day (oldest first), and forgets it: the
    /// caller adds it to the spend every process sharing the account records
    /// (CallStore's `pipedrive_spend`), and gives it back with ``restoreUnrecordedSpend(_:)`` if
    /// that write fails.
    public func takeUnrecordedSpend() -> [DaySpend] {
        defer {
            for (day, tokens) in unrecorded { recorded[day, default: 0] += tokens }
            unrecorded.removeAll()
        }
        return unrecorded.filter { $0.value != 0 }.sorted { $0.key < $1.key }.map {
            DaySpend(budgetDay: $0.key, tokens: $0.value, resetsAt: Date(timeIntervalSince1970: Double($0.key + 1) * 86_400 + budgetReset.seconds),
                     dailyTokens: dailyTokens)
        }
    }

    /// Spend ``takeUnrecordedSpend()`` handed out that could not be recorded: handed out again
    /// next time.
    public func restoreUnrecordedSpend(_ spend: [DaySpend]) {
        for day in spend {
            unrecorded[day.budgetDay, default: 0] += day.tokens
            recorded[day.budgetDay, default: 0] -= day.tokens
        }
    }

    /// The shared count of budget day `budgetDay` (every process's recorded spend, this one's
    /// included) is `total`: what the others booked counts against this limiter's budget too,
    /// so that workers sharing an account stop together when it is spent (up to the spend of
    /// the seconds between two recordings).
    public func shared(budgetDay: Int64, total: Int) {
        othersDay = budgetDay
        othersTokens = max(0, total - (recorded[budgetDay] ?? 0))
    }

    /// Today's tokens booked by the other processes sharing the account, as last told.
    private var othersToday: Int { othersDay != nil && othersDay == budgetDay ? othersTokens : 0 }

    /// Sets `tokens` of today's budget aside for a request that must follow `operation` (a
    /// create's upload: a call log is only made when its audio can follow the same day). Throws
    /// `budget_spent` when the budget cannot cover both. Give the reservation to the call log
    /// with ``keepReservation(_:for:)``, or back with ``releaseReservation(_:)``.
    public func reserve(_ tokens: Int, alongWith operation: Operation) throws {
        rollBudgetDay()
        guard !spent(adding: reserved + operation.cost + tokens) else { throw budgetSpent() }
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
        let others = othersToday > 0 ? " (\(othersToday) more by other processes sharing the account)" : ""
        let what = spentDay == budgetDay ? spentReason ?? "" : "\(dayTokens) of \(dailyTokens) tokens used\(others), \(reserved) set aside for uploads"
        return APIError(.budgetSpent, api: .pipedrive,
                        "the daily token budget is spent (\(what)); it renews at \(ISO8601DateFormatter().string(from: reset)) (PIPEDRIVE_BUDGET_RESET)",
                        retryAfter: .seconds(max(1, reset.timeIntervalSince(now()).rounded(.up))), retryAt: reset)
    }

    /// Whether the budget is known spent for today: by the count, or by the server's 429s.
    private func spent(adding tokens: Int) -> Bool {
        spentDay == budgetDay || dayTokens + othersToday + tokens > dailyTokens
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
            guard !spent(adding: reserved - held + operation.cost) else { throw budgetSpent() }
            let now = clock.now
            if let until = pausedUntil, until > now {
                if until - now > maxWait {
                    let left = until - now
                    let at = self.now().addingTimeInterval(left.seconds)
                    throw APIError(.rateLimited, api: .pipedrive,
                                   "Pipedrive asked for a pause until \(ISO8601DateFormatter().string(from: at)) (a 429 with a long Retry-After: the daily budget, or another integration on the account, is spent)",
                                   retryAfter: left, retryAt: at)
                }
                try await clock.sleep(until: until)
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
                return Ticket(id: nextTicket, sentAt: now)
            }
            // Wait for the oldest answered slot to leave the window; if every slot is still in
            // flight, look again shortly (answers on loopback take milliseconds).
            let answered = slots.filter { !$0.inFlight }.map(\.at).min()
            try await clock.sleep(until: answered.map { $0.advanced(by: window + margin) } ?? now.advanced(by: .milliseconds(5)))
        }
    }

    /// The answer to `ticket` arrived (or the request failed): its slot is dated now.
    public func finished(_ ticket: Ticket) {
        if let i = slots.firstIndex(where: { $0.ticket == ticket.id }) {
            slots[i].at = clock.now
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

    /// A 429 to `ticket`. With `retryAfter` (the server's `Retry-After`), that pause. Without
    /// it, a round of refusals: the pause grows with each round (and is at least `windowReset`,
    /// the burst window's own reset when it said it was exhausted), and after ``budgetSignal``
    /// rounds with no other answer between — longer than any burst window explains — the
    /// daily budget is taken as spent until its reset: this and every later request of the day
    /// throw `budget_spent`. Returns the pause.
    public func rateLimited(_ ticket: Ticket, _ operation: Operation, retryAfter: Duration?, windowReset: Duration? = nil) throws -> Duration {
        counters.rateLimited += 1
        book(-operation.cost)
        if let retryAfter {
            pause(for: retryAfter)
            return retryAfter
        }
        // Requests sent before the last counted refusal arrived meet the same round.
        if lastRoundAt.map({ ticket.sentAt > $0 }) ?? true {
            limitedRounds += 1
            lastRoundAt = clock.now
        }
        if limitedRounds >= budgetSignal {
            rollBudgetDay()
            spentDay = budgetDay
            spentReason = "Pipedrive answered 429 without Retry-After \(limitedRounds) times in a row, with growing waits between, while callrec had used \(dayTokens) of its \(dailyTokens) tokens today: the account's budget is spent, by callrec or another integration"
            throw budgetSpent()
        }
        let wait = max(rateLimitBackoff.delay(afterAttempt: limitedRounds), windowReset ?? .zero)
        pause(for: wait)
        return wait
    }

    /// An answer that costs nothing (a refused token, the abuse block's page): its tokens go
    /// back; it still counts as a request.
    public func uncharged(_ operation: Operation) {
        book(-operation.cost)
    }

    /// An answer other than 429 arrived: the run of 429s, if any, was not the budget.
    public func answered() {
        limitedRounds = 0
        lastRoundAt = nil
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
        let until = clock.now.advanced(by: duration)
        if pausedUntil.map({ $0 < until }) ?? true { pausedUntil = until }
    }
}

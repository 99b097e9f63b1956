import Foundation

/// Faults the sandbox injects, at random by probability (`callrec sandbox --faults SPEC`) or aimed
/// at one request with the `x-sandbox-fault` header (which always wins).
///
/// Every class applies to every API (Pipedrive, Telnyx, VoipNow), never to `/_sandbox/`:
/// - `429`: a rate-limit answer with `Retry-After` (the API's own error body); costs nothing.
/// - `500`, `503`: a server error with the API's error body; costs nothing.
/// - `slow`: waits ``slowDelay`` before handling the request normally.
/// - `cut`: closes the connection while the request body is being read (for an upload: after about
///   half of it arrived); nothing is stored, nothing is charged.
/// - `lost`: handles the request normally (a `POST /v1/callLogs` creates the call log, a `DELETE`
///   deletes), then closes the connection without answering.
/// - `abuse`: a `403` with a Cloudflare-like `text/html` page (Pipedrive's abuse block).
/// - `budget`: a `429` without `Retry-After` whose `x-ratelimit-*` headers show room in the burst
///   window: what Pipedrive is known to send once the account's daily token budget is spent
///   (research/api-contract.md §1.6 documents no header for the budget); costs nothing.
///
/// The Telnyx webhooks the sandbox sends (``SandboxConfiguration/telnyxWebhook``) have faults of
/// their own, drawn from a seeded generator (`telnyx_seed=N`, else a random seed the sandbox logs):
/// - `telnyx_duplicate=P`: with probability P an event is delivered a second time (half of these
///   at the same time as the first delivery, the others after it).
/// - `telnyx_reorder=1`: each call's events go out in a shuffled order.
/// - `telnyx_delay=S`: each event waits a random time up to S seconds (events of a call are then
///   sent independently, so they may overtake each other).
public struct FaultPlan: Sendable, Equatable {
    /// One class of fault.
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case tooManyRequests = "429"
        case internalServerError = "500"
        case serviceUnavailable = "503"
        case slow
        case cut
        case lost
        case abuse
        case budget
    }

    /// Probability of each class per request, 0…1; they add up to at most 1.
    public var probabilities: [Kind: Double] = [:]
    /// How long a `slow` request waits before it is handled.
    public var slowDelay: Duration = .seconds(3)
    /// The `Retry-After` of an injected `429`, in seconds.
    public var retryAfterSeconds: Int = 1
    /// The probability that a Telnyx webhook is delivered twice.
    public var telnyxDuplicate: Double = 0
    /// Whether each call's webhooks go out shuffled.
    public var telnyxReorder = false
    /// The longest random delay of a Telnyx webhook, in seconds (0: none).
    public var telnyxDelay: Double = 0
    /// The seed of the webhook faults; nil: a random one (logged at start).
    public var telnyxSeed: UInt64?

    public init() {}

    /// Parses a specification such as `"429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02"`.
    ///
    /// Besides the classes, `delay=SECONDS` sets ``slowDelay`` and `retry-after=SECONDS` sets
    /// ``retryAfterSeconds``. An empty string is no faults.
    /// - Throws: ``SandboxError`` with code ``SandboxError/Code/invalidFaultSpecification``.
    public init(specification: String) throws {
        for item in specification.split(separator: ",") {
            let pair = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, !pair[0].isEmpty, let number = Double(pair[1]), number.isFinite, number >= 0 else {
                throw SandboxError(.invalidFaultSpecification, "'\(item)' is not NAME=NUMBER (e.g. 429=0.05)")
            }
            switch pair[0].lowercased() {
            case "delay":
                slowDelay = .milliseconds(Int64((number * 1000).rounded()))
            case "retry-after":
                retryAfterSeconds = max(1, Int(number.rounded(.up)))
            case "telnyx_duplicate":
                guard number <= 1 else { throw SandboxError(.invalidFaultSpecification, "telnyx_duplicate must be between 0 and 1") }
                telnyxDuplicate = number
            case "telnyx_reorder":
                telnyxReorder = number != 0
            case "telnyx_delay":
                guard number <= 600 else { throw SandboxError(.invalidFaultSpecification, "telnyx_delay must be at most 600 seconds") }
                telnyxDelay = number
            case "telnyx_seed":
                guard number == number.rounded(), number < 9e15 else {
                    throw SandboxError(.invalidFaultSpecification, "telnyx_seed must be a whole number")
                }
                telnyxSeed = UInt64(number)
            case let name:
                guard let kind = Kind(rawValue: name) else {
                    throw SandboxError(.invalidFaultSpecification, "unknown fault '\(name)' (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), delay, retry-after, telnyx_duplicate, telnyx_reorder, telnyx_delay, telnyx_seed)")
                }
                guard number <= 1 else {
                    throw SandboxError(.invalidFaultSpecification, "the probability of \(name) must be between 0 and 1")
                }
                probabilities[kind] = number
            }
        }
        let total = probabilities.values.reduce(0, +)
        guard total <= 1 + 1e-9 else {
            throw SandboxError(.invalidFaultSpecification, "the probabilities add up to \(total), more than 1")
        }
    }

    /// Whether any fault can happen at random (to a request or to a webhook).
    public var isEmpty: Bool { probabilities.values.allSatisfy { $0 == 0 } && !hasTelnyxFaults }

    /// Whether the Telnyx webhooks get faults.
    public var hasTelnyxFaults: Bool { telnyxDuplicate > 0 || telnyxReorder || telnyxDelay > 0 }

    /// The specification this plan parses from (for logs).
    public var specification: String {
        var items = Kind.allCases.compactMap { kind in probabilities[kind].flatMap { $0 > 0 ? "\(kind.rawValue)=\($0)" : nil } }
        if !items.isEmpty {
            items.append("delay=\(Double(slowDelay.components.seconds) + Double(slowDelay.components.attoseconds) / 1e18)")
            items.append("retry-after=\(retryAfterSeconds)")
        }
        if telnyxDuplicate > 0 { items.append("telnyx_duplicate=\(telnyxDuplicate)") }
        if telnyxReorder { items.append("telnyx_reorder=1") }
        if telnyxDelay > 0 { items.append("telnyx_delay=\(telnyxDelay)") }
        if let telnyxSeed { items.append("telnyx_seed=\(telnyxSeed)") }
        return items.joined(separator: ",")
    }

    /// Draws at most one fault class for a request.
    func draw() -> Kind? {
        guard probabilities.values.contains(where: { $0 > 0 }) else { return nil }
        var roll = Double.random(in: 0..<1)
        for kind in Kind.allCases {
            let p = probabilities[kind] ?? 0
            if roll < p { return kind }
            roll -= p
        }
        return nil
    }
}

/// The faults aimed at one request.
struct FaultSet: Sendable, Equatable {
    var kinds: Set<FaultPlan.Kind> = []
    var delay: Duration?

    func contains(_ kind: FaultPlan.Kind) -> Bool { kinds.contains(kind) }

    /// Parses the `x-sandbox-fault` header: one or more classes separated by commas, or `none`
    /// (no fault, not even a random one). Nil when a value is not a class.
    static func parse(header: String) -> FaultSet? {
        var set = FaultSet()
        for item in header.split(separator: ",") {
            let name = item.trimmingCharacters(in: .whitespaces).lowercased()
            if name == "none" || name.isEmpty { continue }
            guard let kind = FaultPlan.Kind(rawValue: name) else { return nil }
            set.kinds.insert(kind)
        }
        return set
    }
}

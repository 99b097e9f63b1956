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
            case let name:
                guard let kind = Kind(rawValue: name) else {
                    throw SandboxError(.invalidFaultSpecification, "unknown fault '\(name)' (known: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), delay, retry-after)")
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

    /// Whether any fault can happen at random.
    public var isEmpty: Bool { probabilities.values.allSatisfy { $0 == 0 } }

    /// The specification this plan parses from (for logs).
    public var specification: String {
        var items = Kind.allCases.compactMap { kind in probabilities[kind].flatMap { $0 > 0 ? "\(kind.rawValue)=\($0)" : nil } }
        if !items.isEmpty {
            items.append("delay=\(Double(slowDelay.components.seconds) + Double(slowDelay.components.attoseconds) / 1e18)")
            items.append("retry-after=\(retryAfterSeconds)")
        }
        return items.joined(separator: ",")
    }

    /// Draws at most one fault class for a request.
    func draw() -> Kind? {
        guard !isEmpty else { return nil }
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

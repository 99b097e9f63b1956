/// A credential. Its description is always `<redacted>`, so it cannot reach a log line, an error
/// description or a report by accident; only ``reveal()`` gives the value, at the one place that
/// puts it in a request header.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    public init(_ value: String) { self.value = value }

    /// The raw value, for an HTTP header. Never log it.
    public func reveal() -> String { value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var isEmpty: Bool { value.isEmpty }
}

/// Where the three APIs live and the credentials for them (DESIGN §7), from the environment or
/// from a `KEY=VALUE` file (`--config`); never from argv.
public struct APIEnvironment: Sendable {
    public var pipedriveURL: String
    public var pipedriveToken: Secret?
    public var pipedriveDailyTokens: Int
    /// `PIPEDRIVE_BUDGET_RESET` (`HH:MM`, UTC; default `00:00`): when the daily budget renews.
    public var pipedriveBudgetReset: Duration = .zero
    public var pipedriveBurst: Int
    public var telnyxURL: String
    public var telnyxKey: Secret?
    public var voipnowURL: String?
    public var voipnowToken: Secret?

    /// Reads the variables of DESIGN §7: the process environment first, then `file` (lines of
    /// `KEY=VALUE`, `#` comments) for what the environment leaves unset.
    public static func load(environment: [String: String], file: String? = nil) throws -> APIEnvironment {
        var values = environment
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw APIError(.configuration, api: .none, "cannot read the configuration file \(file)")
            }
            for line in text.split(whereSeparator: \.isNewline) {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.hasPrefix("#"), let eq = trimmed.firstIndex(of: "=") else { continue }
                let key = String(trimmed[..<eq]).trimmingCharacters(in: .whitespaces)
                var value = String(trimmed[trimmed.index(after: eq)...]).trimmingCharacters(in: .whitespaces)
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                if values[key] == nil { values[key] = value }
            }
        }
        func secret(_ key: String) -> Secret? { values[key].flatMap { $0.isEmpty ? nil : Secret($0) } }
        func integer(_ key: String, _ fallback: Int) throws -> Int {
            guard let text = values[key] else { return fallback }
            guard let n = Int(text), n > 0 else {
                throw APIError(.configuration, api: .none, "\(key)=\(text) is not a positive integer")
            }
            return n
        }
        var budgetReset = Duration.zero
        if let text = values["PIPEDRIVE_BUDGET_RESET"] {
            let fields = text.split(separator: ":").map { Int($0) }
            guard fields.count == 2, let h = fields[0], let m = fields[1], (0..<24).contains(h), (0..<60).contains(m) else {
                throw APIError(.configuration, api: .none, "PIPEDRIVE_BUDGET_RESET=\(text) is not a UTC time HH:MM")
            }
            budgetReset = .seconds(h * 3600 + m * 60)
        }
        return APIEnvironment(
            pipedriveURL: values["PIPEDRIVE_API_URL"] ?? "https://api.pipedrive.com/v1",
            pipedriveToken: secret("PIPEDRIVE_API_TOKEN"),
            pipedriveDailyTokens: try integer("PIPEDRIVE_DAILY_TOKENS", 30_000),
            pipedriveBudgetReset: budgetReset,
            pipedriveBurst: try integer("PIPEDRIVE_BURST", 20),
            telnyxURL: values["TELNYX_API_URL"] ?? "https://api.telnyx.com/v2",
            telnyxKey: secret("TELNYX_API_KEY"),
            voipnowURL: values["VOIPNOW_API_URL"],
            voipnowToken: secret("VOIPNOW_ACCESS_TOKEN")
        )
    }
}

import Foundation

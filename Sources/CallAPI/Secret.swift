import Foundation

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

    /// The variables a `--config` file may set.
    public static let variables = [
        "PIPEDRIVE_API_TOKEN", "PIPEDRIVE_API_URL", "PIPEDRIVE_DAILY_TOKENS", "PIPEDRIVE_BURST", "PIPEDRIVE_BUDGET_RESET",
        "TELNYX_API_KEY", "TELNYX_API_URL", "VOIPNOW_ACCESS_TOKEN", "VOIPNOW_API_URL",
    ]

    /// Reads the variables of DESIGN §7: the process environment first, then `file` for what the
    /// environment leaves unset. Every setting is checked here, before any work: numbers, the
    /// reset time, and each `*_API_URL` (http or https, with a host; an empty one is unset).
    ///
    /// The file holds `KEY=VALUE` lines (`export KEY=VALUE` too; a value may be in `"…"` or
    /// `'…'`), blank lines and `#` comment lines. Anything else is an error naming the file, the
    /// line and the reason — never the line's text, which may hold a credential: a line that is
    /// not `KEY=VALUE`, a key callrec does not know, a key set twice, an unclosed quote, an
    /// unquoted value with spaces in it (a comment after the value).
    public static func load(environment: [String: String], file: String? = nil) throws -> APIEnvironment {
        var values = environment
        if let file {
            for (key, value) in try Self.read(file: file) where values[key] == nil { values[key] = value }
        }
        func secret(_ key: String) -> Secret? { values[key].flatMap { $0.isEmpty ? nil : Secret($0) } }
        func integer(_ key: String, _ fallback: Int) throws -> Int {
            guard let text = values[key] else { return fallback }
            guard let n = Int(text), n > 0 else {
                throw APIError(.configuration, api: .none, "\(key)=\(text) is not a positive integer")
            }
            return n
        }
        func url(_ key: String) throws -> String? {
            guard let text = values[key], !text.isEmpty else { return nil }
            try checkURL(text, variable: key)
            return text
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
            pipedriveURL: try url("PIPEDRIVE_API_URL") ?? "https://api.pipedrive.com/v1",
            pipedriveToken: secret("PIPEDRIVE_API_TOKEN"),
            pipedriveDailyTokens: try integer("PIPEDRIVE_DAILY_TOKENS", 30_000),
            pipedriveBudgetReset: budgetReset,
            pipedriveBurst: try integer("PIPEDRIVE_BURST", 20),
            telnyxURL: try url("TELNYX_API_URL") ?? "https://api.telnyx.com/v2",
            telnyxKey: secret("TELNYX_API_KEY"),
            voipnowURL: try url("VOIPNOW_API_URL"),
            voipnowToken: secret("VOIPNOW_ACCESS_TOKEN")
        )
    }

    /// Refuses a base URL that requests cannot be sent to: not http or https, no host, or a query
    /// or fragment (paths are appended to it). The message names the variable and the reason,
    /// never the value (it could carry a password).
    public static func checkURL(_ text: String, variable: String) throws {
        func refuse(_ reason: String) -> APIError {
            APIError(.configuration, api: .none, "\(variable) must be an http:// or https:// URL with a host (such as https://api.example.com/v1): \(reason)")
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme else {
            throw refuse("it is not a URL")
        }
        guard ["http", "https"].contains(scheme.lowercased()) else { throw refuse("its scheme is \(scheme)") }
        guard let host = components.host, !host.isEmpty else { throw refuse("it has no host") }
        guard components.query == nil, components.fragment == nil else { throw refuse("it has a query or a fragment") }
    }

    /// The settings of a `--config` file, by key.
    static func read(file: String) throws -> [String: String] {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw APIError(.configuration, api: .none, "cannot read the configuration file \(file)")
        }
        var values: [String: String] = [:]
        var lineOf: [String: Int] = [:]
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        for (index, raw) in lines.enumerated() {
            let number = index + 1
            func refuse(_ reason: String) -> APIError {
                APIError(.configuration, api: .none, "\(file):\(number): \(reason)")
            }
            var line = Substring(raw.trimmingCharacters(in: .whitespaces))
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("export "), line.dropFirst(7).contains("=") { line = line.dropFirst(7).drop(while: \.isWhitespace) }
            guard let eq = line.firstIndex(of: "=") else { throw refuse("not KEY=VALUE (comments start with #)") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard let first = key.first, first.isLetter || first == "_",
                  key.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw refuse("not KEY=VALUE (a key is letters, digits and _)")
            }
            guard variables.contains(key) else {
                var reason = "unknown setting \(key)"
                if key == "CALLREC_DATABASE" {
                    reason += " (a configuration file holds the API settings; CALLREC_DATABASE comes from the environment)"
                } else if let near = variables.min(by: { distance($0, key) < distance($1, key) }), distance(near, key) <= 3 {
                    reason += " (did you mean \(near)?)"
                } else {
                    reason += " (known: \(variables.joined(separator: ", ")))"
                }
                throw refuse(reason)
            }
            if let earlier = lineOf[key] { throw refuse("\(key) is set again (first on line \(earlier))") }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if let quote = value.first, quote == "\"" || quote == "'" {
                guard value.count >= 2, value.last == quote else { throw refuse("the value of \(key) opens a quote it does not close") }
                value = String(value.dropFirst().dropLast())
            } else if value.contains(where: \.isWhitespace) {
                throw refuse("the value of \(key) has a space in it (quote it; a comment goes on a line of its own)")
            }
            values[key] = value
            lineOf[key] = number
        }
        return values
    }

    /// Edit distance, for "did you mean" (the config file's keys use it too).
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var diagonal = row[0]
            row[0] = i + 1
            for (j, y) in b.enumerated() {
                let above = row[j + 1]
                row[j + 1] = min(diagonal + (x == y ? 0 : 1), above + 1, row[j] + 1)
                diagonal = above
            }
        }
        return row[b.count]
    }
}

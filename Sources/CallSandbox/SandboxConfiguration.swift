public import Foundation

/// Everything `callrec sandbox` and the tests can set.
///
/// Rate limiting follows Pipedrive's Lite plan with an API token by default: 20 requests in any
/// rolling 2-second window and 30,000 tokens a day (api-contract §1.6).
public struct SandboxConfiguration: Sendable {
    /// The address to listen on. Anything but loopback exposes the introspection routes only to
    /// loopback peers (`/_sandbox/` answers 403 to others).
    public var host: String = "127.0.0.1"
    /// 0 picks any free port; ``Sandbox/waitUntilRunning()`` returns the one bound.
    public var port: Int = 0
    /// Nil keeps everything in memory (uploaded audio goes to a temporary directory removed with
    /// the sandbox). Otherwise a JSON snapshot (`sandbox-state.json`) and the uploaded recordings
    /// (`recordings/`) live here and survive a restart.
    public var stateDirectory: String? = nil
    /// The `x-api-token` Pipedrive requests must carry.
    public var pipedriveToken: String
    /// The `Authorization: Bearer` key Telnyx requests must carry.
    public var telnyxKey: String
    /// The `Authorization: Bearer` token VoipNow requests must carry.
    public var voipnowToken: String
    /// Pipedrive burst limit: requests admitted in any rolling ``burstWindow``.
    public var burstPerTwoSeconds: Int = 20
    /// The burst window; 2 seconds at Pipedrive. Tests shorten it instead of sleeping.
    public var burstWindow: Duration = .seconds(2)
    /// Pipedrive daily token budget (reset at midnight UTC; the real reset time zone is not
    /// documented).
    public var dailyTokens: Int = 30_000
    /// Telnyx requests admitted in any rolling ``telnyxWindow``, per key (Telnyx publishes no
    /// numbers for `/v2/recordings`: api-contract §2.6); over it, 429 `10011`.
    public var telnyxRequestsPerWindow: Int = 100
    /// The Telnyx window; `x-ratelimit-reset` counts the seconds until its oldest request leaves it.
    public var telnyxWindow: Duration = .seconds(1)
    /// Uploads larger than this get 413 (Pipedrive documents no limit); nil = no limit.
    public var maximumRecordingBytes: Int64? = nil
    /// Random faults; the `x-sandbox-fault` header aims one at a single request.
    public var faults = FaultPlan()
    /// The clock of the rate windows (Pipedrive's burst, Telnyx's) and of the `slow` fault's
    /// delay. Tests give a clock they move by hand instead of waiting out a window; the daily
    /// budget keeps to the wall clock's UTC day.
    public var clock: any Clock<Duration> = ContinuousClock()
    /// The wall time the CRM stamps `update_time` with; nil: the time the sandbox started plus
    /// ``clock``'s elapsed time (so a test's manual clock moves it too).
    public var now: (@Sendable () -> Date)? = nil
    /// CRM rows upserted at every start, after the state is loaded (`callrec sandbox --seed FILE`).
    public var crmSeed: CRMSeed? = nil

    // MARK: Telnyx that calls back

    /// Turns a WAV file (first path) into an MP3 file (second path); nil: recordings are served
    /// as WAV only (a call asking for `mp3` is refused). `callrec sandbox` gives it CallAudio's
    /// LAME encoder.
    public typealias MP3Encoder = @Sendable (_ wavPath: String, _ mp3Path: String) async throws -> Void
    public var mp3Encoder: MP3Encoder? = nil
    /// Where the simulated calls' webhooks go (also `POST /_sandbox/telnyx/webhook {"url": …}`);
    /// nil: nowhere until one is set.
    public var telnyxWebhook: String? = nil
    /// Calls simulated continuously from the start (`--telnyx-calls RATE`); nil: only on request.
    public var telnyxLoad: TelnyxLoad? = nil
    /// How long a webhook delivery may take before it counts as failed.
    public var telnyxWebhookTimeout: Duration = .seconds(10)
    /// Deliveries of one event at most (the first and the retries after a failure or a non-2xx).
    public var telnyxWebhookAttempts: Int = 4
    /// The wait before the first retry (doubling for each further one, up to 8 s).
    public var telnyxRetryDelay: Duration = .milliseconds(500)

    public init(pipedriveToken: String, telnyxKey: String, voipnowToken: String) {
        self.pipedriveToken = pipedriveToken
        self.telnyxKey = telnyxKey
        self.voipnowToken = voipnowToken
    }

    /// A configuration with made-up credentials (for tests).
    public static func random() -> SandboxConfiguration {
        SandboxConfiguration(pipedriveToken: randomToken(.pipedrive), telnyxKey: randomToken(.telnyx), voipnowToken: randomToken(.voipnow))
    }

    /// Reads `PIPEDRIVE_API_TOKEN`, `TELNYX_API_KEY`, `VOIPNOW_ACCESS_TOKEN` (and
    /// `PIPEDRIVE_BURST`, `PIPEDRIVE_DAILY_TOKENS` when set); makes up a credential for each one
    /// that is unset or empty.
    /// - Returns: the configuration, and the names of the variables whose values were made up (the
    ///   only credentials it is safe to print).
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> (SandboxConfiguration, generated: [String]) {
        var generated: [String] = []
        func credential(_ name: String, _ kind: TokenKind) -> String {
            if let value = environment[name], !value.isEmpty { return value }
            generated.append(name)
            return randomToken(kind)
        }
        var configuration = SandboxConfiguration(
            pipedriveToken: credential("PIPEDRIVE_API_TOKEN", .pipedrive),
            telnyxKey: credential("TELNYX_API_KEY", .telnyx),
            voipnowToken: credential("VOIPNOW_ACCESS_TOKEN", .voipnow)
        )
        if let burst = environment["PIPEDRIVE_BURST"].flatMap({ Int($0) }), burst > 0 {
            configuration.burstPerTwoSeconds = burst
        }
        if let daily = environment["PIPEDRIVE_DAILY_TOKENS"].flatMap({ Int($0) }), daily > 0 {
            configuration.dailyTokens = daily
        }
        return (configuration, generated)
    }

    /// Checks the ranges.
    /// - Throws: ``SandboxError`` with code ``SandboxError/Code/invalidConfiguration``.
    public func validate() throws {
        guard (0...65535).contains(port) else { throw SandboxError(.invalidConfiguration, "port \(port) is not 0…65535") }
        guard burstPerTwoSeconds >= 1 else { throw SandboxError(.invalidConfiguration, "the burst limit must be at least 1") }
        guard burstWindow > .zero else { throw SandboxError(.invalidConfiguration, "the burst window must be positive") }
        guard telnyxRequestsPerWindow >= 1, telnyxWindow > .zero else {
            throw SandboxError(.invalidConfiguration, "the Telnyx rate limit must be at least 1 request in a positive window")
        }
        guard dailyTokens >= 0 else { throw SandboxError(.invalidConfiguration, "the daily token budget must not be negative") }
        guard !pipedriveToken.isEmpty, !telnyxKey.isEmpty, !voipnowToken.isEmpty else {
            throw SandboxError(.invalidConfiguration, "every credential must be non-empty")
        }
        if let telnyxWebhook {
            guard let url = URL(string: telnyxWebhook), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
                throw SandboxError(.invalidConfiguration, "the Telnyx webhook URL must be an http(s) URL, not '\(telnyxWebhook)'")
            }
        }
        guard telnyxWebhookAttempts >= 1, telnyxWebhookTimeout > .zero, telnyxRetryDelay >= .zero else {
            throw SandboxError(.invalidConfiguration, "webhook deliveries need at least 1 attempt and a positive timeout")
        }
        if let telnyxLoad {
            try telnyxLoad.validate()
            if telnyxLoad.format == "mp3", mp3Encoder == nil {
                throw SandboxError(.invalidConfiguration, "--telnyx-format mp3 needs an MP3 encoder (this sandbox serves WAV only)")
            }
        }
    }

    /// The base URL of a sandbox listening on `port` with this configuration (a wildcard host is
    /// reached on loopback).
    public func baseURL(port: Int) -> String {
        let shown = host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host
        return "http://\(shown.contains(":") ? "[\(shown)]" : shown):\(port)"
    }

    /// What a sandbox listening on `port` publishes about itself.
    func address(port: Int) -> SandboxAddress {
        SandboxAddress(url: baseURL(port: port), pid: ProcessInfo.processInfo.processIdentifier, pipedriveToken: pipedriveToken, telnyxKey: telnyxKey, voipnowToken: voipnowToken)
    }

    enum TokenKind { case pipedrive, telnyx, voipnow }
}

/// Calls the sandbox simulates continuously (`callrec sandbox --telnyx-calls RATE`): each one
/// ends as it is made (its times are backdated), so `call.recording.saved` goes out at the rate.
public struct TelnyxLoad: Sendable, Equatable {
    /// Calls per second.
    public var rate: Double
    /// Each call's recording length is drawn from this range.
    public var seconds: ClosedRange<Int> = 60...180
    /// Stop making calls after this long; nil: until the sandbox stops.
    public var duration: Duration?
    /// `wav` or `mp3`.
    public var format = "wav"

    public init(rate: Double, seconds: ClosedRange<Int> = 60...180, duration: Duration? = nil, format: String = "wav") {
        self.rate = rate
        self.seconds = seconds
        self.duration = duration
        self.format = format
    }

    /// Parses `60-180` (or `120`) seconds.
    public static func parseSeconds(_ text: String) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", maxSplits: 1).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard let low = parts.first ?? nil, let high = parts.count == 2 ? parts[1] : low, low >= 1, low <= high,
              high <= TelnyxCallOrder.maximumSeconds else { return nil }
        return low...high
    }

    func validate() throws {
        guard rate > 0, rate <= 1000 else { throw SandboxError(.invalidConfiguration, "--telnyx-calls must be more than 0 and at most 1000 calls per second") }
        guard seconds.lowerBound >= 1, seconds.upperBound <= TelnyxCallOrder.maximumSeconds else {
            throw SandboxError(.invalidConfiguration, "--telnyx-call-seconds must be within 1…\(TelnyxCallOrder.maximumSeconds)")
        }
        if let duration, duration <= .zero { throw SandboxError(.invalidConfiguration, "--telnyx-duration must be positive") }
        guard ["wav", "mp3"].contains(format) else { throw SandboxError(.invalidConfiguration, "--telnyx-format must be wav or mp3") }
    }
}

extension SandboxConfiguration {

    static func randomToken(_ kind: TokenKind) -> String {
        switch kind {
        case .pipedrive: randomHex(40)  // Pipedrive API tokens are 40 hex digits
        case .telnyx: "KEY" + randomHex(32).uppercased() + "_" + randomAlphanumeric(22)
        case .voipnow: randomAlphanumeric(40)
        }
    }
}

func randomHex(_ count: Int) -> String {
    String((0..<count).map { _ in "0123456789abcdef".randomElement()! })
}

func randomAlphanumeric(_ count: Int) -> String {
    String((0..<count).map { _ in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
}

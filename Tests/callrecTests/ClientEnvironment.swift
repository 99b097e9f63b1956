import Foundation

/// The credentials the process tests give callrec and a `callrec sandbox` process alike, and the
/// environment that points callrec's clients at a sandbox (limiter off: the tests wait on the
/// work, not on a rate window).
enum ClientEnvironment {
    static let pipedriveToken = "0123456789abcdef0123456789abcdef01234567"
    static let telnyxKey = "KEYTESTTELNYX0000000000000000000_abc"
    static let voipnowToken = "voipnowtesttoken0000000000000000000000000"

    /// This process's environment with the test credentials, no database URL or Telnyx public
    /// key of the machine's own, and the clients pointed at the sandbox at `base`.
    static func make(base: String? = nil) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["CALLREC_DATABASE"] = nil
        environment["TELNYX_PUBLIC_KEY"] = nil
        environment["PIPEDRIVE_API_TOKEN"] = pipedriveToken
        environment["TELNYX_API_KEY"] = telnyxKey
        environment["VOIPNOW_ACCESS_TOKEN"] = voipnowToken
        environment["PIPEDRIVE_BURST"] = "500"
        environment["PIPEDRIVE_DAILY_TOKENS"] = "1000000"
        if let base {
            environment["PIPEDRIVE_API_URL"] = base + "/v1"
            environment["TELNYX_API_URL"] = base + "/v2"
            environment["VOIPNOW_API_URL"] = base
        }
        return environment
    }
}

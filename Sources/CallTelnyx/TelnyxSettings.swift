public import CallSources
import Foundation

/// The Telnyx source's settings (`TELNYX_PUBLIC_KEY`, the config file's `telnyx` section, the
/// worker's flags): how webhooks are checked and what call logs are made of them.
public struct TelnyxSettings: Sendable, Hashable {
    /// The account's Ed25519 public key, base64 (nil: webhooks cannot be accepted).
    public var publicKey: String?
    /// Seconds a webhook's timestamp may be off.
    public var tolerance: Duration = .seconds(300)
    /// Which of `recording_urls` to download: `mp3` (default) or `wav`; the other when absent.
    public var format: String = "mp3"
    /// How long a recording whose call events have not all come waits for them.
    public var eventsWait: Duration = .seconds(60)
    /// Bodies over this many bytes are refused (413) before they are read whole.
    public var bodyLimit: Int = 256 * 1024
    /// The call-log policy and rendering shared with PBX sources (region, `--log`, outcomes,
    /// templates, time zone for `{start_local}`); kind and root are unused.
    public var source: SourceSettings
    /// Telnyx number (E.164) → Pipedrive `user_id`: the user a call on that number is logged for.
    public var users: [String: Int] = [:]

    public init(publicKey: String? = nil, source: SourceSettings = TelnyxSettings.defaultSource) {
        self.publicKey = publicKey
        self.source = source
    }

    /// UTC, no region, the PBX sources' defaults otherwise; `pbx` is `telnyx`.
    public static var defaultSource: SourceSettings {
        SourceSettings(name: "telnyx", kind: .freepbx, root: "", pbx: "telnyx", timeZone: TimeZone(identifier: "UTC")!)
    }
}

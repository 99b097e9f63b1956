public import CallTelnyx
public import Foundation

/// The Telnyx source's settings from the environment (`TELNYX_PUBLIC_KEY`) and the `--config`
/// file's `telnyx` section (`public_key`, `format`, `events_wait`, `region`, `timezone`, `log`,
/// `outcomes`, `users`, `subject`, `note`); the environment wins. Step-0 stub (WP-F replaces it).
public enum TelnyxConfiguration {
    public static func resolve(config file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TelnyxSettings {
        TelnyxSettings(publicKey: environment["TELNYX_PUBLIC_KEY"])
    }
}

import CallPhone
import CallSources
public import CallTelnyx
public import Foundation

/// The Telnyx source's settings from the environment (`TELNYX_PUBLIC_KEY`) and the `--config`
/// file's `telnyx` section; the environment wins. Every value is checked here (exit 2 naming
/// the variable or the key path), before anything runs:
///
/// - `public_key` (base64 Ed25519, not a secret) or `public_key_file`: checked by
///   ``WebhookVerifier``;
/// - `format` (`mp3`, `wav`), `events_wait` and `tolerance` (ages: `60s`, `5m`, plain seconds),
///   `body_limit` (bytes, or with KiB/MiB/KB/MB);
/// - `region`, `timezone` (default UTC), `log`, `outcome`, `subject`, `note`: the same checks as a
///   PBX source's (the config's `defaults` are a PBX's and do not apply);
/// - `users`: Telnyx number → Pipedrive user id, each number read by libphonenumber (with
///   `region`) and kept in E.164.
public enum TelnyxConfiguration {
    /// The settings from `environment` and `file` (a JSON config; a KEY=VALUE file has no
    /// `telnyx` section, so only the environment counts then).
    public static func resolve(config file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> TelnyxSettings {
        if let file, ConfigFile.isJSON(file) { return try ConfigFile.load(file).telnyxSettings(environment: environment) }
        return try settings(nil, environment: environment, origin: { "telnyx.\($0)" }, resolved: { $0 })
    }

    /// The settings from one section (nil: none); `origin` names a key in errors, `resolved`
    /// makes a path in the section absolute.
    static func settings(_ section: TelnyxSection?, environment: [String: String], origin: @escaping (String) -> String,
                         resolved: (String) -> String) throws -> TelnyxSettings {
        var source = try SourceMerge.settings(kind: .freepbx, root: "", layers: section.map { [SourceMerge.Layer(fields: $0.fields, name: origin)] } ?? [])
        let defaults = TelnyxSettings.defaultSource
        source.name = defaults.name
        source.pbx = defaults.pbx
        if section?.fields.timezone == nil { source.timeZone = defaults.timeZone }
        var settings = TelnyxSettings(source: source)
        if let format = section?.format {
            guard ["mp3", "wav"].contains(format) else { throw AppError(.usage, "\(origin("format")) \(format): not mp3 or wav") }
            settings.format = format
        }
        if let text = section?.eventsWait?.text { settings.eventsWait = try SourceMerge.age(text, origin("events_wait"), positive: false) }
        if let text = section?.tolerance?.text { settings.tolerance = try SourceMerge.age(text, origin("tolerance"), positive: true) }
        if let text = section?.bodyLimit?.text {
            guard let bytes = parseByteSize(text), bytes >= 1024 else {
                throw AppError(.usage, "\(origin("body_limit")) \(text): not a size of at least 1 KiB (bytes, or with KiB/MiB/KB/MB)")
            }
            settings.bodyLimit = bytes
        }
        settings.users = try users(section?.users ?? [:], region: source.region, origin: origin)
        settings.source.users = settings.users
        settings.publicKey = try publicKey(section, environment: environment, tolerance: settings.tolerance, origin: origin, resolved: resolved)
        return settings
    }

    /// The map with each number in E.164; a number libphonenumber does not call valid, a user id
    /// that is not positive, or two spellings of one number are refused.
    static func users(_ map: [String: Int], region: String?, origin: (String) -> String) throws -> [String: Int] {
        var users: [String: Int] = [:], spelled: [String: String] = [:]
        for (raw, user) in map.sorted(by: { $0.key < $1.key }) {
            guard let number = PhoneNumbers.normalize(raw, region: region).e164 else {
                throw AppError(.usage, "\(origin("users.\(raw)")): not a phone number libphonenumber calls valid (write the Telnyx number in E.164, such as +12125550123\(region == nil ? ", or set telnyx.region" : ""))")
            }
            guard user > 0 else { throw AppError(.usage, "\(origin("users.\(raw)")) \(user): not a Pipedrive user id (a positive number)") }
            if let other = spelled[number] {
                throw AppError(.usage, "\(origin("users.\(raw)")): the same number (\(number)) as users.\(other): give each number once")
            }
            spelled[number] = raw
            users[number] = user
        }
        return users
    }

    /// `TELNYX_PUBLIC_KEY`, else `public_key`, else the one line of `public_key_file`; checked by
    /// the verifier that will use it.
    static func publicKey(_ section: TelnyxSection?, environment: [String: String], tolerance: Duration, origin: (String) -> String,
                          resolved: (String) -> String) throws -> String? {
        func checked(_ key: String, _ name: String) throws -> String {
            let key = key.trimmingCharacters(in: .whitespacesAndNewlines)
            do {
                _ = try WebhookVerifier(publicKey: key, tolerance: tolerance)
            } catch {
                throw AppError(.usage, "\(name): \(error.message) (the public key of the Telnyx portal: Keys & Credentials → Public Key, base64)")
            }
            return key
        }
        if let key = environment["TELNYX_PUBLIC_KEY"], !key.isEmpty { return try checked(key, "TELNYX_PUBLIC_KEY") }
        if section?.publicKey != nil, section?.publicKeyFile != nil {
            throw AppError(.usage, "\(origin("public_key_file")): give public_key or public_key_file, not both")
        }
        if let key = section?.publicKey { return try checked(key, origin("public_key")) }
        guard let file = section?.publicKeyFile else { return nil }
        let path = resolved(file)
        guard let data = FileManager.default.contents(atPath: path) else { throw AppError(.usage, "\(origin("public_key_file")) \(path): cannot read the file") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, !text.contains(where: \.isNewline) else {
            throw AppError(.usage, "\(origin("public_key_file")) \(path): the file must hold the key alone, on one line (base64)")
        }
        return try checked(text, "\(origin("public_key_file")) \(path)")
    }
}

extension ConfigFile {
    /// The `telnyx` section's settings, `environment`'s `TELNYX_PUBLIC_KEY` over the file's key.
    func telnyxSettings(environment: [String: String]) throws -> TelnyxSettings {
        try TelnyxConfiguration.settings(document.telnyx, environment: environment, origin: { origin("telnyx.\($0)") }, resolved: resolved)
    }
}

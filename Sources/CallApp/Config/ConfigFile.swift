import CallAPI
import CallSources
import Foundation

/// The structured `--config` file (decision D4): JSON with comments and trailing commas
/// (`JSONDecoder.allowsJSON5`). Every key is known: an unknown one, an inline secret or a
/// reserved key with a value is refused with its key path (exit 2). Relative paths in it are
/// relative to the file's directory.
///
/// ```json5
/// { "pipedrive": { "api_token_file": "/etc/callrec/pipedrive.token", "daily_tokens": 60000 },
///   "users": { "101": 7 },
///   "defaults": { "timezone": "America/New_York", "region": "US", "extensions": "100-199" },
///   "sources": [ { "name": "hq", "kind": "freepbx", "path": "/var/spool/asterisk/monitor",
///                  "cdr": ["/var/log/asterisk/cdr-csv/Master.csv"] } ] }
/// ```
public struct ConfigFile: Sendable {
    /// The file as given.
    public let path: String
    let document: ConfigDocument

    /// `database`: a PostgreSQL URL without a password (PGPASSWORD or CALLREC_DATABASE carry that).
    public var database: String? { document.database }
    /// `state`: the state directory.
    public var state: String? { document.state.map { resolved($0) } }
    /// `users`: extension → Pipedrive user id.
    public var users: [String: Int] { document.users ?? [:] }
    /// `console.password_file`: the file holding the console's password (resolved).
    public var consolePasswordFile: String? { document.console?.passwordFile.map { resolved($0) } }

    /// Whether `path` is a JSON config: its first character that is not blank and not on a
    /// `#` or `//` comment line is `{` (anything else is the KEY=VALUE file of DESIGN §7).
    public static func isJSON(_ path: String) -> Bool {
        guard let data = FileManager.default.contents(atPath: path) else { return false }
        return jsonText(String(decoding: data, as: UTF8.self)) != nil
    }

    /// The text with its leading `#` lines blanked (line numbers kept), when it is JSON.
    static func jsonText(_ text: String) -> String? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for index in lines.indices {
            let trimmed = lines[index].trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix("#") { lines[index] = ""; continue }
            // A JSON5 comment before the opening brace (a KEY=VALUE line never starts so).
            if trimmed.hasPrefix("//") || trimmed.hasPrefix("/*") && trimmed.hasSuffix("*/") { continue }
            return trimmed.hasPrefix("{") ? lines.joined(separator: "\n") : nil
        }
        return nil
    }

    /// Reads and checks the whole file: every key, every source entry merged with `defaults`
    /// (time zones, regions, extensions, templates, …). Errors are usage errors naming the file
    /// and the key path.
    public static func load(_ path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AppError(.usage, "--config \(path): cannot read the configuration file")
        }
        guard let text = jsonText(String(decoding: data, as: UTF8.self)) else {
            throw AppError(.usage, "--config \(path): not a JSON configuration (it must start with {)")
        }
        let decoder = JSONDecoder()
        decoder.allowsJSON5 = true
        let document: ConfigDocument
        do {
            document = try decoder.decode(Checked<ConfigDocument>.self, from: Data(text.utf8)).value
        } catch let error as ConfigError {
            throw AppError(.usage, "--config \(path): \(error.path): \(error.reason)")
        } catch let error as DecodingError {
            throw AppError(.usage, "--config \(path): \(describe(error))")
        }
        let config = ConfigFile(path: path, document: document)
        try config.check()
        return config
    }

    /// The file's errors in its own words.
    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(let type, let context):
            return "\(ConfigError.text(context.codingPath)): expected \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(ConfigError.text(context.codingPath)): expected \(typeName(type)), found null"
        case .keyNotFound(let key, let context):
            return "\(ConfigError.text(context.codingPath + [key])): missing"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
            let detail = [context.debugDescription, underlying].compactMap { $0 }.joined(separator: ": ")
            return context.codingPath.isEmpty ? "not valid JSON: \(detail)" : "\(ConfigError.text(context.codingPath)): \(detail)"
        @unknown default:
            return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: type is any Collection.Type ? "a list or an object" : "\(type)"
        }
    }

    /// `path` relative to the file's directory when it is relative.
    func resolved(_ path: String) -> String {
        guard !path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: self.path).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.path
    }

    /// `key` as an error names it.
    func origin(_ key: String) -> String { "--config \(path): \(key)" }

    func check() throws {
        if let database, StoreSettings.hasPassword(database) {
            throw AppError(.usage, "\(origin("database")): a password is never written in the configuration file; put it in PGPASSWORD (or the whole URL in CALLREC_DATABASE)")
        }
        for (ext, _) in users where !ext.allSatisfy(\.isNumber) || ext.isEmpty {
            throw AppError(.usage, "\(origin("users.\(ext)")): an extension is digits")
        }
        var names: [String: Int] = [:]
        for (index, entry) in (document.sources ?? []).enumerated() {
            let name = entry.name ?? entry.kind ?? ""
            if let first = names[name] {
                throw AppError(.usage, "\(origin("sources[\(index)].name")): \(name) names sources[\(first)] too (give each source its own name; it is part of every call's identity)")
            }
            names[name] = index
            _ = try settings(entry: index, flags: nil)
        }
        if (document.sources ?? []).isEmpty { _ = try SourceMerge.settings(kind: .freepbx, root: "/", layers: layers(entry: nil)) }
        if document.telnyx != nil { _ = try telnyxSettings(environment: [:]) }
        _ = try matchSettings()
    }

    /// The index of the entry whose `path` holds `directory` (the deepest), or nil.
    func entry(holding directory: String) -> Int? {
        let target = ConfigFile.canonical(directory)
        var best: (index: Int, length: Int)?
        for (index, entry) in (document.sources ?? []).enumerated() {
            guard let path = entry.path else { continue }
            let root = ConfigFile.canonical(resolved(path))
            let holds = target == root || target.hasPrefix(root.hasSuffix("/") ? root : root + "/")
            if holds, root.count > best?.length ?? -1 { best = (index, root.count) }
        }
        return best?.index
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// The settings layers the file gives: `defaults`, then the entry.
    func layers(entry index: Int?) -> [SourceMerge.Layer] {
        var layers: [SourceMerge.Layer] = []
        if let defaults = document.defaults { layers.append(SourceMerge.Layer(fields: defaults) { origin("defaults.\($0)") }) }
        if let index, let entry = document.sources?[index] {
            layers.append(SourceMerge.Layer(fields: entry.fields) { origin("sources[\(index)].\($0)") })
        }
        return layers
    }

    /// Entry `index` merged: built-in ⊕ `defaults` ⊕ the entry ⊕ `flags`; its root is the
    /// entry's path (the layouts read paths below it).
    func settings(entry index: Int, flags: SourceMerge.Flags?) throws -> SourceSettings? {
        let entry = document.sources![index]
        let kindName = flags?.source ?? entry.kind
        guard let kindName else { throw AppError(.usage, "\(origin("sources[\(index)].kind")): missing (freepbx, 3cx or fusionpbx)") }
        guard let kind = SourceKind(rawValue: kindName) else {
            let where_ = flags?.source != nil ? "--source \(kindName)" : "\(origin("sources[\(index)].kind")) \(kindName)"
            throw AppError(.usage, "\(where_): not one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let path = entry.path else { throw AppError(.usage, "\(origin("sources[\(index)].path")): missing (the recording directory)") }
        var layers = layers(entry: index)
        if let flags { layers.append(flags.layer) }
        var settings = try SourceMerge.settings(kind: kind, root: resolved(path), layers: layers)
        guard kind != .sidecar else { return nil }
        if let name = entry.name { settings.name = name }
        settings.pbx = entry.pbx ?? entry.name ?? kind.rawValue
        settings.users = users
        if let flags, !flags.cdr.isEmpty {
            settings.cdrFiles = flags.cdr
        } else {
            settings.cdrFiles = (entry.cdr ?? []).map { resolved($0) }
            if kind == .threeCX, !settings.cdrFiles.isEmpty {
                throw AppError(.usage, "\(origin("sources[\(index)].cdr")): 3CX has no CDR reader callrec knows (leave cdr out for a 3cx source)")
            }
        }
        return settings
    }

    /// The API variables of DESIGN §7 the file sets, secrets read from their files — only those
    /// `environment` leaves unset (the environment wins). `origins` says which key set each.
    func apiVariables(environment: [String: String]) throws -> (values: [String: String], origins: [String: String]) {
        var values: [String: String] = [:]
        var origins: [String: String] = [:]
        func set(_ variable: String, _ value: String?, key: String) {
            guard let value, environment[variable] == nil else { return }
            values[variable] = value
            origins[variable] = key
        }
        func secret(_ variable: String, _ file: String?, key: String) throws {
            guard let file, environment[variable] == nil else { return }
            let path = resolved(file)
            guard let data = FileManager.default.contents(atPath: path) else {
                throw AppError(.usage, "\(origin(key)) \(path): cannot read the file")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty, !text.contains(where: \.isNewline) else {
                throw AppError(.usage, "\(origin(key)) \(path): the file must hold the credential alone, on one line")
            }
            set(variable, text, key: key)
        }
        let p = document.pipedrive, t = document.telnyx, v = document.voipnow
        set("PIPEDRIVE_API_URL", p?.apiURL, key: "pipedrive.api_url")
        set("PIPEDRIVE_DAILY_TOKENS", p?.dailyTokens.map(String.init), key: "pipedrive.daily_tokens")
        set("PIPEDRIVE_BURST", p?.burst.map(String.init), key: "pipedrive.burst")
        set("PIPEDRIVE_BUDGET_RESET", p?.budgetReset, key: "pipedrive.budget_reset")
        try secret("PIPEDRIVE_API_TOKEN", p?.apiTokenFile, key: "pipedrive.api_token_file")
        set("TELNYX_API_URL", t?.apiURL, key: "telnyx.api_url")
        try secret("TELNYX_API_KEY", t?.apiKeyFile, key: "telnyx.api_key_file")
        set("VOIPNOW_API_URL", v?.url, key: "voipnow.url")
        try secret("VOIPNOW_ACCESS_TOKEN", v?.accessTokenFile, key: "voipnow.access_token_file")
        return (values, origins)
    }
}

// MARK: - The document

/// A config key path and why its value is refused.
struct ConfigError: Error {
    var path: String
    var reason: String

    init(_ codingPath: [any CodingKey], _ reason: String) {
        path = ConfigError.text(codingPath)
        self.reason = reason
    }

    /// `sources[0].kind`.
    static func text(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue, key.stringValue.hasPrefix("Index ") {
                text += "[\(index)]"
            } else {
                text += (text.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return text.isEmpty ? "(top level)" : text
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) {
        stringValue = "Index \(intValue)"
        self.intValue = intValue
    }
}

/// A section whose keys are all known.
protocol ConfigSection: Decodable, Sendable {
    static var keys: [String] { get }
    /// Inline secret keys → what to write instead.
    static var secrets: [String: String] { get }
}

extension ConfigSection {
    static var secrets: [String: String] { [:] }
}

/// Decodes `T` after refusing any key it does not know.
struct Checked<T: ConfigSection>: Decodable, Sendable {
    var value: T

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        for key in container.allKeys where !T.keys.contains(key.stringValue) {
            if let instead = T.secrets[key.stringValue] {
                throw ConfigError(decoder.codingPath + [key], "a secret is never written in the configuration file: \(instead)")
            }
            let near = T.keys.min { APIEnvironment.distance($0, key.stringValue) < APIEnvironment.distance($1, key.stringValue) }
            let hint = near.map { APIEnvironment.distance($0, key.stringValue) <= 3 ? " (did you mean \($0)?)" : "" } ?? ""
            throw ConfigError(decoder.codingPath + [key], "unknown key\(hint); known here: \(T.keys.joined(separator: ", "))")
        }
        value = try T(from: decoder)
    }
}

/// A string, or a number written as one (`"cdr_wait": 600` and `"cdr_wait": "10m"`).
struct Text: Decodable, Sendable, Hashable {
    var text: String
    init(_ text: String) { self.text = text }
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            text = string
        } else if let number = try? container.decode(Double.self) {
            text = number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
        } else {
            throw ConfigError(decoder.codingPath, "expected a string or a number")
        }
    }
}

/// A list of strings, or one string (`"log": ["missed"]` and `"log": "internal,missed"`).
struct TextList: Decodable, Sendable, Hashable {
    var items: [String]
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let string = try? container.decode(String.self) {
            items = [string]
        } else if let list = try? container.decode([String].self) {
            items = list
        } else {
            throw ConfigError(decoder.codingPath, "expected a list of strings")
        }
    }
}

struct ConfigDocument: ConfigSection {
    var pipedrive: PipedriveSection?
    var telnyx: TelnyxSection?
    var voipnow: VoipNowSection?
    var database: String?
    var state: String?
    var users: [String: Int]?
    var defaults: SourceFields?
    var sources: [SourceEntry]?
    var matching: MatchingSection?
    var companyNumbers: [String]?
    var console: ConsoleSection?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case pipedrive, telnyx, voipnow, database, state, users, defaults, sources, matching, console
        case companyNumbers = "company_numbers"
    }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pipedrive = try c.decodeIfPresent(Checked<PipedriveSection>.self, forKey: .pipedrive)?.value
        telnyx = try c.decodeIfPresent(Checked<TelnyxSection>.self, forKey: .telnyx)?.value
        voipnow = try c.decodeIfPresent(Checked<VoipNowSection>.self, forKey: .voipnow)?.value
        database = try c.decodeIfPresent(String.self, forKey: .database)
        state = try c.decodeIfPresent(String.self, forKey: .state)
        users = try c.decodeIfPresent([String: Int].self, forKey: .users)
        defaults = try c.decodeIfPresent(Checked<SourceFields>.self, forKey: .defaults)?.value
        sources = try c.decodeIfPresent([Checked<SourceEntry>].self, forKey: .sources)?.map(\.value)
        matching = try c.decodeIfPresent(Checked<MatchingSection>.self, forKey: .matching)?.value
        companyNumbers = try c.decodeIfPresent(TextList.self, forKey: .companyNumbers)?.items
        console = try c.decodeIfPresent(Checked<ConsoleSection>.self, forKey: .console)?.value
    }
}

/// `console`: the operator's console (`password_file`; the password itself never in the file).
struct ConsoleSection: ConfigSection {
    var passwordFile: String?
    enum CodingKeys: String, CodingKey, CaseIterable { case passwordFile = "password_file" }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
    static var secrets: [String: String] {
        ["password": "put the password in a file and name it with console.password_file, or set CALLREC_CONSOLE_PASSWORD"]
    }
}

struct PipedriveSection: ConfigSection {
    var apiURL: String?
    var apiTokenFile: String?
    var dailyTokens: Int?
    var burst: Int?
    var budgetReset: String?
    enum CodingKeys: String, CodingKey, CaseIterable {
        case apiURL = "api_url", apiTokenFile = "api_token_file", dailyTokens = "daily_tokens", burst, budgetReset = "budget_reset"
    }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
    static var secrets: [String: String] {
        ["api_token": "put the token in a file and name it with pipedrive.api_token_file, or set PIPEDRIVE_API_TOKEN"]
    }
}

/// `telnyx`: the API (`api_url`, `api_key_file`), the webhooks (`public_key` or
/// `public_key_file`, `tolerance`, `body_limit`), the download (`format`, `events_wait`) and the
/// call logs (`region`, `timezone`, `log`, `outcome`, `users`, `subject`, `note`); read by
/// ``TelnyxConfiguration``.
struct TelnyxSection: ConfigSection {
    var apiURL: String?
    var apiKeyFile: String?
    var publicKey: String?
    var publicKeyFile: String?
    var format: String?
    var eventsWait: Text?
    var bodyLimit: Text?
    var tolerance: Text?
    var users: [String: Int]?
    /// The call-log settings a PBX source has too (region, timezone, log, outcome, subject, note).
    var fields: SourceFields

    enum CodingKeys: String, CodingKey, CaseIterable {
        case apiURL = "api_url", apiKeyFile = "api_key_file", publicKey = "public_key", publicKeyFile = "public_key_file", format
        case eventsWait = "events_wait", bodyLimit = "body_limit", tolerance, users
    }
    enum FieldKeys: String, CaseIterable { case region, timezone, log, outcome, subject, note }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) + FieldKeys.allCases.map(\.rawValue) }
    static var secrets: [String: String] { ["api_key": "put the key in a file and name it with telnyx.api_key_file, or set TELNYX_API_KEY"] }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        apiURL = try c.decodeIfPresent(String.self, forKey: .apiURL)
        apiKeyFile = try c.decodeIfPresent(String.self, forKey: .apiKeyFile)
        publicKey = try c.decodeIfPresent(String.self, forKey: .publicKey)
        publicKeyFile = try c.decodeIfPresent(String.self, forKey: .publicKeyFile)
        format = try c.decodeIfPresent(String.self, forKey: .format)
        eventsWait = try c.decodeIfPresent(Text.self, forKey: .eventsWait)
        bodyLimit = try c.decodeIfPresent(Text.self, forKey: .bodyLimit)
        tolerance = try c.decodeIfPresent(Text.self, forKey: .tolerance)
        users = try c.decodeIfPresent([String: Int].self, forKey: .users)
        // Only the keys above are allowed (Checked refused the rest): the PBX-only ones of
        // SourceFields (extensions, cdr_wait, …) never reach it.
        fields = try SourceFields(from: decoder)
    }
}

struct VoipNowSection: ConfigSection {
    var url: String?
    var accessTokenFile: String?
    enum CodingKeys: String, CodingKey, CaseIterable { case url, accessTokenFile = "access_token_file" }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
    static var secrets: [String: String] {
        ["access_token": "put the token in a file and name it with voipnow.access_token_file, or set VOIPNOW_ACCESS_TOKEN"]
    }
}

/// The settings `defaults` and every source entry may set (each doubles as a flag).
struct SourceFields: ConfigSection {
    var timezone: String?
    var region: String?
    var extensions: String?
    var log: TextList?
    var outcome: [String: String]?
    var cdrWait: Text?
    var settle: Text?
    var subject: String?
    var note: String?
    var watchMode: String?
    var pollInterval: Text?
    enum CodingKeys: String, CodingKey, CaseIterable {
        case timezone, region, extensions, log, outcome, cdrWait = "cdr_wait", settle, subject, note, watchMode = "watch_mode"
        case pollInterval = "poll_interval"
    }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
    init() {}
}

/// One `sources` entry: its own keys and every ``SourceFields`` key.
struct SourceEntry: ConfigSection {
    var name: String?
    var kind: String?
    var path: String?
    var pbx: String?
    var cdr: [String]?
    var fields: SourceFields

    enum OwnKeys: String, CodingKey, CaseIterable { case name, kind, path, pbx, cdr }
    static var keys: [String] { OwnKeys.allCases.map(\.rawValue) + SourceFields.keys }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: OwnKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        kind = try c.decodeIfPresent(String.self, forKey: .kind)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        pbx = try c.decodeIfPresent(String.self, forKey: .pbx)
        cdr = try c.decodeIfPresent(TextList.self, forKey: .cdr)?.items
        fields = try SourceFields(from: decoder)
    }
}

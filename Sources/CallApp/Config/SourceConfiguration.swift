import CallPhone
public import CallSources
import Foundation

/// The source options as typed (`--source`, `--cdr`, …): checked and merged with the config file
/// by ``SourceConfiguration``.
public struct SourceRequest: Sendable, Hashable {
    public var source: String?
    public var cdr: [String] = []
    public var timezone: String?
    public var region: String?
    public var extensions: String?
    public var log: String?
    public var outcomes: [String] = []
    public var cdrWait: String?
    public var watchMode: String?
    public var watchPollInterval: String?
    public init() {}
}

/// A PBX source's settings from the flags and the config file (`--config FILE`, JSON with
/// comments): built-in defaults, then the file's `defaults`, then its `sources` entry, then flags.
public enum SourceConfiguration {
    /// Checks the flags alone (the CLI's validation, before any file is read): the source kind,
    /// the time zone, region, extensions, `--log`, every `--outcome`, `--cdr-wait`, the watch
    /// mode and poll interval, and each `--cdr` (it exists; none with `--source 3cx`).
    public static func check(_ request: SourceRequest) throws {
        let flags = try SourceMerge.flags(request)
        let kind = try request.source.map { try SourceMerge.kind($0) }
        _ = try SourceMerge.settings(kind: kind ?? .freepbx, root: "/", layers: [flags.layer])
        if let kind { try SourceMerge.checkCDR(request.cdr, kind: kind) }
    }

    /// The source of `upload DIR` / `enqueue DIR`: nil for sidecars (the default). Errors are
    /// ``AppError`` usage errors naming the flag or config key (exit 2 before any file is read).
    ///
    /// The config entry whose `path` holds DIR (the deepest) gives the kind, name, pbx, CDRs and
    /// its settings, and its path is the root; without one, `--source` does, and DIR is the root.
    public static func resolve(directory: String, request: SourceRequest, config: String?) throws -> SourceSettings? {
        let flags = try SourceMerge.flags(request)
        let file = try config.flatMap { ConfigFile.isJSON($0) ? try ConfigFile.load($0) : nil }
        if let file, let index = file.entry(holding: directory) { return try file.settings(entry: index, flags: flags) }
        guard let name = request.source else { return nil }
        let kind = try SourceMerge.kind(name)
        guard kind != .sidecar else { return nil }
        var settings = try SourceMerge.settings(kind: kind, root: directory, layers: (file?.layers(entry: nil) ?? []) + [flags.layer])
        try SourceMerge.checkCDR(request.cdr, kind: kind)
        settings.cdrFiles = request.cdr
        settings.users = file?.users ?? [:]
        return settings
    }

    /// The sources a worker watches: one per `--watch DIR` (with the flags' settings, or the
    /// config entry whose path it is), else every `sources` entry of the config file (the flags
    /// on top of each; `--source` and `--cdr` then need `--watch`). A directory that resolves to
    /// sidecars is left out.
    public static func watched(directories: [String], request: SourceRequest, config: String?) throws -> [SourceSettings] {
        if !directories.isEmpty {
            return try directories.compactMap { directory in
                // A watch on nothing would run forever and take nothing: a usage error, as a missing --cdr is.
                guard isDirectory(directory) else { throw AppError(.usage, "--watch \(directory): no such directory") }
                return try resolve(directory: directory, request: request, config: config)
            }
        }
        guard let config, ConfigFile.isJSON(config) else { return [] }
        let file = try ConfigFile.load(config)
        let entries = file.document.sources ?? []
        guard !entries.isEmpty else { return [] }
        if request.source != nil || !request.cdr.isEmpty {
            throw AppError(.usage, "--source and --cdr describe one directory: give it with --watch DIR (the sources of --config \(config) have their own)")
        }
        let flags = try SourceMerge.flags(request)
        return try entries.indices.compactMap { index in
            guard let settings = try file.settings(entry: index, flags: flags) else { return nil }
            guard isDirectory(settings.root) else {
                throw AppError(.usage, "--config \(config): sources[\(index)].path \(settings.root): no such directory")
            }
            return settings
        }
    }

    private static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    /// The check of `worker`'s `--watch-mode` and `--watch-poll-interval`.
    public static func checkWatch(mode: String?, pollInterval: String?) throws {
        var request = SourceRequest()
        request.watchMode = mode
        request.watchPollInterval = pollInterval
        try check(request)
    }
}

/// Built-in ⊕ layers, each value checked where it was written (a flag or a config key path).
enum SourceMerge {
    /// One layer of settings and how its keys are named in errors.
    struct Layer {
        var fields: SourceFields
        var name: (String) -> String
    }

    /// The flags as a layer, plus the two flags that are not settings of a layer.
    struct Flags {
        var source: String?
        var cdr: [String]
        var layer: Layer
    }

    static let flagNames = [
        "timezone": "--timezone", "region": "--region", "extensions": "--extensions", "log": "--log", "outcome": "--outcome",
        "cdr_wait": "--cdr-wait", "settle": "--settle", "watch_mode": "--watch-mode", "poll_interval": "--watch-poll-interval",
        "subject": "--subject", "note": "--note",
    ]

    static func flags(_ request: SourceRequest) throws -> Flags {
        var fields = SourceFields()
        fields.timezone = request.timezone
        fields.region = request.region
        fields.extensions = request.extensions
        fields.log = request.log.map { TextList(items: [$0]) }
        if !request.outcomes.isEmpty {
            var map: [String: String] = [:]
            for item in request.outcomes {
                do {
                    let pair = try OutcomeMap.parse(item, source: "--outcome")
                    map[pair.disposition] = pair.outcome
                } catch let error as OutcomeMapError { throw AppError(.usage, error.message) }
            }
            fields.outcome = map
        }
        fields.cdrWait = request.cdrWait.map(Text.init)
        fields.watchMode = request.watchMode
        fields.pollInterval = request.watchPollInterval.map(Text.init)
        if let source = request.source { _ = try kind(source) }
        for file in request.cdr {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw AppError(.usage, "--cdr \(file): no such file")
            }
        }
        return Flags(source: request.source, cdr: request.cdr, layer: Layer(fields: fields) { flagNames[$0] ?? "--\($0)" })
    }

    static func kind(_ name: String) throws -> SourceKind {
        guard let kind = SourceKind(rawValue: name) else {
            throw AppError(.usage, "--source \(name): not one of \(SourceKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return kind
    }

    static func checkCDR(_ cdr: [String], kind: SourceKind) throws {
        guard !cdr.isEmpty else { return }
        if kind == .threeCX { throw AppError(.usage, "--cdr \(cdr[0]): 3CX has no CDR export callrec reads (leave --cdr out with --source 3cx)") }
        if kind == .sidecar { throw AppError(.usage, "--cdr \(cdr[0]): sidecar recordings carry their call log; --cdr needs --source freepbx or fusionpbx") }
    }

    /// `text` as an age (zero allowed unless `positive`), or a usage error naming `name`.
    static func age(_ text: String, _ name: String, positive: Bool) throws -> Duration {
        guard let age = parseAge(text.trimmingCharacters(in: .whitespaces)), positive ? age > .zero : age >= .zero else {
            throw AppError(.usage, "\(name) \(text): not \(positive ? "a positive" : "an") age (90s, 10m, 1h or plain seconds)")
        }
        return age
    }

    /// `text` as an ISO 3166 alpha-2 region libphonenumber knows (upper-cased), or a usage error naming `name`.
    static func region(_ text: String, _ name: String) throws -> String {
        let code = text.uppercased()
        guard code.count == 2, code.allSatisfy(\.isLetter), PhoneNumbers.isKnownRegion(code) else {
            throw AppError(.usage, "\(name) \(text): not a region libphonenumber knows (ISO 3166 alpha-2, such as US or DE)")
        }
        return code
    }

    /// `kind`'s built-in settings with each layer on top (later layers win; outcome maps merge).
    static func settings(kind: SourceKind, root: String, layers: [Layer]) throws -> SourceSettings {
        var s = SourceSettings(kind: kind, root: root)
        for layer in layers {
            let f = layer.fields, name = layer.name
            if let text = f.timezone {
                guard let zone = TimeZone(identifier: text) else {
                    throw AppError(.usage, "\(name("timezone")) \(text): not a time zone (an IANA name such as America/New_York)")
                }
                s.timeZone = zone
            }
            if let text = f.region { s.region = try region(text, name("region")) }
            if let text = f.extensions {
                switch parseExtensions(text) {
                case .success(let set): s.extensions = set
                case .failure(let error): throw AppError(.usage, "\(name("extensions")) \(text): \(error.piece) \(error.reason)")
                }
            }
            if let list = f.log {
                do { s.log = try CallPolicy.parseLog(list.items, source: name("log")) } catch let error as PolicyError { throw AppError(.usage, error.message) }
            }
            for (key, value) in (f.outcome ?? [:]).sorted(by: { $0.key < $1.key }) {
                do {
                    let pair = try OutcomeMap.check(key, value, source: name("outcome"))
                    s.outcomes[pair.disposition] = pair.outcome
                } catch let error as OutcomeMapError { throw AppError(.usage, error.message) }
            }
            if let text = f.cdrWait?.text { s.cdrWait = try age(text, name("cdr_wait"), positive: false) }
            if let text = f.settle?.text { s.settle = try age(text, name("settle"), positive: false) }
            if let text = f.pollInterval?.text { s.pollInterval = try age(text, name("poll_interval"), positive: true) }
            if let text = f.watchMode {
                guard let mode = WatchMode(rawValue: text) else {
                    throw AppError(.usage, "\(name("watch_mode")) \(text): not one of \(WatchMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                s.watchMode = mode
            }
            do {
                if let text = f.subject { _ = try CallLogTemplate(text, field: name("subject")); s.subjectTemplate = text }
                if let text = f.note { _ = try CallLogTemplate(text, field: name("note")); s.noteTemplate = text }
            } catch let error as TemplateError { throw AppError(.usage, error.message) }
        }
        return s
    }
}

/// ExtensionSet.parse's typed error as a value (a `catch let … as` on it crashes Swift 6.0's SILGen).
func parseExtensions(_ text: String) -> Result<ExtensionSet, ExtensionSetError> {
    Result { () throws(ExtensionSetError) in try ExtensionSet.parse(text) }
}

extension TextList {
    init(items: [String]) { self.items = items }
}

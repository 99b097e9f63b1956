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
    /// The source of `upload DIR` / `enqueue DIR`: nil for sidecars (the default). Errors are
    /// ``AppError`` usage errors naming the flag or config key (exit 2 before any file is read).
    public static func resolve(directory: String, request: SourceRequest, config: String?) throws -> SourceSettings? {
        // Step-0 stub (WP1 replaces it).
        guard let name = request.source, name != SourceKind.sidecar.rawValue else { return nil }
        guard let kind = SourceKind(rawValue: name) else { throw AppError(.usage, "--source \(name): not one of sidecar, freepbx, 3cx, fusionpbx") }
        return SourceSettings(kind: kind, root: directory, cdrFiles: request.cdr)
    }

    /// The sources a worker watches: one per `--watch DIR` (with the flags' settings, or the
    /// config entry whose path it is), else every `sources` entry of the config file.
    public static func watched(directories: [String], request: SourceRequest, config: String?) throws -> [SourceSettings] {
        // Step-0 stub (WP1 replaces it).
        try directories.compactMap { try resolve(directory: $0, request: request, config: config) }
    }
}

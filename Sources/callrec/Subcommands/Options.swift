import ArgumentParser
import CallAPI
import CallApp
import CallAudio
import CallPipeline
import CallStore
import Foundation
import Logging
import Synchronization

/// `--json`, `--jobs`, `--log-level`: shared by every subcommand.
struct GlobalOptions: ParsableArguments {
    @Flag(help: "Print one JSON document on stdout (progress and logs go to stderr).") var json = false
    @Option(help: "Recordings (and parts of one long recording) processed in parallel. Default: the number of cores.") var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.") var logLevel: String = "info"

    func validate() throws {
        guard jobs >= 1, jobs <= 256 else { throw ValidationError("--jobs must be between 1 and 256") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level \(logLevel) is not a level") }
    }

    func makeLogger() -> Logger {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "callrec")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

/// One flag per transcode and chunk setting (DESIGN §3).
struct TranscodeOptions: ParsableArguments {
    @Option(help: "Rates above this are resampled down to it; lower rates are never upsampled.") var maxSampleRate: Int = 16000
    @Option(help: "CBR bitrate per channel in kbps. Default: the lowest that keeps the LAME tag (24 at 8 kHz, 40 at 16 kHz).") var bitrate: Int?
    @Option(help: "LAME quality, 0 (best, slowest) to 9 (fastest).") var quality: Int = 5
    @Flag(help: "Mix two-channel recordings (call legs) down to mono instead of keeping them as stereo.") var downmix = false
    @Option(help: "libsoxr quality when resampling: quick, low, medium, high, very-high.") var resampleQuality: String = "high"
    @Option(help: "A part holds at most this many minutes of audio.") var partMaxMinutes: Double = 60
    @Option(help: "A part's MP3 is at most this size (bytes, or with KiB/MiB/KB/MB).") var partMaxBytes: String = "20MiB"
    @Option(help: "The shortest pause (milliseconds) a part may be cut in.") var minSilenceMs: Int = 400

    /// Every setting is checked when the command line is parsed, before any file is read.
    func validate() throws { _ = try settings() }

    func settings() throws -> TranscodeSettings {
        var s = TranscodeSettings()
        s.maximumSampleRate = maxSampleRate
        s.bitratePerChannel = bitrate
        s.quality = quality
        s.downmix = downmix
        guard let rq = TranscodeSettings.ResampleQuality(rawValue: resampleQuality) else {
            throw ValidationError("--resample-quality must be one of \(TranscodeSettings.ResampleQuality.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        s.resampleQuality = rq
        s.partMaximumSeconds = partMaxMinutes * 60
        guard let bytes = parseByteSize(partMaxBytes) else {
            throw ValidationError("--part-max-bytes \(partMaxBytes) is not a size (e.g. 20MiB, 10MB, 1048576)")
        }
        s.partMaximumBytes = bytes
        s.minimumSilenceSeconds = Double(minSilenceMs) / 1000
        do { try s.validate() } catch { throw ValidationError(Self.flagged(error.reason)) }
        // Most call recordings are mono: a bitrate no mono part can have at any rate would fail
        // nearly every file, so it is refused here rather than file by file.
        if let bitrate, !s.reachableFormats(bitratePerChannel: bitrate).contains(where: { $0.channels == 1 }) {
            throw ValidationError("--bitrate \(bitrate) fits no mono output rate up to --max-sample-rate \(maxSampleRate) (it is no MP3 bitrate there, or the LAME tag, which makes parts decode to their exact length, does not fit its frames); use at least \(s.lowestUsableBitrate()) kbps, or leave --bitrate out")
        }
        return s
    }

    /// The settings' own words, with the flag a user typed.
    static func flagged(_ reason: String) -> String {
        let flags = [("maximum sample rate", "--max-sample-rate"), ("LAME quality", "--quality"), ("bitrate", "--bitrate"),
                     ("part limit of", "--part-max-minutes / --part-max-bytes"), ("minimum silence", "--min-silence-ms")]
        guard let flag = flags.first(where: { reason.hasPrefix($0.0) })?.1 else { return reason }
        return "\(flag): \(reason)"
    }
}

/// Validation thresholds (research/audio.md §7.2) as flags.
struct ValidationOptions: ParsableArguments {
    @Option(help: "Recordings shorter than this many seconds are rejected.") var minDuration: Double = 1.0
    @Option(help: "Recordings longer than this many hours are rejected as implausible.") var maxDurationHours: Double = 12
    @Option(help: "Reject when more than this share of samples is NaN/Inf.") var maxNonfiniteRatio: Double = 0.001
    @Option(help: "Silent when every 20 ms window is below this RMS level (dBFS) …") var silenceRmsDb: Float = -60
    @Option(help: "… and the peak below this level (dBFS).") var silencePeakDb: Float = -50
    @Option(help: "Accepted sample-rate range, lowest.") var minSampleRate: Int = 8000
    @Option(help: "Accepted sample-rate range, highest.") var maxInputSampleRate: Int = 384_000

    /// Impossible thresholds are refused when the command line is parsed, before any file is read.
    func validate() throws {
        guard minDuration.isFinite, minDuration >= 0 else { throw ValidationError("--min-duration \(minDuration) must be 0 or more seconds") }
        guard maxDurationHours.isFinite, maxDurationHours > 0, maxDurationHours * 3600 > minDuration else {
            throw ValidationError("--max-duration-hours \(maxDurationHours) must be positive and longer than --min-duration")
        }
        guard maxNonfiniteRatio.isFinite, (0...1).contains(maxNonfiniteRatio) else {
            throw ValidationError("--max-nonfinite-ratio \(maxNonfiniteRatio) is a share of the samples: between 0 and 1")
        }
        guard silenceRmsDb.isFinite, silencePeakDb.isFinite, silenceRmsDb <= 0, silencePeakDb <= 0 else {
            throw ValidationError("--silence-rms-db and --silence-peak-db are levels in dBFS: 0 or below")
        }
        guard minSampleRate >= 8000 else {
            throw ValidationError("--min-sample-rate \(minSampleRate): below 8000 Hz there is no MP3 rate (callrec never upsamples)")
        }
        guard maxInputSampleRate >= minSampleRate, maxInputSampleRate <= 10_000_000 else {
            throw ValidationError("--max-input-sample-rate \(maxInputSampleRate) must be at least --min-sample-rate (\(minSampleRate)) and a real rate")
        }
    }

    func configuration() -> ValidationConfiguration {
        var c = ValidationConfiguration()
        c.minimumSeconds = minDuration
        c.maximumSeconds = maxDurationHours * 3600
        c.maximumNonFiniteRatio = maxNonfiniteRatio
        c.silenceRMSdB = silenceRmsDb
        c.silencePeakdB = silencePeakDb
        c.minimumSampleRate = minSampleRate
        c.maximumSampleRate = maxInputSampleRate
        return c
    }
}

extension GlobalOptions {
    /// With --json `document` on stdout, else the report's `lines`.
    func emit(_ document: some Encodable, _ lines: @autoclosure () -> [OutputLine]) throws {
        if json { try writeJSON(document) } else { write(lines()) }
    }
}

/// A command on the state (`--state`/`--database`), with the shared options.
protocol StoreCommand {
    var store: StoreOptions { get }
    var global: GlobalOptions { get }
    /// `--config FILE`, for the commands that read one (its `state`/`database` keys).
    var configFile: String? { get }
}

extension StoreCommand {
    var configFile: String? { nil }

    /// `body` with the store open (closed after) and the logger (made once per process).
    func withStore<T>(creating: Bool = false, _ body: (any CallStore, Logger) async throws -> T) async throws -> T {
        let logger = global.makeLogger()
        return try await store.settings(config: configFile).withStore(creating: creating, logger: logger) { try await body($0, logger) }
    }

    /// `body` with the API clients from the environment (or `config`) and the store open; with
    /// `pipedriveFor` (why it is needed) a usage error when PIPEDRIVE_API_TOKEN is not set.
    func withClients<T>(config: String?, pipedriveFor reason: String? = nil, creating: Bool = false,
                        _ body: (APIClients, any CallStore, Logger) async throws -> T) async throws -> T {
        let logger = global.makeLogger()
        let environment = try APIClients.environment(config: config)
        if let reason, environment.pipedriveToken == nil { throw ValidationError("PIPEDRIVE_API_TOKEN is not set: \(reason)") }
        return try await APIClients.with(environment: environment, logger: logger) { clients in
            try await store.settings(config: configFile).withStore(creating: creating, logger: logger) { store in
                try await clients.recordingPipedriveSpend(to: store, logger: logger) { try await body(clients, store, logger) }
            }
        }
    }
}

/// Runs a queue worker in this process: SIGINT/SIGTERM release what runs (`message` says what
/// happens next), a second signal stops at once.
func stoppingOnSignals(logger: Logger, _ message: String) -> RunWorker {
    { worker in
        try await runWorkerHandlingSignals(worker, logger: logger) { standardError("\n\($0): stopping; \(message)") }
    }
}

/// `delete`'s and `reconcile --apply`'s worker: running the command again resumes a released job.
func runDeleteWorker(logger: Logger) -> RunWorker {
    stoppingOnSignals(logger: logger, "the running step gets a moment to finish (again: stop at once). Run the command again to go on.")
}

func requireDirectory(_ path: String) throws {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
        throw ValidationError("\(path) is not a directory")
    }
}

func writeJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var data = try encoder.encode(value)
    data.append(0x0A)
    FileHandle.standardOutput.write(data)
}

func standardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

func write(_ lines: [OutputLine]) {
    for line in lines {
        switch line {
        case .out(let text): print(text)
        case .err(let text): standardError(text)
        }
    }
}

/// `--state DIR` and `--database URL`: where the ledger, the queue and the spool live.
struct StoreOptions: ParsableArguments {
    @Option(help: "State directory: the SQLite database (unless --database), the spool and the trash. Default: the config's state, else .callrec.")
    var state: String?
    @Option(help: ArgumentHelp(
        "PostgreSQL, to share the queue between machines: postgres://USER@HOST:PORT/DB. Default: CALLREC_DATABASE, else SQLite under --state.",
        discussion: "A password never goes on the command line: put the whole URL in CALLREC_DATABASE, or the password in PGPASSWORD."))
    var database: String?

    func validate() throws {
        if let database, StoreSettings.hasPassword(database) {
            throw ValidationError("--database must not carry a password (every user of this machine can read the command line); put the URL in CALLREC_DATABASE, or the password in PGPASSWORD")
        }
    }

    /// The store from the flags alone (commands without `--config`).
    var settings: StoreSettings { StoreSettings(state: state ?? ".callrec", database: database) }

    /// The store from the flags, then CALLREC_DATABASE, then the JSON config's `state`/`database`.
    func settings(config: String?) throws -> StoreSettings {
        try StoreSettings.resolve(state: state, database: database, config: config)
    }
}

/// `text` as an age of zero or more, or a usage error naming `option` (and what else it takes).
func requireAge(_ text: String, option: String, orElse alternatives: String = "") throws -> Duration {
    guard let age = parseAge(text), age >= .zero else {
        throw ValidationError("\(option) \(text) is not an age (30d, 36h, 90m, 30s or plain seconds)\(alternatives)")
    }
    return age
}

/// `--settle SECONDS` (upload, enqueue, transcode): how long a recording must have been still
/// before it is taken.
struct SettleOption: ParsableArguments {
    @Option(help: ArgumentHelp(
        "A file whose size or times moved within this many seconds (or a WAV whose header is unfinished, for at least a minute) is still being written: it waits for a later run. 0 takes every file as it is.",
        valueName: "seconds"))
    var settle: Double = 2

    func validate() throws {
        guard settle.isFinite, settle >= 0 else { throw ValidationError("--settle must be a number of seconds, 0 or more") }
    }

    var value: Settle { Settle(seconds: settle) }
}

/// `--spool-retention`: how long `upload` and `worker` keep an uploaded recording's MP3s.
struct SpoolRetentionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Remove uploaded recordings' MP3s from the spool this long after their upload: 30d, 12h, … or keep. Default: CALLREC_SPOOL_RETENTION, else 30d.",
        valueName: "age"))
    var spoolRetention: String?

    func validate() throws {
        do { _ = try retention() } catch let error as AppError { throw ValidationError(error.message) }
    }

    /// The retention (nil: keep forever).
    func retention() throws -> Duration? { try SpoolPrune.retention(flag: spoolRetention) }
}

/// A progress bar on a terminal; a log line every few seconds otherwise (DESIGN §7). Always on
/// stderr, so `--json` keeps stdout to itself.
final class ProgressReporter: Sendable {
    private let display: Mutex<ProgressDisplay>
    private let logger: Logger
    private let terminal: Bool

    /// `countsAudio`: finished files come with their audio's length (transcode); the upload run
    /// counts jobs as they end and shows files per second instead.
    init(logger: Logger, quiet: Bool, countsAudio: Bool = true) {
        self.logger = logger
        terminal = !quiet && isatty(STDERR_FILENO) == 1
        display = Mutex(ProgressDisplay(bar: terminal, countsAudio: countsAudio, now: .now))
    }

    func handle(_ event: TranscodeBatch.Event) {
        guard let line = display.withLock({ $0.line(after: event, now: .now) }) else { return }
        if terminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else {
            logger.info("\(line)")
        }
    }

    func finish() {
        if terminal, display.withLock({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Where recordings come from and how their calls are read (upload, enqueue, worker --watch);
/// checked and merged with `--config` by CallApp's `SourceConfiguration`.
struct SourceOptions: ParsableArguments {
    @Option(help: "Where the recordings come from: sidecar (a <stem>.json beside each), freepbx, 3cx or fusionpbx.") var source: String?
    @Option(help: ArgumentHelp("A CDR export to join (CSV; its kind is recognised from its columns). Repeatable.", valueName: "file")) var cdr: [String] = []
    @Option(help: ArgumentHelp("The PBX's local time zone (IANA, e.g. America/New_York). Default: this machine's.", valueName: "zone")) var timezone: String?
    @Option(help: ArgumentHelp("Default country for numbers without one (ISO 3166 alpha-2, e.g. US).", valueName: "cc")) var region: String?
    @Option(help: ArgumentHelp("Internal numbers, e.g. 100-199,2000-2099. Default: numbers of 2 to 5 digits.", valueName: "spec")) var extensions: String?
    @Option(help: ArgumentHelp("Call kinds to log besides external answered ones: internal, missed. Default: none.", valueName: "kinds")) var log: String?
    @Option(help: ArgumentHelp("Map a disposition to a call-log outcome, e.g. FAILED=no_answer. Repeatable.", valueName: "disposition=outcome"))
    var outcome: [String] = []
    @Option(help: ArgumentHelp("How long a recording waits for its CDR row before it goes on with its file name's facts: 10m, 90s, …", valueName: "age"))
    var cdrWait: String?

    /// Every flag is checked when the command line is parsed (exit 2), before any file is read.
    func validate() throws {
        do { try SourceConfiguration.check(request) } catch let error as AppError { throw ValidationError(error.message) }
    }

    var request: SourceRequest {
        var request = SourceRequest()
        request.source = source
        request.cdr = cdr
        request.timezone = timezone
        request.region = region
        request.extensions = extensions
        request.log = log
        request.outcomes = outcome
        request.cdrWait = cdrWait
        return request
    }
}

/// `worker --watch DIR`: the directories a worker watches for new recordings.
struct WatchOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Watch this directory for new recordings (repeatable); without it, the sources of --config.", valueName: "dir"))
    var watch: [String] = []
    @Option(help: ArgumentHelp("How new files are noticed: auto (inotify, polling on network mounts), inotify or poll.", valueName: "mode"))
    var watchMode: String?
    @Option(help: ArgumentHelp("With polling: seconds between looks at the watched directories.", valueName: "seconds"))
    var watchPollInterval: String?

    func validate() throws {
        do {
            try SourceConfiguration.checkWatch(mode: watchMode, pollInterval: watchPollInterval)
        } catch let error as AppError { throw ValidationError(error.message) }
    }
}

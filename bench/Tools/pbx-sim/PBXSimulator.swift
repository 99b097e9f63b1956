import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `callrec-pbx-sim`: writes FreePBX, 3CX and FusionPBX recording trees and their CDRs as a live
/// PBX would (tests and bench/watch.sh). Independent of callrec's parsers: every name and CDR row
/// is rendered from the simulator's own ground truth, which `--manifest` writes out.
@main
struct PBXSimulator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "callrec-pbx-sim",
        abstract: "Write PBX recording trees and CDRs (tests and benchmarks).",
        discussion: """
            Each call streams one of 20 synthetic 8 kHz speech templates into its recording, a second at a time, and closes it at \
            hangup; its CDR row is appended then. --batch writes the same tree at once. Quirks (a share may follow each, \
            e.g. internal=0.2): dst (the clock starts half a run before the zone's next DST change after --start), \
            late-cdr=SHARE:AGE (default 0.05:30s), ring-group (FreePBX: N NO ANSWER legs + the answered one, one linkedid), \
            wav2mp3 (lame after close, the WAV deleted, the --export-cdr recordingfile rewritten), internal, missed, odd-names.
            """
    )

    @Option(help: "freepbx, 3cx or fusionpbx.")
    var layout: String
    @Option(help: "The root the PBX writes under (created; its CDR file sits at the top).")
    var out: String
    @Option(help: "Calls started per second.")
    var rate: Double = 10
    @Option(help: "Seconds during which calls start (the run lasts until the last one hangs up).")
    var duration: Double = 300
    @Option(help: "Talk time range in seconds, MIN-MAX.")
    var callSeconds: String = "60-180"
    @Option(help: "Seed of every choice (the same seed writes the same tree).")
    var seed: UInt64 = 1
    @Flag(help: "Write the whole tree at once (no waiting).")
    var batch = false
    @Option(help: "Comma-separated quirks: dst, late-cdr=SHARE:AGE, ring-group, wav2mp3, internal=SHARE, missed=SHARE, odd-names.")
    var quirks: String = ""
    @Option(help: "The simulated clock's start, ISO 8601 UTC (default: now; with --batch 2026-06-15T14:00:00Z).")
    var start: String?
    @Option(help: "The PBX's time zone (IANA), for its file names and CDR times.")
    var timezone: String = TimeZone.current.identifier
    @Option(help: "Where the external numbers come from: US, DE or GB.")
    var region: String = "US"
    @Option(help: "Append each call's ground truth here (JSONL).")
    var manifest: String?
    @Flag(help: "FreePBX: also keep cdr.csv, an asteriskcdrdb.cdr export with recordingfile.")
    var exportCdr = false

    func validate() throws {
        guard SimLayout(rawValue: layout) != nil else { throw ValidationError("--layout must be freepbx, 3cx or fusionpbx") }
        guard rate > 0, rate.isFinite, duration > 0, duration.isFinite else { throw ValidationError("--rate and --duration must be positive") }
        guard callRange != nil else { throw ValidationError("--call-seconds must be MIN-MAX with 1 <= MIN <= MAX") }
        guard TimeZone(identifier: timezone) != nil else { throw ValidationError("--timezone \(timezone) is not an IANA time zone") }
        guard NumberTable.regions.contains(region) else { throw ValidationError("--region must be US, DE or GB") }
        if let start, parsedStart(start) == nil { throw ValidationError("--start \(start) is not an ISO 8601 time (2026-11-01T05:50:00Z)") }
        do { _ = try Quirks(parsing: quirks) } catch { throw ValidationError("\(error)") }
    }

    var callRange: ClosedRange<Int>? {
        let parts = callSeconds.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 2, parts[0] >= 1, parts[0] <= parts[1] else { return nil }
        return parts[0]...parts[1]
    }

    func parsedStart(_ text: String) -> Date? {
        (try? Date.ISO8601FormatStyle().parse(text)) ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
    }

    func run() throws {
        let quirks = try Quirks(parsing: quirks)
        let zone = TimeZone(identifier: timezone)!
        var clockStart = start.flatMap(parsedStart) ?? (batch ? parsedStart("2026-06-15T14:00:00Z")! : Date())
        if quirks.dst, let change = zone.nextDaylightSavingTimeTransition(after: clockStart) {
            clockStart = change.addingTimeInterval(-duration / 2)
        }
        if !batch { raiseOpenFileLimit() }
        let plan = CallPlan(rate: rate, duration: duration, callSeconds: callRange!, seed: seed, quirks: quirks, region: region, start: clockStart)
        let renderer = Renderer(layout: SimLayout(rawValue: layout)!, clock: PBXClock(timeZone: zone))
        var handle: FileHandle? = nil
        if let manifest {
            try FileManager.default.createDirectory(atPath: (manifest as NSString).deletingLastPathComponent.isEmpty ? "." : (manifest as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: manifest) { _ = FileManager.default.createFile(atPath: manifest, contents: nil) }
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: manifest))
            handle?.seekToEndOfFile()
        }
        let began = Date()
        let simulation = try Simulation(plan: plan, renderer: renderer, templates: AudioTemplates(), root: out, start: clockStart, seed: seed,
                                        batch: batch, quirks: quirks, exportCDR: exportCdr, manifest: handle)
        FileHandle.standardError.write(Data("callrec-pbx-sim: \(plan.calls.count) calls from \(isoUTC(clockStart)) (\(timezone)) into \(out)\n".utf8))
        try simulation.run()
        try handle?.close()
        let c = simulation.counts
        FileHandle.standardError.write(Data(
            "callrec-pbx-sim: done: \(plan.calls.count) calls, \(c.files) recordings, \(c.cdrRows) CDR rows, \(c.converted) converted in \(String(format: "%.1f", Date().timeIntervalSince(began))) s\n".utf8))
    }

    /// A live run keeps every ringing call's recording open (1,200 at 10 calls/s of 2 min).
    func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

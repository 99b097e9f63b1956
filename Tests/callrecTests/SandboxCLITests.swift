import CallStore
import CallStoreSQLite
import CallTesting
import Foundation
import Testing

/// What a newcomer sees of `upload --sandbox`, `sandbox` and the audio commands: only callrec's
/// own lines on stderr, a short view of the sandbox, and one sandbox per state directory.
@Suite struct SandboxCLITests {
    let callrec = callrecExecutable()

    /// An environment without the developer's API settings or database.
    static func environment(_ extra: [String: String] = [:]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        for name in ["CALLREC_DATABASE", "PIPEDRIVE_API_TOKEN", "PIPEDRIVE_API_URL", "PIPEDRIVE_BURST", "PIPEDRIVE_DAILY_TOKENS",
                     "CALLREC_SANDBOX_FAULTS"] {
            environment[name] = nil
        }
        return environment.merging(extra) { $1 }
    }

    /// The stderr lines callrec did not write: its log records (`<time> <level> callrec : …`),
    /// its messages (`sandbox: …`, `failed …`, `waiting …`, `stopped: …`) and blank lines are its
    /// own; anything else came from a library behind its back.
    static func foreignLines(_ stderr: String) -> [String] {
        let own = [#"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4} (trace|debug|info|notice|warning|error|critical) callrec"#,
                   #"^(sandbox: |failed |waiting |stopped: )"#]
        return stderr.split(separator: "\n").map(String.init).filter { line in
            !line.trimmingCharacters(in: .whitespaces).isEmpty && !own.contains { line.range(of: $0, options: .regularExpression) != nil }
        }
    }

    /// A 20 s call transcoded to MP3 by callrec itself (so it carries the LAME/Xing tag that
    /// promises the whole length), then cut in the middle of a frame at about half.
    func cutMP3(in dir: String) throws -> String {
        try FileManager.default.createDirectory(atPath: "\(dir)/src", withIntermediateDirectories: true)
        try SyntheticAudio.write(.speech(), seconds: 20, format: .wavPCM16, to: "\(dir)/src/call.wav")
        let made = try runProcess(callrec, ["transcode", "\(dir)/src", "--out", "\(dir)/mp3", "--log-level", "error"], environment: Self.environment())
        try #require(made.status == 0, "\(made.stderr)")
        let whole = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/mp3/call.mp3"))
        try FileManager.default.createDirectory(atPath: "\(dir)/cut", withIntermediateDirectories: true)
        let path = "\(dir)/cut/call.mp3"
        try whole.prefix(whole.count / 2 + 37).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// libmpg123 (inside libsndfile) wrote "Warning: Xing stream size off by more than 1%…" and
    /// the like straight to stderr when callrec decoded a cut MP3; now only callrec speaks there.
    @Test func aCutMP3GivesOnlyCallrecsOwnLinesOnStderr() async throws {
        try await withTemporaryDirectory { dir in
            let cut = try cutMP3(in: dir)
            let environment = Self.environment()
            let probe = try runProcess(callrec, ["probe", cut], environment: environment)
            #expect(probe.status == 0, "\(probe.stderr)")
            #expect(String(decoding: probe.stdout, as: UTF8.self).contains("MPEG"))
            let probeJSON = try runProcess(callrec, ["probe", cut, "--json", "--log-level", "trace"], environment: environment)
            #expect(probeJSON.status == 0)
            _ = FileManager.default.createFile(atPath: "\(dir)/cut/call.json", contents: Data(#"{"call_log": {"outcome": "connected", "to_phone_number": "+15551230000", "start_time": "2026-11-20 10:00:00"}}"#.utf8))
            let transcode = try runProcess(callrec, ["transcode", "\(dir)/cut", "--out", "\(dir)/out", "--json"], environment: environment)
            #expect(transcode.status == 0, "\(transcode.stderr)")
            for (name, result) in [("probe", probe), ("probe --json", probeJSON), ("transcode", transcode)] {
                #expect(Self.foreignLines(result.stderr).isEmpty, "\(name) let a library write: \(Self.foreignLines(result.stderr))")
            }
        }
    }

    /// `upload --sandbox` (the demo) printed that warning once per upload: the sandbox checked
    /// each upload by decoding its first 16 KiB with callrec's decoder. Its own frame-header check
    /// says nothing, and neither does anything else.
    @Test func aSandboxUploadGivesOnlyCallrecsOwnLinesOnStderr() async throws {
        try await withTemporaryDirectory { dir in
            let result = try runProcess(callrec, ["upload", repositoryRoot() + "/testdata/calls", "--sandbox", "--state", "\(dir)/state"],
                                        environment: Self.environment())
            #expect(result.status == 0, "\(result.stderr)")
            #expect(Self.foreignLines(result.stderr).isEmpty, "\(Self.foreignLines(result.stderr))")
        }
    }
}

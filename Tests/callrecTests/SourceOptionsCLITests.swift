import CallTesting
import Foundation
import Testing

/// The source options and the JSON config from the outside: each bad value exits 2 with a message
/// naming its flag or key path, before any file is read or any state is made.
@Suite struct SourceOptionsCLITests {
    let callrec = callrecExecutable()

    /// An environment without the developer's API variables.
    func environment(_ extra: [String: String] = [:]) -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "LANG", "TMPDIR"].contains($0.key) }
        return inherited.merging(extra) { _, new in new }
    }

    @Test func aBadFlagExitsTwoBeforeAnyFileIsRead() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/calls", withIntermediateDirectories: true)
            let bad: [([String], String)] = [
                (["--region", "XX"], "--region XX"), (["--extensions", "5-1"], "--extensions 5-1"),
                (["--outcome", "FAILED=maybe"], "--outcome FAILED=maybe"), (["--timezone", "Mars/Base"], "--timezone Mars/Base"),
                (["--log", "sometimes"], "--log sometimes"), (["--source", "asterisk"], "--source asterisk"),
                (["--cdr-wait", "soon"], "--cdr-wait soon"), (["--source", "freepbx", "--cdr", "\(dir)/missing.csv"], "--cdr"),
                (["--source", "3cx", "--cdr", "\(dir)/calls"], "--cdr"),
            ]
            let commands: [[String]] = [["upload", "\(dir)/calls"], ["enqueue", "\(dir)/calls"], ["worker", "--watch", "\(dir)/calls", "--until-idle"]]
            for command in commands {
                for (flags, expected) in bad {
                    let result = try await runProcess(callrec, command + ["--state", "\(dir)/state"] + flags, environment: environment())
                    #expect(result.status == 2, "\(command) \(flags): \(result.stderr)")
                    #expect(result.stderr.contains(expected), "\(command) \(flags): \(result.stderr)")
                    #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"), "\(command) \(flags) made the state directory")
                }
            }
            let watch = try await runProcess(callrec, ["worker", "--watch", "\(dir)/calls", "--watch-mode", "magic", "--state", "\(dir)/state"],
                                       environment: environment())
            #expect(watch.status == 2 && watch.stderr.contains("--watch-mode magic"), "\(watch.stderr)")
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"))
        }
    }

    @Test func aBadConfigExitsTwoNamingTheKeyPath() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/calls", withIntermediateDirectories: true)
            let configs = [
                (#"{ "defaults": { "regoin": "US" } }"#, "defaults.regoin"),
                (#"{ "pipedrive": { "api_token": "s3cr3t" } }"#, "pipedrive.api_token"),
                (#"{ "sources": [ { "kind": "freepbx", "path": "calls", "timezone": "Mars/Base" } ] }"#, "sources[0].timezone"),
            ]
            for (text, path) in configs {
                try text.write(toFile: "\(dir)/callrec.json", atomically: true, encoding: .utf8)
                let result = try await runProcess(callrec, ["upload", "\(dir)/calls", "--config", "\(dir)/callrec.json", "--state", "\(dir)/state"],
                                            environment: environment())
                #expect(result.status == 2, "\(text): \(result.stderr)")
                #expect(result.stderr.contains(path) && !result.stderr.contains("s3cr3t"), "\(text): \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"))
            }
        }
    }

    @Test func aJSON5ConfigIsReadAndTheEnvironmentWins() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/calls", withIntermediateDirectories: true)
            try "token-from-file\n".write(toFile: "\(dir)/pd.token", atomically: true, encoding: .utf8)
            try """
                # callrec
                {
                  // the API
                  "pipedrive": { "api_token_file": "pd.token", "api_url": "ftp://not-a-url", "daily_tokens": 1000, },
                }
                """.write(toFile: "\(dir)/callrec.json", atomically: true, encoding: .utf8)
            let arguments = ["upload", "\(dir)/calls", "--config", "\(dir)/callrec.json", "--state", "\(dir)/state", "--json"]
            // The file's URL alone is refused, naming the key that set it…
            let refused = try await runProcess(callrec, arguments, environment: environment())
            #expect(refused.status == 2 && refused.stderr.contains("pipedrive.api_url"), "\(refused.stderr)")
            // …and the environment's wins over it: the run goes on (nothing to upload).
            let run = try await runProcess(callrec, arguments, environment: environment(["PIPEDRIVE_API_URL": "http://127.0.0.1:9/v1"]))
            #expect(run.status == 0, "\(run.stderr)")
        }
    }

    /// The config's `state` key places the state (the SQLite database) when `--state` is not
    /// given; `--state` wins over it.
    @Test func theConfigsStateIsUsedUnlessStateIsGiven() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/calls", withIntermediateDirectories: true)
            try #"{ "state": "from-config", "sources": [ { "kind": "freepbx", "path": "calls" } ] }"#
                .write(toFile: "\(dir)/callrec.json", atomically: true, encoding: .utf8)
            let byConfig = try await runProcess(callrec, ["enqueue", "\(dir)/calls", "--config", "\(dir)/callrec.json"], environment: environment())
            #expect(byConfig.status == 0, "\(byConfig.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/from-config/callrec.sqlite"), "\(byConfig.stderr)")
            let byFlag = try await runProcess(callrec, ["enqueue", "\(dir)/calls", "--config", "\(dir)/callrec.json", "--state", "\(dir)/by-flag"],
                                        environment: environment())
            #expect(byFlag.status == 0, "\(byFlag.stderr)")
            #expect(FileManager.default.fileExists(atPath: "\(dir)/by-flag/callrec.sqlite"), "\(byFlag.stderr)")
        }
    }
}

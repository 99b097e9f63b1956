import CallAPI
import CallSources
import CallTesting
import Foundation
import Testing

@testable import CallApp

/// The JSON config file (`--config`, D4): comments, strict keys with their paths, secrets only
/// from files, the environment over the file, and the merge built-in ⊕ defaults ⊕ entry ⊕ flags.
@Suite struct ConfigTests {
    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// The usage error `body` throws.
    func usageError(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "no error"
        } catch let error as AppError {
            return error.code == .usage ? error.message : "not a usage error: \(error)"
        } catch {
            return "not an AppError: \(error)"
        }
    }

    @Test func json5WithCommentsGivesTheAPISettingsAndSecretsFromFiles() async throws {
        try await withTemporaryDirectory { dir in
            try write("pd-secret-token\n", to: "\(dir)/pipedrive.token")
            try write("""
                # callrec configuration
                {
                  // API settings
                  pipedrive: { api_token_file: "pipedrive.token", daily_tokens: 60000, burst: 40, budget_reset: "06:30", },
                  "telnyx": { "api_url": "https://telnyx.example/v2" },
                  /* sources */
                  "users": { "101": 7, "0102": 8 },
                  "matching": {}, "company_numbers": [],
                }
                """, to: "\(dir)/callrec.json")
            #expect(ConfigFile.isJSON("\(dir)/callrec.json"))
            let environment = try APIClients.environment(config: "\(dir)/callrec.json", environment: [:])
            #expect(environment.pipedriveToken?.reveal() == "pd-secret-token")
            #expect(environment.pipedriveDailyTokens == 60000 && environment.pipedriveBurst == 40)
            #expect(environment.pipedriveBudgetReset == .seconds(6 * 3600 + 30 * 60))
            #expect(environment.telnyxURL == "https://telnyx.example/v2")
            #expect(try ConfigFile.load("\(dir)/callrec.json").users == ["101": 7, "0102": 8])
            // A JSON5 comment may come first too.
            try write("// callrec\n/* API */\n{ \"pipedrive\": { \"burst\": 5 } }", to: "\(dir)/slashes.json")
            #expect(ConfigFile.isJSON("\(dir)/slashes.json"))
            #expect(try APIClients.environment(config: "\(dir)/slashes.json", environment: [:]).pipedriveBurst == 5)
        }
    }

    @Test func theEnvironmentWinsOverTheFile() async throws {
        try await withTemporaryDirectory { dir in
            // The token file does not exist: with the token in the environment it is not read.
            try write(#"{ "pipedrive": { "api_token_file": "missing.token", "daily_tokens": 60000, "api_url": "ftp://nowhere" } }"#,
                      to: "\(dir)/c.json")
            let environment = try APIClients.environment(config: "\(dir)/c.json", environment: [
                "PIPEDRIVE_API_TOKEN": "from-env", "PIPEDRIVE_DAILY_TOKENS": "100", "PIPEDRIVE_API_URL": "https://pd.example/v1",
            ])
            #expect(environment.pipedriveToken?.reveal() == "from-env" && environment.pipedriveDailyTokens == 100)
            #expect(environment.pipedriveURL == "https://pd.example/v1")
            // Without the environment the file's values count, and their errors name the key.
            let message = usageError { _ = try APIClients.environment(config: "\(dir)/c.json", environment: [:]) }
            #expect(message.contains("pipedrive.api_token_file") && message.contains("missing.token"), "\(message)")
            let url = usageError {
                _ = try APIClients.environment(config: "\(dir)/c.json", environment: ["PIPEDRIVE_API_TOKEN": "t"])
            }
            #expect(url.contains("PIPEDRIVE_API_URL") && url.contains("pipedrive.api_url"), "\(url)")
        }
    }

    @Test func anUnknownKeyIsRefusedWithItsPath() async throws {
        try await withTemporaryDirectory { dir in
            let cases = [
                (#"{ "pipedrive": { "daily_token": 5 } }"#, "pipedrive.daily_token", "daily_tokens"),
                (#"{ "defaults": { "timezon": "UTC" } }"#, "defaults.timezon", "timezone"),
                (#"{ "sources": [ { "kind": "freepbx", "path": "/a" }, { "kind": "freepbx", "path": "/b", "pbxx": "b" } ] }"#, "sources[1].pbxx", "pbx"),
                (#"{ "source": [] }"#, "source", "sources"),
                (#"{ "matching": { "by": "email" } }"#, "matching.by", "unknown_numbers"),
                (#"{ "matching": { "refres": "5m" } }"#, "matching.refres", "did you mean refresh"),
                (#"{ "defaults": { "timezone": 5 } }"#, "defaults.timezone", "string"),
            ]
            for (index, (text, path, hint)) in cases.enumerated() {
                try write(text, to: "\(dir)/\(index).json")
                let message = usageError { _ = try ConfigFile.load("\(dir)/\(index).json") }
                #expect(message.contains(path) && message.contains(hint) && message.contains("\(dir)/\(index).json"), "\(message)")
            }
        }
    }

    @Test func anInlineSecretIsRefusedWithoutEchoingIt() async throws {
        try await withTemporaryDirectory { dir in
            for (section, key, file) in [("pipedrive", "api_token", "api_token_file"), ("telnyx", "api_key", "api_key_file"),
                                         ("voipnow", "access_token", "access_token_file")] {
                try write(#"{ "\#(section)": { "\#(key)": "s3cr3t-value" } }"#, to: "\(dir)/c.json")
                let message = usageError { _ = try APIClients.environment(config: "\(dir)/c.json", environment: [:]) }
                #expect(message.contains("\(section).\(key)") && message.contains(file) && !message.contains("s3cr3t"), "\(message)")
            }
            try write(#"{ "database": "postgres://callrec:pw@db/callrec" }"#, to: "\(dir)/c.json")
            let database = usageError { _ = try ConfigFile.load("\(dir)/c.json") }
            #expect(database.contains("database") && database.contains("PGPASSWORD") && !database.contains("pw@"), "\(database)")
        }
    }

    @Test func aKeyValueFileIsStillRead() async throws {
        try await withTemporaryDirectory { dir in
            try write("# comment\nPIPEDRIVE_API_TOKEN=abc\n", to: "\(dir)/env")
            #expect(!ConfigFile.isJSON("\(dir)/env"))
            #expect(try APIClients.environment(config: "\(dir)/env", environment: [:]).pipedriveToken?.reveal() == "abc")
            // No sources in it: the flags alone.
            var request = SourceRequest()
            request.source = "freepbx"
            #expect(try SourceConfiguration.resolve(directory: dir, request: request, config: "\(dir)/env")?.kind == .freepbx)
        }
    }

    @Test func settingsMergeBuiltInThenDefaultsThenTheEntryThenFlags() async throws {
        try await withTemporaryDirectory { dir in
            try FileManager.default.createDirectory(atPath: "\(dir)/monitor/2026/03", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: "\(dir)/elsewhere", withIntermediateDirectories: true)
            try write("", to: "\(dir)/Master.csv")
            try write("""
                {
                  "users": { "101": 7 },
                  "defaults": { "timezone": "America/New_York", "region": "US", "extensions": "100-199", "log": ["missed"],
                                "outcome": { "FAILED": "busy", "NO_ANSWER": "no_answer" }, "cdr_wait": "5m", "settle": 3,
                                "subject": "{direction_title} {other_number}" },
                  "sources": [
                    { "name": "hq", "kind": "freepbx", "path": "monitor", "cdr": ["Master.csv"],
                      "timezone": "Europe/Berlin", "outcome": { "CONGESTION": "no_answer" }, "watch_mode": "poll", "poll_interval": 5 },
                    { "name": "branch", "kind": "fusionpbx", "path": "elsewhere" },
                  ],
                }
                """, to: "\(dir)/callrec.json")
            var request = SourceRequest()
            request.region = "de"
            request.outcomes = ["failed=no_answer"]
            let settings = try #require(try SourceConfiguration.resolve(directory: "\(dir)/monitor/2026/03", request: request, config: "\(dir)/callrec.json"))
            #expect(settings.kind == .freepbx && settings.name == "hq" && settings.pbx == "hq")
            #expect(settings.root.hasSuffix("/monitor") && settings.cdrFiles.count == 1 && settings.cdrFiles[0].hasSuffix("/Master.csv"))
            #expect(settings.timeZone.identifier == "Europe/Berlin")  // the entry over defaults
            #expect(settings.region == "DE")  // the flag over defaults
            #expect(settings.extensions.description == "100-199" && settings.log == [.missed])
            #expect(settings.outcomes == ["FAILED": "no_answer", "NO ANSWER": "no_answer", "CONGESTION": "no_answer"])
            #expect(settings.cdrWait == .seconds(300) && settings.settle == .seconds(3))
            #expect(settings.watchMode == .poll && settings.pollInterval == .seconds(5))
            #expect(settings.subjectTemplate == "{direction_title} {other_number}" && settings.users == ["101": 7])

            // A directory no entry holds: --source and the defaults.
            request.source = "3cx"
            let adHoc = try #require(try SourceConfiguration.resolve(directory: dir, request: request, config: "\(dir)/callrec.json"))
            #expect(adHoc.kind == .threeCX && adHoc.root == dir && adHoc.timeZone.identifier == "America/New_York" && adHoc.cdrFiles.isEmpty)
            // Without --source and without an entry: sidecars.
            #expect(try SourceConfiguration.resolve(directory: dir, request: SourceRequest(), config: "\(dir)/callrec.json") == nil)
            // A worker without --watch watches every entry.
            let watched = try SourceConfiguration.watched(directories: [], request: SourceRequest(), config: "\(dir)/callrec.json")
            #expect(watched.map(\.name) == ["hq", "branch"] && watched[1].timeZone.identifier == "America/New_York")
            #expect(try SourceConfiguration.watched(directories: [], request: SourceRequest(), config: nil).isEmpty)
            // A watched entry whose directory is missing: a usage error naming the key, not a watch on nothing.
            try FileManager.default.removeItem(atPath: "\(dir)/elsewhere")
            let missing = usageError { _ = try SourceConfiguration.watched(directories: [], request: SourceRequest(), config: "\(dir)/callrec.json") }
            #expect(missing.contains("sources[1].path") && missing.contains("no such directory"), "\(missing)")
        }
    }

    @Test func badValuesNameTheFlagOrTheKey() async throws {
        try await withTemporaryDirectory { dir in
            try write("x", to: "\(dir)/cdr.csv")
            let flags: [(WritableKeyPath<SourceRequest, String?>, String, String)] = [
                (\.source, "asterisk", "--source asterisk"), (\.timezone, "Mars/Base", "--timezone Mars/Base"), (\.region, "XX", "--region XX"),
                (\.extensions, "5-1", "--extensions 5-1"), (\.log, "sometimes", "--log sometimes"), (\.cdrWait, "soon", "--cdr-wait soon"),
                (\.watchMode, "magic", "--watch-mode magic"), (\.watchPollInterval, "0", "--watch-poll-interval 0"),
            ]
            for (key, value, expected) in flags {
                var request = SourceRequest()
                request[keyPath: key] = value
                let message = usageError { try SourceConfiguration.check(request) }
                #expect(message.hasPrefix(expected), "\(message)")
            }
            var request = SourceRequest()
            request.outcomes = ["FAILED=maybe"]
            #expect(usageError { try SourceConfiguration.check(request) }.hasPrefix("--outcome FAILED=maybe"))
            request = SourceRequest()
            request.source = "3cx"
            request.cdr = ["\(dir)/cdr.csv"]
            #expect(usageError { try SourceConfiguration.check(request) }.contains("3CX"))
            request.source = "freepbx"
            #expect(usageError { try SourceConfiguration.check(request) } == "no error")
            request.cdr = ["\(dir)/missing.csv"]
            #expect(usageError { try SourceConfiguration.check(request) } == "--cdr \(dir)/missing.csv: no such file")

            for (text, path) in [(#"{ "defaults": { "region": "XX" } }"#, "defaults.region XX"),
                                 (#"{ "defaults": { "subject": "{direction} {calller}" } }"#, "defaults.subject: {calller}"),
                                 (#"{ "sources": [ { "kind": "freepbx", "path": "/a", "extensions": "9-1" } ] }"#, "sources[0].extensions 9-1"),
                                 (#"{ "sources": [ { "kind": "pbx9000", "path": "/a" } ] }"#, "sources[0].kind pbx9000"),
                                 (#"{ "sources": [ { "kind": "3cx", "path": "/a", "cdr": ["x.csv"] } ] }"#, "sources[0].cdr"),
                                 (#"{ "sources": [ { "kind": "freepbx" } ] }"#, "sources[0].path"),
                                 (#"{ "sources": [ { "kind": "freepbx", "path": "/a" }, { "kind": "freepbx", "path": "/b" } ] }"#, "sources[1].name"),
                                 (#"{ "defaults": { "log": ["missed", "always"] } }"#, "defaults.log")] {
                try write(text, to: "\(dir)/c.json")
                let message = usageError { _ = try ConfigFile.load("\(dir)/c.json") }
                #expect(message.contains(path), "\(message)")
            }
        }
    }
}

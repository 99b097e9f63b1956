import CallSources
import CallTelnyx
import CallTesting
import Foundation
import Testing

@testable import CallApp

/// The config file's `telnyx` section and `TELNYX_PUBLIC_KEY` (issue 16): strict keys with their
/// paths, every value checked before anything runs, the environment over the file, the users'
/// numbers in E.164.
extension ConfigTests {
    /// RFC 8032's first two test public keys, base64 (32 bytes each).
    static let telnyxKey = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    static let otherTelnyxKey = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw="

    @Test func telnyxSectionEveryKeyIsReadIntoTheSettings() async throws {
        try await withTemporaryDirectory { dir in
            try write("""
                { "telnyx": {
                    "api_url": "https://telnyx.example/v2", "public_key": "\(Self.telnyxKey)", "format": "wav", "events_wait": "2m",
                    "body_limit": "64KiB", "tolerance": 120, "region": "gb", "timezone": "Europe/London", "log": ["missed"],
                    "outcome": { "FAILED": "busy" }, "users": { "+44 20 7946 0018": 7, "020 7946 0019": 8 },
                    "subject": "{direction_title} call {with_other}", "note": "<p>{outcome_text}</p>",
                } }
                """, to: "\(dir)/c.json")
            let settings = try TelnyxConfiguration.resolve(config: "\(dir)/c.json", environment: [:])
            #expect(settings.publicKey == Self.telnyxKey)
            #expect(settings.format == "wav" && settings.eventsWait == .seconds(120) && settings.tolerance == .seconds(120))
            #expect(settings.bodyLimit == 64 * 1024)
            #expect(settings.source.region == "GB" && settings.source.timeZone.identifier == "Europe/London")
            #expect(settings.source.log == [.missed] && settings.source.outcomes == ["FAILED": "busy"])
            #expect(settings.source.subjectTemplate == "{direction_title} call {with_other}" && settings.source.noteTemplate == "<p>{outcome_text}</p>")
            #expect(settings.source.pbx == "telnyx" && settings.source.name == "telnyx")
            // Numbers in E.164, the national one read with the section's region.
            #expect(settings.users == ["+442079460018": 7, "+442079460019": 8])
            #expect(settings.source.users == settings.users)
        }
    }

    @Test func telnyxSectionWithoutOneTheDefaultsHold() async throws {
        try await withTemporaryDirectory { dir in
            try write(#"{ "pipedrive": { "burst": 5 } }"#, to: "\(dir)/c.json")
            for config in ["\(dir)/c.json", nil] {
                let settings = try TelnyxConfiguration.resolve(config: config, environment: [:])
                #expect(settings.publicKey == nil && settings.format == "mp3" && settings.eventsWait == .seconds(60))
                #expect(settings.bodyLimit == 256 * 1024 && settings.tolerance == .seconds(300) && settings.users.isEmpty)
                #expect(settings.source.timeZone == TimeZone(identifier: "UTC") && settings.source.pbx == "telnyx")
            }
            // The PBX defaults are a PBX's: the Telnyx source keeps UTC.
            try write(#"{ "defaults": { "timezone": "America/New_York" }, "telnyx": { "format": "mp3" } }"#, to: "\(dir)/d.json")
            #expect(try TelnyxConfiguration.resolve(config: "\(dir)/d.json", environment: [:]).source.timeZone == TimeZone(identifier: "UTC"))
        }
    }

    @Test func telnyxSectionAnUnknownOrBadValueIsRefusedWithItsPath() async throws {
        try await withTemporaryDirectory { dir in
            let cases = [
                (#"{ "telnyx": { "publickey": "x" } }"#, "telnyx.publickey", "did you mean public_key?"),
                (#"{ "telnyx": { "cdr_wait": "5m" } }"#, "telnyx.cdr_wait", "unknown key"),
                (#"{ "telnyx": { "format": "ogg" } }"#, "telnyx.format ogg", "not mp3 or wav"),
                (#"{ "telnyx": { "events_wait": "soon" } }"#, "telnyx.events_wait soon", "age"),
                (#"{ "telnyx": { "tolerance": 0 } }"#, "telnyx.tolerance 0", "positive"),
                (#"{ "telnyx": { "body_limit": "lots" } }"#, "telnyx.body_limit lots", "size"),
                (#"{ "telnyx": { "region": "XX" } }"#, "telnyx.region XX", "region"),
                (#"{ "telnyx": { "timezone": "Mars/Base" } }"#, "telnyx.timezone Mars/Base", "time zone"),
                (#"{ "telnyx": { "log": ["everything"] } }"#, "telnyx.log", "everything"),
                (#"{ "telnyx": { "outcome": { "FAILED": "exploded" } } }"#, "telnyx.outcome", "exploded"),
                (#"{ "telnyx": { "subject": "{nope}" } }"#, "telnyx.subject", "nope"),
                (#"{ "telnyx": { "users": { "not a number": 7 } } }"#, "telnyx.users.not a number", "E.164"),
                (#"{ "telnyx": { "users": { "+442079460018": 0 } } }"#, "telnyx.users.+442079460018", "user id"),
                (#"{ "telnyx": { "users": { "+442079460018": 7, "+44 20 7946 0018": 8 } } }"#, "+442079460018", "the same number"),
                (#"{ "telnyx": { "public_key": "not base64!" } }"#, "telnyx.public_key", "Public Key"),
                (#"{ "telnyx": { "public_key": "AAAA" } }"#, "telnyx.public_key", "Public Key"),
                (#"{ "telnyx": { "public_key": "\#(Self.telnyxKey)", "public_key_file": "k" } }"#, "telnyx.public_key_file", "not both"),
                (#"{ "telnyx": { "public_key_file": "missing.pub" } }"#, "telnyx.public_key_file", "cannot read"),
            ]
            for (index, (text, path, hint)) in cases.enumerated() {
                try write(text, to: "\(dir)/\(index).json")
                // Any command that reads the file refuses it, and so does the Telnyx resolve.
                let load = usageError { _ = try ConfigFile.load("\(dir)/\(index).json") }
                #expect(load.contains(path) && load.contains(hint) && load.contains("\(dir)/\(index).json"), "\(index): \(load)")
                let resolve = usageError { _ = try TelnyxConfiguration.resolve(config: "\(dir)/\(index).json", environment: [:]) }
                #expect(resolve == load, "\(index)")
            }
        }
    }

    @Test func telnyxPublicKeyFromTheEnvironmentWinsAndABadOneNamesTheVariable() async throws {
        try await withTemporaryDirectory { dir in
            try write(#"{ "telnyx": { "public_key": "\#(Self.telnyxKey)" } }"#, to: "\(dir)/c.json")
            let settings = try TelnyxConfiguration.resolve(config: "\(dir)/c.json", environment: ["TELNYX_PUBLIC_KEY": Self.otherTelnyxKey])
            #expect(settings.publicKey == Self.otherTelnyxKey)
            #expect(try TelnyxConfiguration.resolve(config: nil, environment: ["TELNYX_PUBLIC_KEY": Self.otherTelnyxKey]).publicKey == Self.otherTelnyxKey)
            for config in ["\(dir)/c.json", nil] {
                let message = usageError { _ = try TelnyxConfiguration.resolve(config: config, environment: ["TELNYX_PUBLIC_KEY": "c2hvcnQ="]) }
                #expect(message.hasPrefix("TELNYX_PUBLIC_KEY: "), "\(message)")
            }
        }
    }

    @Test func telnyxPublicKeyFileIsReadRelativeToTheConfig() async throws {
        try await withTemporaryDirectory { dir in
            try write("\(Self.telnyxKey)\n", to: "\(dir)/telnyx.pub")
            try write(#"{ "telnyx": { "public_key_file": "telnyx.pub" } }"#, to: "\(dir)/c.json")
            #expect(try TelnyxConfiguration.resolve(config: "\(dir)/c.json", environment: [:]).publicKey == Self.telnyxKey)
            try write("\(Self.telnyxKey)\n\(Self.otherTelnyxKey)\n", to: "\(dir)/telnyx.pub")
            let message = usageError { _ = try TelnyxConfiguration.resolve(config: "\(dir)/c.json", environment: [:]) }
            #expect(message.contains("telnyx.public_key_file \(dir)/telnyx.pub") && message.contains("one line"), "\(message)")
        }
    }
}

import CallTesting
import Foundation
import Testing

/// `callrec-pbx-sim` (bench/Tools/pbx-sim), the PBX the watch tests and bench/watch.sh write
/// with: a seed gives one tree, its manifest is the truth its names and CDR rows were rendered
/// from, its clock crosses DST changes, and its WAV→MP3 post script leaves only the MP3.
@Suite struct PBXSimulatorTests {
    let simulator = pbxSimExecutable()
    static let quirks = "ring-group=0.5,internal=0.2,missed=0.2,late-cdr=0.2:30s,odd-names"

    /// Runs the simulator into `dir/tree` with its manifest at `dir/manifest.jsonl`; the manifest's entries.
    @discardableResult
    func simulate(_ layout: String, in dir: String, seed: Int = 7, batch: Bool = true, _ extra: [String] = []) async throws -> [[String: Any]] {
        let arguments = ["--layout", layout, "--out", "\(dir)/tree", "--manifest", "\(dir)/manifest.jsonl", "--seed", "\(seed)",
                         "--timezone", "America/New_York", "--start", "2026-06-15T14:00:00Z"] + (batch ? ["--batch"] : []) + extra
        let result = try await runProcess(simulator, arguments)
        try #require(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOfFile: "\(dir)/manifest.jsonl", encoding: .utf8)
        return try text.split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    }

    /// Every file under `root`, by path relative to it.
    func tree(_ root: String) throws -> [String: Data] {
        let paths = try #require(FileManager.default.subpathsOfDirectory(atPath: root) as [String]?)
        var files: [String: Data] = [:]
        for path in paths {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: "\(root)/\(path)", isDirectory: &isDirectory), !isDirectory.boolValue {
                files[path] = try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(path)"))
            }
        }
        return files
    }

    /// The rows of a CSV file (RFC 4180 quoting; no field spans lines here).
    func csv(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            var fields: [String] = [], field = "", quoted = false, chars = Array(line), i = 0
            while i < chars.count {
                let c = chars[i]
                if quoted {
                    if c == "\"", i + 1 < chars.count, chars[i + 1] == "\"" {
                        field.append("\"")
                        i += 1
                    } else if c == "\"" {
                        quoted = false
                    } else {
                        field.append(c)
                    }
                } else if c == "\"" {
                    quoted = true
                } else if c == "," {
                    fields.append(field)
                    field = ""
                } else {
                    field.append(c)
                }
                i += 1
            }
            return fields + [field]
        }
    }

    func epoch(_ iso: Any?) throws -> Int {
        Int(try #require(try (iso as? String).map { try Date.ISO8601FormatStyle().parse($0) }).timeIntervalSince1970)
    }

    /// `2026-06-15 10:00:13` → `20260615`, `100013`.
    func digits(_ local: Any?) -> (String, String) {
        let text = (local as? String ?? "").filter(\.isNumber)
        return (String(text.prefix(8)), String(text.dropFirst(8)))
    }

    @Test(arguments: ["freepbx", "3cx", "fusionpbx"])
    func theSameSeedWritesTheSameTree(layout: String) async throws {
        try await withTemporaryDirectory { dir in
            let extra = ["--rate", "0.5", "--duration", "20", "--call-seconds", "3-6", "--quirks", Self.quirks]
            try await simulate(layout, in: "\(dir)/a", extra)
            try await simulate(layout, in: "\(dir)/b", extra)
            try await simulate(layout, in: "\(dir)/c", seed: 8, extra)
            let a = try tree("\(dir)/a"), b = try tree("\(dir)/b"), c = try tree("\(dir)/c")
            #expect(a.count > 5)
            #expect(Set(a.keys) == Set(b.keys))
            for (path, bytes) in a { #expect(b[path] == bytes, "\(path) differs between two runs of one seed") }
            #expect(a != c, "another seed should give another tree")
        }
    }

    /// Every recording's bytes: a finalised PCM16 WAV header over exactly its audio seconds.
    func checkRecording(_ path: String, seconds: Int) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let bytes = seconds * 16000
        #expect(data.count == 44 + bytes, "\(path)")
        let dataSize = data.subdata(in: 40..<44).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(dataSize == bytes, "\(path): the header's data size")
    }

    @Test func freePBXNamesAndMasterCSVRowsAgreeWithTheManifest() async throws {
        try await withTemporaryDirectory { dir in
            let entries = try await simulate("freepbx", in: dir, ["--rate", "1", "--duration", "30", "--call-seconds", "3-6", "--quirks", Self.quirks])
            let rows = try csv("\(dir)/tree/Master.csv")
            #expect(rows.allSatisfy { $0.count == 21 }, "Master.csv with loguniqueid, loguserfield and newcdrcolumns has 21 columns")
            let byLinkedID = Dictionary(grouping: rows) { $0[19] }
            #expect(byLinkedID.count == entries.count, "one CDR call per simulated call, late ones included")
            #expect(entries.contains { $0["ring_group"] as? Bool == true } && entries.contains { $0["late_cdr"] as? Bool == true })
            for entry in entries {
                let callID = try #require(entry["call_id"] as? String), path = try #require(entry["path"] as? String)
                try checkRecording("\(dir)/tree/\(path)", seconds: try #require(entry["audio_seconds"] as? Int))
                let match = try #require(path.wholeMatch(of: /(\d{4})\/(\d{2})\/(\d{2})\/(in|out|internal|rg)-(.+)-(.+)-(\d{8})-(\d{6})-(\d+)\.(\d+)\.wav/))
                let (date, time) = digits(entry["local_start"])
                #expect("\(match.1)\(match.2)\(match.3)" == date && String(match.7) == date && String(match.8) == time)
                let start = try epoch(entry["start"])
                #expect("\(match.9).\(match.10)" == callID && Int(match.9) == start)
                let other = entry["other_national"] as? String, ext = entry["extension"] as? String
                switch (entry["direction"] as? String, match.4) {
                case ("inbound", "in"): #expect(String(match.6) == other)
                case ("inbound", "rg"): #expect(String(match.5) == "600" && String(match.6) == other)
                case ("outbound", "out"): #expect(String(match.5) == other && String(match.6) == ext)
                case ("internal", "internal"): #expect(String(match.6) == ext && String(match.5) == entry["other_extension"] as? String)
                default: Issue.record("\(path): kind \(match.4) for a \(entry["direction"] ?? "") call")
                }
                let group = try #require(byLinkedID[callID])
                let leg = try #require(group.first { $0[16] == callID })
                let answered = entry["answered"] as? Bool == true
                #expect(leg[14] == (answered ? "ANSWERED" : "NO ANSWER") && leg[9] == entry["local_start"] as? String)
                #expect(Int(leg[13]) == entry["billsec"] as? Int && leg[5].hasPrefix(entry["direction"] as? String == "inbound" ? "PJSIP/trunk-" : "PJSIP/\(ext ?? "")-"))
                if entry["ring_group"] as? Bool == true {
                    #expect(group.count == 3 && group.filter { $0[14] == "NO ANSWER" }.count == (answered ? 2 : 3), "\(group)")
                } else {
                    #expect(group.count == 1)
                }
                #expect((entry["logged"] as? Bool) == (answered && entry["direction"] as? String != "internal"))
            }
        }
    }

    @Test func threeCXAndFusionPBXNamesAndRowsAgreeWithTheManifest() async throws {
        try await withTemporaryDirectory { dir in
            let extra = ["--rate", "1", "--duration", "20", "--call-seconds", "3-6", "--quirks", Self.quirks]
            let tcx = try await simulate("3cx", in: "\(dir)/3cx", extra)
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/3cx/tree/Master.csv"))
            for entry in tcx {
                guard let path = entry["path"] as? String else {
                    #expect(entry["answered"] as? Bool == false, "3CX records every answered call")
                    continue
                }
                try checkRecording("\(dir)/3cx/tree/\(path)", seconds: try #require(entry["audio_seconds"] as? Int))
                let match = try #require(path.wholeMatch(of: /(\d+)\/\[(.*)\]_(\d+)-(\d+)_(\d{14})\((\d+)\)\.wav/))
                let (date, time) = digits(entry["local_start"])
                #expect(String(match.5) == date + time && entry["call_id"] as? String == "\(match.1)/\(match.5)(\(match.6))")
                #expect(String(match.1) == entry["extension"] as? String)
                if entry["direction"] as? String == "inbound" {
                    #expect(String(match.3) == entry["other_national"] as? String && String(match.4) == entry["extension"] as? String)
                    #expect(String(match.2) == (entry["caller_name"] as? String ?? entry["other_national"] as? String))
                } else {
                    #expect(String(match.3) == entry["extension"] as? String)
                }
            }
            #expect(tcx.contains { ($0["caller_name"] as? String)?.contains(where: { "[](), ".contains($0) || !$0.isASCII }) == true },
                    "odd-names gives names with spaces, brackets, parentheses or non-ASCII letters")

            let fusion = try await simulate("fusionpbx", in: "\(dir)/fusion", extra)
            let rows = try csv("\(dir)/fusion/tree/cdr.csv")
            let header = try #require(rows.first)
            let byUUID = Dictionary(uniqueKeysWithValues: rows.dropFirst().map { row in
                (row[0], Dictionary(uniqueKeysWithValues: zip(header, row).map { ($0, $1) }))
            })
            #expect(byUUID.count == fusion.count)
            for entry in fusion {
                let uuid = try #require(entry["call_id"] as? String), path = try #require(entry["path"] as? String)
                try checkRecording("\(dir)/fusion/tree/\(path)", seconds: try #require(entry["audio_seconds"] as? Int))
                let match = try #require(path.wholeMatch(of: /archive\/(\d{4})\/([A-Z][a-z]{2})\/(\d{2})\/(.+)\.wav/))
                #expect(String(match.4) == uuid && String(match.2) == "Jun")
                let row = try #require(byUUID[uuid])
                #expect(row["record_name"] == "\(uuid).wav" && row["start_stamp"] == entry["local_start"] as? String)
                let start = try epoch(entry["start"])
                #expect(Int(row["start_epoch"] ?? "") == start && Int(row["billsec"] ?? "") == entry["billsec"] as? Int)
                #expect(row["hangup_cause"] == (entry["answered"] as? Bool == true ? "NORMAL_CLEARING" : "NO_ANSWER"))
                #expect(row["direction"] == ["inbound": "inbound", "outbound": "outbound", "internal": "local"][entry["direction"] as? String ?? ""])
            }
        }
    }

    /// `--quirks dst` starts the clock half a run before New York's 2026 fall-back (1 Nov, 06:00Z):
    /// local 01:xx comes twice, an hour apart in UTC, and the local stamps go back while the
    /// uniqueids' epochs go on.
    @Test func theDSTQuirkRepeatsALocalHour() async throws {
        try await withTemporaryDirectory { dir in
            let entries = try await simulate("freepbx", in: dir, ["--rate", "0.02", "--duration", "7200", "--call-seconds", "1-2", "--quirks", "dst",
                                                              "--start", "2026-10-01T00:00:00Z"])
            let repeated = entries.filter { ($0["local_start"] as? String ?? "").hasPrefix("2026-11-01 01:") }
            #expect(Set(repeated.compactMap { $0["utc_offset"] as? Int }) == [-14400, -18000])
            let instants = try repeated.map { try epoch($0["start"]) }
            #expect((instants.max() ?? 0) - (instants.min() ?? 0) > 3600, "one local hour spans more than an hour of UTC")
            let names = Set(try tree("\(dir)/tree").keys.filter { $0.contains("-20261101-01") })
            #expect(names.count == repeated.count)
            let locals = entries.compactMap { $0["local_start"] as? String }
            #expect(zip(locals, locals.dropFirst()).contains { $0 > $1 }, "the local clock goes back once")
        }
    }

    @Test func wav2mp3LeavesOnlyTheMP3AndRewritesRecordingFile() async throws {
        guard which("lame") != nil || ProcessInfo.processInfo.environment["CI"] != nil else { return }  // scripts/setup.sh --test installs lame
        try await withTemporaryDirectory { dir in
            let entries = try await simulate("freepbx", in: dir, ["--rate", "0.5", "--duration", "10", "--call-seconds", "2-4", "--quirks", "wav2mp3,late-cdr=0.3:5s",
                                                              "--export-cdr"])
            let files = try tree("\(dir)/tree").keys
            #expect(!files.contains { $0.hasSuffix(".wav") }, "\(files)")
            #expect(Set(files.filter { $0.hasSuffix(".mp3") }) == Set(entries.compactMap { $0["path"] as? String }))
            for entry in entries {
                let path = try #require(entry["path"] as? String)
                #expect(path.hasSuffix(".mp3") && entry["converted"] as? Bool == true)
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/tree/\(path)"))
                #expect(data.prefix(3) == Data("ID3".utf8) || (data.count > 2 && data[0] == 0xFF && data[1] & 0xE0 == 0xE0), "\(path) is an MP3")
            }
            let export = try csv("\(dir)/tree/cdr.csv")
            let column = try #require(export.first?.firstIndex(of: "recordingfile"))
            #expect(Set(export.dropFirst().map { $0[column] }) == Set(entries.compactMap { ($0["path"] as? String)?.split(separator: "/").last.map(String.init) }))
        }
    }

    /// A live run (1 s appends, closes at hangup, CDR rows at hangup) writes the tree `--batch`
    /// writes, and its manifest dates each close by the real clock.
    @Test func aLiveRunWritesTheBatchTree() async throws {
        try await withTemporaryDirectory { dir in
            let extra = ["--rate", "1", "--duration", "2", "--call-seconds", "1-2"]
            let began = Date()
            let live = try await simulate("freepbx", in: "\(dir)/live", batch: false, extra)
            try await simulate("freepbx", in: "\(dir)/batch", extra)
            let a = try tree("\(dir)/live/tree"), b = try tree("\(dir)/batch/tree")
            #expect(a == b && a.count == 3)
            for entry in live {
                let closed = try #require(try (entry["closed_at"] as? String).map { try Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) })
                #expect(closed >= began.addingTimeInterval(-1) && closed <= Date())
            }
        }
    }
}

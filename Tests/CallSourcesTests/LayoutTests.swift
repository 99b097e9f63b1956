import CallSources
import CallTesting
import Foundation
import Testing

/// The file-name layouts, on the fixture trees under testdata/pbx: every file parses to the facts
/// its name carries, or to nil (not audio, or no layout fits).
@Suite struct LayoutTests {
    static let root = repositoryRoot() + "/testdata/pbx"

    /// The regular files of a fixture tree, relative to it.
    static func files(_ tree: String) -> [String] {
        let base = root + "/" + tree
        let all = FileManager.default.enumerator(atPath: base)?.compactMap { $0 as? String } ?? []
        return all.filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
    }

    /// Every file of `tree` parses to `expected[path]` (nil for files no layout fits), and
    /// `expected` names every file.
    static func check(_ tree: String, _ kind: SourceKind, _ expected: [String: NameFacts?]) {
        let paths = files(tree)
        #expect(Set(paths) == Set(expected.keys), "the fixture tree and the expectations name the same files")
        for path in paths {
            #expect(Layouts.parse(relativePath: path, kind: kind) == expected[path] ?? nil, "\(path)")
        }
    }

    static func local(_ text: String) -> LocalDateTime {
        let n = text.split(whereSeparator: { !$0.isNumber }).map { Int($0)! }
        return LocalDateTime(year: n[0], month: n[1], day: n[2], hour: n[3], minute: n[4], second: n[5])
    }

    static func freePBX(_ file: String, _ callID: String, kind: String?, from: String?, to: String?, at time: String, epoch: Int?,
                        hint: CallDirection?) -> (String, NameFacts?)
    {
        let stem = String(file[..<file.lastIndex(of: ".")!])
        return ("2026/03/04/" + file, NameFacts(callID: callID, kind: kind, from: from, to: to, localStart: local(time), hasTimeOfDay: true,
                                                anchor: epoch.map { Date(timeIntervalSince1970: Double($0)) }, directionHint: hint, stem: stem))
    }

    @Test func freePBXNames() {
        let expected: [(String, NameFacts?)] = [
            Self.freePBX("in-2125550100-6175550199-20260304-101530-1772637330.12.wav", "1772637330.12", kind: "in", from: "6175550199",
                         to: "2125550100", at: "2026-03-04 10:15:30", epoch: 1_772_637_330, hint: .inbound),
            Self.freePBX("out-2125550123-101-20260304-110000-1772640000.20.wav", "1772640000.20", kind: "out", from: "101", to: "2125550123",
                         at: "2026-03-04 11:00:00", epoch: 1_772_640_000, hint: .outbound),
            Self.freePBX("out-2125550123-101-20260304-113001-1772641801.25.wav", "1772641801.25", kind: "out", from: "101", to: "2125550123",
                         at: "2026-03-04 11:30:01", epoch: 1_772_641_801, hint: .outbound),
            Self.freePBX("rg-600-6175550199-20260304-120000-1772643600.30.wav", "1772643600.30", kind: "rg", from: "6175550199", to: "600",
                         at: "2026-03-04 12:00:00", epoch: 1_772_643_600, hint: .inbound),
            Self.freePBX("q-700-6175550188-20260304-130000-1772647200.40.wav", "1772647200.40", kind: "q", from: "6175550188", to: "700",
                         at: "2026-03-04 13:00:00", epoch: 1_772_647_200, hint: .inbound),
            Self.freePBX("exten-101-6175550177-20260304-140000-1772650800.50.wav", "1772650800.50", kind: "exten", from: "6175550177",
                         to: "101", at: "2026-03-04 14:00:00", epoch: 1_772_650_800, hint: .inbound),
            Self.freePBX("exten-102-6175550177-20260304-140035-1772650835.51.wav", "1772650835.51", kind: "exten", from: "6175550177",
                         to: "102", at: "2026-03-04 14:00:35", epoch: 1_772_650_835, hint: .inbound),
            Self.freePBX("internal-102-101-20260304-150000-1772654400.60.wav", "1772654400.60", kind: "internal", from: "101", to: "102",
                         at: "2026-03-04 15:00:00", epoch: 1_772_654_400, hint: .internal),
            // Issabel's force-, a systemname before the uniqueid, wav49's upper-case .WAV
            Self.freePBX("force-2125550123-103-20260304-160000-pbx1-1772658000.70.WAV", "pbx1-1772658000.70", kind: "force", from: "103",
                         to: "2125550123", at: "2026-03-04 16:00:00", epoch: 1_772_658_000, hint: .outbound),
            Self.freePBX("in-2125550100-6175550166-20260304-170000-1772661600.80.wav", "1772661600.80", kind: "in", from: "6175550166",
                         to: "2125550100", at: "2026-03-04 17:00:00", epoch: 1_772_661_600, hint: .inbound),
            Self.freePBX("in-2125550100-anonymous-20260304-171500-1772662500.90.wav", "1772662500.90", kind: "in", from: "anonymous",
                         to: "2125550100", at: "2026-03-04 17:15:00", epoch: 1_772_662_500, hint: .inbound),
            Self.freePBX("in---20260304-172000-1772662800.91.wav", "1772662800.91", kind: "in", from: nil, to: nil, at: "2026-03-04 17:20:00",
                         epoch: 1_772_662_800, hint: .inbound),
            // any kind word; the direction of one FreePBX does not name comes from the extensions
            Self.freePBX("conf-800-101-20260304-173000-1772663400.92.gsm", "1772663400.92", kind: "conf", from: "101", to: "800",
                         at: "2026-03-04 17:30:00", epoch: 1_772_663_400, hint: nil),
            ("2026/03/04/notes.txt", nil),
            ("2026/03/04/in-2125550100-6175550199-20260304-101530-1772637330.12.json", nil),
            ("2026/03/04/recording.wav", nil),
        ]
        Self.check("freepbx/monitor", .freepbx, Dictionary(uniqueKeysWithValues: expected))
    }

    @Test func freePBXEdgeCases() {
        // a uniqueid whose epoch is far from the name's time is no anchor (a uniqueid made some other way)
        #expect(Layouts.parse(relativePath: "in-1-2-20260304-101530-1600000000.1.wav", kind: .freepbx)?.anchor == nil)
        // a system name with dashes stays in the uniqueid; the rightmost date and time anchor the name
        let named = Layouts.parse(relativePath: "x/out-20260101-120000-101-20260304-101530-my-pbx-1772637330.5.wav", kind: .freepbx)
        #expect(named?.callID == "my-pbx-1772637330.5")
        #expect(named?.to == "20260101-120000" && named?.from == "101")
        #expect(named?.anchor == Date(timeIntervalSince1970: 1_772_637_330))
        #expect(Layouts.parse(relativePath: "in-1-2-20261304-101530-1772637330.1.wav", kind: .freepbx) == nil, "month 13")
        #expect(Layouts.parse(relativePath: "in-1-2-20260304-101530-.wav", kind: .freepbx) == nil, "no uniqueid")
        #expect(Layouts.parse(relativePath: "2026/03/04/.in-1-2-20260304-101530-1772637330.1.wav", kind: .freepbx) == nil, "hidden")
        #expect(Layouts.parse(relativePath: "in-1-2-20260304-101530-1772637330.1.wav", kind: .sidecar) == nil)
        #expect(Layouts.parse(relativePath: "in-1-2-20260304-101530-1772637330.1.wav", kind: .threeCX) == nil)
    }

    static func threeCX(_ path: String, ext: String, stamp: String, id: String, from: String?, to: String?, name: String?) -> (String, NameFacts?) {
        let file = String(path[path.index(after: path.lastIndex(of: "/")!)...])
        let stem = String(file[..<file.lastIndex(of: ".")!])
        let time = local(String(stamp.prefix(4)) + "-" + stamp.dropFirst(4).prefix(2) + "-" + stamp.dropFirst(6).prefix(2) + " "
            + stamp.dropFirst(8).prefix(2) + ":" + stamp.dropFirst(10).prefix(2) + ":" + stamp.dropFirst(12))
        return (path, NameFacts(callID: "\(ext)/\(stamp)(\(id))", from: from, to: to, localStart: time, hasTimeOfDay: true, extension: ext,
                                displayName: name, stem: stem))
    }

    @Test func threeCXNames() {
        let expected: [(String, NameFacts?)] = [
            Self.threeCX("Recordings/101/[]_101-2125550123_20260304110000(2).wav", ext: "101", stamp: "20260304110000", id: "2", from: "101",
                         to: "2125550123", name: nil),
            Self.threeCX("Recordings/101/[Doe, John]_6175550199-101_20260304101530(3).wav", ext: "101", stamp: "20260304101530", id: "3",
                         from: "6175550199", to: "101", name: "Doe, John"),
            Self.threeCX("Recordings/101/[Jürgen (Sales) [HQ]]_+49301234567-101_20260304120000(15).wav", ext: "101", stamp: "20260304120000",
                         id: "15", from: "+49301234567", to: "101", name: "Jürgen (Sales) [HQ]"),
            Self.threeCX("Recordings/102/[Bob]_101-102_20260304130000(4).wav", ext: "102", stamp: "20260304130000", id: "4", from: "101",
                         to: "102", name: "Bob"),
            ("Recordings/101/notes.txt", nil),
            ("Recordings/101/[]_101-2125550123_20260304110000(2).json", nil),
            ("Recordings/101/call(2).wav", nil),
        ]
        Self.check("3cx", .threeCX, Dictionary(uniqueKeysWithValues: expected))
    }

    @Test func threeCXEdgeCases() {
        // without the leading Recordings/ component (the root is the Recordings folder)
        let bare = Layouts.parse(relativePath: "101/[]_101-2125550123_20260304110000(2).wav", kind: .threeCX)
        #expect(bare?.callID == "101/20260304110000(2)" && bare?.extension == "101" && bare?.to == "2125550123")
        // a name holding `]_` and a dash: the last `]_` starts the numbers
        let odd = Layouts.parse(relativePath: "Recordings/101/[A]_B-C (x)]_2125550123-101_20260304110000(7).wav", kind: .threeCX)
        #expect(odd?.displayName == "A]_B-C (x)" && odd?.from == "2125550123" && odd?.to == "101")
        #expect(Layouts.parse(relativePath: "101/[]_101-2125550123_20261304110000(2).wav", kind: .threeCX) == nil, "month 13")
        #expect(Layouts.parse(relativePath: "101/[]_1012125550123_20260304110000(2).wav", kind: .threeCX) == nil, "no from-to dash")
    }

    static func fusion(_ path: String, uuid: String) -> (String, NameFacts?) {
        let file = String(path[path.index(after: path.lastIndex(of: "/")!)...])
        return (path, NameFacts(callID: uuid, localStart: LocalDateTime(year: 2026, month: 3, day: 4), hasTimeOfDay: false,
                                stem: String(file[..<file.lastIndex(of: ".")!])))
    }

    @Test func fusionPBXPaths() {
        let expected: [(String, NameFacts?)] = [
            Self.fusion("example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01.wav", uuid: "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01"),
            Self.fusion("example.com/archive/2026/mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a02.mp3", uuid: "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a02"),
            Self.fusion("example.com/archive/2026/MAR/04/3F2B8C1E-5D4A-4C2B-9A1E-0C7D6E5F4A03.wav", uuid: "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a03"),
            Self.fusion("example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a04.wav", uuid: "3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a04"),
            ("example.com/archive/2026/Mar/04/not-a-uuid.wav", nil),
            ("example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01.json", nil),
            ("example.com/archive/2026/Foo/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a09.wav", nil),
        ]
        Self.check("fusionpbx/recordings", .fusionpbx, Dictionary(uniqueKeysWithValues: expected))
        // the root may be the domain's folder
        #expect(Layouts.parse(relativePath: "archive/2026/Dec/31/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01.wav", kind: .fusionpbx)?.localStart
            == LocalDateTime(year: 2026, month: 12, day: 31))
        #expect(Layouts.parse(relativePath: "archive/2026/Feb/30x/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01.wav", kind: .fusionpbx) == nil)
    }
}

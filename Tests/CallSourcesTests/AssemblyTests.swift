import CallPhone
import CallSources
import CallTesting
import Foundation
import Testing

/// A recording's call facts from the fixture CDRs under testdata/pbx: the rows found, the leg
/// picked, numbers in E.164, UTC times (non-DST days: the PBX time rules have tests of their own).
@Suite struct AssemblyTests {
    static let root = repositoryRoot() + "/testdata/pbx"
    static let newYork = TimeZone(identifier: "America/New_York")!

    static func settings(_ kind: SourceKind, cdr: [String] = ["Master.csv"]) throws -> SourceSettings {
        SourceSettings(kind: kind, root: "/pbx", cdrFiles: cdr, timeZone: newYork, region: "US", extensions: try ExtensionSet.parse("100-199"))
    }

    static func rows(_ file: String) throws -> [CDRRow] {
        try CDRFile.read(path: root + "/" + file, from: 0, kind: nil, header: nil).rows
    }

    static func name(_ file: String, _ kind: SourceKind = .freepbx) throws -> NameFacts {
        try #require(Layouts.parse(relativePath: "2026/03/04/" + file, kind: kind), "\(file)")
    }

    static func facts(_ file: String, _ cdr: String = "freepbx/cdr/Master-21.csv") throws -> CallFacts {
        try #require(CallAssembly.fromCDR(name: name(file), rows: rows(cdr), settings: settings(.freepbx)), "\(file) in \(cdr)")
    }

    /// `2026-03-04T15:15:30Z`.
    static func utc(_ text: String) -> Date { ISO8601DateFormatter().date(from: text)! }

    @Test func inboundCallFromMasterCSV() throws {
        let facts = try Self.facts("in-2125550100-6175550199-20260304-101530-1772637330.12.wav")
        #expect(facts.direction == .inbound && facts.fromCDR && facts.warnings.isEmpty)
        #expect(facts.callID == "1772637330.12" && facts.pbx == "freepbx")
        #expect(facts.other.e164 == "+16175550199" && facts.otherName == "Doe, John")
        #expect(facts.company?.e164 == "+12125550100", "the DID the name's in- kind carries")
        #expect(facts.extension == "101", "from dstchannel PJSIP/101-00000002")
        #expect(facts.start == Self.utc("2026-03-04T15:15:30Z") && facts.answer == Self.utc("2026-03-04T15:15:35Z"))
        #expect(facts.end == Self.utc("2026-03-04T15:17:35Z") && facts.billsec == 120 && facts.disposition == "ANSWERED")
    }

    @Test func outboundCall() throws {
        let master = try Self.facts("out-2125550123-101-20260304-110000-1772640000.20.wav")
        #expect(master.direction == .outbound && master.other.e164 == "+12125550123" && master.extension == "101")
        #expect(master.company == nil && master.start == Self.utc("2026-03-04T16:00:00Z") && master.billsec == 180)
        // the FreePBX export says the caller id sent out and the called party's name
        let export = try Self.facts("out-2125550123-101-20260304-110000-1772640000.20.wav", "freepbx/cdr/freepbx-cdr.csv")
        #expect(export.company?.e164 == "+12125550100" && export.otherName == "ACME Corp" && export.extension == "101")
    }

    @Test func ringGroupTakesTheAnsweredLeg() throws {
        for cdr in ["freepbx/cdr/Master-21.csv", "freepbx/cdr/freepbx-cdr.csv"] {
            let facts = try Self.facts("rg-600-6175550199-20260304-120000-1772643600.30.wav", cdr)
            #expect(facts.extension == "104" && facts.disposition == "ANSWERED" && facts.billsec == 90, "\(cdr)")
            #expect(facts.direction == .inbound && facts.other.e164 == "+16175550199", "\(cdr)")
            #expect(facts.start == Self.utc("2026-03-04T17:00:00Z") && facts.answer == Self.utc("2026-03-04T17:00:10Z"), "\(cdr)")
            #expect(facts.end == Self.utc("2026-03-04T17:01:40Z"), "\(cdr)")
        }
        #expect(try Self.facts("rg-600-6175550199-20260304-120000-1772643600.30.wav", "freepbx/cdr/freepbx-cdr.csv").company?.e164 == "+12125550100")
        // nobody answered: the group's latest row, with the best disposition of the group
        let name = try Self.name("rg-600-6175550199-20260304-120000-1772643600.30.wav")
        var rows = try Self.rows("freepbx/cdr/Master-21.csv")
        rows.removeAll { $0.disposition == "ANSWERED" && $0.uniqueid == "1772643600.30" }
        rows = rows.map { row in
            var row = row
            if row.destinationChannel?.hasPrefix("Local/103") == true { row.disposition = "BUSY" }
            return row
        }
        let missed = try #require(CallAssembly.fromCDR(name: name, rows: rows, settings: Self.settings(.freepbx)))
        #expect(missed.disposition == "BUSY" && missed.billsec == 0 && missed.direction == .inbound)
    }

    @Test func queueAndTransfer() throws {
        let queue = try Self.facts("q-700-6175550188-20260304-130000-1772647200.40.wav")
        #expect(queue.extension == "102" && queue.billsec == 200 && queue.disposition == "ANSWERED" && queue.other.e164 == "+16175550188")
        // two answered legs share a linkedid: each recording takes its own
        let first = try Self.facts("exten-101-6175550177-20260304-140000-1772650800.50.wav")
        let second = try Self.facts("exten-102-6175550177-20260304-140035-1772650835.51.wav")
        #expect(first.extension == "101" && first.billsec == 30 && first.start == Self.utc("2026-03-04T19:00:00Z"))
        #expect(second.extension == "102" && second.billsec == 60 && second.start == Self.utc("2026-03-04T19:00:35Z"))
        #expect(first.direction == .inbound && second.direction == .inbound && second.other.e164 == "+16175550177")
    }

    @Test func internalForcedAndVoicemail() throws {
        let internalCall = try Self.facts("internal-102-101-20260304-150000-1772654400.60.wav")
        #expect(internalCall.direction == .internal && internalCall.extension == "101" && internalCall.otherExtension == "102")
        #expect(internalCall.other.raw == "102" && internalCall.warnings.isEmpty, "an extension is no invalid number")
        let forced = try Self.facts("force-2125550123-103-20260304-160000-pbx1-1772658000.70.WAV")
        #expect(forced.direction == .outbound && forced.extension == "103" && forced.callID == "pbx1-1772658000.70")
        #expect(forced.start == Self.utc("2026-03-04T21:00:00Z") && forced.other.e164 == "+12125550123")
        let voicemail = try Self.facts("in-2125550100-6175550166-20260304-170000-1772661600.80.wav")
        #expect(voicemail.disposition == "VOICEMAIL" && voicemail.direction == .inbound && voicemail.other.e164 == "+16175550166")
        #expect(voicemail.billsec == 25)
    }

    @Test func masterCSVWithoutUniqueidMatchesByNumberAndTime() throws {
        let rows = try Self.rows("freepbx/cdr/Master-16.csv")
        let inbound = try #require(
            CallAssembly.fromCDR(name: Self.name("in-2125550100-6175550199-20260304-101530-1772637330.12.wav"), rows: rows,
                                 settings: Self.settings(.freepbx)))
        #expect(inbound.extension == "101" && inbound.billsec == 120 && inbound.other.e164 == "+16175550199")
        // two calls to the same number three seconds apart: neither is taken, and the warning says why
        let ambiguous = try Self.name("out-2125550123-101-20260304-113001-1772641801.25.wav")
        #expect(try CallAssembly.fromCDR(name: ambiguous, rows: rows, settings: try Self.settings(.freepbx)) == nil)
        #expect(try CallAssembly.ambiguity(name: ambiguous, rows: rows)?.code == SourceWarning.cdrAmbiguous)
        #expect(try CallAssembly.ambiguity(name: Self.name("out-2125550123-101-20260304-110000-1772640000.20.wav"), rows: rows) == nil)
        // a row more than 5 s away is not the call
        #expect(try CallAssembly.fromCDR(name: Self.name("in-2125550100-6175550199-20260304-101536-1772637336.12.wav"), rows: rows,
                                     settings: try Self.settings(.freepbx)) == nil)
        // the day keys reach across midnight by the match's margin
        #expect(try CallAssembly.keys(for: try Self.name("in-1-2-20260304-101530-1772637330.12.wav")).days == ["2026-03-04"])
        #expect(try CallAssembly.keys(for: try Self.name("in-1-2-20260304-235958-1772686798.1.wav")).days == ["2026-03-04", "2026-03-05"])
        let keyed = try Self.rows("freepbx/cdr/Master-21.csv")
        #expect(rows.first?.dayKey == "2026-03-04" && keyed.first?.dayKey == nil)
    }

    @Test func fusionPBXCalls() throws {
        let rows = try Self.rows("fusionpbx/cdr/fusionpbx-cdr.csv")
        let settings = try Self.settings(.fusionpbx)
        func facts(_ path: String) throws -> CallFacts {
            let name = try #require(Layouts.parse(relativePath: path, kind: .fusionpbx))
            return try #require(CallAssembly.fromCDR(name: name, rows: rows, settings: settings), "\(path)")
        }
        let inbound = try facts("example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a01.wav")
        #expect(inbound.direction == .inbound && inbound.extension == "101" && inbound.other.e164 == "+16175550199")
        #expect(inbound.start == Self.utc("2026-03-04T15:15:30Z") && inbound.answer == Self.utc("2026-03-04T15:15:35Z"))
        #expect(inbound.disposition == "ANSWERED" && inbound.billsec == 120 && inbound.otherName == "Doe, John")
        let busy = try facts("example.com/archive/2026/mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a02.mp3")
        #expect(busy.direction == .outbound && busy.disposition == "BUSY" && busy.extension == "101" && busy.other.e164 == "+12125550123")
        #expect(busy.start == Self.utc("2026-03-04T16:00:00Z"))
        // an upper-case file name: found by the uuid, not the stem
        let voicemail = try facts("example.com/archive/2026/MAR/04/3F2B8C1E-5D4A-4C2B-9A1E-0C7D6E5F4A03.wav")
        #expect(voicemail.disposition == "VOICEMAIL" && voicemail.other.e164 == "+16175550166")
        let local = try facts("example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a04.wav")
        #expect(local.direction == .internal && local.extension == "101" && local.otherExtension == "102")
    }

    @Test func noRowsNoFacts() throws {
        let name = try Self.name("in-2125550100-anonymous-20260304-171500-1772662500.90.wav")
        #expect(try CallAssembly.fromCDR(name: name, rows: try Self.rows("freepbx/cdr/Master-21.csv"), settings: try Self.settings(.freepbx)) == nil)
        #expect(try CallAssembly.keys(for: name).uniqueids == ["1772662500.90"])
        #expect(try CallAssembly.keys(for: name).stems == ["in-2125550100-anonymous-20260304-171500-1772662500.90"])
    }

    @Test func factsFromTheNameAlone() throws {
        let anonymous = try #require(
            CallAssembly.fromName(name: Self.name("in-2125550100-anonymous-20260304-171500-1772662500.90.wav"), settings: Self.settings(.freepbx),
                                  fileModified: nil, audioSeconds: 42))
        #expect(anonymous.direction == .inbound && !anonymous.fromCDR && anonymous.disposition == "ANSWERED")
        #expect(anonymous.other.raw == "anonymous" && anonymous.other.e164 == nil && anonymous.company?.e164 == "+12125550100")
        #expect(anonymous.start == Self.utc("2026-03-04T22:15:00Z") && anonymous.end == Self.utc("2026-03-04T22:15:42Z"))
        #expect(anonymous.warnings.map(\.code) == [SourceWarning.numberInvalid, SourceWarning.cdrMissing])
        #expect(anonymous.warnings.allSatisfy { $0.message.hasPrefix("in-2125550100-anonymous-") })

        let out = try #require(
            CallAssembly.fromName(name: Self.name("out-2125550123-101-20260304-110000-1772640000.20.wav"), settings: Self.settings(.freepbx),
                                  fileModified: nil, audioSeconds: nil))
        #expect(out.direction == .outbound && out.extension == "101" && out.other.e164 == "+12125550123" && out.end == nil)

        // FusionPBX: the folder gives the day only; the start is the file's close less its length
        let fusion = try #require(Layouts.parse(relativePath: "example.com/archive/2026/Mar/04/3f2b8c1e-5d4a-4c2b-9a1e-0c7d6e5f4a04.wav",
                                                kind: .fusionpbx))
        let closed = Self.utc("2026-03-04T20:02:00Z")
        let fromFile = try #require(CallAssembly.fromName(name: fusion, settings: Self.settings(.fusionpbx), fileModified: closed, audioSeconds: 120))
        #expect(fromFile.start == Self.utc("2026-03-04T20:00:00Z") && fromFile.end == closed)
        #expect(fromFile.warnings.map(\.code).contains(SourceWarning.cdrMissing))
    }

    @Test func threeCXFromTheName() throws {
        // no CDR for 3CX: no cdr_missing either
        let settings = try Self.settings(.threeCX, cdr: [])
        func facts(_ path: String) throws -> CallFacts {
            let name = try #require(Layouts.parse(relativePath: path, kind: .threeCX))
            return try #require(CallAssembly.fromName(name: name, settings: settings, fileModified: nil, audioSeconds: 60))
        }
        let out = try facts("Recordings/101/[]_101-2125550123_20260304110000(2).wav")
        #expect(out.direction == .outbound && out.extension == "101" && out.other.e164 == "+12125550123" && out.warnings.isEmpty)
        #expect(out.start == Self.utc("2026-03-04T16:00:00Z") && out.callID == "101/20260304110000(2)")
        let inbound = try facts("Recordings/101/[Doe, John]_6175550199-101_20260304101530(3).wav")
        #expect(inbound.direction == .inbound && inbound.extension == "101" && inbound.otherName == "Doe, John")
        #expect(inbound.other.e164 == "+16175550199")
        let german = try facts("Recordings/101/[Jürgen (Sales) [HQ]]_+49301234567-101_20260304120000(15).wav")
        #expect(german.other.e164 == "+49301234567" && german.otherName == "Jürgen (Sales) [HQ]")
        let internalCall = try facts("Recordings/102/[Bob]_101-102_20260304130000(4).wav")
        #expect(internalCall.direction == .internal && internalCall.extension == "101" && internalCall.otherExtension == "102")
    }

    @Test func anInvalidNumberIsKeptWithAWarning() throws {
        var rows = try Self.rows("freepbx/cdr/Master-21.csv")
        rows[0].callerNumber = "555-123-4567"
        let facts = try #require(
            CallAssembly.fromCDR(name: Self.name("in-2125550100-6175550199-20260304-101530-1772637330.12.wav"), rows: rows,
                                 settings: Self.settings(.freepbx)))
        #expect(facts.other.raw == "555-123-4567" && facts.other.e164 == nil)
        #expect(facts.warnings.map(\.code) == [SourceWarning.numberInvalid])
        #expect(facts.warnings.first?.message.contains("\"555-123-4567\" is not a valid number in US") == true)
    }
}

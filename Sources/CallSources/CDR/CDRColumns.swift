import CallSupport
import Crypto
import Foundation

/// The columns of each CDR kind: recognising a file's kind, and its records to ``CDRRow``s.
struct CDRColumns {
    let kind: CDRKind
    let header: [String]?
    let path: String

    /// cdr_csv.c's columns, in order, before the optional ones.
    static let masterBase = ["accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp", "lastdata", "start",
                             "answer", "end", "duration", "billsec", "disposition", "amaflags"]
    /// `newcdrcolumns=yes`.
    static let masterNew = ["peeraccount", "linkedid", "sequence"]
    static let freepbxRequired = ["calldate", "recordingfile", "uniqueid", "linkedid", "disposition", "billsec", "did", "cnum"]
    static let fusionRequired = ["xml_cdr_uuid", "direction", "caller_id_number", "destination_number", "start_stamp", "answer_stamp",
                                 "end_stamp", "billsec", "hangup_cause", "record_name"]
    static let dispositions: Set<String> = ["ANSWERED", "NO ANSWER", "BUSY", "FAILED", "CONGESTION", "CANCEL"]

    /// Header names as compared: trimmed, lower case.
    static func names(_ fields: [String]) -> [String] {
        fields.map { $0.trimmingBlanks.lowercased() }
    }

    /// The kind a file's first record says: a header naming a kind's required columns, or a
    /// Master.csv row (16–21 columns, a time in `start`, a disposition in its place).
    static func detect(_ fields: [String], path: String) throws(CDRError) -> CDRKind {
        let present = Set(names(fields))
        if fusionRequired.allSatisfy(present.contains) { return .fusionpbxCDR }
        if freepbxRequired.allSatisfy(present.contains) { return .freepbxCDR }
        if masterColumns(fields) != nil, CDRTimeText.parse(fields[9]) != nil, dispositions.contains(fields[14].uppercased()) {
            return .asteriskMaster
        }
        let missing = { (required: [String]) in required.filter { !present.contains($0) }.joined(separator: ", ") }
        let shown = fields.prefix(8).map { "\"\($0)\"" }.joined(separator: ", ") + (fields.count > 8 ? ", …" : "")
        let tabs = fields.count == 1 && fields[0].contains("\t") ? " It is tab-separated (a mysql --batch export?): export the CDR as CSV." : ""
        throw CDRError(
            code: CDRError.unknownKind, file: path,
            reason: "its first line (\(fields.count) columns: \(shown)) fits no CDR kind callrec reads.\(tabs) "
                + "Asterisk Master.csv: no header, 16 to 21 columns (\(masterBase.joined(separator: ", ")), then uniqueid, userfield, "
                + "\(masterNew.joined(separator: ", ")) as cdr.conf enables them) with a time in start and a disposition; "
                + "a FreePBX cdr export: a header with \(freepbxRequired.joined(separator: ", ")) (missing: \(missing(freepbxRequired))); "
                + "a FusionPBX export: a header with \(fusionRequired.joined(separator: ", ")) (missing: \(missing(fusionRequired)))")
    }

    /// The names of a Master.csv row's columns by its width; 17 and 20 hold uniqueid or userfield,
    /// told apart by the uniqueid's shape.
    static func masterColumns(_ fields: [String]) -> [String]? {
        let one = { isUniqueid(fields[16]) ? "uniqueid" : "userfield" }
        switch fields.count {
        case 16: return masterBase
        case 17: return masterBase + [one()]
        case 18: return masterBase + ["uniqueid", "userfield"]
        case 19: return masterBase + masterNew
        case 20: return masterBase + [one()] + masterNew
        case 21: return masterBase + ["uniqueid", "userfield"] + masterNew
        default: return nil
        }
    }

    /// `^([\w.-]+-)?\d{9,}\.\d+$`: Asterisk's `<epoch>.<seq>`, maybe behind a system name.
    static func isUniqueid(_ text: String) -> Bool {
        var tail = Substring(text)
        if let dash = text.lastIndex(of: "-") {
            tail = text[text.index(after: dash)...]
            let prefix = text[..<dash]
            guard !prefix.isEmpty, prefix.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
                return false
            }
        }
        let parts = tail.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0].count >= 9 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }
    }

    func row(_ record: CSVRecord) -> Result<CDRRow, CDRError> {
        let bad = { (reason: String) in
            Result<CDRRow, CDRError>.failure(
                CDRError(code: CDRError.badRow, file: path, reason: "the row at byte \(record.offset) (\(kind.title)) \(reason)"))
        }
        let names: [String]
        switch kind {
        case .asteriskMaster:
            guard let columns = Self.masterColumns(record.fields) else {
                return bad("has \(record.fields.count) columns; Master.csv rows have 16 to 21")
            }
            names = columns
        case .freepbxCDR, .fusionpbxCDR:
            let header = header ?? []
            guard record.fields.count == header.count else {
                return bad("has \(record.fields.count) columns; the header names \(header.count)")
            }
            names = header
        }
        var fields: [String: String] = [:]
        for (name, value) in zip(names, record.fields) where fields[name] == nil { fields[name] = value }
        var row = CDRRow(kind: kind, rowKey: rowKey(record.raw), disposition: "", fields: fields)
        let text = { (name: String) -> String? in
            guard let value = fields[name]?.trimmingBlanks, !value.isEmpty else { return nil }
            return value
        }
        let time = { (name: String) -> Result<CDRTime?, CDRError> in
            guard let value = text(name) else { return .success(nil) }
            guard let parsed = CDRTimeText.parse(value) else {
                return .failure(CDRError(code: CDRError.badRow, file: path,
                                         reason: "the row at byte \(record.offset) (\(kind.title)): \(name) \"\(value)\" is not a time (YYYY-MM-DD HH:MM:SS)"))
            }
            return .success(parsed)
        }
        let either = { (epoch: String, stamp: String) -> Result<CDRTime?, CDRError> in
            if let instant = text(epoch).flatMap(Self.epoch) { return .success(instant) }
            return time(stamp)
        }
        do throws(CDRError) {
            switch kind {
            case .asteriskMaster:
                row.uniqueid = text("uniqueid")
                row.linkedid = text("linkedid")
                row.source = text("src")
                row.destination = text("dst")
                let clid = CallerID(text("clid"))
                row.callerName = clid.name
                row.callerNumber = clid.number ?? row.source
                row.channel = text("channel")
                row.destinationChannel = text("dstchannel")
                row.lastApplication = text("lastapp")
                row.start = try time("start").get()
                row.answer = try time("answer").get()
                row.end = try time("end").get()
                row.disposition = text("disposition")?.uppercased() ?? ""
            case .freepbxCDR:
                row.uniqueid = text("uniqueid")
                row.linkedid = text("linkedid")
                row.recordingStem = text("recordingfile").map(Self.stem)
                row.source = text("src")
                row.destination = text("dst")
                row.did = text("did")
                let clid = CallerID(text("clid"))
                row.callerNumber = text("cnum") ?? clid.number ?? row.source
                row.callerName = text("cnam") ?? clid.name
                row.channel = text("channel")
                row.destinationChannel = text("dstchannel")
                row.lastApplication = text("lastapp")
                row.start = try time("calldate").get()
                row.disposition = text("disposition")?.uppercased() ?? ""
            case .fusionpbxCDR:
                row.uniqueid = text("xml_cdr_uuid")?.lowercased()
                row.recordingStem = text("record_name").map(Self.stem)
                row.source = text("caller_id_number")
                row.destination = text("destination_number")
                row.callerNumber = row.source
                row.callerName = text("caller_id_name")
                row.lastApplication = text("last_app")
                row.start = try either("start_epoch", "start_stamp").get()
                row.answer = try either("answer_epoch", "answer_stamp").get()
                row.end = try either("end_epoch", "end_stamp").get()
                row.direction = text("direction").flatMap(Self.fusionDirection)
            }
        } catch {
            return .failure(error)
        }
        row.duration = text("duration").flatMap { Int($0) }
        row.billsec = text("billsec").flatMap { Int($0) }
        if kind == .fusionpbxCDR {
            row.disposition = Self.fusionDisposition(cause: text("hangup_cause"), billsec: row.billsec, voicemail: text("voicemail_message"))
        }
        guard row.start != nil else { return bad("has no start time") }
        return .success(row)
    }

    /// SHA-256 (hex) of the kind and the row's text: the same row read twice has the same key.
    func rowKey(_ raw: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(data: Array(kind.rawValue.utf8) + [0])
        hasher.update(data: raw)
        return lowercaseHex(hasher.finalize())
    }

    /// `/x/2026/03/04/in-….wav` → `in-…` (a post script may have rewritten the extension).
    static func stem(_ file: String) -> String {
        let name = file.split(separator: "/").last.map(String.init) ?? file
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name }
        return String(name[..<dot])
    }

    static func epoch(_ text: String) -> CDRTime? {
        guard let seconds = Double(text), seconds > 0 else { return nil }
        return .instant(Date(timeIntervalSince1970: seconds))
    }

    static func fusionDirection(_ text: String) -> CallDirection? {
        switch text.lowercased() {
        case "inbound": .inbound
        case "outbound": .outbound
        case "local": .internal
        default: nil
        }
    }

    /// FreeSWITCH's hangup cause in Asterisk's vocabulary (plan §2.3).
    static func fusionDisposition(cause: String?, billsec: Int?, voicemail: String?) -> String {
        if let voicemail, ["true", "t", "1", "yes"].contains(voicemail.lowercased()) { return "VOICEMAIL" }
        let talked = (billsec ?? 0) > 0
        switch cause?.uppercased() ?? "" {
        case "", "NORMAL_CLEARING": return talked ? "ANSWERED" : "NO ANSWER"
        case "NO_ANSWER", "ORIGINATOR_CANCEL", "NO_USER_RESPONSE": return "NO ANSWER"
        case "USER_BUSY", "CALL_REJECTED": return "BUSY"
        default: return "FAILED"
        }
    }
}

extension CDRKind {
    var title: String {
        switch self {
        case .asteriskMaster: "Asterisk Master.csv"
        case .freepbxCDR: "FreePBX cdr export"
        case .fusionpbxCDR: "FusionPBX export"
        }
    }
}

/// Asterisk's `clid`: `"Doe, John" <2125550123>`, `<2125550123>`, `2125550123` or a name.
struct CallerID {
    var name: String?
    var number: String?

    init(_ text: String?) {
        guard let text else { return }
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            let number = text[text.index(after: open)..<close].trimmingCharacters(in: .whitespaces)
            self.number = number.isEmpty ? nil : number
            var name = text[..<open].trimmingCharacters(in: .whitespaces)
            if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
            self.name = name.isEmpty ? nil : name
        } else if text.allSatisfy({ $0.isASCIIDigit || "+*#".contains($0) }) {
            number = text
        } else {
            name = text
        }
    }
}

/// CDR time text: `YYYY-MM-DD HH:MM:SS` (or `T`), optional fraction, optional zone (`Z`, `+HH`,
/// `+HHMM`, `+HH:MM`). With a zone it is an instant; without, the PBX's local time.
enum CDRTimeText {
    static func parse(_ text: String) -> CDRTime? {
        let s = Substring(text.trimmingCharacters(in: .whitespaces))
        guard s.count >= 19 else { return nil }
        let date = s.prefix(10), sep = s.dropFirst(10).first, clock = s.dropFirst(11).prefix(8)
        guard sep == " " || sep == "T", date.dropFirst(4).first == "-", date.dropFirst(7).first == "-", clock.dropFirst(2).first == ":",
              clock.dropFirst(5).first == ":",
              let local = LocalDateTime(date: date.prefix(4) + date.dropFirst(5).prefix(2) + date.dropFirst(8),
                                        time: clock.prefix(2) + clock.dropFirst(3).prefix(2) + clock.dropFirst(6))
        else { return nil }
        var rest = s.dropFirst(19)
        var fraction = 0.0
        if rest.first == "." {
            let digits = rest.dropFirst().prefix { $0.isASCIIDigit }
            guard !digits.isEmpty else { return nil }
            fraction = Double("0." + digits) ?? 0
            rest = rest.dropFirst(1 + digits.count)
        }
        if rest.isEmpty { return .local(local) }
        var offset = 0
        if rest != "Z" {
            guard let sign = rest.first, sign == "+" || sign == "-" else { return nil }
            let zone = rest.dropFirst().filter { $0 != ":" }
            guard zone.count == 2 || zone.count == 4, let hours = Substring(zone.prefix(2)).digits(2) else { return nil }
            let minutes = zone.count == 4 ? Substring(zone.suffix(2)).digits(2) : 0
            guard let minutes else { return nil }
            offset = (hours * 3_600 + minutes * 60) * (sign == "-" ? -1 : 1)
        }
        return .instant(Date(timeIntervalSince1970: Double(local.naiveSeconds - offset) + fraction))
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (what `trimmingCharacters(in: .whitespaces)`
    /// removes: Unicode's space separators and the tab), without bridging to NSString.
    var trimmingBlanks: String {
        func space(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !space($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !space($0) })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}

import Foundation

enum SimLayout: String, CaseIterable {
    case freepbx
    case threeCX = "3cx"
    case fusionpbx
}

/// Local wall-clock times in the PBX's zone, as its file names and CDRs write them.
struct PBXClock {
    let calendar: Calendar

    init(timeZone: TimeZone) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        self.calendar = calendar
    }

    struct Local {
        var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
        static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

        func pad(_ v: Int, _ n: Int = 2) -> String { String(repeating: "0", count: max(0, n - String(v).count)) + String(v) }
        /// `YYYY-MM-DD HH:MM:SS` (CDR columns).
        var stamp: String { "\(pad(year, 4))-\(pad(month))-\(pad(day)) \(pad(hour)):\(pad(minute)):\(pad(second))" }
        var date8: String { "\(pad(year, 4))\(pad(month))\(pad(day))" }
        var time6: String { "\(pad(hour))\(pad(minute))\(pad(second))" }
        var monthName: String { Self.months[month - 1] }
    }

    func local(_ epoch: Int) -> Local {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(epoch)))
        return Local(year: c.year!, month: c.month!, day: c.day!, hour: c.hour!, minute: c.minute!, second: c.second!)
    }

    func offset(_ epoch: Int) -> Int { calendar.timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(epoch))) }
}

/// `2026-11-01T05:50:00Z` (manifest times; milliseconds when the time has them).
func isoUTC(_ date: Date, milliseconds: Bool = false) -> String {
    let style = Date.ISO8601FormatStyle(includingFractionalSeconds: milliseconds, timeZone: TimeZone(identifier: "UTC")!)
    return date.formatted(style)
}

/// One CSV field, quoted when it must be (RFC 4180).
func csvField(_ text: String) -> String {
    text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
}

/// A call's views in one layout: its recording's path and the CDR text it leaves.
struct Renderer {
    let layout: SimLayout
    let clock: PBXClock

    /// FusionPBX's `record_path` prefix (a fixed one, so two runs write the same bytes).
    static let fusionRecordings = "/var/lib/freeswitch/recordings/pbx.example.com"
    /// The ring group's number (FreePBX).
    static let ringGroup = "600"

    /// The CDR file a layout appends to (relative to the root), if it has one.
    var cdrFile: String? {
        switch layout {
        case .freepbx: "Master.csv"
        case .fusionpbx: "cdr.csv"
        case .threeCX: nil
        }
    }

    /// The first line of the CDR file (FusionPBX's export has a header; Master.csv has none).
    var cdrHeader: String? {
        layout == .fusionpbx
            ? "xml_cdr_uuid,domain_name,direction,caller_id_name,caller_id_number,destination_number,start_stamp,answer_stamp,end_stamp,"
                + "start_epoch,answer_epoch,end_epoch,duration,billsec,hangup_cause,record_path,record_name,missed_call,leg\n"
            : nil
    }

    /// Whether the call leaves a recording (3CX records nothing of a call nobody answered).
    func records(_ call: SimCall) -> Bool { call.answered || layout != .threeCX }

    /// The call id callrec derives: FreePBX uniqueid, 3CX `<ext>/<stamp>(<callid>)` (D5), FusionPBX uuid.
    func callID(_ call: SimCall) -> String {
        switch layout {
        case .freepbx: call.uniqueid
        case .threeCX: "\(call.agent)/\(clock.local(call.startEpoch).date8)\(clock.local(call.startEpoch).time6)(\(call.index + 1))"
        case .fusionpbx: call.uuid
        }
    }

    /// The caller's name, which only an inbound call carries in (its caller id name).
    func callerName(_ call: SimCall) -> String? { call.direction == .inbound ? call.callerName : nil }

    /// The calling and the called side, as the PBX writes them (3CX names the extension, not the DID).
    func sides(_ call: SimCall) -> (from: String, to: String) {
        switch call.direction {
        case .inbound: (call.other!.national, layout == .threeCX ? call.agent : call.company.national)
        case .outbound: (call.agent, call.other!.national)
        case .internal: (call.agent, call.otherExtension!)
        }
    }

    /// The recording's path relative to the root, with `ext` (`wav`, or `mp3` once converted).
    func path(_ call: SimCall, ext: String = "wav") -> String {
        let local = clock.local(call.startEpoch)
        let (from, to) = sides(call)
        switch layout {
        case .freepbx:
            // CALLFILENAME=${ARG2}-${ARG3}-${FROMEXTEN}-${TIMESTR}-${UNIQUEID} under YEAR/MONTH/DAY
            let head: String = switch call.direction {
            case .inbound: call.isRingGroup ? "rg-\(Self.ringGroup)-\(from)" : "in-\(to)-\(from)"
            case .outbound: "out-\(to)-\(from)"
            case .internal: "internal-\(to)-\(from)"
            }
            return "\(local.pad(local.year, 4))/\(local.pad(local.month))/\(local.pad(local.day))/\(head)-\(local.date8)-\(local.time6)-\(call.uniqueid).\(ext)"
        case .threeCX:
            // Recordings/<ext>/[<name>]_<from>-<to>_<YYYYMMDDHHMMSS>(<callid>).wav
            let name = callerName(call) ?? (call.direction == .inbound ? from : "")
            return "\(call.agent)/[\(name)]_\(from)-\(to)_\(local.date8)\(local.time6)(\(call.index + 1)).\(ext)"
        case .fusionpbx:
            return "archive/\(local.pad(local.year, 4))/\(local.monthName)/\(local.pad(local.day))/\(call.uuid).\(ext)"
        }
    }

    /// The CDR text appended at hangup (one or more lines), if the layout keeps a CDR.
    func cdrRows(_ call: SimCall) -> String? {
        switch layout {
        case .freepbx: masterRows(call)
        case .fusionpbx: fusionRow(call)
        case .threeCX: nil
        }
    }

    /// Asterisk cdr_csv with loguniqueid, loguserfield and newcdrcolumns: 21 columns, strings
    /// quoted, duration, billsec and sequence bare (asterisk/asterisk:cdr/cdr_csv.c).
    func masterRows(_ call: SimCall) -> String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
        let (from, to) = sides(call)
        let start = clock.local(call.startEpoch).stamp
        let channelID = String(format: "%08x", call.sequence)
        func row(src: String, dst: String, dcontext: String, clid: String, channel: String, dstchannel: String, lastdata: String,
                 answered: Bool, end: Int, uniqueid: String, sequence: Int) -> String {
            let fields: [String] = [
                q(""), q(src), q(dst), q(dcontext), q(clid), q(channel), q(dstchannel), q("Dial"), q(lastdata), q(start),
                q(answered ? clock.local(call.answerEpoch).stamp : ""), q(clock.local(end).stamp), String(end - call.startEpoch),
                String(answered ? end - call.answerEpoch : 0), q(answered ? "ANSWERED" : "NO ANSWER"), q("DOCUMENTATION"), q(uniqueid), q(""),
                q(""), q(call.uniqueid), String(sequence),
            ]
            return fields.joined(separator: ",") + "\n"
        }
        let name = callerName(call).map { "\"\($0)\" <\(from)>" } ?? "\"\(from)\" <\(from)>"
        switch call.direction {
        case .inbound:
            let context = call.isRingGroup ? "ext-group" : "from-trunk"
            let trunk = "PJSIP/trunk-\(channelID)"
            var text = ""
            for (k, member) in call.ringMembers.enumerated() {
                text += row(src: from, dst: to, dcontext: context, clid: name, channel: trunk,
                            dstchannel: "PJSIP/\(member)-\(String(format: "%08x", call.sequence + k + 1))",
                            lastdata: "PJSIP/\(member),,HhTtr", answered: false, end: call.answerEpoch, uniqueid: "\(call.startEpoch).\(call.sequence + k + 1)",
                            sequence: call.sequence + k + 1)
            }
            return text + row(src: from, dst: to, dcontext: context, clid: name, channel: trunk, dstchannel: "PJSIP/\(call.agent)-\(channelID)",
                              lastdata: "PJSIP/\(call.agent),,HhTtr", answered: call.answered, end: call.endEpoch, uniqueid: call.uniqueid,
                              sequence: call.sequence)
        case .outbound:
            return row(src: from, dst: to, dcontext: "from-internal", clid: "\"Ext \(from)\" <\(from)>", channel: "PJSIP/\(from)-\(channelID)",
                       dstchannel: "PJSIP/trunk-\(channelID)", lastdata: "PJSIP/\(to)@trunk,300,Tt", answered: call.answered, end: call.endEpoch,
                       uniqueid: call.uniqueid, sequence: call.sequence)
        case .internal:
            return row(src: from, dst: to, dcontext: "from-internal", clid: "\"Ext \(from)\" <\(from)>", channel: "PJSIP/\(from)-\(channelID)",
                       dstchannel: "PJSIP/\(to)-\(channelID)", lastdata: "PJSIP/\(to),,HhTtr", answered: call.answered, end: call.endEpoch,
                       uniqueid: call.uniqueid, sequence: call.sequence)
        }
    }

    /// FusionPBX's CDR export (`v_xml_cdr` columns): one row per call, the a-leg.
    func fusionRow(_ call: SimCall) -> String {
        let (from, to) = sides(call)
        let local = clock.local(call.startEpoch)
        let direction = switch call.direction {
        case .inbound: "inbound"
        case .outbound: "outbound"
        case .internal: "local"
        }
        let folder = "\(Self.fusionRecordings)/archive/\(local.pad(local.year, 4))/\(local.monthName)/\(local.pad(local.day))"
        let fields = [
            call.uuid, "pbx.example.com", direction, callerName(call) ?? "", from, to, local.stamp,
            call.answered ? clock.local(call.answerEpoch).stamp : "", clock.local(call.endEpoch).stamp, String(call.startEpoch),
            call.answered ? String(call.answerEpoch) : "0", String(call.endEpoch), String(call.endEpoch - call.startEpoch),
            String(call.answered ? call.talk : 0), call.answered ? "NORMAL_CLEARING" : "NO_ANSWER", folder, "\(call.uuid).wav",
            call.answered ? "false" : "true", "a",
        ]
        return fields.map(csvField).joined(separator: ",") + "\n"
    }

    /// FreePBX's `asteriskcdrdb.cdr` exported with a header (`--export-cdr`): what a WAV→MP3 post
    /// script rewrites (`recordingfile`).
    static let exportHeader = "calldate,clid,src,dst,dcontext,channel,dstchannel,lastapp,lastdata,duration,billsec,disposition,amaflags,"
        + "accountcode,uniqueid,userfield,did,recordingfile,cnum,cnam,outbound_cnum,outbound_cnam,dst_cnam,linkedid,peeraccount,sequence\n"

    func exportRow(_ call: SimCall, recordingFile: String) -> String {
        let (from, to) = sides(call)
        let inbound = call.direction == .inbound
        let fields = [
            clock.local(call.startEpoch).stamp, callerName(call).map { "\"\($0)\" <\(from)>" } ?? "\"\(from)\" <\(from)>", from, to,
            inbound ? "from-trunk" : "from-internal", inbound ? "PJSIP/trunk-\(String(format: "%08x", call.sequence))" : "PJSIP/\(from)",
            "PJSIP/\(inbound ? call.agent : to)", "Dial", "", String(call.endEpoch - call.startEpoch), String(call.answered ? call.talk : 0),
            call.answered ? "ANSWERED" : "NO ANSWER", "3", "", call.uniqueid, "", inbound ? call.company.national : "", recordingFile,
            inbound ? from : call.agent, callerName(call) ?? "", call.direction == .outbound ? call.company.national : "", "", "",
            call.uniqueid, "", String(call.sequence),
        ]
        return fields.map(csvField).joined(separator: ",") + "\n"
    }
}

import CallPhone
import Foundation

/// One recording's ``CallFacts`` from its leg (or its name alone): direction, the agent's
/// extension, the other party and the company's number (E.164 through libphonenumber), UTC times.
struct FactsBuilder {
    let name: NameFacts
    let settings: SourceSettings
    var warnings: [SourceWarning] = []

    init(name: NameFacts, settings: SourceSettings) {
        self.name = name
        self.settings = settings
    }

    mutating func fromCDR(_ leg: LegSelection) -> CallFacts? {
        let row = leg.row
        let caller = row.callerNumber ?? row.source
        let callerExtension = Self.channelExtension(row.channel, settings.extensions) ?? extensionOrNil(caller)
        let calleeExtension = Self.channelExtension(row.destinationChannel, settings.extensions) ?? extensionOrNil(row.destination)
        let direction = row.direction ?? direction(callerIsExtension: callerExtension != nil, calleeIsExtension: calleeExtension != nil)
        var facts: CallFacts
        switch direction {
        case .inbound:
            let company = row.did ?? [row.destination, name.kind?.lowercased() == "in" ? name.to : nil].compactMap { $0 }.first(where: isOutsideNumber)
            facts = makeFacts(direction, other: caller ?? name.from, otherField: "caller", company: company,
                              extension: calleeExtension ?? nameAgent(.inbound))
            facts.otherName = row.callerName.flatMap { $0 == caller ? nil : $0 } ?? name.displayName
        case .outbound:
            let outboundCallerID = row.fields["outbound_cnum"].flatMap { $0.isEmpty ? nil : $0 }
            let company = outboundCallerID ?? (row.kind == .fusionpbxCDR ? caller.flatMap { isOutsideNumber($0) ? $0 : nil } : nil)
            facts = makeFacts(direction, other: row.destination ?? name.to, otherField: "dst", company: company,
                              extension: callerExtension ?? nameAgent(.outbound))
            facts.otherName = row.fields["dst_cnam"].flatMap { $0.isEmpty ? nil : $0 } ?? name.displayName
        case .internal:
            facts = makeFacts(direction, other: calleeExtension ?? row.destination ?? name.to, otherField: "dst", company: nil,
                              extension: callerExtension ?? extensionOrNil(name.from))
            facts.otherExtension = calleeExtension ?? extensionOrNil(row.destination) ?? extensionOrNil(name.to)
        }
        guard let start = instant(row.start, anchor: name.anchor) else { return nil }
        let answerOffset = Double((row.duration ?? 0) - (row.billsec ?? 0))
        facts.start = start
        facts.end = instant(row.end, anchor: start + Double(row.duration ?? 0)) ?? row.duration.map { start + Double($0) }
        facts.answer = instant(row.answer, anchor: start + answerOffset)
        if facts.answer == nil, let end = facts.end, let billsec = row.billsec, billsec > 0 { facts.answer = end - Double(billsec) }
        facts.billsec = row.billsec
        facts.disposition = leg.disposition
        facts.fromCDR = true
        facts.warnings = warnings
        return facts
    }

    mutating func fromName(fileModified: Date?, audioSeconds: Double?) -> CallFacts? {
        let start: Date
        // A name without an instant of its own (3CX) is anchored by the file: it closed at the
        // call's end, so the call began about the audio's length before (this tells the repeated
        // hour of a DST change apart; the call's own length, once decoded, makes it exact).
        let anchor = name.anchor ?? fileModified.map { $0 - (audioSeconds ?? 0) }
        if let local = name.localStart, name.hasTimeOfDay, let date = instant(.local(local), anchor: anchor) {
            start = date
        } else if let fileModified {
            start = fileModified - (audioSeconds ?? 0)
        } else if let local = name.localStart, let date = instant(.local(local), anchor: nil) {
            start = date
        } else {
            return nil
        }
        let fromIsExtension = name.from.map { settings.extensions.contains($0) || $0 == name.extension } ?? false
        let toIsExtension = name.to.map { settings.extensions.contains($0) || $0 == name.extension } ?? false
        let direction = direction(callerIsExtension: fromIsExtension, calleeIsExtension: toIsExtension)
        var facts: CallFacts
        switch direction {
        case .inbound:
            let company = name.kind?.lowercased() == "in" ? name.to.flatMap { isOutsideNumber($0) ? $0 : nil } : nil
            facts = makeFacts(direction, other: name.from, otherField: "from", company: company, extension: nameAgent(.inbound))
        case .outbound:
            facts = makeFacts(direction, other: name.to, otherField: "to", company: nil, extension: nameAgent(.outbound))
        case .internal:
            facts = makeFacts(direction, other: name.to, otherField: "to", company: nil, extension: name.from ?? name.extension)
            facts.otherExtension = name.to
        }
        facts.otherName = name.displayName
        facts.start = start
        facts.end = audioSeconds.map { start + $0 }
        if !settings.cdrFiles.isEmpty {
            warnings.append(SourceWarning(SourceWarning.cdrMissing,
                                          "\(name.stem): no CDR row named this call within the wait; its facts come from the file name"))
        }
        facts.warnings = warnings
        return facts
    }

    /// Direction by the name's kind (`out`/`force`, `internal` and `in` say it), else by which
    /// side is an extension; a kind that suggests inbound (`rg`, `q`, `exten`) still yields to an
    /// extension calling.
    func direction(callerIsExtension: Bool, calleeIsExtension: Bool) -> CallDirection {
        switch name.directionHint {
        case .outbound?, .internal?: return name.directionHint!
        case .inbound? where name.kind?.lowercased() == "in": return .inbound
        default: break
        }
        switch (callerIsExtension, calleeIsExtension) {
        case (true, true): return .internal
        case (true, false): return .outbound
        case (false, true): return .inbound
        case (false, false): return name.directionHint ?? .inbound
        }
    }

    /// The agent's extension as the name says: 3CX's folder; FreePBX's `<to>` of a call to an
    /// extension (not of `in`/`rg`/`q`, whose `<to>` is a DID or a group) or the `<from>` of `out`.
    func nameAgent(_ direction: CallDirection) -> String? {
        if let folder = name.extension { return folder }
        switch direction {
        case .inbound: return ["in", "rg", "q"].contains(name.kind?.lowercased() ?? "") ? nil : extensionOrNil(name.to)
        case .outbound, .internal: return extensionOrNil(name.from)
        }
    }

    func extensionOrNil(_ number: String?) -> String? {
        number.flatMap { settings.extensions.contains($0) ? $0 : nil }
    }

    /// A number that may be the company's: not an extension, and at least 7 digits (not `s`).
    func isOutsideNumber(_ text: String) -> Bool {
        !settings.extensions.contains(text) && text.filter(\.isASCIIDigit).count >= 7
    }

    /// `PJSIP/101-0000002a`, `SIP/101-…`, `Local/101@from-queue-…;1` → `101` when it is an extension.
    static func channelExtension(_ channel: String?, _ extensions: ExtensionSet) -> String? {
        guard let channel, let slash = channel.firstIndex(of: "/"),
              ["PJSIP", "SIP", "IAX2", "DAHDI", "Local"].contains(String(channel[..<slash]))
        else { return nil }
        let peer = channel[channel.index(after: slash)...].prefix { !"-@;/".contains($0) }
        return extensions.contains(String(peer)) ? String(peer) : nil
    }

    mutating func makeFacts(_ direction: CallDirection, other: String?, otherField: String, company: String?, extension: String?) -> CallFacts {
        let otherNumber: PhoneNumber
        if direction == .internal {
            otherNumber = PhoneNumber(raw: other ?? "", e164: nil)
        } else {
            otherNumber = number(other, role: "the other party's number (\(otherField))")
        }
        let companyNumber = company.map { number($0, role: "the company's number") }
        return CallFacts(pbx: settings.pbx, callID: name.callID, direction: direction, other: otherNumber, company: companyNumber,
                         extension: `extension`, start: Date(timeIntervalSince1970: 0), disposition: "ANSWERED", fromCDR: false)
    }

    /// E.164 through libphonenumber; a number it cannot make valid is kept as written, with a warning.
    mutating func number(_ raw: String?, role: String) -> PhoneNumber {
        let number = PhoneNumbers.normalize(raw ?? "", region: settings.region)
        if !number.isValid {
            let shown = (raw ?? "").isEmpty ? "is missing" : "\"\(raw!)\" is not a valid number\(settings.region.map { " in \($0)" } ?? ""); kept as written"
            warnings.append(SourceWarning(SourceWarning.numberInvalid, "\(name.stem): \(role) \(shown)"))
        }
        return number
    }

    /// A CDR time as an instant: local times through the PBX's zone (the anchor tells a repeated hour apart).
    mutating func instant(_ time: CDRTime?, anchor: Date?) -> Date? {
        switch time {
        case .local(let local)?:
            let result = LocalTime.instant(local, in: settings.timeZone, anchor: anchor)
            if let warning = result.warning, !warnings.contains(warning) { warnings.append(warning) }
            return result.date
        case .instant(let date)?: return date
        case nil: return nil
        }
    }
}

import Foundation

/// FreePBX's callrecording module: `<kind>-<to>-<from>-YYYYMMDD-HHMMSS-<uniqueid>` under
/// `YYYY/MM/DD/` (`CALLFILENAME=${ARG2}-${ARG3}-${FROMEXTEN}-${TIMESTR}-${UNIQUEID}`).
enum FreePBXName {
    static func parse(stem: String) -> NameFacts? {
        // Anchor on the rightmost `-YYYYMMDD-HHMMSS-`: what follows is the uniqueid (`<epoch>.<seq>`,
        // maybe behind a `systemname-` prefix that may itself hold dashes), never split.
        let chars = Array(stem)
        var index = chars.count - 17
        while index >= 0 {
            if chars[index] == "-", chars[index + 9] == "-", chars[index + 16] == "-",
               let local = LocalDateTime(date: Substring(String(chars[(index + 1)..<(index + 9)])),
                                         time: Substring(String(chars[(index + 10)..<(index + 16)])))
            {
                let uniqueid = String(chars[(index + 17)...])
                guard !uniqueid.isEmpty, !uniqueid.contains(where: { $0 == "/" || $0.isWhitespace }) else { return nil }
                return facts(prefix: String(chars[..<index]), local: local, uniqueid: uniqueid, stem: stem)
            }
            index -= 1
        }
        return nil
    }

    private static func facts(prefix: String, local: LocalDateTime, uniqueid: String, stem: String) -> NameFacts {
        // `<kind>-<to>-<from>`: kind up to the first dash, from after the last; parts may be empty.
        var kind: String?, to: String?, from: String?
        if let first = prefix.firstIndex(of: "-") {
            kind = String(prefix[..<first])
            let rest = prefix[prefix.index(after: first)...]
            if let last = rest.lastIndex(of: "-") {
                to = String(rest[..<last])
                from = String(rest[rest.index(after: last)...])
            } else {
                to = String(rest)
            }
        } else {
            kind = prefix
        }
        let nonEmpty = { (s: String?) in s.flatMap { $0.isEmpty ? nil : $0 } }
        kind = nonEmpty(kind)
        return NameFacts(callID: uniqueid, kind: kind, from: nonEmpty(from), to: nonEmpty(to), localStart: local, hasTimeOfDay: true,
                         anchor: anchor(uniqueid: uniqueid, local: local), directionHint: kind.flatMap(hint), stem: stem)
    }

    /// Direction by the recording kind: `in` (and the inbound kinds `rg`, `q`, `exten`,
    /// `external`, which the CDR may still show internal), `out`/`force`, `internal`.
    static func hint(kind: String) -> CallDirection? {
        switch kind.lowercased() {
        case "in", "rg", "q", "exten", "external": .inbound
        case "out", "force": .outbound
        case "internal": .internal
        default: nil
        }
    }

    /// The uniqueid's epoch (`[systemname-]<epoch>.<seq>`) when it lies within a day of the
    /// name's local time (a uniqueid made some other way is no anchor).
    static func anchor(uniqueid: String, local: LocalDateTime) -> Date? {
        let tail = uniqueid.split(separator: "-").last ?? ""
        let parts = tail.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count >= 9, parts[0].count <= 11, parts[0].allSatisfy(\.isASCIIDigit), !parts[1].isEmpty,
              parts[1].allSatisfy(\.isASCIIDigit), let epoch = Int(parts[0]), abs(epoch - local.naiveSeconds) <= 86_400
        else { return nil }
        return Date(timeIntervalSince1970: Double(epoch))
    }
}

/// 3CX v16/v18: `[Recordings/]<ext>/[<name>]_<from>-<to>_<YYYYMMDDHHMMSS>(<callid>)`, read from the
/// right (names hold spaces, brackets, parentheses and any script).
enum ThreeCXName {
    static func parse(stem: String, folders: [String]) -> NameFacts? {
        guard stem.hasPrefix("["), stem.hasSuffix(")"), let open = stem.lastIndex(of: "(") else { return nil }
        let callid = stem[stem.index(after: open)..<stem.index(before: stem.endIndex)]
        guard !callid.isEmpty, callid.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        let beforeCallid = stem[..<open]
        guard beforeCallid.count > 15, beforeCallid.dropLast(14).last == "_" else { return nil }
        let stamp = beforeCallid.suffix(14)
        guard let local = LocalDateTime(date: stamp.prefix(8), time: stamp.suffix(6)) else { return nil }
        // `[<name>]_<from>-<to>`: the last `]_` starts the numbers; `from` has no dash.
        let head = beforeCallid.dropLast(15)
        guard let close = head.ranges(of: "]_").last else { return nil }
        let numbers = head[close.upperBound...]
        guard let dash = numbers.firstIndex(of: "-") else { return nil }
        let from = String(numbers[..<dash]), to = String(numbers[numbers.index(after: dash)...])
        let name = String(head[head.index(after: head.startIndex)..<close.lowerBound])
        let ext = folders.last
        let callID = (ext.map { "\($0)/" } ?? "") + "\(stamp)(\(callid))"
        return NameFacts(callID: callID, from: from.isEmpty ? nil : from, to: to.isEmpty ? nil : to, localStart: local, hasTimeOfDay: true,
                         extension: ext, displayName: name.isEmpty ? nil : name, stem: stem)
    }
}

/// FusionPBX: `[<domain>/]archive/YYYY/Mon/DD/<uuid>` (`%b`, the C locale's month abbreviation, in
/// any case); the name carries only the call's uuid, the folders its day.
enum FusionPBXName {
    static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    static func parse(stem: String, folders: [String]) -> NameFacts? {
        guard folders.count >= 4, folders[folders.count - 4] == "archive", let year = Substring(folders[folders.count - 3]).digits(4),
              let month = months.firstIndex(of: folders[folders.count - 2].lowercased()),
              let day = Substring(folders[folders.count - 1]).digits(2),
              let local = LocalDateTime(checkedYear: year, month: month + 1, day: day), isUUID(stem)
        else { return nil }
        return NameFacts(callID: stem.lowercased(), localStart: local, hasTimeOfDay: false, stem: stem)
    }

    /// 8-4-4-4-12 hexadecimal digits.
    static func isUUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { $0.allSatisfy(\.isHexDigit) }
    }
}

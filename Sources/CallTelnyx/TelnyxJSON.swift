import Foundation

/// The few JSON reads the Telnyx events need: one `JSONSerialization` pass over a body (it runs
/// for every webhook: no Codable round trip over the whole body), and typed looks into its values.
enum TelnyxJSON {
    /// The JSON value of `bytes`, or nil when they are not JSON.
    static func object(_ bytes: some Collection<UInt8>) -> Any? {
        let data = bytes as? Data ?? Data(bytes)
        return try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// The text of the top-level object's `key` member as it stands in `data` (the last, if the
    /// key repeats, as JSONSerialization reads it), or nil. `data` must be valid JSON (it is read
    /// with JSONSerialization first): this only finds where the member's value starts and ends.
    static func member(_ key: String, of data: Data) -> String? {
        data.withUnsafeBytes { raw -> String? in
            let bytes = raw.bindMemory(to: UInt8.self)
            var scanner = SpanScanner(bytes: bytes)
            guard let range = scanner.member(Array(key.utf8)) else { return nil }
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }
    }

    /// `object` as JSON text again: sorted keys, slashes unescaped (what the ledger stores).
    static func text(_ object: [String: Any]) -> String? {
        guard JSONSerialization.isValidJSONObject(object),
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// A non-empty string value, else nil.
    static func string(_ value: Any?) -> String? {
        guard let text = value as? String, !text.isEmpty else { return nil }
        return text
    }

    /// A Telnyx time value, else nil.
    static func time(_ value: Any?) -> Date? {
        string(value).flatMap(TelnyxTime.parse)
    }

    /// `{"mp3": "https://…", "wav": …}`: the formats with a link.
    static func links(_ value: Any?) -> [String: String] {
        guard let object = value as? [String: Any] else { return [:] }
        var links: [String: String] = [:]
        for (format, link) in object {
            if let link = string(link) { links[format] = link }
        }
        return links
    }
}

/// Finds where values start and end in valid JSON text, without building them.
private struct SpanScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var at = 0

    mutating func member(_ key: [UInt8]) -> Range<Int>? {
        skipSpace()
        guard peek == UInt8(ascii: "{") else { return nil }
        at += 1
        var found: Range<Int>?
        while true {
            skipSpace()
            if peek == UInt8(ascii: "}") { return found }
            guard let name = string() else { return nil }
            skipSpace()
            guard peek == UInt8(ascii: ":") else { return nil }
            at += 1
            skipSpace()
            let start = at
            guard value() else { return nil }
            // A key written with escapes (`"d\u0061ta"`) may be `key` too, and JSONSerialization
            // keeps the last of equal keys: with one anywhere, which member it read is unknown, so
            // none is returned (the caller writes the object it read again).
            if bytes[name].contains(UInt8(ascii: "\\")) { return nil }
            if bytes[name].elementsEqual(key) { found = start..<at }
            skipSpace()
            if peek == UInt8(ascii: ",") { at += 1 } else { return peek == UInt8(ascii: "}") ? found : nil }
        }
    }

    var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { at += 1 }
    }

    /// A string's contents (between the quotes); `at` after the closing quote.
    mutating func string() -> Range<Int>? {
        guard peek == UInt8(ascii: "\"") else { return nil }
        at += 1
        let start = at
        while let byte = peek {
            if byte == UInt8(ascii: "\\") {
                at += 2
            } else if byte == UInt8(ascii: "\"") {
                at += 1
                return start..<(at - 1)
            } else {
                at += 1
            }
        }
        return nil
    }

    /// Skips one member value: up to the `,` or `}` (or white space) that follows it at its
    /// own depth (strings may hold brackets).
    mutating func value() -> Bool {
        var depth = 0
        while let byte = peek {
            switch byte {
            case UInt8(ascii: "\""):
                guard string() != nil else { return false }
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                at += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 { return true }
                depth -= 1
                at += 1
            case UInt8(ascii: ","), 0x20, 0x0A, 0x0D, 0x09:
                if depth == 0 { return true }
                at += 1
            default:
                at += 1
            }
        }
        return false
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM|±HH)` without a formatter (a webhook's
/// times are read 2,000 times a second; `ISO8601DateFormatter` is slow to make and not Sendable).
enum ISO8601Fast {
    static func parse(_ text: String) -> Date? {
        var utf8 = Array(text.utf8)[...]
        func number(_ count: Int) -> Int? {
            guard utf8.count >= count else { return nil }
            var value = 0
            for byte in utf8.prefix(count) {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            utf8 = utf8.dropFirst(count)
            return value
        }
        func skip(_ byte: UInt8) -> Bool {
            guard utf8.first == byte else { return false }
            utf8 = utf8.dropFirst()
            return true
        }
        guard let year = number(4), skip(0x2D), let month = number(2), skip(0x2D), let day = number(2),
              skip(0x54) || skip(0x74) || skip(0x20),
              let hour = number(2), skip(0x3A), let minute = number(2), skip(0x3A), let second = number(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var fraction = 0.0
        if skip(0x2E) || skip(0x2C) {
            var scale = 0.1, digits = 0
            while let byte = utf8.first, byte >= 0x30, byte <= 0x39 {
                fraction += Double(byte - 0x30) * scale
                scale /= 10
                digits += 1
                utf8 = utf8.dropFirst()
            }
            guard digits > 0 else { return nil }
        }
        var offset = 0
        if skip(0x5A) || skip(0x7A) {
            offset = 0
        } else if let sign = utf8.first, sign == 0x2B || sign == 0x2D {
            utf8 = utf8.dropFirst()
            guard let hours = number(2) else { return nil }
            let colon = skip(0x3A)
            let minutes = utf8.isEmpty && !colon ? 0 : number(2)
            guard let minutes, hours < 24, minutes < 60 else { return nil }
            offset = (sign == 0x2B ? 1 : -1) * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard utf8.isEmpty else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

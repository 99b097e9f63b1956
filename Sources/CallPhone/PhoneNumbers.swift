internal import CCallPhoneNumber
import Foundation

/// A phone number as a PBX or a CRM wrote it, read through libphonenumber.
public struct PhoneNumber: Sendable, Hashable, Codable {
    /// What the source wrote, unchanged.
    public var raw: String
    /// The E.164 form (`+12125550123`) when libphonenumber calls the number valid; nil otherwise.
    public var e164: String?
    /// E.164 of a number that parsed but is not valid (a fictional range, a dial prefix left on,
    /// a range allocated after the metadata): kept for display and matching, never trusted.
    public var parsed: String?

    public init(raw: String, e164: String?, parsed: String? = nil) {
        self.raw = raw
        self.e164 = e164
        self.parsed = parsed
    }

    /// E.164 when valid, else what the source wrote.
    public var best: String { e164 ?? raw }
    public var isValid: Bool { e164 != nil }
}

/// Phone numbers to E.164 by libphonenumber's rules and metadata (Debian's libphonenumber-dev):
/// never by hand-written numbering rules.
public enum PhoneNumbers {
    /// Reads `raw` (national, international, `00`/`011` prefixes, separators, `tel:`/`sip:`
    /// wrappers, `"Name" <number>`) with `region` (ISO 3166 alpha-2) for numbers without a
    /// country code.
    public static func normalize(_ raw: String, region: String?) -> PhoneNumber {
        let text = unwrap(raw)
        guard !text.isEmpty else { return PhoneNumber(raw: raw, e164: nil) }
        var buffer = [CChar](repeating: 0, count: 64)
        var valid: Int32 = 0, possible: Int32 = 0
        let result = ccall_phone_e164(text, region ?? "", &buffer, buffer.count, &valid, &possible)
        guard result == 0 else { return PhoneNumber(raw: raw, e164: nil) }
        let e164 = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return valid == 1 ? PhoneNumber(raw: raw, e164: e164) : PhoneNumber(raw: raw, e164: nil, parsed: e164)
    }

    /// The international format for people (`+1 212-555-0123`), or nil when it does not parse.
    public static func international(_ raw: String, region: String?) -> String? {
        var buffer = [CChar](repeating: 0, count: 96)
        guard ccall_phone_international(unwrap(raw), region ?? "", &buffer, buffer.count) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether libphonenumber knows this ISO 3166 alpha-2 region (`US`, `DE`; upper case).
    public static func isKnownRegion(_ code: String) -> Bool {
        ccall_phone_region_known(code) == 1
    }

    /// The number inside the wrappers PBXs put around it: `"Doe, John" <5551234>`, `<sip:…@host>`,
    /// `tel:`, `sip:user@host`.
    static func unwrap(_ raw: String) -> String {
        var text = Substring(raw.trimmingCharacters(in: .whitespaces))
        if let open = text.lastIndex(of: "<"), let close = text.lastIndex(of: ">"), open < close {
            text = text[text.index(after: open)..<close]
        }
        for scheme in ["tel:", "sip:", "sips:"] where text.lowercased().hasPrefix(scheme) {
            text = text.dropFirst(scheme.count)
        }
        if let at = text.firstIndex(of: "@") { text = text[..<at] }
        if let semicolon = text.firstIndex(of: ";") { text = text[..<semicolon] }
        return String(text).trimmingCharacters(in: .whitespaces)
    }
}

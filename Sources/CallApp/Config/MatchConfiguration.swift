public import CallMatch
import CallPhone
public import CallPipeline
import Foundation

/// The matching settings from the `--config` file's `matching` section and `company_numbers`
/// list, with the flags over them. Every value is checked here (exit 2 naming the key path):
///
/// - `company_numbers`: the company's own numbers (a list of strings), each read by
///   libphonenumber with the region and kept in E.164; the numbers of `telnyx.users` are the
///   company's too;
/// - `matching.region` (default: `defaults.region`): the region numbers without a country code
///   are read in, for the index and for the calls' numbers;
/// - `matching.link`: `none`, `person` or `deal` (default);
/// - `matching.unknown_numbers`: `leave` (default) or `create_person`;
/// - `matching.refresh` (15m), `matching.miss_refresh` (1m), `matching.full_pass` (24h): positive ages;
/// - `matching.leads` (true): whether leads are indexed and linked;
/// - `matching.organization_phone_field`: the key of an organization custom field holding a phone.
public enum MatchConfiguration {
    /// The settings from `file` (a JSON config; without one, or a KEY=VALUE file, the defaults),
    /// then `link` and `region` (the flags) over them.
    public static func resolve(config file: String?, link: String? = nil, region: String? = nil) throws -> MatchSettings {
        var settings = try file.flatMap { ConfigFile.isJSON($0) ? $0 : nil }.map { try ConfigFile.load($0).matchSettings() } ?? MatchSettings()
        if let link { settings.link = try self.link(link, "--link") }
        if let region { settings.region = try SourceMerge.region(region, "--region") }
        return settings
    }

    static func link(_ text: String, _ name: String) throws -> MatchSettings.Link {
        guard let link = MatchSettings.Link(rawValue: text) else {
            throw AppError(.usage, "\(name) \(text): not one of \(MatchSettings.Link.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return link
    }

    /// The settings from the section (nil: none); `origin` names a key in errors.
    static func settings(_ section: MatchingSection?, companyNumbers: [String], telnyxNumbers: [String: Int], defaultRegion: String?,
                         origin: (String) -> String) throws -> MatchSettings {
        var settings = MatchSettings()
        settings.region = try section?.region.map { try SourceMerge.region($0, origin("matching.region")) } ?? defaultRegion
        if let text = section?.link { settings.link = try link(text, origin("matching.link")) }
        if let text = section?.unknownNumbers {
            guard let policy = MatchSettings.UnknownNumberPolicy(rawValue: text) else {
                throw AppError(.usage, "\(origin("matching.unknown_numbers")) \(text): not one of \(MatchSettings.UnknownNumberPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.unknownNumbers = policy
        }
        if let text = section?.refresh?.text { settings.refresh = try SourceMerge.age(text, origin("matching.refresh"), positive: true) }
        if let text = section?.missRefresh?.text { settings.missRefresh = try SourceMerge.age(text, origin("matching.miss_refresh"), positive: true) }
        if let text = section?.fullPass?.text { settings.fullPass = try SourceMerge.age(text, origin("matching.full_pass"), positive: true) }
        if let leads = section?.leads { settings.leads = leads }
        if let field = section?.organizationPhoneField {
            guard !field.isEmpty, !field.contains(where: \.isWhitespace) else {
                throw AppError(.usage, "\(origin("matching.organization_phone_field")) '\(field)': not a custom field's key (Pipedrive's key of the field, such as 5d8a1f…, without blanks)")
            }
            settings.organizationPhoneField = field
        }
        for (index, raw) in companyNumbers.enumerated() {
            guard let e164 = PhoneNumbers.normalize(raw, region: settings.region).e164 else {
                let hint = settings.region == nil ? ", or set matching.region (or defaults.region)" : ""
                throw AppError(.usage, "\(origin("company_numbers[\(index)]")) \(raw): not a phone number libphonenumber calls valid (write it in E.164, such as +12125550123\(hint))")
            }
            settings.companyNumbers.insert(e164)
        }
        settings.companyNumbers.formUnion(telnyxNumbers.keys)
        return settings
    }
}

extension ConfigFile {
    /// The `matching` section's and `company_numbers`' settings.
    public func matchSettings() throws -> MatchSettings {
        let defaultRegion = try document.defaults?.region.map { try SourceMerge.region($0, origin("defaults.region")) }
        let telnyx: [String: Int] = try document.telnyx.map { section in
            let region = try section.fields.region.map { try SourceMerge.region($0, origin("telnyx.region")) }
            return try TelnyxConfiguration.users(section.users ?? [:], region: region) { origin("telnyx.\($0)") }
        } ?? [:]
        return try MatchConfiguration.settings(document.matching, companyNumbers: document.companyNumbers ?? [], telnyxNumbers: telnyx,
                                               defaultRegion: defaultRegion, origin: origin)
    }
}

/// `matching`: how calls link persons, organizations, deals and leads; read by ``MatchConfiguration``.
struct MatchingSection: ConfigSection {
    var region: String?
    var link: String?
    var unknownNumbers: String?
    var refresh: Text?
    var missRefresh: Text?
    var fullPass: Text?
    var leads: Bool?
    var organizationPhoneField: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case region, link, unknownNumbers = "unknown_numbers", refresh, missRefresh = "miss_refresh", fullPass = "full_pass", leads
        case organizationPhoneField = "organization_phone_field"
    }
    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
}

extension MatchSettings {
    /// What the index refresh reads of these settings.
    public var indexSettings: CRMIndexSettings {
        CRMIndexSettings(region: region, refresh: refresh, missRefresh: missRefresh, fullPass: fullPass, leads: leads,
                         organizationPhoneField: organizationPhoneField)
    }
}

/// Which calls become call logs (R9): external answered calls always; internal and missed calls
/// only when `--log` lists their kind. Everything else is reported with its reason.
public enum CallPolicy {
    /// Why a call of this direction and disposition is not logged under `log`, or nil when it is.
    /// An internal missed call needs both kinds.
    public static func skipReason(direction: CallDirection, disposition: String, log: Set<LoggedKind>) -> SkipReason? {
        if direction == .internal, !log.contains(.internal) { return .internalCall }
        if disposition.uppercased() != "ANSWERED", !log.contains(.missed) { return .missedCall }
        return nil
    }

    /// Parses `--log internal,missed` (`none` or empty: nothing more); `source` names the flag or key.
    public static func parseLog(_ items: [String], source: String) throws -> Set<LoggedKind> {
        var kinds: Set<LoggedKind> = []
        for item in items.flatMap({ $0.split(separator: ",").map { String($0).trimmingSpaces.lowercased() } }) where !item.isEmpty && item != "none" {
            guard let kind = LoggedKind(rawValue: item) else {
                throw PolicyError(message: "\(source) \(items.joined(separator: ",")): \(item) is not a call kind (internal, missed or none)")
            }
            kinds.insert(kind)
        }
        return kinds
    }
}

public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

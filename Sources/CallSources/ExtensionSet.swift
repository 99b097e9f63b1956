/// The company's internal numbers (`--extensions 100-199,2000-2099`): what tells an extension
/// from an outside number. The default takes every number of 2 to 5 digits.
public struct ExtensionSet: Sendable, Hashable, CustomStringConvertible {
    public struct Range: Sendable, Hashable {
        public var low: Int
        public var high: Int
        /// The digit count of the range's numbers (`0100-0199` keeps its leading zero).
        public var digits: Int
    }

    /// nil: the default (2 to 5 digits).
    public let ranges: [Range]?

    public static let `default` = ExtensionSet(ranges: nil)

    init(ranges: [Range]?) {
        self.ranges = ranges
    }

    /// Parses `100-199,2000-2099,500`; the error names the bad piece.
    public static func parse(_ spec: String) throws(ExtensionSetError) -> ExtensionSet {
        var ranges: [Range] = []
        for piece in spec.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = piece.split(separator: "-", omittingEmptySubsequences: false).map { String($0).trimmingSpaces }
            guard (1...2).contains(bounds.count), bounds.allSatisfy({ !$0.isEmpty && $0.count <= 9 && $0.allSatisfy(\.isASCIIDigit) }),
                  let low = Int(bounds[0]), let high = Int(bounds.last!)
            else { throw ExtensionSetError(spec: spec, piece: String(piece), reason: "is not a number or a range of numbers (100-199)") }
            guard low <= high else { throw ExtensionSetError(spec: spec, piece: String(piece), reason: "ends before it starts") }
            guard bounds[0].count == bounds.last!.count else {
                throw ExtensionSetError(spec: spec, piece: String(piece), reason: "has ends of different lengths")
            }
            ranges.append(Range(low: low, high: high, digits: bounds[0].count))
        }
        guard !ranges.isEmpty else { throw ExtensionSetError(spec: spec, piece: spec, reason: "is empty") }
        return ExtensionSet(ranges: ranges)
    }

    /// Whether `number` (digits as written, nothing else) is an extension.
    public func contains(_ number: String) -> Bool {
        guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit) else { return false }
        guard let ranges else { return (2...5).contains(number.count) }
        guard let value = Int(number) else { return false }
        return ranges.contains { $0.digits == number.count && $0.low <= value && value <= $0.high }
    }

    public var description: String {
        guard let ranges else { return "2-5 digits" }
        return ranges.map { r in
            let pad = { (v: Int) in String(repeating: "0", count: max(0, r.digits - String(v).count)) + String(v) }
            return r.low == r.high ? pad(r.low) : "\(pad(r.low))-\(pad(r.high))"
        }.joined(separator: ",")
    }
}

public struct ExtensionSetError: Error, Sendable, CustomStringConvertible {
    public var spec: String
    public var piece: String
    public var reason: String
    public var description: String { "--extensions \(spec): \(piece) \(reason)" }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

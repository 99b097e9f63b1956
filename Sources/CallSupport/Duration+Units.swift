import Foundation

extension Duration {
    /// This duration in seconds, as a Double.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }

    /// Whole milliseconds (rounded down), as the stores keep them.
    public var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// `250 ms`, `2.5 s`: as messages show a wait or an age.
    public var shown: String {
        self < .seconds(1) ? "\(milliseconds) ms" : String(format: "%.1f s", seconds)
    }
}

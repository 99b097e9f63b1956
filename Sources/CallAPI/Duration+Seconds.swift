extension Duration {
    /// The duration in seconds (internal: CallStore exports the same for the modules above).
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

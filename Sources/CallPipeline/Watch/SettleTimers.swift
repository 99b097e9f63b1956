/// When each file a watcher heard of is due to be taken (decision D1): a file closed after
/// writing is due `settle` after its close, and any further event on it starts its wait again; a
/// file renamed into the tree (written elsewhere, then moved in whole) is due at once. Pure
/// bookkeeping on instants of the clock the watcher is given.
struct SettleTimers<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    let settle: Duration
    private(set) var deadlines: [String: Instant] = [:]

    init(settle: Duration) {
        self.settle = max(.zero, settle)
    }

    /// The file was closed after writing (`IN_CLOSE_WRITE`).
    mutating func closed(_ path: String, at now: Instant) {
        deadlines[path] = now.advanced(by: settle)
    }

    /// The file was renamed into the tree (`IN_MOVED_TO`).
    mutating func movedIn(_ path: String, at now: Instant) {
        deadlines[path] = now
    }

    /// Another event on a file that waits: its wait starts again.
    mutating func touched(_ path: String, at now: Instant) {
        if deadlines[path] != nil { deadlines[path] = now.advanced(by: settle) }
    }

    /// Try the file again at `instant` (it was not settled yet when taken).
    mutating func retry(_ path: String, at instant: Instant) {
        deadlines[path] = instant
    }

    /// The earliest deadline, nil when nothing waits.
    var next: Instant? { deadlines.values.min() }

    var isEmpty: Bool { deadlines.isEmpty }

    /// Removes and returns the files due at `now`, earliest first.
    mutating func due(at now: Instant) -> [String] {
        let due = deadlines.filter { $0.value <= now }.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.map(\.key)
        for path in due { deadlines[path] = nil }
        return due
    }
}

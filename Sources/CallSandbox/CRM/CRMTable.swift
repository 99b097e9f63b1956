import Foundation
import HTTPTypes

/// A `GET /api/v2/…` listing's parameters, checked.
struct CRMListing: Sendable, Equatable {
    enum Sort: String, Sendable { case id, updateTime = "update_time" }
    enum Direction: String, Sendable { case asc, desc }

    var sort = Sort.id
    var direction = Direction.asc
    var limit = 100
    /// Where the previous page ended (``CRMCursor``).
    var after: CRMKey?
    /// `update_time >= since`.
    var since: CRMTime?
    /// `update_time < until`.
    var until: CRMTime?

    static let maximumLimit = 500

    /// Reads `limit`, `cursor`, `sort_by`, `sort_direction`, `updated_since`, `updated_until`.
    /// - Throws: 400 naming the parameter.
    static func parse(_ query: [String: String]) throws(APIError) -> CRMListing {
        var listing = CRMListing()
        if let text = query["sort_by"] {
            guard let sort = Sort(rawValue: text) else { throw bad("\"sort_by\" must be one of [id, update_time].") }
            listing.sort = sort
        }
        if let text = query["sort_direction"] {
            guard let direction = Direction(rawValue: text) else { throw bad("\"sort_direction\" must be one of [asc, desc].") }
            listing.direction = direction
        }
        if let text = query["limit"] {
            guard let limit = Int(text), (1...maximumLimit).contains(limit) else {
                throw bad("\"limit\" must be an integer from 1 to \(maximumLimit).")
            }
            listing.limit = limit
        }
        for (name, keyPath) in [("updated_since", \CRMListing.since), ("updated_until", \CRMListing.until)] {
            if let text = query[name] {
                guard let time = CRMTime.parse(text) else { throw bad("\"\(name)\" must be an RFC 3339 date-time such as 2026-12-07T10:00:00Z.") }
                listing[keyPath: keyPath] = time
            }
        }
        if let text = query["cursor"], !text.isEmpty {
            guard let cursor = CRMCursor(text), cursor.sort == listing.sort, cursor.direction == listing.direction else {
                throw bad("\"cursor\" is not valid for this listing (its sort_by and sort_direction must stay the same).")
            }
            listing.after = cursor.key
        }
        return listing
    }

    func key(id: Int, time: CRMTime?) -> CRMKey {
        sort == .id ? CRMKey(first: Int64(id), second: 0) : CRMKey(first: time?.seconds ?? 0, second: id)
    }

    func contains(_ time: CRMTime?) -> Bool {
        let time = time ?? CRMTime(seconds: 0)
        return (since.map { time >= $0 } ?? true) && (until.map { time < $0 } ?? true)
    }

    private static func bad(_ message: String) -> APIError { APIError(.badRequest, message) }
}

/// A position in a sorted listing: `(id, 0)` by id, `(update time, id)` by update time.
struct CRMKey: Comparable, Hashable, Sendable {
    var first: Int64
    var second: Int

    static func < (a: CRMKey, b: CRMKey) -> Bool { a.first != b.first ? a.first < b.first : a.second < b.second }
}

/// The opaque `cursor`: the sort, the direction and the last key served, base64url.
struct CRMCursor: Equatable {
    var sort: CRMListing.Sort
    var direction: CRMListing.Direction
    var key: CRMKey

    init(sort: CRMListing.Sort, direction: CRMListing.Direction, key: CRMKey) {
        self.sort = sort
        self.direction = direction
        self.key = key
    }

    init?(_ text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: ":").map(String.init)
        guard parts.count == 5, parts[0] == "c1", let sort = CRMListing.Sort(rawValue: parts[1]),
              let direction = CRMListing.Direction(rawValue: parts[2]), let first = Int64(parts[3]), let second = Int(parts[4])
        else { return nil }
        self.init(sort: sort, direction: direction, key: CRMKey(first: first, second: second))
    }

    var text: String {
        Data("c1:\(sort.rawValue):\(direction.rawValue):\(key.first):\(key.second)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

/// Rows by id, with two sorted indexes (by id; by update time then id), so a page is found by
/// binary search and reads only the rows it serves (plus the ones its filter skips): a 50,000-row
/// table pages in constant time per row served.
struct CRMTable<Row: CRMRow>: Sendable {
    private(set) var rows: [Int: Row] = [:]
    private var byId: [CRMKey] = []
    private var byUpdate: [CRMKey] = []

    var count: Int { rows.count }
    var isEmpty: Bool { rows.isEmpty }
    /// The rows in id order.
    var ordered: [Row] { byId.map { rows[Int($0.first)]! } }
    var maximumId: Int { byId.last.map { Int($0.first) } ?? 0 }

    subscript(id: Int) -> Row? { rows[id] }

    /// Adds or replaces rows; a large batch rebuilds the indexes once instead of moving them per row.
    mutating func upsert(_ batch: [Row]) {
        guard batch.count > 64 else {
            for row in batch { upsert(row) }
            return
        }
        for row in batch { rows[row.id] = row }
        byId = rows.keys.map { CRMKey(first: Int64($0), second: 0) }.sorted()
        byUpdate = rows.values.map(Self.updateKey).sorted()
    }

    mutating func upsert(_ row: Row) {
        if let old = rows[row.id] {
            Self.remove(Self.updateKey(old), from: &byUpdate)
        } else {
            Self.insert(CRMKey(first: Int64(row.id), second: 0), into: &byId)
        }
        rows[row.id] = row
        Self.insert(Self.updateKey(row), into: &byUpdate)
    }

    @discardableResult
    mutating func remove(_ id: Int) -> Row? {
        guard let old = rows.removeValue(forKey: id) else { return nil }
        Self.remove(CRMKey(first: Int64(id), second: 0), from: &byId)
        Self.remove(Self.updateKey(old), from: &byUpdate)
        return old
    }

    mutating func removeAll() { self = CRMTable() }

    /// One page of `listing`: the rows in its order after its cursor that are within its time
    /// window and that `include` keeps, and the cursor of the next page (nil on the last).
    /// `candidates` (ids) replaces the whole table as the rows to look at (a filter with an index).
    func page(_ listing: CRMListing, candidates: [Int]? = nil, include: (Row) -> Bool = { _ in true }) -> (rows: [Row], next: CRMCursor?) {
        let keys: [CRMKey]
        var windowed = false
        if let candidates {
            keys = candidates.compactMap { rows[$0] }.map { listing.key(id: $0.id, time: $0.updateTime) }.sorted()
        } else if listing.sort == .updateTime {
            keys = byUpdate
            windowed = true
        } else if listing.since != nil || listing.until != nil {
            // By id within a time window: the window's rows come from the time index.
            let lower = listing.since.map { Self.lowerBound(CRMKey(first: $0.seconds, second: Int.min), in: byUpdate) } ?? 0
            let upper = listing.until.map { Self.lowerBound(CRMKey(first: $0.seconds, second: Int.min), in: byUpdate) } ?? byUpdate.count
            keys = lower < upper ? byUpdate[lower..<upper].map { CRMKey(first: Int64($0.second), second: 0) }.sorted() : []
        } else {
            keys = byId
        }
        var served: [Row] = []
        var more = false
        func visit(_ key: CRMKey) -> Bool {
            let row = rows[listing.sort == .id ? Int(key.first) : key.second]!
            guard listing.contains(row.updateTime), include(row) else { return true }
            if served.count == listing.limit {
                more = true
                return false
            }
            served.append(row)
            return true
        }
        switch listing.direction {
        case .asc:
            var index = listing.after.map { Self.upperBound($0, in: keys) } ?? 0
            if windowed, let since = listing.since { index = max(index, Self.lowerBound(CRMKey(first: since.seconds, second: Int.min), in: keys)) }
            while index < keys.count {
                if windowed, let until = listing.until, keys[index].first >= until.seconds { break }
                guard visit(keys[index]) else { break }
                index += 1
            }
        case .desc:
            var index = (listing.after.map { Self.lowerBound($0, in: keys) } ?? keys.count) - 1
            if windowed, let until = listing.until { index = min(index, Self.lowerBound(CRMKey(first: until.seconds, second: Int.min), in: keys) - 1) }
            while index >= 0 {
                if windowed, let since = listing.since, keys[index].first < since.seconds { break }
                guard visit(keys[index]) else { break }
                index -= 1
            }
        }
        let next = more ? served.last.map { CRMCursor(sort: listing.sort, direction: listing.direction, key: listing.key(id: $0.id, time: $0.updateTime)) } : nil
        return (served, next)
    }

    private static func updateKey(_ row: Row) -> CRMKey { CRMKey(first: row.updateTime?.seconds ?? 0, second: row.id) }

    /// The first index whose key is not less than `key`.
    static func lowerBound(_ key: CRMKey, in keys: [CRMKey]) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if keys[middle] < key { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// The first index whose key is greater than `key`.
    static func upperBound(_ key: CRMKey, in keys: [CRMKey]) -> Int {
        var low = 0, high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if key < keys[middle] { high = middle } else { low = middle + 1 }
        }
        return low
    }

    private static func insert(_ key: CRMKey, into keys: inout [CRMKey]) {
        keys.insert(key, at: lowerBound(key, in: keys))
    }

    private static func remove(_ key: CRMKey, from keys: inout [CRMKey]) {
        let index = lowerBound(key, in: keys)
        if index < keys.count, keys[index] == key { keys.remove(at: index) }
    }
}

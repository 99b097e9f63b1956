import PostgresNIO

/// A statement built piece by piece: `bind` returns the `$n` of a value, which may then appear
/// several times in the SQL. Every value is a bind: the SQL text holds only SQL.
///
/// ``now`` is the store's time: the database's `now()` plus the store's offset (zero in
/// production; tests move it), bound once per statement.
struct Statement {
    var sql = ""
    private(set) var binds = PostgresBindings()
    /// The store's offset from the database's `now()`, in ms.
    let offset: Int64
    private var nowSQL: String?

    init(offset: Int64) { self.offset = offset }

    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    mutating func bind<Value: PostgresDynamicTypeEncodable>(_ value: Value?) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    /// Arrays (their encoding can throw in theory).
    mutating func bind<Value: PostgresThrowingDynamicTypeEncodable>(array value: Value) throws -> String {
        try binds.append(value)
        return "$\(binds.count)"
    }

    /// The store's now, as a TIMESTAMPTZ expression (the offset bound on first use).
    mutating func now() -> String {
        if let nowSQL { return nowSQL }
        let expression = "(now() + INTERVAL '1 millisecond' * \(bind(offset))::int8)"
        nowSQL = expression
        return expression
    }

    /// `ms` (an int8 SQL expression) milliseconds after the store's now.
    mutating func now(plus ms: String) -> String { "(\(now()) + INTERVAL '1 millisecond' * \(ms))" }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }

    /// A main query that notifies each distinct queue the CTEs `sources` return (`RETURNING
    /// queue`) once on ``PostgresStore/channel`` (`SELECT 1` when there are none).
    mutating func notify(queuesOf sources: [String]) -> String {
        guard !sources.isEmpty else { return "SELECT 1" }
        // UNION removes the duplicates of several sources; one source needs DISTINCT.
        let queues = sources.count == 1 ? "SELECT DISTINCT queue FROM \(sources[0])"
            : sources.map { "SELECT queue FROM \($0)" }.joined(separator: " UNION ")
        return "SELECT pg_notify(\(bind(PostgresStore.channel)), queue) FROM (\(queues)) AS q"
    }

    /// A condition that holds always and makes the statement's step that has it run after the
    /// CTE `name` has run to its end (a one-time read of it): the order in which a statement of
    /// several data-modifying CTEs takes its locks.
    static func after(_ name: String) -> String { "(SELECT count(*) FROM \(name)) >= 0" }

    /// `WITH` the CTEs (each `name AS (…)`), then `main`. Every data-modifying CTE runs once, to
    /// the end, whether or not the query reads it.
    static func with(_ ctes: [String], _ main: String) -> String {
        "WITH " + ctes.joined(separator: ",\n") + "\n" + main
    }
}

extension PostgresQuery.StringInterpolation {
    /// The store's now (`now()` plus `offset` ms, the offset a bind) in a query written as one
    /// literal.
    mutating func appendInterpolation(now offset: Int64) {
        appendLiteral("(now() + INTERVAL '1 millisecond' * ")
        appendInterpolation(offset)
        appendLiteral("::int8)")
    }
}

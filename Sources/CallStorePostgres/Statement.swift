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

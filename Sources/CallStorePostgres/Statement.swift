import PostgresNIO

/// A statement built piece by piece: `bind` returns the `$n` of a value, which may then appear
/// several times in the SQL.
struct Statement {
    var sql = ""
    private(set) var binds = PostgresBindings()

    init() {}

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

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

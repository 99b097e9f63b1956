import CallStore
import Logging
import PostgresNIO

// Registrations (`.unlessKnown`), applied set-based: a webhook batch of 500 Telnyx events
// carries about 125 of them, and one statement per inner op (5–6 round trips per recording, on
// one connection) held the webhook's commits far behind its requests. A commit of the webhook's
// shape puts them in its one statement (PostgresStore+Webhooks); a run of them in any other
// commit takes ``PostgresStore/applyRegistrations(_:_:offset:logger:)``.
extension PostgresStore {
    /// One ``LedgerOp/unlessKnown(key:ops:)`` whose inner ops the set-based path applies as the
    /// per-op path would: at most one `.insertRecording` of its own key, `.putProviderRef`s of
    /// that key after it, `.enqueue`s of valid jobs, and `.audit`s. Any other shape (or not an
    /// `unlessKnown` at all) is nil: it takes the per-op path.
    struct Registration {
        let key: String
        var recording: Recording?
        /// One per provider (the last put wins, as it does op by op), in order of first put.
        var refs: [ProviderRef] = []
        var jobs: [NewJob] = []
        var audits: [AuditEntry] = []

        init?(_ op: LedgerOp) {
            guard case .unlessKnown(let key, let ops) = op else { return nil }
            self.key = key
            for op in ops {
                switch op {
                case .insertRecording(let recording) where recording.key == key:
                    // A second insert of the key does nothing, as ON CONFLICT DO NOTHING does.
                    if self.recording == nil { self.recording = recording }
                case .putProviderRef(let ref) where ref.recordingKey == key && recording != nil:
                    if let index = refs.firstIndex(where: { $0.provider == ref.provider }) { refs[index] = ref } else { refs.append(ref) }
                case .enqueue(let job) where (try? job.validate()) != nil:
                    jobs.append(job)
                case .audit(let entry):
                    audits.append(entry)
                default:
                    return nil
                }
            }
        }
    }

    /// Applies a run of registrations inside the commit's transaction, as their ops one by one
    /// would, in two statements: which keys the ledger knows (a recording or a tombstone), then,
    /// for the others, one multi-row INSERT per kind (recordings, provider references, jobs with
    /// one `pg_notify` per queue, audit rows), each a CTE of one statement (one round trip: on a
    /// loaded machine each costs a wake-up of both processes). A key the run registers (inserts
    /// its recording) is known to the registrations after it.
    static func applyRegistrations(_ run: [Registration], _ connection: PostgresConnection, offset: Int64,
                                   logger: Logger) async throws {
        guard !run.isEmpty else { return }
        var s = Statement(offset: offset)
        let keys = try s.bind(array: Array(Set(run.map(\.key))).sorted())
        s.sql = """
            SELECT key FROM recording WHERE key = ANY(\(keys)::text[])
            UNION SELECT key FROM tombstone WHERE key = ANY(\(keys)::text[])
            """
        var known = Set(try await connection.query(s.query, logger: logger).collect().map { try $0.decode(String.self) })
        var applied: [Registration] = []
        for registration in run where !known.contains(registration.key) {
            applied.append(registration)
            if registration.recording != nil { known.insert(registration.key) }
        }
        s = Statement(offset: offset)
        let (inserts, jobs) = try registrationInserts(applied, insertedOnly: false, &s)
        guard !inserts.isEmpty else { return }
        s.sql = Statement.with(inserts, s.notify(queuesOf: jobs ? ["jobs"] : []))
        _ = try await connection.query(s.query, logger: logger).collect()
    }

    /// The CTEs that register `applied` (each one multi-row INSERT per kind: `recordings`
    /// returning the keys it inserted, `refs`, `audits`, and `jobs` returning their queues), and
    /// whether there is a `jobs` CTE.
    ///
    /// - Parameters:
    ///   - insertedOnly: false: every registration applies (the caller decided which keys the
    ///     ledger knows). True (every registration has its recording, one per key): the
    ///     statement decides: a tombstoned key inserts nothing, and the references, audit rows and
    ///     jobs of a key go in only when its recording did (not for a key the ledger knows).
    ///   - first: a CTE the recordings' insert runs after (its name), so that every statement
    ///     of this shape takes its locks in the same order.
    static func registrationInserts(_ applied: [Registration], insertedOnly: Bool, after first: String? = nil,
                                    _ s: inout Statement) throws -> (ctes: [String], jobs: Bool) {
        var inserts: [String] = []
        // Only the rows of keys whose recording this statement inserted (`owner`: their key
        // column, made only then).
        func owned(_ owner: @autoclosure () throws -> String) rethrows -> String {
            insertedOnly ? "WHERE \(try owner()) IN (SELECT key FROM recordings)" : ""
        }

        // In key order, before the jobs (below): concurrent commits of overlapping batches take
        // the keys' locks in the same order, recordings first, and never deadlock.
        let recordings = applied.compactMap(\.recording).sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        if !recordings.isEmpty {
            var rows = UnnestRows()
            let key = try rows.column(recordings.map(\.key), "text", &s)
            let columns = [
                key, try rows.column(recordings.map(\.path), "text", &s),
                try rows.column(recordings.map(\.metadata), "text", nilAs: "", &s),
                try rows.column(recordings.map(\.state.rawValue), "text", &s),
                try rows.column(recordings.map(\.errorCode), "text", nilAs: "", &s),
                try rows.column(recordings.map(\.errorMessage), "text", nilAs: "", &s),
                try rows.column(recordings.map(\.partCount), "int8", &s),
                try rows.column(recordings.map(\.seconds), "float8", nilAs: 0, &s),
                SQL.epochPlus + (try rows.column(recordings.map { SQL.ms($0.createdAt) }, "int8", &s)),
                SQL.epochPlus + (try rows.column(recordings.map { SQL.ms($0.updatedAt) }, "int8", &s)),
            ]
            var conditions: [String] = []
            if let first { conditions.append(Statement.after(first)) }
            if insertedOnly { conditions.append("NOT EXISTS (SELECT 1 FROM tombstone WHERE tombstone.key = \(key))") }
            let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
            inserts.append("""
                recordings AS (
                  INSERT INTO recording (key, path, metadata, state, error_code, error_message, part_count, seconds,
                                         created_at, updated_at)
                  SELECT \(columns.joined(separator: ", ")) FROM \(rows.from) \(filter) ORDER BY n
                  ON CONFLICT (key) DO NOTHING RETURNING key)
                """)
        }

        // The phone numbers the recordings are found by (RecordingNumbers), of those inserted
        // (a key the ledger knew keeps its own), as `.insertRecording` op by op writes them.
        let numbers = recordings.flatMap { recording in
            RecordingNumbers.reversed(path: recording.path, metadata: recording.metadata).sorted().map { (recording.key, $0) }
        }
        if !numbers.isEmpty {
            var rows = UnnestRows()
            let key = try rows.column(numbers.map(\.0), "text", &s), reversed = try rows.column(numbers.map(\.1), "text", &s)
            inserts.append("""
                numbers AS (
                  INSERT INTO recording_number (reversed, recording_key)
                  SELECT \(reversed), \(key) FROM \(rows.from) WHERE \(key) IN (SELECT key FROM recordings) ORDER BY n
                  ON CONFLICT DO NOTHING)
                """)
        }

        let refs = applied.flatMap(\.refs)
        if !refs.isEmpty {
            var rows = UnnestRows()
            let key = try rows.column(refs.map(\.recordingKey), "text", &s)
            let columns = [
                key, try rows.column(refs.map(\.provider), "text", &s),
                try rows.column(refs.map(\.reference), "text", &s), try rows.column(refs.map(\.state), "text", &s),
            ]
            inserts.append("""
                refs AS (
                  INSERT INTO provider_ref (recording_key, provider, reference, state)
                  SELECT \(columns.joined(separator: ", ")) FROM \(rows.from) \(owned(key)) ORDER BY n
                  ON CONFLICT (recording_key, provider) DO UPDATE SET reference = excluded.reference, state = excluded.state)
                """)
        }

        let audits = applied.flatMap { registration in registration.audits.map { (registration.key, $0) } }
        if !audits.isEmpty {
            var rows = UnnestRows()
            let columns = [
                SQL.epochPlus + (try rows.column(audits.map { SQL.ms($0.1.at) }, "int8", &s)),
                try rows.column(audits.map(\.1.recordingKey), "text", nilAs: "", &s),
                try rows.column(audits.map(\.1.action), "text", &s),
                try rows.column(audits.map(\.1.target), "text", nilAs: "", &s),
                try rows.column(audits.map { $0.1.httpStatus.map(Int64.init) }, "int8", nilAs: 0, &s),
                try rows.column(audits.map(\.1.detail), "text", nilAs: "", &s),
                try rows.column(audits.map(\.1.actor), "text", &s),
            ]
            let filter = try owned(try rows.column(audits.map(\.0), "text", &s))
            inserts.append("""
                audits AS (
                  INSERT INTO audit (at, recording_key, action, target, http_status, detail, actor)
                  SELECT \(columns.joined(separator: ", ")) FROM \(rows.from) \(filter) ORDER BY n)
                """)
        }

        let jobs = applied.flatMap { registration in registration.jobs.map { (registration.key, $0) } }
        if !jobs.isEmpty {
            // Valid jobs only (Registration): a unique key is never empty, so '' stands for none.
            var rows = UnnestRows()
            let delays = try rows.column(jobs.map { SQL.ms($0.1.delay) }, "int8", &s)
            let columns = [
                try rows.column(jobs.map(\.1.queue), "text", &s), try rows.column(jobs.map(\.1.kind), "text", &s),
                try rows.column(jobs.map(\.1.args), "text", &s),
                "NULLIF(\(try rows.column(jobs.map { $0.1.uniqueKey ?? "" }, "text", &s)), '')",
                try rows.column(jobs.map { Int64($0.1.priority) }, "int8", &s),
                try rows.column(jobs.map { SQL.int32($0.1.maxAttempts) }, "int8", &s),
                s.now(plus: delays), s.now(), s.now(),
            ]
            // The main query reads `jobs`, so it runs first, the CTEs it does not read after
            // it: reading `recordings` (a one-time filter, or the keys it inserted) makes that
            // insert run to its end first.
            let filter = if insertedOnly {
                try owned(try rows.column(jobs.map(\.0), "text", &s))
            } else {
                recordings.isEmpty ? "" : "WHERE " + Statement.after("recordings")
            }
            inserts.append("""
                jobs AS (
                  INSERT INTO queue_job (queue, kind, args, unique_key, priority, max_attempts, run_at, created_at, updated_at)
                  SELECT \(columns.joined(separator: ", ")) FROM \(rows.from) \(filter) ORDER BY n
                  ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available','running') DO NOTHING
                  RETURNING queue)
                """)
        }
        return (inserts, !jobs.isEmpty)
    }
}

/// The rows of an `INSERT … SELECT … FROM unnest(arrays) WITH ORDINALITY … ORDER BY n`: one array
/// bind per column, whatever the number of rows. PostgresNIO encodes no NULL inside an array, so
/// a nullable column travels as two: its values (nil as a placeholder) and which are present.
struct UnnestRows {
    private var arrays: [String] = []
    private var names: [String] = []

    /// The column's SQL expression (its name in `from`); its array is bound in `s`.
    mutating func column<Value: PostgresArrayEncodable>(_ values: [Value], _ type: String, _ s: inout Statement) throws -> String {
        let name = "c\(names.count)"
        arrays.append("\(try s.bind(array: values))::\(type)[]")
        names.append(name)
        return name
    }

    /// A nullable column's SQL expression: NULL where the value is nil.
    mutating func column<Value: PostgresArrayEncodable>(_ values: [Value?], _ type: String, nilAs placeholder: Value,
                                                        _ s: inout Statement) throws -> String {
        let value = try column(values.map { $0 ?? placeholder }, type, &s)
        let present = try column(values.map { $0 != nil }, "bool", &s)
        return "CASE WHEN \(present) THEN \(value) END"
    }

    /// The FROM item: the arrays side by side, and their ordinality `n`.
    var from: String { "unnest(\(arrays.joined(separator: ", "))) WITH ORDINALITY AS t(\(names.joined(separator: ", ")), n)" }
}

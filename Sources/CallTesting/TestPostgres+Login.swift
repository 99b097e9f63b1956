import Foundation

extension TestPostgres {
    /// Runs `sql` with psql against `url` (ON_ERROR_STOP); its output (unaligned, tuples only).
    @discardableResult
    public static func psql(_ url: String, _ sql: String) throws -> String {
        guard let psql = psqlPath else { throw TestPostgresError("psql not found (install postgresql-client)") }
        let result = try runProcessBlocking(psql, ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        guard result.status == 0 else { throw TestPostgresError("psql on \(url) failed: \(result.stderr)") }
        return String(decoding: result.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A login role that must give its password over TCP (the test clusters trust every other
    /// login): the role is made on the server of `url`, and a `scram-sha-256` line for it alone
    /// is put first in the server's pg_hba.conf (a file on this machine: the test cluster's),
    /// until ``PasswordRole/remove()``. Waits, with a deadline, until the server applies it.
    public static func passwordRole(on url: String) throws -> PasswordRole {
        let hba = try psql(url, "SHOW hba_file")
        guard FileManager.default.isWritableFile(atPath: hba) else {
            throw TestPostgresError("the server's pg_hba.conf (\(hba)) is not writable here: a password login cannot be set up")
        }
        let suffix = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(10)
        let role = PasswordRole(url: url, hba: hba, name: "callrec_pw_\(suffix)", password: "pw-\(suffix)-secret")
        try psql(url, "CREATE ROLE \(role.name) LOGIN PASSWORD '\(role.password)'")
        let original = try String(contentsOfFile: hba, encoding: .utf8)
        try (role.line + "\n" + original).write(toFile: hba, atomically: false, encoding: .utf8)
        try psql(url, "SELECT pg_reload_conf()")
        // Applied once a wrong password is refused (before, the trust line lets it in).
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            var environment = ProcessInfo.processInfo.environment
            environment["PGPASSWORD"] = "not-" + role.password
            if let psql = psqlPath, let result = try? runProcessBlocking(psql, ["-X", "-q", "-d", role.url(password: nil), "-c", "SELECT 1"], environment: environment),
               result.status != 0 {
                return role
            }
            usleep(20000)
        }
        role.remove()
        throw TestPostgresError("the server did not apply the password line for \(role.name) within 20 s")
    }

    public struct PasswordRole: Sendable {
        let url: String
        let hba: String
        public let name: String
        public let password: String

        var line: String { "host all \(name) 127.0.0.1/32 scram-sha-256" }

        /// `url` with this role as the user (and `password` in it when given).
        public func url(password: String?) -> String {
            var components = URLComponents(string: url)!
            components.user = name
            components.password = password
            return components.string!
        }

        /// Takes the pg_hba.conf line out again and drops the role (best effort).
        public func remove() {
            if let text = try? String(contentsOfFile: hba, encoding: .utf8) {
                let kept = text.components(separatedBy: "\n").filter { $0 != line }.joined(separator: "\n")
                try? kept.write(toFile: hba, atomically: false, encoding: .utf8)
            }
            _ = try? psql(url, "SELECT pg_reload_conf()")
            _ = try? psql(url, "DROP ROLE IF EXISTS \(name)")
        }
    }
}

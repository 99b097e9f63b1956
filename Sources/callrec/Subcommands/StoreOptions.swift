import ArgumentParser
import CallApp
import Foundation

/// `--state DIR` and `--database URL`: where the ledger, the queue and the spool live.
struct StoreOptions: ParsableArguments {
    @Option(help: "State directory: the SQLite database (unless --database), the spool and the trash.")
    var state: String = ".callrec"

    @Option(help: ArgumentHelp(
        "PostgreSQL, to share the queue between machines: postgres://USER@HOST:PORT/DB. Default: CALLREC_DATABASE, else SQLite under --state.",
        discussion: "A password never goes on the command line: put the whole URL in CALLREC_DATABASE, or the password in PGPASSWORD."))
    var database: String?

    func validate() throws {
        if let database, StoreSettings.hasPassword(database) {
            throw ValidationError("--database must not carry a password (every user of this machine can read the command line); put the URL in CALLREC_DATABASE, or the password in PGPASSWORD")
        }
    }

    var settings: StoreSettings { StoreSettings(state: state, database: database) }
}

/// `text` as an age of zero or more, or a usage error naming `option` (and what else it takes).
func requireAge(_ text: String, option: String, orElse alternatives: String = "") throws -> Duration {
    guard let age = parseAge(text), age >= .zero else {
        throw ValidationError("\(option) \(text) is not an age (30d, 36h, 90m, 30s or plain seconds)\(alternatives)")
    }
    return age
}

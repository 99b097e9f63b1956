import ArgumentParser
import CallApp
import CallConsole
import Foundation

/// `callrec console`: the operator's console over the ledger and the queue.
struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Serve the operator's console: the queue, the recordings, their audio and their audit trail, in a browser.",
        discussion: """
            Pages under /console/: the overview (recordings and jobs by state, throughput, failures by code), the recordings list \
            (filters by state, error code, source path, dates, phone number and call-log id; newest first, page by page), and each \
            recording's page (its facts, parts and call logs with links into Pipedrive, the match, an audio player on the spool's MP3, \
            its jobs and its audit trail). Retry and cancel act on a recording's jobs, delete removes a recording everywhere, and \
            reconcile plans a pass with Pipedrive and applies exactly the plan shown; each is audited with the HTTP user name. \
            Reconcile and the overview's token count use the Pipedrive settings (PIPEDRIVE_API_TOKEN, PIPEDRIVE_API_URL; \
            PIPEDRIVE_WEB_URL for links when the API URL is the generic api.pipedrive.com). Every page needs the password \
            (HTTP Basic, any user name): CALLREC_CONSOLE_PASSWORD, or the file console.password_file of --config names; never the \
            command line. --read-only shows and changes nothing. Bound to 127.0.0.1 unless --listen says otherwise: put it behind a \
            reverse proxy that terminates TLS before serving it beyond this machine.
            """
    )

    @Option(help: ArgumentHelp(
        "Serve the console at HOST:PORT.",
        discussion: "8090 and :8090 mean 127.0.0.1:8090; 0.0.0.0:8090 listens on every interface; port 0 picks a free one (printed).",
        valueName: "host:port"))
    var listen: String = "127.0.0.1:8090"
    @Flag(help: "Show, never change: the actions answer 403 and their buttons are not shown.") var readOnly = false
    @Option(help: "Read console.password_file, the state and database from this file (JSON with comments).") var config: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var global: GlobalOptions

    func listenAddress() throws -> ListenAddress {
        switch ListenAddress.parse(listen) {
        case .success(let address): return address
        case .failure(let error): throw ValidationError("--listen \(listen): \(error.reason)")
        }
    }

    func validate() throws { _ = try listenAddress() }

    func run() async throws {
        let logger = global.makeLogger()
        let configuration = ConsoleConfiguration(password: try ConsoleServer.password(config: config), readOnly: readOnly)
        try await ConsoleServer.serve(store: try store.settings(config: config), address: try listenAddress(), configuration: configuration,
                                      apiEnvironment: try APIClients.environment(config: config), logger: logger) { url in
            standardError("console served at \(url)\(readOnly ? " (read-only)" : "")")
        }
    }
}

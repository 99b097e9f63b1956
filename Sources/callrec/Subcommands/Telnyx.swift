import ArgumentParser
import CallAPI
import CallApp
import CallJobs
import CallPipeline
import Foundation

// Telnyx as a source: the recordings of the account that no webhook brought (backfill).

extension CallRecCommand {
    struct TelnyxCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "telnyx",
            abstract: "Telnyx call recordings: register the ones no webhook brought (backfill).",
            subcommands: [Backfill.self]
        )

        struct Backfill: AsyncParsableCommand, StoreCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register the account's Telnyx recordings of a time range that callrec does not know (plan only, unless --apply).",
                discussion: """
                    Lists GET /v2/recordings created from --since to --until (250 a page, every page) and compares each recording with \
                    the ledger by the identity a webhook registers it under (call session, leg and start), deleted ones included: a \
                    recording a webhook brought is never registered twice, and a second backfill registers nothing. Prints one line per \
                    recording it would register (or did, with --apply) and a summary; known ones are counted (--json lists every one \
                    with its state). --apply registers the new ones as the webhook does; a worker (`worker`, or `worker --until-idle`) \
                    downloads each, reads its call's facts and uploads it. DATE is YYYY-MM-DD in UTC (--since: the start of that day; \
                    --until: its end) or an ISO 8601 time with its zone. Needs TELNYX_API_KEY (or telnyx.api_key_file in --config). \
                    Exit codes: 0 done; 1 some listed items could not be read (no call session or leg: each is named); 2 usage or \
                    configuration, including a key Telnyx refused; 3 Telnyx could not be reached (nothing was registered; run again).
                    """
            )

            @Option(help: ArgumentHelp("The first day (YYYY-MM-DD, UTC) or time (ISO 8601) of the recordings' creation.", valueName: "date")) var since: String
            @Option(help: ArgumentHelp("The last day (included) or time. Default: now.", valueName: "date")) var until: String?
            @Flag(help: "Register the new recordings (otherwise only print the plan).") var apply = false
            @Option(help: "Read the API variables, the telnyx section, the state and database from this file: JSON with comments, or KEY=VALUE lines. The environment wins over it.") var config: String?
            var configFile: String? { config }

            @OptionGroup var store: StoreOptions
            @OptionGroup var global: GlobalOptions

            func validate() throws {
                _ = try range()
            }

            func range() throws -> (since: Date, until: Date?) {
                do {
                    let start = try TelnyxBackfill.date(since, endOfDay: false, option: "--since")
                    let end = try until.map { try TelnyxBackfill.date($0, endOfDay: true, option: "--until") }
                    if let end, end < start { throw ValidationError("--until \(until ?? "") is before --since \(since)") }
                    return (start, end)
                } catch let error as AppError { throw ValidationError(error.message) }
            }

            func run() async throws {
                let environment = try APIClients.environment(config: config)
                guard environment.telnyxKey != nil else {
                    throw ValidationError("TELNYX_API_KEY is not set: telnyx backfill lists the account's recordings (or name its file with telnyx.api_key_file in --config)")
                }
                let settings = try TelnyxConfiguration.resolve(config: config)
                let (start, end) = try range()
                let report: TelnyxBackfillReport
                do {
                    report = try await withClients(config: config, creating: true) { clients, store, logger in
                        let intake = TelnyxIntake(store: store, settings: settings, spool: Spool(root: try self.store.settings(config: config).spoolDirectory),
                                                  logger: logger)
                        return try await TelnyxBackfill.run(client: clients.apis.telnyx!, store: store, intake: intake,
                                                            options: TelnyxBackfill.Options(since: start, until: end, apply: apply))
                    }
                } catch let error as APIError {
                    let credential = error.code == .credentialsRefused || error.code == .configuration
                    try stopped(by: JobFailure(credential ? .halt : .transient, code: error.code.rawValue, error.message),
                                left: "Nothing was registered: run the backfill again\(credential ? " with it mended" : " when Telnyx can be reached").",
                                origins: APIClients.origins(config: config))
                    throw ExitCode(ExitStatus.waiting)
                }
                try global.emit(report, report.lines)
                try fail(ExitStatus.someFailed, if: report.count(.unreadable) > 0)
            }
        }
    }
}

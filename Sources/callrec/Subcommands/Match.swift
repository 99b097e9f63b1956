import ArgumentParser
import CallApp
import Foundation

extension CallRecCommand {
    struct Match: AsyncParsableCommand, StoreCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain what a call with this phone number would link in Pipedrive, from the local index of the CRM (no request).",
            discussion: """
                Reads NUMBER with libphonenumber (--region, else matching.region or defaults.region of --config, for a number without a \
                country code), looks it up in the index callrec keeps of the CRM's persons, organizations, open deals and leads, and \
                applies the matching rules: the person's open deal (the most recently updated) → their open lead → the person and \
                their organization, bounded by --link; a number several persons have links their organization when they all share \
                one, else nothing; a number only an organization has links it; an unknown number links nothing (or creates a person, \
                with matching.unknown_numbers: create_person); the company's own numbers (company_numbers) never match. Prints the \
                number in E.164, the candidates and the decision with its reason code. Exit codes: 0 something would be linked; \
                1 nothing would be; 2 usage or configuration (a NUMBER that is not a valid phone number, an unknown --link).
                """
        )

        @Argument(help: ArgumentHelp("The phone number, in any form (+49 30 1234567, 030 1234567, (212) 555-0123).", valueName: "number"))
        var number: String
        @Option(help: "Link at most: none, person or deal (default: matching.link of --config, else deal).") var link: String?
        @Option(help: ArgumentHelp("Default country for a number without one (ISO 3166 alpha-2, e.g. DE).", valueName: "cc")) var region: String?
        @Option(help: "Read the matching section, company_numbers, the state and database from this file (JSON with comments).") var config: String?
        var configFile: String? { config }

        @Option(help: ArgumentHelp("Refresh the index from Pipedrive first: due (what the schedule says), incremental or full (a full pass: deletions and merges, leads, users). Needs PIPEDRIVE_API_TOKEN; spends tokens.", valueName: "mode"))
        var refresh: String?

        @OptionGroup var store: StoreOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let settings = try MatchConfiguration.resolve(config: config, link: link, region: region)
            _ = try NumberMatch.number(number, settings: settings)
            let match: NumberMatch
            if let refresh {
                let mode = try NumberMatch.refreshMode(refresh)
                match = try await withClients(config: config, pipedriveFor: "--refresh lists the CRM", creating: true) { clients, store, logger in
                    try await NumberMatch.refresh(mode, settings: settings, client: clients.pipedrive!, store: store, logger: logger)
                    return try await NumberMatch.explain(number, settings: settings, index: store)
                }
            } else {
                match = try await withStore { store, _ in try await NumberMatch.explain(number, settings: settings, index: store) }
            }
            try global.emit(match, match.lines)
            try fail(ExitStatus.someFailed, if: !match.linked)
        }
    }
}

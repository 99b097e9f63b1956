import CallAPI
import CallPipeline
import CallStore
import CallTesting
import Foundation
import Logging
import Testing

@testable import CallApp

/// What CallApp composes for the CLI: the store from --state/--database/the environment, and the
/// API clients from the environment.
@Suite struct CompositionTests {
    let logger = Logger(label: "test")

    @Test func aDatabaseURLThatIsNotPostgresIsAUsageError() async throws {
        let settings = StoreSettings(state: "/nonexistent", database: "mysql://u@h/db", environment: [:])
        await #expect { try await settings.open(logger: logger) } throws: { error in
            (error as? AppError)?.code == .usage && "\(error)".contains("postgres://")
        }
    }

    @Test func aStateWithoutADatabaseIsRefusedUnlessCreatingAndNothingIsMade() async throws {
        try await withTemporaryDirectory { dir in
            let settings = StoreSettings(state: "\(dir)/state", environment: [:])
            await #expect { try await settings.open(logger: logger) } throws: { error in
                (error as? StoreError)?.code == .configuration
            }
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/state"))
            let store = try await settings.open(creating: true, logger: logger)
            try await store.close()
            #expect(FileManager.default.fileExists(atPath: "\(dir)/state/callrec.sqlite"))
            // Once made, commands that only read open it.
            try await settings.withStore(logger: logger) { _ in }
            #expect(settings.spoolDirectory == "\(dir)/state/spool" && settings.trashDirectory == "\(dir)/state/trash")
        }
    }

    @Test func pgpasswordGoesIntoTheURLNeverOnTheCommandLine() {
        #expect(StoreSettings.hasPassword("postgres://u:secret@h/db"))
        #expect(!StoreSettings.hasPassword("postgres://u@h/db"))
        #expect(StoreSettings.insertingPassword("p@ss word", into: "postgres://u@h:5432/db") == "postgres://u:p%40ss%20word@h:5432/db")
    }

    @Test func clientsExistOnlyForTheAPIsWithCredentials() async throws {
        let none = try APIClients.environment(config: nil, environment: [:])
        let missing = try await APIClients.with(environment: none, logger: logger) { clients in
            #expect(clients.pipedrive == nil && clients.apis.telnyx == nil && clients.apis.voipnow == nil)
            return clients.missingCredentials(for: [DeletionStep(position: 1, target: "pipedrive:7", state: .pending)])
        }
        #expect(missing == ["PIPEDRIVE_API_TOKEN is not set (the recording has call logs to delete)"])
        let some = try APIClients.environment(config: nil, environment: ["PIPEDRIVE_API_TOKEN": "t", "TELNYX_API_KEY": "k"])
        // The body's error comes out as it is (the HTTP client is shut down on that path too).
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await APIClients.with(environment: some, logger: logger) { clients in
                #expect(clients.pipedrive != nil && clients.apis.telnyx != nil && clients.apis.voipnow == nil)
                throw Boom()
            }
        }
    }

    @Test func aBadAPISettingIsAUsageError() {
        #expect { try APIClients.environment(config: nil, environment: ["PIPEDRIVE_API_URL": "not a url"]) } throws: { error in
            (error as? AppError)?.code == .usage
        }
    }

    @Test func agesTakeDaysHoursMinutesSecondsOrPlainSeconds() {
        #expect(parseAge("2d") == .seconds(172_800))
        #expect(parseAge("36h") == .seconds(129_600))
        #expect(parseAge("90m") == .seconds(5400))
        #expect(parseAge("45") == .seconds(45))
        #expect(parseAge("soon") == nil)
    }
}

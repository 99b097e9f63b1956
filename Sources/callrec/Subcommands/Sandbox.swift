import ArgumentParser
import CallSandbox
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

extension CallRecCommand {
    struct Sandbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the local API sandbox: Pipedrive CallLogs, Telnyx recordings and VoipNow phone-call events on one port.",
            discussion: """
                Pipedrive is served under /v1, Telnyx under /v2 and VoipNow under /uapi, with the real APIs' \
                validation, status codes, error bodies, pagination and Pipedrive's token-cost rate limits. \
                Credentials come from PIPEDRIVE_API_TOKEN, TELNYX_API_KEY and VOIPNOW_ACCESS_TOKEN; the ones \
                that are unset are made up and printed (they belong to this sandbox only).

                Faults: --faults takes probabilities per class, e.g. \
                429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02,abuse=0,budget=0 (plus delay=SECONDS for slow; \
                budget is a 429 without Retry-After, as a spent daily budget answers); \
                a request header x-sandbox-fault: 429|500|503|slow|cut|lost|abuse|budget|none aims one at a single \
                request. State and seeding: GET /_sandbox/state, POST /_sandbox/telnyx/recordings, \
                POST /_sandbox/voipnow/events (loopback only). Runs until SIGINT or SIGTERM.
                """
        )

        @Option(help: "Port to listen on (0: any free port).")
        var port: Int = 7654

        @Option(help: "Address to listen on. The introspection routes answer loopback clients only.")
        var host: String = "127.0.0.1"

        @Option(help: "Keep the state (call logs, recordings, events, tokens spent) in this directory across restarts (one sandbox at a time serves it). Default: memory.")
        var state: String?

        @Option(help: "Random faults, e.g. 429=0.05,500=0.02,503=0.02,slow=0.01,cut=0.01,lost=0.02 (delay=SECONDS sets the slow delay).")
        var faults: String = ""

        @Option(help: "Pipedrive burst limit: requests per rolling 2-second window (Lite: 20). Default: PIPEDRIVE_BURST or 20.")
        var burst: Int?

        @Option(help: "Pipedrive daily token budget. Default: PIPEDRIVE_DAILY_TOKENS or 30000.")
        var dailyTokens: Int?

        @OptionGroup var global: GlobalOptions

        func validate() throws {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be 0…65535") }
            if let burst, burst < 1 { throw ValidationError("--burst must be at least 1") }
            if let dailyTokens, dailyTokens < 0 { throw ValidationError("--daily-tokens must not be negative") }
            do { _ = try FaultPlan(specification: faults) } catch let error as SandboxError {
                throw ValidationError("--faults: \(error.message)")
            }
        }

        func run() async throws {
            let logger = global.makeLogger()
            var (configuration, generated) = SandboxConfiguration.fromEnvironment()
            configuration.host = host
            configuration.port = port
            configuration.stateDirectory = state
            if let burst { configuration.burstPerTwoSeconds = burst }
            if let dailyTokens { configuration.dailyTokens = dailyTokens }
            do {
                configuration.faults = try FaultPlan(specification: faults)
                try configuration.validate()
            } catch let error as SandboxError {
                throw ValidationError(error.message)
            }

            let sandbox = CallSandbox.Sandbox(configuration: configuration, logger: logger)
            let services = ServiceGroup(configuration: .init(
                services: [sandbox], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await services.run() }
                    let bound = try await sandbox.waitUntilRunning()
                    announce(configuration, port: bound, generated: generated)
                    try await group.waitForAll()
                }
            } catch let error as SandboxError where error.code == .stateInUse {
                // Two sandboxes on one state would each write their own over the other's.
                throw ValidationError(error.message)
            }
        }

        /// The URLs to export, and the credentials made up here (never ones from the environment).
        private func announce(_ configuration: SandboxConfiguration, port: Int, generated: [String]) {
            let base = configuration.baseURL(port: port)
            var exports: [(String, String)] = [
                ("PIPEDRIVE_API_URL", base + "/v1"), ("TELNYX_API_URL", base + "/v2"), ("VOIPNOW_API_URL", base),
            ]
            let secrets = [
                ("PIPEDRIVE_API_TOKEN", configuration.pipedriveToken), ("TELNYX_API_KEY", configuration.telnyxKey),
                ("VOIPNOW_ACCESS_TOKEN", configuration.voipnowToken),
            ]
            exports += secrets.filter { generated.contains($0.0) }
            let fromEnvironment = secrets.map(\.0).filter { !generated.contains($0) }
            if global.json {
                var document: [String: String] = ["base_url": base, "state": configuration.stateDirectory ?? "memory"]
                for (name, value) in exports { document[name] = value }
                try? writeJSON(document)
                return
            }
            var lines = ["callrec sandbox listening on \(base)  (state: \(configuration.stateDirectory ?? "memory"); faults: \(configuration.faults.isEmpty ? "none" : configuration.faults.specification))"]
            lines += exports.map { "export \($0.0)=\($0.1)" }
            if !fromEnvironment.isEmpty { lines.append("# taken from the environment: \(fromEnvironment.joined(separator: ", "))") }
            lines.append("# state: curl \(base)/_sandbox/state   stop: Ctrl-C")
            FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        }
    }
}

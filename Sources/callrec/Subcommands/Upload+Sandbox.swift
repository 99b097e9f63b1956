import ArgumentParser
import AsyncHTTPClient
import CallAPI
import CallJobs
import CallPipeline
import CallSandbox
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import UnixSignals

extension CallRecCommand.Upload {
    /// `upload --sandbox`: the run uploads to the sandbox whose state lives under
    /// `<state>/sandbox`. One sandbox serves a state directory: the first run starts it in its
    /// own process; a run that comes while it serves uses it (the address and credentials it
    /// publishes there), and the serving run keeps it up until every run using it has ended.
    func runWithSandbox(logger: Logger) async throws {
        let sandboxDirectory = (store.state as NSString).appendingPathComponent("sandbox")
        let use: SandboxUse
        do {
            use = try await SandboxUse(directory: sandboxDirectory)
        } catch let error as SandboxError {
            throw ValidationError(error.message)
        }
        defer { use.end() }
        // A sandbox that is starting there holds the directory before it publishes its address.
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            if let address = SandboxAddress.serving(sandboxDirectory) {
                standardError("sandbox: using the sandbox process \(address.pid) serves at \(address.url) (state: \(sandboxDirectory))")
                let (report, halted) = try await uploadToSandbox(RemoteSandbox(address: address), sandboxDirectory: sandboxDirectory, logger: logger)
                try Self.exit(report.summary, halted: halted)
                return
            }
            let configuration = try SandboxCredentials.configuration(stateDirectory: sandboxDirectory)
            do {
                try await withSandbox(configuration) { url, sandbox in
                    logger.info("sandbox started", metadata: ["url": "\(url.absoluteString)", "state": "\(sandboxDirectory)"])
                    let local = LocalSandbox(sandbox: sandbox, url: url.absoluteString, configuration: configuration)
                    let (report, halted) = try await uploadToSandbox(local, sandboxDirectory: sandboxDirectory, logger: logger)
                    try await keepServing(use)
                    try Self.exit(report.summary, halted: halted)
                }
                return
            } catch let error as SandboxError where error.code == .stateInUse {
                // Another run took the directory first: use its sandbox once it is listening.
                guard ContinuousClock.now < deadline else { throw ValidationError(error.message) }
                try await Task.sleep(for: .milliseconds(25))
            }
        }
    }

    /// Keeps the sandbox up while other runs use it; SIGINT or SIGTERM stops it anyway.
    private func keepServing(_ use: SandboxUse) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await use.waitUntilAlone {
                    standardError("sandbox: other runs on this state still use it; it stops once they end (Ctrl-C: stop now)")
                }
            }
            group.addTask {
                for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    standardError("\n\(signal): stopping the sandbox; the runs still using it fail their requests (a re-run goes on)")
                    return
                }
            }
            _ = try await group.next()
            group.cancelAll()
        }
    }

    /// Makes the call logs the sidecars name, runs the upload against `sandbox`, and shows what
    /// the sandbox holds above the run's one-line summary.
    private func uploadToSandbox(_ sandbox: some SandboxAccess, sandboxDirectory: String, logger: Logger) async throws -> (BatchReport, JobFailure?) {
        // Call logs that sidecars name by call_log_id exist in a real account before the run; in
        // the sandbox they are made first.
        for id in Self.namedCallLogs(in: directory).sorted() {
            if try await sandbox.seedCallLog(id) { standardError("sandbox: made call log \(id), which a sidecar names by call_log_id") }
        }
        let address = sandbox.address
        var environment = ProcessInfo.processInfo.environment
        environment["PIPEDRIVE_API_URL"] = address.url + "/v1"
        environment["PIPEDRIVE_API_TOKEN"] = address.pipedriveToken
        environment["TELNYX_API_URL"] = address.url + "/v2"
        environment["TELNYX_API_KEY"] = address.telnyxKey
        environment["VOIPNOW_API_URL"] = address.url
        environment["VOIPNOW_ACCESS_TOKEN"] = address.voipnowToken
        return try await upload(environment: try loadEnvironment(config: nil, environment: environment), logger: logger) { report in
            guard !global.json else { return }
            do {
                Swift.print(SandboxView(snapshot: try await sandbox.snapshot(), report: report, directory: sandboxDirectory).text)
            } catch {
                logger.warning("cannot read the sandbox's state", metadata: ["error": "\(error)"])
            }
        }
    }

    static func namedCallLogs(in directory: String) -> Set<String> {
        guard let scan = try? Scanner.scan(root: directory) else { return [] }
        var ids: Set<String> = []
        for file in scan.files {
            guard let path = file.sidecarPath, let data = FileManager.default.contents(atPath: path),
                  let id = Sidecar.parse(data).sidecar?.callLogId else { continue }
            ids.insert(id)
        }
        return ids
    }
}

/// What `upload --sandbox` prints of the sandbox above the run's summary: how many call logs it
/// holds, whether the audio of this directory's parts arrived as the spool holds it, and the
/// newest few (it may hold thousands; they are all in its state file).
struct SandboxView {
    /// The call logs listed.
    static let newest = 10

    let snapshot: SandboxSnapshot
    let report: BatchReport
    /// The sandbox's state directory.
    let directory: String

    var text: String {
        let live = snapshot.callLogs.filter { !$0.deleted }
        let deleted = snapshot.callLogs.count - live.count
        // The SHA-256 of each part of this directory, by the call log it went to.
        let spool = Dictionary(report.files.flatMap(\.parts).compactMap { part in part.callLogId.map { ($0, part.sha256) } },
                               uniquingKeysWith: { first, _ in first })
        let arrived = live.filter { spool[$0.id] != nil }
        let differ = arrived.filter { $0.recording?.sha256 != spool[$0.id] }
        var head = "The sandbox holds \(count(live.count, "call log")) (\(live.filter { $0.recording != nil }.count) with a recording"
        head += deleted > 0 ? "; \(deleted) deleted). " : "). "
        head += arrived.isEmpty ? "None of them is this directory's."
            : differ.isEmpty ? "The audio of this directory's \(count(arrived.count, "part")) arrived as the spool holds it (SHA-256)."
            : "\(differ.count) of this directory's \(count(arrived.count, "part")) arrived with other bytes than the spool holds!"
        var lines = ["", head]
        let ordered = live  // in creation order (the snapshot's; `created_at` keeps whole seconds only)
        let shown = ordered.suffix(Self.newest)
        if ordered.count > shown.count { lines.append("The newest \(shown.count):") }
        lines += shown.map { row($0, spool: spool) }
        let unshown = differ.filter { log in !shown.contains { $0.id == log.id } }
        if !unshown.isEmpty {
            lines.append("Also arrived with other bytes:")
            lines += unshown.map { row($0, spool: spool) }
        }
        if ordered.count > shown.count {
            lines.append("All \(ordered.count) are in \((directory as NSString).appendingPathComponent("sandbox-state.json")) "
                + "(or GET /_sandbox/state of `callrec sandbox --state \(directory)`).")
        }
        return (lines + [""]).joined(separator: "\n")
    }

    private func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    private func row(_ log: SandboxCallLog, spool: [String: String]) -> String {
        var line = "  \(log.id)  \((log.subject ?? "-").padding(toLength: 28, withPad: " ", startingAt: 0))"
        if let recording = log.recording {
            line += "  \(recording.bytes) bytes  sha256 \(recording.sha256.prefix(16))…"
            if let expected = spool[log.id] { line += expected == recording.sha256 ? "  = spool" : "  ≠ spool!" }
        } else {
            line += "  (no recording)"
        }
        return line
    }
}

/// What `upload --sandbox` needs of a sandbox, in this process or in another one.
protocol SandboxAccess: Sendable {
    /// Its address and credentials.
    var address: SandboxAddress { get }
    /// Makes the call log `id` exist; true when it did not before.
    func seedCallLog(_ id: String) async throws -> Bool
    /// Everything it holds now.
    func snapshot() async throws -> SandboxSnapshot
}

/// The sandbox this process serves.
struct LocalSandbox: SandboxAccess {
    let sandbox: CallSandbox.Sandbox
    let address: SandboxAddress

    init(sandbox: CallSandbox.Sandbox, url: String, configuration: SandboxConfiguration) {
        self.sandbox = sandbox
        address = SandboxAddress(url: url, pid: ProcessInfo.processInfo.processIdentifier, pipedriveToken: configuration.pipedriveToken,
                                 telnyxKey: configuration.telnyxKey, voipnowToken: configuration.voipnowToken)
    }

    func seedCallLog(_ id: String) async throws -> Bool { await sandbox.seedCallLog(id: id) }
    func snapshot() async throws -> SandboxSnapshot { await sandbox.snapshot() }
}

/// The sandbox another run serves, through its loopback-only introspection routes.
struct RemoteSandbox: SandboxAccess {
    let address: SandboxAddress

    func seedCallLog(_ id: String) async throws -> Bool {
        var request = HTTPClientRequest(url: address.url + "/_sandbox/pipedrive/callLogs")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["id": id])))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        _ = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .created || response.status == .ok else {
            throw ValidationError("the sandbox at \(address.url) did not make call log \(id): HTTP \(response.status.code)")
        }
        return response.status == .created
    }

    func snapshot() async throws -> SandboxSnapshot {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: address.url + "/_sandbox/state"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 30)
        guard response.status == .ok else { throw ValidationError("GET \(address.url)/_sandbox/state: HTTP \(response.status.code)") }
        return try SandboxSnapshot.decode(Data(body.readableBytesView))
    }
}

/// The sandbox of `upload --sandbox`: its state and made-up credentials persist under the state
/// directory, so a re-run meets the same call logs.
enum SandboxCredentials {
    static func configuration(stateDirectory: String) throws -> SandboxConfiguration {
        let fm = FileManager.default
        try fm.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        let path = (stateDirectory as NSString).appendingPathComponent("credentials.json")
        var configuration: SandboxConfiguration
        if let data = fm.contents(atPath: path), let saved = try? JSONDecoder().decode([String: String].self, from: data),
           let p = saved["pipedrive"], let t = saved["telnyx"], let v = saved["voipnow"] {
            configuration = SandboxConfiguration(pipedriveToken: p, telnyxKey: t, voipnowToken: v)
        } else {
            configuration = SandboxConfiguration.random()
            let saved = ["pipedrive": configuration.pipedriveToken, "telnyx": configuration.telnyxKey, "voipnow": configuration.voipnowToken]
            guard fm.createFile(atPath: path, contents: try JSONEncoder().encode(saved), attributes: [.posixPermissions: 0o600]) else {
                // Without them a re-run would meet a sandbox whose state no longer matches its keys.
                throw ValidationError("cannot write the sandbox's credentials to \(path)")
            }
        }
        let environment = ProcessInfo.processInfo.environment
        if let burst = environment["PIPEDRIVE_BURST"].flatMap({ Int($0) }), burst > 0 { configuration.burstPerTwoSeconds = burst }
        if let daily = environment["PIPEDRIVE_DAILY_TOKENS"].flatMap({ Int($0) }), daily > 0 { configuration.dailyTokens = daily }
        if let faults = environment["CALLREC_SANDBOX_FAULTS"], !faults.isEmpty {
            configuration.faults = try FaultPlan(specification: faults)
        }
        configuration.stateDirectory = stateDirectory
        return configuration
    }
}

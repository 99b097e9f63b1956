public import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Starts `executable` in the background with its output appended to the file `log`.
public func startProcess(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = environment
    if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    handle.seekToEndOfFile()
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    return process
}

/// Waits for `process` to exit; false when it is still running after `seconds`.
public func waitForExit(_ process: Process, upTo seconds: Double) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while process.isRunning {
        if ContinuousClock.now > deadline { return false }
        try await Task.sleep(for: .milliseconds(25))
    }
    return true
}

/// A `callrec sandbox` process on a free loopback port.
public struct SandboxProcess: Sendable {
    public let process: Process
    /// `http://127.0.0.1:<port>`
    public let base: String

    /// Starts `callrec sandbox --port 0 --json` with its state under `dir/sandbox` and waits for
    /// the document that names its address.
    public static func start(_ callrec: String, dir: String, environment: [String: String], faults: String? = nil) async throws -> SandboxProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: callrec)
        process.arguments = ["sandbox", "--port", "0", "--json", "--state", "\(dir)/sandbox"] + (faults.map { ["--faults", $0] } ?? [])
        process.environment = environment
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        var buffer = Data()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer.append(chunk)
            if let doc = try? JSONSerialization.jsonObject(with: buffer) as? [String: Any], let base = doc["base_url"] as? String {
                return SandboxProcess(process: process, base: base)
            }
        }
        process.terminate()
        throw TestAudioError("the sandbox did not start: \(String(decoding: buffer, as: UTF8.self))")
    }

    public func terminate() { process.terminate() }

    /// One request that the sandbox's fault injection leaves alone; the status and the JSON body.
    @discardableResult
    public func request(_ method: String, _ path: String, json: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: Any]) {
        try await httpJSON(method, base + path, json: json, headers: headers.merging(["x-sandbox-fault": "none"]) { a, _ in a })
    }

    /// The sandbox's whole state (`GET /_sandbox/state`).
    public func state() async throws -> [String: Any] {
        try await request("GET", "/_sandbox/state").1
    }

    /// Creates a call log with a chosen id, as if it existed in the account before the run (201;
    /// 200 when it existed already).
    public func seedCallLog(_ id: String) async throws {
        let (status, _) = try await request("POST", "/_sandbox/pipedrive/callLogs", json: #"{"id": "\#(id)"}"#)
        guard status == 201 || status == 200 else { throw TestAudioError("seeding call log \(id): HTTP \(status)") }
    }
}

/// The ids of the entries of the sandbox state's `key` list that are not marked deleted.
public func liveIDs(_ key: String, _ state: [String: Any]) -> Set<String> {
    Set((state[key] as? [[String: Any]] ?? []).filter { ($0["deleted"] as? Bool) != true }.compactMap { $0["id"] as? String })
}

/// One HTTP request; the status and the body parsed as a JSON object (empty when it is not one).
@discardableResult
public func httpJSON(_ method: String, _ url: String, json: String? = nil, headers: [String: String] = [:]) async throws -> (Int, [String: Any]) {
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
    if let json {
        request.setValue("application/json", forHTTPHeaderField: "content-type")
        request.httpBody = Data(json.utf8)
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
}

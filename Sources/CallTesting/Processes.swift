public import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Starts `executable` in the background with its output appended to the file `log`.
public func startProcess(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws -> ChildProcess {
    try ChildProcess(executable, arguments, environment: environment, stdout: .append(log), stderr: .standardOutput)
}

/// Waits for `process` to exit; false when it is still running after `seconds`.
public func waitForExit(_ process: ChildProcess, upTo seconds: Double) async throws -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while process.isRunning {
        if ContinuousClock.now > deadline { return false }
        try await Task.sleep(for: .milliseconds(25))
    }
    return true
}

/// Waits, for at most `timeout`, until the file at `path` holds `text` (a line a process
/// logged: an event, not a moment). Returns whether it did.
public func waitForText(_ text: String, inFile path: String, timeout: Duration = .seconds(60)) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let data = FileManager.default.contents(atPath: path), String(decoding: data, as: UTF8.self).contains(text) { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return false
}

/// A `callrec sandbox` process on a free loopback port.
public struct SandboxProcess: Sendable {
    public let process: ChildProcess
    /// `http://127.0.0.1:<port>`
    public let base: String

    /// Starts `callrec sandbox --port 0 --json` with its state under `dir/sandbox` and waits for
    /// the document that names its address.
    public static func start(_ callrec: String, dir: String, environment: [String: String], faults: String? = nil,
                             arguments: [String] = []) async throws -> SandboxProcess {
        let process = try ChildProcess(callrec, ["sandbox", "--port", "0", "--json", "--state", "\(dir)/sandbox"] + (faults.map { ["--faults", $0] } ?? []) + arguments,
                                       environment: environment, stdout: .pipe)
        let out = process.standardOutput!
        var buffer = Data()
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let chunk = out.availableData
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

    /// The API requests the sandbox has seen so far (its counters; `/_sandbox/` routes do not count).
    public func requestCount() async throws -> Int {
        try await requests(of: state())
    }

    /// The API requests counted in a `GET /_sandbox/state` document.
    public func requests(of state: [String: Any]) -> Int {
        (state["counters"] as? [String: Any])?["requests"] as? Int ?? 0
    }

    /// Sends SIGKILL to `process` once the sandbox has seen `count` API requests in all: an
    /// event, not a moment, so a kill lands at the same point of the work however loaded the
    /// machine is. A thread of its own polls the sandbox's counters every millisecond (a parallel
    /// suite can starve the test's tasks while the run makes dozens of requests a second).
    /// Returns the count it was killed at; nil when the process ended first (or after
    /// `timeout`, when it is left running).
    public func kill(_ process: ChildProcess, atRequest count: Int, timeout: Duration = .seconds(120)) async -> Int? {
        let port = URLComponents(string: base)?.port ?? 0
        return await withCheckedContinuation { (done: CheckedContinuation<Int?, Never>) in
            Thread {
                let deadline = ContinuousClock.now + timeout
                while process.isRunning, ContinuousClock.now < deadline {
                    if let body = blockingLoopbackGET(port: port, "/_sandbox/state", headers: ["x-sandbox-fault": "none"]),
                       let state = try? JSONSerialization.jsonObject(with: body) as? [String: Any], requests(of: state) >= count {
                        process.kill()
                        done.resume(returning: requests(of: state))
                        return
                    }
                    usleep(1000)
                }
                done.resume(returning: nil)
            }.start()
        }
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

/// `GET url` (a `/healthz`) until it answers 200, for at most `timeout`; the last answer. A probe
/// gives the store a second, which a loaded CI machine's store may miss: a load balancer asks
/// again, and so does this.
@discardableResult
public func waitForHealthy(_ url: String, timeout: Duration = .seconds(60)) async throws -> (Int, [String: Any]) {
    let deadline = ContinuousClock.now + timeout
    while true {
        let answer = try await httpJSON("GET", url)
        if answer.0 == 200 || ContinuousClock.now > deadline { return answer }
        try await Task.sleep(for: .milliseconds(50))
    }
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

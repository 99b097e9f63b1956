public import Foundation

/// A second host for tests: a network namespace joined to this one by a veth pair, whose path to
/// one address of this side (``databaseAddress``) the test can cut and restore, as a network
/// partition between a worker and its database would, while the rest (``hostAddress``: the
/// sandbox) stays reachable.
///
/// Addresses: this side `10.231.N.1` (``hostAddress``) and `10.231.N.2` (``databaseAddress``),
/// the namespace `10.231.N.3` (N picked per host, so that parallel tests do not meet). A cut is
/// a pair of blackhole rules (`ip rule`): packets either way between the namespace and the
/// database address are dropped without an answer, as on a lost link, and established
/// connections hang rather than fail. Needs root and iproute2: check ``isAvailable`` and skip
/// visibly where it is false.
public final class TestHost: @unchecked Sendable {
    public let name: String
    public let hostAddress: String
    public let databaseAddress: String
    public let address: String
    private let link: String
    private let lock = NSLock()
    private var isCut = false
    private var closed = false

    /// Whether namespaces can be made here (root, `ip`).
    public static let isAvailable: Bool = {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: ip) else { return false }
        let name = "crp-\(getpid() % 100_000)"
        guard (try? runProcessBlocking(ip, ["netns", "add", name]))?.status == 0 else { return false }
        _ = try? runProcessBlocking(ip, ["netns", "del", name])
        return true
    }()

    /// `ip` from PATH, else from sbin (a test runner's PATH may lack it).
    static let ip: String = which("ip") ?? (FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip")

    public init() throws {
        // A subnet no other live test host uses (its link name is free).
        var chosen: Int?
        for _ in 0..<50 {
            let n = Int.random(in: 1...250)
            if !FileManager.default.fileExists(atPath: "/sys/class/net/crh-\(n)") { chosen = n; break }
        }
        guard let n = chosen else { throw TestAudioError("no free 10.231.N.0/24 subnet for a test host") }
        name = "crt-\(n)-\(getpid() % 100_000)"
        link = "crh-\(n)"
        hostAddress = "10.231.\(n).1"
        databaseAddress = "10.231.\(n).2"
        address = "10.231.\(n).3"
        let inside = "crn-\(n)"
        let steps: [[String]] = [
            ["netns", "add", name],
            ["link", "add", link, "type", "veth", "peer", "name", inside],
            ["link", "set", inside, "netns", name],
            ["addr", "add", "\(hostAddress)/24", "dev", link],
            ["addr", "add", "\(databaseAddress)/24", "dev", link],
            ["link", "set", link, "up"],
            ["netns", "exec", name, Self.ip, "addr", "add", "\(address)/24", "dev", inside],
            ["netns", "exec", name, Self.ip, "link", "set", inside, "up"],
            ["netns", "exec", name, Self.ip, "link", "set", "lo", "up"],
        ]
        for step in steps {
            let result = try runProcessBlocking(Self.ip, step)
            guard result.status == 0 else {
                close()
                throw TestAudioError("ip \(step.joined(separator: " ")) failed: \(result.stderr)")
            }
        }
    }

    deinit { close() }

    /// `executable arguments` run inside the namespace, in the background, its output appended
    /// to `log` (`ip netns exec` execs it: its pid is the process's own).
    public func start(_ executable: String, _ arguments: [String], environment: [String: String], log: String) throws -> ChildProcess {
        try startProcess(Self.ip, ["netns", "exec", name, executable] + arguments, environment: environment, log: log)
    }

    /// Cuts the path between the namespace and ``databaseAddress`` (both ways).
    public func cut() throws {
        try lock.withLock {
            guard !isCut else { return }
            try rules("add")
            isCut = true
        }
    }

    /// Restores the path.
    public func restore() throws {
        try lock.withLock {
            guard isCut else { return }
            try rules("del")
            isCut = false
        }
    }

    private func rules(_ verb: String) throws {
        for step in [["netns", "exec", name, Self.ip, "rule", verb, "to", databaseAddress, "blackhole"],
                     ["rule", verb, "from", databaseAddress, "to", address, "blackhole"]] {
            let result = try runProcessBlocking(Self.ip, step)
            guard result.status == 0 else { throw TestAudioError("ip \(step.joined(separator: " ")) failed: \(result.stderr)") }
        }
    }

    /// Removes the namespace (its end of the pair, and with it the pair) and this side's rule.
    public func close() {
        let first = lock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        _ = try? runProcessBlocking(Self.ip, ["rule", "del", "from", databaseAddress, "to", address, "blackhole"])
        _ = try? runProcessBlocking(Self.ip, ["netns", "del", name])
        _ = try? runProcessBlocking(Self.ip, ["link", "del", link])
    }
}

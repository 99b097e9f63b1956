import ArgumentParser
import CallApp
import CallPipeline
import CallStore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Plumbing for bench/rescan.sh: a FreePBX tree of tiny recordings over ~1,000 day folders and a
/// ledger that holds every one of them as uploaded (the recording keyed by its call, D6; one
/// attached part; the file's `source_file` row with its real stamp), committed through CallStore
/// ops in batches, so a watching worker's startup scan finds everything done.
struct SeedSource: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed-source", abstract: "Seed a FreePBX tree and a ledger of its recordings, all uploaded (bench/rescan.sh).",
        shouldDisplay: false)

    @Option(help: "Recordings to write.")
    var calls = 100_000
    @Option(help: "Day folders to spread them over (YYYY/MM/DD from 2023-01-01).")
    var days = 1000
    @Option(help: "The recording tree's root (created; must not hold the recordings yet).")
    var tree: String
    @Option(help: "The source's PBX name (part of each call's key).")
    var pbx = "freepbx"

    @OptionGroup var options: BenchOptions

    func validate() throws {
        guard calls >= 1, days >= 1 else { throw ValidationError("--calls and --days must be at least 1") }
    }

    func run() async throws {
        let logger = options.makeLogger()
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree, withIntermediateDirectories: true)
        guard let resolved = realpath(tree, nil) else { throw ValidationError("--tree \(tree): \(String(cString: strerror(errno)))") }
        let root = String(cString: resolved)
        free(resolved)
        let perDay = (calls + days - 1) / days
        let base = 1_672_574_400  // 2023-01-01T12:00:00Z
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let began = Date()
        try await options.settings.withStore(creating: true, logger: logger) { store in
            var ops: [LedgerOp] = []
            var folder = ""
            for i in 0..<calls {
                let epoch = base + (i / perDay) * 86400 + (i % perDay) * 60
                let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(epoch)))
                func two(_ v: Int?) -> String { String(format: "%02d", v ?? 0) }
                let dir = "\(root)/\(c.year!)/\(two(c.month))/\(two(c.day))"
                if dir != folder {
                    try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    folder = dir
                }
                let callID = "\(epoch).\(i)"
                let name = "out-2125550123-101-\(c.year!)\(two(c.month))\(two(c.day))-\(two(c.hour))\(two(c.minute))\(two(c.second))-\(callID).wav"
                let path = dir + "/" + name
                guard fm.createFile(atPath: path, contents: Self.tinyWAV(i)) else { throw ValidationError("cannot write \(path)") }
                var st = stat()
                guard lstat(path, &st) == 0 else { throw ValidationError("cannot stat \(path)") }
                let key = SourceIdentity.key(pbx: pbx, callID: callID)
                ops.append(.insertRecording(Recording(key: key, path: path, state: .uploaded, partCount: 1, seconds: 1)))
                ops.append(.replaceParts(key: key, parts: [Part(recordingKey: key, index: 1, spoolPath: "", bytes: 16, seconds: 1, sha256: key,
                                                                state: .attached, callLogID: "CA" + key.prefix(30), callLogOrigin: .created,
                                                                marker: "callrec:\(key.prefix(32)):p1", attachedAt: Date())]))
                ops.append(.putSourceFile(SourceFile(
                    path: path, directory: dir, pbx: pbx, device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                    modifiedNanos: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec),
                    changedNanos: Int64(st.st_ctim.tv_sec) * 1_000_000_000 + Int64(st.st_ctim.tv_nsec), recordingKey: key, verdict: "registered")))
                if ops.count >= 3000 {
                    try await store.commit(ops)
                    ops.removeAll()
                }
            }
            if !ops.isEmpty { try await store.commit(ops) }
        }
        standardError("seeded \(calls) uploaded FreePBX recordings over \((calls + perDay - 1) / perDay) day folders under \(root) in \(String(format: "%.1f", Date().timeIntervalSince(began))) s")
    }

    /// A 44-byte PCM16 header and 8 samples that only recording `i` has.
    static func tinyWAV(_ i: Int) -> Data {
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        let samples = (0..<8).flatMap { le32(i &* 31 &+ $0).prefix(2) }
        let header = Array("RIFF".utf8) + le32(36 + samples.count) + Array("WAVEfmt ".utf8) + le32(16) + [1, 0, 1, 0] + le32(8000) + le32(16000)
            + [2, 0, 16, 0] + Array("data".utf8) + le32(samples.count)
        return Data(header + samples)
    }
}

import CallAPI
import CallAudio
import Foundation

/// The checks every command (`upload`, `enqueue`, `transcode`) makes of a scanned file before it
/// reads its audio, in one order and with one code and message each: a refused entry, two
/// recordings sharing a stem, a file still being written.
enum Preflight {
    /// The report of a file that is not taken (failed, or waiting until it settles); nil when it goes on.
    static func check(_ file: ScannedFile, settle: Settle) -> FileReport? {
        let shown = file.relativePath
        if let refusal = file.refusal {
            return .failed(shown, code: "refused", "\(shown): \(refusal)")
        }
        if let other = file.sharesStemWith.first {
            let stem = Scanner.stem(of: shown)
            return .failed(shown, code: sharedStem,
                           "\(shown): \(other) has the same name in the same folder: one sidecar \(stem).json would describe both, and both would become \(stem).mp3; rename one (with its own sidecar)")
        }
        guard let stamp = FileStamp(path: file.absolutePath) else {
            return .failed(shown, code: "unreadable", "\(shown): cannot be read: \(String(cString: strerror(errno)))")
        }
        if let waiting = settle.check(path: file.absolutePath, shown: shown, stamp: stamp) { return waiting }
        // A recorder may write the sidecar last: one still being written is not read yet.
        if let sidecar = file.sidecarPath, let stamp = FileStamp(path: sidecar) {
            return settle.check(path: file.absolutePath, shown: shown, stamp: stamp, file: Scanner.stem(of: shown) + ".json")
        }
        return nil
    }

    /// Two recordings in one folder with the same stem (`x.wav`, `x.aif`, one `x.json`).
    static let sharedStem = "shared_stem"
}

/// A recording's sidecar as read from disk.
enum SidecarRead {
    case missing
    /// The message names the sidecar and every field that breaks a rule.
    case broken(String)
    case valid(Sidecar, text: String)

    static func read(_ file: ScannedFile) -> SidecarRead {
        guard let path = file.sidecarPath else { return .missing }
        return read(path: path, shown: Scanner.stem(of: file.relativePath) + ".json")
    }

    static func read(path: String, shown: String) -> SidecarRead {
        guard let data = FileManager.default.contents(atPath: path) else { return .broken("\(shown): cannot be read") }
        let (parsed, problems) = Sidecar.parse(data)
        guard let sidecar = parsed, problems.isEmpty else {
            return .broken("\(shown): " + problems.map(\.description).joined(separator: "; "))
        }
        return .valid(sidecar, text: String(decoding: data, as: UTF8.self))
    }

    var sidecar: Sidecar? {
        if case .valid(let sidecar, _) = self { sidecar } else { nil }
    }
}

/// The same audio under several names (issue 13, item 3). A recording is its bytes (their
/// SHA-256), and a call is its sidecar's facts (the parsed document, provider references
/// included). Files with equal bytes whose sidecars describe the same call are one recording:
/// the first by path is taken, the others are skipped with `duplicate_of` naming it. When their
/// sidecars describe different calls, which call the audio belongs to cannot be told: every one
/// of them fails with `duplicate_audio`, naming the others and their sidecars. A file without a
/// sidecar (allowed by `transcode`) claims no call.
///
/// Only files of one size can hold the same bytes, so only those are hashed here, before the
/// rest of the run; every other file is still read once.
enum DuplicateAudio {
    struct Member: Sendable {
        var index: Int
        var file: ScannedFile
        var sidecar: Sidecar?
    }

    /// What the check found: reports for the files it settles (duplicates, conflicts, files that
    /// changed while hashed), and the keys it took of the others (with their trusted stamps).
    struct Outcome {
        var reports: [Int: FileReport] = [:]
        var hashed: [Int: (key: String, stamp: FileStamp?)] = [:]
    }

    static let duplicateOf = AudioWarning.Code(rawValue: "duplicate_of")
    static let conflict = "duplicate_audio"

    /// - Parameter known: whether the ledger knows a key already; a group whose key it knows is
    ///   left to the registration, which compares each file with the call the ledger holds.
    static func resolve(_ members: [Member], settle: Settle, pool: CPUPool,
                        known: @Sendable (String) async throws -> Bool = { _ in false }) async throws -> Outcome {
        var outcome = Outcome()
        let candidates = Dictionary(grouping: members, by: \.file.size).values.filter { $0.count > 1 }.flatMap { $0 }
        guard !candidates.isEmpty else { return outcome }
        let keys = await withTaskGroup(of: (Member, Result<(key: String, held: Bool, trusted: FileStamp?), any Error>).self) { group in
            for member in candidates {
                group.addTask {
                    do { return (member, .success(try await pool.run { try Fingerprint.hashOnce(member.file.absolutePath, now: settle.now()) })) } catch {
                        return (member, .failure(error))
                    }
                }
            }
            var keys: [(Member, String)] = []
            for await (member, result) in group {
                switch result {
                case .success(let read) where read.held:
                    keys.append((member, read.key))
                    outcome.hashed[member.index] = (read.key, read.trusted)
                case .success:
                    outcome.reports[member.index] = settle.changedWhileRead(shown: member.file.relativePath)
                case .failure(let error):
                    outcome.reports[member.index] = .failed(member.file.relativePath, code: "unreadable", "\(member.file.relativePath): \(ScanError.reason(error))")
                }
            }
            return keys
        }
        for group in Dictionary(grouping: keys, by: \.1).values where group.count > 1 {
            if try await known(group[0].1) { continue }
            let same = group.map(\.0).sorted { $0.file.relativePath < $1.file.relativePath }
            for (index, report) in verdicts(same, key: group[0].1) { outcome.reports[index] = report }
        }
        return outcome
    }

    /// The reports of files that hold the same bytes (sorted by path).
    private static func verdicts(_ same: [Member], key: String) -> [(Int, FileReport)] {
        let claims = same.filter { $0.sidecar != nil }
        if let first = claims.first, claims.contains(where: { $0.sidecar != first.sidecar }) {
            return same.map { member in
                let others = same.filter { $0.index != member.index }
                return (member.index, .failed(member.file.relativePath, code: conflict,
                                              conflictMessage(member.file.relativePath, sidecar: sidecarName(member),
                                                              others: others.map { ($0.file.relativePath, sidecarName($0)) }),
                                              key: key))
            }
        }
        let primary = claims.first ?? same[0]
        return same.filter { $0.index != primary.index }.map { member in
            let shown = member.file.relativePath
            return (member.index, FileReport(path: shown, key: key, status: .skipped, error: nil,
                                             warnings: [AudioWarning(duplicateOf, "\(shown): the same bytes as \(primary.file.relativePath), for the same call: one recording, taken as \(primary.file.relativePath)")],
                                             input: nil, stats: nil, parts: []))
        }
    }

    private static func sidecarName(_ member: Member) -> String? {
        member.sidecar == nil ? nil : Scanner.stem(of: member.file.relativePath) + ".json"
    }

    /// `duplicate_audio`: the same bytes as `others`, whose sidecars describe other calls.
    static func conflictMessage(_ shown: String, sidecar: String?, others: [(path: String, sidecar: String?)], uploaded: String = "") -> String {
        let names = others.map { other in other.sidecar.map { "\(other.path) (\($0))" } ?? other.path }.joined(separator: ", ")
        return "\(shown)\(sidecar.map { " (\($0))" } ?? ""): the same bytes (SHA-256) as \(names)\(uploaded), but the sidecars describe different calls, and a recording belongs to one call: remove the copy, or mend the sidecar that names the wrong call"
    }
}
